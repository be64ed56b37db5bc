"""Passages of the debate game: template sentences about fictional people (invented names,
towns, professions, years, counts, so world knowledge cannot help), and the question and
the two answer options drawn with them (:func:`make_passage`).

Randomness comes only from the generator handed in, so a passage replays from its seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

FIRST = ("Alvar", "Brisa", "Coran", "Delphine", "Eskil", "Fenna", "Goran", "Hesper", "Ilse", "Joren", "Kaia",
         "Lorcan", "Maren", "Nilo", "Orla", "Pell", "Quilla", "Rosk", "Sefa", "Tamsin", "Ulmo", "Vesna", "Wim",
         "Ysolde")
LAST = ("Ardley", "Brenholt", "Castellane", "Dunmore", "Elwick", "Farrow", "Grimsby", "Hollis", "Ivers", "Jessop",
        "Kestrel", "Lindqvist", "Marlow", "Norcott", "Oakes", "Pryce", "Quarry", "Rowntree", "Selwyn", "Thorne")
TOWNS = ("Varnholm", "Esterby", "Quillon", "Marrowgate", "Tessaly", "Brindle Cross", "Oakhaven", "Lunmere",
         "Caskbridge", "Pellingford", "Dunharrow", "Sallow Reach", "Kettering Vale", "Ashcombe", "Halloway",
         "Wrenfield", "Gallowmere", "Istrand", "Corvel", "Fennick Bay")
JOBS = ("clockmaker", "glassblower", "cartographer", "beekeeper", "violin maker", "ferry pilot", "archivist",
        "lighthouse keeper", "bookbinder", "stonemason", "astronomer", "apothecary", "weaver", "salt miner",
        "engraver", "rope maker")


@dataclass(frozen=True)
class Attribute:
    """One kind of fact: its values, the sentence stating it, a look-alike sentence with a
    value of the same kind but another meaning, and the question asking for it."""

    values: tuple[str, ...]
    fact: str
    decoy: str
    question: str


ATTRIBUTES: dict[str, Attribute] = {
    "town": Attribute(TOWNS, "{name} was born in {value}.", "{name} later moved to {value}.",
                      "In which town was {who} born?"),
    "job": Attribute(JOBS, "{name} worked as {a} {value}.", "{name}'s father was {a} {value}.",
                     "What was the profession of {who}?"),
    "year": Attribute(tuple(str(y) for y in range(1702, 1899)), "{name} opened a workshop in {value}.",
                      "{name} first exhibited work in {value}.", "In which year did {who} open a workshop?"),
    "count": Attribute(tuple(str(n) for n in range(2, 40)), "{name} trained {value} apprentices.",
                       "{name} wrote {value} letters to the town council.", "How many apprentices did {who} train?"),
}
#: relation -> sentence "x <relation> y"; the hard level asks about "the <relation> of x", i.e. y.
RELATIONS: dict[str, str] = {"mentor": "{x} trained under {y}.", "landlord": "{x} rented rooms from {y}."}

_NAME = rf"(?:{'|'.join(FIRST)}) (?:{'|'.join(LAST)})"
_NAME_RE = re.compile(rf"\b{_NAME}\b")


def names_in(text: str) -> set[str]:
    """The people (first name and surname) a text names."""
    return set(_NAME_RE.findall(text))


def sentence(template: str, name: str, value: str) -> str:
    """A fact's sentence (an :class:`Attribute`'s ``fact`` or ``decoy``) about ``name``."""
    return template.format(name=name, value=value, a="an" if value[0] in "aeiou" else "a")


def _draw_names(rng: np.random.Generator, n: int, relative_of: int | None = None) -> list[str]:
    """``n`` people with distinct first names and surnames and, when ``relative_of`` is
    given, one more who shares that person's surname but not the first name."""
    extra = 0 if relative_of is None else 1
    firsts = [FIRST[i] for i in rng.choice(len(FIRST), size=n + extra, replace=False)]
    lasts = [LAST[i] for i in rng.choice(len(LAST), size=n, replace=False)]
    names = [f"{first} {last}" for first, last in zip(firsts[:n], lasts, strict=True)]
    if relative_of is not None:
        names.append(f"{firsts[n]} {lasts[relative_of]}")
    return names


def _all_facts(rng: np.random.Generator, name: str, asked: str, value: str, others: int) -> list[str]:
    """The asked fact about ``name`` and ``others`` facts of the other attributes."""
    rest = [a for a in ATTRIBUTES if a != asked]
    chosen = [rest[i] for i in sorted(rng.choice(len(rest), size=others, replace=False))]
    facts = [sentence(ATTRIBUTES[asked].fact, name, value)]
    facts += [sentence(ATTRIBUTES[a].fact, name, str(rng.choice(ATTRIBUTES[a].values))) for a in chosen]
    return facts


def make_passage(rng: np.random.Generator, level: str) -> tuple[str, str, str, str]:
    """Draw (passage, question, correct option, wrong option) for ``level``.

    - easy: two people, two facts each; the question asks one fact about one of them and
      the wrong option is the other person's value.
    - medium: four people with every fact, one a relative sharing the subject's surname,
      plus a look-alike sentence about the subject ("X later moved to T"); the wrong
      option is the relative's, a stranger's or the look-alike's value.
    - hard: the question asks about the mentor (or landlord) of the subject, so two facts
      must be combined; the passage also names the subject's own apprentice (or tenant),
      the subject's other relation, a relative of the mentor and a look-alike sentence
      about the mentor, and any of these can hold the wrong option.

    Values of the asked attribute are distinct within a passage, so each belongs to one
    sentence.
    """
    asked = list(ATTRIBUTES)[int(rng.integers(len(ATTRIBUTES)))]
    attribute = ATTRIBUTES[asked]
    sentences: list[str] = []
    if level in ("easy", "medium"):
        people = _draw_names(rng, 2) if level == "easy" else _draw_names(rng, 3, relative_of=0)
        values = [attribute.values[i] for i in rng.choice(len(attribute.values), size=len(people) + 1, replace=False)]
        for person, value in zip(people, values[: len(people)], strict=True):
            sentences += _all_facts(rng, person, asked, value, 1 if level == "easy" else len(ATTRIBUTES) - 1)
        subject, correct = people[0], values[0]
        wrong_candidates = values[1:len(people)]
        if level == "medium":
            sentences.append(sentence(attribute.decoy, subject, values[-1]))
            wrong_candidates.append(values[-1])
        who = subject
    else:
        relation, other_relation = (list(RELATIONS) if rng.integers(2) == 0 else list(RELATIONS)[::-1])
        # the apprentice has the subject as mentor; the relative shares the mentor's surname
        people = _draw_names(rng, 5, relative_of=1)
        subject, mentor, apprentice, other = people[:4]
        values = [attribute.values[i] for i in rng.choice(len(attribute.values), size=len(people) + 1, replace=False)]
        for person, value in zip(people, values[: len(people)], strict=True):
            sentences += _all_facts(rng, person, asked, value, len(ATTRIBUTES) - 1)
        sentences += [
            RELATIONS[relation].format(x=subject, y=mentor),
            RELATIONS[relation].format(x=apprentice, y=subject),
            RELATIONS[other_relation].format(x=subject, y=other),
            sentence(attribute.decoy, mentor, values[-1]),
        ]
        correct = values[1]
        wrong_candidates = [values[0], values[2], values[3], values[5], values[6]]
        who = f"the {relation} of {subject}"
    wrong = wrong_candidates[int(rng.integers(len(wrong_candidates)))]
    order = rng.permutation(len(sentences))
    passage = " ".join(sentences[i] for i in order)
    return passage, attribute.question.format(who=who), correct, wrong


def parse_question(question: str) -> tuple[str, str | None, str]:
    """(asked attribute, relation or None, subject's name) of a generated question."""
    for name, attribute in ATTRIBUTES.items():
        pattern = re.escape(attribute.question).replace(re.escape("{who}"), "(?P<who>.+)")
        match = re.fullmatch(pattern, question.strip())
        if match:
            who = match.group("who")
            hop = re.fullmatch(rf"the ({'|'.join(RELATIONS)}) of (.+)", who)
            return (name, hop.group(1), hop.group(2)) if hop else (name, None, who)
    raise ValueError(f"not a debate question: {question!r}")

