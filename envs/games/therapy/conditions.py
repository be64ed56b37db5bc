"""The symptom catalogue of the patient-therapist interview (``data/conditions.json``): the
conditions, their symptoms and treatments, finding symptom mentions in a reply
(:meth:`Catalogue.detect`) and checking a plan against the guidelines (:func:`plan_concordance`).

A research simulation, not medical advice: the catalogue is a simplified teaching summary
written for this game, not a clinical instrument.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from .cues import denied_at


def normalise(text: str) -> str:
    """Lower case, punctuation as spaces, single spaces: how names are compared."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


@dataclass(frozen=True)
class Symptom:
    id: str
    category: str
    text: str  # how a patient says it, first person
    short: str  # a noun phrase, for denials ("I have not noticed <short>")
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Treatment:
    id: str
    name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Condition:
    id: str
    name: str
    synonyms: tuple[str, ...]
    duration: str
    duration_months: tuple[int, int]
    onset: str
    symptoms: tuple[str, ...]
    history: tuple[str, ...]
    concordant: tuple[str, ...]
    not_recommended: tuple[str, ...]
    related: tuple[str, ...]  # comorbid-looking conditions: hard-level distractors and denials


@dataclass(frozen=True)
class Catalogue:
    categories: tuple[str, ...]
    symptoms: dict[str, Symptom]
    treatments: dict[str, Treatment]
    conditions: dict[str, Condition]
    _symptom_res: dict[str, re.Pattern[str]] = field(repr=False, compare=False)
    _treatment_res: dict[str, re.Pattern[str]] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Catalogue:
        symptoms = {
            k: Symptom(id=k, **{**v, "keywords": tuple(v["keywords"])}) for k, v in data["symptoms"].items()
        }
        treatments = {
            k: Treatment(id=k, name=v["name"], aliases=tuple(v["aliases"]))
            for k, v in data["treatments"].items()
        }
        conditions = {}
        for c in data["conditions"]:
            tuples = {k: tuple(v) for k, v in c.items() if isinstance(v, list)}
            conditions[c["id"]] = Condition(**{**c, **tuples})
        for c in conditions.values():
            unknown = [s for s in c.symptoms if s not in symptoms]
            unknown += [t for t in (*c.concordant, *c.not_recommended) if t not in treatments]
            unknown += [r for r in c.related if r not in conditions]
            if unknown:
                raise ValueError(f"conditions.json: {c.id} names unknown entries {unknown}")

        def word_start(phrases: tuple[str, ...], norm: bool) -> re.Pattern[str]:
            escaped = sorted(
                (re.escape(normalise(p) if norm else p.lower()) for p in phrases), key=len, reverse=True
            )
            return re.compile(r"(?<![a-z0-9])(?:" + "|".join(escaped) + ")")

        return cls(
            categories=tuple(data["categories"]),
            symptoms=symptoms,
            treatments=treatments,
            conditions=conditions,
            _symptom_res={k: word_start(s.keywords, norm=False) for k, s in symptoms.items()},
            # Treatment aliases match whole words of the normalised item.
            _treatment_res={
                k: re.compile(
                    r"(?<![a-z0-9])(?:"
                    + "|".join(re.escape(normalise(a)) for a in t.aliases)
                    + r")(?![a-z0-9])"
                )
                for k, t in treatments.items()
            },
        )

    def detect(self, text: str) -> tuple[set[str], set[str]]:
        """(affirmed, denied) symptom ids mentioned in ``text``.

        A keyword matches at the start of a word ("exhaust" matches "exhausted"). A
        symptom matched several times is affirmed if any mention is, and denied if any
        mention is negated.
        """
        lower = text.lower().replace("\u2019", "'")
        affirmed: set[str] = set()
        denied: set[str] = set()
        for sid, regex in self._symptom_res.items():
            spans = [m.span() for m in regex.finditer(lower)]
            for start, end in spans:
                if any(s <= start and end <= e and (s, e) != (start, end) for s, e in spans):
                    continue  # inside a longer keyword of the same symptom ("don't enjoy" vs "enjoy")
                (denied if denied_at(lower, start) else affirmed).add(sid)
        return affirmed, denied

    def treatments_in(self, item: str) -> set[str]:
        """Ids of the treatments a plan item names; the longest alias wins an overlap."""
        text = normalise(item)
        found = [
            (m.start(), m.end(), tid)
            for tid, regex in self._treatment_res.items()
            for m in regex.finditer(text)
        ]
        return {
            tid
            for s, e, tid in found
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in found)
        }

    def names(self, condition: Condition) -> set[str]:
        return {normalise(n) for n in (condition.name, *condition.synonyms)}

    def find_condition(self, diagnosis: str) -> Condition | None:
        """The condition a diagnosis names; a trailing bracketed abbreviation of the same
        condition is allowed ("Generalized anxiety disorder (GAD)")."""
        bracket = re.fullmatch(r"\s*(.*?)\s*\(([^()]*)\)\s*[.!]?\s*", diagnosis)
        parts = [bracket.group(1), bracket.group(2)] if bracket else [diagnosis]
        for condition in self.conditions.values():
            if all(normalise(p) in self.names(condition) for p in parts):
                return condition
        return None


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    text = resources.files(__package__).joinpath("data", "conditions.json").read_text(encoding="utf-8")
    return Catalogue.from_json(json.loads(text))


def plan_concordance(plan: list[str], condition: Condition) -> tuple[float, int, int]:
    """(concordance, concordant items, not-recommended items) of a plan.

    An item counts as concordant when it names a concordant treatment not credited to an
    earlier item (so repeating "CBT" earns nothing) and no not-recommended one; an item
    that names a not-recommended treatment counts against the plan.
    """
    cat = catalogue()
    credited: set[str] = set()
    good = bad = 0
    for item in plan:
        named = cat.treatments_in(item)
        if named & set(condition.not_recommended):
            bad += 1
        elif (named & set(condition.concordant)) - credited:
            good += 1
            credited |= named & set(condition.concordant)
    return (max(0.0, min(1.0, (good - bad) / len(plan))) if plan else 0.0), good, bad
