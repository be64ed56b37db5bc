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

import argparse
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dialogym.agents.base import Sampling
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.benchmarks.metagame import MetaGame
from dialogym.trainers.config import LeagueConfig
from dialogym.trainers.league import League, draw_ratings, eval_instances, eval_seeds
from dialogym.trainers.pool import CheckpointPool

from .common import Clock, estimate, fmt, paired_gain, save_png, write_results

GAME = "dialogym/Negotiation-v1"
OPTIONS = ["messages=false", "reward_view=zero_sum"]
RECIPE = "league_negotiation"
SEATS = ("alice", "bob")
#: the held-out panel: evaluated against, never trained against
PANEL = ("scripted:panel:firm", "scripted:panel:slow", "scripted:panel:tit")
#: the keys of the final evaluations' instances: above any iteration, so the league's own
#: evaluations never met them, and apart from each other and the payoff table's
FINAL_KEY, PANEL_KEY = 1_000_000, 1_500_000
#: talks run to the hidden horizon (up to 24 turns) and every turn of a checkpoint pair is a
#: model's: this many live episodes at once keep an evaluation's caches within a few GB
LIVE = 16


def middle(iterations: int) -> str:
    """The middle checkpoint of a league of ``iterations`` iterations: ``it-ceil(N / 2)``."""
    return f"it-{math.ceil(iterations / 2)}"


def last_third_weight(game: MetaGame, checkpoints: Sequence[str]) -> float:
    """The share of the checkpoints' Nash weight on the last third of them (``it-0`` counted
    among them; the panel's weight left out)."""
    if game.mixture is None:
        return float("nan")
    weight = {name: float(w) for name, w in zip(game.table.players, game.mixture, strict=True)}
    total = sum(weight.get(c, 0.0) for c in checkpoints)
    late = checkpoints[len(checkpoints) - math.ceil(len(checkpoints) / 3):]
    return sum(weight.get(c, 0.0) for c in late) / total if total > 0 else float("nan")


def panel_outcomes(league: League, players: Sequence[str], instances: int,
                   temperature: float) -> dict[str, dict[str, list[float]]]:
    """Each of ``players`` (pool members) against the panel, at ``temperature``, on ``instances`` held-out
    instances dealt out to the panel's players in turn, each played once in both seats: the
    player's own score (the general view, 0-10) and 1.0/0.0 for a deal, per episode, in the
    same order for every player (so two players' lists pair up)."""
    c = league.config
    seeds = eval_seeds(PANEL_KEY, instances)
    engine = RolloutEngine(league._agents([*players, *PANEL]), max_concurrent=LIVE,
                           sampling=Sampling(temperature=temperature, max_new_tokens=c.learner.max_new_tokens))
    out: dict[str, dict[str, list[float]]] = {}
    for player in players:
        specs = [EpisodeSpec(game=c.game, seed=seed, split="test", level=c.learner.level, game_options=c.learner.options(),
                             seats={s: player if s == seat else PANEL[i % len(PANEL)] for s in SEATS}, tags={"league": "panel"})
                 for i, seed in enumerate(seeds) for seat in SEATS]
        played = engine.run(specs)
        seat_of = [next(s for s, who in e.seats.items() if who == player) for e in played]
        out[player] = {"score": [e.metrics.get(f"score_{s}", 0.0) for e, s in zip(played, seat_of, strict=True)],
                       "agreement": [e.metrics.get("agreed", 0.0) for e in played]}
    return out


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--iterations", type=int, default=6, help="league iterations (the middle checkpoint is it-ceil(N/2))")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-time budget of the whole recipe (a guide: "
                        "the iterations are fixed, so that the middle checkpoint is named before the run)")
    parser.add_argument("--episodes", type=int, default=32, help="training episodes per iteration")
    parser.add_argument("--eval-episodes", type=int, default=8, help="in-league evaluation matches per opponent")
    parser.add_argument("--eval-opponents", type=int, default=2)
    parser.add_argument("--final-episodes", type=int, default=200,
                        help="held-out matches of the final checkpoint against the base and against the middle one "
                        "each: half as many instances, each played in both seats")
    parser.add_argument("--panel-episodes", type=int, default=120,
                        help="held-out matches of the final checkpoint, and of the base, against the panel")
    parser.add_argument("--payoff-episodes", type=int, default=8, help="matches of every pair of the payoff table at least")
    parser.add_argument("--eval-temperature", type=float, default=1.0,
                        help="temperature of the league's evaluations, the payoff table and the targets' final evaluation "
                        "(which is also played greedy): the greedy base walks away at once in either seat, and against "
                        "that every player scores exactly 0.5 in a paired zero-sum evaluation")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=24, help="longest reply (a move is about 12 tokens)")
    parser.add_argument("--grad-accum", type=int, default=4, help="chunks of each iteration's batch (the same gradient)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(f"runs/recipes/{RECIPE}"), help="league folder (replaced)")
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)
    if args.iterations < 2:
        parser.error(f"--iterations {args.iterations}: at least 2, so that the middle checkpoint is not the final one")
    return args


def config_of(args: argparse.Namespace) -> LeagueConfig:
    return LeagueConfig(game=GAME, model=args.model, iterations=args.iterations, episodes=args.episodes,
                        eval_episodes=args.eval_episodes, eval_opponents=args.eval_opponents, sampler="pfsp",
                        payoff_episodes=args.payoff_episodes, eval_temperature=args.eval_temperature,
                        learner={"lr": args.lr, "lora_rank": args.lora_rank, "guided": True, "temperature": args.temperature,
                                 "max_new_tokens": args.max_new_tokens, "seed": args.seed, "loss_type": "dapo",
                                 "grad_accum": args.grad_accum, "game_options": OPTIONS})


def plot(path: Path, lines: list[dict], game: MetaGame) -> Path:
    """Ratings over the iterations (with intervals) beside the payoff heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dialogym.benchmarks.report import draw_payoff

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [1, 1.3]})
    draw_ratings(left, lines)
    draw_payoff(right, game)
    fig.suptitle(f"league on {GAME} (zero-sum view, guided, PFSP)")
    return save_png(fig, path)


def evaluate(league: League, final: str, mid: str, args: argparse.Namespace, clock: Clock,
             temperature: float) -> dict[str, Any]:
    """The held-out evaluations of the final checkpoint at ``temperature`` (targets 1, 2 and 4)."""
    label = "greedy" if temperature == 0 else f"T={temperature:g}"
    seeds = eval_seeds(FINAL_KEY, eval_instances(args.final_episodes, len(SEATS)))
    versus = league.paired([(final, "it-0"), (final, mid)], seeds, "final", live=LIVE, temperature=temperature)
    out: dict[str, Any] = {"temperature": temperature}
    for (_, opponent), matches in versus.items():
        win = matches.win_rate()
        out[f"vs_{'base' if opponent == 'it-0' else 'middle'}"] = {
            "opponent": opponent, "win_rate": win, "instances": len(matches.seeds), "matches": len(matches.seeds) * len(SEATS),
            "win_rate_by_seat": {seat: estimate(s) for seat, s in matches.seat_scores().items()},
            "outcomes_by_seat": matches.by_seat()}
        print(f"{label}: {final} against {opponent}: win rate {fmt(win)} on {len(matches.seeds)} instances in both seats; "
              f"{matches.by_seat()} ({clock.seconds / 60:.1f} min)", flush=True)
    panel = panel_outcomes(league, [final, "it-0"], eval_instances(args.panel_episodes, len(SEATS)), temperature)
    out["vs_panel"] = {
        "score_base": estimate(panel["it-0"]["score"]), "score_final": estimate(panel[final]["score"]),
        "score_gain": paired_gain(panel["it-0"]["score"], panel[final]["score"]),
        "agreement_base": estimate(panel["it-0"]["agreement"]), "agreement_final": estimate(panel[final]["agreement"]),
        "matches": len(panel[final]["score"])}
    p = out["vs_panel"]
    print(f"{label}: against the panel: score {fmt(p['score_base'])} (base) -> {fmt(p['score_final'])} ({final}), paired "
          f"gain {fmt(p['score_gain'])}; agreement {fmt(p['agreement_base'])} -> {fmt(p['agreement_final'])} "
          f"({clock.seconds / 60:.1f} min)", flush=True)
    return out


def targets(results: dict[str, Any], pool: CheckpointPool, final: str, game: MetaGame, checkpoints: list[str]) -> dict[str, Any]:
    first, last = pool.get("it-1"), pool.get(final)
    base, mid, panel = results["vs_base"]["win_rate"], results["vs_middle"]["win_rate"], results["vs_panel"]
    late = last_third_weight(game, checkpoints)
    return {
        "1_vs_base": {"met": base.value >= 0.65 and base.lo > 0.55, "target": "win rate >= 0.65, interval above 0.55"},
        "2_vs_middle": {"met": mid.value >= 0.55 and mid.lo > 0.50, "target": "win rate >= 0.55, interval above 0.50"},
        "3_ratings": {"met": bool(last.rating_lo is not None and first.rating_hi is not None and last.rating_lo > first.rating_hi),
                      "target": f"{final}'s rating interval above it-1's",
                      "final": [last.rating_lo, last.rating, last.rating_hi], "first": [first.rating_lo, first.rating, first.rating_hi]},
        "4_vs_panel": {"met": panel["score_final"].value >= panel["score_base"].value and panel["agreement_final"].value >= 0.5,
                       "target": "score against the panel no lower than the base's, agreement >= 0.5"},
        "5_nash": {"met": late > 0.5, "target": "most of the checkpoints' Nash weight on their last third",
                   "last_third_weight": None if math.isnan(late) else late},  # NaN: no checkpoint has weight
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    clock = Clock(args.minutes)
    shutil.rmtree(args.out, ignore_errors=True)  # a recipe run starts a new league
    config = config_of(args)
    final, mid = f"it-{args.iterations}", middle(args.iterations)
    print(f"league of {args.iterations} iterations: the final checkpoint {final} will meet the base it-0 and the middle "
          f"checkpoint {mid}", flush=True)
    league = League(config, args.out)

    def stop(line: dict) -> bool:
        print(f"iteration {line['iteration']}: training reward {line['mean_reward']:+.3f}, flat groups "
              f"{line.get('flat_groups', float('nan')):.2f}, eval {line['eval']} ({clock.seconds / 60:.1f} min)", flush=True)
        return False

    lines = league.run(stop=stop)
    greedy = evaluate(league, final, mid, args, clock, 0.0)
    results = evaluate(league, final, mid, args, clock, args.eval_temperature) if args.eval_temperature else greedy
    game = league.payoff(args.payoff_episodes, add=PANEL, live=LIVE,
                         progress=lambda a, b, m: print(f"payoff: {a} vs {b} {m.mean:.2f} ({clock.seconds / 60:.1f} min)", flush=True))
    pool = CheckpointPool(args.out / "pool")
    checkpoints = [e.name for e in pool.entries if e.kind != "external"]
    reached = targets(results, pool, final, game, checkpoints)
    args.results.mkdir(parents=True, exist_ok=True)
    png = plot(args.results / f"{RECIPE}.png", lines, game)
    mixture = None if game.mixture is None else dict(zip(game.table.players, np.round(game.mixture, 4).tolist(), strict=True))
    verdicts = ", ".join(f"{key} {'met' if v['met'] else 'missed'}" for key, v in reached.items())
    print(f"Nash mixture: {mixture}; targets: {verdicts}", flush=True)
    result = {"game": GAME, "game_options": OPTIONS, "model": args.model, "config": config.model_dump(), "iterations": len(lines),
              "final": final, "middle": mid, "panel": list(PANEL), **results, "greedy": greedy, "targets": reached,
              "ratings": {e.name: [e.rating_lo, e.rating, e.rating_hi] for e in pool.entries},
              "metagame": game.as_dict(), "league": lines, "plot": png.name}
    path = write_results(args.results / f"{RECIPE}.json", RECIPE, clock, **result)
    print(f"wrote {path} and {png} in {clock.seconds / 60:.1f} minutes", flush=True)
    return result


if __name__ == "__main__":
    main()
