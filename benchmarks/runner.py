"""The benchmark runner: games x instances x model pairings, played once, resumable.

A run lives in one folder::

    bench.json       the run's config (written first; a resume must match it)
    episodes.jsonl   every finished episode, appended atomically as it ends
    scores.csv       the tidy per-episode score table (also scores.parquet with pyarrow)
    summary.json     aggregates with intervals, ratings
    report/          the static HTML report

Every planned episode has a key (game, instance, seed, seats, tags); restarting a run
plays only the planned episodes whose key is not yet in ``episodes.jsonl``. Nothing is
written before the plan, the folder and the agents are known to be good; when an agent fails
mid-run (a model server's error), the episodes finished before it stay in ``episodes.jsonl``
and :class:`AgentError` says so in one line.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from dialogym.agents.rollout import EpisodeSpec
from dialogym.agents.specs import ModelSpec, parse_spec
from dialogym.envs import Episode, atomic_write_text, generate_instance_set, read_episodes, resolve_ids, spec
from dialogym.envs.files import truncate_torn_tail

if TYPE_CHECKING:
    from dialogym.agents.base import Sampling
    from dialogym.agents.rollout import RolloutEngine
    from dialogym.envs import EpisodeWriter

CONFIG_FILE = "bench.json"
EPISODES_FILE = "episodes.jsonl"
#: Fields that do not change which episodes are played or how, so a resume may differ in them.
_RUNTIME_FIELDS = {"concurrency", "ray", "ray_workers"}


class BenchConfig(BaseModel):
    """Everything that defines a benchmark run: the ``dialogym bench`` options and the keys of
    its ``--config`` file are generated from these fields (``dialogym play`` sets some too).

    ``models`` holds the model-spec strings (what ``bench.json`` stores); :attr:`specs` holds
    them parsed, once, when the config is validated."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="run name, stored in every episode's tags (default: the out folder's name)")
    games: list[str] = Field(
        default_factory=lambda: ["all"], description="games: 'all', or ids/short names separated by commas"
    )
    models: list[str] = Field(
        default_factory=lambda: ["scripted"], description="model specs separated by commas, e.g. smollm2,scripted"
    )
    guided: bool = Field(
        False, description="guided moves: every model (not scripted or human players) plays as <spec>+guided, "
        "its replies decoded under each seat's move grammar (--free: as written)"
    )
    mode: Literal["selfplay", "crossplay"] = Field(
        "selfplay", description="selfplay (a model fills every seat) or crossplay (pairs of models)"
    )
    seat: str = Field(
        "", description="crossplay: the first model plays only this seat and each other model the rest "
        "(default: every model in every seat)"
    )
    episodes: int = Field(8, ge=1, description="instances per game; every pairing plays all of them")
    split: Literal["train", "test", "any"] = Field("test", description="instance split")
    level: str = Field("", description="instance level for every game (default: each game's default)")
    seed: int = Field(0, ge=0, description="seed of the instance sets; episode i uses seed+i")
    temperature: float = Field(0.0, ge=0.0, description="sampling temperature (0 = greedy)")
    max_new_tokens: int = Field(64, ge=1, description="longest reply (games cap it further)")
    concurrency: int = Field(64, ge=1, description="episodes played at once (per Ray worker with ray)")
    ray: str = Field("", description="play on Ray: 'local' (a Ray started here), 'auto' or 'ray://host:10001' (default: in-process)")
    ray_workers: int = Field(2, ge=1, description="Ray workers, each holding its own copy of the models")
    _specs: dict[str, ModelSpec] = PrivateAttr(default_factory=dict)

    @field_validator("games", "models", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, list):
            value = [str(v).strip() for v in value if str(v).strip()]
        return value

    @field_validator("games")
    @classmethod
    def _check_games(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one game, or 'all'")
        return value

    @field_validator("models")
    @classmethod
    def _check_models(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one model")
        if len(set(value)) != len(value):
            raise ValueError(f"a model is named twice in {value}")
        for item in value:
            parse_spec(item)  # a bad spec is refused here, as the setting 'models'
        return value

    @model_validator(mode="after")
    def _parse_models(self) -> BenchConfig:
        specs = [parse_spec(m) for m in self.models]
        # Guided moves are spelled in the model specs, where agents, episodes' seats and
        # scores see them; the flag is a short way of writing +guided on every model.
        if self.guided:
            specs = [s.as_guided() for s in specs]
            models = [s.raw for s in specs]
            twice = sorted({m for m in models if models.count(m) > 1})
            if twice:
                raise ValueError(
                    f"guided plays every model as <spec>+guided, so {twice[0]!r} would play twice; "
                    "name it once, or leave guided off and write +guided on the models to guide"
                )
            self.models = models
        self._specs = dict(zip(self.models, specs, strict=True))
        return self

    @property
    def specs(self) -> dict[str, ModelSpec]:
        """Each model's spec, parsed: model (as in ``models``) -> :class:`ModelSpec`."""
        if list(self._specs) != self.models:  # models changed without validation (model_copy(update=...))
            self._specs = {m: parse_spec(m) for m in self.models}
        return self._specs

    @model_validator(mode="after")
    def _seat_needs_crossplay(self) -> BenchConfig:
        if self.seat and self.mode != "crossplay":
            raise ValueError(f"seat {self.seat!r} is a crossplay setting; in selfplay a model fills every seat")
        return self

    def resolved(self, out: Path) -> BenchConfig:
        """This config with game ids resolved and the name filled in (what a run stores)."""
        return self.model_copy(update={"games": resolve_ids(self.games), "name": self.name or out.resolve().name})

    def identity(self) -> dict[str, Any]:
        # ``guided`` is left out: the models already say it, so ``--models tiny --guided`` and
        # ``--models tiny+guided`` are one run.
        return self.model_dump(exclude=_RUNTIME_FIELDS | {"guided"})

    def moves(self) -> dict[str, str]:
        """How each model makes its moves, by spec: see :func:`moves_of`."""
        return {model: moves_of(spec) for model, spec in self.specs.items()}


def guided_spec(model: str) -> str:
    """``model`` with guided moves (:meth:`ModelSpec.as_guided`): ``<model>+guided`` for a
    model, as it is for a model already guided and for scripted and human players (which have
    no grammar to follow)."""
    spec = parse_spec(model)
    return model if spec.as_guided() == spec else f"{model}+guided"


def moves_of(model: str | ModelSpec) -> str:
    """``"guided"`` (a ``+guided`` model: replies decoded under the seat's move grammar),
    ``"free"`` (a model writing as it likes) or the player's kind (``"scripted"``, ``"human"``)."""
    spec = parse_spec(model) if isinstance(model, str) else model
    if not spec.is_model:
        return spec.kind
    return "guided" if spec.guided else "free"


# --------------------------------------------------------------------------- pairings
def selfplay_assignments(models: Sequence[str], roles: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """Each model fills every seat."""
    return [(model, {role: model for role in roles}) for model in models]


def crossplay_assignments(
    models: Sequence[str], roles: Sequence[str], seat: str = ""
) -> list[tuple[str, dict[str, str]]]:
    """Seat assignments of every pair of distinct models, balanced over seats.

    For each pair (A, B) and each seat s: A alone in s and B in every other seat, and the
    same with A and B swapped; duplicates are dropped (with two seats the two families
    coincide and give A-B and B-A). So every model fills every seat equally often against
    each opponent, and no model is favoured by its seat. The label lists the seats' models
    in seat order, e.g. ``"smollm2 vs scripted"``.

    With ``seat``, only the first model is tested, in that seat alone, against each other
    model in every other seat (what ``dialogym play --opponent`` runs): one assignment per
    opponent.
    """
    if len(models) < 2:
        raise ValueError(f"cross-play needs at least two models, got {list(models)}")
    out: dict[tuple[str, ...], dict[str, str]] = {}
    if seat:
        first, *others = models
        for other in others:
            order = tuple(first if role == seat else other for role in roles)
            out.setdefault(order, dict(zip(roles, order, strict=True)))
        return [(" vs ".join(order), seats) for order, seats in out.items()]
    for a, b in itertools.combinations(models, 2):
        for alone, rest in ((a, b), (b, a)):
            for seat_index in range(len(roles)):
                order = tuple(alone if i == seat_index else rest for i in range(len(roles)))
                out.setdefault(order, dict(zip(roles, order, strict=True)))
    return [(" vs ".join(order), seats) for order, seats in out.items()]


def plan(config: BenchConfig) -> list[EpisodeSpec]:
    """Every episode of the run, in a fixed order. ``config`` must be :meth:`resolved`."""
    specs: list[EpisodeSpec] = []
    for game_id in config.games:
        game_spec = spec(game_id)
        roles = game_spec.game_cls.roles
        for model, model_spec in config.specs.items():
            variant = model_spec.target
            if model_spec.kind == "scripted" and (not game_spec.players or (variant and variant not in game_spec.players)):
                have = ", ".join(f"scripted:{v}" for v in game_spec.players) or "none"
                raise ValueError(f"{game_id} has no scripted player {model!r} (it has: {have}); leave the game or the model out")
        if config.seat and config.seat not in roles:
            raise ValueError(f"{game_id} has no seat {config.seat!r}; seats are {list(roles)}")
        level = config.level or None
        if level is not None and level not in game_spec.game_cls.levels:
            raise ValueError(f"{game_id}: unknown level {level!r}; choose one of {list(game_spec.game_cls.levels)}")
        instances = generate_instance_set(
            game_id, config.episodes, seed=config.seed, level=level, split=config.split, allow_repeats=True
        )
        if config.mode == "selfplay":
            pairings = selfplay_assignments(config.models, roles)
        else:
            pairings = crossplay_assignments(config.models, roles, config.seat)
        for pairing, seats in pairings:
            for index, instance in enumerate(instances.instances):
                specs.append(
                    EpisodeSpec(
                        game=game_id,
                        # Not derive_seed (docs/architecture.md, "Seeds"): every published benchmark figure
                        # and every resumable run folder depends on seed + index; bench.json records config.seed.
                        seed=config.seed + index,
                        seats=seats,
                        instance=instance,
                        level=instances.level,
                        split=config.split,
                        tags={"bench": config.name, "mode": config.mode, "pairing": pairing},
                    )
                )
    return specs


def spec_key(item: EpisodeSpec) -> tuple[Any, ...]:
    game = spec(item.game).game_cls
    instance = item.instance if not isinstance(item.instance, dict) else game.instance_cls.model_validate(item.instance)
    assert instance is not None
    return (item.game, instance.id, item.seed, tuple(sorted(item.seats.items())), tuple(sorted(item.tags.items())))


def episode_key(episode: Episode) -> tuple[Any, ...]:
    return (
        episode.game, episode.instance_id, episode.seed, tuple(sorted(episode.seats.items())),
        tuple(sorted(episode.tags.items())),
    )


# --------------------------------------------------------------------------- running
class AgentError(RuntimeError):
    """An agent failed during a run: a model server's error (``BackendError``) or another
    backend's ``RuntimeError``, with the agent's name. The episodes finished before it are in
    ``episodes.jsonl``, so rerunning the same command resumes the run."""


class _Named:
    """An agent whose failures become :class:`AgentError` naming it; otherwise the agent itself."""

    def __init__(self, name: str, agent: Any) -> None:
        self._name, self._agent = name, agent

    def act(self, requests: Sequence[Any]) -> list[Any]:
        try:
            return self._agent.act(requests)
        except RuntimeError as err:
            raise AgentError(f"model {self._name!r} failed: {err}") from err

    def __getattr__(self, attribute: str) -> Any:
        found = getattr(self._agent, attribute)
        return self._send if attribute == "send" else found

    def _send(self, request: Any) -> Future[Any]:
        """A remote agent's ``send``, its failure an :class:`AgentError` naming it."""
        named: Future[Any] = Future()

        def settle(sent: Future[Any]) -> None:
            error = None if sent.cancelled() else sent.exception()
            if isinstance(error, RuntimeError):
                error = AgentError(f"model {self._name!r} failed: {error}")
                error.__cause__ = sent.exception()
            with contextlib.suppress(InvalidStateError):  # the engine gave up on it first
                if sent.cancelled():
                    named.cancel()
                elif error is not None:
                    named.set_exception(error)
                else:
                    named.set_result(sent.result())

        sent = self._agent.send(request)
        sent.add_done_callback(settle)
        named.add_done_callback(lambda f: sent.cancel() if f.cancelled() else None)
        return named


def check_out_folder(out: Path) -> None:
    """Refuse (one line) an ``out`` that is a file or lies under one, before anything is written."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == out else f"lies under {folder}, which is a file"
                raise ValueError(f"--out {out} {where}, not a folder; give another --out")
            return


def stored_config(out: Path) -> BenchConfig | None:
    """The config stored in run folder ``out``, or None when it has none.

    Raises ``ValueError`` (one line) when ``out`` holds a ``bench.json`` that is not a bench config.
    """
    path = out / CONFIG_FILE
    if not path.exists():
        return None
    try:
        return BenchConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, OSError, UnicodeDecodeError) as err:
        reason = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
        raise ValueError(f"{path} is not a bench config ({reason}); use another --out") from None


def check_folder(config: BenchConfig, out: Path) -> BenchConfig:
    """The resolved config, if ``out`` may hold its run (new, or holding this run); writes nothing.

    Refused: a file as ``out``, a run of other settings (a ``play`` run is one: its sampling
    differs), and episodes without a ``bench.json`` (not a run this config can resume).
    """
    check_out_folder(out)
    resolved = config.resolved(out)
    stored = stored_config(out)
    if stored is not None:
        old, new = stored.identity(), resolved.identity()
        if old != new:
            changed = ", ".join(f"{k} ({old[k]!r} -> {new[k]!r})" for k in new if old.get(k) != new[k])
            raise ValueError(f"{out} holds a bench run with other settings: {changed}; rerun with the same settings or another --out")
    elif (out / EPISODES_FILE).exists() and (out / EPISODES_FILE).stat().st_size:
        raise ValueError(
            f"{out} holds {EPISODES_FILE} but no {CONFIG_FILE}, so no run this command could resume or add to; "
            "give another --out"
        )
    return resolved


def prepare_folder(config: BenchConfig, out: Path) -> BenchConfig:
    """Store the config in ``out`` or check it matches the one there; return the resolved config."""
    resolved = check_folder(config, out)
    atomic_write_text(out / CONFIG_FILE, resolved.model_dump_json(indent=1) + "\n")
    return resolved


def run_bench(
    config: BenchConfig,
    out: Path,
    *,
    agents: dict[str, Any] | None = None,
    progress: bool = False,
    on_episode: Callable[[Episode], None] | None = None,
) -> tuple[BenchConfig, list[Episode], int]:
    """Play every planned episode not yet in ``out``; return (config, all episodes, played now).

    ``agents`` maps model specs to ready agents (default: :func:`load_agent` of each). With
    ``config.ray`` the remaining episodes are cut into shards played by Ray workers
    (:func:`~dialogym.agents.distributed.run_on_ray`), each building its own agents: then
    ``agents`` values must be picklable zero-argument factories (or spec strings). Either
    way this process is the one writer of ``episodes.jsonl``, so a resume works the same.

    Nothing is written until the plan, the folder (:func:`check_folder`) and the agents are
    good. An agent that fails in-process raises :class:`AgentError`, after every episode
    finished before it was written.
    """
    from dialogym.agents.base import Sampling
    from dialogym.agents.rollout import RolloutEngine
    from dialogym.envs import EpisodeWriter

    out = Path(out)
    specs = plan(config.resolved(out))
    config = check_folder(config, out)
    path = out / EPISODES_FILE
    done = _finished_episodes(path, specs)
    todo = [s for s in specs if spec_key(s) not in done]
    agents = agents or {}
    engine_agents = _build_agents(config, agents) if todo else {}
    prepare_folder(config, out)
    if todo:
        # max_new_tokens caps free replies; a guided move gets its game's whole cap
        sampling = Sampling(temperature=config.temperature, max_new_tokens=config.max_new_tokens, guided_game_cap=True)
        with EpisodeWriter(path) as writer:
            if config.ray:
                played = _play_on_ray(config, todo, agents, writer, sampling, progress=progress, on_episode=on_episode)
            else:
                engine = RolloutEngine(engine_agents, sampling=sampling, max_concurrent=config.concurrency, progress=progress)
                played = _play_resumably(engine, todo, writer, on_episode, kept=len(done), planned=len(specs))
        for episode in played:
            done.setdefault(episode_key(episode), episode)
    episodes = [done[spec_key(s)] for s in specs]
    return config, episodes, len(todo)


def _finished_episodes(path: Path, specs: Sequence[EpisodeSpec]) -> dict[tuple[Any, ...], Episode]:
    """The episodes in ``path`` that ``specs`` plans, by key (the first of each key)."""
    planned = {spec_key(s) for s in specs}
    done: dict[tuple[Any, ...], Episode] = {}
    truncate_torn_tail(path)  # what a kill left; changes only a file that is already there
    for episode in read_episodes(path):
        key = episode_key(episode)
        if key in planned:
            done.setdefault(key, episode)
    return done


def _build_agents(config: BenchConfig, agents: dict[str, Any]) -> dict[str, Any]:
    """Every model's agent for playing in this process, built before anything is written (a
    model that cannot load leaves the folder as it was). On Ray, none: each worker builds its
    own, so ``agents`` may only hold what a worker can build."""
    from dialogym.agents.specs import load_agent

    if config.ray:
        unbuildable = sorted(m for m, a in agents.items() if not (isinstance(a, str) or callable(a)))
        if unbuildable:
            raise ValueError(
                f"bench on Ray: agents {unbuildable} are ready objects, but every Ray worker builds its own; "
                "pass model specs or picklable zero-argument factories"
            )
        return {}
    return {m: _Named(m, agents[m] if m in agents else load_agent(spec)) for m, spec in config.specs.items()}


def _play_on_ray(
    config: BenchConfig, todo: list[EpisodeSpec], agents: dict[str, Any], writer: EpisodeWriter, sampling: Sampling, *,
    progress: bool, on_episode: Callable[[Episode], None] | None,
) -> list[Episode]:
    """Play ``todo`` in shards of at most ``config.concurrency`` episodes on ``config.ray_workers``
    Ray workers, each building its own agents from ``agents`` (or from the model specs)."""
    from dialogym.agents.distributed import run_on_ray

    workers = config.ray_workers
    return run_on_ray(
        todo, {m: agents.get(m, spec) for m, spec in config.specs.items()}, address=config.ray, num_workers=workers,
        shard_size=min(config.concurrency, -(-len(todo) // workers)), writer=writer, sampling=sampling,
        max_concurrent=config.concurrency, progress=progress, on_episode=on_episode,
    )


def _play_resumably(
    engine: RolloutEngine, todo: list[EpisodeSpec], writer: EpisodeWriter, on_episode: Callable[[Episode], None] | None, *,
    kept: int, planned: int,
) -> list[Episode]:
    """Play ``todo`` in this process, each episode written as it ends. An agent's failure
    raises :class:`AgentError` saying how many of the ``planned`` episodes are in the file
    (``kept`` from before, and those finished now) and how to resume."""
    finished = 0

    def count(episode: Episode) -> None:
        nonlocal finished
        finished += 1
        if on_episode is not None:
            on_episode(episode)

    try:
        return engine.run(todo, writer=writer, on_episode=count)
    except AgentError as err:
        raise AgentError(
            f"{err} ({kept + finished} of {planned} episodes are in {writer.path}; rerun the same command to resume)"
        ) from err.__cause__
