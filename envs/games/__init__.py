"""Built-in games. Each module holds one game's rules and its scripted players."""

from __future__ import annotations

from ..registry import register
from . import reference


def register_builtin() -> None:
    """Register every built-in game (idempotent)."""
    register("dialogym/Reference-v0", reference.ReferenceGame, players=reference.PLAYERS, level="easy")


register_builtin()
