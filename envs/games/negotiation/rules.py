"""Item division, after Lewis et al. 2017, "Deal or No Deal? End-to-End Learning for
Negotiation Dialogues".

A pool holds books, hats and balls (1-3 of each on ``easy``, 2-4 on ``hard``). Each player
values each kind privately (non-negative integers) so that the whole pool is worth 10 to
each of them. ``alice`` and ``bob`` alternate, ``alice`` first. A reply is a short free-text
message with at most one control line:

- ``PROPOSE: book=1 hat=2 ball=0`` -- what *you* take; the other side gets the rest. It
  replaces any standing proposal;
- ``ACCEPT`` -- accept the other side's standing proposal; the game ends with that deal.

When the turn limit (both players' turns together: 10 on ``easy``, 6 on ``hard``) is reached
without a deal, both get ``no_deal_reward`` (a game option, default 0). Under a deal each
gets the value of its share. Metrics: ``agreed``, ``score_alice``, ``score_bob``,
``joint_score``, ``turns`` and, on deals only, ``pareto_optimal`` (no other split is better
for one player and no worse for the other, checked against every split of the pool).

Move grammar (guided play, :meth:`NegotiationGame.move_grammar`): the control line first,
``PROPOSE: book=<n> hat=<n> ball=<n>`` with each count within the pool, or ``ACCEPT`` when
the other side's proposal stands, then optionally one message line; or one message line,
then optionally the control line. A message is at most 240 characters and never reads as
a control line, so the longest guided reply fits ``max_reply_tokens`` at 3 characters a token.

The game option ``reward_view="zero_sum"`` rewards each player its score minus the other's
(:mod:`.zero_sum`). The known turn limit makes this version an ultimatum game for the last
mover; ``Negotiation-v1`` (:mod:`.outside_options`) is the version without it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from pydantic import model_validator

from ...core import (
    WHOLE_NUMBER,
    Game,
    Instance,
    InvalidMove,
    Move,
    Outcome,
    excerpt,
    quote,
    unify_line_breaks,
)
from ...grammar import grammar, int_range, text
from .zero_sum import check_reward_view, in_reward_view

ITEMS = ("book", "hat", "ball")
SEATS = ("alice", "bob")
POOL_VALUE = 10
#: level -> (fewest of each kind, most of each kind, turn limit for both players together)
LEVELS: dict[str, tuple[int, int, int]] = {"easy": (1, 3, 10), "hard": (2, 4, 6)}
#: Longer messages are cut before the other side sees them.
MAX_MESSAGE_CHARS = 1000

_PROPOSE_RE = re.compile(r"^\s*PROPOSE\s*:(.*)$", re.IGNORECASE)
_ACCEPT_RE = re.compile(r"^\s*ACCEPT\s*[.!]?\s*$", re.IGNORECASE)
#: either of the two (one regex, so a message line is checked in one pass)
_CONTROL_RE = re.compile(f"{_PROPOSE_RE.pattern}|{_ACCEPT_RE.pattern}", re.IGNORECASE)
_PAIR_RE = re.compile(r"^([A-Za-z]+)=(\S*)$")
#: A guided message's length: with its newline and the control line (28 characters for a
#: pool of at most 9 of each kind) it is at most 269 characters, within 96 tokens at 3 a token.
GUIDED_MESSAGE_CHARS = 240
#: Whitespace as Python's re and str.strip see it: the grammar regex \s plus \x1c-\x1f.
WS = r"[\s\x1c-\x1f]"
#: One message line of a guided reply: free text that never matches _PROPOSE_RE or _ACCEPT_RE,
#: and without \x1c-\x1f, which Python strips but regex \s does not (a message of them alone
#: would leave the reply empty).
GUIDED_MESSAGE = " & ".join([
    text(GUIDED_MESSAGE_CHARS, exclude=r"\x1c-\x1f"),
    f"~/{WS}*(?i:propose){WS}*:.*/",
    f"~/{WS}*(?i:accept){WS}*[.!]?{WS}*/",
])

Share = dict[str, int]


class DivisionInstance(Instance):
    #: item -> how many the pool holds
    counts: dict[str, int]
    #: seat -> item -> value of one item to that seat
    values: dict[str, dict[str, int]]
    turn_limit: int

    @model_validator(mode="after")
    def _check(self) -> DivisionInstance:
        if set(self.counts) != set(ITEMS) or any(c < 0 for c in self.counts.values()):
            raise ValueError(f"counts must give a non-negative count for each of {ITEMS}, got {self.counts}")
        if set(self.values) != set(SEATS):
            raise ValueError(f"values must be given for the seats {SEATS}, got {sorted(self.values)}")
        for seat, values in self.values.items():
            if set(values) != set(ITEMS) or any(v < 0 for v in values.values()):
                raise ValueError(f"{seat}'s values must be non-negative for each of {ITEMS}, got {values}")
            if value_of(values, self.counts) != POOL_VALUE:
                raise ValueError(f"the pool must be worth {POOL_VALUE} to {seat}, got {value_of(values, self.counts)}")
        if self.turn_limit < 1:
            raise ValueError(f"turn_limit must be at least 1, got {self.turn_limit}")
        return self


class Negotiate(Move):
    message: str
    #: what the mover takes, or None for a plain message
    take: Share | None = None
    accept: bool = False


@dataclass(frozen=True)
class Said:
    """One reply as the other side sees it."""

    seat: str
    message: str
    take: Share | None
    accept: bool
    walk_away: bool = False  # only in games with a walk-away move (Negotiation-v1)


@dataclass
class DivisionState:
    instance: DivisionInstance
    turn: int = 0
    #: the standing proposal: what its proposer takes
    proposal: Share | None = None
    proposer: str | None = None
    #: seat -> share, once a proposal is accepted
    deal: dict[str, Share] | None = None
    log: list[Said] = field(default_factory=list)


# -- the arithmetic of splits ----------------------------------------------------------------
def value_of(values: Mapping[str, int], share: Mapping[str, int]) -> int:
    return sum(values[item] * share.get(item, 0) for item in ITEMS)


def rest_of(counts: Mapping[str, int], take: Mapping[str, int]) -> Share:
    return {item: counts[item] - take.get(item, 0) for item in ITEMS}


def all_splits(counts: Mapping[str, int]) -> list[Share]:
    """Every share one player can take (the other gets the rest)."""
    ranges = [range(counts[item] + 1) for item in ITEMS]
    return [dict(zip(ITEMS, combo, strict=True)) for combo in itertools.product(*ranges)]


def is_pareto_optimal(instance: DivisionInstance, alice_share: Mapping[str, int]) -> bool:
    """True when no split gives one player more and the other no less than this one."""
    counts, values = instance.counts, instance.values
    a = value_of(values["alice"], alice_share)
    b = value_of(values["bob"], rest_of(counts, alice_share))
    for split in all_splits(counts):
        a2, b2 = value_of(values["alice"], split), value_of(values["bob"], rest_of(counts, split))
        if a2 >= a and b2 >= b and (a2 > a or b2 > b):
            return False
    return True


def show(share: Mapping[str, int]) -> str:
    return " ".join([f"{item}={share[item]}" for item in ITEMS])


def _plural(n: int, item: str) -> str:
    return f"{n} {item}" if n == 1 else f"{n} {item}s"


# -- parsing ---------------------------------------------------------------------------------
def is_control_line(line: str) -> bool:
    """Whether ``line`` is a ``PROPOSE`` or ``ACCEPT`` line (as the parser reads them)."""
    return _CONTROL_RE.match(line) is not None


def _example_take(counts: Mapping[str, int]) -> str:
    """A proposal that is valid for this pool (half of each kind), for examples."""
    return show({item: counts[item] // 2 for item in ITEMS})


def example_proposal(counts: Mapping[str, int]) -> str:
    """A valid ``PROPOSE`` line for this pool, quoted, for error messages."""
    return f'"PROPOSE: {_example_take(counts)}"'


def parse_take(spec: str, counts: Mapping[str, int]) -> Share:
    """Read ``book=1 hat=2 ball=0`` (what the proposer takes), checked against the pool."""
    example = example_proposal(counts)
    take: Share = {}
    for part in re.sub(r"\s*=\s*", "=", spec).replace(",", " ").split():
        match = _PAIR_RE.match(part)
        if not match:
            raise InvalidMove(f"negotiation: cannot read {part!r} in the proposal; write item=count for each item, e.g. {example}")
        name, raw = match.groups()
        item = name.lower()
        item = item[:-1] if item.endswith("s") and item[:-1] in ITEMS else item
        if item not in ITEMS:
            raise InvalidMove(f"negotiation: there is no item {name!r}; the items are {', '.join(ITEMS)}; write e.g. {example}")
        if item in take:
            raise InvalidMove(f"negotiation: the proposal names {item} twice; name each item once, e.g. {example}")
        if not re.fullmatch(rf"-?{WHOLE_NUMBER}", raw):
            raise InvalidMove(
                f"negotiation: the count of {item} must be a whole number of at most 9 digits 0-9, got {excerpt(raw)}; write e.g. {example}"
            )
        count = int(raw)
        if count < 0:
            raise InvalidMove(f"negotiation: the proposal gives you {count} {item}s; counts cannot be negative; write e.g. {example}")
        if count > counts[item]:
            raise InvalidMove(
                f"negotiation: proposal gives you {_plural(count, item)} but only {counts[item]} exist; write e.g. {example}"
            )
        take[item] = count
    missing = [item for item in ITEMS if item not in take]
    if missing:
        raise InvalidMove(
            f"negotiation: the proposal must give a count for every item (missing: {', '.join(missing)}); write e.g. {example}"
        )
    return take


RULES = """You are {seat}, negotiating with {other} how to divide a pool of items.
Each of you values the items privately; the whole pool is worth 10 to each of you, and you cannot see {other}'s values.
Goal: a share worth as much as possible to you. If there is no deal after {limit} turns in total (yours and {other}'s), {no_deal}.
{moves}
  PROPOSE: book=<n> hat=<n> ball=<n>   (what YOU take; {other} gets the rest)
  ACCEPT                               (accept {other}'s standing proposal; this ends the game)

This game's pool: {pool}.
Your private value of each item: {values}.
Example reply:
{example_reply}"""
# The rules come first and the instance after them, so every episode of a seat starts with
# the same tokens (a batch's shared prefix, kept by the backends across calls).
_WITH_MESSAGES = "Each turn, write a short message. You may add ONE control line:"
_MOVES_ONLY = "Each turn, reply with ONE control line and nothing else:"


class NegotiationGame(Game[DivisionInstance, DivisionState]):
    roles = SEATS
    instance_cls = DivisionInstance
    levels = tuple(LEVELS)
    max_reply_tokens = 96
    reward_range = (0.0, 10.0)  # value of the seat's share; the pool is worth 10 to each
    selfplay_description = (
        "100 × joint score / 20: the value the deal gives both sides together (each values the pool at 10)"
    )

    def selfplay_score(self, outcome: Outcome) -> float:
        return 100.0 * outcome.metric("joint_score") / 20.0

    #: One message line of a guided reply (never a control line of this game).
    guided_message: ClassVar[str] = GUIDED_MESSAGE

    def __init__(self, no_deal_reward: float = 0.0, messages: bool = True, reward_view: str = "general") -> None:
        """``no_deal_reward``: what both get without a deal. ``messages=False`` plays the
        game on moves alone: every reply is one control line (a message-only reply is an
        invalid move, and text beside the control line is dropped unread).
        ``reward_view="zero_sum"`` rewards each seat its score minus the other's
        (:mod:`.zero_sum`); the scores stay in the ``score_<seat>`` metrics."""
        if not isinstance(messages, bool):
            raise ValueError(f"messages must be true or false, got {messages!r}")
        self.no_deal_reward = float(no_deal_reward)
        self.messages = messages
        self.reward_view = check_reward_view(reward_view)

    # -- instances ---------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> DivisionInstance:
        low, high, turn_limit = LEVELS[level]
        while True:
            counts = {item: int(rng.integers(low, high + 1)) for item in ITEMS}
            options = valuations(tuple(counts.values()))
            if len(options) < 2:
                continue
            first, second = (options[int(i)] for i in rng.choice(len(options), size=2, replace=False))
            # As in Lewis et al.: every kind is worth something to someone, and at least one
            # kind is wanted by both, so that the players' interests conflict.
            if all(a + b > 0 for a, b in zip(first, second, strict=True)) and any(
                a > 0 and b > 0 for a, b in zip(first, second, strict=True)
            ):
                values = {"alice": dict(zip(ITEMS, first, strict=True)), "bob": dict(zip(ITEMS, second, strict=True))}
                return DivisionInstance(level=level, counts=counts, values=values, turn_limit=turn_limit)

    # -- rules -------------------------------------------------------------------------
    def initial_state(self, instance: DivisionInstance) -> DivisionState:
        return DivisionState(instance=instance)

    def to_move(self, state: DivisionState) -> list[str]:
        return [] if self.is_terminal(state) else [SEATS[state.turn % 2]]

    @staticmethod
    def other(seat: str) -> str:
        return SEATS[1 - SEATS.index(seat)]

    def rules_fields(self, state: DivisionState, seat: str) -> dict[str, str]:
        """The fields of :data:`RULES` (and of a later version's rules) for ``seat``."""
        counts, values = state.instance.counts, state.instance.values[seat]
        return {
            "seat": seat, "other": self.other(seat),
            "moves": _WITH_MESSAGES if self.messages else _MOVES_ONLY,
            "example_reply": ("  How about this split?\n" if self.messages else "") + f"  PROPOSE: {_example_take(counts)}",
            "pool": ", ".join([_plural(counts[i], i) for i in ITEMS]),
            "values": ", ".join([f"{i}={values[i]}" for i in ITEMS]),
        }

    def rules(self, state: DivisionState, seat: str) -> str:
        """The rules and ``seat``'s private facts, shown at its first turn."""
        no_deal = "both of you get nothing" if self.no_deal_reward == 0 else f"both of you get {self.no_deal_reward:g}"
        return RULES.format(limit=state.instance.turn_limit, no_deal=no_deal, **self.rules_fields(state, seat))

    def turn_line(self, state: DivisionState) -> str:
        """The prompt's last line: the turn count, and a warning on the last turn."""
        limit = state.instance.turn_limit
        last = " This is the last turn: ACCEPT now or there is no deal." if limit - state.turn == 1 else ""
        return f"Turn {state.turn + 1} of {limit}.{last} Your reply:"

    def prompt(self, state: DivisionState, seat: str) -> str:
        inst, other = state.instance, self.other(seat)
        parts = []
        if state.turn < 2:  # a seat's first turn
            parts.append(self.rules(state, seat))
        if state.log and state.log[-1].seat == other:
            parts.append(f"{other} says:\n{quote(render(state.log[-1]))}")
        if state.proposal is not None and state.proposer == other:
            yours = rest_of(inst.counts, state.proposal)
            parts.append(
                f"Standing proposal by {other}: you get {show(yours)} (worth {value_of(inst.values[seat], yours)} to you)."
            )
        parts.append(self.turn_line(state))
        return "\n\n".join(parts)

    def parse_move(self, state: DivisionState, seat: str, text: str) -> Negotiate:
        counts = state.instance.counts
        text = unify_line_breaks(text)  # "\r", "\u2028", ... end a line as "\n" does
        text = text.strip()
        if not text:
            raise InvalidMove(f"negotiation: the reply is empty; write a short message, optionally with {example_proposal(counts)} or ACCEPT")
        lines = text.split("\n")
        control = [line for line in lines if is_control_line(line)]
        if len(control) > 1:
            raise InvalidMove(f"negotiation: use at most one control line (one PROPOSE or one ACCEPT) per reply, e.g. {example_proposal(counts)}")
        # without a control line the message is the whole (stripped) reply
        message = ("\n".join(line for line in lines if line not in control).strip() if control else text)[:MAX_MESSAGE_CHARS]
        if not self.messages:
            if not control:
                raise InvalidMove(
                    f"negotiation: this game is played on moves alone; reply with one control line, {example_proposal(counts)} or ACCEPT"
                )
            message = ""
        if not control:
            return Negotiate(message=message)
        if _ACCEPT_RE.match(control[0]):
            if state.proposal is None:
                raise InvalidMove(f"negotiation: there is no proposal to accept yet; make one, e.g. {example_proposal(counts)}")
            if state.proposer == seat:
                raise InvalidMove(
                    "negotiation: the standing proposal is your own, so there is nothing to accept; "
                    f"wait for the other side, or propose again, e.g. {example_proposal(counts)}"
                )
            return Negotiate(message=message, accept=True)
        spec = _PROPOSE_RE.match(control[0]).group(1)  # type: ignore[union-attr]
        return Negotiate(message=message, take=parse_take(spec, counts))

    def move_grammar(self, state: DivisionState, seat: str) -> str:
        """The control line then an optional message line, or a message line alone (decision
        first: a guided reply cut at its token budget still holds its move). The control line is ``PROPOSE: book=<n> hat=<n> ball=<n>`` (each count
        from 0 to the pool's), or ``ACCEPT`` when the other side's proposal stands. With
        ``messages=False`` the control line alone."""
        controls = self.controls(state, seat)
        if not self.messages:  # moves alone: the control line is the whole reply
            return grammar("control", control=" | ".join(controls))
        return grammar(
            'control ("\\n" MESSAGE)? | MESSAGE', control=" | ".join(controls), MESSAGE=self.guided_message
        )

    def controls(self, state: DivisionState, seat: str) -> list[str]:
        """The control lines ``seat`` may write now, as grammar alternatives."""
        counts = state.instance.counts
        controls = ['"PROPOSE: " ' + ' " " '.join(f'"{item}=" {int_range(0, counts[item])}' for item in ITEMS)]
        if state.proposal is not None and state.proposer != seat:
            controls.append('"ACCEPT"')
        return controls

    def apply(self, state: DivisionState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        assert isinstance(move, Negotiate)
        if move.accept:
            assert state.proposal is not None and state.proposer is not None
            state.deal = {state.proposer: dict(state.proposal), seat: rest_of(state.instance.counts, state.proposal)}
        elif move.take is not None:
            state.proposal, state.proposer = dict(move.take), seat
        state.log.append(Said(seat=seat, message=move.message, take=move.take, accept=move.accept))
        state.turn += 1

    def is_terminal(self, state: DivisionState) -> bool:
        return state.deal is not None or state.turn >= state.instance.turn_limit

    def score(self, state: DivisionState) -> Outcome:
        inst = state.instance
        metrics: dict[str, float] = {"agreed": float(state.deal is not None), "turns": float(state.turn)}
        if state.deal is not None:
            scores = {seat: float(value_of(inst.values[seat], state.deal[seat])) for seat in SEATS}
        else:
            scores = self.no_deal_scores(state)
        for seat in SEATS:
            metrics[f"score_{seat}"] = scores[seat]
        metrics["joint_score"] = sum(scores.values())
        if state.deal is not None:
            metrics["pareto_optimal"] = float(is_pareto_optimal(inst, state.deal["alice"]))
            rewards = scores
        else:
            rewards = self.no_deal_rewards(state)
        return in_reward_view(Outcome(rewards=rewards, metrics=metrics), self.reward_view, SEATS)

    def no_deal_scores(self, state: DivisionState) -> dict[str, float]:
        """Each seat's score (metric ``score_<seat>``) without a deal: 0, whatever ``no_deal_reward`` is."""
        return {seat: 0.0 for seat in SEATS}

    def no_deal_rewards(self, state: DivisionState) -> dict[str, float]:
        """Each seat's reward without a deal (in the general view): ``no_deal_reward``."""
        return {seat: self.no_deal_reward for seat in SEATS}

    def view(self, state: DivisionState, seat: str) -> dict[str, Any]:
        """The pool, this seat's own values, the standing proposal and the public history."""
        inst = state.instance
        theirs = state.proposal if state.proposer == self.other(seat) else None
        return {
            "seat": seat,
            "counts": dict(inst.counts),
            "values": dict(inst.values[seat]),
            "turn": state.turn,
            "turn_limit": inst.turn_limit,
            "no_deal_reward": self.no_deal_reward,
            "offer_to_me": rest_of(inst.counts, theirs) if theirs is not None else None,
            "my_proposal": dict(state.proposal) if state.proposal is not None and state.proposer == seat else None,
            "my_proposals": sum(1 for said in state.log if said.seat == seat and said.take is not None),
            "history": [
                {"seat": s.seat, "message": s.message, "take": s.take, "accept": s.accept} for s in state.log
            ],
        }


def render(said: Said) -> str:
    """A reply as the other side is shown it (before quoting)."""
    lines = [said.message] if said.message else []
    if said.accept:
        lines.append("ACCEPT")
    elif said.walk_away:
        lines.append("WALK AWAY")
    elif said.take is not None:
        lines.append(f"PROPOSE: {show(said.take)}")
    return "\n".join(lines) or "(no message)"


@lru_cache(maxsize=256)
def valuations(counts: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every value vector (one non-negative integer per kind) that makes the pool worth 10."""
    ranges = [range(POOL_VALUE // c + 1) if c else range(1) for c in counts]
    return [v for v in itertools.product(*ranges) if sum(a * c for a, c in zip(v, counts, strict=True)) == POOL_VALUE]

