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

Symptom mentions are found by keyword (:meth:`.conditions.Catalogue.detect`): a mention is a
*denial* when a negation word stands among the five words before it in the same clause
(:mod:`.cues`). Scores:
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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from ...core import Game, Instance, InvalidMove, Move, Outcome, bounded_text, quote, unify_line_breaks
from .conditions import catalogue, plan_concordance
from .cues import topics_of
from .moves import (
    EMPTY_HINTS,
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

#: Replies of both seats together; even, so the last reply is the therapist's.
TURN_LIMITS = {"easy": 16, "hard": 10}
MAX_WORDS = 150
#: A word cap alone lets a few huge "words" through.
MAX_CHARS = 1000
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


# -- instances and state -------------------------------------------------------------------
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
        bounded_text(body, max_words=MAX_WORDS, max_chars=MAX_CHARS)
        if seat == "judge":
            return parse_rating(body)
        if seat == "patient":
            return parse_patient(body)
        return parse_therapist(body)

    def move_grammar(self, state: TherapyState, seat: str) -> str:
        """The seat's grammar, the same in every state (:func:`~.moves.seat_grammar`)."""
        return seat_grammar(seat)

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
