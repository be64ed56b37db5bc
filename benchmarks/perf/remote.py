"""Remote models: the rollout engine against an OpenAI-compatible server of a chosen latency.

A local server (its own process, so its CPU time is not the client's) answers every
request of the referential game with a move both seats accept, after a latency drawn from
the scenario's distribution. The latency of a request is a function of its reply seed, so
every run of the same episodes meets the same latencies, whatever the order they are sent
in. Each scenario plays its episodes as ``dialogym play`` does (self-play of one
``openai:`` model, episodes written to a JSON-lines file) at ``--concurrency`` episodes in
flight, and one episode at a time, and prints, side by side:

- ``vs_ideal``: the latency-bound ideal (the sum of the requests' latencies over the
  requests in flight) over the engine's time; 1.0 is a server kept full with no overhead.
- ``vs_best_schedule``: the best time any engine keeping that many requests in flight
  could reach with these latencies (each episode's requests one after another, episodes
  started in order as a slot frees, no overhead), over the engine's time. Where a few slow
  requests end the run, this is below the ideal for every engine.
- ``ceiling_vs_ideal``: the most ``vs_ideal`` any schedule could reach, even one that knew
  every latency in advance: no run ends before its longest episode (its requests one after
  another) or before the ideal, so the ceiling is the ideal over the larger of the two. With
  the ``tail`` scenario's latencies one episode meets two slow requests (4.0 s), so no engine
  keeping 64 requests out reaches more than 0.76 of the ideal.
- ``vs_sequential``: one-episode-at-a-time play's time over the engine's.
- ``client_cpu_ms_per_request``: the client process's CPU time (every thread) per request.

Scenarios: ``tail`` (90% of requests at 0.2 s, 10% at 2.0 s; 256 episodes), ``fixed``
(0.25 s; 64 episodes), ``instant`` (no latency: the client's own cost; 64 episodes).

    python -m dialogym.benchmarks.perf.remote
    python -m dialogym.benchmarks.perf.remote --scenarios tail --sequential-episodes 32
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

GAME = "dialogym/Reference-v0"
#: A reply both seats of the referential game accept: the speaker reads its first line, the listener the ANSWER line.
MOVE = "CLUE: the red one\nANSWER: 1"


@dataclass(frozen=True)
class Latency:
    """A latency distribution: ``base`` seconds, or ``slow`` seconds for a share ``share`` of requests."""

    base: float
    slow: float = 0.0
    share: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Latency:
        """``fixed:S`` or ``tail:BASE:SLOW:SHARE`` (seconds, seconds, a fraction)."""
        kind, _, rest = text.partition(":")
        try:
            numbers = [float(part) for part in rest.split(":")]
        except ValueError:
            numbers = []
        ok = (kind, len(numbers)) in (("fixed", 1), ("tail", 3)) and all(n >= 0 for n in numbers)
        if not ok or (kind == "tail" and numbers[2] > 1):
            raise ValueError(f"latency {text!r}: write fixed:SECONDS or tail:BASE:SLOW:SHARE, e.g. tail:0.2:2.0:0.1")
        return cls(*numbers)

    def __str__(self) -> str:
        return f"tail:{self.base:g}:{self.slow:g}:{self.share:g}" if self.share else f"fixed:{self.base:g}"

    def scaled(self, factor: float) -> Latency:
        return Latency(self.base * factor, self.slow * factor, self.share)

    def of(self, seed: int | None) -> float:
        """The latency of the request with reply seed ``seed`` (a fresh draw without one)."""
        draw = random.Random(seed).random() if seed is not None else random.random()
        return self.slow if draw < self.share else self.base

    @property
    def mean(self) -> float:
        return self.base * (1 - self.share) + self.slow * self.share


@dataclass(frozen=True)
class Scenario:
    latency: str
    episodes: int


SCENARIOS = {
    "tail": Scenario("tail:0.2:2.0:0.1", 256),
    "fixed": Scenario("fixed:0.25", 64),
    "instant": Scenario("fixed:0", 64),
}


# --------------------------------------------------------------------------- the server
class _Load:
    """What the server saw: requests, their latencies, requests in flight (peak, time-weighted)."""

    def __init__(self) -> None:
        self.requests, self.latency_s, self.in_flight, self.peak, self.connections = 0, 0.0, 0, 0, 0
        self.area, self.since, self.first, self.last = 0.0, 0.0, 0.0, 0.0

    def change(self, step: int) -> None:
        now = time.perf_counter()
        if self.requests == 0 and step > 0:
            self.first = self.since = now
        self.area += self.in_flight * (now - self.since)
        self.since, self.last = now, now
        self.in_flight += step
        self.peak = max(self.peak, self.in_flight)

    def summary(self) -> dict[str, Any]:
        span = self.last - self.first
        return {"requests": self.requests, "latency_s": self.latency_s, "peak_in_flight": self.peak,
                "mean_in_flight": self.area / span if span > 0 else 0.0, "connections": self.connections}


async def _answer(body: bytes, latency: Latency, load: _Load) -> dict[str, Any]:
    seed = json.loads(body).get("seed")
    delay = latency.of(seed)
    load.change(+1)
    load.requests += 1
    load.latency_s += delay
    await asyncio.sleep(delay)
    load.change(-1)
    return {"choices": [{"message": {"role": "assistant", "content": MOVE}, "finish_reason": "stop"}]}


async def _connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: dict[str, Any]) -> None:
    """Serve one keep-alive HTTP/1.1 connection: POST completions, GET /stats, POST /reset."""
    counted = False  # connections that carried a completion (not the stats' own)
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path = head[0].split(" ")[:2]
            length = next((int(v) for k, _, v in (h.partition(":") for h in head[1:]) if k.lower() == "content-length"), 0)
            body = await reader.readexactly(length)
            if path.endswith("/chat/completions"):
                state["load"].connections += not counted
                counted = True
                payload = await _answer(body, state["latency"], state["load"])
            elif path == "/reset" and method == "POST":
                state["load"] = _Load()
                payload = {}
            else:
                payload = state["load"].summary()
            data = json.dumps(payload).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(data), data))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def serve(latency: Latency) -> None:
    """The server: listen on a free loopback port, print it on a line of its own, serve until killed."""

    async def main() -> None:
        state = {"latency": latency, "load": _Load()}
        server = await asyncio.start_server(lambda r, w: _connection(r, w, state), "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


class LatencyServer:
    """The server of :func:`serve` in a process of its own, for a ``with`` block."""

    def __init__(self, latency: Latency) -> None:
        self.latency = latency

    def __enter__(self) -> LatencyServer:
        command = [sys.executable, "-m", "dialogym.benchmarks.perf.remote", "--serve", str(self.latency)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        port = self.process.stdout.readline().strip() if self.process.stdout else ""
        if not port.isdigit():
            self.process.kill()
            raise RuntimeError(f"the latency server did not start (it printed {port!r})")
        self.root = f"http://127.0.0.1:{port}"
        self.url = f"{self.root}/v1"
        return self

    def reset(self) -> None:
        httpx.post(f"{self.root}/reset")

    def load(self) -> dict[str, Any]:
        return httpx.get(f"{self.root}/stats").json()

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(10)


# --------------------------------------------------------------------------- measuring
def play(url: str, episodes: int, concurrency: int, out: Path) -> tuple[float, float, list[Any]]:
    """(seconds, client CPU seconds, episodes) of the rollout engine playing the episodes of
    ``dialogym play reference`` (self-play of the server's model; ``concurrency`` episodes
    at once), each written to ``out`` as it ends. The plan and the agent are made before
    the clocks start."""
    from dialogym.agents.base import Sampling
    from dialogym.agents.rollout import RolloutEngine
    from dialogym.agents.specs import load_agent
    from dialogym.benchmarks.runner import BenchConfig, plan
    from dialogym.envs import EpisodeWriter

    model = f"openai:{url}#latency"
    config = BenchConfig(games=[GAME], models=[model], episodes=episodes, concurrency=concurrency, temperature=0.7)
    specs = plan(config.resolved(out))
    sampling = Sampling(temperature=config.temperature, max_new_tokens=config.max_new_tokens, guided_game_cap=True)
    engine = RolloutEngine({model: load_agent(model)}, sampling=sampling, max_concurrent=concurrency)
    with EpisodeWriter(out / "episodes.jsonl") as writer:
        wall, cpu = time.perf_counter(), time.process_time()
        played = engine.run(specs, writer=writer)
        return time.perf_counter() - wall, time.process_time() - cpu, played


def chains(episodes: Sequence[Any], latency: Latency) -> list[float]:
    """Each episode's time at the server: its requests' latencies, one after another."""
    from dialogym.envs import reply_seed, spec

    roles = spec(GAME).game_cls.roles
    return [sum(latency.of(reply_seed(e.seed, e.play, t.index, roles.index(t.seat))) for t in e.turns) for e in episodes]


def ceiling(durations: Sequence[float], slots: int) -> float:
    """The shortest time any schedule of episodes of these ``durations`` over ``slots``
    could take, knowing every duration in advance: at least the longest episode, and at
    least the total spread evenly over the slots (the ideal)."""
    return max(max(durations, default=0.0), sum(durations) / max(slots, 1))


def best_schedule(durations: Sequence[float], slots: int) -> float:
    """The end of the last episode when each starts, in order, as soon as one of ``slots`` frees."""
    free = [0.0] * min(slots, max(len(durations), 1))
    for duration in durations:
        heapq.heappush(free, heapq.heappop(free) + duration)
    return max(free)


def measure(name: str, scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    """One scenario: the engine at ``--concurrency`` (the median of ``--reps`` runs) and one
    episode at a time, on one server."""
    latency = Latency.parse(scenario.latency).scaled(args.scale)
    episodes = args.episodes or scenario.episodes
    sample = min(args.sequential_episodes or episodes, episodes)
    runs = []
    with LatencyServer(latency) as server, tempfile.TemporaryDirectory() as folder:
        play(server.url, 2, 2, Path(folder) / "warm-up")  # imports, first-use caches
        for rep in range(args.reps):
            server.reset()
            runs.append((*play(server.url, episodes, args.concurrency, Path(folder) / f"engine-{rep}"), server.load()))
        server.reset()
        sequential_s, _, _ = play(server.url, sample, 1, Path(folder) / "sequential")
        alone = server.load()
    engine_s, cpu_s, played, load = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    requests = load["requests"]
    ideal_s = load["latency_s"] / args.concurrency
    durations = chains(played, latency)
    best_s = best_schedule(durations, args.concurrency)
    # the server's ideal too: a request it saw twice (a retry) is in its sum, not in the episodes'
    floor_s = max(ceiling(durations, args.concurrency), ideal_s)
    if sample < episodes:  # the rest of one-at-a-time play: its latencies, and its overhead per request
        overhead = (sequential_s - alone["latency_s"]) / max(alone["requests"], 1)
        sequential_s += load["latency_s"] - alone["latency_s"] + overhead * (requests - alone["requests"])
    return {
        "scenario": name, "latency": scenario.latency, "scale": args.scale, "mean_latency_s": round(latency.mean, 4),
        "episodes": episodes, "requests": requests, "concurrency": args.concurrency, "reps": args.reps,
        "engine_s": round(engine_s, 3), "engine_s_all": [round(run[0], 3) for run in runs],
        "episodes_per_s": round(episodes / engine_s, 2),
        "ideal_s": round(ideal_s, 3), "vs_ideal": _ratio(ideal_s, engine_s),
        "best_schedule_s": round(best_s, 3), "vs_best_schedule": _ratio(best_s, engine_s),
        "longest_episode_s": round(max(durations, default=0.0), 3), "ceiling_vs_ideal": _ratio(ideal_s, floor_s),
        "sequential_s": round(sequential_s, 3), "sequential_measured_episodes": sample,
        "vs_sequential": _ratio(sequential_s, engine_s),
        "client_cpu_ms_per_request": round(1000 * cpu_s / max(requests, 1), 3),
        "server_peak_in_flight": load["peak_in_flight"], "server_mean_in_flight": round(load["mean_in_flight"], 1),
        "connections": load["connections"],
    }


def _ratio(reference: float, measured: float) -> float | None:
    """``reference / measured``; None where the reference is 0 (no latency: no ideal to reach)."""
    return round(reference / measured, 3) if reference > 0 and measured > 0 else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="tail,fixed,instant", help=f"scenarios separated by commas, of {', '.join(SCENARIOS)}")
    parser.add_argument("--concurrency", type=int, default=64, help="episodes (and requests) in flight")
    parser.add_argument("--episodes", type=int, default=0, help="episodes of every scenario (default: each scenario's own)")
    parser.add_argument("--reps", type=int, default=3, help="engine runs per scenario; the median is reported")
    parser.add_argument("--sequential-episodes", type=int, default=0,
                        help="play only this many one at a time and estimate the rest (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every latency (a quick run: 0.1)")
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--serve", metavar="LATENCY", help=argparse.SUPPRESS)  # the server process
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.serve:
        serve(Latency.parse(args.serve))
        return {}
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown or not names:
        parser.error(f"--scenarios: unknown {unknown or 'none given'}; use {', '.join(SCENARIOS)}")
    if min(args.concurrency, args.reps) < 1 or min(args.episodes, args.sequential_episodes) < 0 or not args.scale > 0:
        parser.error("--concurrency, --reps and --scale must be positive, --episodes and --sequential-episodes zero or more")
    result = {"game": GAME, "scenarios": [measure(name, SCENARIOS[name], args) for name in names]}
    print(json.dumps(result, indent=1))
    if args.out:
        from dialogym.envs.files import atomic_write_json

        atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
