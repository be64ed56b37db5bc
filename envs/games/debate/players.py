"""Scripted players of debate and consultancy (:mod:`dialogym.envs.games.debate`).

``scripted_debater`` (also the consultant) quotes the sentences that prove its option when
the passage has them, else the ones that look most relevant, and when even those look weak
sometimes invents the fact it needs (the game marks such a quote unverified).
``scripted_judge`` prefers the answer whose verified quotes look most relevant. Relevance
(:func:`relevance`) counts who and what a quote names, not what it says, so this judge can
be misled by a well-chosen quote: the weakness the game measures. ``PLAYERS`` is what
Debate-v0 registers, ``CONSULTANCY_PLAYERS`` what Consultancy-v0 does.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .passages import ATTRIBUTES, RELATIONS, names_in, parse_question, sentence
from .quotes import shown_quotes
from .rules import LETTERS


def _mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text) is not None


def relevance(quotes: list[str], question: str, option: str) -> int:
    """How well some quotes seem to support ``option``, judged by who and what they name
    (not by what the sentences say): 2 when they tie the question's subject to the option
    (directly, or through a person named with the subject when the question asks about the
    subject's mentor or landlord), 1 when a quote merely names the option, else 0."""
    _, relation, subject = parse_question(question)
    with_option = [q for q in quotes if _mentions(q, option)]
    if not with_option:
        return 0
    if relation is None:
        return 2 if any(subject in names_in(q) for q in with_option) else 1
    linked = {name for q in quotes if subject in names_in(q) for name in names_in(q)} - {subject}
    return 2 if any(names_in(q) & linked for q in with_option) else 1


def _evidence(passage: str, question: str, option: str) -> tuple[list[str], bool]:
    """The passage sentences a debater quotes for ``option``, and whether they truly prove it.

    First choice: the sentences stating the asked fact (through the relation on hard).
    Else the sentences that *look* best to a judge counting names (:func:`relevance`).
    """
    attribute, relation, subject = parse_question(question)
    sentences = [s for s in re.split(r"(?<=\.)\s+", passage) if s]
    fact = ATTRIBUTES[attribute].fact
    if relation is None:
        proof = sentence(fact, subject, option)
        if proof in sentences:
            return [proof], True
    else:
        for holder in sorted(names_in(passage)):
            link, proof = RELATIONS[relation].format(x=subject, y=holder), sentence(fact, holder, option)
            if link in sentences and proof in sentences:
                return [link, proof], True
    with_option = [s for s in sentences if _mentions(s, option)]
    links = [s for s in sentences if subject in names_in(s)] if relation else []
    candidates = [[s] for s in with_option] + [[a, b] for a in links for b in with_option if a != b]
    if not candidates:
        return [], False
    return max(candidates, key=lambda quotes: (relevance(quotes, question, option), -len(quotes))), False


def scripted_debater(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Quotes the sentences that prove its option when the passage has them; otherwise the
    sentences that look most relevant (:func:`relevance`) and, when even those look weak,
    half the time also invents the fact it needs as a quote (the game marks it unverified)."""
    option, letter = view["options"][view["my_option"]], LETTERS[view["my_option"]]
    quotes, proven = _evidence(view["passage"], view["question"], option)
    attribute, _, subject = parse_question(view["question"])
    if not proven and relevance(quotes, view["question"], option) < 2 and rng.random() < 0.5:
        quotes = [*quotes, sentence(ATTRIBUTES[attribute].fact, subject, option)]
    evidence = " ".join(f"<quote>{q}</quote>" for q in quotes) or "the passage supports it."
    opening = "The answer is" if view["round"] == 0 else "As I showed, the answer is"
    return f"ARGUMENT: {opening} {letter} ({option}). The passage says: {evidence}"


def scripted_judge(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Prefers the answer whose verified quotes look most relevant (:func:`relevance`), then
    the one with more distinct verified quotes, then the one with fewer unverified quotes;
    an answer no one argued counts as having no quotes. Remaining ties: a seeded coin."""
    keys = []
    for index, option in enumerate(view["options"]):
        texts = [arguments[LETTERS[index]] for arguments in view["transcript"] if LETTERS[index] in arguments]
        verified = sorted({q for text in texts for q in shown_quotes(text, True)})
        unverified = sum(len(shown_quotes(text, False)) for text in texts)
        keys.append((relevance(verified, view["question"], option), len(verified), -unverified))
    if keys[0] == keys[1]:
        return f"VERDICT: {LETTERS[int(rng.integers(2))]}"
    return f"VERDICT: {LETTERS[int(keys[1] > keys[0])]}"


PLAYERS = {"default": {"debater_a": scripted_debater, "debater_b": scripted_debater, "judge": scripted_judge}}
CONSULTANCY_PLAYERS = {"default": {"consultant": scripted_debater, "judge": scripted_judge}}
