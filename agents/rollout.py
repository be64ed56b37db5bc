"""The rollout engine: many episodes at once, one batched call per agent per tick.

Each tick gathers the pending request of every seat that is to act in every live episode
(several per episode on simultaneous turns), groups them by agent, makes one ``act`` call
per agent (different agents run concurrently in threads, so a slow HTTP agent does not
hold up a local one) and routes each reply back to its episode and seat. Finished episodes
are written at once through the atomic writer. The engine is the only loop that drives
games with models; the CLI, benchmarks and trainers all use it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dialogym.envs import Episode, EpisodeWriter, Instance, Match, draw_instance, spec

from .base import Agent, Reply, Request, Sampling


@dataclass
class EpisodeSpec:
    """One episode to play: which game, which instance (or seed to draw one), who sits where."""

    game: str
    seed: int
    #: seat -> agent name (a key of the engine's ``agents``)
    seats: dict[str, str]
    instance: Instance | dict[str, Any] | None = None
    level: str | None = None
    split: str = "any"
    game_options: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def request_for(match: Match, seat: str, sampling: Sampling | None = None) -> Request:
    """The request of ``seat`` in ``match``, seeded from the episode seed and turn."""
    sampling = sampling or Sampling()
    sampling = sampling.with_(max_new_tokens=min(sampling.max_new_tokens, match.game.max_reply_tokens))
    seat_index = match.roles.index(seat)
    seed = (match.seed * 1_000_003 + len(match.turns) * 7919 + seat_index) % (2**31 - 1)
    return Request(
        messages=match.messages(seat),
        sampling=sampling,
        seed=seed,
        game=match.game_id,
        seat=seat,
        view=match.view(seat),
    )


def build_match(episode: EpisodeSpec) -> Match:
    game_spec = spec(episode.game)
    env_opts, _ = game_spec.split_options(**episode.game_options)
    game = game_spec.game(**episode.game_options)
    instance = episode.instance
    if isinstance(instance, dict):
        instance = game.instance_cls.model_validate(instance)
    if instance is None:
        level = episode.level or env_opts.get("level")
        instance = draw_instance(game, episode.seed, level=level, split=episode.split)
    unknown = set(episode.seats) ^ set(game.roles)
    if unknown:
        raise ValueError(f"{episode.game}: seats {sorted(episode.seats)} do not match the game's {list(game.roles)}")
    return Match(game, instance, game_id=episode.game, seed=episode.seed, max_retries=env_opts.get("max_retries"))


@dataclass
class RolloutStats:
    episodes: int = 0
    generated_tokens: int = 0
    agent_calls: int = 0
    ticks: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds else 0.0


class RolloutEngine:
    """Plays episodes concurrently with batched agent calls.

    ``agents`` maps names (used in :attr:`EpisodeSpec.seats`) to agents. ``sampling`` is
    the default generation setting; each game caps ``max_new_tokens`` at its own limit.
    ``max_concurrent`` bounds how many episodes are live at once (default: all).
    """

    def __init__(
        self,
        agents: Mapping[str, Agent],
        *,
        sampling: Sampling | None = None,
        max_concurrent: int | None = None,
        progress: bool = False,
    ) -> None:
        self.agents = dict(agents)
        self.sampling = sampling or Sampling()
        self.max_concurrent = max_concurrent
        self.progress = progress
        self.stats = RolloutStats()

    def run(
        self,
        episodes: Sequence[EpisodeSpec],
        *,
        writer: EpisodeWriter | None = None,
        on_episode: Callable[[Episode], None] | None = None,
    ) -> list[Episode]:
        """Play every episode; return their records in the order given."""
        for item in episodes:
            missing = set(item.seats.values()) - set(self.agents)
            if missing:
                raise KeyError(f"no agent named {sorted(missing)}; known agents: {sorted(self.agents)}")
        results: list[Episode | None] = [None] * len(episodes)
        queue = list(range(len(episodes)))[::-1]
        live: dict[int, Match] = {}
        limit = self.max_concurrent or len(episodes) or 1
        started = time.perf_counter()
        with _Progress(len(episodes), enabled=self.progress) as bar, ThreadPoolExecutor(max_workers=max(1, len(self.agents))) as pool:
            while queue or live:
                while queue and len(live) < limit:
                    index = queue.pop()
                    live[index] = build_match(episodes[index])
                finished = [i for i, m in live.items() if m.done]
                if not finished:
                    self._tick(live, episodes, pool)
                    finished = [i for i, m in live.items() if m.done]
                for index in finished:
                    match = live.pop(index)
                    record = match.episode(episodes[index].seats, tags=episodes[index].tags)
                    results[index] = record
                    self.stats.episodes += 1
                    if writer is not None:
                        writer.write(record)
                    if on_episode is not None:
                        on_episode(record)
                    self.stats.seconds = time.perf_counter() - started
                    bar.update(self.stats)
        self.stats.seconds = time.perf_counter() - started
        return [r for r in results if r is not None]

    def _tick(self, live: dict[int, Match], episodes: Sequence[EpisodeSpec], pool: ThreadPoolExecutor) -> None:
        by_agent: dict[str, list[tuple[int, str, Request]]] = defaultdict(list)
        for index, match in live.items():
            for seat in match.to_act():
                agent = episodes[index].seats[seat]
                by_agent[agent].append((index, seat, request_for(match, seat, self.sampling)))
        if not by_agent:
            raise RuntimeError("no episode can move, yet some are not over (a game's to_move is empty)")

        def call(name: str) -> list[Reply]:
            batch = [request for _, _, request in by_agent[name]]
            replies = self.agents[name].act(batch)
            if len(replies) != len(batch):
                raise RuntimeError(f"agent {name!r} returned {len(replies)} replies for {len(batch)} requests")
            return replies

        names = list(by_agent)
        if len(names) == 1:
            all_replies = {names[0]: call(names[0])}
        else:
            all_replies = dict(zip(names, pool.map(call, names), strict=True))
        self.stats.ticks += 1
        for name in names:
            self.stats.agent_calls += 1
            for (index, seat, _), reply in zip(by_agent[name], all_replies[name], strict=True):
                self.stats.generated_tokens += len(reply.token_ids) if reply.token_ids is not None else 0
                if live[index].done:
                    # On a simultaneous turn an earlier seat's last invalid reply aborted the
                    # episode; the other seats' replies of this tick have nothing to go to.
                    continue
                live[index].submit(
                    seat,
                    reply.text,
                    token_ids=reply.token_ids,
                    logprobs=reply.logprobs,
                    prompt_token_ids=reply.prompt_token_ids,
                    latency_s=reply.latency_s,
                )


class _Progress:
    """A rich progress bar of episodes done and generated tokens/s (off when not wanted)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled and total > 0
        self._progress = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("episodes"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[rate]}"), transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("play", total=self.total, rate="")
        return self

    def update(self, stats: RolloutStats) -> None:
        if self._progress is not None:
            rate = f"{stats.tokens_per_s:.0f} tok/s" if stats.generated_tokens else ""
            self._progress.update(self._task, completed=stats.episodes, rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
