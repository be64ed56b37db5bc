"""The GPU check: dialogym's GPU tests and timings in one run (``benchmarks/perf/gpu_check.sh``).

Each step is a subprocess with its own time budget inside one overall budget; a step that
fails or runs out of time is recorded and the next one runs:

- ``install``: what the shell script did about the packages the machine lacks;
- ``env``: the versions found, and that every package dialogym needs imports;
- ``pytest-gpu``: ``pytest -m gpu`` on the test files that hold GPU tests;
- ``rollout:NAME``: :mod:`dialogym.benchmarks.perf.rollout` on the random-weight model
  ``random:NAME`` with forced reply lengths: engine vs raw batched ``generate``,
  concurrency, guided vs free;
- ``grpo:NAME:lora`` / ``grpo:NAME:full``: one GRPO step (play and update) of
  :class:`~dialogym.trainers.grpo.GRPOTrainer` on that model, a LoRA adapter or every weight.

Random weights: speed depends on a model's shapes, not its weights, once every reply takes
the same number of tokens, and a machine without registry access holds no checkpoints.
The results go to ``OUT/gpu_check.json`` (each step: ok, seconds, result or error) and the
steps' output to ``OUT/gpu_check.log``; a summary is printed. ``--dry-run`` runs the same
steps on the CPU with the tiny config and tiny sizes, to test this file in seconds.

    python trainers/perf/gpu_check.py run --out runs/gpu_check [--dry-run]
    python -m dialogym.trainers.perf.gpu_check grpo --model smollm2 --lora-rank 16 --device cuda

``run`` is started by file path, so that it records a broken install instead of failing
to import dialogym itself; the steps import dialogym.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: modules every step needs (the carried wheels among them), and ones only some paths need
REQUIRED = ("torch", "transformers", "peft", "numpy", "pydantic", "gymnasium", "pettingzoo", "llguidance", "dialogym.trainers.grpo")
OPTIONAL = ("trl", "datasets", "accelerate", "vllm")
VLLM_NOTE = "vLLM is not checked: its wheel is too big to travel with the tree; its code path stays tested with mocks (tests/agents/test_vllm_backend.py)"
#: the least time worth starting a step with
MIN_STEP_S = 20.0


@dataclass(frozen=True)
class Sizes:
    models: tuple[str, ...]
    device: str
    episodes: int
    reply_tokens: int
    reps: int
    instances: int
    generations: int
    completion_tokens: int
    lora_rank: int = 16
    budgets: dict[str, float] = field(default_factory=dict)


GPU = Sizes(models=("smollm2", "qwen2-0.5b"), device="cuda", episodes=16, reply_tokens=24, reps=2,
            instances=4, generations=8, completion_tokens=32,
            budgets={"env": 60, "pytest-gpu": 150, "rollout": 150, "grpo": 75})
DRY_RUN = Sizes(models=("tiny",), device="cpu", episodes=2, reply_tokens=4, reps=1, instances=1, generations=2,
                completion_tokens=4, lora_rank=4, budgets={"env": 60, "pytest-gpu": 150, "rollout": 120, "grpo": 90})


@dataclass(frozen=True)
class Step:
    name: str
    command: list[str]
    budget_s: float
    #: the JSON file the step writes its result to (None: the result is pytest's summary line)
    result: Path | None
    #: why the step cannot run here (None: it can)
    skip: str | None = None


def checkout(start: Path | None = None) -> Path | None:
    """The dialogym checkout holding ``start`` (default: the current folder), found by its
    ``pyproject.toml`` and ``tests/``; None outside one (dialogym installed from a wheel and
    run elsewhere: every step but ``pytest-gpu`` runs from any folder)."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if (folder / "tests").is_dir() and pyproject.is_file() and 'name = "dialogym"' in pyproject.read_text():
            return folder
    return None


def pytest_step(sizes: Sizes) -> Step:
    """``pytest -m gpu`` on the test files that hold GPU tests, in the checkout holding the
    current folder; outside one, a step that says in one line why it is not run."""
    root = checkout()
    if root is None:
        skip = f"the GPU tests live in a dialogym checkout, and {Path.cwd()} is not in one; run gpu_check from its folder"
        return Step("pytest-gpu", [], sizes.budgets["pytest-gpu"], None, skip=skip)
    gpu_tests = sorted(str(p.relative_to(root)) for p in (root / "tests").rglob("test_*.py") if "pytest.mark.gpu" in p.read_text())
    return Step("pytest-gpu", [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", *gpu_tests],
                sizes.budgets["pytest-gpu"], None)


def plan(sizes: Sizes, work: Path) -> list[Step]:
    """The steps, most important first, so an overall budget cut short loses the least."""
    py = [sys.executable]
    steps = [
        Step("env", [*py, "-m", "dialogym.trainers.perf.gpu_check", "env", "--out", str(work / "env.json")],
             sizes.budgets["env"], work / "env.json"),
        pytest_step(sizes),
    ]
    for name in sizes.models:
        out = work / f"rollout-{name}.json"
        steps.append(Step(f"rollout:{name}", [
            *py, "-m", "dialogym.benchmarks.perf.rollout", "--model", f"random:{name}", "--device", sizes.device,
            "--episodes", str(sizes.episodes), "--max-new-tokens", str(sizes.reply_tokens), "--reps", str(sizes.reps),
            "--force-length", "--guided", "--out", str(out),
        ], sizes.budgets["rollout"], out))
        for kind, rank in (("lora", sizes.lora_rank), ("full", 0)):
            out = work / f"grpo-{name}-{kind}.json"
            steps.append(Step(f"grpo:{name}:{kind}", [
                *py, "-m", "dialogym.trainers.perf.gpu_check", "grpo", "--model", name, "--device", sizes.device,
                "--lora-rank", str(rank), "--instances", str(sizes.instances), "--generations", str(sizes.generations),
                "--length", str(sizes.completion_tokens), "--out", str(out),
            ], sizes.budgets["grpo"], out))
    return steps


def run_step(step: Step, budget_s: float, log) -> dict:
    """Run one step in its own process group (killed whole when over budget); its record."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    record: dict = {"name": step.name, "budget_s": round(budget_s), "command": shlex.join(step.command)}
    started = time.monotonic()
    # from the checkout, where there is one: the GPU tests' paths are relative to it
    proc = subprocess.Popen(step.command, cwd=checkout(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=budget_s)
        error = None if proc.returncode == 0 else f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        error = f"ran past its {budget_s:.0f} s budget and was killed"
    record["seconds"] = round(time.monotonic() - started, 1)
    log.write(f"===== {step.name} ({record['seconds']} s): {record['command']}\n{output}\n")
    log.flush()
    if error is None and step.result is not None:
        try:
            record["result"] = json.loads(step.result.read_text())
        except (OSError, ValueError) as err:
            error = f"wrote no readable result to {step.result.name}: {err}"
    elif error is None:
        record["result"] = {"summary": last_line(output)}
    record["ok"] = error is None
    if error is not None:
        record["error"] = error
        record["output_tail"] = output[-3000:]
    return record


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def headline(record: dict) -> str:
    """The step's figures in one line (or its error)."""
    if not record.get("ok"):
        return f"{record.get('error', '')}: {last_line(record.get('output_tail', ''))}"[:160]
    r = record.get("result", {})
    if record["name"] == "env":
        return f"{r.get('device')}, torch {r.get('versions', {}).get('torch')}, python {r.get('python')}"
    if record["name"].startswith("rollout:"):
        guided = ", ".join(f"{seat} {g['guided_overhead']}" for seat, g in r.get("guided", {}).items())
        return (f"engine {r.get('engine_tok_per_s')} tok/s, efficiency {r.get('rollout_efficiency')}, "
                f"concurrency x{r.get('concurrency_speedup')}, guided/free {guided}")
    if record["name"].startswith("grpo:"):
        peak = f", peak {r['peak_memory_gib']} GiB" if r.get("peak_memory_gib") is not None else ""
        return (f"{r.get('step_s')} s/step, {r.get('completions_per_step')} completions x {r.get('completion_tokens')} tokens, "
                f"{r.get('trainable_params', 0) / 1e6:.2f}M trainable{peak}")
    return str(r.get("summary", ""))


def run(args: argparse.Namespace) -> int:
    sizes = DRY_RUN if args.dry_run else GPU
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + args.budget
    install = os.environ.get("GPU_CHECK_INSTALL", "not run (gpu_check.py was started without gpu_check.sh)")
    records = [{"name": "install", "ok": not install.startswith("failed"), "result": {"summary": install}}]
    print(f"gpu_check: {'dry run on the CPU, tiny sizes' if args.dry_run else 'CUDA'}; {VLLM_NOTE}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as work, (out / "gpu_check.log").open("w") as log:
        for step in plan(sizes, Path(work)):
            left = deadline - time.monotonic()
            if step.skip:
                records.append({"name": step.name, "ok": False, "error": f"not run: {step.skip}"})
            elif left < MIN_STEP_S:
                records.append({"name": step.name, "ok": False, "error": f"not run: {left:.0f} s of the {args.budget:.0f} s budget left"})
            else:
                records.append(run_step(step, min(step.budget_s, left), log))
            print(f"  {'ok  ' if records[-1]['ok'] else 'FAIL'}  {step.name:<24} {records[-1].get('seconds', 0):>6} s", flush=True)
    report = {
        "dry_run": args.dry_run, "ok": all(r["ok"] for r in records), "seconds": round(time.monotonic() - started, 1),
        "budget_s": args.budget, "notes": [VLLM_NOTE], "steps": records,
    }
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"\ngpu_check: {sum(r['ok'] for r in records)}/{len(records)} steps ok in {report['seconds']} s")
    for record in records:
        print(f"  {'ok  ' if record['ok'] else 'FAIL'}  {record['name']:<24} {headline(record)}")
    print(f"results: {out / 'gpu_check.json'}, output: {out / 'gpu_check.log'}")
    return 0 if report["ok"] else 1


def env_report(args: argparse.Namespace) -> int:
    """Versions, the GPU, and which modules import; fails if a required one does not."""
    import importlib
    from importlib import metadata

    modules = {}
    for name in REQUIRED + OPTIONAL:
        try:
            importlib.import_module(name)
            modules[name] = "ok"
        except Exception as err:  # any import failure is a finding, not a crash
            modules[name] = f"{type(err).__name__}: {err}"[:300]
    versions = {}
    for dist in ("torch", "transformers", "peft", "accelerate", "tokenizers", "numpy", "pydantic", "gymnasium",
                 "pettingzoo", "llguidance", "trl", "datasets"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    import torch

    cuda = torch.cuda.is_available()
    result = {
        "python": sys.version.split()[0], "device": torch.cuda.get_device_name() if cuda else "cpu",
        "cuda": torch.version.cuda, "versions": versions, "imports": modules,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    missing = [name for name in REQUIRED if modules[name] != "ok"]
    if missing:
        print(f"env: required modules do not import: {', '.join(missing)}; see 'imports' above", file=sys.stderr)
    return 1 if missing else 0


def grpo_step(args: argparse.Namespace) -> int:
    """One GRPO step of the toy game on ``random_model(args.model)``, every completion
    forced to ``args.length`` tokens; ``--warmup`` untimed steps first."""
    import torch

    from dialogym.agents.hf import TransformersAgent, pick_device
    from dialogym.agents.models import random_model
    from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer
    from dialogym.trainers.toy import GAME_ID

    device = pick_device(args.device)
    model, tokenizer = random_model(args.model, device=device)  # float32, as trainers keep weights
    model.generation_config.min_new_tokens = args.length  # end-of-sequence masked until then
    config = GRPOConfig(group_size=args.generations, instances_per_step=args.instances, lr=1e-5,
                        max_new_tokens=args.length, lora_rank=args.lora_rank, loss_type="grpo")
    trainer = GRPOTrainer(GAME_ID, config=config, learner=TransformersAgent(model, tokenizer, device=device))
    cuda = device.startswith("cuda")
    if args.warmup:
        trainer.train(args.warmup, log=False)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    history = trainer.train(args.steps, log=False)
    if cuda:
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - started) / args.steps
    result = {
        "model": f"random:{args.model}", "device": torch.cuda.get_device_name() if cuda else device,
        "fine_tuning": f"lora r={args.lora_rank}" if args.lora_rank else "full",
        "bf16_autocast": trainer.bf16, "completions_per_step": args.instances * args.generations,
        "completion_tokens": args.length, "steps": args.steps, "step_s": round(step_s, 3),
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "loss": history[-1]["loss"],
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("run", help="every step, recorded under --out")
    p.add_argument("--out", default=os.environ.get("OUT") or "runs/gpu_check")
    p.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes")
    p.add_argument("--budget", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET_S", 420)),
                   help="seconds all steps together may take (each also has its own)")
    p = commands.add_parser("env", help="versions and imports")
    p.add_argument("--out", required=True)
    p = commands.add_parser("grpo", help="time one GRPO step")
    p.add_argument("--model", default="smollm2", help="a random-model config of dialogym.agents.models.RANDOM_CONFIGS")
    p.add_argument("--device", default=None)
    p.add_argument("--lora-rank", type=int, default=16, help="0: full fine-tuning")
    p.add_argument("--instances", type=int, default=4)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--length", type=int, default=32, help="tokens of every completion")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    return {"run": run, "env": env_report, "grpo": grpo_step}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
