"""Scripted players: hand-written policies for the built-in games, one module per game family.

A scripted player is a function ``(view: dict, rng: numpy.random.Generator) -> str``: it
reads only the seat's ``Game.view()`` dict, draws any randomness from ``rng``, and returns
the reply text a model would write. So it sees exactly what a model in that seat sees, and
plays through the same parser and invalid-move policy. Scripted players are the baselines
of the benchmarks, the opponents of the tests, and the ``scripted`` agent
(:mod:`dialogym.agents.scripted`).

They live apart from the rules (:mod:`dialogym.envs.games`) so that a game module reads as
a rulebook. Each module here holds one game family's policies and its ``PLAYERS`` dict(s)
(player name -> seat -> policy, the first name being the default), which the game's
``register_games()`` passes to ``register(..., players=...)``. A player module may import
its game's module (helpers, constants); a game module imports its players only inside
``register_games()``, so the rules never depend on them.
"""
