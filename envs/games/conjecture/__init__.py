"""Conjecturer and prover: one seat proposes a statement that should be hard but possible to
prove, the other proves it in a small formal language.

- :mod:`.rules`: the rulebook (instances, moves, prompts, parsers, grammars, scoring);
- :mod:`.problems`: levels and the seed-problem templates instances are drawn from;
- :mod:`.formal`: the formal language of statements and proofs, and its verifiers;
- :mod:`.players`: the scripted conjecturer and prover.
"""

from __future__ import annotations

from . import formal
from .problems import (
    LEVELS,
    NAMES,
    TEMPLATES,
    Level,
    make_problem,
    t_counter,
    t_divides,
    t_factor,
    t_identity,
    t_linear,
    t_root,
    t_square,
    t_squares,
)
from .rules import (
    CONJECTURE_EXAMPLE,
    CONJECTURER_RULES,
    LANGUAGE,
    PROVER_RULES,
    SEEDS_PER_INSTANCE,
    Conjecture,
    ConjectureInstance,
    ConjectureProverGame,
    ConjectureState,
    Proof,
    SeedProblem,
)

__all__ = [
    "CONJECTURER_RULES", "CONJECTURE_EXAMPLE", "Conjecture", "ConjectureInstance", "ConjectureProverGame",
    "ConjectureState", "LANGUAGE", "LEVELS", "Level", "NAMES", "PROVER_RULES", "Proof",
    "SEEDS_PER_INSTANCE", "SeedProblem", "TEMPLATES", "formal", "make_problem", "register_games", "t_counter",
    "t_divides", "t_factor", "t_identity", "t_linear", "t_root", "t_square", "t_squares",
]


def register_games() -> None:
    from ...registry import register
    from .players import PLAYERS

    register("dialogym/ConjectureProver-v0", ConjectureProverGame, players=PLAYERS)
