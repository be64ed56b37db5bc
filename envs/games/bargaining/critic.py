"""``dialogym/BargainingCritic-v0``: bargaining with a critic seat that coaches one side
between rounds. Its rules are written up with the bargaining's own, in :mod:`.rules`; here
are the critic's move, how its reply is read and shown, and its reward.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...core import InvalidMove, Move, Outcome, quote, unify_line_breaks
from ...grammar import grammar
from .rules import GUIDED_TEXT, MAX_MESSAGE_CHARS, SIDES, BargainingGame, BargainState, render

_FEEDBACK_RE = re.compile(r"^\s*FEEDBACK\s*:\s*(.*)$", re.IGNORECASE | re.DOTALL)


class Critique(Move):
    advice: str


class BargainingWithCriticGame(BargainingGame):
    """Bargaining with a critic seat that coaches one side between rounds (Fu et al. 2023).

    The seat set is fixed per class (``roles`` is a class variable that the adapters read),
    hence a subclass rather than a ``critic=True`` option.
    """

    roles = (*SIDES, "critic")

    def __init__(self, coached: str = "seller", reward_view: str = "general") -> None:
        if coached not in SIDES:
            raise TypeError(f"coached must be one of {list(SIDES)}, got {coached!r}")
        super().__init__(reward_view=reward_view)
        self.coached = coached

    def coached_feedback(self, state: BargainState, seat: str) -> str | None:
        return state.feedback if seat == self.coached else None

    def prompt(self, state: BargainState, seat: str) -> str:
        if seat != "critic":
            return super().prompt(state, seat)
        inst = state.instance
        parts = []
        if len(state.log) <= 2:  # the critic's first turn
            parts.append(
                f"You coach the {self.coached.upper()} in a negotiation over {inst.item} (list price ${inst.list_price}). "
                f"You cannot see either side's private limit. After each round, give the {self.coached} one short "
                f"piece of advice to get a better deal. The {self.other(self.coached)} never sees your advice."
            )
        parts.append("This round:\n" + "\n".join(f"{s.seat}:\n{quote(render(s))}" for s in state.log[-2:]))
        parts.append('Reply with one line: FEEDBACK: <advice>, e.g. "FEEDBACK: concede in smaller steps"')
        return "\n\n".join(parts)

    def parse_move(self, state: BargainState, seat: str, text: str) -> Move:
        if seat != "critic":
            return super().parse_move(state, seat, text)
        match = _FEEDBACK_RE.match(unify_line_breaks(text).strip())
        if not match or not match.group(1).strip():
            raise InvalidMove('bargaining: the critic replies with one line "FEEDBACK: <advice>", e.g. "FEEDBACK: concede in smaller steps"')
        return Critique(advice=match.group(1).strip()[:MAX_MESSAGE_CHARS])

    def move_grammar(self, state: BargainState, seat: str) -> str:
        """The sides' grammar; the critic writes one line ``FEEDBACK: <advice>``."""
        if seat != "critic":
            return super().move_grammar(state, seat)
        return grammar(f'"FEEDBACK: " {GUIDED_TEXT}')

    def apply(self, state: BargainState, moves: Mapping[str, Move]) -> None:
        if "critic" in moves:
            move = moves["critic"]
            assert isinstance(move, Critique)
            state.feedback, state.critic_due = move.advice, False
            return
        (seat,) = moves
        if seat == self.coached:
            state.feedback = None  # read at this turn's prompt
        super().apply(state, moves)
        state.critic_due = seat == "buyer" and not self.is_terminal(state)

    def score(self, state: BargainState) -> Outcome:
        outcome = super().score(state)
        outcome.rewards["critic"] = outcome.rewards[self.coached]
        return outcome

    def view(self, state: BargainState, seat: str) -> dict[str, Any]:
        view = super().view(state, seat)
        if seat == "critic":
            view["coached"] = self.coached
        else:
            view["feedback"] = self.coached_feedback(state, seat)
        return view
