"""The referential game: a speaker describes a target object, a listener picks it out.

- :mod:`.rules`: the rulebook (instances, moves, prompts, parsers, grammars, scoring);
- :mod:`.players`: the scripted speaker and listener.
"""

from __future__ import annotations

from .rules import (
    ATTRIBUTE_ORDER,
    ATTRIBUTES,
    GUIDED_CLUE_CHARS,
    LEVELS,
    LISTENER_RULES,
    MAX_CLUE_CHARS,
    MAX_CLUE_WORDS,
    SPEAKER_RULES,
    Answer,
    Clue,
    Obj,
    ReferenceGame,
    ReferenceInstance,
    ReferenceState,
)

__all__ = [
    "ATTRIBUTES", "ATTRIBUTE_ORDER", "Answer", "Clue", "GUIDED_CLUE_CHARS", "LEVELS", "LISTENER_RULES",
    "MAX_CLUE_CHARS", "MAX_CLUE_WORDS", "Obj", "ReferenceGame", "ReferenceInstance", "ReferenceState",
    "SPEAKER_RULES", "register_games",
]


def register_games() -> None:
    from ...registry import register
    from .players import PLAYERS

    register("dialogym/Reference-v0", ReferenceGame, players=PLAYERS)
