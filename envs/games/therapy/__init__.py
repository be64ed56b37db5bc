"""Patient and therapist: a diagnostic interview from a hidden case card (a research
simulation, not medical advice).

- :mod:`.rules`: the rulebook (case cards, prompts, turn order, scoring);
- :mod:`.moves`: the moves, how replies are read, and the move grammars;
- :mod:`.conditions`: the symptom catalogue (``data/conditions.json``), symptom detection and
  plan concordance;
- :mod:`.cues`: the cue words for a question's topics and for denials;
- :mod:`.players`: the scripted patient, therapists and judge.
"""

from __future__ import annotations

from .conditions import (
    Catalogue,
    Condition,
    Symptom,
    Treatment,
    catalogue,
    normalise,
    plan_concordance,
)
from .cues import (
    TOPIC_CUES,
    denied_at,
    topics_of,
)
from .moves import (
    CONTROL_WORDS,
    EMPTY_HINTS,
    FINISH_EXAMPLE,
    GUIDED_PLAN_ITEM,
    GUIDED_PREFACE_CHARS,
    GUIDED_QUESTION,
    GUIDED_REPLY_CHARS,
    GUIDED_REPLY_WORDS,
    MAX_PLAN_ITEMS,
    Decision,
    Question,
    Rating,
    Say,
    parse_patient,
    parse_rating,
    parse_therapist,
    seat_grammar,
)
from .rules import (
    JUDGE_RUBRIC,
    MAX_CHARS,
    MAX_WORDS,
    OCCUPATIONS,
    PATIENT_RULES,
    PREMATURE_PENALTY,
    TALKATIVENESS,
    THERAPIST_RULES,
    TURN_LIMITS,
    CaseCard,
    JudgedPatientTherapistGame,
    PatientTherapistGame,
    Persona,
    TherapyState,
    replies_left,
)

__all__ = [
    "CONTROL_WORDS", "CaseCard", "Catalogue", "Condition", "Decision", "EMPTY_HINTS", "FINISH_EXAMPLE",
    "GUIDED_PLAN_ITEM", "GUIDED_PREFACE_CHARS", "GUIDED_QUESTION", "GUIDED_REPLY_CHARS",
    "GUIDED_REPLY_WORDS", "JUDGE_RUBRIC", "JudgedPatientTherapistGame", "MAX_CHARS", "MAX_PLAN_ITEMS",
    "MAX_WORDS", "OCCUPATIONS", "PATIENT_RULES", "PREMATURE_PENALTY", "PatientTherapistGame", "Persona",
    "Question", "Rating", "Say", "Symptom", "TALKATIVENESS", "THERAPIST_RULES", "TOPIC_CUES", "TURN_LIMITS",
    "TherapyState", "Treatment", "catalogue", "denied_at", "normalise", "parse_patient", "parse_rating",
    "parse_therapist", "plan_concordance", "register_games", "replies_left", "seat_grammar", "topics_of",
]


def register_games() -> None:
    from ...registry import register
    from .players import JUDGED_PLAYERS, PLAYERS

    register("dialogym/PatientTherapist-v0", PatientTherapistGame, players=PLAYERS)
    register("dialogym/PatientTherapistJudged-v0", JudgedPatientTherapistGame, players=JUDGED_PLAYERS)
