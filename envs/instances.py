"""Seeded, named, versioned instance sets with train/test splits.

A split is a function of an instance's *content* (a hash), never of the order it was drawn
in, so train and test never share an instance, however many sets are generated.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from .core import Game, Instance
from .files import atomic_write_text

Split = Literal["train", "test", "any"]
SPLITS: tuple[str, ...] = ("train", "test", "any")
#: Share of the instance space that belongs to the test split.
TEST_FRACTION = 0.2
_MAX_DRAWS_PER_INSTANCE = 1000


def split_of(instance: Instance) -> str:
    """``"test"`` for about 20% of instances (by content hash), else ``"train"``."""
    bucket = int(instance.content_hash()[:8], 16) / 0xFFFFFFFF
    return "test" if bucket < TEST_FRACTION else "train"


def episode_rng(seed: int, *keys: int) -> np.random.Generator:
    """A private generator for one episode or instance; no global random state is touched."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def derive_seed(*keys: int) -> int:
    """A 31-bit seed for the tuple ``keys`` (e.g. run seed, step, index).

    Built on :class:`numpy.random.SeedSequence`, which hashes the whole tuple, so nearby
    keys give unrelated seeds and no two tuples collide by arithmetic (unlike
    ``a * K + b`` formulas). Keys must be non-negative integers.
    """
    if not keys:
        raise ValueError("derive_seed needs at least one key")
    values = [int(key) for key in keys]
    if any(value < 0 for value in values):
        raise ValueError(f"derive_seed keys must be >= 0, got {values}")
    return int(np.random.SeedSequence(values).generate_state(1)[0]) & 0x7FFFFFFF


def reply_seed(instance_seed: int, play: int, turn: int, seat_index: int) -> int:
    """The sampling seed of one reply: play ``play`` of the instance drawn from
    ``instance_seed``, reply number ``turn`` of the episode, by the seat at ``seat_index``.

    Plays of one instance (a GRPO group) get different replies; the same episode replays
    with the same replies.
    """
    return derive_seed(instance_seed, play, turn, seat_index)


def instance_set_seed(set_seed: int, index: int) -> int:
    """The draw seed of item ``index`` of an instance set generated from ``set_seed``.

    Frozen: every published set's fingerprint (tests/envs/test_instances_golden.py) depends on
    this exact formula, so it must never change (use :func:`derive_seed` for new needs).
    """
    return set_seed * 1_000_003 + index


def draw_instance(game: Game, seed: int, *, level: str | None = None, split: str = "any") -> Instance:
    """Draw the instance that ``seed`` picks for ``level`` and ``split``.

    Instances outside the split are skipped deterministically, so the same seed always
    gives the same instance.
    """
    level = level or game.levels[0]
    if level not in game.levels:
        raise ValueError(f"{type(game).__name__}: unknown level {level!r}; choose one of {list(game.levels)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    for attempt in range(_MAX_DRAWS_PER_INSTANCE):
        instance = game.generate_instance(episode_rng(seed, attempt), level)
        if split == "any" or split_of(instance) == split:
            return instance
    raise NoInstanceInSplit(
        f"{type(game).__name__}: no {split} instance of level {level!r} in {_MAX_DRAWS_PER_INSTANCE} draws "
        f"(its instance space is too small to split); play it with split 'any' (--split any), or give the "
        "generator more variety (e.g. a nonce field): see docs/games/writing.md, 'Rules to keep'"
    )


class NoInstanceInSplit(RuntimeError, ValueError):
    """A game whose instances all fall in the other split (a tiny instance space). A
    ValueError too, so the CLI reports it in one line, as it does other bad settings."""


class InstanceSet(BaseModel):
    """A named, versioned list of instances of one game, level and split."""

    game: str
    name: str
    version: str
    level: str
    split: str
    seed: int
    instances: list[dict[str, Any]]

    @property
    def fingerprint(self) -> str:
        payload = json.dumps(self.instances, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def load(self, game: Game) -> list[Instance]:
        return [game.instance_cls.model_validate(item) for item in self.instances]

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(Path(path), self.model_dump_json(indent=1))

    @classmethod
    def read(cls, path: str | Path) -> InstanceSet:
        return cls.model_validate_json(Path(path).read_text())


def generate_instance_set(
    game_id: str,
    n: int,
    *,
    seed: int = 0,
    level: str | None = None,
    split: str = "test",
    allow_repeats: bool = False,
    **game_kw: Any,
) -> InstanceSet:
    """Generate ``n`` distinct instances of a registered game.

    The set is named ``"<game id>/<level>/<split>"`` and carries the game's instance
    version; the same arguments give the same set on any machine. A game with fewer than
    ``n`` distinct instances in that level and split is an error, unless ``allow_repeats``:
    then the distinct ones are repeated in order to make up ``n`` (with a warning).
    """
    from .registry import spec

    game = spec(game_id).game(**game_kw)
    level = level or game.levels[0]
    seen: set[str] = set()
    items: list[dict[str, Any]] = []
    index = 0
    while len(items) < n:
        instance = draw_instance(game, instance_set_seed(seed, index), level=level, split=split)
        index += 1
        if instance.id in seen:
            if index > 50 * n + 1000:
                message = f"{game_id}: only {len(items)} distinct {level}/{split} instances exist"
                if not (allow_repeats and items):
                    raise RuntimeError(message)
                warnings.warn(f"{message}; repeating them to make {n}", stacklevel=2)
                items = [items[i % len(items)] for i in range(n)]
                break
            continue
        seen.add(instance.id)
        items.append(instance.model_dump(mode="json"))
    return InstanceSet(
        game=game_id,
        name=f"{game_id}/{level}/{split}",
        version=game.instance_version,
        level=level,
        split=split,
        seed=seed,
        instances=items,
    )
