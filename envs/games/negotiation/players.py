"""Scripted players of item division (:mod:`dialogym.envs.games.negotiation`).

``fair_splitter`` asks for half the pool by its own values and accepts half or more;
``greedy_conceder`` asks for everything it values and lowers its aspiration from 10 to 6
over its turns. ``PLAYERS`` registers each for both seats (``scripted:fair``,
``scripted:greedy``), the baselines of the game's benchmark table.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and
draws any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .rules import ITEMS, POOL_VALUE, SEATS, all_splits, show, value_of


def _propose(take: Mapping[str, int], message: str) -> str:
    return f"PROPOSE: {show(take)}\n{message}"


def _is_last_turn(view: dict[str, Any]) -> bool:
    return view["turn"] >= view["turn_limit"] - 1


def fair_splitter(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Proposes a share worth half the pool by its own values (as near as the pool allows),
    choosing among those the split most even in item counts, and a different such split on
    each new proposal. Accepts any proposal worth at least half the pool to it, and, on the
    game's last turn, any proposal at least as good as no deal."""
    counts, values, offer = view["counts"], view["values"], view["offer_to_me"]
    half = POOL_VALUE / 2
    if offer is not None:
        worth = value_of(values, offer)
        if worth >= half or (_is_last_turn(view) and worth >= view["no_deal_reward"]):
            return "ACCEPT\nThat is fair enough for me."
    splits = all_splits(counts)
    nearest = min(abs(value_of(values, s) - half) for s in splits)
    fair = [s for s in splits if abs(value_of(values, s) - half) == nearest]
    fair.sort(key=lambda s: (sum(abs(2 * s[i] - counts[i]) for i in ITEMS), -value_of(values, s), show(s)))
    take = fair[view["my_proposals"] % len(fair)]
    return _propose(take, "Let's split this evenly.")


def greedy_conceder(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Asks for everything it values, then lowers its aspiration in equal steps from 10 to
    6 over its turns. It proposes the cheapest share (to the other side) that still meets
    the aspiration, preferring to give away what the other side asked for; it accepts an
    offer that meets the aspiration, and on the game's last turn anything at least as good
    as no deal."""
    counts, values, offer = view["counts"], view["values"], view["offer_to_me"]
    my_turn = view["turn"] // 2
    my_turns = (view["turn_limit"] + 1 - view["turn"] % 2) // 2
    aspiration = POOL_VALUE - (POOL_VALUE - 6) * my_turn / max(1, my_turns - 1)
    if offer is not None:
        worth = value_of(values, offer)
        if worth >= aspiration or (_is_last_turn(view) and worth >= view["no_deal_reward"]):
            return "ACCEPT\nDeal."
    # Items the other side asked for are likely worth something to it: give those first.
    asked = {item: 0 for item in ITEMS}
    for said in view["history"]:
        if said["seat"] != view["seat"] and said["take"]:
            for item in ITEMS:
                asked[item] += said["take"][item]
    candidates = [s for s in all_splits(counts) if value_of(values, s) >= aspiration]
    take = min(
        candidates,
        key=lambda s: (value_of(values, s), -sum(asked[i] * (counts[i] - s[i]) for i in ITEMS), sum(s.values()), show(s)),
    )
    return _propose(take, "This is what I need.")


PLAYERS = {
    "greedy": {seat: greedy_conceder for seat in SEATS},
    "fair": {seat: fair_splitter for seat in SEATS},
}
