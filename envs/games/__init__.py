"""Built-in games, one folder per game family; every family here is picked up.

A family is a package: ``rules.py`` holds the rulebook (the ``Game`` subclasses, their
``Instance`` and ``Move`` models, prompts, parsers, move grammars and scoring), modules beside
it hold what the rules draw on (seed problems, passages, a symptom catalogue and its ``data/``),
``players.py`` the scripted players, and ``__init__.py`` re-exports the family's public names
and defines ``register_games()``, which registers its ids with its scripted players.

A scripted player is a function ``(view: dict, rng: numpy.random.Generator) -> str``: it
reads only the seat's ``Game.view()`` dict, draws any randomness from ``rng``, and returns
the reply text a model would write. So it sees exactly what a model in that seat sees, and
plays through the same parser and invalid-move policy. Scripted players are the baselines
of the benchmarks, the opponents of the tests, and the ``scripted`` agent
(:mod:`dialogym.agents.scripted`). A family's ``players.py`` holds its policies and its
``PLAYERS`` dict(s) (player name -> seat -> policy, the first name being the default), which
``register_games()`` passes to ``register(..., players=...)``. Players import only public
names of their family's modules; the rules never import the players (both checked: the
import contracts in ``pyproject.toml`` and ``tests/envs/test_players_public_names.py``).
"""

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
