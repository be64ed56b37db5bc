"""What an adversarial tester fed the `dialogym` CLI: a device as the config, a trillion
episodes, an empty --out, a value that is not one of the choices, a busy port, a library's
raw message, nan. Each ends with exit code 2 and one ``error:`` line saying what was wrong,
fast, and writes nothing."""

import resource
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialogym.cli import app


def one_line(result) -> str:
    """The one line a refused invocation printed (CliRunner's output holds stdout and stderr)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def invoke(*args: str) -> str:
    return one_line(CliRunner().invoke(app, list(args)))


@pytest.fixture
def no_run(monkeypatch):
    """Whatever a refused invocation must not reach fails at once: planning a bench run,
    building a trainer or a league (so a check that comes too late fails fast, not by filling memory)."""
    import dialogym.benchmarks.runner as runner
    import dialogym.trainers.grpo as grpo
    import dialogym.trainers.league as league
    import dialogym.trainers.ppo as ppo

    def started(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(runner, "plan", started)
    monkeypatch.setattr(grpo, "GRPOTrainer", started)
    monkeypatch.setattr(ppo, "PPOTrainer", started)
    monkeypatch.setattr(league, "League", started)


def run_module(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m dialogym ARGS`` with at most 4 GiB of address space and ``timeout`` seconds."""

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    return subprocess.run(
        [sys.executable, "-m", "dialogym", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
        preexec_fn=limit_memory,
    )


# --------------------------------------------------------------------------- config files
@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_as_the_config_is_one_line_at_once(tmp_path):
    done = run_module(["bench", "--config", "/dev/zero", "--out", str(tmp_path / "run")], tmp_path, timeout=30)
    assert done.returncode == 2 and done.stdout == "", done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["error: /dev/zero: cannot read the bench config (it is a device, not a file); give a YAML or JSON file"]
    assert not (tmp_path / "run").exists()


def test_a_config_past_the_size_cap_is_refused_naming_the_cap(tmp_path, no_run):
    config = tmp_path / "huge.yaml"
    config.write_text("# " + "x" * (2 * 1024 * 1024) + "\nepisodes: 1\n")
    line = invoke("bench", "--config", str(config), "--out", str(tmp_path / "run"))
    assert line == (
        f"error: {config}: cannot read the bench config (it is larger than 1 MB, the most a config may hold); "
        "give a YAML or JSON file of settings"
    )
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- episode counts
TRILLION = "1000000000000"
EPISODES = [
    pytest.param(["bench", "--games", "reference", "--models", "scripted", "--episodes", TRILLION],
                 "command line: bad bench setting 'episodes': at most 1,000,000 episodes per run, got 1,000,000,000,000",
                 id="bench"),
    pytest.param(["play", "reference", "--model", "scripted", "--episodes", TRILLION],
                 "command line: bad play setting 'episodes': at most 1,000,000 episodes per run, got 1,000,000,000,000",
                 id="play"),
    pytest.param(["demo", "--model", "scripted", "--episodes", TRILLION],
                 "--episodes: at most 1,000,000 test instances per game, got 1,000,000,000,000", id="demo"),
    pytest.param(["league", "reference", "--model", "tiny", "--episodes", TRILLION],
                 "command line: bad league setting 'episodes': at most 1,000,000 episodes per run, got 1,000,000,000,000",
                 id="league"),
    pytest.param(["league", "reference", "--model", "tiny", "--eval-episodes", TRILLION],
                 "command line: bad league setting 'eval_episodes': at most 1,000,000 evaluation episodes per opponent, "
                 "got 1,000,000,000,000", id="league-eval"),
    pytest.param(["train", "reference", "--model", "tiny", "--group-size", "1000", "--instances", "1001"],
                 "command line: bad training setting 'instances_per_step': at most 1,000,000 episodes per training step "
                 "(group_size x instances_per_step), got 1,001,000", id="train-step"),
    pytest.param(["train", "reference", "--model", "tiny", "--algo", "sft", "--steps", "1000000"],
                 "--steps: at most 1,000,000 episodes per run (steps x group_size x instances_per_step, all kept for TRL), "
                 "got 16,000,000", id="train-sft-steps"),
]


@pytest.mark.parametrize("args,message", EPISODES)
def test_an_absurd_episode_count_is_refused_naming_the_bound(args, message, tmp_path, no_run):
    out = tmp_path / "run"
    assert invoke(*args, "--out", str(out)) == f"error: {message}"
    assert not out.exists()


def test_an_absurd_episode_count_in_a_config_file_is_refused_naming_the_file(tmp_path, no_run):
    config = tmp_path / "bench.yaml"
    config.write_text(f"episodes: {TRILLION}\n")
    line = invoke("bench", "--games", "reference", "--models", "scripted", "--config", str(config), "--out", str(tmp_path / "run"))
    assert line == f"error: {config}: bad bench setting 'episodes': at most 1,000,000 episodes per run, got 1,000,000,000,000"
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- --out
@pytest.mark.parametrize("out", ["", "  "], ids=["empty", "blank"])
@pytest.mark.parametrize(
    "command",
    [
        ["bench", "--games", "reference", "--models", "scripted", "--episodes", "1"],
        ["play", "reference", "--model", "scripted", "--episodes", "1"],
        ["demo", "--model", "scripted", "--episodes", "1"],
        ["train", "reference", "--model", "tiny", "--steps", "1"],
        ["league", "reference", "--model", "tiny", "--iterations", "1"],
    ],
    ids=lambda command: command[0],
)
def test_an_empty_out_is_refused_and_nothing_lands_in_the_current_folder(command, out, tmp_path, monkeypatch, no_run):
    monkeypatch.chdir(tmp_path)
    line = invoke(*command, "--out", out)
    assert line == (
        f"error: --out: {' '.join(repr(out).split())} names no folder (it would write into the current one); "
        "give a folder, or --out . for the current one"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_empty_out_in_a_config_file_is_refused_naming_the_file(tmp_path, monkeypatch, no_run):
    monkeypatch.chdir(tmp_path)
    Path("bench.yaml").write_text('out: ""\ngames: reference\nmodels: scripted\nepisodes: 1\n')
    line = invoke("bench", "--config", "bench.yaml")
    assert line.startswith("error: bench.yaml: out: '' names no folder (it would write into the current one)")
    assert [p.name for p in tmp_path.iterdir()] == ["bench.yaml"]


# --------------------------------------------------------------------------- usage errors
USAGE = [
    pytest.param(["play", "reference", "--split", "validation"], "error: --split: 'validation' is not one of 'train', 'test', 'any'",
                 id="bad-choice"),
    pytest.param(["bench", "--mode", "cross"], "error: --mode: 'cross' is not one of 'selfplay', 'crossplay'", id="bad-mode"),
    pytest.param(["train", "reference", "--loss-type", "ppo"], "error: --loss-type: 'ppo' is not one of 'grpo', 'dr_grpo', 'dapo'",
                 id="train-bad-choice"),
    pytest.param(["bench", "--episodes", "many"], "error: --episodes: ", id="not-an-int"),
    pytest.param(["serve", "--port", "70000"], "error: --port: ", id="port-out-of-range"),
    pytest.param(["bench", "--episdoes", "3"], "error: No such option: --episdoes", id="unknown-option"),
    pytest.param(["play"], "error: Missing argument", id="missing-argument"),
    pytest.param(["benchh"], "error: No such command 'benchh'", id="unknown-command"),
    pytest.param(["--verbose"], "error: No such option: --verbose", id="unknown-top-option"),
]


@pytest.mark.parametrize("args,start", USAGE)
def test_a_usage_error_is_one_line_not_a_box(args, start, tmp_path):
    line = invoke(*args, *(["--out", str(tmp_path / "run")] if args[0] in ("bench", "play") else []))
    assert line.startswith(start), line
    assert "╭" not in line and "Usage:" not in line
    assert not (tmp_path / "run").exists()


def test_python_m_dialogym_prints_a_usage_error_as_one_line_on_stderr(tmp_path):
    done = run_module(["play", "reference", "--split", "validation", "--out", str(tmp_path / "run")], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == ["error: --split: 'validation' is not one of 'train', 'test', 'any'"]
    assert not (tmp_path / "run").exists()


def test_no_arguments_still_show_the_help():
    result = CliRunner().invoke(app, [])
    assert "Usage" in result.output and "bench" in result.output and "error:" not in result.output


# --------------------------------------------------------------------------- serve
def test_serve_on_a_busy_port_is_one_line_before_the_model_loads(monkeypatch):
    import dialogym.agents.specs as specs

    def load_agent(*args, **kwargs):
        raise AssertionError("the model was loaded before the port was checked")

    monkeypatch.setattr(specs, "load_agent", load_agent)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        line = invoke("serve", "--model", "tiny", "--port", str(port))
    assert line == f"error: cannot listen on 127.0.0.1:{port}: address already in use; pick another --port"


def test_serve_passes_its_limits_to_the_server(monkeypatch):
    import dialogym.agents.server as server
    import dialogym.agents.specs as specs

    seen = {}
    monkeypatch.setattr(specs, "load_agent", lambda spec: spec)
    monkeypatch.setattr(server, "serve", lambda agent, **kw: seen.update(kw))
    with socket.create_server(("127.0.0.1", 0)) as free:
        port = free.getsockname()[1]
    result = CliRunner().invoke(app, ["serve", "--model", "tiny", "--port", str(port), "--max-messages", "9",
                                      "--max-context-tokens", "512", "--max-stop", "2", "--max-stop-chars", "8"])
    assert result.exit_code == 0, result.output
    assert seen["max_messages"] == 9 and seen["max_context_tokens"] == 512
    assert seen["max_stop"] == 2 and seen["max_stop_chars"] == 8 and seen["max_prompt_chars"] == 32_000
    result = CliRunner().invoke(app, ["serve", "--model", "tiny", "--port", str(port)])
    assert result.exit_code == 0 and seen["max_context_tokens"] is None


# --------------------------------------------------------------------------- raw library messages
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_an_out_where_no_folder_can_be_made_names_the_path_without_errno_text():
    line = invoke("bench", "--games", "reference", "--models", "scripted", "--episodes", "1", "--out", "/proc/dialogym-nowhere")
    assert line == "error: cannot use /proc/dialogym-nowhere: No such file or directory"


def test_a_tokenizer_error_names_the_model_it_came_from(tmp_path):
    folder = tmp_path / "no_tokenizer"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}\n')
    line = invoke("play", "reference", "--model", f"hf:{folder}", "--episodes", "1", "--out", str(tmp_path / "run"))
    assert line.startswith(f"error: cannot load model 'hf:{folder}': "), line
    assert not (tmp_path / "run").exists()


def test_a_peft_error_names_the_model_it_came_from(tmp_path):
    pytest.importorskip("peft")
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("not json\n")
    line = invoke("play", "reference", "--model", f"tiny+lora:{adapter}", "--episodes", "1", "--out", str(tmp_path / "run"))
    assert line.startswith(f"error: cannot load model 'tiny+lora:{adapter}': Expecting value"), line
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- nan and inf
NOT_FINITE = [
    pytest.param(["bench", "--games", "reference", "--models", "scripted", "--temperature", "nan"], "--temperature: nan is not a number",
                 id="bench-temperature-nan"),
    pytest.param(["bench", "--games", "reference", "--models", "scripted", "--temperature", "inf"],
                 "--temperature: inf is not a finite number", id="bench-temperature-inf"),
    pytest.param(["play", "reference", "--model", "scripted", "--temperature", "NaN"], "--temperature: NaN is not a number",
                 id="play-temperature"),
    pytest.param(["train", "reference", "--model", "tiny", "--lr", "nan"], "--lr: nan is not a number", id="train-lr"),
    pytest.param(["train", "reference", "--model", "tiny", "--algo", "ppo", "--gamma", "-inf"], "--gamma: -inf is not a finite number",
                 id="train-gamma"),
    pytest.param(["train", "reference", "--model", "tiny", "--algo", "sft", "--min-reward", "inf"],
                 "--min-reward: inf is not a finite number", id="train-min-reward"),
    pytest.param(["league", "reference", "--model", "tiny", "--gate", "nan"], "--gate: nan is not a number", id="league-gate"),
    pytest.param(["league", "reference", "--model", "tiny", "--lr", "inf"], "--lr: inf is not a finite number", id="league-lr"),
]


@pytest.mark.parametrize("args,message", NOT_FINITE)
def test_nan_and_inf_are_refused_as_not_numbers(args, message, tmp_path, no_run):
    out = tmp_path / "run"
    assert invoke(*args, "--out", str(out)) == f"error: {message}"
    assert not out.exists()


def test_nan_in_a_config_file_is_refused_naming_the_file(tmp_path, no_run):
    config = tmp_path / "bench.yaml"
    config.write_text("temperature: .nan\n")
    line = invoke("bench", "--games", "reference", "--models", "scripted", "--config", str(config), "--out", str(tmp_path / "run"))
    assert line == f"error: {config}: bad bench setting 'temperature': nan is not a number"
    assert not (tmp_path / "run").exists()
