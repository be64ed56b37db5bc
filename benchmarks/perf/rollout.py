"""Rollout performance, printed as ratios measured side by side in one run.

- ``rollout_efficiency``: generated tokens/s through the engine (N concurrent episodes of
  the referential game) divided by tokens/s of raw batched ``generate`` on the same
  prompts, with each batch forced to the same lengths. 1.0 means the engine adds nothing.
- ``concurrency_speedup``: wall time of the same N episodes played one at a time,
  divided by the engine's time playing them all at once.

    python -m dialogym.benchmarks.perf.rollout --model smollm2 --episodes 32
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from dialogym.agents.base import Request, Sampling
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent


class Capture:
    """Wraps an agent and records every batch it is asked (prompts) and what it generated."""

    def __init__(self, agent):
        self.agent, self.name, self.batches = agent, agent.name, []

    def act(self, requests: list[Request]):
        replies = self.agent.act(requests)
        self.batches.append(([r.messages for r in requests], requests[0].sampling, [len(r.token_ids or []) for r in replies]))
        return replies


def raw_generate_seconds(agent, batches) -> float:
    """Time raw left-padded ``generate`` on the captured batches, each forced to its longest reply."""
    total = 0.0
    for messages, _sampling, lengths in batches:
        prompts = [agent.encode(m) for m in messages]
        width = max(len(p) for p in prompts)
        pad = agent.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=agent.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=agent.device)
        steps = max(max(lengths), 1)
        started = time.perf_counter()
        with torch.no_grad():
            agent.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=steps, min_new_tokens=steps,
                do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=pad,
            )
        total += time.perf_counter() - started
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2, help="engine/raw repetitions, interleaved; medians are reported")
    parser.add_argument("--skip-sequential", action="store_true", help="measure rollout_efficiency only")
    args = parser.parse_args()

    agent = load_agent(args.model)
    sampling = Sampling(temperature=0.0, max_new_tokens=args.max_new_tokens)
    specs = [
        EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats={"speaker": "m", "listener": "m"}, split="test")
        for i in range(args.episodes)
    ]
    agent.act([Request(messages=[{"role": "user", "content": "warm up"}], sampling=sampling)])

    # Engine and raw runs alternate, so load from other processes hits both alike.
    engine_times, raw_times = [], []
    for _ in range(args.reps):
        capture = Capture(agent)
        engine = RolloutEngine({"m": capture}, sampling=sampling)
        started = time.perf_counter()
        engine.run(specs)
        engine_times.append(time.perf_counter() - started)
        raw_times.append(raw_generate_seconds(agent, capture.batches))
    engine_s, raw_s = statistics.median(engine_times), statistics.median(raw_times)
    tokens = engine.stats.generated_tokens
    result = {
        "model": args.model,
        "dtype": str(agent.model.dtype),
        "episodes": args.episodes,
        "threads": torch.get_num_threads(),
        "generated_tokens": tokens,
        "engine_s": round(engine_s, 2),
        "engine_tok_per_s": round(tokens / engine_s, 1),
        "raw_generate_s": round(raw_s, 2),
        "raw_tok_per_s": round(tokens / raw_s, 1),
        "rollout_efficiency": round(raw_s / engine_s, 3),
    }
    if not args.skip_sequential:
        sequential = RolloutEngine({"m": agent}, sampling=sampling, max_concurrent=1)
        started = time.perf_counter()
        sequential.run(specs)
        sequential_s = time.perf_counter() - started
        result["sequential_s"] = round(sequential_s, 2)
        result["concurrency_speedup"] = round(sequential_s / engine_s, 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
