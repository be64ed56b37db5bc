"""Item division (Deal or No Deal): two players divide a pool of books, hats and balls.

- :mod:`.rules`: the rulebook (instances, the arithmetic of splits, moves, prompts, parsers,
  grammars, scoring);
- :mod:`.players`: the scripted fair splitter and greedy conceder.
"""

from __future__ import annotations

from .rules import (
    GUIDED_MESSAGE_CHARS,
    ITEMS,
    LEVELS,
    MAX_MESSAGE_CHARS,
    POOL_VALUE,
    RULES,
    SEATS,
    DivisionInstance,
    DivisionState,
    Negotiate,
    NegotiationGame,
    Said,
    all_splits,
    is_pareto_optimal,
    parse_take,
    render,
    rest_of,
    show,
    valuations,
    value_of,
)

__all__ = [
    "DivisionInstance", "DivisionState", "GUIDED_MESSAGE_CHARS", "ITEMS", "LEVELS", "MAX_MESSAGE_CHARS",
    "Negotiate", "NegotiationGame", "POOL_VALUE", "RULES", "SEATS", "Said", "all_splits",
    "is_pareto_optimal", "parse_take", "register_games", "render", "rest_of", "show", "valuations",
    "value_of",
]


def register_games() -> None:
    from ...registry import register
    from .players import PLAYERS

    register("dialogym/Negotiation-v0", NegotiationGame, players=PLAYERS)
