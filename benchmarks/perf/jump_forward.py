"""Jump-forward decoding of literal moves: guided Kuhn Poker matches played with the tokens a
move's mask forces written without running the model (``jump_forward=True``, the default) and
decoded one step at a time (``jump_forward=False``), side by side in one run.

The model plays greedy, guided 4-hand matches against itself, every instance in both seat
orders, through the rollout engine; with ``--adapters``, two random LoRA adapters on it play
each other through an :class:`~dialogym.agents.adapters.AdapterBank`, as a league's paired
evaluations and payoff table play (each engine call serves one adapter). A
Kuhn move is ``[``, the move's word, ``]`` and end of sequence: step by step that is a prefill
and three decoding steps; jumping forward it is one prefill with ``[`` appended. The replies are
the same up to float rounding (the share of episodes whose every token matches is reported).
Each setting runs ``--reps`` times, interleaved, after one warm-up run of each; medians are
reported, and ``speedup`` is step-by-step seconds over jump-forward seconds (> 1: it pays).

    python -m dialogym.benchmarks.perf.jump_forward --model smollm2 --episodes 16
    python -m dialogym.benchmarks.perf.jump_forward --model smollm2 --episodes 16 --adapters
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

GAME = "dialogym/KuhnPoker-v0"
SEATS = ("player_0", "player_1")


def play(agent: Any, players: dict[str, Any], jump: bool, instances: int) -> tuple[float, list]:
    """(seconds, each episode's turns' token ids) of one paired evaluation between the two
    ``players`` (agents on ``agent``'s model), with its key/value store emptied first (both
    settings start cold)."""
    from dialogym.agents.base import Sampling
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine

    agent.jump_forward = jump
    agent.clear_kv_store()
    names = list(players) * (3 - len(players))  # one player: it takes both seats
    specs = [EpisodeSpec(game=GAME, seed=seed, seats=dict(zip(SEATS, order, strict=True)), split="test", game_options={"hands": 4})
             for seed in range(instances) for order in (names, names[::-1])]
    started = time.perf_counter()
    played = RolloutEngine(players, sampling=Sampling(temperature=0.0, max_new_tokens=8), max_concurrent=32).run(specs)
    return time.perf_counter() - started, [[t.token_ids for t in e.turns] for e in played]


def main(argv: list[str] | None = None) -> dict:
    from dialogym.agents.specs import load_agent

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="model spec (smollm2, tiny, hf:<folder>); played guided")
    parser.add_argument("--episodes", type=int, default=16, help="episodes of each run (instances x 2 seat orders)")
    parser.add_argument("--reps", type=int, default=2, help="timed runs of each setting; the median is reported")
    parser.add_argument("--adapters", action="store_true", help="two random LoRA adapters on the model play each other")
    args = parser.parse_args(argv)
    if args.episodes < 2 or args.episodes % 2 or args.reps < 1:
        parser.error("--episodes must be even and at least 2, --reps at least 1")
    instances = args.episodes // 2
    runs: dict[bool, list[tuple[float, list]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as scratch:
        if args.adapters:
            from dialogym.agents.adapters import AdapterBank

            from .adapter_swap import adapters

            agent = adapters(args.model, Path(scratch))
            bank = AdapterBank(agent)
            players = {name: bank.agent(name, str(Path(scratch) / name), guided=True) for name in ("a", "b")}
        else:
            agent = load_agent(f"{args.model}+guided", dtype="float32")
            players = {"model": agent}
        for jump in (True, False):  # warm-up: first calls, kernels, the grammar tokenizer
            play(agent, players, jump, max(1, instances // 4))
        for _ in range(args.reps):
            for jump in runs:
                runs[jump].append(play(agent, players, jump, instances))
    jumped, stepped = runs[True][0][1], runs[False][0][1]
    same = sum(a == b for a, b in zip(jumped, stepped, strict=True))
    result: dict[str, Any] = {"model": args.model, "adapters": args.adapters, "game": GAME, "hands": 4, "episodes": args.episodes,
                              "identical_episodes": f"{same}/{len(jumped)}"}
    for jump, timed in runs.items():
        result["jump_forward" if jump else "step_by_step"] = {"seconds": round(statistics.median(t for t, _ in timed), 3)}
    result["speedup"] = round(result["step_by_step"]["seconds"] / result["jump_forward"]["seconds"], 2)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
