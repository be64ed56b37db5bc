"""Self-play league: an agent trains against a pool of its own past checkpoints.

Each iteration:

1. sample an opponent for every opponent seat of every training episode from the pool
   (``sampler``: latest, uniform, recency, pfsp, fixed, or one of them per role — see
   :mod:`opponents`; fixed opponents are ``external`` pool entries, so they are rated);
2. play the batch with the rollout engine; the learner takes each seat in turn;
3. update the learner (a LoRA adapter) on its own turns: the update of a GRPO or PPO
   trainer (:func:`league_learner`) with the league's ``learner`` settings (a ``GRPOConfig``
   or ``PPOConfig``), so every setting works as in ``dialogym train``;
4. evaluate it against up to ``eval_opponents`` pool members (greedy unless ``eval_temperature`` is set, test split, paired:
   every instance played once with the learner in each seat, see :func:`play_paired`; the
   best rated among them, and always it when a gate is set);
5. admit it to the pool as ``it-<i>`` (optionally gated: its mean score against the
   current best-rated member must reach ``gate``; with ``rollback`` a checkpoint turned away
   is undone too, the learner back to its weights and optimizer state before the update),
   record the results, refit the
   Bradley-Terry ratings and win rates, and append the iteration's line to ``league.jsonl``;
6. commit: save the learner (adapter + optimizer) as ``learner/it-<i>``, then replace
   ``state.json`` — the single commit point — atomically.

Killed at any point, the same command resumes after the last committed iteration: pool
entries and results of later iterations are dropped, ``league.jsonl`` and
``episodes.jsonl`` are cut back to their committed sizes and the learner is reloaded from
the checkpoint ``state.json`` names. Opponents are drawn with a generator seeded per
iteration, so a resumed league draws what an uninterrupted one would.

Several processes (``torchrun --nproc_per_node N``, as for ``dialogym train``): every rank
draws the whole iteration's plan from the same seeded generator and plays its share of it
(episodes ``rank, rank + N, ...``; evaluation instances alike, their scores summed across
ranks), the learner's update sums the gradients across ranks, and only rank 0 writes — the
pool, the logs, the learner checkpoints and ``state.json``. The other ranks wait at a
barrier after each commit and then read the pool's index again, so every rank holds the
same weights and the same pool; on resume they load the learner checkpoint ``state.json``
names, once rank 0 has rolled the folder back.

Opponents that are LoRA checkpoints play through :class:`AdapterBank`, on the learner's
own base model, with no reload per game; with ``opponents_on="vllm"`` they play through
vLLM instead, every checkpoint a per-request LoRA on one engine of the same base folder
(the learner itself trains, and plays, with transformers).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from dialogym.agents.adapters import AdapterAgent, AdapterBank
from dialogym.agents.base import Sampling
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import ModelSpec, load_agent, parse_spec
from dialogym.benchmarks.metagame import MetaGame, metagame
from dialogym.benchmarks.scores import Estimate, match_score, paired_win_rate, partner_score
from dialogym.envs import Episode, EpisodeWriter, derive_seed, spec
from dialogym.envs.files import append_text, atomic_write_bytes, atomic_write_text

from .config import LeagueConfig
from .core import LEARNER, check_game_options
from .grpo import GRPOTrainer
from .opponents import Fixed, PerRole, Sampler, make_sampler
from .pool import CheckpointPool, MatchResult
from .ppo import PPOTrainer

#: the key of the payoff table's instances (:meth:`League.payoff`): above any league's
#: iterations, so the league's own evaluations never met them
PAYOFF_KEY = 2_000_000


def league_learner(config: LeagueConfig, model: ModelSpec | None = None) -> GRPOTrainer | PPOTrainer:
    """The learner of a league: a trainer of a LoRA adapter on the base model (``model``, the
    league's ``config.model`` parsed; parsed here when not given) with the league's learner
    config (a GRPO, or for ``algo="ppo"`` a PPO one), whose update runs on each iteration's
    episodes, gradient accumulation included. A league step is an iteration, every episode
    its own instance: ``instances_per_step`` is ``episodes``. The learner's ``game_options``
    (a zero-sum reward view, say) hold for every episode of the league: training, evaluation
    and cross-play; ``train_game_options`` override them for the training episodes only."""
    trainer_cls = PPOTrainer if config.algo == "ppo" else GRPOTrainer
    if type(config.learner) is not trainer_cls.config_cls:
        raise ValueError(f"league: algo {config.algo!r} trains with a {trainer_cls.config_cls.__name__}, but the learner's "
                         f"settings are a {type(config.learner).__name__}; validate the config again after changing algo")
    settings = config.learner.model_copy(update={"instances_per_step": config.episodes})
    return trainer_cls(config.game, model or config.model, opponent=None, config=settings)


class League:
    """A league in the folder ``out``; :meth:`run` starts it or resumes it.

    ``state.json`` is the only commit point: it is replaced atomically as the last write of
    an iteration and names the learner checkpoint and the committed sizes of the
    append-only logs. Whatever an interrupted iteration wrote after it (pool entries and
    results, log lines, a learner checkpoint) is rolled back when the league resumes.

    Under a multi-process launcher every rank builds a League on the same folder and calls
    :meth:`run`; only rank 0 (``rank``) writes, and every rank returns the same lines.
    """

    def __init__(self, config: LeagueConfig, out: Path, learner: GRPOTrainer | PPOTrainer | None = None,
                 warm_start: Callable[[GRPOTrainer | PPOTrainer], None] | None = None) -> None:
        """``warm_start(learner)``, where given, runs once when a new league starts: after
        the base (``it-0``, the adapter at its zero start) is in the pool and before the
        first iteration, so the learner starts from it (an SFT fit, say) while every later
        comparison with ``it-0`` is still against the base model."""
        self.config, self.out = config, Path(out)
        self.warm_start = warm_start
        # every option is checked before the first write, so a typo does not claim the folder
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if config.episodes < world:
            raise ValueError(f"league: episodes={config.episodes} is fewer than the {world} processes, and each process "
                             f"plays a share of every iteration's episodes; raise --episodes to at least {world}")
        self.roles = spec(config.game).game_cls.roles
        #: the seatings each training instance is played in (every seat the learner's, or one)
        self.seatings = len(self.roles) if config.paired_training else 1
        plays = config.plays()
        if config.paired_training and config.episodes % (plays * self.seatings):
            raise ValueError(f"league: paired_training plays each training instance in all {self.seatings} seatings"
                             + (f", {plays} times each" if plays > 1 else "") + f": episodes ({config.episodes}) must "
                             f"be a multiple of {plays * self.seatings}")
        sampler = make_sampler(config.sampler, self.roles)
        self.samplers = {role: sampler.for_role(role) if isinstance(sampler, PerRole) else sampler for role in self.roles}
        self.fixed = {name: s for f in self.samplers.values() if isinstance(f, Fixed) for name, s in f.entries.items()}
        base = parse_spec(config.model)  # the league's one parse of its base model
        _check_learner_model(base)
        if config.train_game_options:
            check_game_options(config.game, config.train_options(), "league: train_game_options: ")
        self.vllm_base = _vllm_base(base) if config.opponents_on == "vllm" else None
        config_text = self._check_config()
        self.learner = learner or league_learner(config, base)  # joins the process group under a launcher
        self.rank, self.world_size = self.learner.rank, self.learner.world_size
        # the pool's checkpoints play as adapters on the learner's own model; the learner plays
        # through the same bank, whose lock keeps their adapter swaps out of its generation
        self.bank = AdapterBank(self.learner.agent)
        self.player = AdapterAgent(self.bank, "default", guided=config.learner.guided)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "league_config.json", config_text)
        # the other ranks' view is read again once rank 0 has set up or rolled back (_resume)
        self.pool = CheckpointPool(self.out / "pool", read_only=self.rank != 0)

    def _check_config(self) -> str:
        path = self.out / "league_config.json"
        text = self.config.model_dump_json(indent=1)
        if not path.exists():
            return text
        try:
            stored = LeagueConfig.model_validate_json(path.read_text())
        except ValidationError as err:  # written by an older dialogym (flat learner settings), or not a league's
            first = err.errors()[0]
            raise ValueError(f"{path} holds a league config this dialogym cannot read ({'.'.join(map(str, first['loc']))}: "
                             f"{first['msg']}); use a new --out folder to start another league") from None
        if stored != self.config:
            raise ValueError(f"{path} holds a different league config; use a new --out folder to start another league")
        return text

    def _state(self) -> dict[str, Any] | None:
        path = self.out / "state.json"
        return json.loads(path.read_text()) if path.exists() else None

    # -- commit and rollback ---------------------------------------------------------
    def _resume(self) -> int:
        """Roll everything back to the last committed iteration (setting the league up if
        nothing is committed yet) and return that iteration. Rank 0 does it; the other ranks
        then read the pool and load the learner checkpoint it committed."""
        if self.rank == 0:
            completed = self._roll_back()
        self._barrier()
        if self.rank != 0:
            self.pool.reload()
            state = self._state()
            if state is None:
                raise FileNotFoundError(f"{self.out / 'state.json'} is missing after rank 0 set the league up; "
                                        "every rank must see the same --out folder (a shared file system)")
            self.learner.load(self.out / state["learner"])
            completed = state["completed"]
        return completed

    def _roll_back(self) -> int:
        state = self._state()
        completed = state["completed"] if state else 0
        self.pool.rollback(completed)
        sizes = state.get("sizes", {}) if state else dict.fromkeys(LOGS, 0)
        for log in LOGS:
            _truncate(self.out / log, sizes.get(log))
        if state:
            self.learner.load(self.out / state.get("learner", "learner"))
            return completed
        if "it-0" not in self.pool:
            with self._staged_adapter() as folder:
                self.pool.add("it-0", source=folder, base_spec=self.config.model, iteration=0)
        for name, model in self.fixed.items():
            if name not in self.pool:
                self.pool.add(name, kind="external", spec=model, iteration=0)
        if self.warm_start is not None:
            self.warm_start(self.learner)
            self.learner.model.set_adapter("default")
        self._commit(0)
        return 0

    def _commit(self, iteration: int) -> None:
        learner = f"learner/it-{iteration}"
        self.learner.save(self.out / learner, optimizer=True)
        sizes = {log: (self.out / log).stat().st_size if (self.out / log).exists() else 0 for log in LOGS}
        atomic_write_text(self.out / "state.json", json.dumps({"completed": iteration, "learner": learner, "sizes": sizes}))
        for path in (self.out / "learner").iterdir():  # older checkpoints, leftovers of a kill
            if path.name != f"it-{iteration}":
                shutil.rmtree(path, ignore_errors=True)

    # -- several processes -------------------------------------------------------------
    def _barrier(self) -> None:
        """Every rank waits here (rank 0: until its writes are done); no-op in one process."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def _gather_on_first(self, items: list[Any]) -> list[list[Any]]:
        """Every rank's ``items``, in rank order, on rank 0 (the other ranks get [])."""
        if self.world_size == 1:
            return [items]
        import torch.distributed as dist

        parts: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        dist.gather_object(items, parts, dst=0)
        return parts or []

    @contextlib.contextmanager
    def _staged_adapter(self) -> Iterator[Path]:
        """The learner's adapter saved to a scratch folder, for the pool to copy."""
        folder = self.out / ".adapter-staging"
        shutil.rmtree(folder, ignore_errors=True)
        self.learner.model.save_pretrained(folder, selected_adapters=["default"])
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- playing ---------------------------------------------------------------------
    def _agents(self, names: Iterable[str]) -> dict[str, Any]:
        agents: dict[str, Any] = {LEARNER: self.player}
        guided = self.config.learner.guided  # the pool's checkpoints play as the learner does
        for name in names:
            if name not in self.pool:  # a player outside the pool: a scripted player or another model's spec
                agents[name] = load_agent(name)
                continue
            entry = self.pool.get(name)
            if entry.kind == "lora" and self.vllm_base is not None:
                adapter = self.pool.path_of(name)
                agents[name] = load_agent(ModelSpec("vllm", self.vllm_base, lora=str(adapter),
                                                    raw=f"vllm:{self.vllm_base}+lora:{adapter}", guided=guided))
            elif entry.kind == "lora":
                agents[name] = self.bank.agent(name, str(self.pool.path_of(name)), guided=guided)
            else:
                agents[name] = load_agent(entry.spec)
        return agents

    def _specs(self, seeds: Sequence[int], split: str, tag: str, opponent: Callable[[str], str],
               plays: int = 1) -> list[EpisodeSpec]:
        """The instance drawn from ``seeds[i]``, played ``plays`` times (plays 0, 1, ...: new
        reply seeds) with the learner in role i mod #roles and ``opponent(role)`` in every
        other seat (called once per seat and instance, in role order), under the training game
        options (:meth:`~.config.LeagueConfig.train_options`)."""
        specs = []
        for i, seed in enumerate(seeds):
            learner_seat = self.roles[i % len(self.roles)]
            seats = {role: LEARNER if role == learner_seat else opponent(role) for role in self.roles}
            seatings = [seats]
            if self.config.paired_training:  # the same players, every seat the learner's once (rotations)
                order = [seats[role] for role in self.roles]
                seatings = [dict(zip(self.roles, order[k:] + order[:k], strict=True)) for k in range(len(self.roles))]
            specs += [EpisodeSpec(game=self.config.game, seed=seed, seats=seating, level=self.config.learner.level,
                                  split=split, play=play, game_options=self.config.train_options(), tags={"league": tag})
                      for seating in seatings for play in range(plays)]
        return specs

    def _candidates(self, sampler: Sampler) -> list[str]:
        if isinstance(sampler, Fixed):
            return list(sampler.entries)
        return [e.name for e in self.pool.entries if e.kind != "external"]

    def crossplay(self, opponent: str, episodes: int, key: int) -> PairedMatches:
        """The learner's matches (at ``eval_temperature``) against the pool member ``opponent``, paired: about
        ``episodes`` matches, rounded up to whole instances (:func:`eval_instances`), each of
        the held-out instances ``eval_seeds(key, ...)`` played once with the learner in every
        seat; recorded nowhere. Pick a ``key`` above ``iterations`` for instances the league's
        own evaluations never met."""
        return self._evaluate([opponent], key, episodes)[opponent]

    def _evaluate(self, opponents: Sequence[str], iteration: int, episodes: int | None = None) -> dict[str, PairedMatches]:
        """Paired matches (at ``eval_temperature``) of the learner against each opponent (:func:`play_paired`) on
        the test-split instances of ``iteration``: ``episodes`` (default ``eval_episodes``)
        matches each, rounded up to whole instances."""
        seeds = eval_seeds(iteration, eval_instances(episodes or self.config.eval_episodes, len(self.roles)))
        played = self.paired([(LEARNER, opponent) for opponent in opponents], seeds, f"eval-{iteration}")
        return {opponent: played[LEARNER, opponent] for opponent in opponents}

    def paired(self, pairs: Sequence[tuple[str, str]], seeds: Sequence[int], tag: str, live: int | None = None,
               temperature: float | None = None) -> dict[tuple[str, str], PairedMatches]:
        """Paired matches (:func:`play_paired`) of each pair ``(a, b)``, ``a``'s scores, on the
        test-split instances drawn from ``seeds``, at ``temperature`` (default: the league's
        ``eval_temperature``; sampled replies are seeded per instance, so a rerun replays them).
        A name is the learner (:data:`~.core.LEARNER`), a pool member, or a model spec outside
        the pool (``scripted:...``); at most ``live`` episodes at once (default: all). Every
        rank plays its share of the instances and the scores are summed across ranks, so every
        rank returns all of them."""
        c = self.config
        names = {n for pair in pairs for n in pair if n != LEARNER}
        sampling = Sampling(temperature=c.eval_temperature if temperature is None else temperature,
                            max_new_tokens=c.learner.max_new_tokens)
        engine = RolloutEngine(self._agents(names), sampling=sampling, max_concurrent=live)
        local = np.zeros((len(pairs), len(seeds), len(self.roles)))  # the others' scores are 0 here and come in the sum
        for k, (a, b) in enumerate(pairs):
            share, _ = play_paired(engine, c.game, a, b, seeds[self.rank::self.world_size], level=c.learner.level,
                                   game_options=c.learner.options(), tag=tag)
            local[k, self.rank::self.world_size] = np.reshape(share.scores, (-1, len(self.roles)))
        every = np.reshape(self.learner.sum_across_ranks(local.ravel().tolist()), local.shape)
        return {(a, b): PairedMatches(b, tuple(self.roles), tuple(seeds), tuple(map(tuple, every[k].tolist())))
                for k, (a, b) in enumerate(pairs)}

    def payoff(self, episodes: int, key: int = PAYOFF_KEY, *, add: Sequence[str] = (), live: int | None = None,
               progress: Callable[[str, str, PairedMatches], None] | None = None) -> MetaGame:
        """The meta-game of the pool (:mod:`~dialogym.benchmarks.metagame`): every pair of its
        members that met in fewer than ``episodes`` matches plays ``episodes`` more (paired, at
        the league's ``eval_temperature``, rounded up to whole instances) on held-out instances (``eval_seeds(key, ...)``;
        ``key`` above ``iterations``, so the league's own evaluations never met them); the
        results are recorded (a rerun plays only what is still missing) and the ratings refit.
        ``add`` names players that join the pool first as external members (scripted players,
        say: the league never trains against them). Returns the payoff table of every recorded
        result, its Nash mixture and each member's exploitability."""
        completed = (self._state() or {}).get("completed", 0)
        if self.rank == 0:
            for name in add:
                if name not in self.pool:
                    self.pool.add(name, kind="external", spec=name, iteration=completed)
        self._barrier()
        if self.rank != 0:
            self.pool.reload()
        members, recorded = self.pool.names, self.pool.results()
        met = Counter((r.a, r.b) for r in recorded) + Counter((r.b, r.a) for r in recorded)
        pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1:] if met[a, b] < episodes]
        seeds = eval_seeds(key, eval_instances(episodes, len(self.roles)))
        for a, b in pairs:  # one pair at a time: each is recorded as it ends, so a kill loses one pair at most
            matches = self.paired([(a, b)], seeds, f"payoff-{key}", live)[a, b]
            if self.rank == 0:
                self.pool.record(matches.results(a, self.config.game, completed))
            if progress is not None:
                progress(a, b, matches)
        if self.rank == 0 and pairs:
            self.pool.update_ratings()
        self._barrier()
        if self.rank != 0:
            self.pool.reload()
        return pool_metagame(self.pool)

    def run(self, progress: bool = False, stop: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Start or resume the league and play its remaining iterations; ``stop`` (called
        with each iteration's line) ends it early when it returns True (a time budget)."""
        start, lines = self._resume(), []
        for i in range(start + 1, self.config.iterations + 1):
            lines.append(self.iteration(i, progress))
            if stop is not None and stop(lines[-1]):
                break
        return lines

    def iteration(self, iteration: int, progress: bool = False) -> dict[str, Any]:
        c, cfg = self.config, self.config.learner
        # seeded per iteration, so a resumed league draws what an uninterrupted one would
        rng = np.random.default_rng([cfg.seed, iteration])
        checkpoints = [e.name for e in self.pool.entries if e.kind != "external"]
        latest = checkpoints[-1]
        rates = self.pool.get(latest).win_rates  # refit with the ratings after every record

        def draw(role: str) -> str:
            sampler = self.samplers[role]
            return sampler.sample(self._candidates(sampler), rng, rates.get)

        # every rank draws the whole plan, so that all agree on it, and plays its share
        plays = c.plays()  # GRPO groups: plays of one instance and seating
        specs = self._specs(train_seeds(cfg.seed, iteration, c.episodes // (plays * self.seatings)), "train",
                            f"train-{iteration}", draw, plays)
        mine = [s for i, s in enumerate(specs) if (i // plays) % self.world_size == self.rank]  # whole groups per rank
        sampling = Sampling(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
        names = {n for s in mine for n in s.seats.values() if n != LEARNER}
        temperatures = {n: c.base_temperature if n == checkpoints[0] and c.base_temperature is not None
                        else c.opponent_temperature for n in names}
        own = {n: sampling.with_(temperature=t) for n, t in temperatures.items() if t is not None}
        engine = RolloutEngine(self._agents(names), sampling=sampling, agent_sampling=own, progress=progress and self.rank == 0)
        with EpisodeWriter(self.out / "episodes.jsonl") if self.rank == 0 else contextlib.nullcontext() as writer:
            played = engine.run(mine, writer=writer)
            for part in self._gather_on_first(played)[1:]:  # rank 0 records the other ranks' episodes too
                writer.write_many(part)
        self.learner.model.set_adapter("default")  # the trained adapter, whatever played last
        before = self.learner.trainable_state() if c.rollback else None
        metrics = self.learner.update(played)  # this rank's episodes; the gradients are summed across ranks

        candidates = list(dict.fromkeys(n for s in self.samplers.values() for n in self._candidates(s)))
        ratings = {e.name: e.rating for e in self.pool.entries}
        opponents, best = choose_eval_opponents(candidates, ratings, latest, c.eval_opponents, gated=c.gate is not None)
        name = f"it-{iteration}"
        matches = self._evaluate(opponents, iteration)
        results = [r for m in matches.values() for r in m.results(name, c.game, iteration)]
        scores = {opponent: m.mean for opponent, m in matches.items()}
        admitted = c.gate is None or scores[best] >= c.gate
        if before is not None:
            if not admitted:  # every rank: the scores are summed across ranks, so all agree
                self.learner.load_trainable_state(before)
            metrics["rolled_back"] = float(not admitted)
        evaluation = {opponent: m.summary() for opponent, m in matches.items()}

        def summary() -> dict[str, Any]:
            ratings = {e.name: e.rating for e in self.pool.entries}
            intervals = {e.name: [e.rating_lo, e.rating_hi] for e in self.pool.entries if e.rating is not None}
            return {"iteration": iteration, **metrics, "admitted": admitted, "eval": scores, "evaluation": evaluation,
                    "ratings": ratings, "rating_intervals": intervals}

        if self.rank == 0:
            if admitted:
                with self._staged_adapter() as folder:
                    self.pool.add(name, source=folder, base_spec=c.model, iteration=iteration, parent=latest, step=iteration, games=[c.game])
                self.pool.record(results)
                self.pool.update_ratings()
            line = summary()
            append_text(self.out / "league.jsonl", json.dumps(line) + "\n")
            self._commit(iteration)
        self._barrier()
        if self.rank != 0:  # the pool as rank 0 committed it, for the next iteration's draws
            self.pool.reload()
            line = summary()
        return line


#: append-only files of a league folder, cut back to their committed size on resume
LOGS = ("league.jsonl", "episodes.jsonl")

#: the first key of each stream of instance seeds, so that no two streams share a seed
_TRAIN, _EVAL = 0, 1


def train_seeds(seed: int, iteration: int, n: int) -> list[int]:
    """The instance seeds of an iteration's ``n`` training episodes in the league seeded ``seed``."""
    return [derive_seed(_TRAIN, seed, iteration, i) for i in range(n)]


def eval_seeds(iteration: int, n: int) -> list[int]:
    """The seeds of an iteration's ``n`` evaluation instances (against each opponent): the
    same in every league, whatever its seed, so that leagues meet the same test instances."""
    return [derive_seed(_EVAL, iteration, i) for i in range(n)]


def eval_instances(episodes: int, seats: int) -> int:
    """The instances that ``episodes`` paired matches in a game of ``seats`` seats take:
    ``episodes / seats`` rounded up, since every instance is played once with the learner in
    each seat (8 matches of a two-seat game: 4 instances)."""
    return -(-episodes // seats)


@dataclass(frozen=True)
class PairedMatches:
    """A player's matches against one opponent, every instance played once with the player in
    each seat: ``scores[i][j]`` is its score (1 win, 0.5 tie, 0 loss) on the instance drawn
    from ``seeds[i]`` with the player in ``seats[j]`` and the opponent in every other seat.

    An instance's row holds both sides of it, so what the instance or a seat gives away
    cancels within the row: in a two-seat game a player against itself scores exactly 0.5 on
    every instance. Intervals resample rows (instances), not matches."""

    opponent: str
    seats: tuple[str, ...]
    seeds: tuple[int, ...]
    scores: tuple[tuple[float, ...], ...]

    @property
    def mean(self) -> float:
        """The mean score over every match (and so over instances)."""
        return float(np.mean(self.scores)) if self.scores else float("nan")

    def win_rate(self, seed: int = 0) -> Estimate:
        """The mean score with its 95% bootstrap interval over instances; ``n`` is the number of instances."""
        return paired_win_rate(self.scores, seed=seed)

    def seat_scores(self) -> dict[str, list[float]]:
        """The player's score on every instance in each seat."""
        return {seat: [row[j] for row in self.scores] for j, seat in enumerate(self.seats)}

    def by_seat(self) -> dict[str, dict[str, int]]:
        """The player's wins, losses and ties in each seat (a score above 0.5 wins, below loses)."""
        return {seat: {"wins": sum(x > 0.5 for x in column), "losses": sum(x < 0.5 for x in column),
                       "ties": sum(x == 0.5 for x in column)} for seat, column in self.seat_scores().items()}

    def results(self, name: str, game: str, iteration: int) -> list[MatchResult]:
        """One pool result per match, the player named ``name``, with its seat and the instance's seed."""
        return [MatchResult(a=name, b=self.opponent, score=score, game=game, iteration=iteration, seat=seat, seed=seed)
                for seed, row in zip(self.seeds, self.scores, strict=True) for seat, score in zip(self.seats, row, strict=True)]

    def summary(self) -> dict[str, Any]:
        """What ``league.jsonl`` keeps of the matches: the win rate with its interval over
        instances (``n`` instances, ``matches`` matches) and the outcomes in each seat."""
        return {"win_rate": self.win_rate().as_dict(), "matches": len(self.seeds) * len(self.seats), "by_seat": self.by_seat()}


def play_paired(engine: RolloutEngine, game: str, player: str, opponent: str, seeds: Sequence[int], *,
                level: str | None = None, game_options: Mapping[str, Any] | None = None,
                tag: str = "") -> tuple[PairedMatches, list[Episode]]:
    """``player`` against ``opponent`` (names of ``engine``'s agents) on the test-split
    instances drawn from ``seeds``, each instance played once with ``player`` in every seat
    and ``opponent`` in all the others: both seat orders of a two-seat game; in a game with
    more seats the player rotates through each of them. Returns the matches and the episodes,
    instance-major (instance ``i`` with the player in seat ``j`` is episode ``i * seats + j``).

    A match is scored by :func:`~dialogym.benchmarks.scores.match_score`, or in a cooperative
    game, where the seats share the reward, by
    :func:`~dialogym.benchmarks.scores.partner_score` against the opponent's own team on the
    instance (played once per instance, for every seat order)."""
    game_cls = spec(game).game_cls
    roles = tuple(game_cls.roles)

    def specs(seats_of: Callable[[str], dict[str, str]], orders: Sequence[str]) -> list[EpisodeSpec]:
        return [EpisodeSpec(game=game, seed=seed, seats=seats_of(seat), level=level, split="test",
                            game_options=dict(game_options or {}), tags={"league": tag}) for seed in seeds for seat in orders]

    played = engine.run(specs(lambda mine: {role: player if role == mine else opponent for role in roles}, roles))
    if game_cls.cooperative:
        alone = engine.run(specs(lambda _: dict.fromkeys(roles, opponent), roles[:1]))
        points = [partner_score(e, alone[k // len(roles)], player) for k, e in enumerate(played)]
    else:
        points = [match_score(e, player, opponent) for e in played]
    rows = tuple(tuple(points[i * len(roles):(i + 1) * len(roles)]) for i in range(len(seeds)))
    return PairedMatches(opponent, roles, tuple(seeds), rows), played


def choose_eval_opponents(
    candidates: Sequence[str], ratings: Mapping[str, float | None], latest: str, n: int, *, gated: bool
) -> tuple[list[str], str]:
    """The (at most ``n``) opponents a new checkpoint is evaluated against, and the best
    rated candidate: the latest checkpoint, the best, then the rest by rating — the best
    first when a gate needs its score."""
    ranked = sorted(candidates, key=lambda c: -(ratings.get(c) or 0.0))  # unrated last, in pool order
    best = ranked[0]
    head = [best, latest] if gated else [latest, best]
    return [c for c in dict.fromkeys([*head, *ranked]) if c in candidates][:n], best


def _check_learner_model(model: ModelSpec) -> None:
    if model.kind not in ("smollm2", "tiny", "hf") or model.lora:
        raise ValueError(
            f"league model {model.raw!r}: the learner is a LoRA adapter trained with transformers, so the base model "
            "must be smollm2, tiny or hf:<folder>; to play the pool's checkpoints on vLLM, add --opponents-on vllm"
        )


def _vllm_base(model: ModelSpec) -> str:
    """The folder vLLM loads for the league's base model; clear errors where there is none."""
    from dialogym.agents.models import smollm2_path
    from dialogym.agents.vllm_backend import import_vllm

    if model.kind == "tiny":
        raise ValueError("opponents on vllm need a model folder; the tiny model is built in code (use smollm2 or hf:<folder>)")
    try:
        import_vllm()
    except ImportError as err:
        raise ValueError(f"opponents on vllm: {err}") from None
    return str(smollm2_path()) if model.kind == "smollm2" else model.target


def _truncate(path: Path, size: int | None) -> None:
    """Cut ``path`` back to ``size`` bytes (what the last commit saw); None leaves it."""
    if size is not None and path.exists() and path.stat().st_size > size:
        with path.open("rb+") as handle:
            handle.truncate(size)


def final_ratings(pool: CheckpointPool) -> dict[str, list[Any]]:
    """Each checkpoint's rating at the end, as :func:`draw_ratings` takes it: name ->
    (iteration, lo, rating, hi); the external members (scripted players) left out."""
    return {e.name: [e.iteration, e.rating_lo, e.rating, e.rating_hi] for e in pool.entries if e.kind != "external"}


def draw_ratings(ax: Any, lines: Sequence[Mapping[str, Any]], final: Mapping[str, Sequence[float]] | None = None) -> None:
    """Each checkpoint's Bradley-Terry rating after every iteration of ``lines`` (the league's
    ``league.jsonl``), with its 95% interval as a band where the line records one; and, given
    ``final`` (checkpoint -> (iteration, lo, rating, hi): the pool's ratings at the end, after a
    payoff table say), each checkpoint's final rating at its own iteration, with its interval as
    an error bar: the curve of the checkpoints' strength over the league."""
    from matplotlib.ticker import MaxNLocator

    names = list(dict.fromkeys(n for line in lines for n in line["ratings"]))
    for name in names:
        rated = [line for line in lines if line["ratings"].get(name) is not None]
        xs = [line["iteration"] for line in rated]
        (curve,) = ax.plot(xs, [line["ratings"][name] for line in rated], marker="o", markersize=3, label=name)
        bands = [(line["iteration"], *line["rating_intervals"][name]) for line in rated if name in line.get("rating_intervals", {})]
        if bands:
            x, lo, hi = zip(*bands, strict=True)
            ax.fill_between(x, lo, hi, color=curve.get_color(), alpha=0.15, linewidth=0)
    rated = sorted((x, lo, mid, hi) for x, lo, mid, hi in (final or {}).values() if None not in (lo, mid, hi))
    if rated:
        x, lo, mid, hi = (np.array(column, dtype=float) for column in zip(*rated, strict=True))
        ax.errorbar(x, mid, yerr=[mid - lo, hi - mid], color="black", marker="s", markersize=5, capsize=3, linewidth=1.5,
                    label="each checkpoint, final", zorder=5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="league iteration", ylabel="Bradley-Terry rating (Elo scale)", title="ratings of the pool [95% interval]")
    ax.legend(fontsize=7, ncol=2)


def pool_metagame(pool: CheckpointPool) -> MetaGame:
    """The payoff table of every result the pool recorded, and its Nash mixture where every pair met."""
    return metagame([(r.a, r.b, r.score) for r in pool.results()], players=pool.names)


def write_league_report(out: Path) -> Path:
    """The league's report in ``out/report``: ratings.png (every checkpoint's rating over the
    iterations, with intervals, and each one's rating at the end at its own iteration), payoff.png (the payoff table, with the Nash weights where every
    pair met) and index.html; the meta-game also as ``out/metagame.json`` and ``out/payoff.csv``.
    Under a multi-process launcher only rank 0 writes them; the other ranks return the path."""
    import html
    import io

    if int(os.environ.get("RANK", "0")) != 0:
        return out / "report" / "index.html"

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dialogym.benchmarks.metagame import write_metagame
    from dialogym.benchmarks.report import plot_payoff

    lines = [json.loads(x) for x in (out / "league.jsonl").read_text().splitlines() if x.strip()]
    pool = CheckpointPool(out / "pool")
    fig, ax = plt.subplots(figsize=(7, 4))
    draw_ratings(ax, lines, final_ratings(pool))
    report = out / "report"
    report.mkdir(exist_ok=True)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(report / "ratings.png", buffer.getvalue())
    game = pool_metagame(pool) if pool.results() else None
    if game is not None:
        write_metagame(out, game)
        atomic_write_bytes(report / "payoff.png", plot_payoff(game))
    rows = "".join(
        f"<tr><td>{html.escape(e.name)}</td><td>{e.iteration}</td><td>{'' if e.rating is None else f'{e.rating:.0f} [{e.rating_lo:.0f}, {e.rating_hi:.0f}]'}</td><td>{e.matches}</td></tr>"
        for e in pool.entries
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>dialogym league</title></head><body>"
        "<h1>League</h1><h2>Ratings over iterations</h2><img src='ratings.png' alt='ratings'>"
        + ("<h2>Payoff table and Nash weights</h2><img src='payoff.png' alt='payoff table'>" if game else "")
        + "<h2>Checkpoints</h2><table><tr><th>checkpoint</th><th>iteration</th><th>rating [95% CI]</th><th>matches</th></tr>"
        + rows + "</table></body></html>"
    )
    return atomic_write_text(report / "index.html", page)
