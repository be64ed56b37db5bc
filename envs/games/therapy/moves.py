"""What each seat of the patient-therapist interview may reply: the move models, how a reply
is read (:func:`parse_patient`, :func:`parse_therapist`, :func:`parse_rating`) and the move
grammars of guided play (:func:`seat_grammar`).

Control lines (``QUESTION:``, ``DIAGNOSIS:``, ``PLAN:``, ``EMPATHY:``, ``PLAN_QUALITY:``) are
read line by line; the patient may write none of them.
"""

from __future__ import annotations

import re

from ...core import WHOLE_NUMBER, InvalidMove, Move, excerpt
from ...grammar import alt, grammar, int_range
from .conditions import catalogue

MAX_PLAN_ITEMS = 5
CONTROL_WORDS = ("QUESTION", "DIAGNOSIS", "PLAN", "EMPATHY", "PLAN_QUALITY")
# [ \t]* rather than \s*: a match must never run on into the next line.
_LINE_RE = {
    w: re.compile(rf"^[ \t]*{w}[ \t]*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE) for w in CONTROL_WORDS
}
_ANY_CONTROL_RE = re.compile(rf"^[ \t]*(?:{'|'.join(CONTROL_WORDS)})[ \t]*:", re.IGNORECASE | re.MULTILINE)


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


# -- parsing -------------------------------------------------------------------------------
EMPTY_HINTS = {
    "patient": "answer the therapist in your own words",
    "therapist": 'write e.g. "QUESTION: How has your sleep been?"',
    "judge": 'reply e.g. "EMPATHY: 4" and "PLAN_QUALITY: 3"',
}
FINISH_EXAMPLE = '"DIAGNOSIS: panic disorder" and "PLAN: cognitive behavioural therapy; SSRI antidepressant"'


def parse_patient(body: str) -> Say:
    """The patient's reply: its own words, with no control line."""
    if _ANY_CONTROL_RE.search(body):
        raise InvalidMove(
            "the patient may not start a line with QUESTION:, DIAGNOSIS:, PLAN:, EMPATHY: or PLAN_QUALITY:; answer in your own words"
        )
    return Say(text=body)


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


def seat_grammar(seat: str) -> str:
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
