"""Buyer-seller bargaining over one item's price, with or without a critic who coaches one side.

- :mod:`.rules`: the rulebook (instances, moves, prompts, parsers, grammars, scoring);
- :mod:`.critic`: the critic seat of ``BargainingCritic-v0``;
- :mod:`.players`: the scripted conceding, stubborn and fair sides and the template critic.
"""

from __future__ import annotations

from .critic import (
    BargainingWithCriticGame,
    Critique,
)
from .rules import (
    FORMAT,
    GUIDED_MESSAGE_CHARS,
    GUIDED_TEXT,
    ITEMS,
    LEVELS,
    MAX_MESSAGE_CHARS,
    MAX_PRICE,
    RULES,
    SIDES,
    Bargain,
    BargainingGame,
    BargainInstance,
    BargainState,
    Said,
    render,
    surplus_shares,
)

__all__ = [
    "Bargain", "BargainInstance", "BargainState", "BargainingGame", "BargainingWithCriticGame", "Critique",
    "FORMAT", "GUIDED_MESSAGE_CHARS", "GUIDED_TEXT", "ITEMS", "LEVELS", "MAX_MESSAGE_CHARS", "MAX_PRICE",
    "RULES", "SIDES", "Said", "register_games", "render", "surplus_shares",
]


def register_games() -> None:
    from ...registry import register
    from .players import CRITIC_PLAYERS, PLAYERS

    register("dialogym/Bargaining-v0", BargainingGame, players=PLAYERS)
    register("dialogym/BargainingCritic-v0", BargainingWithCriticGame, players=CRITIC_PLAYERS)
