"""Scripted players of price bargaining (:mod:`dialogym.envs.games.bargaining`).

A conceding side opens at the list price (seller) or half of it (buyer) and closes a share
``rate`` of the gap to the other side's last offer each turn: ``conceding`` (0.4),
``stubborn`` (0.15) and ``fair`` (0.5, splitting the difference); ``template_critic``
gives the critic seat's advice from a fixed list. ``PLAYERS`` is what Bargaining-v0
registers, ``CRITIC_PLAYERS`` (the same sides and the critic) what BargainingCritic-v0 does.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: A scripted side accepts an offer this close (as a share of the list price) to its own next one.
CLOSE_ENOUGH = 0.03


def _is_last_turn(view: dict[str, Any]) -> bool:
    return view["turn"] >= view["turn_limit"] - 1


def conceding_seller(view: dict[str, Any], rng: np.random.Generator, rate: float = 0.4) -> str:
    """Opens at the list price, then each turn concedes ``rate`` of the way from its last
    ask toward the buyer's offer (never below its cost). Accepts an offer within
    ``CLOSE_ENOUGH`` of the list price of its next ask, or, on the last turn, any offer it
    may accept."""
    cost, theirs, mine = view["cost"], view["their_offer"], view["my_offers"]
    if not mine:
        ask = view["list_price"]
    else:
        target = max(cost, theirs) if theirs is not None else cost
        ask = max(cost, round(mine[-1] - rate * (mine[-1] - target)))
    if theirs is not None and theirs >= cost and (theirs >= ask - CLOSE_ENOUGH * view["list_price"] or _is_last_turn(view)):
        return f"ACCEPT\n${theirs} works for me. It's yours."
    return f"OFFER: {ask}\nI can let it go for ${ask}."


def conceding_buyer(view: dict[str, Any], rng: np.random.Generator, rate: float = 0.4) -> str:
    """Opens at half the list price (within budget), then each turn concedes ``rate`` of the
    way from its last bid toward the seller's ask (never above its budget). Accepts an ask
    within ``CLOSE_ENOUGH`` of the list price of its next bid, or, on the last turn, any ask
    it may accept."""
    budget, theirs, mine = view["budget"], view["their_offer"], view["my_offers"]
    if not mine:
        bid = max(1, min(budget, view["list_price"] // 2))
    else:
        target = min(budget, theirs) if theirs is not None else budget
        bid = min(budget, round(mine[-1] + rate * (target - mine[-1])))
    if theirs is not None and theirs <= budget and (theirs <= bid + CLOSE_ENOUGH * view["list_price"] or _is_last_turn(view)):
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


CONCEDING = {"seller": conceding_seller, "buyer": conceding_buyer}
STUBBORN = {"seller": stubborn_seller, "buyer": stubborn_buyer}
FAIR = {"seller": fair_seller, "buyer": fair_buyer}
PLAYERS = {"conceding": CONCEDING, "stubborn": STUBBORN, "fair": FAIR}
CRITIC_PLAYERS = {name: {**by_side, "critic": template_critic} for name, by_side in PLAYERS.items()}
