"""The rollout engine: many episodes at once, one batched call per agent at a time.

The engine gathers the pending request of every seat that is to act in every live episode
(several per episode on simultaneous turns) and groups them by agent. A local agent has at
most one batched ``act`` call in flight, in its own thread; the engine routes its replies to
their episodes and seats as soon as that call ends, without waiting for other agents, and
requests that arrive while it is busy join its next batch. A remote agent
(:class:`~.base.RemoteAgent`, a model behind an API) gets each request as it arrives, up to
its bound in flight (its own ``concurrency``, else the engine's ``max_concurrent``), and each
reply goes to its episode as it comes: a slow request holds up only its own episode, and the
server is kept full. Finished episodes are written at once through the atomic writer. The engine is the only loop that asks agents for replies: the
CLI, benchmarks and trainers play whole episodes with :meth:`RolloutEngine.run`, and code
that plays some seats itself (the Gymnasium env, the TRL adapter's first prompts) lets the
engine play the others with :meth:`RolloutEngine.advance`, through the same loop.

Determinism: an episode's requests (messages and seeds) depend only on its spec and the
replies it got, and a simultaneous turn's replies are submitted in seat order, so agents
whose reply depends only on the request (scripted, transformers, vLLM, seeded HTTP) give
the same episodes on every run, whichever agent or request answers first. Which requests share a
batch can depend on timing when several agents' calls overlap; a transformers reply does
not depend on its batchmates except through floating-point effects of padding (rare
token flips, likelier in bf16). ``lockstep=True`` waits for every agent's call before
routing any reply, as a tick, so batches too are the same on every run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dialogym.envs import Episode, EpisodeWriter, Instance, Match, new_match, reply_seed

from .base import Agent, RemoteAgent, Reply, Request, Sampling


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
        seed=reply_seed(match.seed, match.play, match.reply_count, match.roles.index(seat)),
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
    ``max_concurrent`` bounds how many episodes are live at once (default: all), and how
    many requests a remote agent has out unless the agent sets its own ``concurrency``
    (neither set: :data:`REMOTE_BOUND`).
    ``lockstep`` waits for every agent's call (every remote request) before routing any
    reply (exact replays of several batch-seeded agents, at the price of the slowest agent
    setting the pace). ``agent_sampling`` gives named agents their own setting instead of
    ``sampling`` (a league's opponents playing greedy while the learner samples, say).
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
        agent_sampling: Mapping[str, Sampling] | None = None,
    ) -> None:
        self.agents = dict(agents)
        self.lockstep = lockstep
        self.sampling = sampling or Sampling()
        self.agent_sampling = dict(agent_sampling or {})
        unknown = sorted(set(self.agent_sampling) - set(self.agents))
        if unknown:
            raise ValueError(f"agent_sampling names agents the engine does not have: {', '.join(unknown)}")
        self.max_concurrent = max_concurrent
        self.progress = progress
        self.stats = RolloutStats()

    def sampling_for(self, agent: str) -> Sampling:
        """The sampling of ``agent``'s requests: its own (``agent_sampling``) or the engine's,
        guided for a ``guided`` agent (a ``+guided`` model spec) or when that sampling is
        guided for everyone."""
        sampling = self.agent_sampling.get(agent, self.sampling)
        # The one read of ``Agent.guided``; an agent written before the protocol declared it
        # has none and plays free, as it always did.
        if getattr(self.agents[agent], "guided", False) and not sampling.guided:
            return sampling.with_(guided=True)
        return sampling

    def run(
        self,
        episodes: Sequence[EpisodeSpec],
        *,
        writer: EpisodeWriter | None = None,
        on_episode: Callable[[Episode], None] | None = None,
    ) -> list[Episode]:
        """Play every episode; return their records in the order given.

        Each finished episode goes to ``writer`` (in a thread of its own, in the order the
        episodes end, so replies keep being routed while a record is flushed to disk; all
        are written before this returns or raises) and to ``on_episode``."""
        for item in episodes:
            self._check_agents(item.seats)
        results: list[Episode | None] = [None] * len(episodes)
        todo = list(range(len(episodes)))[::-1]
        limit = self.max_concurrent or len(episodes) or 1
        started = time.perf_counter()
        with _Progress(len(episodes), enabled=self.progress) as bar, _Writes(writer) as writes:

            def refill(live: dict[int, Seated]) -> None:
                while todo and len(live) < limit:
                    index = todo.pop()
                    live[index] = (build_match(episodes[index]), episodes[index].seats)

            def finish(index: int, match: Match) -> None:
                record = match.episode(episodes[index].seats, tags=episodes[index].tags)
                results[index] = record
                self.stats.episodes += 1
                writes.put(record)
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
        replies and the replies of at least one agent call are routed back to them. Only the
        matches that are new or got replies since the last round are looked at.
        """
        seen: set[int] = set()
        with _Calls(self) as calls:
            while True:
                if refill is not None:
                    refill(live)
                fresh = live.keys() - seen
                seen |= fresh
                calls.moved |= fresh
                settled = [key for key in calls.moved if _settled(*live[key])]
                for key in settled:
                    match, _ = live.pop(key)
                    calls.moved.discard(key)
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


#: The most requests a remote agent has out when neither it (``concurrency``) nor the engine
#: (``max_concurrent``) sets a bound: a run of thousands of episodes must not open thousands
#: of connections at once.
REMOTE_BOUND = 64
#: A request the engine asked for: (episode key, seat, request).
_Item = tuple[int, str, Request]


@dataclass
class _Call:
    """One agent call in flight: a local agent's batch, or one request of a remote agent."""

    number: int
    agent: str
    items: list[_Item]
    #: a remote agent's ``send``: the future holds one reply, not a list
    single: bool


class _Calls:
    """The engine's agent calls, each reply routed as its call ends.

    An episode's seats that are to act (and that the engine plays) form a step; each request
    joins its agent's waiting list. An idle local agent gets its whole waiting list as one
    batch; requests that arrive while it is busy wait for its next batch. A remote agent gets
    each waiting request at once, while fewer than its bound are out. So a slow agent, or a
    slow request, never holds up episodes it does not play. A step's replies are submitted
    together, in seat order, once all are in: the order in which calls finish never changes
    an episode.
    """

    def __init__(self, engine: RolloutEngine) -> None:
        self.engine = engine
        self.remote = {name: agent for name, agent in engine.agents.items() if isinstance(agent, RemoteAgent)}
        local = len(engine.agents) - len(self.remote)
        self.pool = ThreadPoolExecutor(max_workers=max(1, local), thread_name_prefix="dialogym-agent")
        #: remote agent -> the most of its requests out at once
        self.bounds = {
            name: agent.concurrency or engine.max_concurrent or REMOTE_BOUND for name, agent in self.remote.items()
        }
        self.out: Counter[str] = Counter()
        self.steps: dict[int, _Step] = {}
        self.waiting: dict[str, list[_Item]] = defaultdict(list)
        self.running: dict[Future[Any], _Call] = {}
        #: calls that ended, in the order they ended (each future's done-callback puts it here)
        self.ended: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.dispatched = 0
        #: live episodes that are new or whose step got all its replies: the ones to look at
        self.moved: set[int] = set()

    def __enter__(self) -> _Calls:
        return self

    def __exit__(self, *exc: object) -> None:
        # After an error, other calls may still run: raise now, do not wait for them.
        for future in self.running:
            future.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def ask(self, live: dict[int, Seated]) -> None:
        """Queue the requests of the episodes that moved (none is waiting for replies); start calls."""
        moved, self.moved = self.moved, set()
        for key in sorted(moved):
            match, seats = live[key]
            to_act = match.to_act()
            if not to_act:
                raise RuntimeError(f"{match.game_id}: no seat can move, yet the episode is not over (the game's to_move is empty)")
            ours = [seat for seat in to_act if seat in seats]
            self.steps[key] = _Step(ours)
            for seat in ours:
                request = request_for(match, seat, self.engine.sampling_for(seats[seat]))
                self.steps[key].grammars[seat] = request.grammar
                self.waiting[seats[seat]].append((key, seat, request))
        busy = {call.agent for call in self.running.values() if not call.single}
        for name in [n for n, items in self.waiting.items() if items]:
            if name in self.remote:
                self._send(name)
            elif name not in busy:
                items = self.waiting.pop(name)
                self._start(self.pool.submit(self._call, name, [request for _, _, request in items]), name, items, single=False)

    def _send(self, name: str) -> None:
        """Put out the remote agent ``name``'s waiting requests, up to its bound."""
        items, agent = self.waiting[name], self.remote[name]
        sent = items[: max(0, self.bounds[name] - self.out[name])]
        for item in sent:
            self._start(agent.send(item[2]), name, [item], single=True)
        del items[: len(sent)]
        self.out[name] += len(sent)

    def _start(self, future: Future[Any], name: str, items: list[_Item], *, single: bool) -> None:
        self.running[future] = _Call(self.dispatched, name, items, single)
        self.dispatched += 1
        future.add_done_callback(self.ended.put)

    def _call(self, name: str, batch: list[Request]) -> list[Reply]:
        replies = self.engine.agents[name].act(batch)
        if len(replies) != len(batch):
            raise RuntimeError(f"agent {name!r} returned {len(replies)} replies for {len(batch)} requests")
        return replies

    def route(self, live: dict[int, Seated]) -> None:
        """Wait until at least one call ends (every call, in lockstep); hand the replies of
        the calls that have ended to their episodes."""
        ended = [self.ended.get()]
        while len(ended) < (len(self.running) if self.engine.lockstep else 0):
            ended.append(self.ended.get())
        while True:
            try:
                ended.append(self.ended.get_nowait())
            except queue.Empty:
                break
        stats = self.engine.stats
        stats.ticks += 1
        for future in sorted(ended, key=lambda f: self.running[f].number):
            call = self.running.pop(future)
            if call.single:
                self.out[call.agent] -= 1
            replies = [future.result()] if call.single else future.result()
            stats.agent_calls += 1
            for (key, seat, _), reply in zip(call.items, replies, strict=True):
                stats.generated_tokens += len(reply.token_ids) if reply.token_ids is not None else 0
                step = self.steps[key]
                step.replies[seat] = reply
                if len(step.replies) == len(step.seats):
                    del self.steps[key]
                    _submit(live[key][0], step)
                    self.moved.add(key)


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


class _Writes:
    """The episode writer's own thread: :meth:`put` queues a record, the thread writes the
    records in order, those queued while it flushed the last ones in one ``write_many`` (an
    ``fsync`` costs 0.4 to 4 ms on this project's machine, and episodes in lockstep end
    together); on leaving, every queued record is written (a write's error is raised then,
    or at the next :meth:`put`, unless another error is on its way out)."""

    def __init__(self, writer: EpisodeWriter | None) -> None:
        self.writer = writer
        self.records: queue.SimpleQueue[Episode | None] = queue.SimpleQueue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._write, name="dialogym-writer", daemon=True)

    def __enter__(self) -> _Writes:
        if self.writer is not None:
            self.thread.start()
        return self

    def put(self, record: Episode) -> None:
        if self.error is not None:
            raise self.error
        if self.writer is not None:
            self.records.put(record)

    def _write(self) -> None:
        done = False
        while not done:
            batch = [self.records.get()]  # what is queued by now goes to disk in one fsync
            while not self.records.empty():
                batch.append(self.records.get())
            done = batch[-1] is None
            records = [record for record in batch if record is not None]
            if records and self.error is None and self.writer is not None:
                try:
                    self.writer.write_many(records)
                except BaseException as err:  # raised in the engine's thread
                    self.error = err

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if self.writer is not None:
            self.records.put(None)
            self.thread.join()
        if self.error is not None and kind is None:
            raise self.error


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
