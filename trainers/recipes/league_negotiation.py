"""CPU recipe: a self-play league on a competitive game, then the final checkpoint against
its own past, the base model and a held-out scripted panel, with the pool's payoff table
and the meta-game's Nash mixture.

The game is ``dialogym/Negotiation-v1`` (hidden horizon, private outside options, ``WALK
AWAY``) on moves alone (``messages=false``) with the **zero-sum view**
(``reward_view=zero_sum``): each seat is rewarded its score minus the other's, so a match is
won by the side that ends with more, and beating a past self means negotiating better than it,
not cooperating with it. Why this game and not the referential one: there the seats share the
reward, every cross-play match ties, and the league had nothing to exploit (docs/league.md);
why v1 and not v0: v0's known last turn makes "propose the whole pool" win outright
(docs/games/negotiation.md).

The learner (the embedded model with a LoRA adapter, guided moves) takes both seats in turn
against opponents drawn by PFSP from its pool (the base ``it-0`` and every past checkpoint),
with GRPO baselines per (seat, opponent). After the league, on held-out test instances the
league never met, every instance played once with the learner in each seat, both greedy and
sampled at ``--eval-temperature`` (default 1, the temperature the league trains and
evaluates at):

1. the final checkpoint against the base (``it-0``): win rate (ties half) with its 95%
   bootstrap interval over instances; target >= 0.65, interval above 0.55;
2. the final checkpoint against the **middle checkpoint** (``it-k``, ``k = ceil(N / 2)`` of
   ``N`` iterations, named before the run): target >= 0.55, interval above 0.50, the one
   that shows the learner beats its own past, not just the base;
3. the final checkpoint's Bradley-Terry rating interval above the first trained one's;
4. the final checkpoint and the base against the held-out panel (``scripted:panel:firm``,
   ``panel:slow``, ``panel:tit``, never trained against), their own score (general view,
   0-10) and agreement rate; target: a score no lower than the base's and agreement >= 0.5;
5. the payoff table of the whole pool with the panel (every pair met in at least
   ``--payoff-episodes`` paired matches), its Nash mixture and each member's
   exploitability; target: most of the checkpoints' Nash weight on their last third.

Why sampled: the greedy base walks away at its first turn in either seat, on every instance
(measured on 20 test instances, against its past selves and the scripted players). Against
a player that always walks away at once, a paired zero-sum evaluation gives **exactly 0.5**
to anyone: the instance's outside options decide both matches, once in each seat, and they
cancel (``tests/trainers/test_league_paired.py``). So no learner can beat the greedy base:
the greedy figures are reported, and the targets are read from the sampled evaluation, where
the base's policy is the distribution it samples from, not its single most likely move.

It writes ``docs/results/league_negotiation.json`` (command, commit, machine, wall time and
every number with its interval), the rating curves and the payoff heat map as PNG files.

    python -m dialogym.trainers.recipes.league_negotiation          # about 30 minutes on 2 cores
    python -m dialogym.trainers.recipes.league_negotiation --model tiny --iterations 2 --episodes 4 --final-episodes 8 --panel-episodes 6 --payoff-episodes 2
"""

from __future__ import annotations

from collections.abc import Sequence

from . import league_zero_sum
from .league_zero_sum import Setup, last_third_weight, middle

GAME = "dialogym/Negotiation-v1"
OPTIONS = ("messages=false", "reward_view=zero_sum")
RECIPE = "league_negotiation"
#: the held-out panel: evaluated against, never trained against
PANEL = ("scripted:panel:firm", "scripted:panel:slow", "scripted:panel:tit")
SETUP = Setup(
    recipe=RECIPE, game=GAME, options=OPTIONS, seats=("alice", "bob"), panel=PANEL,
    # the player's own score (the general view, 0-10) and whether the talk ended in a deal
    panel_metrics={"score": lambda e, seat: e.metrics.get(f"score_{seat}", 0.0),
                   "agreement": lambda e, seat: e.metrics.get("agreed", 0.0)},
    panel_floor=("agreement", 0.5), targets_from="sampled",
    title=f"league on {GAME} (zero-sum view, guided, PFSP)",
    # talks run to the hidden horizon (up to 24 turns) and every turn of a checkpoint pair is a
    # model's: this many live episodes at once keep an evaluation's caches within a few GB
    live=16, defaults={"max_new_tokens": 24},
)

__all__ = ["GAME", "OPTIONS", "PANEL", "RECIPE", "SETUP", "last_third_weight", "main", "middle", "parse"]


def parse(argv: Sequence[str] | None):
    return league_zero_sum.parse(SETUP, argv, __doc__)


def main(argv: list[str] | None = None) -> dict:
    return league_zero_sum.main(SETUP, argv, __doc__)


if __name__ == "__main__":
    main()
