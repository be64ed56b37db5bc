"""One way to start an episode of a registered game: :func:`new_match`.

The adapters, the rollout engine and the trainers all build their matches here, so the
registered defaults, the level and split of drawn instances and the invalid-move policy
mean the same thing whichever front end starts the episode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .core import Game, Instance
from .instances import InstanceSet, draw_instance
from .match import Match
from .registry import spec


def new_match(
    game_id: str,
    seed: int,
    *,
    play: int = 0,
    instance: Instance | Mapping[str, Any] | None = None,
    level: str | None = None,
    split: str | None = None,
    **options: Any,
) -> Match:
    """A fresh :class:`Match` of the registered game ``game_id``.

    - ``options`` are merged over the options the game was registered with and split as
      :meth:`GameSpec.split_options` does: ``max_retries`` (the invalid-move policy) and
      ``instances`` go to the match, ``render_mode`` is ignored (adapters read it), and
      everything else goes to the game's constructor.
    - The instance is ``instance`` (an :class:`Instance` or its JSON dict, validated
      against the game's instance model); else item ``seed % n`` of an ``instances``
      option (an :class:`InstanceSet` or a list); else the one
      :func:`draw_instance` draws from ``seed`` for ``level`` (default: the registered
      level, which is the game's first) and ``split`` (default: the registered split,
      else ``"any"``).
    - ``seed`` is the instance seed and ``play`` which play of that instance this is: the
      two together seed every reply (:func:`~.instances.reply_seed`), so several plays of
      one instance (a GRPO group) differ while each replays exactly.

    Unknown levels or splits and bad game options raise ``ValueError``/``TypeError``
    naming the game.
    """
    game_spec = spec(game_id)
    env_options, game_options = game_spec.split_options(**options)
    game = game_spec.game(**game_options)
    return match_of(
        game_spec.id, game, seed, play=play, instance=instance, instances=env_options.get("instances"),
        level=level if level is not None else env_options.get("level"),
        split=split if split is not None else env_options.get("split", "any"),
        max_retries=env_options.get("max_retries"),
    )


def match_of(
    game_id: str,
    game: Game,
    seed: int,
    *,
    play: int = 0,
    instance: Instance | Mapping[str, Any] | None = None,
    instances: InstanceSet | Sequence[Any] | None = None,
    level: str | None = None,
    split: str = "any",
    max_retries: int | None = None,
) -> Match:
    """A fresh :class:`Match` of ``game``, already built from the registered ``game_id``
    with its options: the second half of :func:`new_match`, for a front end that keeps one
    game for all its episodes (games are pure rules objects, so episodes can share one).

    The instance is chosen as :func:`new_match` says: ``instance``, else item ``seed % n``
    of ``instances``, else the one :func:`draw_instance` draws from ``seed`` for ``level``
    and ``split``.
    """
    if level is not None and level not in game.levels:
        raise ValueError(f"{game_id}: unknown level {level!r}; choose one of {list(game.levels)}")
    if instance is not None:
        instance = validate_instance(game, instance)
    elif instances is not None:
        pool = load_instances(game_id, game, instances)
        instance = pool[seed % len(pool)]
    else:
        instance = draw_instance(game, seed, level=level, split=split)
    return Match(game, instance, game_id=game_id, seed=seed, play=play, max_retries=max_retries)


def validate_instance(game: Game, instance: Instance | Mapping[str, Any]) -> Instance:
    """``instance`` as the game's instance model (a dict is validated into one)."""
    cls = game.instance_cls
    return instance if isinstance(instance, cls) else cls.model_validate(instance)


def load_instances(game_id: str, game: Game, instances: InstanceSet | Sequence[Any]) -> list[Instance]:
    """The instances of an :class:`InstanceSet` or a list of instances (or their dicts)."""
    if isinstance(instances, InstanceSet):
        return instances.load(game)
    loaded = [validate_instance(game, item) for item in instances]
    if not loaded:
        raise ValueError(f"{game_id}: 'instances' is empty")
    return loaded
