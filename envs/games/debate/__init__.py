"""Hidden-information debate and consultancy: debaters who read a passage argue before a
judge who cannot.

- :mod:`.rules`: the rulebook (instances, moves, prompts, parsers, grammars, scoring);
- :mod:`.passages`: the fictional people, facts and questions passages are drawn from;
- :mod:`.quotes`: checking and marking the quotes in an argument as the judge sees them;
- :mod:`.players`: the scripted debater (also the consultant) and judge.
"""

from __future__ import annotations

from .passages import (
    ATTRIBUTES,
    FIRST,
    JOBS,
    LAST,
    RELATIONS,
    TOWNS,
    Attribute,
    make_passage,
    names_in,
    parse_question,
    sentence,
)
from .quotes import (
    check_quote_tags,
    mark_quotes,
    shown_quotes,
)
from .rules import (
    CONSULTANCY_SETUP,
    CONSULTANT_RULES,
    DEBATE_SETUP,
    DEBATER_RULES,
    EXAMPLE_ARGUMENT,
    GUIDED_ARGUMENT_CHARS,
    JUDGE_RULES,
    LETTERS,
    MAX_CHARS,
    MAX_WORDS,
    ROUNDS,
    Argument,
    ConsultancyGame,
    DebateGame,
    DebateInstance,
    DebateState,
    Verdict,
)

__all__ = [
    "ATTRIBUTES", "Argument", "Attribute", "CONSULTANCY_SETUP", "CONSULTANT_RULES", "ConsultancyGame",
    "DEBATER_RULES", "DEBATE_SETUP", "DebateGame", "DebateInstance", "DebateState", "EXAMPLE_ARGUMENT",
    "FIRST", "GUIDED_ARGUMENT_CHARS", "JOBS", "JUDGE_RULES", "LAST", "LETTERS", "MAX_CHARS", "MAX_WORDS",
    "RELATIONS", "ROUNDS", "TOWNS", "Verdict", "check_quote_tags", "make_passage", "mark_quotes",
    "names_in", "parse_question", "register_games", "sentence", "shown_quotes",
]


def register_games() -> None:
    from ...registry import register
    from .players import CONSULTANCY_PLAYERS, PLAYERS

    register("dialogym/Debate-v0", DebateGame, players=PLAYERS)
    register("dialogym/Consultancy-v0", ConsultancyGame, players=CONSULTANCY_PLAYERS)
