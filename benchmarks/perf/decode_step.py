"""One decoding step of a model on CPU, with PyTorch's linear layers and with the
transposed few-row product of :mod:`dialogym.agents.hf.cpu_kernels`, side by side.

For each batch size, a forward pass of one token per row (no cache: the weights, which a
step reads whatever the batch, dominate) is timed both ways, interleaved, best of
``--reps``; ``speedup`` is PyTorch's time over the transposed one (> 1: the backend's
choice pays). It also prints ``skinny_gain``, the measurement the backend decides by.

    python -m dialogym.benchmarks.perf.decode_step --model smollm2 --batches 1,2,4,8,32
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="model spec (a transformers model)")
    parser.add_argument("--batches", default="1,2,4,8,32", help="comma-separated batch sizes")
    parser.add_argument("--reps", type=int, default=5, help="timed passes per batch size and form")
    args = parser.parse_args(argv)
    try:
        batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        parser.error(f"--batches takes whole numbers separated by commas, not {args.batches!r}")

    import torch
    from torch import nn

    from dialogym.agents.hf.cpu_kernels import SkinnyLinear, plain_linears, skinny_gain
    from dialogym.agents.specs import load_agent

    agent = load_agent(args.model, device="cpu", skinny_linears=False)
    model = agent.model
    linears = plain_linears(model)
    largest = max(linears, key=lambda m: m.weight.numel())

    def step_ms(ids: torch.Tensor, skinny: bool) -> float:
        for module in linears:
            module.__class__ = SkinnyLinear if skinny else nn.Linear
        with torch.no_grad():
            model(input_ids=ids)
            times = []
            for _ in range(args.reps):
                start = time.perf_counter()
                model(input_ids=ids)
                times.append(time.perf_counter() - start)
        return min(times) * 1000

    rows = []
    for batch in batches:
        ids = torch.randint(0, model.config.vocab_size, (batch, 1))
        plain, skinny = step_ms(ids, False), step_ms(ids, True)
        rows.append({"batch": batch, "linear_ms": round(plain, 1), "transposed_ms": round(skinny, 1),
                     "speedup": round(plain / skinny, 2)})
    result = {
        "model": args.model,
        "threads": torch.get_num_threads(),
        "skinny_gain": round(skinny_gain(largest.out_features, largest.in_features, largest.weight.dtype), 2),
        "steps": rows,
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
