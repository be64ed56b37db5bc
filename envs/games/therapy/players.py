"""Scripted players of the patient-therapist interview (:mod:`dialogym.envs.games.therapy`).

``scripted_patient`` answers from its case card (symptoms in the topics asked about,
denials, onset and history only when asked); ``scripted_therapist`` asks about every topic,
then names the catalogue condition that best fits the replies (:func:`best_fit`);
``hasty_therapist`` diagnoses from the opening complaint alone, a baseline for what skipping
the questions costs; ``scripted_judge`` rates empathy by kind words and plan quality by
concordance. ``PLAYERS`` is what PatientTherapist-v0 registers, ``JUDGED_PLAYERS`` (the same
and the judge) what PatientTherapistJudged-v0 does.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .conditions import Condition, catalogue, plan_concordance
from .cues import topics_of

#: The scripted therapist's question for each topic.
TOPIC_QUESTIONS = {
    "mood": "How has your mood been lately?",
    "sleep": "How has your sleep been at night?",
    "anxiety": "Do you worry a lot, or feel afraid or nervous?",
    "cognition": "Have you noticed changes in your thoughts, memory or concentration?",
    "behaviour": "Has anything changed in what you do day to day, or do you avoid things?",
    "physical": "Have you noticed anything in your body, like your energy, appetite or heart?",
    "history": "When did this start, and did anything happen before it?",
}


def scripted_patient(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Reads from the card. Opens with the volunteered symptoms; answers a question with the
    card's symptoms in the categories it asks about (a reserved patient names at most two),
    denies the card's absent symptoms in those categories, and tells when it started and its
    history only when asked."""
    cat, card = catalogue(), view["card"]
    persona = card["persona"]
    if not view["log"]:
        intro = (
            "Hello."
            if persona["talkativeness"] != "talkative"
            else f"Hello, I am {persona['age']} and I work as a {persona['occupation']}."
        )
        return " ".join([intro, *(cat.symptoms[s].text for s in card["volunteered"])])
    topics = topics_of(view["log"][-1][1])
    limit = 2 if persona["talkativeness"] == "reserved" else len(card["symptoms"])
    said = [cat.symptoms[s].text for s in card["symptoms"] if cat.symptoms[s].category in topics][:limit]
    said += [
        f"No, I have not noticed {cat.symptoms[s].short}."
        for s in card["denied"]
        if cat.symptoms[s].category in topics
    ]
    if "history" in topics:
        said += [card["onset"], *card["history"]]
    return " ".join(said) if said else "I'm not sure. Nothing else comes to mind about that."


def best_fit(log: list[list[str]]) -> Condition:
    """The catalogue condition with the largest share of its symptoms affirmed (less those
    denied) in the patient's replies; ties go to the first in catalogue order."""
    cat = catalogue()
    affirmed: set[str] = set()
    denied: set[str] = set()
    for seat, text in log:
        if seat == "patient":
            a, d = cat.detect(text)
            affirmed |= a
            denied |= d

    def fit(condition: Condition) -> float:
        own = set(condition.symptoms)
        return (len(own & affirmed) - len(own & denied)) / len(own)

    return max(cat.conditions.values(), key=fit)


def _decision(condition: Condition) -> str:
    plan = "; ".join(catalogue().treatments[t].name for t in condition.concordant[:2])
    return f"Thank you, that helps me understand.\nDIAGNOSIS: {condition.name}\nPLAN: {plan}"


def scripted_therapist(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Asks about every topic (several per question when replies are short), then names the
    catalogue condition whose symptoms best match what the patient affirmed (minus what it
    denied), with that condition's first two concordant treatments."""
    cat = catalogue()
    topics = [*cat.categories, "history"]
    n_questions = view["turn_limit"] // 2 - 1
    groups = [list(g) for g in np.array_split(np.array(topics), min(n_questions, len(topics))) if len(g)]
    asked = sum(1 for seat, _ in view["log"] if seat == "therapist")
    if asked < len(groups) and view["replies_left"] > 1:
        question = " ".join(TOPIC_QUESTIONS[t] for t in groups[asked])
        kind = "Thank you for telling me. " if asked else ""
        return f"{kind}Let me ask you something.\nQUESTION: {question}"
    return _decision(best_fit(view["log"]))


def hasty_therapist(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Diagnoses from the patient's opening complaint alone: a baseline that shows what the
    hard level's misleading first complaint and ask-only symptoms cost."""
    return _decision(best_fit(view["log"]))


_KIND_WORDS = re.compile(r"\b(thank|sorry|understand|sounds (hard|difficult)|must be)\b", re.IGNORECASE)


def scripted_judge(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Empathy 4 when the therapist said a kind word, else 2; plan quality from how the plan
    fits the condition the therapist named (5 all concordant, 1 anything not recommended)."""
    said = " ".join(text for seat, text in view["log"] if seat == "therapist")
    empathy = 4 if _KIND_WORDS.search(said) else 2
    condition = catalogue().find_condition(view.get("diagnosis", ""))
    quality = 2
    if condition is not None:
        concordance, _, bad = plan_concordance(view.get("plan", []), condition)
        quality = 1 if bad else 1 + round(4 * concordance)
    return f"EMPATHY: {empathy}\nPLAN_QUALITY: {quality}"


PLAYERS = {
    "default": {"patient": scripted_patient, "therapist": scripted_therapist},
    "hasty": {"patient": scripted_patient, "therapist": hasty_therapist},
}
JUDGED_PLAYERS = {name: {**players, "judge": scripted_judge} for name, players in PLAYERS.items()}
