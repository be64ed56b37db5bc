"""Bad invocations of the `dialogym` CLI: each ends with exit code 2 and one line saying what
was wrong, never a traceback, and writes nothing where a run folder would have gone."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dialogym.cli import app


@pytest.fixture
def place(tmp_path):
    """Files the table's invocations point at; ``{tmp}`` in an argument is this folder."""
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "empty_model").mkdir()
    (tmp_path / "orphan").mkdir()
    (tmp_path / "orphan" / "episodes.jsonl").write_text('{"some": "episodes"}\n')
    (tmp_path / "broken.yaml").write_text("games: [reference\nmodels: x\n")
    (tmp_path / "unknown.yaml").write_text("gamez: reference\n")
    (tmp_path / "list.yaml").write_text("- reference\n")
    (tmp_path / "episodes.yaml").write_text("episodes: -3\n")
    return tmp_path


BENCH = ["bench", "--games", "reference", "--models", "scripted", "--episodes", "1"]
PLAY = ["play", "reference", "--model", "scripted", "--episodes", "1"]
#: (invocation, fragment of the one error line); every run folder is {tmp}/run unless it says otherwise
BAD = [
    pytest.param([*BENCH, "--out", "{tmp}/a_file/run"], "--out {tmp}/a_file/run lies under {tmp}/a_file, which is a file", id="out-under-a-file"),
    pytest.param([*BENCH, "--out", "{tmp}/a_file"], "--out {tmp}/a_file is a file, not a folder", id="out-is-a-file"),
    pytest.param([*PLAY, "--out", "{tmp}/a_file"], "--out {tmp}/a_file is a file, not a folder", id="play-out-is-a-file"),
    pytest.param(["demo", "--out", "{tmp}/a_file"], "is a file, not a folder", id="demo-out-is-a-file"),
    pytest.param([*BENCH, "--seed", "-1"], "bad bench setting 'seed': Input should be greater than or equal to 0", id="negative-seed"),
    pytest.param([*PLAY, "--seed", "-1"], "bad play setting 'seed'", id="play-negative-seed"),
    pytest.param([*PLAY, "--level", "nope"], "unknown level 'nope'; choose one of ['easy', 'medium', 'hard']", id="play-bad-level"),
    pytest.param(["play", "refrence", "--model", "scripted"], "no game registered as 'refrence'; did you mean 'reference'?", id="play-typo"),
    pytest.param(["bench", "--games", "refrence,negotiation"], "did you mean 'reference'?", id="bench-typo"),
    pytest.param(["bench", "--games", "xyzzy"], "no game registered as 'xyzzy'; registered: ", id="unknown-game"),
    pytest.param(["bench", "--games", ","], "bad bench setting 'games': name at least one game", id="no-games"),
    pytest.param(["bench", "--models", "nope:x"], "unknown model kind 'nope' in 'nope:x'", id="unknown-model-kind"),
    pytest.param(["bench", "--models", "openai:http://x"], "must look like 'openai:<base url>#<model name>'", id="openai-without-model"),
    pytest.param(["bench", "--models", "openai:http://x/v1#m?timout=5"], "unknown option 'timout'", id="openai-bad-option"),
    pytest.param(["bench", "--models", "scripted,scripted"], "a model is named twice", id="model-twice"),
    pytest.param([*BENCH, "--models", "hf:{tmp}/empty_model"], "cannot load model '{tmp}/empty_model': it is empty", id="empty-hf-folder"),
    pytest.param([*PLAY, "--model", "hf:{tmp}/empty_model"], "it is empty; give a folder with config.json", id="play-empty-hf-folder"),
    pytest.param(["bench", "--mode", "crossplay", "--models", "scripted", "--games", "reference"], "cross-play needs at least two models", id="crossplay-one-model"),
    pytest.param([*PLAY, "--opponent", "scripted:default", "--seat", "nosuch"], "has no seat 'nosuch'", id="play-bad-seat"),
    pytest.param([*BENCH, "--episodes", "0"], "bad bench setting 'episodes': Input should be greater than or equal to 1", id="zero-episodes"),
    pytest.param(["bench", "--config", "{tmp}/episodes.yaml"], "{tmp}/episodes.yaml: bad bench setting 'episodes'", id="config-bad-value"),
    pytest.param(["bench", "--config", "{tmp}/missing.yaml"], "cannot read the bench config", id="config-missing"),
    pytest.param(["bench", "--config", "{tmp}/broken.yaml"], "{tmp}/broken.yaml: not valid yaml", id="config-not-yaml"),
    pytest.param(["bench", "--config", "{tmp}/unknown.yaml"], "unknown bench option(s) ['gamez']", id="config-unknown-key"),
    pytest.param(["bench", "--config", "{tmp}/list.yaml"], "must be a mapping of settings, got list", id="config-not-a-mapping"),
    pytest.param([*BENCH, "--out", "{tmp}/orphan"], "holds episodes.jsonl but no bench.json", id="episodes-without-a-run"),
    pytest.param(["serve", "--model", "nope:x"], "unknown model kind 'nope'", id="serve-bad-model"),
    pytest.param(["train", "refrence"], "did you mean 'reference'?", id="train-typo"),
    pytest.param(["train", "reference", "--seed", "-1"], "bad training setting 'seed'", id="train-negative-seed"),
    pytest.param(["train", "negotiation", "--game-options", "nokey"], "a game option is key=value", id="train-game-option-form"),
    pytest.param(["train", "negotiation", "--game-options", "colour=1"], "bad game option", id="train-unknown-game-option"),
    pytest.param(["train", "negotiation", "--game-options", "messages=2"], "messages must be true or false",
                 id="train-bad-game-option-value"),
]


def invoke(args, tmp):
    args = [a.replace("{tmp}", str(tmp)) for a in args]
    if "--out" not in args and args[0] in ("bench", "play"):
        args += ["--out", str(tmp / "run")]
    return CliRunner().invoke(app, args)


def assert_one_line_error(result, fragment):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("args,fragment", BAD)
def test_a_bad_invocation_is_one_error_line_and_writes_no_run_folder(args, fragment, place):
    assert_one_line_error(invoke(args, place), fragment.replace("{tmp}", str(place)))
    assert not (place / "run").exists()
    assert (place / "orphan" / "episodes.jsonl").read_text() == '{"some": "episodes"}\n'
    assert not (place / "a_file" / "run").exists() and (place / "a_file").read_text() == "not a folder\n"


def test_bench_refuses_to_add_to_a_folder_of_play_episodes(place):
    out = place / "played"
    assert invoke([*PLAY, "--out", str(out)], place).exit_code == 0
    before = (out / "episodes.jsonl").read_bytes()
    result = invoke([*BENCH, "--out", str(out)], place)
    assert_one_line_error(result, f"{out} holds a bench run with other settings: temperature (0.7 -> 0.0)")
    assert (out / "episodes.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    "args,line",
    [
        (["play", "reference", "--split", "nope"], "error: --split: 'nope' is not one of 'train', 'test', 'any'"),
        (["bench", "--episodes", "many"], "error: --episodes: "),
    ],
)
def test_a_value_the_option_parser_refuses_names_the_option_without_a_traceback(args, line, place):
    result = invoke(args, place)  # the option parser's usage error, before any command code runs: one line
    assert_one_line_error(result, line)
    assert not (place / "run").exists()


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["bench", "--games", "reference", "--out", "{tmp}/a_file/run"], "which is a file, not a folder"),
        (["play", "reference", "--model", "openai:http://127.0.0.1:1/v1#m?retries=0", "--episodes", "1", "--out", "{tmp}/run"],
         "http://127.0.0.1:1/v1/chat/completions: no answer after 1 try"),
    ],
)
def test_the_installed_command_prints_one_line_on_stderr(args, fragment, place):
    args = [a.replace("{tmp}", str(place)) for a in args]
    done = subprocess.run([sys.executable, "-m", "dialogym", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], done.stderr
