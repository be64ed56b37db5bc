"""dialogym: multi-agent dialogue games for language models.

>>> import dialogym
>>> env = dialogym.make("dialogym/Reference-v0")       # PettingZoo AEC
>>> par = dialogym.make_parallel("dialogym/Reference-v0")  # PettingZoo Parallel
>>> import gymnasium; gym_env = gymnasium.make("dialogym/Reference-v0", opponents="scripted")
"""

from dialogym.envs import (
    Episode,
    EpisodeWriter,
    Game,
    Instance,
    InstanceSet,
    InvalidMove,
    Match,
    Move,
    Outcome,
    generate_instance_set,
    make,
    make_parallel,
    new_match,
    read_episodes,
    register,
    registered,
)

__version__ = "0.1.0"

__all__ = [
    "Episode", "EpisodeWriter", "Game", "Instance", "InstanceSet", "InvalidMove", "Match", "Move", "Outcome",
    "__version__", "generate_instance_set", "make", "make_parallel", "new_match", "read_episodes", "register",
    "registered",
]
