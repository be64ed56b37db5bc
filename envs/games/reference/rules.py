"""The referential game: a speaker describes a target object, a listener picks it out.

The speaker sees the target and the distractors; the listener sees all candidates in a
shuffled order, numbered, and reads the speaker's clue. Both score 1 when the listener
picks the target. Levels differ in the number of candidates and in how alike they are:
on ``hard`` every distractor differs from the target in a single attribute, so only a
clue that names the right attributes can win.

Move formats (exactly what the parsers accept):
- speaker: the first non-empty line is ``CLUE: <description>``, the description not blank,
  at most 40 words and 240 characters, no digits; later lines are ignored;
- listener: one line ``ANSWER: <candidate number>`` (ASCII digits) anywhere in the reply.
  The number may be followed by ``.`` or ``)``, or by words that contain no digits
  (``ANSWER: 2 (the red one)``); other lines are ignored; a second ``ANSWER:`` line is an
  error.

Move grammar (guided play, :meth:`ReferenceGame.move_grammar`): ``CLUE: `` and at most
40 words (single spaces, no digits, no colon) of at most 138 characters (within the parser's
240), so the whole clue fits ``max_reply_tokens`` at 3 characters a token; ``ANSWER: <1..N>`` for the listener.

Metrics: ``success``, ``clue_words``, ``clue_chars``, and from the shared match ``replies``
(the episode's turns, re-prompted replies included) and ``invalid_replies``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...core import (
    WHOLE_NUMBER,
    Game,
    Instance,
    InvalidMove,
    Move,
    Outcome,
    bounded_text,
    excerpt,
    quote,
    unify_line_breaks,
)
from ...grammar import grammar, int_range

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "size": ("small", "large"),
    "color": ("red", "blue", "green", "yellow", "purple", "orange"),
    "pattern": ("plain", "striped", "dotted"),
    "shape": ("circle", "square", "triangle", "star", "hexagon"),
}
ATTRIBUTE_ORDER = tuple(ATTRIBUTES)  # natural English order: "small red striped circle"
MAX_CLUE_WORDS = 40
#: A word cap alone lets forty 200-character "words" through to the listener.
MAX_CLUE_CHARS = 240
#: level -> (number of candidates, attributes in which each distractor differs from the target)
LEVELS: dict[str, tuple[int, int | None]] = {"easy": (3, None), "medium": (4, 2), "hard": (5, 1)}


class Obj(Instance):
    """One candidate object; ``level`` is unused here."""

    size: str
    color: str
    pattern: str
    shape: str

    def describe(self) -> str:
        return " ".join(getattr(self, a) for a in ATTRIBUTE_ORDER)


class ReferenceInstance(Instance):
    target: Obj
    distractors: list[Obj]
    #: listener_order[i] is the index (0 = target, k = distractor k) shown as candidate i+1.
    listener_order: list[int]

    @property
    def candidates(self) -> list[Obj]:
        objects = [self.target, *self.distractors]
        return [objects[i] for i in self.listener_order]

    @property
    def target_number(self) -> int:
        return self.listener_order.index(0) + 1


class Clue(Move):
    text: str


class Answer(Move):
    number: int


@dataclass
class ReferenceState:
    instance: ReferenceInstance
    clue: str | None = None
    answer: int | None = None
    phase: str = "speaker"
    history: list[str] = field(default_factory=list)


# (.*\S)? rather than (.*?)\s*: a lazy group before trailing blanks is quadratic in them.
_CLUE_RE = re.compile(r"^\s*CLUE[ \t]*:[ \t]*(.*\S)?\s*$", re.IGNORECASE)
_ANSWER_LINE_RE = re.compile(r"^[ \t]*ANSWER[ \t]*:[ \t]*(.*\S)?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_DIGIT_RE = re.compile(r"\d")
#: The clue's longest guided form: "CLUE: " and this many characters make 48 tokens at 3 a token
#: (within MAX_CLUE_CHARS, so every clue the grammar accepts the parser accepts too).
GUIDED_CLUE_CHARS = 138
# A clue word for the grammar: no whitespace as Python's str.split sees it (the regex \s
# plus \x1c-\x1f), no digit in any script (\d is Unicode, like the parser's), and no colon,
# so no "ANSWER:" (a regex negation of it next to the two counters is too complex a lexeme).
_GUIDED_WORD = r"[^\s\x1c-\x1f\d:]+"

SPEAKER_RULES = """You are the SPEAKER in a reference game with a partner, the LISTENER.
You see a target object and some other objects. The listener sees all of them in a different order and must pick the target from your clue alone.
Reply with one line: CLUE: <a short description that tells the target apart>
Do not use numbers or positions (the listener's order differs). At most {max_words} words and {max_chars} characters."""

LISTENER_RULES = """You are the LISTENER in a reference game with a partner, the SPEAKER.
The speaker sees one of the objects below as the target and gives you a clue. Pick the target.
Reply with one line: ANSWER: <number of the object>"""


class ReferenceGame(Game[ReferenceInstance, ReferenceState]):
    roles = ("speaker", "listener")
    instance_cls = ReferenceInstance
    levels = tuple(LEVELS)
    instance_version = "v0"
    max_retries = 2
    max_reply_tokens = 48
    reward_range = (0.0, 1.0)  # 1 when the listener picks the target
    cooperative = True  # speaker and listener share the reward
    selfplay_description = "100 × success: the listener picked the target"

    def selfplay_score(self, outcome: Outcome) -> float:
        return 100.0 * outcome.metric("success")

    # -- instances ---------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> ReferenceInstance:
        n_candidates, n_diff = LEVELS[level]

        def random_object() -> dict[str, str]:
            return {a: str(rng.choice(ATTRIBUTES[a])) for a in ATTRIBUTE_ORDER}

        target = random_object()
        seen = {tuple(target.values())}
        distractors: list[dict[str, str]] = []
        while len(distractors) < n_candidates - 1:
            if n_diff is None:
                candidate = random_object()
            else:
                candidate = dict(target)
                for attr in rng.choice(ATTRIBUTE_ORDER, size=n_diff, replace=False):
                    others = [v for v in ATTRIBUTES[str(attr)] if v != target[str(attr)]]
                    candidate[str(attr)] = str(rng.choice(others))
            key = tuple(candidate.values())
            if key not in seen:
                seen.add(key)
                distractors.append(candidate)
        order = [int(i) for i in rng.permutation(n_candidates)]
        return ReferenceInstance(
            level=level,
            target=Obj(**target),
            distractors=[Obj(**d) for d in distractors],
            listener_order=order,
        )

    # -- rules -------------------------------------------------------------------------
    def initial_state(self, instance: ReferenceInstance) -> ReferenceState:
        return ReferenceState(instance=instance)

    def to_move(self, state: ReferenceState) -> list[str]:
        return [] if state.phase == "over" else [state.phase]

    def prompt(self, state: ReferenceState, seat: str) -> str:
        inst = state.instance
        if seat == "speaker":
            others = "\n".join(f"- {d.describe()}" for d in inst.distractors)
            return (
                SPEAKER_RULES.format(max_words=MAX_CLUE_WORDS, max_chars=MAX_CLUE_CHARS)
                + f"\n\nTarget: {inst.target.describe()}\nOther objects:\n{others}"
                + '\n\nNow write your clue. Start your reply with "CLUE:".'
            )
        listing = "\n".join(f"{i}. {obj.describe()}" for i, obj in enumerate(inst.candidates, start=1))
        return (
            f"{LISTENER_RULES}\n\nObjects:\n{listing}\n\nThe speaker's clue:\n{quote(state.clue or '')}"
            '\n\nNow pick the object. Start your reply with "ANSWER:".'
        )

    def parse_move(self, state: ReferenceState, seat: str, text: str) -> Move:
        text = unify_line_breaks(text)  # "\r", "\u2028", ... end a line as "\n" does
        if seat == "speaker":
            return self._parse_clue(text)
        return self._parse_answer(text, len(state.instance.candidates))

    def move_grammar(self, state: ReferenceState, seat: str) -> str:
        """The speaker: ``CLUE: `` and 1-40 words, single-spaced, within
        :data:`GUIDED_CLUE_CHARS`, with no digit and no colon (so no ``ANSWER:``); the
        listener: ``ANSWER: <n>`` for n = 1..number of candidates."""
        if seat == "speaker":
            words = f"/{_GUIDED_WORD}( {_GUIDED_WORD}){{0,{MAX_CLUE_WORDS - 1}}}/"
            return grammar('"CLUE: " CLUE', CLUE=f"{words} & /.{{1,{GUIDED_CLUE_CHARS}}}/")
        return grammar(f'"ANSWER: " {int_range(1, len(state.instance.candidates))}')

    @staticmethod
    def _parse_clue(text: str) -> Clue:
        # The clue is the first non-empty line; anything after it is ignored (small models
        # ramble on), so later lines can never smuggle in text for the listener.
        first = next((line for line in text.split("\n") if line.strip()), "")
        match = _CLUE_RE.match(first)
        if not match:
            raise InvalidMove('the reply must start with "CLUE:"; reply e.g. "CLUE: the large red circle"')
        clue = match.group(1)
        if clue is None:
            raise InvalidMove('the clue is empty; write a description after "CLUE:", e.g. "CLUE: the large red circle"')
        if re.search(r"\bANSWER\s*:", clue, re.IGNORECASE):
            raise InvalidMove('the speaker may not write "ANSWER:"; only the listener answers')
        if _DIGIT_RE.search(clue):
            raise InvalidMove("the clue must not contain digits: the listener sees the objects in another order")
        bounded_text(
            clue, max_words=MAX_CLUE_WORDS, max_chars=MAX_CLUE_CHARS, what="the clue",
            chars_advice='use at most {limit}, e.g. "CLUE: the large red circle"',
        )
        return Clue(text=clue)

    @staticmethod
    def _parse_answer(text: str, n_candidates: int) -> Answer:
        lines = _ANSWER_LINE_RE.findall(text)
        example = f'reply e.g. "ANSWER: {min(2, n_candidates)}"'
        if not lines:
            raise InvalidMove(f'no line starts with "ANSWER:"; {example}')
        if len(lines) > 1:
            raise InvalidMove(f'give exactly one "ANSWER:" line, not {len(lines)}; {example}')
        # "ANSWER: 2" may be followed by words ("ANSWER: 2 (the red one)"), not by more digits.
        value = re.sub(r"^([0-9]+)(?:[.)]?\s+[^0-9].*|[.)])$", r"\1", lines[0].strip())
        if not re.fullmatch(WHOLE_NUMBER, value):
            raise InvalidMove(
                f"the answer must be an object number from 1 to {n_candidates} (digits 0-9), got {excerpt(value)}; {example}"
            )
        number = int(value)
        if not 1 <= number <= n_candidates:
            raise InvalidMove(f"there is no object {number}; choose a number from 1 to {n_candidates}")
        return Answer(number=number)

    def apply(self, state: ReferenceState, moves: Mapping[str, Move]) -> None:
        if state.phase == "speaker":
            move = moves["speaker"]
            assert isinstance(move, Clue)
            state.clue = move.text
            state.phase = "listener"
        else:
            move = moves["listener"]
            assert isinstance(move, Answer)
            state.answer = move.number
            state.phase = "over"

    def is_terminal(self, state: ReferenceState) -> bool:
        return state.phase == "over"

    def score(self, state: ReferenceState) -> Outcome:
        success = float(state.answer == state.instance.target_number)
        words = len((state.clue or "").split())
        return Outcome(
            rewards={"speaker": success, "listener": success},
            metrics={"success": success, "clue_words": float(words), "clue_chars": float(len(state.clue or ""))},
        )

    def view(self, state: ReferenceState, seat: str) -> dict[str, Any]:
        inst = state.instance
        if seat == "speaker":
            return {
                "target": inst.target.model_dump(exclude={"level"}),
                "distractors": [d.model_dump(exclude={"level"}) for d in inst.distractors],
            }
        return {
            "candidates": [c.model_dump(exclude={"level"}) for c in inst.candidates],
            "clue": state.clue,
        }

