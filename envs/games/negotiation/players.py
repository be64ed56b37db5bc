"""Scripted players of item division (:mod:`dialogym.envs.games.negotiation`).

``fair_splitter`` asks for half the pool by its own values and accepts half or more;
``greedy_conceder`` asks for everything it values and lowers its aspiration from 10 to 6
over its turns. ``PLAYERS`` registers each for both seats (``scripted:fair``,
``scripted:greedy``), the baselines of the game's benchmark table.

Both read whichever version's view they are given. On ``Negotiation-v0`` they see the turn
limit and, on the game's last turn, accept anything at least as good as no deal: the flaw
that makes v0 an ultimatum game (docs/games/negotiation.md). On ``Negotiation-v1`` no turn is
known to be the last, so they never do; they know their own outside option and never accept
or propose a share worth less, and the greedy one concedes over the expected number of turns.

``PANEL`` is the held-out panel (``scripted:panel:firm``, ``scripted:panel:slow``,
``scripted:panel:tit``): opponents no recipe trains against, for judging a learner against
play it has never seen. They never accept less than their outside option (v1) or no deal (v0).

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .horizon import expected_turns
from .rules import ITEMS, POOL_VALUE, SEATS, all_splits, show, value_of


def _propose(take: Mapping[str, int], message: str) -> str:
    return f"PROPOSE: {show(take)}\n{message}"


def _is_last_turn(view: dict[str, Any]) -> bool:
    """True on the game's last turn; never where the turn limit is hidden (v1)."""
    return "turn_limit" in view and view["turn"] >= view["turn_limit"] - 1


def _outside(view: dict[str, Any]) -> float:
    """What no deal is worth to this seat: its outside option (v1), or 0 where the view has none
    (v0, whose players weigh ``no_deal_reward`` only on the last turn)."""
    return view.get("outside_option", 0)


def _may_end_now(view: dict[str, Any]) -> bool:
    """Where the horizon is hidden (v1): whether the talks may end after this turn."""
    return "min_turns" in view and view["turn"] + 1 >= view["min_turns"]


def _my_turns(view: dict[str, Any]) -> int:
    """How many turns this seat has: all it will get (v0), or as many as the talks last on
    average (v1)."""
    horizon = view["turn_limit"] if "turn_limit" in view else expected_turns(view["min_turns"], view["end_one_in"])
    return (horizon + 1 - view["turn"] % 2) // 2


def _worth_of_offer(view: dict[str, Any]) -> float | None:
    offer = view["offer_to_me"]
    return None if offer is None else value_of(view["values"], offer)


def _asked(view: dict[str, Any]) -> dict[str, int]:
    """How many of each item the other side has asked for, over all its proposals."""
    asked = {item: 0 for item in ITEMS}
    for said in view["history"]:
        if said["seat"] != view["seat"] and said["take"]:
            for item in ITEMS:
                asked[item] += said["take"][item]
    return asked


def _share_meeting(view: dict[str, Any], aspiration: float) -> dict[str, int]:
    """The cheapest share (to the other side) worth at least ``aspiration``, giving away
    first what the other side asked for: those items are likely worth something to it."""
    counts, values, asked = view["counts"], view["values"], _asked(view)
    candidates = [s for s in all_splits(counts) if value_of(values, s) >= aspiration]
    return min(
        candidates,
        key=lambda s: (value_of(values, s), -sum(asked[i] * (counts[i] - s[i]) for i in ITEMS), sum(s.values()), show(s)),
    )


def fair_splitter(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Proposes a share worth half the pool by its own values (as near as the pool allows,
    and never less than its outside option), choosing among those the split most even in
    item counts, and a different such split on each new proposal. Accepts any proposal worth
    at least half the pool (and its outside option) to it, and, on a game's known last turn
    (v0), any proposal at least as good as no deal."""
    counts, values, worth = view["counts"], view["values"], _worth_of_offer(view)
    half = POOL_VALUE / 2
    if worth is not None and (worth >= max(half, _outside(view)) or (_is_last_turn(view) and worth >= view["no_deal_reward"])):
        return "ACCEPT\nThat is fair enough for me."
    splits = [s for s in all_splits(counts) if value_of(values, s) >= _outside(view)]
    nearest = min(abs(value_of(values, s) - half) for s in splits)
    fair = [s for s in splits if abs(value_of(values, s) - half) == nearest]
    fair.sort(key=lambda s: (sum(abs(2 * s[i] - counts[i]) for i in ITEMS), -value_of(values, s), show(s)))
    take = fair[view["my_proposals"] % len(fair)]
    return _propose(take, "Let's split this evenly.")


def greedy_conceder(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Asks for everything it values, then lowers its aspiration in equal steps from 10 to
    6 (or its outside option, if higher) over its turns: all it has (v0), or as many as the
    talks last on average (v1), then stays there. It proposes the cheapest share (to the
    other side) that still meets the aspiration, preferring to give away what the other side
    asked for; it accepts an offer that meets the aspiration, and on a game's known last
    turn (v0) anything at least as good as no deal."""
    floor = max(6, _outside(view))
    aspiration = max(floor, POOL_VALUE - (POOL_VALUE - floor) * (view["turn"] // 2) / max(1, _my_turns(view) - 1))
    worth = _worth_of_offer(view)
    if worth is not None:
        risky = _may_end_now(view) and worth >= max(floor, (1 - 1 / view["end_one_in"]) * aspiration)
        if worth >= aspiration or risky or (_is_last_turn(view) and worth >= view["no_deal_reward"]):
            return "ACCEPT\nDeal."
    return _propose(_share_meeting(view, aspiration), "This is what I need.")


# -- the held-out panel ------------------------------------------------------------------------
def firm(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Asks for a share worth at least 7 every turn and never accepts one worth less than 6
    (or than its outside option)."""
    worth = _worth_of_offer(view)
    if worth is not None and worth >= max(6, _outside(view)):
        return "ACCEPT\nAgreed."
    return _propose(_share_meeting(view, max(7, _outside(view))), "I will not go lower than this.")


def slow_conceder(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Asks for everything it values and concedes half a point a turn, down to one point above
    its outside option (at least 5); accepts an offer that meets its aspiration."""
    aspiration = max(5, _outside(view) + 1, POOL_VALUE - 0.5 * (view["turn"] // 2))
    worth = _worth_of_offer(view)
    if worth is not None and worth >= aspiration:
        return "ACCEPT\nFine."
    return _propose(_share_meeting(view, aspiration), "I can hardly give more.")


def tit_for_tat(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Mirrors the other side's concessions: asks for everything it values, and lowers its
    aspiration by as much as the other side's proposals have improved for it since the first
    (by its own values), down to 5 (or its outside option, if higher). So a side that never
    concedes gets no concession, and no deal. Accepts an offer that meets its aspiration."""
    values, counts = view["values"], view["counts"]
    offered = [value_of(values, {i: counts[i] - s["take"][i] for i in ITEMS})
               for s in view["history"] if s["seat"] != view["seat"] and s["take"]]
    conceded = max(0, offered[-1] - offered[0]) if offered else 0
    aspiration = max(5, _outside(view), POOL_VALUE - conceded)
    worth = _worth_of_offer(view)
    if worth is not None and worth >= aspiration:
        return "ACCEPT\nYou moved, so I accept."
    return _propose(_share_meeting(view, aspiration), "I move as much as you do.")


PLAYERS = {
    "greedy": {seat: greedy_conceder for seat in SEATS},
    "fair": {seat: fair_splitter for seat in SEATS},
}
#: The held-out panel: never used by a recipe for training, only to evaluate against.
PANEL = {
    "panel:firm": {seat: firm for seat in SEATS},
    "panel:slow": {seat: slow_conceder for seat in SEATS},
    "panel:tit": {seat: tit_for_tat for seat in SEATS},
}
