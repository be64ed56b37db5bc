"""envs/: the rules of the games, and nothing else (see docs/architecture.md).

Games, instances, the episode record, the invalid-move policy (``Match``), the registry,
move grammars and the PettingZoo AEC/Parallel adapters. The Gymnasium single-agent env drives
its other seats with agents, so it lives in ``agents/gym_env.py``; the registry names it to
Gymnasium by import path only.

Importing this package registers the built-in games and loads the games that installed
packages announce in the ``dialogym.games`` entry-point group, so ``gymnasium.make`` finds
them right after ``import dialogym``. A plug-in that fails to load never breaks the import.
"""

import warnings

from . import games  # noqa: E402,F401  (registers the built-in games)
from .core import Game, Instance, InvalidMove, Message, MissingMetric, Move, Outcome, RuleViolation, quote
from .episode import Episode, EpisodeWriter, Turn, read_episodes
from .factory import new_match
from .files import atomic_write_text
from .instances import (
    InstanceSet,
    derive_seed,
    draw_instance,
    episode_rng,
    generate_instance_set,
    reply_seed,
    split_of,
)
from .match import Feedback, Match
from .pettingzoo_env import make, make_parallel
from .registry import GameSpec, register, registered, resolve_ids, spec

__all__ = [
    "Episode", "EpisodeWriter", "Feedback", "Game", "GameSpec", "Instance", "InstanceSet", "InvalidMove",
    "Match", "Message", "RuleViolation", "MissingMetric", "Move", "Outcome", "Turn", "atomic_write_text", "derive_seed", "draw_instance",
    "episode_rng", "generate_instance_set", "make", "make_parallel", "new_match", "quote", "read_episodes",
    "register", "registered", "reply_seed", "resolve_ids", "spec", "split_of",
]


def _load_plugins_at_import() -> None:
    """Load entry-point games now. A plug-in that fails here may only need the root
    ``dialogym`` package, which is still being imported (``dialogym.register`` is not bound
    yet): it is retried, alone, at the first registry call, which warns if it fails again."""
    from . import registry

    try:
        registry.load_plugins(quiet=True)
    except Exception as err:  # reading the entry points themselves failed
        warnings.warn(f"dialogym: could not load games from installed packages: {err}", stacklevel=2)


_load_plugins_at_import()
