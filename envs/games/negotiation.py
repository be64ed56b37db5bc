"""Item division, after Lewis et al. 2017, "Deal or No Deal? End-to-End Learning for
Negotiation Dialogues".

A pool holds 1-4 books, hats and balls. Each player privately values each kind (non-negative
integers) so that the whole pool is worth 10 to each. Players alternate; a reply is free
text that may carry one control line:

- ``PROPOSE: book=1 hat=2 ball=0`` — what *you* take; the other side gets the rest;
- ``ACCEPT`` — accept the other side's standing proposal, which ends the game.

With no deal when the turn limit is reached, both get ``no_deal_reward`` (default 0).
Otherwise each gets the value of its share. Metrics: ``agreed``, ``score_<seat>``,
``joint_score``, ``pareto_optimal`` (no other split is better for one and no worse for the
other) and ``turns``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import Game, Instance, InvalidMove, Move, Outcome, quote

ITEMS = ("book", "hat", "ball")
POOL_VALUE = 10
#: level -> turn limit (both players' turns together); hard pools also hold 2-4 of each kind
TURN_LIMITS = {"easy": 10, "hard": 6}
EXAMPLE = '"PROPOSE: book=1 hat=2 ball=0"'
_PROPOSE_RE = re.compile(r"^\s*PROPOSE\s*:(.*)$", re.IGNORECASE | re.MULTILINE)
_ACCEPT_RE = re.compile(r"^\s*ACCEPT\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_PAIR_RE = re.compile(r"^([A-Za-z]+)\s*=\s*(-?\d+)$")


class DivisionInstance(Instance):
    counts: dict[str, int]
    #: seat -> item -> value of one item
    values: dict[str, dict[str, int]]
    turn_limit: int


class Negotiate(Move):
    message: str
    #: what the mover takes, or None for a plain message
    take: dict[str, int] | None = None
    accept: bool = False


@dataclass
class DivisionState:
    instance: DivisionInstance
    turn: int = 0
    proposal: dict[str, int] | None = None  # what the proposer takes
    proposer: str | None = None
    deal: dict[str, dict[str, int]] | None = None  # seat -> share
    log: list[tuple[str, str]] = field(default_factory=list)  # (seat, message) as shown to others


def value_of(values: Mapping[str, int], share: Mapping[str, int]) -> int:
    return sum(values[item] * share.get(item, 0) for item in ITEMS)


def rest_of(counts: Mapping[str, int], take: Mapping[str, int]) -> dict[str, int]:
    return {item: counts[item] - take.get(item, 0) for item in ITEMS}


def all_splits(counts: Mapping[str, int]) -> list[dict[str, int]]:
    ranges = [range(counts[item] + 1) for item in ITEMS]
    return [dict(zip(ITEMS, combo, strict=True)) for combo in itertools.product(*ranges)]


def is_pareto_optimal(instance: DivisionInstance, seats: tuple[str, str], first_share: Mapping[str, int]) -> bool:
    """True when no split gives one seat more and the other no less than ``first_share`` does."""
    first, second = seats
    va = value_of(instance.values[first], first_share)
    vb = value_of(instance.values[second], rest_of(instance.counts, first_share))
    for split in all_splits(instance.counts):
        a = value_of(instance.values[first], split)
        b = value_of(instance.values[second], rest_of(instance.counts, split))
        if a >= va and b >= vb and (a > va or b > vb):
            return False
    return True


def parse_take(spec: str, counts: Mapping[str, int]) -> dict[str, int]:
    take: dict[str, int] = {}
    for part in spec.replace(",", " ").split():
        match = _PAIR_RE.match(part)
        if not match:
            raise InvalidMove(f"cannot read {part!r} in the proposal; write e.g. {EXAMPLE}")
        item, count = match.group(1).lower().rstrip("s"), int(match.group(2))
        if item not in ITEMS:
            raise InvalidMove(f"there is no item {match.group(1)!r}; the items are {', '.join(ITEMS)}; write e.g. {EXAMPLE}")
        if item in take:
            raise InvalidMove(f"the proposal names {item} twice; write e.g. {EXAMPLE}")
        if count < 0:
            raise InvalidMove(f"the proposal takes {count} {item}s; counts cannot be negative")
        if count > counts[item]:
            raise InvalidMove(f"the proposal takes {count} {item}s but only {counts[item]} exist; write e.g. {EXAMPLE}")
        take[item] = count
    missing = [item for item in ITEMS if item not in take]
    if missing:
        raise InvalidMove(f"the proposal must give a count for every item (missing: {', '.join(missing)}); write e.g. {EXAMPLE}")
    return take


RULES = """You are {seat} in a negotiation with {other}. Together you must divide a pool of items:
{pool}.
Your private values per item: {values} (the whole pool is worth 10 to you; {other} values items differently and you cannot see how).
Goal: get a share worth as much as possible to you. With no deal after {limit} turns in total, both of you get nothing.
Write a short message. You may add ONE control line:
  PROPOSE: book=<n> hat=<n> ball=<n>   (what YOU take; {other} gets the rest)
  ACCEPT                              (accept {other}'s standing proposal; this ends the game)"""


class NegotiationGame(Game[DivisionInstance, DivisionState]):
    roles = ("alice", "bob")
    instance_cls = DivisionInstance
    levels = tuple(TURN_LIMITS)
    max_reply_tokens = 96

    def __init__(self, no_deal_reward: float = 0.0) -> None:
        self.no_deal_reward = float(no_deal_reward)

    def generate_instance(self, rng: np.random.Generator, level: str) -> DivisionInstance:
        while True:
            low = 1 if level == "easy" else 2  # hard: bigger pools and fewer turns
            counts = {item: int(rng.integers(low, 5)) for item in ITEMS}
            values = {seat: self._values(rng, counts) for seat in self.roles}
            if values is not None and all(v is not None for v in values.values()) and values["alice"] != values["bob"]:
                return DivisionInstance(level=level, counts=counts, values=values, turn_limit=TURN_LIMITS[level])

    @staticmethod
    def _values(rng: np.random.Generator, counts: Mapping[str, int]) -> dict[str, int] | None:
        for _ in range(200):
            values = {item: int(rng.integers(0, POOL_VALUE + 1)) for item in ITEMS}
            if value_of(values, counts) == POOL_VALUE:
                return values
        return None

    def initial_state(self, instance: DivisionInstance) -> DivisionState:
        return DivisionState(instance=instance)

    def to_move(self, state: DivisionState) -> list[str]:
        return [] if self.is_terminal(state) else [self.roles[state.turn % 2]]

    def _other(self, seat: str) -> str:
        return self.roles[1 - self.roles.index(seat)]

    def prompt(self, state: DivisionState, seat: str) -> str:
        inst, other = state.instance, self._other(seat)
        parts = []
        if state.turn < 2:
            pool = ", ".join(f"{inst.counts[i]} {i}s" for i in ITEMS)
            values = ", ".join(f"{i}={inst.values[seat][i]}" for i in ITEMS)
            parts.append(RULES.format(seat=seat, other=other, pool=pool, values=values, limit=inst.turn_limit))
        if state.log and state.log[-1][0] == other:
            parts.append(f"{other} says:\n{quote(state.log[-1][1])}")
        if state.proposal is not None and state.proposer == other:
            yours = rest_of(inst.counts, state.proposal)
            parts.append(
                f"Standing proposal by {other}: you get "
                + " ".join(f"{i}={yours[i]}" for i in ITEMS)
                + f" (worth {value_of(inst.values[seat], yours)} to you)."
            )
        parts.append(f"Turn {state.turn + 1} of {inst.turn_limit}. Your reply:")
        return "\n\n".join(parts)

    def parse_move(self, state: DivisionState, seat: str, text: str) -> Negotiate:
        proposals = _PROPOSE_RE.findall(text)
        accepts = _ACCEPT_RE.findall(text)
        if not text.strip():
            raise InvalidMove(f"the reply is empty; write a message, optionally with {EXAMPLE} or ACCEPT")
        if len(proposals) + len(accepts) > 1:
            raise InvalidMove("use at most one control line (one PROPOSE or one ACCEPT) per reply")
        message = "\n".join(
            line for line in text.strip().splitlines() if not (_PROPOSE_RE.match(line) or _ACCEPT_RE.match(line))
        ).strip()
        if accepts:
            if state.proposal is None:
                raise InvalidMove(f"there is no proposal to accept yet; make one, e.g. {EXAMPLE}")
            if state.proposer == seat:
                raise InvalidMove("you cannot accept your own proposal; wait for the other side, or propose again")
            return Negotiate(message=message, accept=True)
        take = parse_take(proposals[0], state.instance.counts) if proposals else None
        return Negotiate(message=message, take=take)

    def apply(self, state: DivisionState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        assert isinstance(move, Negotiate)
        shown = move.message
        if move.accept:
            assert state.proposal is not None and state.proposer is not None
            state.deal = {
                state.proposer: dict(state.proposal),
                seat: rest_of(state.instance.counts, state.proposal),
            }
            shown = (shown + "\n" if shown else "") + "(accepts)"
        elif move.take is not None:
            state.proposal, state.proposer = dict(move.take), seat
            shown = (shown + "\n" if shown else "") + "(proposes: " + " ".join(f"{i}={move.take[i]}" for i in ITEMS) + ")"
        state.log.append((seat, shown))
        state.turn += 1

    def is_terminal(self, state: DivisionState) -> bool:
        return state.deal is not None or state.turn >= state.instance.turn_limit

    def score(self, state: DivisionState) -> Outcome:
        inst = state.instance
        metrics: dict[str, float] = {"agreed": float(state.deal is not None), "turns": float(state.turn)}
        if state.deal is None:
            rewards = {seat: self.no_deal_reward for seat in self.roles}
        else:
            rewards = {seat: float(value_of(inst.values[seat], state.deal[seat])) for seat in self.roles}
            metrics["pareto_optimal"] = float(is_pareto_optimal(inst, self.roles, state.deal[self.roles[0]]))
        for seat in self.roles:
            metrics[f"score_{seat}"] = rewards[seat] if state.deal is not None else 0.0
        metrics["joint_score"] = metrics["score_alice"] + metrics["score_bob"]
        return Outcome(rewards=rewards, metrics=metrics)

    def view(self, state: DivisionState, seat: str) -> dict[str, Any]:
        other_proposal = state.proposal if state.proposer == self._other(seat) else None
        return {
            "seat": seat,
            "counts": dict(state.instance.counts),
            "values": dict(state.instance.values[seat]),
            "turn": state.turn,
            "turn_limit": state.instance.turn_limit,
            "their_take": dict(other_proposal) if other_proposal else None,
            "my_proposals": sum(1 for s, text in state.log if s == seat and "(proposes:" in text),
        }


# -- scripted players --------------------------------------------------------------------
def _offer(take: Mapping[str, int], message: str) -> str:
    return f"{message}\nPROPOSE: " + " ".join(f"{i}={take[i]}" for i in ITEMS)


def _fair_take(counts: Mapping[str, int], values: Mapping[str, int]) -> dict[str, int]:
    """Half of each kind; of the kinds with an odd count, I take the extra item of every
    other one, starting with the kind I value most."""
    take = {i: counts[i] // 2 for i in ITEMS}
    odd = [i for i in ITEMS if counts[i] % 2]
    for k, item in enumerate(sorted(odd, key=lambda i: -values[i])):
        take[item] += 1 if k % 2 == 0 else 0
    return take


def _is_fair(counts: Mapping[str, int], mine: Mapping[str, int]) -> bool:
    return all(abs(2 * mine[i] - counts[i]) <= 1 for i in ITEMS)


def fair_splitter(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Proposes an even split by counts; accepts any even split, or any share worth >= 5."""
    counts, values, theirs = view["counts"], view["values"], view["their_take"]
    if theirs is not None:
        mine = rest_of(counts, theirs)
        if _is_fair(counts, mine) or value_of(values, mine) >= POOL_VALUE // 2:
            return "That works for me.\nACCEPT"
    return _offer(_fair_take(counts, values), "Let's split everything evenly.")


def greedy_conceder(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Asks for everything it values, gives up one low-value item per proposal, and accepts
    once an offer reaches its falling aspiration (10 at first, 4 on its last turn)."""
    counts, values, theirs = view["counts"], view["values"], view["their_take"]
    turns_left = view["turn_limit"] - view["turn"]
    aspiration = max(4, POOL_VALUE - 2 * view["my_proposals"])
    if theirs is not None:
        offered = value_of(values, rest_of(counts, theirs))
        if offered >= aspiration or (turns_left <= 2 and offered > 0):
            return "Deal.\nACCEPT"
    take = {i: counts[i] if values[i] > 0 else 0 for i in ITEMS}
    for _ in range(view["my_proposals"]):
        cheapest = min((i for i in ITEMS if take[i] > 0), key=lambda i: values[i], default=None)
        if cheapest is None or value_of(values, take) - values[cheapest] < 4:
            break
        take[cheapest] -= 1
    return _offer(take, "Here is what I need.")


PLAYERS = {
    "fair": {seat: fair_splitter for seat in NegotiationGame.roles},
    "greedy": {seat: greedy_conceder for seat in NegotiationGame.roles},
}


def register_games() -> None:
    from ..registry import register

    register("dialogym/Negotiation-v0", NegotiationGame, players=PLAYERS, level="easy")
