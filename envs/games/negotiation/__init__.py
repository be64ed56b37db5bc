"""Item division (Deal or No Deal): two players divide a pool of books, hats and balls.

- :mod:`.rules`: the rulebook (instances, the arithmetic of splits, moves, prompts, parsers,
  grammars, scoring);
- :mod:`.outside_options`: ``Negotiation-v1``, with private outside options, ``WALK AWAY`` and
  a hidden horizon (:mod:`.horizon`, shared with ``Bargaining-v1``);
- :mod:`.zero_sum`: the zero-sum view (``reward_view="zero_sum"``) and ``win_score``;
- :mod:`.players`: the scripted fair splitter and greedy conceder, and the held-out panel.
"""

from __future__ import annotations

from .horizon import HiddenHorizonInstance, Horizon, expected_turns, horizon_rule, horizon_view, turn_line
from .outside_options import (
    HORIZONS,
    OUTSIDE_OPTIONS,
    NegotiateOrWalk,
    OutsideOptionInstance,
    OutsideOptionNegotiationGame,
    OutsideOptionState,
    zone_exists,
)
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
from .zero_sum import REWARD_VIEWS, margin, win_score

__all__ = [
    "DivisionInstance", "DivisionState", "GUIDED_MESSAGE_CHARS", "HORIZONS", "HiddenHorizonInstance", "Horizon",
    "ITEMS", "LEVELS", "MAX_MESSAGE_CHARS", "Negotiate", "NegotiateOrWalk", "NegotiationGame", "OUTSIDE_OPTIONS",
    "OutsideOptionInstance", "OutsideOptionNegotiationGame", "OutsideOptionState", "POOL_VALUE", "REWARD_VIEWS",
    "RULES", "SEATS", "Said", "all_splits", "expected_turns", "horizon_rule", "horizon_view", "is_pareto_optimal",
    "margin", "parse_take", "register_games", "render", "rest_of", "show", "turn_line", "valuations", "value_of",
    "win_score", "zone_exists",
]


def register_games() -> None:
    from ...registry import register
    from .players import PANEL, PLAYERS

    # The panel plays both versions, so a recipe on either can be judged against it.
    register("dialogym/Negotiation-v0", NegotiationGame, players={**PLAYERS, **PANEL})
    register("dialogym/Negotiation-v1", OutsideOptionNegotiationGame, players={**PLAYERS, **PANEL})
