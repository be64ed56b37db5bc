"""Rollouts across processes and machines on Ray.

The driver cuts the episode specs into shards of ``shard_size`` and hands them, one at a
time, to ``num_workers`` Ray actors. Each actor (:class:`RolloutWorker`) builds its own
agents from model specs when it starts, so every actor holds its own backend (a
transformers model, a vLLM engine on its GPU, an HTTP client) and no agent object is ever
pickled. An actor plays a shard with the ordinary :class:`~dialogym.agents.rollout.RolloutEngine`
and returns the shard's episodes; the driver writes them through its one
:class:`~dialogym.envs.EpisodeWriter` as each shard comes back.

When an actor dies (its process crashed, its node went away, someone ``ray.kill``-ed it),
its shard is played again on a fresh actor, up to ``max_retries`` times. Every spec is
written once: the driver keys results by the spec's position and skips any episode it
already has, so a shard whose results arrive twice cannot write an episode twice. A
retried episode has the same :attr:`Episode.id` as the lost one would have had (ids are
derived from game, instance, seed, seats and tags). Errors raised by games or agents (a bad
seat name, a model that cannot load) are not crashes: they reach the caller as the
original exception, without retries.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dialogym.envs import Episode, EpisodeWriter

from .base import Agent, Sampling
from .rollout import EpisodeSpec, RolloutEngine, RolloutStats, _Progress
from .specs import ModelSpec

#: A model spec (``"tiny"``, ``"vllm:/models/x"``..., as a string or parsed) or a picklable
#: zero-argument callable that builds the agent inside the worker (for agents no spec names).
AgentSource = str | ModelSpec | Callable[[], Agent]

#: A shard: the positions of its specs in the caller's list, and the specs.
Shard = list[tuple[int, EpisodeSpec]]


def import_ray() -> Any:
    """``ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "distributed rollouts need Ray, which is not installed; install it with `pip install 'dialogym[ray]'`"
        ) from err
    return ray


class RolloutWorker:
    """Plays shards of episodes with agents it builds itself (run as a Ray actor).

    A worker that cannot build its agents does not crash: it keeps the error and raises it
    from :meth:`play`, so the caller sees why once instead of Ray restarting it in a loop.
    """

    def __init__(
        self, agent_specs: Mapping[str, AgentSource], sampling: Sampling | None, max_concurrent: int | None
    ) -> None:
        self.sampling, self.max_concurrent = sampling, max_concurrent
        self.agents: dict[str, Agent] = {}
        self.init_error: BaseException | None = None
        try:
            from .specs import load_agent

            for name, source in agent_specs.items():
                self.agents[name] = load_agent(source) if isinstance(source, str | ModelSpec) else source()
        except Exception as err:  # reported by play(), see the class docstring
            self.init_error = err

    def play(self, shard: Shard) -> tuple[list[tuple[int, Episode]], RolloutStats]:
        """Play every spec of ``shard``; return ``(position, episode)`` pairs and the engine's stats."""
        if self.init_error is not None:
            raise self.init_error
        engine = RolloutEngine(self.agents, sampling=self.sampling, max_concurrent=self.max_concurrent)
        episodes = engine.run([item for _, item in shard])
        return [(index, episode) for (index, _), episode in zip(shard, episodes, strict=True)], engine.stats

    def pid(self) -> int:
        return os.getpid()


def run_on_ray(
    specs: Sequence[EpisodeSpec],
    agent_specs: Mapping[str, AgentSource],
    *,
    address: str | None = "local",
    num_workers: int = 2,
    shard_size: int = 8,
    writer: EpisodeWriter | None = None,
    sampling: Sampling | None = None,
    max_concurrent: int | None = None,
    progress: bool = False,
    on_episode: Callable[[Episode], None] | None = None,
    max_retries: int = 3,
    num_cpus_per_worker: float = 1.0,
    num_gpus_per_worker: float = 0.0,
) -> list[Episode]:
    """Play ``specs`` on Ray actors; return their episodes in the order of ``specs``.

    ``agent_specs`` maps the agent names used in :attr:`EpisodeSpec.seats` to model specs
    (strings or parsed, see :mod:`dialogym.agents.specs`) or picklable factories; every worker builds
    all of them. ``address``: ``"local"`` starts a Ray instance on this machine for the
    call and stops it afterwards; any other value (``"auto"``, ``"ray://head:10001"``) is
    passed to ``ray.init(address=...)``. When Ray is already initialised in this process,
    that connection is used and left open.

    Each worker plays ``shard_size`` episodes per call through a
    :class:`~dialogym.agents.rollout.RolloutEngine` (``sampling`` and ``max_concurrent``
    as there), so ``shard_size`` is also the largest batch a worker's agent sees.
    Episodes go to ``writer`` and ``on_episode`` on the driver as their shard finishes,
    each spec exactly once. A shard whose actor dies is replayed on a fresh actor up to
    ``max_retries`` times; then a RuntimeError names the shard. Exceptions raised by games
    or agents propagate unchanged and are not retried.

    ``num_cpus_per_worker``/``num_gpus_per_worker`` are the Ray resources of each actor:
    give a vLLM worker ``num_gpus_per_worker=1``.

    Seeded backends replay an episode the same way in-process and on Ray only when they
    batch the same requests together: the scripted players and greedy decoding do;
    sampling transformers backends seed per batch, so their samples depend on shard_size.
    """
    from .specs import parse_spec

    if num_workers < 1 or shard_size < 1 or max_retries < 0:
        raise ValueError(
            f"run_on_ray: num_workers ({num_workers}) and shard_size ({shard_size}) must be >= 1 "
            f"and max_retries ({max_retries}) >= 0"
        )
    for item in specs:
        missing = set(item.seats.values()) - set(agent_specs)
        if missing:
            raise KeyError(f"no agent named {sorted(missing)}; known agents: {sorted(agent_specs)}")
    for source in agent_specs.values():
        if isinstance(source, str):
            parse_spec(source)  # a typo fails here, before a cluster is started
    if not specs:
        return []
    ray = import_ray()
    started_ray = False
    if not ray.is_initialized():
        if address == "local":
            cpus = max(os.cpu_count() or 1, math.ceil(num_workers * num_cpus_per_worker))
            ray.init(address="local", num_cpus=cpus, include_dashboard=False)
        else:
            ray.init(address=address, include_dashboard=False)
        started_ray = True
    try:
        return _drive(
            ray, specs, agent_specs, num_workers=min(num_workers, math.ceil(len(specs) / shard_size)),
            shard_size=shard_size, writer=writer, sampling=sampling, max_concurrent=max_concurrent,
            progress=progress, on_episode=on_episode, max_retries=max_retries,
            resources={"num_cpus": num_cpus_per_worker, "num_gpus": num_gpus_per_worker},
        )
    finally:
        if started_ray:
            ray.shutdown()


def _drive(
    ray: Any,
    specs: Sequence[EpisodeSpec],
    agent_specs: Mapping[str, AgentSource],
    *,
    num_workers: int,
    shard_size: int,
    writer: EpisodeWriter | None,
    sampling: Sampling | None,
    max_concurrent: int | None,
    progress: bool,
    on_episode: Callable[[Episode], None] | None,
    max_retries: int,
    resources: dict[str, float],
) -> list[Episode]:
    from ray.exceptions import RayActorError

    # max_restarts=0: a dead actor is replaced by a fresh one below, so the retry policy is
    # in one place (here) and a shard never waits on an actor that is still restarting.
    actor_cls = ray.remote(RolloutWorker).options(max_restarts=0, max_task_retries=0, **resources)
    agent_ref = ray.put(dict(agent_specs))

    def new_worker() -> Any:
        return actor_cls.remote(agent_ref, sampling, max_concurrent)

    indexed = list(enumerate(specs))
    shards: list[Shard] = [indexed[i : i + shard_size] for i in range(0, len(indexed), shard_size)]
    pending: deque[int] = deque(range(len(shards)))
    failures = [0] * len(shards)
    workers = [new_worker() for _ in range(num_workers)]
    idle = list(range(num_workers))
    in_flight: dict[Any, tuple[int, int]] = {}  # object ref -> (worker slot, shard number)
    results: dict[int, Episode] = {}
    stats = RolloutStats()
    started = time.perf_counter()
    try:
        with _Progress(len(specs), enabled=progress) as bar:
            while pending or in_flight:
                while pending and idle:
                    slot, number = idle.pop(), pending.popleft()
                    in_flight[workers[slot].play.remote(shards[number])] = (slot, number)
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                slot, number = in_flight.pop(ready[0])
                try:
                    played, shard_stats = ray.get(ready[0])
                except RayActorError as err:
                    failures[number] += 1
                    if failures[number] > max_retries:
                        raise RuntimeError(
                            f"run_on_ray: shard {number} (specs {shards[number][0][0]}..{shards[number][-1][0]}) "
                            f"lost its worker {failures[number]} times; last error: {err}"
                        ) from err
                    ray.kill(workers[slot], no_restart=True)
                    workers[slot] = new_worker()
                    pending.appendleft(number)
                    idle.append(slot)
                    continue
                idle.append(slot)
                stats.generated_tokens += shard_stats.generated_tokens
                stats.agent_calls += shard_stats.agent_calls
                stats.ticks += shard_stats.ticks
                for index, episode in played:
                    if index in results:
                        continue
                    results[index] = episode
                    stats.episodes += 1
                    if writer is not None:
                        writer.write(episode)
                    if on_episode is not None:
                        on_episode(episode)
                stats.seconds = time.perf_counter() - started
                bar.update(stats)
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)
    return [results[i] for i in range(len(specs))]
