"""The rollout engine: many episodes at once, one batched call per agent at a time.

The engine gathers the pending request of every seat that is to act in every live episode
(several per episode on simultaneous turns) and groups them by agent. Each agent has at
most one batched ``act`` call in flight, in its own thread; the engine routes an agent's
replies to their episodes and seats as soon as that call ends, without waiting for other
agents, so a slow HTTP agent never holds up episodes played by a local one. Requests that
arrive while an agent is busy join its next batch. Finished episodes are written at once
through the atomic writer. The engine is the only loop that asks agents for replies: the
CLI, benchmarks and trainers play whole episodes with :meth:`RolloutEngine.run`, and code
that plays some seats itself (the Gymnasium env, the TRL adapter's first prompts) lets the
engine play the others with :meth:`RolloutEngine.advance`, through the same loop.

Determinism: an episode's requests (messages and seeds) depend only on its spec and the
replies it got, and a simultaneous turn's replies are submitted in seat order, so agents
whose reply depends only on the request (scripted, transformers, vLLM, seeded HTTP) give
the same episodes on every run, whichever agent answers first. Which requests share a
batch can depend on timing when several agents' calls overlap; a transformers reply does
not depend on its batchmates except through floating-point effects of padding (rare
token flips, likelier in bf16). ``lockstep=True`` waits for every agent's call before
routing any reply, as a tick, so batches too are the same on every run.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from dialogym.envs import Episode, EpisodeWriter, Instance, Match, new_match, reply_seed

from .base import Agent, Reply, Request, Sampling


@dataclass
class EpisodeSpec:
    """One episode to play: which game, which instance (or seed to draw one), who sits where.

    ``seed`` is the *instance* seed: it draws the instance (unless ``instance`` is given)
    and, with ``play``, seeds every reply (:func:`dialogym.envs.reply_seed`). Several
    plays of one instance (a GRPO group, TRL's generations) share ``seed`` and differ in
    ``play``. ``game_options`` are merged over the game's registered options, as
    :func:`dialogym.envs.new_match` does (``max_retries`` included).
    """

    game: str
    seed: int
    #: seat -> agent name (a key of the engine's ``agents``)
    seats: dict[str, str]
    instance: Instance | dict[str, Any] | None = None
    level: str | None = None
    split: str = "any"
    game_options: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: Which play of the instance this is (0, 1, ...): a new play gets new reply seeds.
    play: int = 0


def request_for(match: Match, seat: str, sampling: Sampling | None = None) -> Request:
    """The request of ``seat`` in ``match``, seeded by :func:`~dialogym.envs.reply_seed`
    from the instance seed, the play, the number of replies so far and the seat."""
    sampling = sampling or Sampling()
    grammar = match.move_grammar(seat) if sampling.guided else None
    # Every reply is capped at the smaller of the run's and the game's limits, guided ones too
    # (a trainer's cap is the one applied, and the one its loss normalises by). Each game
    # bounds its grammar to fit its own cap, so a benchmark, whose cap is for free replies
    # (a therapist's DIAGNOSIS and PLAN need more than its 64 tokens), asks with
    # ``guided_game_cap`` for the game's whole cap on guided ones.
    cap = match.game.max_reply_tokens
    whole = grammar is not None and sampling.guided_game_cap
    sampling = sampling.with_(max_new_tokens=cap if whole else min(sampling.max_new_tokens, cap), guided_game_cap=False)
    return Request(
        messages=match.messages(seat),
        sampling=sampling,
        seed=reply_seed(match.seed, match.play, len(match.turns), match.roles.index(seat)),
        game=match.game_id,
        seat=seat,
        view=match.view(seat),
        grammar=grammar,
    )


def build_match(episode: EpisodeSpec) -> Match:
    """The match ``episode`` starts (built by :func:`~dialogym.envs.new_match`)."""
    match = new_match(
        episode.game, episode.seed, play=episode.play, instance=episode.instance,
        level=episode.level or None, split=episode.split, **episode.game_options,
    )
    if set(episode.seats) != set(match.roles):
        raise ValueError(f"{episode.game}: seats {sorted(episode.seats)} do not match the game's {list(match.roles)}")
    return match


#: A live match and its seating: seat -> agent name, for the seats the engine plays.
Seated = tuple[Match, Mapping[str, str]]


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
    ``lockstep`` waits for every agent's call before routing any reply (exact replays of
    several batch-seeded agents, at the price of the slowest agent setting the pace).
    :meth:`run` plays whole episodes from specs; :meth:`advance` plays the engine's seats
    of matches in which the caller plays the others.
    """

    def __init__(
        self,
        agents: Mapping[str, Agent],
        *,
        sampling: Sampling | None = None,
        max_concurrent: int | None = None,
        progress: bool = False,
        lockstep: bool = False,
    ) -> None:
        self.agents = dict(agents)
        self.lockstep = lockstep
        self.sampling = sampling or Sampling()
        self.max_concurrent = max_concurrent
        self.progress = progress
        self.stats = RolloutStats()

    def sampling_for(self, agent: str) -> Sampling:
        """The sampling of ``agent``'s requests: the engine's, guided for a ``guided`` agent
        (a ``+guided`` model spec) or when the engine's sampling is guided for everyone."""
        # The one read of ``Agent.guided``; an agent written before the protocol declared it
        # has none and plays free, as it always did.
        if getattr(self.agents[agent], "guided", False) and not self.sampling.guided:
            return self.sampling.with_(guided=True)
        return self.sampling

    def run(
        self,
        episodes: Sequence[EpisodeSpec],
        *,
        writer: EpisodeWriter | None = None,
        on_episode: Callable[[Episode], None] | None = None,
    ) -> list[Episode]:
        """Play every episode; return their records in the order given."""
        for item in episodes:
            self._check_agents(item.seats)
        results: list[Episode | None] = [None] * len(episodes)
        queue = list(range(len(episodes)))[::-1]
        limit = self.max_concurrent or len(episodes) or 1
        started = time.perf_counter()
        with _Progress(len(episodes), enabled=self.progress) as bar:

            def refill(live: dict[int, Seated]) -> None:
                while queue and len(live) < limit:
                    index = queue.pop()
                    live[index] = (build_match(episodes[index]), episodes[index].seats)

            def finish(index: int, match: Match) -> None:
                record = match.episode(episodes[index].seats, tags=episodes[index].tags)
                results[index] = record
                self.stats.episodes += 1
                if writer is not None:
                    writer.write(record)
                if on_episode is not None:
                    on_episode(record)
                self.stats.seconds = time.perf_counter() - started
                bar.update(self.stats)

            self._play({}, refill=refill, settle=finish)
        self.stats.seconds = time.perf_counter() - started
        return [r for r in results if r is not None]

    def advance(self, matches: Sequence[Seated]) -> None:
        """Play the engine's seats of live matches until each is over or waits only on the caller.

        Each item is a match and its seating: seat -> agent name (a key of ``agents``) for
        the seats the engine plays; the seats left out are the caller's. The matches are
        played in place, with the same batching, routing and request seeds as :meth:`run`
        (one batched call per agent for all the matches at once). On return each match is
        done or every seat in its ``to_act()`` is the caller's; on a simultaneous turn the
        engine's seats have already moved (their moves wait in the match) and the caller's
        seats are still to act. The caller submits its replies with ``match.submit`` and
        calls ``advance`` again. No episode records are made (``match.episode()`` does that).
        """
        seen: set[int] = set()
        for match, seats in matches:
            self._check_agents(seats)
            unknown = set(seats) - set(match.roles)
            if unknown:
                raise ValueError(f"{match.game_id}: seats {sorted(unknown)} are not among the game's {list(match.roles)}")
            if id(match) in seen:
                raise ValueError(f"{match.game_id}: the same match is given twice; give each live match once")
            seen.add(id(match))
        self._play(dict(enumerate(matches)))

    def _check_agents(self, seats: Mapping[str, str]) -> None:
        missing = set(seats.values()) - set(self.agents)
        if missing:
            raise KeyError(f"no agent named {sorted(missing)}; known agents: {sorted(self.agents)}")

    def _play(
        self,
        live: dict[int, Seated],
        *,
        refill: Callable[[dict[int, Seated]], None] | None = None,
        settle: Callable[[int, Match], None] | None = None,
    ) -> None:
        """The engine's one loop, behind both :meth:`run` and :meth:`advance`.

        Each round: ``refill`` may add matches; a match that is over, or whose seats to act
        are all the caller's, leaves ``live`` through ``settle``; the rest are asked for
        replies and the replies of at least one agent call are routed back to them.
        """
        with _Calls(self) as calls:
            while True:
                if refill is not None:
                    refill(live)
                settled = [key for key, (match, seats) in live.items() if _settled(match, seats)]
                for key in settled:
                    match, _ = live.pop(key)
                    if settle is not None:
                        settle(key, match)
                if settled:
                    continue  # refill the freed slots before asking for moves
                if not live:
                    return
                calls.ask(live)
                calls.route(live)


def _settled(match: Match, seats: Mapping[str, str]) -> bool:
    """Over, or waiting only on seats the engine does not play."""
    if match.done:
        return True
    to_act = match.to_act()
    return bool(to_act) and not any(seat in seats for seat in to_act)


@dataclass
class _Step:
    """The seats of one episode asked at once (several on a simultaneous turn) and their replies."""

    seats: list[str]
    replies: dict[str, Reply] = field(default_factory=dict)
    #: the grammar each seat's request carried (guided requests only)
    grammars: dict[str, str | None] = field(default_factory=dict)


class _Calls:
    """The engine's agent calls: one batch per agent in flight, replies routed as each call ends.

    An episode's seats that are to act (and that the engine plays) form a step; each request
    joins its agent's waiting list, and an idle agent gets its whole waiting list as one
    batch. Requests that arrive while the agent is busy wait for its next batch, so a slow
    agent never holds up episodes played by others. A step's replies are submitted together,
    in seat order, once all are in: the order in which calls finish never changes an episode.
    """

    def __init__(self, engine: RolloutEngine) -> None:
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(engine.agents)), thread_name_prefix="dialogym-agent")
        self.steps: dict[int, _Step] = {}
        self.waiting: dict[str, list[tuple[int, str, Request]]] = defaultdict(list)
        #: future -> (dispatch number, agent name, what the batch was for)
        self.running: dict[Future[list[Reply]], tuple[int, str, list[tuple[int, str, Request]]]] = {}
        self.dispatched = 0

    def __enter__(self) -> _Calls:
        return self

    def __exit__(self, *exc: object) -> None:
        # After an error, other agents' calls may still run: raise now, do not wait for them.
        self.pool.shutdown(wait=False, cancel_futures=True)

    def ask(self, live: dict[int, Seated]) -> None:
        """Queue the requests of every episode that is not waiting for replies; start idle agents."""
        for key, (match, seats) in live.items():
            if key in self.steps:
                continue
            to_act = match.to_act()
            if not to_act:
                raise RuntimeError(f"{match.game_id}: no seat can move, yet the episode is not over (the game's to_move is empty)")
            ours = [seat for seat in to_act if seat in seats]
            self.steps[key] = _Step(ours)
            for seat in ours:
                request = request_for(match, seat, self.engine.sampling_for(seats[seat]))
                self.steps[key].grammars[seat] = request.grammar
                self.waiting[seats[seat]].append((key, seat, request))
        busy = {name for _, name, _ in self.running.values()}
        for name in [n for n, items in self.waiting.items() if items and n not in busy]:
            items = self.waiting.pop(name)
            future = self.pool.submit(self._call, name, [request for _, _, request in items])
            self.running[future] = (self.dispatched, name, items)
            self.dispatched += 1

    def _call(self, name: str, batch: list[Request]) -> list[Reply]:
        replies = self.engine.agents[name].act(batch)
        if len(replies) != len(batch):
            raise RuntimeError(f"agent {name!r} returned {len(replies)} replies for {len(batch)} requests")
        return replies

    def route(self, live: dict[int, Seated]) -> None:
        """Wait until at least one call ends; hand its replies to their episodes."""
        done, _ = wait(self.running, return_when=ALL_COMPLETED if self.engine.lockstep else FIRST_COMPLETED)
        stats = self.engine.stats
        stats.ticks += 1
        for future in sorted(done, key=lambda f: self.running[f][0]):
            _, _, items = self.running.pop(future)
            replies = future.result()
            stats.agent_calls += 1
            for (key, seat, _), reply in zip(items, replies, strict=True):
                stats.generated_tokens += len(reply.token_ids) if reply.token_ids is not None else 0
                step = self.steps[key]
                step.replies[seat] = reply
                if len(step.replies) == len(step.seats):
                    del self.steps[key]
                    _submit(live[key][0], step)


def _submit(match: Match, step: _Step) -> None:
    for seat in step.seats:
        if match.done:
            # On a simultaneous turn an earlier seat's last invalid reply aborted the
            # episode; the other seats' replies have nothing to go to.
            return
        reply = step.replies[seat]
        match.submit(
            seat,
            reply.text,
            token_ids=reply.token_ids,
            logprobs=reply.logprobs,
            prompt_token_ids=reply.prompt_token_ids,
            latency_s=reply.latency_s,
            grammar=step.grammars.get(seat) if reply.guided else None,
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
