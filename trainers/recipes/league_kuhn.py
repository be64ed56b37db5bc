"""CPU recipe: a self-play league on Kuhn Poker, then the final checkpoint against its own
past, the base model and a held-out scripted panel that holds the game's Nash equilibrium,
with the pool's payoff table and the meta-game's Nash mixture.

The game is ``dialogym/KuhnPoker-v0`` (docs/games/kuhn_poker.md): two hands of the
three-card poker game theory studies, bets that move chips, the first move alternating by
hand, each seat rewarded its chips won over the most it could win (zero-sum). Why this game
for a league: it is zero-sum with no move that forces a tie (the negotiation league's greedy
base walked away at once, and against that every player scores exactly 0.5 in a paired
evaluation: docs/league.md), its best replies are known (so what the learner found can be
read off its moves), and its equilibrium is a scripted player that no trick beats: a learner
that wins chips from the ``nash`` panel member has found a bug, not a strategy.

What the base plays (SmolLM2-135M-Instruct, guided moves, measured at T=1 on 32 hands
against a random player): it checks about 88% of the time and calls a bet about 75% of
the time, whatever its card, so greedy it always checks and always calls. The best reply to
that bets a King and checks otherwise; it wins 2/3 of the paired 2-hand matches (computed
over every deal; 2/3 of 4-hand ones too), so target 1 (0.65) asks for nearly the whole best
reply, in both hands.

The learner (the embedded model with a LoRA adapter, guided moves) takes both seats in turn
against opponents drawn a quarter of the time from the base ``it-0`` and three quarters by
PFSP from its pool (the base and every past checkpoint; ``--sampler 0.25*base+0.75*pfsp``: a
best reply to the newest checkpoints cannot forget how to beat the base, and the checkpoints
that bet a King teach it to fold a Jack or a Queen to a bet, which the base, never betting,
cannot: half the base left the checkpoint calling everything, as its middle one did, and
tying it), for 16 iterations of 64 training
episodes of the same two hands as the evaluations, **each hand credited with its own chips**
(``--credit round``: a hand is a sample with its own reward and baseline, in the context of
the hands before it; a checkpoint trained on one-hand episodes played the best reply in
the first hand of a match and bet every card from the second on), with GRPO's
own groups (``--baseline group --group-size 16``: each training deal played 16 times in one
seating, one baseline per group, so the deal's luck cancels), every deal in both seatings
(``--paired-training``), the pool's checkpoints greedy in training (``--opponent-temperature
0``) and the learner sampling at T=5 (``--temperature 5``), 2 epochs, lr 2e-3 (twice the
one-hand runs' 1e-3: the loss is normalised by the step's tokens, and two hands a match
halve each hand's share), no KL to the base (``--beta 0.1`` kept one seed's moves from
hardening to 0 and 1 and slowed the other's learning: docs/training.md). At the end it
reads every checkpoint's exact move probabilities off the model (``policy``: P(bet) and
P(call) with each card in each spot of a first hand).
Every evaluation plays the full 2-hand match. Every evaluation is greedy by default (``--eval-temperature 0``; given a
temperature, the final evaluation is also played sampled and reported beside the greedy one),
and the targets are read from the greedy evaluation on held-out test instances (each played
once with the learner in each seat), as issue 28 asks. The panel: ``nash`` (the equilibrium), ``simple`` (bet
a King, fold a Jack) and ``aggressive`` (bet and call everything), never trained against;
its metrics: chips won a hand and the win rate (ties half), per panel member too.

It writes ``docs/results/league_kuhn.json`` (command, commit, machine, wall time and every
number with its interval) and the rating curves with the payoff heat map as a PNG file.

    python -m dialogym.trainers.recipes.league_kuhn          # on 2 cores: docs/training.md gives the measured time
    python -m dialogym.trainers.recipes.league_kuhn --model tiny --iterations 2 --episodes 4 --final-episodes 8 --panel-episodes 6 --payoff-episodes 2
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dialogym.agents.base import Request, Sampling
from dialogym.agents.guidance import literal_moves
from dialogym.envs import Episode, new_match
from dialogym.envs.games.kuhn import CARDS

from . import league_zero_sum
from .league_zero_sum import Setup

GAME = "dialogym/KuhnPoker-v0"
HANDS = 2
OPTIONS = (f"hands={HANDS}",)
RECIPE = "league_kuhn"
PANEL = ("scripted:nash", "scripted:simple", "scripted:aggressive")


def chips_a_hand(episode: Episode, seat: str) -> float:
    return episode.metrics.get(f"chips_{seat}", 0.0) / HANDS


def won(episode: Episode, seat: str) -> float:
    """1 for a win, 0.5 for a tie (equal chips), 0 for a loss."""
    return episode.metrics.get(f"win_{seat}", 0.0) + 0.5 * episode.metrics.get("draw", 0.0)


def play_summary(episodes: Sequence[Episode], player: str) -> dict[str, dict[str, float | None]]:
    """How ``player`` played with each card: ``bet``, the share of its turns with ``[bet]``
    open that it bet; ``call``, the share of its turns facing a bet that it called (None
    where it never had the choice), with the counts. The best reply to a calling station bets
    a King and checks otherwise; the equilibrium bluffs a Jack now and then."""
    seen = {card: {"bet": 0, "open": 0, "call": 0, "facing": 0} for card in CARDS}
    for episode in episodes:
        seat = next(s for s, who in episode.seats.items() if who == player)
        for turn in episode.turns:
            if turn.seat != seat or turn.error is not None:
                continue
            text = turn.messages[-1]["content"]
            card, action = re.search(r"Your card: ([JQK])\.", text), re.match(r"\s*\[?(\w+)", turn.raw.lower())
            if card is None or action is None:
                continue
            row = seen[card.group(1)]
            if "[bet]" in text.rsplit("Your moves:", 1)[-1]:
                row["open"] += 1
                row["bet"] += action.group(1) == "bet"
            else:
                row["facing"] += 1
                row["call"] += action.group(1) == "call"
    return {card: {"bet": row["bet"] / row["open"] if row["open"] else None, "open": row["open"],
                   "call": row["call"] / row["facing"] if row["facing"] else None, "facing": row["facing"]}
            for card, row in seen.items()}


#: the spots of a hand a policy table reads, by the moves before the player's turn (the player
#: acts first in "open" and "check_then_facing_bet"), and the move whose probability it gives
SPOTS = {"open": ((), "[bet]"), "after_check": (("[check]",), "[bet]"), "facing_bet": (("[bet]",), "[call]"),
         "check_then_facing_bet": (("[check]", "[bet]"), "[call]")}


def spot_chats(game_options: Mapping[str, Any], seeds: int = 200) -> dict[tuple[str, str], tuple[list, str]]:
    """``(spot, card) -> (the chat of the player to act in the first hand, its move grammar)``,
    from the first test deals that give the player each card in each spot."""
    found: dict[tuple[str, str], tuple[list, str]] = {}
    for seed in range(seeds):
        for spot, (before, _) in SPOTS.items():
            match = new_match(GAME, seed, split="test", **game_options)
            for move in before:
                match.submit(match.to_act()[0], move)
            seat = match.to_act()[0]
            found.setdefault((spot, match.view(seat)["card"]), (match.messages(seat), match.move_grammar(seat) or ""))
        if len(found) == len(SPOTS) * len(CARDS):
            return found
    raise RuntimeError(f"{GAME}: not every card in every spot in {seeds} deals")


def policy(agent: Any, game_options: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """How ``agent`` (a transformers agent, or an adapter of one) plays the first hand, read
    exactly off the model rather than sampled: for each spot, the probability that it bets
    (or, facing a bet, calls) with each card when it plays guided at temperature 1, between
    the spot's two open moves, in the precision it plays in (a league's checkpoints: bf16
    where the learner samples in bf16). One greedy guided reply per spot and card, all in one
    batch: the chosen move's recorded log-prob (under the move mask, temperature 1; the end of
    sequence after it left out, a choice between end tokens where a tokenizer has several)
    gives its probability, the other move the rest. Greedy play bets (calls) where it is above 0.5."""
    spots = sorted(spot_chats(game_options).items())
    sampling = Sampling(temperature=0.0, max_new_tokens=16, guided=True)
    replies = agent.act([Request(messages=chat, grammar=grammar, sampling=sampling) for _, (chat, grammar) in spots])
    table: dict[str, dict[str, float]] = {spot: {} for spot in SPOTS}
    for ((spot, card), (_, grammar)), reply in zip(spots, replies, strict=True):
        moves = literal_moves(grammar) or []
        if len(moves) != 2 or reply.text not in moves or reply.logprobs is None:
            raise ValueError(f"policy: {spot} with a {card} needs a guided reply with log-probs, one of two moves; "
                             f"got {reply.text!r} of {moves}")
        chosen = math.exp(sum(reply.logprobs[:-1]))  # a guided literal move ends with its end of sequence
        table[spot][card] = round(chosen if reply.text == SPOTS[spot][1] else 1.0 - chosen, 4)
    return table


SETUP = Setup(
    recipe=RECIPE, game=GAME, options=OPTIONS, seats=("player_0", "player_1"), panel=PANEL,
    panel_metrics={"chips": chips_a_hand, "win": won}, panel_floor=None, targets_from="greedy",
    title=f"league on {GAME} ({HANDS} hands, guided, base + PFSP, credit per hand)", live=32,
    # GRPO's own groups of 16 plays of a deal, each deal in both seatings (--paired-training:
    # its two cards reach the learner once each, so what a King's bets gain and a Jack's lose
    # weigh alike in every batch), the pool's checkpoints greedy in training (a group's rewards
    # differ by the learner's moves alone) and the learner sampling at T=5 (its moves are a
    # literal list, so T tempers the choice between [check] and [bet]: about a third bets at
    # first, where T=1 bets one time in a hundred); two passes over each batch, lr 2e-3; a quarter
    # of the opponents the base, three quarters PFSP's; each hand credited with its own chips; 16
    # iterations (the whole recipe about 22 minutes on 2 cores: docs/training.md).
    # docs/training.md has the runs that led here. Greedy evaluations throughout (no move here
    # ties a match by itself), and the panel and payoff sizes that keep the recipe near 30 minutes
    defaults={"max_new_tokens": 8, "iterations": 16, "episodes": 64, "baseline": "group", "group_size": 16, "epochs": 2,
              "lr": 2e-3, "temperature": 5.0, "sampler": "0.25*base+0.75*pfsp", "credit": "round", "opponent_temperature": 0.0, "paired_training": True,
              "eval_temperature": 0.0, "eval_episodes": 4, "panel_episodes": 60, "payoff_episodes": 2},
    play_summary=play_summary,
    policy=policy,
    # training plays the evaluations' matches (two hands); --credit round gives each hand its
    # own reward, as one-hand training episodes did, in the context of the hands before it
    train_options=(),
    # an exploration warm start, off by default (--sft-instances N): moves drawn uniformly
    # from the open ones know nothing of the cards, so whatever conditions bets on cards is
    # the league's; 20 SFT steps took 8.4 minutes and barely moved the bets (docs/training.md)
    warm_start_player="scripted:random",
)

__all__ = ["GAME", "OPTIONS", "PANEL", "RECIPE", "SETUP", "main"]


def main(argv: list[str] | None = None) -> dict:
    return league_zero_sum.main(SETUP, argv, __doc__)


if __name__ == "__main__":
    main()
