"""Buyer-seller bargaining over one item's price, with or without a critic who coaches one side.

- :mod:`.rules`: the rulebook (instances, moves, prompts, parsers, grammars, scoring);
- :mod:`.critic`: the critic seat of ``BargainingCritic-v0``;
- :mod:`.hidden_horizon`: ``Bargaining-v1``, whose turn limit is drawn per instance and hidden;
- :mod:`.players`: the scripted conceding, stubborn and fair sides, the held-out panel and the
  template critic.
"""

from __future__ import annotations

from .critic import (
    BargainingWithCriticGame,
    Critique,
)
from .hidden_horizon import HORIZONS, HiddenHorizonBargainingGame, HiddenHorizonBargainInstance
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
    "FORMAT", "GUIDED_MESSAGE_CHARS", "GUIDED_TEXT", "HORIZONS", "HiddenHorizonBargainInstance",
    "HiddenHorizonBargainingGame", "ITEMS", "LEVELS", "MAX_MESSAGE_CHARS", "MAX_PRICE", "RULES", "SIDES", "Said",
    "register_games", "render", "surplus_shares",
]


def register_games() -> None:
    from ...registry import register
    from .players import CRITIC_PLAYERS, PANEL, PLAYERS

    register("dialogym/Bargaining-v0", BargainingGame, players={**PLAYERS, **PANEL})
    register("dialogym/Bargaining-v1", HiddenHorizonBargainingGame, players={**PLAYERS, **PANEL})
    register("dialogym/BargainingCritic-v0", BargainingWithCriticGame, players=CRITIC_PLAYERS)
