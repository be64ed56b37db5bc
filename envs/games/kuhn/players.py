"""Scripted players of Kuhn Poker (:mod:`dialogym.envs.games.kuhn`).

- ``nash``: a Nash equilibrium of the game (Kuhn's family with alpha = 1/6): nobody wins
  chips from it in expectation, the probe that no trick wins;
- ``simple``: bets or calls a King, checks and folds a Jack, checks a Queen and calls with it;
- ``aggressive``: bets and calls whatever it holds;
- ``passive``: checks and calls whatever it holds (a calling station);
- ``random``: any open move.

Each policy is ``(view, rng) -> reply``: it reads only the seat's ``view()`` dict and draws
any randomness from ``rng`` (see :mod:`dialogym.envs.games`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .rules import SEATS

#: the first player's bluffing rate in the ``nash`` player (any value in [0, 1/3] is an equilibrium)
ALPHA = 1 / 6


def _pick(view: dict[str, Any], *preferred: str) -> str:
    moves = view.get("legal_moves") or []
    return next((f"[{a}]" for a in preferred if f"[{a}]" in moves), moves[0] if moves else "[check]")


def _chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def nash(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Kuhn's equilibrium: as the first to act, bet J with alpha, K with 3 alpha, else check;
    facing a bet after checking, call with K, with Q at alpha + 1/3, fold J. As the second:
    facing a bet call K, call Q a third of the time, fold J; after a check bet K and bet J a
    third of the time, check Q."""
    card, betting = view.get("card"), view.get("betting", "")
    if betting == "":  # first to act
        bet = {"J": ALPHA, "Q": 0.0, "K": 3 * ALPHA}[card]
        return _pick(view, "bet") if _chance(rng, bet) else _pick(view, "check")
    if betting == "cb":  # first player, facing a bet after checking
        call = {"J": 0.0, "Q": ALPHA + 1 / 3, "K": 1.0}[card]
        return _pick(view, "call") if _chance(rng, call) else _pick(view, "fold")
    if betting == "b":  # second player, facing a bet
        call = {"J": 0.0, "Q": 1 / 3, "K": 1.0}[card]
        return _pick(view, "call") if _chance(rng, call) else _pick(view, "fold")
    bet = {"J": 1 / 3, "Q": 0.0, "K": 1.0}[card]  # second player after a check
    return _pick(view, "bet") if _chance(rng, bet) else _pick(view, "check")


def simple(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Bet or call a King; check, then fold, a Jack; check a Queen and call a bet with it."""
    card = view.get("card")
    if card == "K":
        return _pick(view, "bet", "call")
    if card == "J":
        return _pick(view, "check", "fold")
    return _pick(view, "check", "call")


def aggressive(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Bet and call whatever it holds."""
    return _pick(view, "bet", "call")


def passive(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Check and call whatever it holds."""
    return _pick(view, "check", "call")


def random_move(view: dict[str, Any], rng: np.random.Generator) -> str:
    """Any open move, uniformly."""
    moves = view.get("legal_moves") or ["[check]"]
    return str(moves[int(rng.integers(len(moves)))])


PLAYERS = {name: dict.fromkeys(SEATS, policy) for name, policy in
           (("nash", nash), ("simple", simple), ("aggressive", aggressive), ("passive", passive), ("random", random_move))}
