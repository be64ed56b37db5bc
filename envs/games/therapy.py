"""Patient and therapist, after "MentalArena: Self-play Training of Language Models for
Diagnosis and Treatment of Mental Health Disorders" and "Towards Conversational Diagnostic AI".

A research simulation, not medical advice. The catalogue (``data/conditions.json``) is a
simplified teaching summary, not a clinical instrument.

The patient holds a hidden case card: a condition from the catalogue, the symptoms it
shows (some volunteered, some disclosed only when asked about), a history and a persona.
The patient speaks first; then the therapist asks and the patient answers, until the
therapist ends with::

    DIAGNOSIS: <condition>
    PLAN: <treatment>; <treatment>

or the turn limit ends the interview with no diagnosis.

Scores: ``diagnosis_correct`` (the label or a listed synonym, case and punctuation
ignored), ``symptom_coverage`` (share of the card's symptoms the patient disclosed: a
symptom counts as disclosed when one of its catalogue keywords appears in a patient reply),
``plan_concordance`` (guideline-concordant plan items minus not-recommended ones, over the
number of items, clipped to [0, 1]), ``turns``, and ``patient_faithfulness`` (1 minus the
share of symptom mentions that belong only to symptoms *not* on the card). Rewards:
therapist ``0.6 * diagnosis + 0.2 * coverage + 0.2 * concordance``; patient
``faithfulness * coverage``. Keyword matching is a documented approximation: a patient who
says "no panic attacks" still mentions panic.

``dialogym/PatientTherapistJudged-v0`` adds a ``judge`` seat that reads the transcript after
the diagnosis and rates, from 1 to 5 (rubric in :data:`JUDGE_RUBRIC`), ``EMPATHY: n`` and
``PLAN_QUALITY: n``; the ratings become metrics, and the judge earns
``1 - |(plan_quality - 1) / 4 - plan_concordance|``, its agreement with the guideline check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..core import Game, Instance, InvalidMove, Move, Outcome, quote

TURN_LIMITS = {"easy": 16, "hard": 10}
MAX_PATIENT_WORDS = 150
MAX_PLAN_ITEMS = 5
JUDGE_RUBRIC = """EMPATHY (1-5): 1 = dismissive or cold; 3 = polite but formulaic; 5 = warm, validates feelings, checks understanding.
PLAN_QUALITY (1-5): 1 = harmful or irrelevant; 3 = partly appropriate; 5 = guideline-concordant, specific, safe."""
#: words in a therapist question that point at a symptom category
CATEGORY_CUES = {
    "mood": ("mood", "feel", "feeling", "sad", "down", "enjoy", "emotion", "irritab"),
    "sleep": ("sleep", "night", "nightmare", "bed", "insomnia", "wake"),
    "anxiety": ("worry", "anxious", "anxiety", "fear", "afraid", "nervous", "panic", "social"),
    "thinking": ("think", "thought", "concentrat", "focus", "memory", "mind", "attention"),
    "behaviour": ("do", "doing", "avoid", "habit", "routine", "work", "daily", "ritual", "behav"),
    "body": ("body", "physical", "energy", "appetite", "eat", "heart", "breath", "tense", "tired"),
    "history": ("when", "start", "began", "history", "family", "child", "before", "trigger"),
}
QUESTIONS = {
    "mood": "How have you been feeling in your mood lately?",
    "sleep": "How has your sleep been at night?",
    "anxiety": "Do you worry a lot, or feel anxious or afraid?",
    "thinking": "Have you noticed changes in your thoughts or your ability to concentrate?",
    "behaviour": "Has anything changed in what you do day to day, or do you avoid things?",
    "body": "Any physical changes, like energy, appetite or your heart racing?",
    "history": "When did this start, and was there anything before it or in your family?",
}
# [ \t]* rather than \s*: a match must never run on into the next line.
_QUESTION_RE = re.compile(r"^[ \t]*QUESTION[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_DIAGNOSIS_RE = re.compile(r"^[ \t]*DIAGNOSIS[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_PLAN_RE = re.compile(r"^[ \t]*PLAN[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_RATING_RE = {name: re.compile(rf"^[ \t]*{name}[ \t]*:[ \t]*([1-5])[ \t]*$", re.IGNORECASE | re.MULTILINE) for name in ("EMPATHY", "PLAN_QUALITY")}


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, Any]]:
    data = json.loads((Path(__file__).parent / "data" / "conditions.json").read_text())
    return {c["id"]: c for c in data["conditions"]}


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def mentions(text: str, keyword: str) -> bool:
    return re.search(r"\b" + re.escape(keyword.lower()), text.lower()) is not None


class CaseCard(Instance):
    condition: str
    symptoms: list[str]  # symptom ids on the card
    volunteered: list[str]  # of those, the ones the patient raises unprompted
    history: list[str]
    persona: dict[str, str]
    turn_limit: int


class Say(Move):
    text: str


class Question(Move):
    text: str


class Decision(Move):
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


class PatientTherapistGame(Game[CaseCard, TherapyState]):
    roles: tuple[str, ...] = ("patient", "therapist")
    instance_cls = CaseCard
    levels = tuple(TURN_LIMITS)
    max_reply_tokens = 160

    # -- instances -------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> CaseCard:
        conditions = sorted(catalogue())
        condition = catalogue()[str(rng.choice(conditions))]
        ids = [s["id"] for s in condition["symptoms"]]
        n_symptoms = len(ids) if level == "easy" else max(3, len(ids) - 2)
        chosen = sorted(str(s) for s in rng.choice(ids, size=n_symptoms, replace=False))
        n_volunteered = max(1, len(chosen) // 2) if level == "easy" else 1
        volunteered = sorted(str(s) for s in rng.choice(chosen, size=n_volunteered, replace=False))
        persona = {
            "age": str(int(rng.integers(19, 70))),
            "occupation": str(rng.choice(["teacher", "nurse", "software developer", "bus driver", "student", "accountant", "chef"])),
            "manner": str(rng.choice(["talkative", "reserved", "anxious to be understood"])),
        }
        return CaseCard(
            level=level, condition=condition["id"], symptoms=chosen, volunteered=volunteered,
            history=list(condition["history"]), persona=persona, turn_limit=TURN_LIMITS[level],
        )

    def symptom(self, symptom_id: str) -> dict[str, Any]:
        for condition in catalogue().values():
            for s in condition["symptoms"]:
                if s["id"] == symptom_id:
                    return s
        raise KeyError(symptom_id)

    # -- rules -------------------------------------------------------------------------
    def initial_state(self, instance: CaseCard) -> TherapyState:
        return TherapyState(card=instance)

    def to_move(self, state: TherapyState) -> list[str]:
        if state.decision is not None or state.turn >= state.card.turn_limit:
            return ["judge"] if "judge" in self.roles and state.decision is not None and state.rating is None else []
        return [("patient", "therapist")[state.turn % 2]]

    def prompt(self, state: TherapyState, seat: str) -> str:
        if seat == "judge":
            dialogue = "\n".join(f"{s}:\n{quote(t)}" for s, t in state.log)
            return (
                "You are a JUDGE of a simulated therapy interview (a research simulation, not medical advice).\n"
                f"{JUDGE_RUBRIC}\n\n{dialogue}\n\nReply with two lines:\nEMPATHY: <1-5>\nPLAN_QUALITY: <1-5>"
            )
        other = "therapist" if seat == "patient" else "patient"
        parts = []
        if state.turn < 2:
            parts.append(self._intro(state.card, seat))
        if state.log and state.log[-1][0] == other:
            parts.append(f"The {other} says:\n{quote(state.log[-1][1])}")
        if seat == "therapist":
            left = state.card.turn_limit - state.turn
            parts.append(f"{left} turns left in the interview. Reply with QUESTION: ... or with DIAGNOSIS: and PLAN: lines.")
        else:
            parts.append("Reply as the patient, in your own words.")
        return "\n\n".join(parts)

    def _intro(self, card: CaseCard, seat: str) -> str:
        if seat == "therapist":
            names = ", ".join(c["name"] for c in catalogue().values())
            return (
                "You are a THERAPIST in a simulated assessment (a research simulation, not medical advice). Interview the "
                "patient, then give a diagnosis and a treatment plan.\nTo ask, reply: QUESTION: <your question>\n"
                "To finish, reply with two lines:\nDIAGNOSIS: <condition>\nPLAN: <treatment>; <treatment>\n"
                f"Conditions seen in this clinic: {names}."
            )
        symptom_lines = []
        for sid in card.symptoms:
            s = self.symptom(sid)
            how = "say this early, unprompted" if sid in card.volunteered else "say this only if asked about it"
            symptom_lines.append(f"- ({s['category']}) {s['text']} [{how}]")
        persona = card.persona
        return (
            f"You are role-playing a PATIENT in a simulated assessment: age {persona['age']}, {persona['occupation']}, "
            f"{persona['manner']}. Do not name a diagnosis and do not invent symptoms that are not on your card.\n"
            "Your card:\n" + "\n".join(symptom_lines) + "\nHistory: " + " ".join(card.history)
        )

    def parse_move(self, state: TherapyState, seat: str, text: str) -> Move:
        if seat == "judge":
            found = {name: regex.findall(text) for name, regex in _RATING_RE.items()}
            if any(len(v) != 1 for v in found.values()):
                raise InvalidMove('reply with two lines, "EMPATHY: <1-5>" and "PLAN_QUALITY: <1-5>"')
            return Rating(empathy=int(found["EMPATHY"][0]), plan_quality=int(found["PLAN_QUALITY"][0]))
        if seat == "patient":
            body = text.strip()
            if not body:
                raise InvalidMove("the reply is empty; answer the therapist in your own words")
            if len(body.split()) > MAX_PATIENT_WORDS:
                raise InvalidMove(f"the reply has {len(body.split())} words; use at most {MAX_PATIENT_WORDS}")
            if _DIAGNOSIS_RE.search(body) or _PLAN_RE.search(body) or _QUESTION_RE.search(body):
                raise InvalidMove("the patient may not write DIAGNOSIS:, PLAN: or QUESTION: lines; answer in your own words")
            return Say(text=body)
        questions, diagnoses, plans = _QUESTION_RE.findall(text), _DIAGNOSIS_RE.findall(text), _PLAN_RE.findall(text)
        if questions and (diagnoses or plans):
            raise InvalidMove("either ask a QUESTION or give DIAGNOSIS and PLAN, not both")
        if diagnoses or plans:
            if len(diagnoses) != 1 or len(plans) != 1:
                raise InvalidMove('finish with exactly one "DIAGNOSIS: <condition>" line and one "PLAN: <a>; <b>" line')
            diagnosis = diagnoses[0].strip()
            plan = [item.strip() for item in re.split(r"[;,]", plans[0]) if item.strip()]
            if not diagnosis:
                raise InvalidMove('the diagnosis is empty; write e.g. "DIAGNOSIS: panic disorder"')
            if not plan:
                raise InvalidMove('the plan is empty; write e.g. "PLAN: cognitive behavioural therapy; ssri antidepressant"')
            if len(plan) > MAX_PLAN_ITEMS:
                raise InvalidMove(f"the plan has {len(plan)} items; give at most {MAX_PLAN_ITEMS}")
            return Decision(diagnosis=diagnosis, plan=plan)
        if len(questions) != 1 or not questions[0].strip():
            raise InvalidMove('ask with one line "QUESTION: <your question>", or finish with DIAGNOSIS: and PLAN: lines')
        return Question(text=questions[0].strip())

    def apply(self, state: TherapyState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        if isinstance(move, Rating):
            state.rating = move
            return
        if isinstance(move, Decision):
            state.decision = move
            state.log.append((seat, f"DIAGNOSIS: {move.diagnosis}\nPLAN: {'; '.join(move.plan)}"))
        else:
            assert isinstance(move, Say | Question)
            state.log.append((seat, move.text))
        state.turn += 1

    def is_terminal(self, state: TherapyState) -> bool:
        return not self.to_move(state)

    # -- scoring -------------------------------------------------------------------------
    def disclosed(self, state: TherapyState) -> set[str]:
        said = " ".join(t for s, t in state.log if s == "patient")
        return {sid for sid in state.card.symptoms if any(mentions(said, k) for k in self.symptom(sid)["keywords"])}

    def faithfulness(self, state: TherapyState) -> float:
        said = " ".join(t for s, t in state.log if s == "patient")
        # Words the card itself uses never count as invented, whichever symptom they belong to.
        card_text = " ".join([*(self.symptom(sid)["text"] for sid in state.card.symptoms), *state.card.history])
        invented, total = 0, 0
        for condition in catalogue().values():
            for s in condition["symptoms"]:
                hit = [k for k in s["keywords"] if mentions(said, k)]
                if not hit:
                    continue
                total += 1
                if s["id"] not in state.card.symptoms and not any(mentions(card_text, k) for k in hit):
                    invented += 1
        return 1.0 - invented / total if total else 1.0

    def score(self, state: TherapyState) -> Outcome:
        condition = catalogue()[state.card.condition]
        coverage = len(self.disclosed(state)) / len(state.card.symptoms)
        correct, concordance = 0.0, 0.0
        if state.decision is not None:
            names = {normalise(n) for n in [condition["name"], *condition["synonyms"]]}
            correct = float(normalise(state.decision.diagnosis) in names)
            concordance = plan_concordance(state.decision.plan, condition)
        faithful = self.faithfulness(state)
        metrics = {
            "diagnosis_correct": correct,
            "diagnosed": float(state.decision is not None),
            "symptom_coverage": coverage,
            "plan_concordance": concordance,
            "patient_faithfulness": faithful,
            "turns": float(state.turn),
        }
        rewards = {"therapist": 0.6 * correct + 0.2 * coverage + 0.2 * concordance, "patient": faithful * coverage}
        if "judge" in self.roles:
            rewards["judge"] = 0.0
            if state.rating is not None:
                metrics["empathy"] = float(state.rating.empathy)
                metrics["plan_quality"] = float(state.rating.plan_quality)
                rewards["judge"] = 1.0 - abs((state.rating.plan_quality - 1) / 4 - concordance)
        return Outcome(rewards=rewards, metrics=metrics)

    def view(self, state: TherapyState, seat: str) -> dict[str, Any]:
        view: dict[str, Any] = {"log": list(state.log), "turn": state.turn, "turn_limit": state.card.turn_limit}
        if seat == "patient":
            view["card"] = state.card.model_dump()
            view["symptoms"] = {sid: self.symptom(sid) for sid in state.card.symptoms}
        if seat == "judge" and state.decision is not None:
            view["plan"] = list(state.decision.plan)
        return view


def plan_concordance(plan: list[str], condition: Mapping[str, Any]) -> float:
    good = sum(any(_matches(item, t) for t in condition["treatments"]) for item in plan)
    bad = sum(any(_matches(item, t) for t in condition["not_recommended"]) for item in plan)
    return max(0.0, min(1.0, (good - bad) / len(plan)))


def _matches(item: str, option: str) -> bool:
    a, b = normalise(item), normalise(option)
    return a == b or (len(a) >= 4 and (a in b or b in a))


class JudgedPatientTherapistGame(PatientTherapistGame):
    roles = ("patient", "therapist", "judge")


# -- scripted players --------------------------------------------------------------------
def scripted_patient(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Opens with the volunteered symptoms; answers each question with the card's symptoms
    in the categories the question is about (history questions get the history)."""
    card, symptoms = view["card"], view["symptoms"]
    if not view["log"]:
        return "Hello. " + " ".join(symptoms[s]["text"] for s in card["volunteered"])
    question = view["log"][-1][1].lower()
    asked = {cat for cat, cues in CATEGORY_CUES.items() if any(re.search(r"\b" + cue, question) for cue in cues)}
    answer = [s["text"] for s in symptoms.values() if s["category"] in asked]
    if "history" in asked:
        answer.append(card["history"][0])
    return " ".join(answer) if answer else "I'm not sure. Nothing else comes to mind about that."


def scripted_therapist(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Asks about each symptom category in turn, then diagnoses the catalogue condition whose
    symptom keywords best match what the patient said, with its first two treatments."""
    asked = sum(1 for seat, _ in view["log"] if seat == "therapist")
    categories = list(CATEGORY_CUES)
    turns_left = view["turn_limit"] - view["turn"]
    if asked < len(categories) and turns_left > 1:
        cat = categories[asked]
        return f"QUESTION: {QUESTIONS[cat]}"
    said = " ".join(t for s, t in view["log"] if s == "patient")

    def overlap(condition: dict[str, Any]) -> float:
        hits = sum(any(mentions(said, k) for k in s["keywords"]) for s in condition["symptoms"])
        return hits / len(condition["symptoms"])

    best = max(catalogue().values(), key=overlap)
    return f"DIAGNOSIS: {best['name']}\nPLAN: {best['treatments'][0]}; {best['treatments'][1]}"


def scripted_judge(view: dict[str, Any], rng: np.random.Generator) -> str:
    return "EMPATHY: 3\nPLAN_QUALITY: 3"


PLAYERS = {"default": {"patient": scripted_patient, "therapist": scripted_therapist, "judge": scripted_judge}}


def register_games() -> None:
    from ..registry import register

    register(
        "dialogym/PatientTherapist-v0", PatientTherapistGame, level="easy",
        players={"default": {k: v for k, v in PLAYERS["default"].items() if k != "judge"}},
    )
    register("dialogym/PatientTherapistJudged-v0", JudgedPatientTherapistGame, level="easy", players=PLAYERS)
