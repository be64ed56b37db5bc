"""Built-in games. Each module holds one game's rules and a ``register_games()`` function
that registers its ids with its scripted players (from :mod:`dialogym.envs.players`); every
module here is picked up. ``formal/`` is the formal language of the conjecture game."""

from __future__ import annotations

import importlib
import pkgutil


def register_builtin() -> None:
    """Register every built-in game (idempotent)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register_games = getattr(module, "register_games", None)
        if register_games is not None:
            register_games()


register_builtin()
