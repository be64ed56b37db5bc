"""The GPU check (benchmarks/perf/gpu_check.sh, trainers/perf/gpu_check.py) and what it times with:
random-weight models of real architectures and forced reply lengths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from dialogym.agents.base import Request, Sampling  # noqa: E402
from dialogym.agents.hf import TransformersAgent  # noqa: E402
from dialogym.agents.models import RANDOM_CONFIGS, random_model  # noqa: E402
from dialogym.benchmarks.perf.rollout import forced_length, seat_requests  # noqa: E402
from dialogym.trainers.perf import gpu_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "perf" / "gpu_check.sh"


def run_script(tmp_path: Path, dry_run: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "GPU_CHECK_DRY_RUN"}
    env.update(PYTHON=sys.executable, OUT=str(tmp_path), **({"GPU_CHECK_DRY_RUN": "1"} if dry_run else {}))
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=560)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer of a machine without a GPU")
def test_without_a_gpu_the_check_says_so_in_one_line_and_exits_0(tmp_path):
    done = run_script(tmp_path, dry_run=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "no CUDA GPU here: the GPU check has nothing to run\n"
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_dry_run_runs_every_step_on_the_cpu_and_records_each_as_json(tmp_path):
    done = run_script(tmp_path, dry_run=True)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["install", "env", "pytest-gpu", "rollout:tiny", "grpo:tiny:lora", "grpo:tiny:full"]
    assert report["ok"] and report["dry_run"] and all(s["ok"] for s in steps.values())
    assert steps["env"]["result"]["imports"]["llguidance"] == "ok"
    assert "skipped" in steps["pytest-gpu"]["result"]["summary"] or "passed" in steps["pytest-gpu"]["result"]["summary"]
    rollout = steps["rollout:tiny"]["result"]
    assert rollout["forced_reply_tokens"] == 4 and rollout["rollout_efficiency"] > 0 and rollout["concurrency_speedup"] > 0
    assert set(rollout["guided"]) == {"speaker", "listener"} and all(g["guided_overhead"] > 0 for g in rollout["guided"].values())
    assert steps["grpo:tiny:lora"]["result"]["fine_tuning"] == "lora r=4" and steps["grpo:tiny:full"]["result"]["step_s"] > 0
    assert steps["grpo:tiny:full"]["result"]["trainable_params"] > steps["grpo:tiny:lora"]["result"]["trainable_params"] > 0
    assert "===== rollout:tiny" in (tmp_path / "gpu_check.log").read_text()
    assert "6/6 steps ok" in done.stdout


def test_a_failing_or_overlong_step_is_recorded_and_the_later_steps_still_run(tmp_path, monkeypatch):
    result = tmp_path / "work-result.json"
    steps = [
        gpu_check.Step("fails", [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], 30, None),
        gpu_check.Step("works", [sys.executable, "-c", f"import json; json.dump({{'x': 1}}, open({str(result)!r}, 'w'))"], 30, result),
        gpu_check.Step("hangs", [sys.executable, "-c", "import time; time.sleep(60)"], 60, None),  # cut at the overall budget
        gpu_check.Step("late", [sys.executable, "-c", "pass"], 30, None),
    ]
    monkeypatch.setattr(gpu_check, "plan", lambda sizes, work: steps)
    monkeypatch.setattr(gpu_check, "MIN_STEP_S", 1.0)
    code = gpu_check.main(["run", "--out", str(tmp_path / "out"), "--budget", "6"])
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    records = {r["name"]: r for r in report["steps"]}
    assert code == 1 and not report["ok"]
    assert records["fails"]["error"] == "exit status 3" and "boom" in records["fails"]["output_tail"]
    assert records["works"]["ok"] and records["works"]["result"] == {"x": 1}
    assert "budget and was killed" in records["hangs"]["error"] and records["hangs"]["seconds"] < 7
    assert records["late"]["error"].startswith("not run")


def test_the_gpu_tests_are_found_from_the_current_folder_and_outside_a_checkout_not_run_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "docs")
    inside = {s.name: s for s in gpu_check.plan(gpu_check.DRY_RUN, tmp_path)}["pytest-gpu"]
    assert inside.skip is None and "tests/agents/test_agents_cuda.py" in inside.command
    monkeypatch.chdir(tmp_path)
    outside = {s.name: s for s in gpu_check.plan(gpu_check.DRY_RUN, tmp_path)}["pytest-gpu"]
    assert "not in one" in outside.skip and "\n" not in outside.skip


def test_random_models_take_the_shapes_of_their_config_and_a_tokenizer_of_the_same_vocabulary():
    model, tokenizer = random_model("qwen2-0.5b", device="meta")
    shape = RANDOM_CONFIGS["qwen2-0.5b"][1]
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.num_hidden_layers == shape["num_hidden_layers"]
    assert len(tokenizer) == model.config.vocab_size == shape["vocab_size"] == model.get_output_embeddings().weight.shape[0]
    text = "You are the LISTENER. Pick the target: ANSWER: 2 — ünïcode too"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text and len(ids) < len(text.encode())  # merges shorten text, as real BPE does
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_random_weights_are_the_same_for_the_same_seed():
    first, _ = random_model("tiny", seed=3)
    again, _ = random_model("tiny", seed=3)
    other, _ = random_model("tiny", seed=4)
    weight = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(first.state_dict()[weight], again.state_dict()[weight])
    assert not torch.equal(first.state_dict()[weight], other.state_dict()[weight])


def test_a_forced_length_masks_end_of_sequence_until_every_reply_has_that_many_tokens():
    model, tokenizer = random_model("tiny")
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id] = 10.0  # the model always wants to stop
    model.lm_head = head
    agent = TransformersAgent(model, tokenizer, device="cpu")
    requests = [Request(messages=[{"role": "user", "content": text}], sampling=Sampling(temperature=t, max_new_tokens=5), seed=1)
                for text, t in (("hi", 0.0), ("a longer prompt", 1.0))]
    assert [len(r.token_ids) for r in agent.act(requests)] == [1, 1]
    with forced_length(agent, 5):
        replies = agent.act(requests)
    assert [len(r.token_ids) for r in replies] == [5, 5]
    assert all(tokenizer.eos_token_id not in r.token_ids for r in replies)
    assert [len(r.token_ids) for r in agent.act(requests)] == [1, 1]


def test_the_guided_timing_asks_each_seat_for_a_reply_under_its_move_grammar():
    for seat in ("speaker", "listener"):
        requests = seat_requests(seat, 3, 16)
        assert [r.seat for r in requests] == [seat] * 3
        assert all(r.sampling.guided and r.grammar and r.grammar.startswith("start:") for r in requests)
