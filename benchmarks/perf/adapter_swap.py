"""Key/value reuse across LoRA adapter swaps: a league's paired evaluation, timed with the
KV store keeping one state of the weights (emptied at every swap, as before 2026-12-07) and
keeping several (a shelf per adapter), side by side in one run.

Two LoRA adapters (random, non-zero) on one base model play paired 4-hand Kuhn Poker matches
against each other through an :class:`~dialogym.agents.adapters.AdapterBank`, greedy and
guided, every instance in both seat orders: each engine call serves one adapter, so the
adapters take turns. The replies are the same both ways (checked: the runs must give the same
episodes); what differs is how many prompt tokens come from the store instead of a prefill.
Each setting runs ``--reps`` times, interleaved, after one warm-up run; medians are reported,
and ``speedup`` is one shelf's seconds over several shelves' (> 1: the shelves pay).

    python -m dialogym.benchmarks.perf.adapter_swap --model smollm2 --episodes 16
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


def adapters(model: str, folder: Path) -> Any:
    """Save two random LoRA adapters of ``model``, ``a`` and ``b``, under ``folder``, and
    return a fresh agent of ``model`` with no adapter yet (the bank loads them onto it)."""
    import peft

    from dialogym.agents.specs import load_agent

    donor = load_agent(model, dtype="float32")
    lora = peft.get_peft_model(donor.model, peft.LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    for name in ("a", "b"):
        lora.save_pretrained(folder / name, selected_adapters=["default"])
        for key, parameter in lora.named_parameters():  # the second adapter's update is the first's negated
            if "lora_B" in key:
                parameter.data.mul_(-1)
    return load_agent(model, dtype="float32")


def play(base: Any, folder: Path, keys: int, instances: int) -> tuple[float, int, list]:
    """(seconds, reused prompt tokens, each episode's turns' token ids) of one paired
    evaluation with a KV store of ``keys`` shelves."""
    from dialogym.agents.adapters import AdapterBank
    from dialogym.agents.base import Sampling
    from dialogym.agents.hf.kvstore import KVStore
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine

    base.store = KVStore(base.store.budget_bytes, base.store.idle_calls, keys=keys)
    bank = AdapterBank(base)
    agents = {name: bank.agent(name, str(folder / name), guided=True) for name in ("a", "b")}
    specs = [EpisodeSpec(game=GAME, seed=seed, seats=dict(zip(SEATS, order, strict=True)), split="test")
             for seed in range(instances) for order in (("a", "b"), ("b", "a"))]
    reused = base.reused_prompt_tokens
    started = time.perf_counter()
    played = RolloutEngine(agents, sampling=Sampling(temperature=0.0, max_new_tokens=8), max_concurrent=32).run(specs)
    seconds = time.perf_counter() - started
    return seconds, base.reused_prompt_tokens - reused, [[t.token_ids for t in e.turns] for e in played]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="base model spec (smollm2, tiny, hf:<folder>)")
    parser.add_argument("--episodes", type=int, default=16, help="episodes of each run (instances x 2 seat orders)")
    parser.add_argument("--reps", type=int, default=2, help="timed runs of each setting; the median is reported")
    parser.add_argument("--keys", type=int, default=4, help="shelves of the store compared with one")
    args = parser.parse_args(argv)
    if args.episodes < 2 or args.episodes % 2 or args.reps < 1 or args.keys < 2:
        parser.error("--episodes must be even and at least 2, --reps at least 1, --keys at least 2")
    instances = args.episodes // 2
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        base = adapters(args.model, folder)
        play(base, folder, args.keys, max(1, instances // 4))  # warm-up: first calls, kernels
        runs: dict[int, list[tuple[float, int, list]]] = {1: [], args.keys: []}
        for _ in range(args.reps):
            for keys in runs:
                runs[keys].append(play(base, folder, keys, instances))
    replies = {keys: timed[0][2] for keys, timed in runs.items()}
    if replies[1] != replies[args.keys]:
        raise RuntimeError("the replies differ with and without the shelves: key/value reuse changed what was generated")
    result: dict[str, Any] = {"model": args.model, "game": GAME, "episodes": args.episodes}
    for keys, timed in runs.items():
        result[f"shelves_{keys}"] = {"seconds": round(statistics.median(t for t, _, _ in timed), 3),
                                     "reused_prompt_tokens": timed[0][1]}
    result["speedup"] = round(result["shelves_1"]["seconds"] / result[f"shelves_{args.keys}"]["seconds"], 2)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
