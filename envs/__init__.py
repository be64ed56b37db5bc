"""envs/: the rules of the games, and nothing else (see DESIGN.md).

Games, instances, the episode record, the invalid-move policy (``Match``), the registry
and the PettingZoo/Gymnasium adapters.
"""

from . import games  # noqa: E402,F401  (registers the built-in games)
from .core import Game, Instance, InvalidMove, Message, Move, Outcome, quote
from .episode import Episode, EpisodeWriter, Turn, atomic_write_text, read_episodes
from .instances import InstanceSet, draw_instance, episode_rng, generate_instance_set, split_of
from .match import Feedback, Match
from .registry import GameSpec, make, make_parallel, register, registered, resolve_ids, spec

__all__ = [
    "Episode", "EpisodeWriter", "Feedback", "Game", "GameSpec", "Instance", "InstanceSet", "InvalidMove",
    "Match", "Message", "Move", "Outcome", "Turn", "atomic_write_text", "draw_instance", "episode_rng",
    "generate_instance_set", "make", "make_parallel", "quote", "read_episodes", "register", "registered",
    "resolve_ids", "spec", "split_of",
]
