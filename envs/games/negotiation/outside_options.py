"""``dialogym/Negotiation-v1``: item division with private outside options, a walk-away move
and a horizon nobody can count down to.

``Negotiation-v0`` has a known turn limit, and ``bob`` always has the last turn; a player who
accepts anything at least as good as no deal on its last turn (both v0 scripted players do)
hands the other side an ultimatum: proposing the whole pool on every turn scores 10 against
them (docs/games/negotiation.md). Version 1 keeps v0's pool and valuations and changes three
rules so that "propose everything" is not a winning policy:

- **hidden horizon** (:mod:`.horizon`): the talks last at least ``min_turns`` turns, then end
  after each turn with a chance of one in ``end_one_in``; the real turn limit is drawn per
  instance and shown to nobody, so no turn is known to be the last;
- **private outside options**: each seat has a value of no deal, drawn per instance
  (:data:`OUTSIDE_OPTIONS`) and shown only to its owner; without a deal each seat scores its
  own, so a bad split is worse than no deal;
- **walking away**: a ``WALK AWAY`` control line ends the talks with no deal.

Rewards (general view): under a deal the value of one's share, without one one's outside
option; ``reward_view="zero_sum"`` rewards the margin over the other side (:mod:`.zero_sum`).
Metrics: v0's (``score_<seat>`` is the reward of the general view, the outside option without
a deal), plus ``walked_away`` and ``zone_exists`` (some split gives each side more than its
outside option).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import model_validator

from ...core import InvalidMove, Move, Outcome, unify_line_breaks
from .horizon import HiddenHorizonInstance, Horizon, horizon_rule, horizon_view, turn_line
from .rules import (
    GUIDED_MESSAGE,
    MAX_MESSAGE_CHARS,
    POOL_VALUE,
    SEATS,
    WS,
    DivisionInstance,
    DivisionState,
    Negotiate,
    NegotiationGame,
    Said,
    all_splits,
    example_proposal,
    is_control_line,
    rest_of,
    value_of,
)

#: level -> the law of the hidden turn limit. ``easy``: at least 4 turns (each side proposes
#: twice), then 1 in 6 after each turn: about 9 turns on average, like v0's 10. ``hard``: the
#: talks may end from bob's first reply on, 1 in 4 after each turn: about 5 turns, like v0's 6.
#: The caps (24, 14) are reached in under 4% of games.
HORIZONS: dict[str, Horizon] = {"easy": Horizon(4, 6, 24), "hard": Horizon(2, 4, 14)}
#: The lowest and highest outside option (of the pool's 10), drawn uniformly per seat. At
#: least 2, so a share worth 0 or 1 is always worse than no deal; at most 5, so an even split
#: (5) is never worse than no deal; their mean, 3.5, is well below an even split.
OUTSIDE_OPTIONS = (2, 5)

_WALK_RE = re.compile(r"^\s*WALK\s+AWAY\s*[.!]?\s*$", re.IGNORECASE)
#: One message line of a guided reply: as in v0, and never a ``WALK AWAY`` line either.
GUIDED_MESSAGE_V1 = f"{GUIDED_MESSAGE} & ~/{WS}*(?i:walk){WS}+(?i:away){WS}*[.!]?{WS}*/"

RULES_V1 = """You are {seat}, negotiating with {other} how to divide a pool of items.
Each of you values the items privately; the whole pool is worth 10 to each of you, and you cannot see {other}'s values.
Each of you also has a private outside option: what no deal is worth to you. If the talks end without a deal, because one of you walks away or because time runs out, each of you gets its own outside option. A deal worth less than yours is worse than no deal.
Goal: as much value as possible to you.
{horizon}
{moves}
  PROPOSE: book=<n> hat=<n> ball=<n>   (what YOU take; {other} gets the rest)
  ACCEPT                               (accept {other}'s standing proposal; this ends the game)
  WALK AWAY                            (end the talks with no deal)

This game's pool: {pool}.
Your private value of each item: {values}.
Your outside option: {outside}.
Example reply:
{example_reply}"""


class OutsideOptionInstance(DivisionInstance, HiddenHorizonInstance):
    #: seat -> the value of no deal to that seat
    outside: dict[str, int]

    @model_validator(mode="after")
    def _check_outside(self) -> OutsideOptionInstance:
        if set(self.outside) != set(SEATS) or not all(0 <= v <= POOL_VALUE for v in self.outside.values()):
            raise ValueError(f"outside must give each of {SEATS} an option from 0 to {POOL_VALUE}, got {self.outside}")
        return self


class NegotiateOrWalk(Negotiate):
    walk_away: bool = False


@dataclass
class OutsideOptionState(DivisionState):
    walked_away: str | None = None


class OutsideOptionNegotiationGame(NegotiationGame):
    """Item division with private outside options, ``WALK AWAY`` and a hidden horizon."""

    instance_cls = OutsideOptionInstance
    instance_version = "v1"
    levels = tuple(HORIZONS)
    guided_message: ClassVar[str] = GUIDED_MESSAGE_V1

    def __init__(self, messages: bool = True, reward_view: str = "general") -> None:
        """``messages`` and ``reward_view`` as in v0; no deal pays the outside options, so
        v0's ``no_deal_reward`` is not an option here."""
        super().__init__(messages=messages, reward_view=reward_view)

    # -- instances ---------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> OutsideOptionInstance:
        pool = super().generate_instance(rng, level)  # v0's pool and values; its turn limit is replaced
        low, high = OUTSIDE_OPTIONS
        outside = {seat: int(rng.integers(low, high + 1)) for seat in SEATS}
        horizon = HORIZONS[level]
        return OutsideOptionInstance(
            **pool.model_dump(exclude={"turn_limit"}), outside=outside, turn_limit=horizon.draw(rng),
            min_turns=horizon.min_turns, end_one_in=horizon.end_one_in,
        )

    def initial_state(self, instance: OutsideOptionInstance) -> OutsideOptionState:  # type: ignore[override]
        return OutsideOptionState(instance=instance)

    # -- what a seat is told -----------------------------------------------------------
    def rules(self, state: DivisionState, seat: str) -> str:
        inst = state.instance
        assert isinstance(inst, OutsideOptionInstance)
        return RULES_V1.format(
            horizon=horizon_rule(inst.min_turns, inst.end_one_in), outside=inst.outside[seat],
            **self.rules_fields(state, seat),
        )

    def turn_line(self, state: DivisionState) -> str:
        return turn_line(state.turn, state.instance.min_turns)  # type: ignore[attr-defined]

    def view(self, state: DivisionState, seat: str) -> dict[str, Any]:
        """v0's view without the real turn limit, plus the seat's own outside option and the
        horizon's law."""
        inst = state.instance
        assert isinstance(inst, OutsideOptionInstance)
        view = super().view(state, seat)
        del view["turn_limit"], view["no_deal_reward"]
        view.update(outside_option=inst.outside[seat], **horizon_view(inst))
        view["history"] = [
            {"seat": s.seat, "message": s.message, "take": s.take, "accept": s.accept, "walk_away": s.walk_away}
            for s in state.log
        ]
        return view

    # -- moves -------------------------------------------------------------------------
    def parse_move(self, state: DivisionState, seat: str, text: str) -> NegotiateOrWalk:
        lines = unify_line_breaks(text).strip().split("\n")
        walks = [line for line in lines if _WALK_RE.match(line)]
        if not walks:
            return NegotiateOrWalk(**super().parse_move(state, seat, text).model_dump())
        if len(walks) > 1 or any(is_control_line(line) for line in lines):
            raise InvalidMove(
                "negotiation: use at most one control line (one PROPOSE, ACCEPT or WALK AWAY) per reply, "
                f"e.g. {example_proposal(state.instance.counts)}"
            )
        message = "\n".join(line for line in lines if line not in walks).strip()[:MAX_MESSAGE_CHARS]
        return NegotiateOrWalk(message=message if self.messages else "", walk_away=True)

    def controls(self, state: DivisionState, seat: str) -> list[str]:
        return [*super().controls(state, seat), '"WALK AWAY"']

    def apply(self, state: DivisionState, moves: Mapping[str, Move]) -> None:
        ((seat, move),) = moves.items()
        assert isinstance(state, OutsideOptionState) and isinstance(move, NegotiateOrWalk)
        if not move.walk_away:
            super().apply(state, moves)
            return
        state.walked_away = seat
        state.log.append(Said(seat=seat, message=move.message, take=None, accept=False, walk_away=True))
        state.turn += 1

    def is_terminal(self, state: DivisionState) -> bool:
        return super().is_terminal(state) or getattr(state, "walked_away", None) is not None

    # -- scoring -----------------------------------------------------------------------
    def no_deal_scores(self, state: DivisionState) -> dict[str, float]:
        """Without a deal each seat scores its own outside option."""
        return {seat: float(state.instance.outside[seat]) for seat in SEATS}  # type: ignore[attr-defined]

    def no_deal_rewards(self, state: DivisionState) -> dict[str, float]:
        return self.no_deal_scores(state)

    def score(self, state: DivisionState) -> Outcome:
        outcome = super().score(state)
        outcome.metrics["walked_away"] = float(getattr(state, "walked_away", None) is not None)
        outcome.metrics["zone_exists"] = float(zone_exists(state.instance))  # type: ignore[arg-type]
        return outcome


def zone_exists(instance: OutsideOptionInstance) -> bool:
    """Whether some split gives each side more than its outside option."""
    alice, bob = (instance.values[seat] for seat in SEATS)
    return any(
        value_of(alice, split) > instance.outside["alice"] and value_of(bob, rest_of(instance.counts, split)) > instance.outside["bob"]
        for split in all_splits(instance.counts)
    )
