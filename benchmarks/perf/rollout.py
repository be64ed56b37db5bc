"""Rollout performance, printed as ratios measured side by side in one run.

- ``rollout_efficiency``: generated tokens/s through the engine (N concurrent episodes of
  the referential game) divided by tokens/s of raw batched ``generate`` on the same
  prompts, with each batch forced to the same lengths. 1.0 means the engine adds nothing.
- ``concurrency_speedup``: wall time of the same N episodes played one at a time,
  divided by the engine's time playing them all at once.
- ``rollout_mfu``: model FLOPs per second of the engine run over the peak of a matrix
  product measured in the same run (a 2048x2048 product in the model's dtype: float32,
  or bf16 where the CPU has native bf16; 8192x8192 on a GPU). Model FLOPs count what
  the replies need, once per token the model is run on (a shared prompt prefix once per
  batch, keys and values kept from earlier calls never, padding never), with ``N`` the non-embedding parameters, ``L`` layers, ``d`` the
  query width (heads x head size), ``d_model`` and ``V`` the vocabulary:
  ``2 N`` per token run, ``+ 4 L d t`` for its attention over ``t`` positions (QK and AV),
  ``+ 2 d_model V`` per generated token (the output projection; prefill computes logits for
  a row's last position only).
- ``guided`` (``--guided``): per seat, the time of one batch of guided replies (the seat's
  move grammar, one request per instance) over the time of free replies forced to the same
  lengths; ``guided_overhead`` 1.0 means grammar masks cost nothing.

``--game`` picks the game (default the one-exchange reference game; e.g.
``--game dialogym/Negotiation-v0`` for ten turns of item division, whose later prompts carry the
whole conversation).

``--model random:NAME`` times a random-weight model of a real architecture
(:data:`dialogym.agents.models.RANDOM_CONFIGS`: smollm2, qwen2-0.5b, tiny) on a machine
that holds no weights; with ``--force-length`` every reply takes the same number of tokens,
so the timings do not depend on the weights.

    python -m dialogym.benchmarks.perf.rollout --model smollm2 --episodes 32
    python -m dialogym.benchmarks.perf.rollout --model smollm2 --episodes 32 --game dialogym/Negotiation-v0
    python -m dialogym.benchmarks.perf.rollout --model random:qwen2-0.5b --device cuda --force-length --guided
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from dialogym.agents.base import Request, Sampling
from dialogym.agents.hf import TransformersAgent, inference_dtype, pick_device
from dialogym.agents.models import random_model
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine, request_for
from dialogym.agents.specs import load_agent
from dialogym.envs import new_match, resolve_ids, spec
from dialogym.envs.files import atomic_write_json
from dialogym.envs.grammar import grammar, text

GAME = "dialogym/Reference-v0"
#: grammars for the guided timing where the game has no move grammar (yet)
FALLBACK_GRAMMARS = {"speaker": grammar(f'"CLUE: " {text(120, exclude="0-9")}'), "listener": grammar('"ANSWER: " /[1-9]/')}


class Capture:
    """Wraps an agent and records every batch it is asked (prompts), what it generated, and
    the token counts model FLOPs are counted from (the prompt positions the model ran,
    prompt lengths, reply lengths)."""

    def __init__(self, agent):
        self.agent, self.name, self.batches, self.shapes = agent, agent.name, [], []

    def act(self, requests: list[Request]):
        replies = self.agent.act(requests)
        lengths = [len(r.token_ids or []) for r in replies]
        self.batches.append(([r.messages for r in requests], requests[0].sampling, lengths))
        prompts = [r.prompt_token_ids or [] for r in replies]
        self.shapes.append((list(self.agent.last_prefill), [len(p) for p in prompts], lengths))
        return replies


def model_flops(model, shapes) -> float:
    """Model FLOPs of the batches ``shapes`` (prompt spans run, prompt lengths, reply
    lengths) by the formula of the module docstring. Every generated token but the last is
    counted as run: replies decoded jump-forward (guided literal moves, where the forced
    tokens are written without running the model) are over-counted; the default game's
    replies are free text and are not."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    params = {id(p): p.numel() for p in model.parameters()}
    non_embedding = sum(params.values()) - embed.numel() - (head.weight.numel() if head is not None and head.weight is not embed else 0)
    layers, d_model, vocab = config.num_hidden_layers, config.hidden_size, embed.shape[0]
    width = config.num_attention_heads * (getattr(config, "head_dim", None) or d_model // config.num_attention_heads)

    def positions(first: int, last: int) -> int:  # sum of t for t in first..last
        return (first + last) * (last - first + 1) // 2 if last >= first else 0

    run, attended, generated = 0, 0, 0
    for spans, prompt_lengths, reply_lengths in shapes:
        for start, end in spans:  # prompt positions run: rows' suffixes, shared prefixes
            run += end - start
            attended += positions(start + 1, end)
        for prompt, reply in zip(prompt_lengths, reply_lengths, strict=True):
            end = prompt + max(reply - 1, 0)  # the last generated token is never run
            run += end - prompt
            attended += positions(prompt + 1, end)
            generated += reply
    return 2 * non_embedding * run + 4 * layers * width * attended + 2 * d_model * vocab * generated


def matmul_peak(device: str, dtype) -> float:
    """FLOP/s of the best of five square matrix products in ``dtype`` on ``device``."""
    size = 8192 if str(device).startswith("cuda") else 2048
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(6):  # the first is a warm-up
        started = time.perf_counter()
        torch.mm(a, b)
        if str(device).startswith("cuda"):
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def build_agent(model: str, device: str | None) -> TransformersAgent:
    """``random:NAME`` is :func:`~dialogym.agents.models.random_model` ``NAME`` (bf16 on GPUs);
    anything else is a model spec."""
    if not model.startswith("random:"):
        return load_agent(model, **({"device": device} if device else {}))
    device = pick_device(device)
    net, tokenizer = random_model(model.removeprefix("random:"), device=device, dtype=inference_dtype(device, None))
    return TransformersAgent(net, tokenizer, name=model, device=device)


@contextmanager
def forced_length(agent, tokens: int | None) -> Iterator[None]:
    """Inside, ``generate`` masks end-of-sequence until a reply has ``tokens`` tokens, so
    (without stop strings) every reply takes ``min(tokens, max_new_tokens)``; None: free."""
    config = agent.model.generation_config
    before, config.min_new_tokens = config.min_new_tokens, tokens
    try:
        yield
    finally:
        config.min_new_tokens = before


def synchronize(agent) -> None:
    """Wait for the agent's GPU, so a timer read afterwards covers the kernels launched."""
    if str(agent.device).startswith("cuda"):
        torch.cuda.synchronize(agent.device)


def guided_seats(game: str) -> list[str]:
    """The seats ``--guided`` times: both of the reference game, else those that open the game."""
    return ["speaker", "listener"] if game == GAME else new_match(game, 0, split="test").to_act()


def seat_requests(seat: str, episodes: int, max_new_tokens: int, game: str = GAME) -> list[Request]:
    """One guided request of ``seat`` per instance, with its move grammar (in the reference
    game, the listener's after a fixed clue)."""
    requests = []
    for seed in range(episodes):
        match = new_match(game, seed, split="test")
        if game == GAME and seat == "listener":
            match.submit("speaker", "CLUE: the red one")
        request = request_for(match, seat, Sampling(temperature=0.0, max_new_tokens=max_new_tokens, guided=True))
        request.grammar = match.move_grammar(seat) or (FALLBACK_GRAMMARS[seat] if game == GAME else None)
        requests.append(request)
    return requests


def guided_vs_free(agent, requests: list[Request], reps: int) -> dict:
    """Medians of one guided batch and of the same batch free, forced to the guided one's
    longest reply (``generate`` runs that many steps either way), interleaved."""
    agent.act(requests[:1])  # warm-up
    guided_times, free_times = [], []
    for _ in range(reps):
        started = time.perf_counter()
        replies = agent.act(requests)
        synchronize(agent)
        guided_times.append(time.perf_counter() - started)
        lengths = [len(r.token_ids or []) for r in replies]
        steps = max(max(lengths), 1)
        free = [replace(r, sampling=r.sampling.with_(guided=False, max_new_tokens=steps)) for r in requests]
        with forced_length(agent, steps):
            started = time.perf_counter()
            agent.act(free)
            synchronize(agent)
            free_times.append(time.perf_counter() - started)
    guided_s, free_s = statistics.median(guided_times), statistics.median(free_times)
    return {
        "requests": len(requests), "reply_tokens_mean": round(statistics.mean(lengths), 1), "reply_tokens_max": steps,
        "guided_s": round(guided_s, 3), "free_s": round(free_s, 3), "guided_overhead": round(guided_s / free_s, 3),
    }


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
        synchronize(agent)
        total += time.perf_counter() - started
    return total


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="a model spec, or random:NAME (smollm2, qwen2-0.5b, tiny)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda where there is one)")
    parser.add_argument("--game", default=GAME, help="a game id or short name (default: the reference game)")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--reps", type=int, default=2, help="engine/raw repetitions, interleaved; medians are reported")
    parser.add_argument("--skip-sequential", action="store_true", help="measure rollout_efficiency only")
    parser.add_argument("--force-length", action="store_true",
                        help="every reply takes --max-new-tokens tokens (the game's cap at most): end-of-sequence is masked until then")
    parser.add_argument("--guided", action="store_true", help="also time guided replies against free ones of the same lengths, per seat")
    parser.add_argument("--out", type=Path, help="also write the result to this JSON file")
    return parser


def timed_run(engine: RolloutEngine, agent, specs: list[EpisodeSpec], forced: int | None) -> float:
    """Seconds ``engine`` takes to play ``specs`` from an empty key/value store, every reply
    forced to ``forced`` tokens (None: free)."""
    agent.clear_kv_store()  # every timed run starts from nothing kept
    with forced_length(agent, forced):
        started = time.perf_counter()
        engine.run(specs)
        synchronize(agent)
        return time.perf_counter() - started


def engine_vs_raw(agent, specs: list[EpisodeSpec], sampling: Sampling, forced: int | None, reps: int) -> tuple[dict, float]:
    """The engine playing ``specs`` against raw batched ``generate`` on the batches it asked
    for, medians of ``reps`` runs each: the result's fields (tokens, times,
    ``rollout_efficiency`` and MFU) and the engine's median seconds, unrounded."""
    # Engine and raw runs alternate, so load from other processes hits both alike.
    engine_times, raw_times, flops = [], [], 0.0
    for _ in range(reps):
        capture = Capture(agent)
        engine = RolloutEngine({"m": capture}, sampling=sampling)
        engine_times.append(timed_run(engine, agent, specs, forced))
        raw_times.append(raw_generate_seconds(agent, capture.batches))
        flops = model_flops(agent.model, capture.shapes)
    peak = matmul_peak(agent.device, agent.model.dtype)
    engine_s, raw_s = statistics.median(engine_times), statistics.median(raw_times)
    tokens = engine.stats.generated_tokens
    fields = {
        "generated_tokens": tokens,
        "prompt_tokens": sum(sum(lengths) for _, lengths, _ in capture.shapes),
        "prompt_tokens_run": sum(end - start for spans, _, _ in capture.shapes for start, end in spans),
        "engine_s": round(engine_s, 2),
        "engine_tok_per_s": round(tokens / engine_s, 1),
        "raw_generate_s": round(raw_s, 2),
        "raw_tok_per_s": round(tokens / raw_s, 1),
        "rollout_efficiency": round(raw_s / engine_s, 3),
        "model_flops": round(flops),
        "model_flops_per_s": round(flops / engine_s),
        "matmul_peak_flops_per_s": round(peak),
        "rollout_mfu": round(flops / engine_s / peak, 4),
    }
    return fields, engine_s


def guided_timings(agent, game: str, episodes: int, max_new_tokens: int, reps: int) -> dict:
    """The grammar tokenizer's build time, and per seat with a move grammar, guided against free replies."""
    started = time.perf_counter()
    agent.grammar_tokenizer()  # built once per tokenizer; not part of a batch's time
    result = {"grammar_tokenizer_s": round(time.perf_counter() - started, 2), "guided": {}}
    for seat in guided_seats(game):
        requests = seat_requests(seat, episodes, max_new_tokens, game)
        if all(r.grammar for r in requests):  # a seat without a grammar has nothing to time
            result["guided"][seat] = guided_vs_free(agent, requests, reps)
    return result


def main() -> None:
    args = build_parser().parse_args()
    game = resolve_ids(args.game)[0]
    agent = build_agent(args.model, args.device)
    sampling = Sampling(temperature=0.0, max_new_tokens=args.max_new_tokens)
    game_cls = spec(game).game_cls
    forced = min(args.max_new_tokens, game_cls.max_reply_tokens) if args.force_length else None
    specs = [
        EpisodeSpec(game=game, seed=i, seats=dict.fromkeys(game_cls.roles, "m"), split="test")
        for i in range(args.episodes)
    ]
    agent.act([Request(messages=[{"role": "user", "content": "warm up"}], sampling=sampling)])
    timings, engine_s = engine_vs_raw(agent, specs, sampling, forced, args.reps)
    result = {
        "model": args.model,
        "game": game,
        "device": torch.cuda.get_device_name(agent.device) if str(agent.device).startswith("cuda") else str(agent.device),
        "dtype": str(agent.model.dtype),
        "episodes": args.episodes,
        "forced_reply_tokens": forced,
        "threads": torch.get_num_threads(),
        **timings,
    }
    if not args.skip_sequential:
        sequential_s = timed_run(RolloutEngine({"m": agent}, sampling=sampling, max_concurrent=1), agent, specs, forced)
        result["sequential_s"] = round(sequential_s, 2)
        result["concurrency_speedup"] = round(sequential_s / engine_s, 2)
    if args.guided:
        result.update(guided_timings(agent, game, args.episodes, args.max_new_tokens, args.reps))
    print(json.dumps(result, indent=1))
    if args.out:
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
