"""Patient and therapist, after "MentalArena: Self-play Training of Language Models for
Diagnosis and Treatment of Mental Health Disorders" and "Towards Conversational Diagnostic AI".

A research simulation, not medical advice. The catalogue (``data/conditions.json``) is a
simplified teaching summary written for this game, not a clinical instrument.

The patient holds a hidden case card: a condition, the symptoms it shows (some
volunteered, the rest disclosed only when asked about), symptoms it explicitly does not
have, when it started, a history and a persona. The patient speaks first; then the
therapist and the patient alternate until the therapist finishes with::

    DIAGNOSIS: <condition>
    PLAN: <treatment>; <treatment>

or the turn limit (both seats' replies count) ends the interview undiagnosed. Interview
replies carry exactly one ``QUESTION: ...`` line; other lines (a kind word) are allowed and
the patient sees the whole reply, quoted.

Symptom mentions are found by keyword (:meth:`Catalogue.detect`): a mention is a *denial*
when a negation word stands among the five words before it in the same clause. Scores:
``diagnosis_correct`` (the label or a listed synonym, case and punctuation ignored),
``symptom_coverage`` (share of the card's symptoms the patient affirmed),
``plan_concordance`` ((concordant items - not-recommended items) / items, clipped to
[0, 1]), ``patient_faithfulness`` (true claims / all claims; a false claim is affirming a
symptom that is not on the card or denying one that is), ``premature_disclosure`` (ask-only
symptoms affirmed before the therapist asked about their category), ``turns``. Rewards:
therapist ``0.6 * diagnosis + 0.2 * coverage + 0.2 * concordance``; patient
``max(0, faithfulness * coverage - PREMATURE_PENALTY * premature_disclosure / card symptoms)``
(floored at 0, so every reward lies in [0, 1] and finishing always beats the abort penalty).

Move grammar (guided play, :meth:`PatientTherapistGame.move_grammar`): every free part is
one line of printable ASCII, bounded so that the longest move fits ``max_reply_tokens`` at 3
characters a token. The patient: at most ``GUIDED_REPLY_CHARS`` characters and
``GUIDED_REPLY_WORDS`` single-spaced words, never a control line. The therapist: optionally a kind
line (``GUIDED_PREFACE_CHARS``, never a control line), then either ``QUESTION: <question>``
(``GUIDED_QUESTION``) or ``DIAGNOSIS: <a catalogue condition's name>`` and
``PLAN: <item>; <item>`` (1 to ``MAX_PLAN_ITEMS`` items of ``GUIDED_PLAN_ITEM``, no comma or
semicolon inside an item). The judge: ``EMPATHY: <1-5>`` then ``PLAN_QUALITY: <1-5>``.

``dialogym/PatientTherapistJudged-v0`` adds a ``judge`` seat that reads the transcript after
the diagnosis and rates ``EMPATHY: n`` and ``PLAN_QUALITY: n`` from 1 to 5 (rubric in
:data:`JUDGE_RUBRIC`); it earns its agreement with the guideline check,
``1 - |(plan_quality - 1) / 4 - plan_concordance|``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..core import WHOLE_NUMBER, Game, Instance, InvalidMove, Move, Outcome, excerpt, quote, unify_line_breaks
from ..grammar import alt, grammar, int_range

#: Replies of both seats together; even, so the last reply is the therapist's.
TURN_LIMITS = {"easy": 16, "hard": 10}
MAX_WORDS = 150
#: A word cap alone lets a few huge "words" through.
MAX_CHARS = 1000
MAX_PLAN_ITEMS = 5
#: Patient reward lost per ask-only symptom said before it was asked about, in units of one
#: symptom's share of coverage: above 1, so blurting a symptom out costs more than it earns.
PREMATURE_PENALTY = 2.0
TALKATIVENESS = ("reserved", "average", "talkative")
OCCUPATIONS = (
    "teacher",
    "nurse",
    "software developer",
    "bus driver",
    "student",
    "accountant",
    "chef",
    "shop assistant",
    "electrician",
    "retired engineer",
    "graphic designer",
    "warehouse worker",
)
JUDGE_RUBRIC = """EMPATHY (1-5): 1 = dismissive or cold; 2 = curt, ignores feelings; 3 = polite but formulaic; 4 = warm and attentive; 5 = warm, validates feelings, checks understanding.
PLAN_QUALITY (1-5): 1 = harmful or irrelevant; 2 = mostly inappropriate; 3 = partly appropriate; 4 = appropriate but vague; 5 = guideline-concordant for the condition, specific, safe."""

CONTROL_WORDS = ("QUESTION", "DIAGNOSIS", "PLAN", "EMPATHY", "PLAN_QUALITY")
# [ \t]* rather than \s*: a match must never run on into the next line.
_LINE_RE = {
    w: re.compile(rf"^[ \t]*{w}[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE) for w in CONTROL_WORDS
}
_ANY_CONTROL_RE = re.compile(rf"^[ \t]*(?:{'|'.join(CONTROL_WORDS)})[ \t]*:", re.IGNORECASE | re.MULTILINE)

# -- move grammar --------------------------------------------------------------------------
#: Guided bounds (characters, words) of the free parts, chosen so the longest move fits
#: ``max_reply_tokens`` (200) at 3 characters a token: the patient's reply is 400 characters
#: and 100 words (a few sentences, room for the scripted patient's longest, 380 characters; a
#: small model under the grammar tends to fill whatever the bound allows, so a wider one
#: mostly buys repetition and decoding time); the therapist's longest, a
#: decision, is 60 + 1 + 11 + 40 + 7 + 5 * 60 + 4 * 2 = 427. Its words stay under MAX_WORDS:
#: at most 30 in the kind line (60 characters), 1 + 32 with a question, 1 + 3 + 1 + 5 * 10
#: with a decision.
GUIDED_REPLY_CHARS = 400
GUIDED_REPLY_WORDS = 100
GUIDED_PREFACE_CHARS = 60
GUIDED_QUESTION = (160, 32)
GUIDED_PLAN_ITEM = (60, 10)
# Guided text is printable ASCII: a character is a byte, so a cap in characters bounds the
# reply in tokens, and Python's whitespace and case-folding agree with the grammar's.
_GUIDED_WORD = r"[!-~]+"
# A plan item: no comma or semicolon (the separators), and no dot first, so that stripping
# dots can never leave it empty.
_GUIDED_ITEM = r"[!-~--[,;.]][!-~--[,;]]*( [!-~--[,;]]+)"
#: A line the parser reads as a control line.
_CONTROL_START = f"(?i:{'|'.join(CONTROL_WORDS)})" + r"[ \t]*:.*"


def _guided_words(chars: int, words: int) -> str:
    """A token: 1 to ``words`` single-spaced words in at most ``chars`` characters."""
    return f"/{_GUIDED_WORD}( {_GUIDED_WORD}){{0,{words - 1}}}/ & /.{{1,{chars}}}/"


# -- symptom detection ---------------------------------------------------------------------
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


def _denied_at(text: str, start: int) -> bool:
    """Whether the mention starting at ``start`` of lower-case ``text`` is negated."""
    clause = _CLAUSE_END_RE.split(text[:start])[-1]
    words = _WORD_RE.findall(clause)
    first = max(0, len(words) - _NEGATION_WINDOW)
    cues = [i for i in range(first, len(words)) if _is_negation(words, i)]
    # "I haven't been able to concentrate" affirms the symptom.
    return bool(cues) and "able" not in words[cues[-1] + 1 :]


def normalise(text: str) -> str:
    """Lower case, punctuation as spaces, single spaces: how names are compared."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


# -- the catalogue -------------------------------------------------------------------------
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
                (denied if _denied_at(lower, start) else affirmed).add(sid)
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


# -- instances, moves, state ---------------------------------------------------------------
class Persona(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    age: int
    occupation: str
    talkativeness: str


class CaseCard(Instance):
    """The patient's hidden card. ``symptoms`` includes the ``distractors`` (symptoms of a
    related condition, on hard cards); ``denied`` symptoms are ones this patient lacks."""

    condition: str
    symptoms: list[str]
    distractors: list[str] = []
    volunteered: list[str]
    denied: list[str]
    onset: str
    history: list[str]
    persona: Persona
    turn_limit: int


class Say(Move):
    text: str


class Question(Move):
    text: str  # the whole reply, shown to the patient
    question: str


class Decision(Move):
    text: str
    diagnosis: str
    plan: list[str]


class Rating(Move):
    empathy: int
    plan_quality: int


@dataclass
class TherapyState:
    card: CaseCard
    turn: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)
    decision: Decision | None = None
    rating: Rating | None = None


PATIENT_RULES = """This is a research simulation of a mental-health assessment, not medical advice.
You role-play a PATIENT, aged {age}, working as a {occupation}. You are {talkativeness}. A therapist will interview you.
Speak in the first person, in plain words, at most {max_words} words ({max_chars} characters) per reply. Do not name a diagnosis.
Only describe what is on your card: never claim a symptom that is not listed, and deny the ones listed as absent if asked.
Do not start a line with QUESTION:, DIAGNOSIS: or PLAN:.

Your card:
{symptoms}
You do NOT have: {denied}.
Only if asked when it started or about your past: {onset} {history}

Begin by telling the therapist why you came, mentioning only the symptoms marked "say early"."""

THERAPIST_RULES = """This is a research simulation of a mental-health assessment, not medical advice.
You are a THERAPIST. Interview the patient, then give a diagnosis and a treatment plan.
Each interview reply must contain exactly one line:
QUESTION: <your question>
(other lines, e.g. a kind word, are shown to the patient too). To finish, reply with two lines and no QUESTION line:
DIAGNOSIS: <one condition>
PLAN: <treatment>; <treatment>
(at most {max_items} treatments, separated by semicolons). Every reply: at most {max_words} words and {max_chars} characters. Replies of both of you count towards a limit of {limit}; if it is reached before your DIAGNOSIS, the diagnosis counts as wrong.
Conditions seen in this clinic: {names}."""


class PatientTherapistGame(Game[CaseCard, TherapyState]):
    roles: tuple[str, ...] = ("patient", "therapist")
    instance_cls = CaseCard
    levels = tuple(TURN_LIMITS)
    instance_version = "v1"
    max_reply_tokens = 200
    reward_range = (0.0, 1.0)
    selfplay_description = (
        "the therapist's quality: 100 × (0.6 diagnosis correct + 0.2 symptom coverage + 0.2 plan concordance)"
    )

    def selfplay_score(self, outcome: Outcome) -> float:
        return self.seat_quality(outcome, "therapist")

    # -- instances -------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> CaseCard:
        cat = catalogue()
        condition = cat.conditions[str(rng.choice(sorted(cat.conditions)))]
        persona = Persona(
            age=int(rng.integers(19, 71)),
            occupation=str(rng.choice(OCCUPATIONS)),
            talkativeness=str(rng.choice(TALKATIVENESS)),
        )
        own = list(condition.symptoms)
        extra = {"reserved": -1, "average": 0, "talkative": 1}[persona.talkativeness]
        distractors: list[str] = []
        if level == "easy":
            symptoms = own
            volunteered = _pick(rng, own, max(1, (len(own) + 1) // 2 + extra))
        else:
            symptoms = _pick(rng, own, max(4, len(own) - 2))
            # Comorbid-looking: the patient leads with a symptom of a related condition.
            related = cat.conditions[str(rng.choice(condition.related))]
            candidates = [s for s in related.symptoms if s not in own]
            distractors = _pick(rng, candidates, min(len(candidates), int(rng.integers(1, 3))))
            volunteered = distractors[:1] + (_pick(rng, symptoms, 1) if extra > 0 else [])
        on_card = set(symptoms) | set(distractors)
        lacking = sorted({s for r in condition.related for s in cat.conditions[r].symptoms} - on_card)
        denied = _pick(rng, lacking, 2 if level == "easy" else 3)
        low, high = condition.duration_months
        history = _pick(rng, list(condition.history), int(rng.integers(1, 3)))
        return CaseCard(
            level=level,
            condition=condition.id,
            symptoms=sorted(on_card),
            distractors=sorted(distractors),
            volunteered=sorted(volunteered),
            denied=sorted(denied),
            onset=condition.onset.format(months=int(rng.integers(low, high + 1))),
            history=history,
            persona=persona,
            turn_limit=TURN_LIMITS[level],
        )

    # -- rules -------------------------------------------------------------------------
    def initial_state(self, instance: CaseCard) -> TherapyState:
        return TherapyState(card=instance)

    def to_move(self, state: TherapyState) -> list[str]:
        if state.decision is None and state.turn < state.card.turn_limit:
            return [("patient", "therapist")[state.turn % 2]]
        if "judge" in self.roles and state.decision is not None and state.rating is None:
            return ["judge"]
        return []

    def is_terminal(self, state: TherapyState) -> bool:
        return not self.to_move(state)

    def prompt(self, state: TherapyState, seat: str) -> str:
        if seat == "judge":
            return self._judge_prompt(state)
        other = "therapist" if seat == "patient" else "patient"
        parts = []
        if state.turn < 2:
            parts.append(
                self._patient_rules(state.card) if seat == "patient" else self._therapist_rules(state.card)
            )
        if state.log and state.log[-1][0] == other:
            parts.append(f"The {other} says:\n{quote(state.log[-1][1])}")
        if seat == "therapist":
            left = replies_left(state.turn, state.card.turn_limit)
            last = " This is your last reply: give DIAGNOSIS: and PLAN: now." if left == 1 else ""
            parts.append(
                f"You have {left} replies left.{last} Reply with one QUESTION: line, or with DIAGNOSIS: and PLAN: lines."
            )
        else:
            parts.append("Reply as the patient, in your own words.")
        return "\n\n".join(parts)

    def _patient_rules(self, card: CaseCard) -> str:
        cat = catalogue()
        lines = []
        for sid in card.symptoms:
            s = cat.symptoms[sid]
            how = "say early" if sid in card.volunteered else "only if asked"
            lines.append(f"- ({s.category}) {s.text} [{how}]")
        return PATIENT_RULES.format(
            age=card.persona.age,
            occupation=card.persona.occupation,
            talkativeness=card.persona.talkativeness,
            max_words=MAX_WORDS,
            max_chars=MAX_CHARS,
            symptoms="\n".join(lines),
            denied=", ".join(cat.symptoms[s].short for s in card.denied),
            onset=card.onset,
            history=" ".join(card.history),
        )

    def _therapist_rules(self, card: CaseCard) -> str:
        names = ", ".join(c.name for c in catalogue().conditions.values())
        return THERAPIST_RULES.format(
            max_items=MAX_PLAN_ITEMS, limit=card.turn_limit, names=names, max_words=MAX_WORDS, max_chars=MAX_CHARS
        )

    def _judge_prompt(self, state: TherapyState) -> str:
        dialogue = "\n".join(f"{seat.upper()}:\n{quote(text)}" for seat, text in state.log)
        return (
            "This is a research simulation of a mental-health assessment, not medical advice.\n"
            "You are the JUDGE. Rate the therapist in the interview below.\n"
            f"{JUDGE_RUBRIC}\n\nThe interview:\n{dialogue}\n\n"
            "Reply with exactly two lines:\nEMPATHY: <1-5>\nPLAN_QUALITY: <1-5>"
        )

    def parse_move(self, state: TherapyState, seat: str, text: str) -> Move:
        # Every seat, the judge included, gets the same empty and length checks first. The
        # line rules hold whichever line break a reply uses ("\r", "\u2028", ... as "\n").
        body = unify_line_breaks(text).strip()
        if not body:
            raise InvalidMove(f"the reply is empty; {EMPTY_HINTS[seat]}")
        words = len(body.split())
        if words > MAX_WORDS:
            raise InvalidMove(f"the reply has {words} words; use at most {MAX_WORDS}")
        if len(body) > MAX_CHARS:
            raise InvalidMove(f"the reply has {len(body)} characters; use at most {MAX_CHARS}")
        if seat == "judge":
            return parse_rating(body)
        if seat == "patient":
            if _ANY_CONTROL_RE.search(body):
                raise InvalidMove(
                    "the patient may not start a line with QUESTION:, DIAGNOSIS:, PLAN:, EMPATHY: or PLAN_QUALITY:; answer in your own words"
                )
            return Say(text=body)
        return parse_therapist(body)

    def move_grammar(self, state: TherapyState, seat: str) -> str:
        """The patient: one line of free words, never a control line. The therapist: an
        optional kind line (never a control line), then ``QUESTION: <question>``, or
        ``DIAGNOSIS: <catalogue condition>`` and ``PLAN: <item>; <item>`` (1 to
        :data:`MAX_PLAN_ITEMS` items). The judge: ``EMPATHY: <1-5>`` and ``PLAN_QUALITY: <1-5>``.
        Bounds: :data:`GUIDED_REPLY_CHARS`, :data:`GUIDED_REPLY_WORDS`, :data:`GUIDED_PREFACE_CHARS`,
        :data:`GUIDED_QUESTION`, :data:`GUIDED_PLAN_ITEM`."""
        if seat == "judge":
            return grammar(f'"EMPATHY: " {int_range(1, 5)} "\\nPLAN_QUALITY: " {int_range(1, 5)}')
        if seat == "patient":
            return grammar("SAY", SAY=f"{_guided_words(GUIDED_REPLY_CHARS, GUIDED_REPLY_WORDS)} & ~/{_CONTROL_START}/")
        item_chars, item_words = GUIDED_PLAN_ITEM
        names = alt(c.name for c in catalogue().conditions.values())
        return grammar(
            '(PREFACE "\\n")? (ask | finish)',
            ask='"QUESTION: " QUESTION_TEXT',
            finish=f'"DIAGNOSIS: " {names} "\\nPLAN: " ITEM ("; " ITEM){{0,{MAX_PLAN_ITEMS - 1}}}',
            # Two operands at most: with a third, the lexer cannot always tell in time that
            # the kind line is over and the control line has begun.
            PREFACE=f"/[!-~]([ -~]{{0,{GUIDED_PREFACE_CHARS - 2}}}[!-~])?/ & ~/{_CONTROL_START}/",
            QUESTION_TEXT=_guided_words(*GUIDED_QUESTION),
            ITEM=f"/{_GUIDED_ITEM}{{0,{item_words - 1}}}/ & /.{{1,{item_chars}}}/",
        )

    def apply(self, state: TherapyState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        if isinstance(move, Rating):
            state.rating = move
            return
        assert isinstance(move, Say | Question | Decision)
        if isinstance(move, Decision):
            state.decision = move
        state.log.append((seat, move.text))
        state.turn += 1

    # -- scoring -------------------------------------------------------------------------
    def claims(self, state: TherapyState) -> tuple[set[str], set[str]]:
        """(affirmed, denied) symptom ids over all the patient's replies."""
        affirmed: set[str] = set()
        denied: set[str] = set()
        for seat, text in state.log:
            if seat == "patient":
                a, d = catalogue().detect(text)
                affirmed |= a
                denied |= d
        return affirmed, denied

    def premature(self, state: TherapyState) -> set[str]:
        """Ask-only card symptoms the patient affirmed before the therapist had asked about
        their category (the topics of its replies so far, by :func:`topics_of`)."""
        cat, card = catalogue(), state.card
        ask_only = set(card.symptoms) - set(card.volunteered)
        asked: set[str] = set()
        early: set[str] = set()
        for seat, text in state.log:
            if seat == "therapist":
                asked.update(topics_of(text))
            elif seat == "patient":
                affirmed, _ = cat.detect(text)
                early |= {s for s in affirmed & ask_only if cat.symptoms[s].category not in asked}
        return early

    def score(self, state: TherapyState) -> Outcome:
        card, cat = state.card, catalogue()
        condition = cat.conditions[card.condition]
        affirmed, denied = self.claims(state)
        on_card = set(card.symptoms)
        coverage = len(affirmed & on_card) / len(on_card)
        premature = self.premature(state)
        invented, contradicted = affirmed - on_card, denied & on_card
        true_claims, false_claims = len(affirmed & on_card), len(invented) + len(contradicted)
        faithfulness = true_claims / (true_claims + false_claims) if true_claims + false_claims else 1.0
        correct = concordance = 0.0
        good = bad = 0
        if state.decision is not None:
            correct = float(cat.find_condition(state.decision.diagnosis) == condition)
            concordance, good, bad = plan_concordance(state.decision.plan, condition)
        metrics = {
            "diagnosis_correct": correct,
            "diagnosed": float(state.decision is not None),
            "symptom_coverage": coverage,
            "plan_concordance": concordance,
            "plan_items": float(len(state.decision.plan)) if state.decision else 0.0,
            "plan_concordant_items": float(good),
            "plan_not_recommended_items": float(bad),
            "patient_faithfulness": faithfulness,
            "invented_symptoms": float(len(invented)),
            "contradicted_symptoms": float(len(contradicted)),
            "claimed_denied_symptoms": float(len(affirmed & set(card.denied))),
            "premature_disclosure": float(len(premature)),
            "turns": float(state.turn),
        }
        rewards = {
            "therapist": 0.6 * correct + 0.2 * coverage + 0.2 * concordance,
            "patient": max(0.0, faithfulness * coverage - PREMATURE_PENALTY * len(premature) / len(on_card)),
        }
        if "judge" in self.roles:
            rewards["judge"] = 0.0
            if state.rating is not None:
                metrics["empathy"] = float(state.rating.empathy)
                metrics["plan_quality"] = float(state.rating.plan_quality)
                rewards["judge"] = 1.0 - abs((state.rating.plan_quality - 1) / 4 - concordance)
        return Outcome(rewards=rewards, metrics=metrics)

    def abort_outcome(self, state: TherapyState, offender: str, reason: str) -> Outcome:
        # A judge that cannot rate must not cost the interview its score.
        if offender == "judge" and state.decision is not None:
            outcome = self.score(state)
            outcome.rewards["judge"] = float(self.abort_penalty)
            return outcome
        return super().abort_outcome(state, offender, reason)

    def view(self, state: TherapyState, seat: str) -> dict[str, Any]:
        view: dict[str, Any] = {
            "log": [list(entry) for entry in state.log],
            "turn": state.turn,
            "turn_limit": state.card.turn_limit,
        }
        if seat == "patient":
            view["card"] = state.card.model_dump(mode="json")
        if seat == "therapist":
            view["replies_left"] = replies_left(state.turn, state.card.turn_limit)
        if seat == "judge" and state.decision is not None:
            view["diagnosis"] = state.decision.diagnosis
            view["plan"] = list(state.decision.plan)
        return view


class JudgedPatientTherapistGame(PatientTherapistGame):
    """The same interview, then a ``judge`` seat rates empathy and plan quality."""

    roles = ("patient", "therapist", "judge")


def replies_left(turn: int, turn_limit: int) -> int:
    """Therapist replies left when it is the therapist's turn (the patient has the even turns)."""
    return (turn_limit - turn + 1) // 2


def _pick(rng: np.random.Generator, items: list[str], n: int) -> list[str]:
    if n <= 0 or not items:
        return []
    return sorted(str(x) for x in rng.choice(items, size=min(n, len(items)), replace=False))


# -- parsing -----------------------------------------------------------------------------
EMPTY_HINTS = {
    "patient": "answer the therapist in your own words",
    "therapist": 'write e.g. "QUESTION: How has your sleep been?"',
    "judge": 'reply e.g. "EMPATHY: 4" and "PLAN_QUALITY: 3"',
}
FINISH_EXAMPLE = '"DIAGNOSIS: panic disorder" and "PLAN: cognitive behavioural therapy; SSRI antidepressant"'


def parse_therapist(body: str) -> Question | Decision:
    questions = _LINE_RE["QUESTION"].findall(body)
    diagnoses = _LINE_RE["DIAGNOSIS"].findall(body)
    plans = _LINE_RE["PLAN"].findall(body)
    if questions and (diagnoses or plans):
        raise InvalidMove("either ask a QUESTION or finish with DIAGNOSIS and PLAN, not both in one reply")
    if diagnoses or plans:
        if len(diagnoses) != 1 or len(plans) != 1:
            raise InvalidMove(
                f"finish with exactly one DIAGNOSIS: line and one PLAN: line, e.g. {FINISH_EXAMPLE}"
            )
        diagnosis = diagnoses[0].strip()
        if not diagnosis:
            raise InvalidMove('the diagnosis is empty; write one condition, e.g. "DIAGNOSIS: panic disorder"')
        # Items are separated by semicolons; a plan without any may use commas instead.
        separator = ";" if ";" in plans[0] else ","
        plan = [item.strip(" .") for item in plans[0].split(separator) if item.strip(" .")]
        if not plan:
            raise InvalidMove(
                'the plan is empty; write e.g. "PLAN: cognitive behavioural therapy; SSRI antidepressant"'
            )
        if len(plan) > MAX_PLAN_ITEMS:
            raise InvalidMove(
                f"the plan has {len(plan)} items; give at most {MAX_PLAN_ITEMS}, separated by semicolons"
            )
        return Decision(text=body, diagnosis=diagnosis, plan=plan)
    if not questions:
        raise InvalidMove(
            f'no line starts with "QUESTION:"; ask e.g. "QUESTION: How has your sleep been?", or finish with {FINISH_EXAMPLE}'
        )
    if len(questions) > 1:
        raise InvalidMove(
            f"ask one question per reply: write exactly one QUESTION: line, not {len(questions)}"
        )
    if not questions[0].strip():
        raise InvalidMove('the question is empty; write e.g. "QUESTION: How has your sleep been?"')
    return Question(text=body, question=questions[0].strip())


def parse_rating(text: str) -> Rating:
    values: dict[str, int] = {}
    for name in ("EMPATHY", "PLAN_QUALITY"):
        found = _LINE_RE[name].findall(text)
        if len(found) != 1:
            raise InvalidMove(
                f'give exactly one "{name}: <1-5>" line (found {len(found)}); reply e.g. "EMPATHY: 4" and "PLAN_QUALITY: 3"'
            )
        value = found[0].strip().rstrip(".")
        if not re.fullmatch(WHOLE_NUMBER, value) or not 1 <= int(value) <= 5:
            raise InvalidMove(f"{name} must be a whole number from 1 to 5 (digits 0-9), got {excerpt(value)}")
        values[name] = int(value)
    return Rating(empathy=values["EMPATHY"], plan_quality=values["PLAN_QUALITY"])


# -- topics of a question --------------------------------------------------------------
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
    q = question.lower()
    return [
        topic
        for topic, cues in TOPIC_CUES.items()
        if any(re.search(r"\b" + re.escape(cue), q) for cue in cues)
    ]


def register_games() -> None:
    from ..players.therapy import JUDGED_PLAYERS, PLAYERS
    from ..registry import register

    register("dialogym/PatientTherapist-v0", PatientTherapistGame, players=PLAYERS)
    register("dialogym/PatientTherapistJudged-v0", JudgedPatientTherapistGame, players=JUDGED_PLAYERS)
