"""A horizon no player can count down to, shared by the negotiation games' ``-v1`` versions.

With a known turn limit the last mover holds an ultimatum: the other side must accept
anything at least as good as no deal (docs/games/negotiation.md, "The last-mover
ultimatum"). Here the talks last at least ``min_turns`` turns (both sides' together); after
each later turn they end with a chance of one in ``end_one_in``. The chance is the same after
every such turn, so the turns already played say nothing about the turns left, and no turn
is known to be the last. The instance draws the real turn limit from this law (a geometric
number of turns after ``min_turns``, at most ``max_turns`` so every episode is bounded) and
keeps it hidden: prompts and ``view()`` show only ``min_turns`` and ``end_one_in``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import model_validator

from ...core import Instance


@dataclass(frozen=True)
class Horizon:
    """The law of a level's hidden turn limit."""

    #: turns (both sides' together) the talks last for sure
    min_turns: int
    #: after each turn from ``min_turns`` on, the talks end with a chance of 1 in this
    end_one_in: int
    #: the turn limit is never above this (reached in about (1 - 1/end_one_in)^(max_turns - min_turns) of games)
    max_turns: int

    def draw(self, rng: np.random.Generator) -> int:
        """The real turn limit: ``min_turns`` plus a geometric number of further turns, capped."""
        return min(self.max_turns, self.min_turns + int(rng.geometric(1 / self.end_one_in)) - 1)


class HiddenHorizonInstance(Instance):
    """The fields of an instance whose turn limit is hidden from the players."""

    #: the real turn limit, drawn by :meth:`Horizon.draw`; never shown to a player
    turn_limit: int
    min_turns: int
    end_one_in: int

    @model_validator(mode="after")
    def _check_horizon(self) -> HiddenHorizonInstance:
        if not 1 <= self.min_turns <= self.turn_limit:
            raise ValueError(f"min_turns must be from 1 to turn_limit ({self.turn_limit}), got {self.min_turns}")
        if self.end_one_in < 2:
            raise ValueError(f"end_one_in must be at least 2 (1 would make min_turns a known last turn), got {self.end_one_in}")
        return self


def expected_turns(min_turns: int, end_one_in: int) -> int:
    """The mean turn limit (ignoring the cap): ``min_turns`` and then ``end_one_in - 1`` more."""
    return min_turns + end_one_in - 1


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def horizon_rule(min_turns: int, end_one_in: int) -> str:
    """The sentence of the rules that says how the talks end (never when)."""
    return (
        f"The talks last at least {min_turns} turns in all (yours and the other side's); after each turn "
        f"from the {ordinal(min_turns)} on they end with a chance of 1 in {end_one_in}, without warning."
    )


def turn_line(turn: int, min_turns: int) -> str:
    """The last line of a prompt: the turn number, and whether the talks may end after it."""
    may_end = " The talks may end after this turn." if turn + 1 >= min_turns else ""
    return f"Turn {turn + 1}.{may_end} Your reply:"


def horizon_view(instance: HiddenHorizonInstance) -> dict[str, Any]:
    """What a player may know of the horizon: its law, not the real limit."""
    return {"min_turns": instance.min_turns, "end_one_in": instance.end_one_in}
