"""``dialogym/Bargaining-v1``: bargaining over talks that may end after any turn, unannounced.

``Bargaining-v0`` states its turn limit, and the buyer always has the last turn. A buyer who
bids $1 until that turn and then accepts the seller's standing ask takes most of the surplus
from every scripted seller, which concede toward their cost however low the bids are
(docs/games/negotiation.md, the probe table). Version 1 keeps v0's items, prices and limits
(the private cost and budget already are the sides' outside options: a deal at one's own
limit is worth what no deal is, 0) and its moves, ``WALK AWAY`` included, and hides the
horizon as ``Negotiation-v1`` does (:mod:`dialogym.envs.games.negotiation.horizon`): the
talks last at least ``min_turns`` turns, then end after each turn with a chance of one in
``end_one_in``, so nobody knows which turn is the last.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..negotiation.horizon import HiddenHorizonInstance, Horizon, horizon_rule, horizon_view, turn_line
from .rules import LEVELS, MOVES, BargainingGame, BargainInstance, BargainState

#: level -> the law of the hidden turn limit, the same on both levels (``hard`` is hard by its
#: narrow zone of agreement): at least 6 turns, three offers from each side, which is about
#: what the scripted sides need to close; then 1 in 6 after each turn, about 11 turns on average
#: (v0: 10 on ``easy``, 8 on ``hard``); capped at 26, which under 3% of games reach.
HORIZONS: dict[str, Horizon] = {level: Horizon(6, 6, 26) for level in LEVELS}

FORMAT_V1 = "The seller and the buyer take turns. {horizon} Without a deal, neither of you gains anything.\n" + MOVES


class HiddenHorizonBargainInstance(BargainInstance, HiddenHorizonInstance):
    """A bargaining instance whose turn limit the sides never see."""


class HiddenHorizonBargainingGame(BargainingGame):
    """Bargaining whose real turn limit is drawn per instance and hidden."""

    instance_cls = HiddenHorizonBargainInstance
    instance_version = "v1"
    levels = tuple(HORIZONS)

    def generate_instance(self, rng: np.random.Generator, level: str) -> HiddenHorizonBargainInstance:
        base = super().generate_instance(rng, level)  # v0's item, prices and limits; its turn limit is replaced
        horizon = HORIZONS[level]
        return HiddenHorizonBargainInstance(
            **base.model_dump(exclude={"turn_limit"}), turn_limit=horizon.draw(rng),
            min_turns=horizon.min_turns, end_one_in=horizon.end_one_in,
        )

    def format_text(self, inst: BargainInstance, seat: str) -> str:
        assert isinstance(inst, HiddenHorizonBargainInstance)
        return FORMAT_V1.format(horizon=horizon_rule(inst.min_turns, inst.end_one_in), **self.format_fields(inst, seat))

    def turn_line(self, state: BargainState) -> str:
        return turn_line(state.turn, state.instance.min_turns)  # type: ignore[attr-defined]

    def view(self, state: BargainState, seat: str) -> dict[str, Any]:
        """v0's view without the real turn limit, plus the horizon's law."""
        view = super().view(state, seat)
        del view["turn_limit"]
        view.update(horizon_view(state.instance))  # type: ignore[arg-type]
        return view
