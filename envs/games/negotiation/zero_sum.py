"""The zero-sum view of the two-sided negotiation games, for self-play and leagues.

Item division and bargaining are general-sum: both sides can gain from a deal, so "did I
beat the other side?" is not what their rewards say, and self-play on them teaches
cooperation, not winning. The game option ``reward_view="zero_sum"`` rewards each side its
**margin**: its score minus the other side's (the scores are the general-sum rewards, kept
in the ``score_<seat>`` metrics). :func:`win_score` reads the same margin as a league's
result: 1 for a win, 0.5 for a tie, 0 for a loss. Training under the zero-sum view and a
league that counts wins with :func:`win_score` therefore agree on what winning is.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...core import Outcome

#: ``general``: each side's own score (the default); ``zero_sum``: its margin over the other side.
REWARD_VIEWS = ("general", "zero_sum")


def check_reward_view(reward_view: str) -> str:
    if reward_view not in REWARD_VIEWS:
        raise ValueError(f"reward_view must be one of {list(REWARD_VIEWS)}, got {reward_view!r}")
    return reward_view


def margin(outcome: Outcome, seat: str) -> float:
    """``seat``'s score minus the other side's, read from the ``score_<seat>`` metrics (the
    general-sum scores, whichever reward view the episode was played under)."""
    scores = {key.removeprefix("score_"): value for key, value in outcome.metrics.items() if key.startswith("score_")}
    if seat not in scores or len(scores) != 2:
        raise ValueError(f"margin needs the scores of {seat!r} and one other side, got metrics {sorted(outcome.metrics)}")
    (other,) = set(scores) - {seat}
    return float(scores[seat] - scores[other])


def win_score(outcome: Outcome, seat: str) -> float:
    """1 when ``seat`` scored more than the other side, 0.5 on a tie, 0 when it scored less."""
    m = margin(outcome, seat)
    return 1.0 if m > 0 else 0.5 if m == 0 else 0.0


def in_reward_view(outcome: Outcome, reward_view: str, seats: Iterable[str]) -> Outcome:
    """``outcome`` with the rewards of ``seats`` replaced by their margins under the zero-sum
    view; unchanged under the general one."""
    if reward_view == "zero_sum":
        outcome.rewards.update({seat: margin(outcome, seat) for seat in seats})
    return outcome
