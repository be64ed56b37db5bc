"""Kuhn Poker: the smallest poker with bluffing, played for chips over several hands.

A three-card deck (J < Q < K). Each hand both players ante 1 chip and get one card; the
other card stays hidden. The first to act (it alternates hand by hand, so every seat acts
first equally often over an even number of hands) checks or bets 1 chip:

- check, check: showdown for the pot of 2 (the higher card wins 1 chip net);
- bet, call (or check, bet, call): showdown for the pot of 4 (2 chips net);
- bet, fold (or check, bet, fold): the bettor wins the pot of 3 (1 chip net), unseen.

This is Kuhn's game as game theory studies it (Kuhn 1950; OpenSpiel's ``kuhn_poker``):
bets move chips, so betting a King gains and bluffing a Jack risks. (TextArena's
``KuhnPoker-v0`` adds no bet to the pot, so a bet there costs nothing and wins only a fold:
docs/league.md.) Its equilibria are known: the first player bets a Jack with some
probability alpha in [0, 1/3], a King with 3 alpha, calls a bet with a Queen with alpha + 1/3;
the second player bets a King and a Jack a third of the time after a check, calls with a
King always and a Queen a third of the time. The game's value is -1/18 chip a hand for the
first player, so 0 over hands with alternating first moves: against the ``nash`` scripted
player no strategy wins chips in expectation, which makes it the probe that no trick wins.

Instances: the deal of each hand (16 hands drawn, the first ``hands`` played). The game
option ``hands`` (default 4) sets how many hands an episode plays.

Moves: one of ``[check]``, ``[bet]``, ``[call]``, ``[fold]`` (brackets optional, any case,
the first non-empty line; words after it are ignored), legal where the betting allows.

Reward: each player's chips won (or lost) over ``2 * hands``, the most a player can win:
zero-sum in [-1, 1]; the winner (``win_<seat>``) has more chips, equal chips are a ``draw``.

Rounds: a hand is a round (``round_of``), and each hand's chips over ``2 * hands`` its
reward (``Outcome.round_rewards``, which sum to the reward): a trainer can credit each hand's
moves with that hand's chips alone (``credit="round"``).

Metrics: ``chips_<seat>``, ``bets_<seat>``, ``calls_<seat>``, ``folds_<seat>``, ``hands``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ...core import Game, Instance, InvalidMove, Move, Outcome, excerpt, unify_line_breaks
from ...grammar import alt, grammar

CARDS = ("J", "Q", "K")
SEATS = ("player_0", "player_1")
#: Hands an instance deals; an episode plays the first ``hands`` of them.
MAX_HANDS = 16
DEFAULT_HANDS = 4
ACTIONS = ("check", "bet", "call", "fold")
#: betting so far in a hand (c: check, b: bet, f: fold, k: call) -> the actions open
OPEN = {"": ("check", "bet"), "c": ("check", "bet"), "b": ("call", "fold"), "cb": ("call", "fold")}
CODE = {"check": "c", "bet": "b", "call": "k", "fold": "f"}

RULES = """You are {seat} in a game of Kuhn Poker, {hands} hands against one opponent.
Rules:
- The deck has three cards: J, Q, K (J lowest, K highest). Each hand both players ante 1 chip and get one card; you see only yours.
- The first player to act (it alternates every hand) may [check] or [bet] 1 chip.
- After a check the other player may [check] (showdown: the higher card wins the pot of 2) or [bet] 1 chip.
- Facing a bet, [call] (add 1 chip; showdown for the pot of 4) or [fold] (the bettor wins the pot, your card stays hidden).
- Whoever has won the most chips after {hands} hands wins the game.
Reply with exactly one move, e.g. [check]."""


class KuhnInstance(Instance):
    """The deal of every hand: ``deals[h] = (card of player_0, card of player_1)``, 0 = J, 1 = Q, 2 = K."""

    deals: list[tuple[int, int]]


class Action(Move):
    action: Literal["check", "bet", "call", "fold"]


@dataclass
class KuhnState:
    instance: KuhnInstance
    hands: int
    hand: int = 0
    #: this hand's betting (see :data:`OPEN`)
    betting: str = ""
    #: net chips per seat
    chips: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEATS, 0))
    #: each finished hand's chips per seat
    hand_chips: list[dict[str, int]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    #: per seat, what the game master told it, and how much of that it has already been shown
    log: dict[str, list[str]] = field(default_factory=lambda: {seat: [] for seat in SEATS})
    shown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEATS, 0))


_MOVE_RE = re.compile(r"^\s*\[?\s*(check|bet|call|fold)\s*\]?(?![a-z])", re.IGNORECASE)


def first_to_act(hand: int) -> str:
    return SEATS[hand % 2]


def other(seat: str) -> str:
    return SEATS[1 - SEATS.index(seat)]


class KuhnPokerGame(Game[KuhnInstance, KuhnState]):
    roles = SEATS
    instance_cls = KuhnInstance
    instance_version = "v0"
    max_retries = 2
    max_reply_tokens = 8
    reward_range = (-1.0, 1.0)
    zero_sum = True
    selfplay_description = "100 × the share of replies that were legal moves (one model in every seat)"

    def __init__(self, hands: int = DEFAULT_HANDS) -> None:
        """``hands``: hands an episode plays (1 to 16; an even number lets each seat act
        first equally often)."""
        super().__init__()
        if isinstance(hands, bool) or not isinstance(hands, int) or not 1 <= hands <= MAX_HANDS:
            raise ValueError(f"hands={hands!r}: a whole number from 1 to {MAX_HANDS}")
        self.hands = hands

    def selfplay_score(self, outcome: Outcome) -> float:
        replies = outcome.metrics.get("replies", 0.0)
        return 100.0 * (1.0 - outcome.metrics.get("invalid_replies", 0.0) / replies) if replies else 0.0

    # -- instances ---------------------------------------------------------------------
    def generate_instance(self, rng: np.random.Generator, level: str) -> KuhnInstance:
        deals = [tuple(int(card) for card in rng.permutation(3)[:2]) for _ in range(MAX_HANDS)]
        return KuhnInstance(level=level, deals=deals)

    # -- rules -------------------------------------------------------------------------
    def initial_state(self, instance: KuhnInstance) -> KuhnState:
        state = KuhnState(instance=instance, hands=self.hands)
        self._deal(state)
        return state

    def _card(self, state: KuhnState, seat: str) -> str:
        return CARDS[state.instance.deals[state.hand][SEATS.index(seat)]]

    def _deal(self, state: KuhnState) -> None:
        first = first_to_act(state.hand)
        for seat in SEATS:
            who = "you act first" if seat == first else "opponent acts first"
            state.log[seat].append(f"Hand {state.hand + 1} of {state.hands}, {who}.")

    def to_move(self, state: KuhnState) -> list[str]:
        if state.hand >= state.hands:
            return []
        first = first_to_act(state.hand)
        return [first if len(state.betting) % 2 == 0 else other(first)]

    def legal(self, state: KuhnState) -> tuple[str, ...]:
        return OPEN.get(state.betting, ())

    def prompt(self, state: KuhnState, seat: str) -> str:
        news = state.log[seat][state.shown[seat]:]
        moves = ", ".join(f"[{a}]" for a in self.legal(state))
        pot = 2 + state.betting.count("b") + state.betting.count("k")
        now = f"Your card: {self._card(state, seat)}. Pot: {pot}. Your moves: {moves}."
        head = [RULES.format(seat=seat, hands=state.hands)] if state.shown[seat] == 0 else []
        return "\n\n".join([*head, "\n".join(news), now] if news else [*head, now])

    def parse_move(self, state: KuhnState, seat: str, text: str) -> Action:
        text = unify_line_breaks(text)  # "\r", "\u2028", ... end a line as "\n" does
        line = next((line for line in text.split("\n") if line.strip()), "")
        match = _MOVE_RE.match(line)
        legal = self.legal(state)
        options = " or ".join(f"[{a}]" for a in legal)
        if not match:
            raise InvalidMove(f"the reply must be one move, {options}; got {excerpt(text)}")
        action = match.group(1).lower()
        if action not in legal:
            why = "there is a bet to answer" if state.betting.endswith("b") else "there is no bet to answer"
            raise InvalidMove(f"[{action}] is not open now ({why}); reply {options}")
        return Action(action=action)  # type: ignore[arg-type]

    def move_grammar(self, state: KuhnState, seat: str) -> str | None:
        legal = self.legal(state)
        return grammar(alt(f"[{a}]" for a in legal)) if legal else None

    def apply(self, state: KuhnState, moves: Mapping[str, Move]) -> None:
        (seat, move), = moves.items()
        assert isinstance(move, Action)
        state.shown[seat] = len(state.log[seat])
        key = f"{move.action}s_{seat}"
        state.counts[key] = state.counts.get(key, 0) + 1
        state.betting += CODE[move.action]
        state.log[other(seat)].append(f"Opponent: [{move.action}].")
        if state.betting in ("cc", "bk", "cbk"):
            self._showdown(state)
        elif state.betting in ("bf", "cbf"):
            self._settle(state, other(seat), 1, {seat: "you folded", other(seat): "opponent folded"})

    def _showdown(self, state: KuhnState) -> None:
        cards = {seat: state.instance.deals[state.hand][SEATS.index(seat)] for seat in SEATS}
        winner = max(SEATS, key=lambda s: cards[s])
        stake = 2 if "k" in state.betting else 1
        said = {seat: f"your {CARDS[cards[seat]]} vs opponent's {CARDS[cards[other(seat)]]}, "
                      f"{'you win' if seat == winner else 'opponent wins'}" for seat in SEATS}
        self._settle(state, winner, stake, said)

    def _settle(self, state: KuhnState, winner: str, stake: int, said: dict[str, str]) -> None:
        state.chips[winner] += stake
        state.chips[other(winner)] -= stake
        state.hand_chips.append({winner: stake, other(winner): -stake})
        for seat in SEATS:
            state.log[seat].append(f"Hand {state.hand + 1}: {said[seat]} ({stake if seat == winner else -stake:+d}); "
                                   f"chips: you {state.chips[seat]:+d}, opponent {state.chips[other(seat)]:+d}.")
        state.hand += 1
        state.betting = ""
        if state.hand < state.hands:
            self._deal(state)

    def is_terminal(self, state: KuhnState) -> bool:
        return state.hand >= state.hands

    def round_of(self, state: KuhnState) -> int:
        """A round is a hand: its chips are its reward (credit per hand, ``credit="round"``)."""
        return state.hand

    def score(self, state: KuhnState) -> Outcome:
        most = 2.0 * state.hands
        rewards = {seat: state.chips[seat] / most for seat in SEATS}
        rounds = [{seat: chips[seat] / most for seat in SEATS} for chips in state.hand_chips]
        a, b = (state.chips[seat] for seat in SEATS)
        metrics: dict[str, float] = {"hands": float(state.hand), "draw": float(a == b)}
        for seat in SEATS:
            metrics[f"win_{seat}"] = float(state.chips[seat] > state.chips[other(seat)])
            metrics[f"chips_{seat}"] = float(state.chips[seat])
            for action in ("bet", "call", "fold"):
                metrics[f"{action}s_{seat}"] = float(state.counts.get(f"{action}s_{seat}", 0))
        return Outcome(rewards=rewards, metrics=metrics, round_rewards=rounds)

    def view(self, state: KuhnState, seat: str) -> dict[str, Any]:
        over = self.is_terminal(state)
        return {"card": None if over else self._card(state, seat), "betting": state.betting,
                "first": not over and first_to_act(state.hand) == seat, "hand": state.hand, "hands": state.hands,
                "chips": state.chips[seat],
                "legal_moves": [f"[{a}]" for a in self.legal(state)] if not over and seat in self.to_move(state) else []}

