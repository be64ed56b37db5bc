"""The game registry: ids in Gymnasium's ``namespace/Name-vN`` form mapped to games.

Outside packages add games through the ``dialogym.games`` entry-point group: the entry
point names a function that calls :func:`register` (or a module that does so on import).
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import gymnasium

from .core import Game

ENTRY_POINT_GROUP = "dialogym.games"
_ID_PATTERN = re.compile(r"^(?:[A-Za-z][\w.-]*/)?[A-Za-z][\w.:-]*-v\d+$")
#: Where Gymnasium finds the single-agent env of every registered game.
GYM_ENTRY_POINT = "dialogym.agents.gym_env:DialogueGymEnv"
#: Options that configure the environment rather than the game's constructor.
ENV_OPTIONS = frozenset({"level", "split", "max_retries", "render_mode", "instances"})

#: A scripted policy: (what the seat may know, a private generator) -> reply text.
Policy = Callable[[dict[str, Any], Any], str]


@dataclass
class GameSpec:
    id: str
    game_cls: type[Game]
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Scripted players: name -> role -> policy. The first name is the default.
    players: dict[str, dict[str, Policy]] = field(default_factory=dict)

    @property
    def default_level(self) -> str:
        """The level instances are drawn from unless one is named: the game's first level."""
        return self.game_cls.levels[0]

    def split_options(self, **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Merge ``kw`` over the defaults and split into (env options, game options)."""
        merged = {**self.defaults, **kw}
        env = {k: v for k, v in merged.items() if k in ENV_OPTIONS}
        game = {k: v for k, v in merged.items() if k not in ENV_OPTIONS}
        return env, game

    def game(self, **game_kw: Any) -> Game:
        _, game_options = self.split_options(**game_kw)
        try:
            return self.game_cls(**game_options)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{self.id}: bad game option: {err}") from err


_REGISTRY: dict[str, GameSpec] = {}
_plugins_loaded = False
#: entry points already loaded (name=value), never loaded twice
_plugins_done: set[str] = set()


def register(
    id: str,
    game_cls: type[Game],
    *,
    players: Mapping[str, Mapping[str, Policy]] | None = None,
    **defaults: Any,
) -> GameSpec:
    """Register ``game_cls`` under ``id`` (e.g. ``"dialogym/Reference-v0"``).

    ``defaults`` are options every episode of this id starts from (:func:`~.factory.new_match`,
    :func:`~.pettingzoo_env.make`): ``split``, ``max_retries`` or the game's own options. The
    default level is always the game's first level (``levels[0]``); ``level=`` is accepted only
    when it names that one. ``players`` maps a name to scripted policies per role; the
    ``scripted`` agent uses them. The id also becomes a Gymnasium id, so
    ``gymnasium.make(id, opponents=...)`` gives the single-agent env.

    The game's self-description is checked here: its levels, its ``reward_range`` (every
    seat, ``hi > lo``) and that a ``zero_sum`` game scores self-play its own way.
    """
    if not _ID_PATTERN.match(id):
        raise ValueError(f"game id {id!r} must look like 'dialogym/Name-v0'")
    if not (isinstance(game_cls, type) and issubclass(game_cls, Game)):
        raise TypeError(f"{id}: {game_cls!r} is not a subclass of dialogym.envs.Game")
    if not getattr(game_cls, "roles", None):
        raise TypeError(f"{id}: {game_cls.__name__}.roles must name at least one seat")
    _check_description(id, game_cls, defaults)
    old = _REGISTRY.get(id)
    if old is not None and old.game_cls is not game_cls:
        raise ValueError(f"{id} is already registered to {old.game_cls.__qualname__}")
    for name, by_role in (players or {}).items():
        unknown = set(by_role) - set(game_cls.roles)
        if unknown:
            raise ValueError(f"{id}: scripted player {name!r} names unknown roles {sorted(unknown)}")
    spec_ = GameSpec(id=id, game_cls=game_cls, defaults=dict(defaults), players={k: dict(v) for k, v in (players or {}).items()})
    _REGISTRY[id] = spec_
    if id not in gymnasium.registry:
        # By import path: the env drives its opponents with agents, a room to the right of
        # envs, so it is imported only when gymnasium.make builds one.
        gymnasium.register(id=id, entry_point=GYM_ENTRY_POINT, kwargs={"game_id": id}, disable_env_checker=True)
    return spec_


def _check_description(id: str, game_cls: type[Game], defaults: dict[str, Any]) -> None:
    """Refuse a game whose self-description (levels, reward ranges, self-play score) is wrong.

    Drops a ``level`` default equal to ``levels[0]``, so the game class stays its one source.
    """
    name = game_cls.__name__
    if not game_cls.levels:
        raise TypeError(f"{id}: {name}.levels must name at least one level")
    if "level" in defaults:
        if defaults["level"] != game_cls.levels[0]:
            raise ValueError(
                f"{id}: default level {defaults['level']!r} is not {name}.levels[0] ({game_cls.levels[0]!r}); "
                "put the default level first in levels and leave level= out of register()"
            )
        del defaults["level"]
    ranges = game_cls.reward_range
    if isinstance(ranges, Mapping):
        missing, unknown = set(game_cls.roles) - set(ranges), set(ranges) - set(game_cls.roles)
        if missing or unknown:
            raise ValueError(
                f"{id}: {name}.reward_range must name exactly the seats {list(game_cls.roles)} "
                f"(missing {sorted(missing)}, unknown {sorted(unknown)}), or be one (lo, hi) pair for all"
            )
    for seat in game_cls.roles:
        try:
            game_cls.seat_reward_range(seat)
        except (TypeError, IndexError, ValueError) as err:
            raise ValueError(f"{id}: bad reward_range: {err}; write e.g. reward_range = (0.0, 1.0)") from err
    if game_cls.zero_sum and game_cls.selfplay_score is Game.selfplay_score:
        raise TypeError(
            f"{id}: {name} is zero_sum but keeps the default selfplay_score, the mean over seats, which "
            "is the same however well one model plays every seat; override selfplay_score (and "
            "selfplay_description) with the outcome that shows skill"
        )


def load_plugins(*, quiet: bool = False) -> list[str]:
    """Import the games that installed packages announce in the entry-point group.

    Each entry point is loaded once; one that failed is tried again at the next call.
    Failures warn (unless ``quiet``) and are returned as ``"name: error"`` lines: a broken
    plug-in never breaks the built-in games.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return []
    failures = []
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = f"{entry.name}={entry.value}"
        if key in _plugins_done:
            continue
        try:
            loaded = entry.load()
            if callable(loaded):
                loaded()
        except Exception as err:  # a broken plug-in must not break the built-in games
            failures.append(f"{entry.value}: {err}")
            if not quiet:
                warnings.warn(f"dialogym: could not load games from {entry.value!r}: {err}", stacklevel=2)
        else:
            _plugins_done.add(key)
    _plugins_loaded = not failures or not quiet
    return failures


def registered() -> list[str]:
    """Ids of every registered game, sorted."""
    load_plugins()
    return sorted(_REGISTRY)


def spec(id: str) -> GameSpec:
    load_plugins()
    try:
        return _REGISTRY[id]
    except KeyError:
        close = difflib.get_close_matches(id, list(_REGISTRY), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; registered: {', '.join(sorted(_REGISTRY))}"
        raise KeyError(f"no game registered as {id!r}{hint}") from None


def resolve_ids(games: str | list[str]) -> list[str]:
    """Expand ``"all"`` (every registered id), ``"latest"`` (the newest version of each game),
    comma lists and short names (``"Reference"``: its newest version; dialogym's own game where
    another namespace has one of the same name) to registered ids."""
    names = games.split(",") if isinstance(games, str) else list(games)
    ids: list[str] = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        if name == "all":
            ids.extend(registered())
            continue
        if name == "latest":
            ids.extend(latest_versions(registered()))
            continue
        candidates = [i for i in registered() if i == name or short_name(i) == name.lower()]
        if not candidates and name not in _REGISTRY:
            close = difflib.get_close_matches(name.lower(), sorted({short_name(i) for i in registered()}), n=1)
            if close:
                raise KeyError(f"no game registered as {name!r}; did you mean {close[0]!r}?")
        # a short name two namespaces share ("kuhnpoker": dialogym's own and TextArena's) is dialogym's
        own = [i for i in candidates if i.startswith("dialogym/")] or candidates
        ids.append(own[-1] if own else spec(name).id)
    return list(dict.fromkeys(ids))


def latest_versions(ids: list[str]) -> list[str]:
    """The newest version of each game among ``ids`` (``ns/Name-vN``: the largest N), in the
    order of their first versions."""
    newest: dict[str, tuple[int, str]] = {}
    for game_id in ids:
        base, _, version = game_id.rpartition("-v")
        number = int(version) if base and version.isdigit() else -1
        key = base if number >= 0 else game_id
        if key not in newest or number > newest[key][0]:
            newest[key] = (number, game_id)
    return [game_id for _, game_id in newest.values()]


def short_name(game_id: str) -> str:
    """``"dialogym/Reference-v0"`` -> ``"reference"``: the name ``resolve_ids`` also takes (the
    id without its namespace and version, lower case)."""
    return game_id.split("/")[-1].rsplit("-v", 1)[0].lower()

