"""Cue words of the patient-therapist interview: the word starts that point a question at a
topic (:data:`TOPIC_CUES`, :func:`topics_of`), and the negations that make a symptom mention a
denial (:func:`denied_at`): a mention is denied when a negation word stands among the five
words before it in the same clause.
"""

from __future__ import annotations

import re

# -- topics of a question ------------------------------------------------------------------
#: Word starts in a question that point at a topic (a symptom category, or the history).
TOPIC_CUES: dict[str, tuple[str, ...]] = {
    "mood": (
        "mood",
        "feel",
        "sad",
        "down",
        "enjoy",
        "emotion",
        "spirits",
        "cry",
        "irritab",
        "temper",
        "overwhelm",
    ),
    "sleep": ("sleep", "night", "nightmare", "bed", "insomnia", "rest"),
    "anxiety": ("worry", "anxi", "fear", "afraid", "nervous", "panic", "scared", "social", "judg", "germ"),
    "cognition": (
        "think",
        "thought",
        "concentrat",
        "focus",
        "memory",
        "memories",
        "forget",
        "attention",
        "mind",
        "decision",
    ),
    "behaviour": (
        "avoid",
        "habit",
        "routine",
        "ritual",
        "behav",
        "day to day",
        "daily",
        "activit",
        "work",
        "friends",
    ),
    "physical": (
        "body",
        "physical",
        "energy",
        "appetite",
        "eat",
        "heart",
        "breath",
        "tense",
        "tired",
        "dizz",
    ),
    "history": ("when", "start", "began", "how long", "history", "family", "before", "trigger", "past"),
}


def topics_of(question: str) -> list[str]:
    """The topics of :data:`TOPIC_CUES` a question asks about: those with a cue starting a word of it."""
    q = question.lower()
    return [
        topic
        for topic, cues in TOPIC_CUES.items()
        if any(re.search(r"\b" + re.escape(cue), q) for cue in cues)
    ]


# -- denials -------------------------------------------------------------------------------
_NEGATIONS = frozenset({"no", "not", "never", "without", "nor", "none", "neither"})
#: "can't sleep" states a symptom; it is not a denial.
_INABILITY = frozenset({"can't", "cannot", "couldn't", "cant", "couldnt"})
_NEGATION_WINDOW = 5
_CLAUSE_END_RE = re.compile(r"[.,;:!?\n]|\bbut\b|\bthough\b")
_WORD_RE = re.compile(r"[a-z']+")


def _is_negation(words: list[str], i: int) -> bool:
    word = words[i]
    if word in _INABILITY:
        return False
    if word == "not" and i > 0 and words[i - 1] in ("can", "could"):
        return False
    return (
        word in _NEGATIONS
        or word.endswith("n't")
        or word in ("dont", "didnt", "havent", "hasnt", "doesnt", "isnt", "wasnt")
    )


def denied_at(text: str, start: int) -> bool:
    """Whether the mention starting at ``start`` of lower-case ``text`` is negated."""
    clause = _CLAUSE_END_RE.split(text[:start])[-1]
    words = _WORD_RE.findall(clause)
    first = max(0, len(words) - _NEGATION_WINDOW)
    cues = [i for i in range(first, len(words)) if _is_negation(words, i)]
    # "I haven't been able to concentrate" affirms the symptom.
    return bool(cues) and "able" not in words[cues[-1] + 1 :]
