"""CPU recipe: a self-play league on the referential game, then the final checkpoint
against the base model.

The learner (the embedded model with a LoRA adapter, guided moves) takes both seats in
turn against opponents drawn from its pool of past checkpoints by PFSP (:mod:`~dialogym.
trainers.league`). The seats share the reward, so a cross-play match is won by the better
partner: the learner's team (the learner beside the opponent) against the opponent's own
team on the same instance (:func:`~dialogym.benchmarks.scores.partner_score`). After the
league, the final checkpoint meets the base model (``it-0``, the adapter at its zero start)
on held-out test instances the league never saw, each played once with the learner in either
seat (:func:`~dialogym.trainers.league.play_paired`); the win rate with its 95% bootstrap
interval over instances (pairs), the wins, losses and ties in each seat, the ratings per
iteration (PNG) and a results file go to ``docs/results/``.

    python -m dialogym.trainers.recipes.league_reference          # about 30 minutes on 2 cores
    python -m dialogym.trainers.recipes.league_reference --model tiny --iterations 1 --episodes 4 --final-episodes 8
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from dialogym.trainers.config import LeagueConfig
from dialogym.trainers.league import League, draw_ratings
from dialogym.trainers.pool import CheckpointPool

from .common import Clock, estimate, fmt, save_png, warm_start, write_results

GAME = "dialogym/Reference-v0"
RECIPE = "league_reference"
#: the key of the final cross-play's instances: above any iteration, so the league's own
#: evaluations never met them
FINAL_KEY = 1_000_000
#: the share of the time budget kept for the final cross-play
FINAL_SHARE = 0.35


def plot_ratings(path: Path, lines: list[dict]) -> Path:
    """Each checkpoint's rating as the league went on (:func:`~dialogym.trainers.league.draw_ratings`,
    with its interval where the league recorded one) beside the training reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    draw_ratings(left, lines)
    right.plot([line["iteration"] for line in lines], [line["mean_reward"] for line in lines], marker="o")
    right.set(xlabel="iteration", ylabel="training reward (success)", title="training episodes")
    fig.suptitle("league on the referential game (guided, PFSP)")
    return save_png(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--iterations", type=int, default=12, help="league iterations at most (the budget may stop it first)")
    parser.add_argument("--minutes", type=float, default=28.0, help="wall-time budget of the whole recipe")
    parser.add_argument("--episodes", type=int, default=32, help="training episodes per iteration")
    parser.add_argument("--eval-episodes", type=int, default=8, help="in-league evaluation episodes per opponent")
    parser.add_argument("--eval-opponents", type=int, default=2)
    parser.add_argument("--final-episodes", type=int, default=200,
                        help="held-out matches of the final checkpoint against the base: half as many instances, "
                        "each played in both seats")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--sft-instances", type=int, default=160,
                        help="SFT warm start of both seats on the scripted pair's moves on this many train instances, "
                        "after it-0 (the base) joins the pool (0: none)")
    parser.add_argument("--sft-steps", type=int, default=20, help="SFT steps of 8 rows")
    parser.add_argument("--sft-lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/recipes/league_reference"), help="league folder (replaced)")
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    args = parser.parse_args(argv)
    clock = Clock(args.minutes)

    shutil.rmtree(args.out, ignore_errors=True)  # a recipe run starts a new league
    config = LeagueConfig(game=GAME, model=args.model, iterations=args.iterations, episodes=args.episodes,
                          eval_episodes=args.eval_episodes, eval_opponents=args.eval_opponents, sampler="pfsp",
                          learner={"lr": args.lr, "lora_rank": args.lora_rank, "guided": True, "temperature": 1.0,
                                   "max_new_tokens": 48, "seed": args.seed})
    fitted: list[int] = []
    iterations_from = [clock.seconds]  # when the first iteration started: after the warm start

    def sft(learner) -> None:
        fitted.append(warm_start(learner, GAME, league_roles, args.sft_instances, args.sft_steps, args.sft_lr, args.out / "sft"))
        iterations_from[0] = clock.seconds
        print(f"SFT warm start on {fitted[-1]} scripted replies ({clock.seconds / 60:.1f} min)", flush=True)

    league_roles = ["speaker", "listener"]
    league = League(config, args.out, warm_start=sft if args.sft_instances else None)

    def stop(line: dict) -> bool:
        done = line["iteration"]
        print(f"iteration {done}: training success {line['mean_reward']:.3f}, eval {json.dumps(line['eval'])} "
              f"({clock.seconds / 60:.1f} min)", flush=True)
        # the final cross-play (200 matches and the base's own 200, before it was paired and the
        # base's team played once per instance) took over a quarter of the budget on a loaded
        # machine (2026-12-01): keep a third of it. An iteration's cost is
        # the mean since the warm start (which took a third of the budget itself).
        per_iteration = (clock.seconds - iterations_from[0]) / done
        if clock.left() < per_iteration + FINAL_SHARE * clock.budget:
            print(f"stopping after {done} iterations: the time budget is spent", flush=True)
            return True
        return False

    lines = league.run(stop=stop)
    final = f"it-{len(lines)}"
    matches = league.crossplay("it-0", args.final_episodes, FINAL_KEY)
    win = matches.win_rate()  # the interval resamples instances, each with its matches in both seats
    by_seat = {seat: estimate(scores) for seat, scores in matches.seat_scores().items()}
    outcomes = matches.by_seat()
    print(f"{final} against the base (it-0), {len(matches.seeds)} held-out instances in both seats: win rate {fmt(win)}; "
          + ", ".join(f"as {seat} {fmt(e)} ({outcomes[seat]})" for seat, e in by_seat.items()), flush=True)
    pool = CheckpointPool(args.out / "pool")
    ratings = {e.name: e.rating for e in pool.entries}
    args.results.mkdir(parents=True, exist_ok=True)
    png = plot_ratings(args.results / f"{RECIPE}.png", lines)
    result = {"game": GAME, "model": args.model, "config": config.model_dump(),
              "sft_warm_start": {"instances": args.sft_instances, "steps": args.sft_steps, "lr": args.sft_lr,
                                 "rows": fitted[0] if fitted else 0} if args.sft_instances else None,
              "iterations": len(lines),
              "final": final, "final_instances": len(matches.seeds), "final_matches": len(matches.seeds) * len(matches.seats),
              "win_rate_vs_base": win, "win_rate_by_learner_seat": by_seat, "outcomes_by_learner_seat": outcomes,
              "target": "win rate >= 0.65 against the base, interval excluding 0.5; ratings rising",
              "reached": win.value >= 0.65 and win.lo > 0.5, "ratings": ratings, "league": lines, "plot": png.name}
    path = write_results(args.results / f"{RECIPE}.json", RECIPE, clock, **result)
    print(f"wrote {path} and {png} in {clock.seconds / 60:.1f} minutes", flush=True)
    return result


if __name__ == "__main__":
    main()
