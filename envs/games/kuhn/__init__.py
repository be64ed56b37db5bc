"""Kuhn Poker: three cards, one bet, bluffing; a zero-sum game with a known equilibrium.

- :mod:`.rules`: the rulebook (instances, moves, prompts, parser, grammar, chip scoring);
- :mod:`.players`: the scripted players (``nash``, ``simple``, ``aggressive``, ``passive``, ``random``).
"""

from __future__ import annotations

from .rules import (
    ACTIONS,
    CARDS,
    DEFAULT_HANDS,
    MAX_HANDS,
    SEATS,
    Action,
    KuhnInstance,
    KuhnPokerGame,
    KuhnState,
)

__all__ = ["ACTIONS", "CARDS", "DEFAULT_HANDS", "MAX_HANDS", "SEATS", "Action", "KuhnInstance", "KuhnPokerGame",
           "KuhnState", "register_games"]


def register_games() -> None:
    from ...registry import register
    from .players import PLAYERS

    register("dialogym/KuhnPoker-v0", KuhnPokerGame, players=PLAYERS)
