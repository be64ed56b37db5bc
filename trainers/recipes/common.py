"""What the learning recipes share: held-out evaluation with bootstrap intervals, learning
curves drawn as PNG files, and a results file that says how it was made.

A recipe's results file (``docs/results/<recipe>.json``) holds the command, the commit, the
machine (CPU model, cores, torch), the wall time, the before/after estimates with their 95%
intervals and every step's training metrics, so a reader can tell what was measured where.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dialogym.agents.base import Sampling
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.benchmarks.scores import Estimate, bootstrap
from dialogym.envs import Episode
from dialogym.envs.files import atomic_write_bytes, atomic_write_json

#: seeds of the held-out test instances every recipe evaluates on (disjoint from training's
#: derived seeds, and drawn from the test split)
TEST_SEED = 10_000
#: seeds of the validation instances a recipe's learning curve is measured on (``split="train"``,
#: so never a test instance; training draws its seeds with ``derive_seed(seed, step, i)``, a
#: hash that lands on one of these few thousand seeds about once in a million runs). Settings
#: are chosen on these, never on the test instances.
VALIDATION_SEED = 20_000
#: steps in a row with only zero-variance groups after which training stops (no gradient)
CONVERGED_STEPS = 3


def grpo_parser(doc: str | None, recipe: str, *, group_size: int, instances_per_step: int, lr: float,
                curve_episodes: int, curve_every: int, steps: int = 40) -> argparse.ArgumentParser:
    """The command line the GRPO recipes share, with each recipe's own defaults; a recipe
    adds its own options to it."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="model spec of the base model")
    parser.add_argument("--level", default=None, help="instance level (default: the game's default, easy)")
    parser.add_argument("--steps", type=int, default=steps, help="GRPO steps at most (the time budget may stop it first)")
    parser.add_argument("--minutes", type=float, default=28.0, help="wall-time budget of the whole recipe")
    parser.add_argument("--group-size", type=int, default=group_size)
    parser.add_argument("--instances-per-step", type=int, default=instances_per_step)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--eval-episodes", type=int, default=200, help="held-out test episodes before and after")
    parser.add_argument("--curve-episodes", type=int, default=curve_episodes, help="held-out episodes at each curve point")
    parser.add_argument("--curve-every", type=int, default=curve_every, help="steps between curve points (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(f"runs/recipes/{recipe}"), help="checkpoints and metrics")
    parser.add_argument("--results", type=Path, default=Path("docs/results"), help="folder of the JSON and PNG results")
    return parser


def estimate(values: Sequence[float], seed: int = 0) -> Estimate:
    """The mean of ``values`` with its 95% bootstrap interval."""
    return bootstrap([np.asarray(values, dtype=float)], lambda g: float(np.mean(g[0])), seed=seed)


def paired_gain(before: Sequence[float], after: Sequence[float], seed: int = 0) -> Estimate:
    """The mean of ``after[i] - before[i]`` over instances ``i`` (the same instances, in the
    same order, played before and after training) with a 95% percentile bootstrap interval
    that resamples the pairs: far tighter than two intervals compared side by side, since
    what an instance makes easy or hard cancels out of its difference."""
    if len(before) != len(after):
        raise ValueError(f"paired_gain: {len(before)} values before but {len(after)} after; "
                         "play both evaluations on the same instances")
    gains = np.asarray(after, dtype=float) - np.asarray(before, dtype=float)
    return bootstrap([gains], lambda g: float(np.mean(g[0])), seed=seed)


def above_zero(gain: Estimate) -> bool:
    """True when ``gain``'s 95% interval lies wholly above 0."""
    return gain.lo > 0.0


def apart(before: Estimate, after: Estimate) -> bool:
    """True when ``after``'s interval lies wholly above ``before``'s."""
    return after.lo > before.hi


#: live episodes in a test evaluation
LIVE = 32


def play_test(agents: dict[str, Any], seats: dict[str, str], game: str, n: int, *, level: str | None = None,
              seed: int = TEST_SEED, max_new_tokens: int = 64, game_options: dict[str, Any] | None = None,
              split: str = "test", live: int = LIVE) -> list[Episode]:
    """``n`` greedy episodes of ``game`` on held-out test instances ``seed, seed + 1, ...``
    (the same seeds always draw the same instances, so two calls pair up episode by episode),
    at most :data:`LIVE` at once: one batch of the transformers backend, which goes as fast
    as more live episodes in several batches, and whose chats then fit the backend's store
    of keys and values (a seat's later turns run only their new tokens). ``split="train"``
    with ``seed=VALIDATION_SEED`` plays validation instances instead."""
    specs = [EpisodeSpec(game, seed=seed + i, seats=seats, split=split, level=level, game_options=dict(game_options or {}))
             for i in range(n)]
    engine = RolloutEngine(agents, sampling=Sampling(temperature=0.0, max_new_tokens=max_new_tokens), max_concurrent=live)
    return engine.run(specs)


def warm_start(trainer: Any, game: str, seats: Sequence[str], instances: int, steps: int, lr: float, out: Path, *,
               player: str = "scripted", min_reward: float = 1.0, game_options: dict[str, Any] | None = None) -> int:
    """An SFT warm start of ``trainer``'s adapter (TRL's SFTTrainer, 8 rows a step): the
    replies of ``player`` (a scripted player's spec) in ``seats`` on train instances
    ``0 .. instances - 1``, with ``player`` in every seat, from the episodes where the seat
    earned at least ``min_reward`` (``-inf``: every reply); the loss is on the replies only.
    Returns the rows fitted."""
    from dialogym.agents.specs import load_agent
    from dialogym.envs import spec
    from dialogym.trainers.preference import sft_set, train_sft

    roles = spec(game).game_cls.roles
    scripted = load_agent(player)
    demos = RolloutEngine({f"scripted-{role}": scripted for role in roles}).run(
        [EpisodeSpec(game, seed=i, seats={role: f"scripted-{role}" for role in roles}, split="train",
                     game_options=dict(game_options or {})) for i in range(instances)])
    rows = sft_set(demos, [f"scripted-{seat}" for seat in seats], per_turn=True, min_reward=min_reward)
    if not rows:
        raise ValueError(f"{game}: {player} earned {min_reward:g} in none of {instances} train instances: no warm-start rows")
    train_sft(trainer.model, trainer.agent.tokenizer, rows, out, max_steps=steps, per_device_train_batch_size=8,
              learning_rate=lr, lr_scheduler_type="constant", use_cpu=True, logging_steps=max(1, steps // 4),
              disable_tqdm=True)
    trainer.model.eval()
    return len(rows)


def machine() -> dict[str, Any]:
    """The CPU model, core count and library versions of this machine, and whether its CPU
    computes in bf16 natively (``cpu_bf16``: models then play and train in bf16 there, in
    float32 elsewhere; the same recipe and seed give other draws, and other times, on each)."""
    import torch

    from dialogym.agents.hf.device import cpu_supports_bf16

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": model, "cores": cores, "gpu": gpu, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "cpu_bf16": cpu_supports_bf16()}


def commit() -> str:
    """The git commit of the repository holding the current directory (with ``+dirty`` when
    its tracked files have changes), or "unknown" outside one. Recipes are run from a
    dialogym checkout; the installed package's own folder says nothing (a wheel has no git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _load() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def is_clean(commit_id: str) -> bool:
    """True for a known commit with no uncommitted changes to tracked files."""
    return commit_id != "unknown" and not commit_id.endswith("+dirty")


class Clock:
    """Wall time since the recipe started, and whether a budget in minutes is spent. Made at
    the start of a run, it warns at once when the tree has uncommitted changes (the results
    file then records ``"clean": false``)."""

    def __init__(self, budget_minutes: float) -> None:
        self.started, self.budget = time.perf_counter(), 60.0 * budget_minutes
        #: the commit the run started from, and the machine's load then (other jobs slow it)
        self.commit, self.load_at_start = commit(), _load()
        if self.commit.endswith("+dirty"):
            print("warning: this tree has uncommitted changes: the results file will say so; "
                  "commit first for results you publish", flush=True)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.budget - self.seconds


def train(trainer: Any, clock: Clock, steps: int, evaluate: Callable[[int], Sequence[float]], *, curve_every: int,
          curve_episodes: int, reserve: float, final_episodes: int = 0) -> tuple[list[dict[str, float]], list[tuple[int, Estimate]]]:
    """Up to ``steps`` training steps of ``trainer``, with the curve's score
    (``evaluate(n)``: per-episode values on ``n`` held-out instances, validation ones where a
    recipe chooses settings by the curve) at step 0 and every
    ``curve_every`` steps. It stops early when the next step would eat into ``reserve``
    seconds (what the final evaluation needs) of the budget, or when ``CONVERGED_STEPS``
    steps in a row had only flat groups (every play of each instance scored alike: the
    advantages, and so the gradient, are zero). Each curve point also re-estimates the final
    evaluation of ``final_episodes``: episodes can grow longer as the policy changes (a
    negotiator that holds out plays all its turns), so the reserve grows with them. Returns
    every step's metrics and the curve's points."""
    curve = [(0, estimate(evaluate(curve_episodes)))] if curve_every else []
    history: list[dict[str, float]] = []
    for step in range(steps):
        history += trainer.train(1, log=False)
        h = history[-1]
        print(f"step {step + 1}: reward {h['mean_reward']:.3f} loss {h['loss']:+.4f} clip {h.get('clip_fraction', 0):.3f} "
              f"flat groups {h.get('flat_groups', 0):.2f} |A| {h.get('mean_abs_advantage', 0):.2f} ({h['seconds']:.0f} s)",
              flush=True)
        if curve_every and (step + 1) % curve_every == 0:
            started = clock.seconds
            curve.append((step + 1, estimate(evaluate(curve_episodes))))
            print(f"  curve score at step {step + 1}: {fmt(curve[-1][1])}", flush=True)
            reserve = max(reserve, (clock.seconds - started) * final_episodes / max(curve_episodes, 1))
        if clock.left() < reserve + 1.5 * h["seconds"]:
            print(f"stopping after {step + 1} steps: the time budget is spent", flush=True)
            break
        if len(history) >= CONVERGED_STEPS and all(h.get("flat_groups", 0.0) == 1.0 for h in history[-CONVERGED_STEPS:]):
            print(f"stopping after {step + 1} steps: in the last {CONVERGED_STEPS} no group had any reward variance, "
                  "so there is no gradient left", flush=True)
            break
    return history, curve


def plot_curves(path: Path, title: str, history: Sequence[dict[str, float]], held_out: Sequence[tuple[int, Estimate]],
                *, reward_label: str = "training reward", score_label: str = "held-out score",
                marks: dict[str, Estimate] | None = None) -> Path:
    """Training reward per step and the held-out score (with its interval) at the steps it
    was measured, side by side, as a PNG file written atomically. ``marks`` are drawn on
    the held-out side as labelled horizontal lines (the base model's score, say)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = [int(h["step"]) + 1 for h in history]
    rewards = [h["mean_reward"] for h in history]
    left.plot(steps, rewards, marker=".", color="tab:blue", alpha=0.5, label="per step")
    if len(rewards) >= 5:
        k = 5
        smooth = np.convolve(rewards, np.ones(k) / k, mode="valid")
        left.plot(steps[k - 1:], smooth, color="tab:blue", label=f"mean of {k}")
    left.set(xlabel="step", ylabel=reward_label, title="training")
    left.legend(loc="best", fontsize=8)
    if held_out:
        xs = [s for s, _ in held_out]
        ys = [e.value for _, e in held_out]
        lo = [e.value - e.lo for _, e in held_out]
        hi = [e.hi - e.value for _, e in held_out]
        right.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color="tab:green", label="at the step")
    for (label, mark), style in zip((marks or {}).items(), ("--", ":", "-."), strict=False):
        right.axhline(mark.value, color="grey", linestyle=style, label=f"{label}: {mark.value:.3f}")
    if held_out or marks:
        right.legend(loc="best", fontsize=8)
    right.set(xlabel="step", ylabel=score_label, title="held-out test instances (95% interval)")
    fig.suptitle(title)
    return save_png(fig, path)


def save_png(fig, path: Path) -> Path:
    """``fig`` as a PNG file written atomically (a kill never leaves half a file); closes it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def write_results(path: Path, recipe: str, clock: Clock, *, module: str | None = None, **fields: Any) -> Path:
    """``docs/results/<recipe>.json``: the command (of ``dialogym.trainers.recipes.<module>``,
    by default ``<recipe>``), the commit and whether it was clean (no uncommitted changes:
    published results must be), the machine and wall time, then ``fields`` (Estimates
    written as value/lo/hi/n)."""

    def plain(value: Any) -> Any:
        if isinstance(value, Estimate):
            return value.as_dict()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    record = {
        "recipe": recipe,
        "command": " ".join(shlex.quote(a) for a in ["python", "-m", f"dialogym.trainers.recipes.{module or recipe}",
                                                      *sys.argv[1:]]),
        "commit": clock.commit,
        "clean": is_clean(clock.commit),
        "load_average": {"start": clock.load_at_start, "end": _load()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "wall_seconds": round(clock.seconds, 1),
        **{k: plain(v) for k, v in fields.items()},
    }
    return atomic_write_json(path, record)


def fmt(e: Estimate, digits: int = 3) -> str:
    """``value [lo, hi]``."""
    return f"{e.value:.{digits}f} [{e.lo:.{digits}f}, {e.hi:.{digits}f}]"


def report(label: str, before: Estimate, after: Estimate) -> str:
    """One line: before -> after with intervals and whether the intervals are apart."""
    gap = "intervals apart" if apart(before, after) else "intervals overlap"
    return f"{label}: before {fmt(before)} -> after {fmt(after)} (n={after.n}; {gap})"


__all__ = ["TEST_SEED", "VALIDATION_SEED", "Clock", "above_zero", "apart", "commit", "estimate", "fmt", "grpo_parser",
           "is_clean", "machine", "paired_gain", "play_test", "plot_curves", "save_png", "report", "train", "warm_start",
           "write_results"]
