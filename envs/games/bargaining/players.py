"""Scripted players of price bargaining (:mod:`dialogym.envs.games.bargaining`).

A conceding side opens at the list price (seller) or half of it (buyer) and closes a share
``rate`` of the gap to the other side's last offer each turn: ``conceding`` (0.4),
``stubborn`` (0.15) and ``fair`` (0.5, splitting the difference); ``template_critic``
gives the critic seat's advice from a fixed list. ``PLAYERS`` is what Bargaining-v0 and -v1
register, ``CRITIC_PLAYERS`` (the same sides and the critic) what BargainingCritic-v0 does.
On v0 a side accepts any offer it may on the game's last turn, which v1 hides: there it never
knows a turn is the last.

``PANEL`` is the held-out panel (``scripted:panel:slow``, conceding 0.05 of the gap per turn,
and ``scripted:panel:tit``, which concedes as many dollars as the other side last did):
opponents no recipe trains against, registered with both versions.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: A scripted side accepts an offer this close (as a share of the list price) to its own next one.
CLOSE_ENOUGH = 0.03


def _is_last_turn(view: dict[str, Any]) -> bool:
    """True on the game's last turn; never where the turn limit is hidden (v1)."""
    return "turn_limit" in view and view["turn"] >= view["turn_limit"] - 1


def _their_step(view: dict[str, Any]) -> int:
    """How many dollars the other side's last offer moved toward this side (0 if it did not)."""
    theirs = [h["price"] for h in view["history"] if h["seat"] != view["seat"] and h["price"] is not None]
    if len(theirs) < 2:
        return 0
    step = theirs[-1] - theirs[-2]
    return max(0, step if view["seat"] == "seller" else -step)


def _holds(view: dict[str, Any]) -> bool:
    """Where the horizon is hidden (v1): whether the other side's last offer failed to move
    toward this side. A side that conceded anyway would bid against itself, and a player who
    never moves could outwait it; so it holds its last offer until the other side moves."""
    their_offers = [h for h in view["history"] if h["seat"] != view["seat"] and h["price"] is not None]
    return "end_one_in" in view and len(their_offers) >= 2 and _their_step(view) == 0


def _worth_the_risk(view: dict[str, Any], now: float, later: float) -> bool:
    """Where the horizon is hidden (v1) and the talks may end after this turn, with a chance
    of 1 in ``end_one_in``: whether a gain of ``now`` on the table is worth at least the chance
    that the talks go on times the gain ``later`` of one's own next offer (at best)."""
    if "end_one_in" not in view or view["turn"] + 1 < view["min_turns"]:
        return False
    return now >= (1 - 1 / view["end_one_in"]) * later


def conceding_seller(view: dict[str, Any], rng: np.random.Generator, rate: float = 0.4) -> str:
    """Opens at the list price, then each turn concedes ``rate`` of the way from its last
    ask toward the buyer's offer (never below its cost); where the horizon is hidden (v1),
    only after a bid that moved toward it (:func:`_holds`). Accepts an offer within
    ``CLOSE_ENOUGH`` of the list price of its next ask, or, on a game's known last turn (v0),
    any offer it may accept; where the last turn is hidden (v1), an offer worth the risk of
    asking more (:func:`_worth_the_risk`)."""
    cost, theirs, mine = view["cost"], view["their_offer"], view["my_offers"]
    if not mine:
        ask = view["list_price"]
    elif _holds(view):
        ask = mine[-1]
    else:
        target = max(cost, theirs) if theirs is not None else cost
        ask = max(cost, round(mine[-1] - rate * (mine[-1] - target)))
    if theirs is not None and theirs >= cost and (
        theirs >= ask - CLOSE_ENOUGH * view["list_price"] or _is_last_turn(view) or _worth_the_risk(view, theirs - cost, ask - cost)
    ):
        return f"ACCEPT\n${theirs} works for me. It's yours."
    return f"OFFER: {ask}\nI can let it go for ${ask}."


def conceding_buyer(view: dict[str, Any], rng: np.random.Generator, rate: float = 0.4) -> str:
    """Opens at half the list price (within budget), then each turn concedes ``rate`` of the
    way from its last bid toward the seller's ask (never above its budget); where the horizon
    is hidden (v1), only after an ask that moved toward it (:func:`_holds`). Accepts an ask
    within ``CLOSE_ENOUGH`` of the list price of its next bid, or, on a game's known last turn
    (v0), any ask it may accept; where the last turn is hidden (v1), an ask worth the risk of
    bidding less (:func:`_worth_the_risk`)."""
    budget, theirs, mine = view["budget"], view["their_offer"], view["my_offers"]
    if not mine:
        bid = max(1, min(budget, view["list_price"] // 2))
    elif _holds(view):
        bid = mine[-1]
    else:
        target = min(budget, theirs) if theirs is not None else budget
        bid = min(budget, round(mine[-1] + rate * (target - mine[-1])))
    if theirs is not None and theirs <= budget and (
        theirs <= bid + CLOSE_ENOUGH * view["list_price"] or _is_last_turn(view) or _worth_the_risk(view, budget - theirs, budget - bid)
    ):
        return f"ACCEPT\n${theirs} is fine. Deal."
    return f"OFFER: {bid}\nI could pay ${bid}."


def stubborn_seller(view: dict[str, Any], rng: np.random.Generator) -> str:
    """The conceding seller conceding only 0.15 of the gap per turn."""
    return conceding_seller(view, rng, rate=0.15)


def stubborn_buyer(view: dict[str, Any], rng: np.random.Generator) -> str:
    """The conceding buyer conceding only 0.15 of the gap per turn."""
    return conceding_buyer(view, rng, rate=0.15)


def fair_seller(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Splits the difference: the conceding seller conceding half the gap per turn."""
    return conceding_seller(view, rng, rate=0.5)


def fair_buyer(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Splits the difference: the conceding buyer conceding half the gap per turn."""
    return conceding_buyer(view, rng, rate=0.5)


def template_critic(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Advice from a fixed list: about the size of the last concession when it can tell,
    otherwise a seeded random tip."""
    offers = [h["price"] for h in view["history"] if h["seat"] == view["coached"] and h["price"] is not None]
    if len(offers) >= 2 and abs(offers[-1] - offers[-2]) > 0.1 * view["list_price"]:
        return "FEEDBACK: you conceded a lot in one step; concede in smaller steps."
    tips = ("anchor your offers firmly and justify them", "ask what the other side values about the item",
            "point out the item's condition before conceding", "make small, steady concessions")
    return f"FEEDBACK: {tips[int(rng.integers(len(tips)))]}"


# -- the held-out panel ------------------------------------------------------------------------
def slow_seller(view: dict[str, Any], rng: np.random.Generator) -> str:
    """The conceding seller conceding only 0.05 of the gap per turn."""
    return conceding_seller(view, rng, rate=0.05)


def slow_buyer(view: dict[str, Any], rng: np.random.Generator) -> str:
    """The conceding buyer conceding only 0.05 of the gap per turn."""
    return conceding_buyer(view, rng, rate=0.05)


#: The share of the gap a tit-for-tat side concedes first, before it has a step to mirror.
FIRST_STEP = 0.2


def _mirrored_step(view: dict[str, Any], mine: list[int], theirs: int | None) -> int:
    """A tit-for-tat side's next concession in dollars: ``FIRST_STEP`` of the gap at its
    second offer, then as many dollars as the other side's last offer moved toward it."""
    if len(mine) == 1 and theirs is not None:
        return round(FIRST_STEP * abs(mine[-1] - theirs))
    return _their_step(view)


def tit_for_tat_seller(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Opens at the list price, concedes ``FIRST_STEP`` of the gap at its next ask, and then
    exactly as many dollars as the buyer's last bid rose (never below its cost): a buyer who
    stops moving gets no more concessions. Accepts a bid within ``CLOSE_ENOUGH`` of the list
    price of its next ask."""
    cost, theirs, mine = view["cost"], view["their_offer"], view["my_offers"]
    ask = view["list_price"] if not mine else max(cost, mine[-1] - _mirrored_step(view, mine, theirs))
    if theirs is not None and theirs >= cost and theirs >= ask - CLOSE_ENOUGH * view["list_price"]:
        return f"ACCEPT\n${theirs}: you moved, so I accept."
    return f"OFFER: {ask}\nI move as much as you do: ${ask}."


def tit_for_tat_buyer(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Opens at half the list price (within budget), concedes ``FIRST_STEP`` of the gap at its
    next bid, and then raises its bid by exactly as many dollars as the seller's last ask fell
    (never above its budget). Accepts an ask within ``CLOSE_ENOUGH`` of the list price of its
    next bid."""
    budget, theirs, mine = view["budget"], view["their_offer"], view["my_offers"]
    bid = max(1, min(budget, view["list_price"] // 2)) if not mine else min(budget, mine[-1] + _mirrored_step(view, mine, theirs))
    if theirs is not None and theirs <= budget and theirs <= bid + CLOSE_ENOUGH * view["list_price"]:
        return f"ACCEPT\n${theirs}: you moved, so I accept."
    return f"OFFER: {bid}\nI move as much as you do: ${bid}."


CONCEDING = {"seller": conceding_seller, "buyer": conceding_buyer}
STUBBORN = {"seller": stubborn_seller, "buyer": stubborn_buyer}
FAIR = {"seller": fair_seller, "buyer": fair_buyer}
PLAYERS = {"conceding": CONCEDING, "stubborn": STUBBORN, "fair": FAIR}
#: The held-out panel: never used by a recipe for training, only to evaluate against.
PANEL = {
    "panel:slow": {"seller": slow_seller, "buyer": slow_buyer},
    "panel:tit": {"seller": tit_for_tat_seller, "buyer": tit_for_tat_buyer},
}
CRITIC_PLAYERS = {name: {**by_side, "critic": template_critic} for name, by_side in PLAYERS.items()}
