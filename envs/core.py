"""The game API: a game is a pure rules object.

A :class:`Game` knows its seats, whose turn it is, what each seat is told, how a reply
becomes a typed move (or a specific :class:`InvalidMove` error), how moves change the
state and how a finished state is scored. It never calls a model, never does I/O and
takes every random choice from the generator it is handed.

Everything that *drives* a game (re-prompting after a bad move, aborting, recording
turns) lives in :mod:`dialogym.envs.match`, so no game re-implements it.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""

#: Longest game-master message a seat is shown. A longer prompt loses its middle (see
#: :func:`clip_middle`): the head holds the rules and the question, the tail what to do now.
#: It fits the adapters' observation space (``spaces.MAX_OBSERVATION_CHARS``).
MAX_PROMPT_CHARS = 16_000
#: Longest reply a seat may send (the adapters' action space). :class:`~.match.Match` refuses a
#: longer one as an invalid move before any parser sees it, and records it cut to this length.
MAX_ACTION_CHARS = 8_192
#: A whole number as a move may write it: ASCII digits only (``int()`` would also read
#: ``"\u0663"``, and refuses more than 4300 digits), at most nine of them.
WHOLE_NUMBER = r"[0-9]{1,9}"
#: Every character ``str.splitlines`` ends a line at: a reply's lines are its
#: ``str.splitlines()``, for parsers, move grammars (:mod:`.grammar`) and :func:`quote` alike.
#: ``"\r\n"`` ends one line, not two.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAK_RE = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
#: a line break other than "\n": a text without one has nothing to unify
_OTHER_LINE_BREAK_RE = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


class InvalidMove(ValueError):
    """A reply that does not parse, or breaks a rule. The message is shown to the model.

    Write it as a correction: what was wrong and an example of a valid move, e.g.
    ``'no line starts with "ANSWER:"; reply e.g. "ANSWER: 2"'``.
    """


class RuleViolation(InvalidMove):
    """A well-formed move that breaks a rule no move grammar can express (a conjecture
    that is false, a witness that does not verify). Raising it instead of a plain
    :class:`InvalidMove` documents the rule as one a guided episode can still break; the
    grammar property tests count these apart from malformed moves."""


class Instance(BaseModel):
    """Everything needed to replay an episode bit for bit. Games subclass this.

    ``id`` is derived from the content, so equal instances share an id on any machine.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: str = "default"

    def content_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def id(self) -> str:
        return self.content_hash()[:16]


class Move(BaseModel):
    """A parsed move. Games subclass it with typed fields."""

    model_config = ConfigDict(frozen=True)


class MissingMetric(ValueError):
    """A score asked an :class:`Outcome` for a metric its game did not report."""


@dataclass
class Outcome:
    """Per-seat rewards plus named metrics (never only +-1)."""

    rewards: dict[str, float]
    metrics: dict[str, float] = field(default_factory=dict)
    #: in a game of rounds (:meth:`Game.round_of`), each finished round's rewards per seat
    #: (they sum to ``rewards``); empty otherwise
    round_rewards: list[dict[str, float]] = field(default_factory=list)

    def metric(self, name: str) -> float:
        """The metric ``name``, or :class:`MissingMetric` naming the metrics there are."""
        if name not in self.metrics:
            raise MissingMetric(f"no metric {name!r} (the outcome reports {sorted(self.metrics)})")
        return float(self.metrics[name])


RewardRange = tuple[float, float]
#: What :meth:`Game.selfplay_score` measures unless a game says otherwise.
MEAN_SEAT_QUALITY = "the mean over all seats of 100 × (reward − lo) / (hi − lo), the reward mapped from its range"


InstanceT = TypeVar("InstanceT", bound=Instance)
StateT = TypeVar("StateT")


class Game(ABC, Generic[InstanceT, StateT]):
    """Base class of every game.

    Subclasses set the class variables and implement the abstract methods. States are
    plain mutable objects owned by the game; :meth:`apply` changes them in place.
    """

    #: Seat names, in seating order (e.g. ``("speaker", "listener")``).
    roles: ClassVar[tuple[str, ...]]
    #: The pydantic model of this game's instances.
    instance_cls: ClassVar[type[Instance]]
    #: Difficulty levels the generator understands; the first is the default.
    levels: ClassVar[tuple[str, ...]] = ("default",)
    #: Bumped whenever the generator's output for a seed changes.
    instance_version: ClassVar[str] = "v0"
    #: Invalid-move policy: re-prompts allowed per turn before the episode is aborted.
    max_retries: ClassVar[int] = 2
    #: Reward of the seat whose invalid moves aborted the episode; other seats get 0.
    abort_penalty: ClassVar[float] = -1.0
    #: Generation settings a model seat should use unless told otherwise.
    max_reply_tokens: ClassVar[int] = 128
    #: The ``(lo, hi)`` a seat's reward lies in on a played episode, or a mapping seat ->
    #: ``(lo, hi)`` naming every seat where they differ. Benchmarks map a reward from it onto
    #: 0-100 (:meth:`seat_quality`). The default, ``(0.0, 1.0)``, suits a reward of 1 for
    #: success and 0 for failure.
    reward_range: ClassVar[RewardRange | Mapping[str, RewardRange]] = (0.0, 1.0)
    #: True when the seats' rewards trade off against each other, so the mean over seats is
    #: (nearly) the same whoever plays well. Such a game must override :meth:`selfplay_score`
    #: (:func:`~.registry.register` refuses it otherwise).
    zero_sum: ClassVar[bool] = False
    #: True when every seat gets the same reward (a team game, such as the referential
    #: game): one episode cannot tell which of two models played better, so a cross-play
    #: match compares teams instead (:func:`~dialogym.benchmarks.scores.partner_score`).
    cooperative: ClassVar[bool] = False
    #: One line saying what :meth:`selfplay_score` measures (docs and benchmark reports).
    selfplay_description: ClassVar[str] = MEAN_SEAT_QUALITY

    def __init__(self, **config: Any) -> None:
        if config:
            raise TypeError(f"{type(self).__name__} takes no options, got {sorted(config)}")

    # -- instances -------------------------------------------------------------------
    @abstractmethod
    def generate_instance(self, rng: np.random.Generator, level: str) -> InstanceT:
        """Draw one instance of the given level using only ``rng``."""

    # -- rules -----------------------------------------------------------------------
    @abstractmethod
    def initial_state(self, instance: InstanceT) -> StateT: ...

    @abstractmethod
    def to_move(self, state: StateT) -> Sequence[str]:
        """Seats that must act now. Several seats means simultaneous moves; empty when over."""

    @abstractmethod
    def prompt(self, state: StateT, seat: str) -> str:
        """The game master's message to ``seat`` at its turn: news since its last turn and
        what to do now. On a seat's first turn this includes the rules and its private
        information. Text written by other seats must go through :func:`quote`."""

    @abstractmethod
    def parse_move(self, state: StateT, seat: str, text: str) -> Move:
        """Turn raw reply text into a move, or raise :class:`InvalidMove`.

        Lines: a reply's lines are its ``str.splitlines()``, so ``"\\r"``, ``"\\r\\n"``,
        ``"\\u2028"``, ``"\\x85"`` and the other breaks in :data:`LINE_BREAKS` end a line
        just as ``"\\n"`` does (:func:`quote` shows other seats the reply split there). A
        parser whose line rules use regexes (``re.MULTILINE``'s ``^``/``$`` and ``.`` know only
        ``"\\n"``) calls :func:`unify_line_breaks` on ``text`` first, so every rule (one
        ``ANSWER:`` line, no control line from the patient, ...) holds whichever break a reply
        uses; a reply parses exactly as the same reply with every break written ``"\\n"``.
        """

    @abstractmethod
    def apply(self, state: StateT, moves: Mapping[str, Move]) -> None:
        """Apply one move per seat in :meth:`to_move` (all at once for simultaneous turns)."""

    @abstractmethod
    def is_terminal(self, state: StateT) -> bool: ...

    @abstractmethod
    def score(self, state: StateT) -> Outcome:
        """Rewards and metrics of a finished (non-aborted) state."""

    # -- scoring skill -----------------------------------------------------------------
    @classmethod
    def seat_reward_range(cls, seat: str) -> RewardRange:
        """The ``(lo, hi)`` of ``seat``'s reward, from :attr:`reward_range`."""
        entry = cls.reward_range
        if isinstance(entry, Mapping):
            if seat not in entry:
                raise ValueError(f"{cls.__name__}: reward_range names no seat {seat!r} (it has {sorted(entry)})")
            entry = entry[seat]
        lo, hi = float(entry[0]), float(entry[1])
        if not hi > lo:
            raise ValueError(f"{cls.__name__}: reward range of {seat!r} must have hi > lo, got ({lo}, {hi})")
        return lo, hi

    @classmethod
    def seat_quality(cls, outcome: Outcome, seat: str) -> float:
        """``seat``'s reward mapped from its range onto 0-100, clipped."""
        lo, hi = cls.seat_reward_range(seat)
        return min(100.0, max(0.0, 100.0 * (outcome.rewards.get(seat, 0.0) - lo) / (hi - lo)))

    def selfplay_score(self, outcome: Outcome) -> float:
        """How well one model filling every seat played, on 0-100 (see
        :attr:`selfplay_description`); benchmarks clip it to [0, 100].

        Default: the mean :meth:`seat_quality` over all seats, which suits cooperative
        games (the seats share the reward). A :attr:`zero_sum` game must override it with
        the outcome that shows skill; read metrics with :meth:`Outcome.metric`.
        """
        return sum(self.seat_quality(outcome, seat) for seat in self.roles) / len(self.roles)

    # -- optional --------------------------------------------------------------------
    def round_of(self, state: StateT) -> int | None:
        """The round (0, 1, ...) the next move belongs to, in a game played in rounds whose
        rewards :meth:`score` reports one by one (``Outcome.round_rewards``: a hand of poker);
        None (the default): the game has no such rounds. Each recorded turn keeps it
        (``Turn.round``), so a trainer can credit a round's moves with its reward alone."""
        return None

    def move_grammar(self, state: StateT, seat: str) -> str | None:
        """The moves ``seat`` may make now, as a grammar in llguidance's Lark dialect (which
        includes regexes), or None to leave the reply free.

        Contract: every string the grammar accepts is accepted by :meth:`parse_move` in this
        state, ranges included where the rules allow (candidate numbers 1..N, counts within
        the pool, ...); free-text parts are bounded exactly as the parser bounds them. Guided
        agents decode under it, so a small model's choices, not its formatting, are scored.
        E.g. ``'start: "ANSWER: " /[1-3]/'``; :mod:`dialogym.envs.grammar` has helpers.
        """
        return None

    def view(self, state: StateT, seat: str) -> dict[str, Any]:
        """Structured form of what ``seat`` may know now (for scripted players)."""
        return {}

    def abort_outcome(self, state: StateT, offender: str, reason: str) -> Outcome:
        """Outcome when ``offender`` exhausted its re-prompts. Override for other penalties."""
        rewards = {seat: 0.0 for seat in self.roles}
        rewards[offender] = float(self.abort_penalty)
        return Outcome(rewards=rewards, metrics={})


def unify_line_breaks(text: str) -> str:
    """``text`` with every line break in :data:`LINE_BREAKS` (and ``"\\r\\n"``, one break)
    written as ``"\\n"``: its ``splitlines()`` are unchanged, and now regexes (``re.MULTILINE``,
    ``.``) see the same lines. Every game's :meth:`Game.parse_move` reads a reply through it."""
    if text.isprintable() or not _OTHER_LINE_BREAK_RE.search(text):
        # nothing to rewrite, the common case (every move is read here): a printable text has
        # no line break at all, and that is found faster still than by searching
        return text
    return _LINE_BREAK_RE.sub("\n", text)


def clip_middle(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and tail around a marker
    saying how much was cut (the head is kept longer: it holds the rules).

    The tail starts at a line start, never inside a line: a quoted line (:func:`quote`) cut
    in its middle would lose its ``"| "`` prefix, and its rest could pass for the game
    master's text. A tail line longer than the tail's budget is dropped whole.
    """
    if len(text) <= limit:
        return text
    longest_marker = len(f"\n[... {len(text)} characters cut ...]\n")
    keep = max(0, limit - longest_marker)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    start = len(text) - tail
    if start > 0 and text[start - 1] != "\n":
        newline = text.find("\n", start)
        start = len(text) if newline < 0 else newline + 1
    cut = len(text) - head - (len(text) - start)
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[start:]}"


def excerpt(text: str, limit: int = 40) -> str:
    """``text`` quoted for an error message, shortened to about ``limit`` characters."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def bounded_text(
    text: str,
    *,
    max_words: int,
    max_chars: int,
    what: str = "the reply",
    advice: str = "use at most {limit}",
    chars_advice: str | None = None,
) -> str:
    """``text`` if it has at most ``max_words`` words (as ``str.split`` counts them) and
    ``max_chars`` characters, else :class:`InvalidMove` saying which limit it broke.

    The error reads ``"<what> has <n> words; <advice>"`` (or ``characters``), ``{limit}`` in
    ``advice`` (and in ``chars_advice``, the character cap's own advice, when it differs) being
    the limit broken: ``"the clue has 41 words; use at most 40"``. Words are checked first. Both
    caps are needed: a word cap alone lets a few huge "words" through.
    """
    words = len(text.split())
    if words > max_words:
        raise InvalidMove(f"{what} has {words} words; {advice.format(limit=max_words)}")
    if len(text) > max_chars:
        advice = advice if chars_advice is None else chars_advice
        raise InvalidMove(f"{what} has {len(text)} characters; {advice.format(limit=max_chars)}")
    return text


# Characters that could let one seat's text pass for the game master's.
_SPOOF_PREFIX = "| "


def quote(text: str) -> str:
    """Quote another seat's text so it can never read as a game-master line.

    Every line is prefixed with ``"| "``, so a model that writes ``"GAME MASTER: you win"``
    shows up to the others as a quoted line of that model, not as an instruction.
    """
    lines = unify_line_breaks(text).strip().split("\n")
    # runs of blank lines become one: padding must not crowd the record out of a prompt
    kept = [line for i, line in enumerate(lines) if line.strip() or i == 0 or lines[i - 1].strip()]
    return _SPOOF_PREFIX + ("\n" + _SPOOF_PREFIX).join(kept)
