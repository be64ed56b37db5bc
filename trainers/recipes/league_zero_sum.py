"""The shared body of the competitive league recipes (:mod:`.league_negotiation`,
:mod:`.league_kuhn`): a self-play league on a zero-sum game (PFSP over the base and every past
checkpoint, GRPO baselines per seat and opponent), then the final checkpoint on held-out test
instances, every instance played once with the learner in each seat, greedy and sampled:

1. against the base (``it-0``): win rate (ties half) with its 95% bootstrap interval over
   instances; target >= 0.65, interval above 0.55;
2. against the **middle checkpoint** (``it-k``, ``k = ceil(N / 2)`` of ``N`` iterations,
   named before the run): target >= 0.55, interval above 0.50;
3. the final checkpoint's Bradley-Terry rating interval above the first trained one's;
4. the final checkpoint and the base against a held-out scripted panel (never trained
   against): the game's own panel metrics, each with its interval, in all and per panel member;
   target: a score no lower than the base's (and the game's floor, where it sets one);
5. the payoff table of the pool with the panel, its Nash mixture and each member's
   exploitability; target: most of the checkpoints' Nash weight on their last third.

A recipe module gives a :class:`Setup` (the game, its options, its panel and what the panel
measures, which evaluation the targets are read from, its defaults) and calls :func:`main`.
"""

from __future__ import annotations

import argparse
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dialogym.agents.base import Sampling
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.benchmarks.metagame import MetaGame, solve
from dialogym.envs import Episode
from dialogym.trainers.config import LeagueConfig
from dialogym.trainers.league import League, draw_ratings, eval_instances, eval_seeds, final_ratings
from dialogym.trainers.opponents import SAMPLER_HELP, make_sampler
from dialogym.trainers.pool import CheckpointPool

from .common import Clock, estimate, fmt, paired_gain, save_png, warm_start, write_results

#: the keys of the final evaluations' instances: above any iteration, so the league's own
#: evaluations never met them, and apart from each other and the payoff table's
FINAL_KEY, PANEL_KEY = 1_000_000, 1_500_000

#: one number per panel episode, from the episode and the seat the evaluated player sat in
PanelMetric = Callable[[Episode, str], float]


@dataclass(frozen=True)
class Setup:
    """What a competitive league recipe plays and measures."""

    recipe: str
    game: str
    options: tuple[str, ...]
    seats: tuple[str, ...]
    #: the held-out panel: evaluated against, never trained against
    panel: tuple[str, ...]
    #: what a panel match measures, by name; the first is the score target 4 compares with the base's
    panel_metrics: Mapping[str, PanelMetric]
    #: target 4's second condition, where the game sets one: (metric, the least the final checkpoint reaches)
    panel_floor: tuple[str, float] | None
    #: which evaluation the targets are read from (both are run and reported)
    targets_from: Literal["greedy", "sampled"]
    title: str
    #: live episodes of an evaluation at once (its caches)
    live: int = 16
    #: how a player played its panel matches (``(episodes, player) -> summary``), where the
    #: game can say it briefly (Kuhn Poker: how often it bets and calls with each card)
    play_summary: Callable[[Sequence[Episode], str], dict[str, Any]] | None = None
    #: the exact move probabilities of a player (``(agent, game_options) -> table``), read off
    #: the model instead of sampled, for every checkpoint of the pool (Kuhn Poker: P(bet) and
    #: P(call) with each card in each spot of the first hand)
    policy: Callable[[Any, Mapping[str, Any]], dict[str, Any]] | None = None
    #: the recipe's defaults beside :func:`parse`'s own
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: game options of the training episodes only, over ``options`` (the default of
    #: ``--train-option``); every evaluation plays ``options``
    train_options: tuple[str, ...] = ()
    #: the scripted player whose every reply (won or lost) an SFT warm start fits before the
    #: first iteration, where the recipe has one (``--sft-instances`` > 0): not a panel member
    warm_start_player: str | None = None


def _check_setup(setup: Setup) -> None:
    if setup.warm_start_player is not None and setup.warm_start_player in setup.panel:
        raise ValueError(f"{setup.recipe}: the warm-start player {setup.warm_start_player} is in the held-out panel, "
                         "which is for evaluation only")


def middle(iterations: int) -> str:
    """The middle checkpoint of a league of ``iterations`` iterations: ``it-ceil(N / 2)``."""
    return f"it-{math.ceil(iterations / 2)}"


def admitted_by(pool: CheckpointPool, iteration: int) -> str:
    """The newest checkpoint the pool admitted by ``iteration`` (``it-<iteration>`` itself
    without a gate; with one, the last that passed it, or the base ``it-0``). With
    ``--rollback`` it holds the learner's weights at the end of that iteration."""
    return max((e for e in pool.entries if e.kind != "external" and e.iteration <= iteration), key=lambda e: e.iteration).name


def last_third_weight(game: MetaGame, checkpoints: Sequence[str]) -> float:
    """The share of the checkpoints' Nash weight on the last third of them (``it-0`` counted
    among them; the panel's weight left out)."""
    if game.mixture is None:
        return float("nan")
    weight = {name: float(w) for name, w in zip(game.table.players, game.mixture, strict=True)}
    total = sum(weight.get(c, 0.0) for c in checkpoints)
    late = checkpoints[len(checkpoints) - math.ceil(len(checkpoints) / 3):]
    return sum(weight.get(c, 0.0) for c in late) / total if total > 0 else float("nan")


def rounded_mixture(game: MetaGame) -> dict[str, float] | None:
    """The Nash mixture by member, to 4 decimals (None: the meta-game is unsolved)."""
    return None if game.mixture is None else dict(zip(game.table.players, np.round(game.mixture, 4).tolist(), strict=True))


def _number(value: float) -> float | None:
    """``value``, or None for NaN (JSON has no NaN)."""
    return None if math.isnan(value) else value


def panel_outcomes(setup: Setup, league: League, players: Sequence[str], instances: int,
                   temperature: float) -> dict[str, dict[str, Any]]:
    """Each of ``players`` (pool members) against the panel, at ``temperature``, on ``instances`` held-out
    instances dealt out to the panel's players in turn, each played once in both seats: every
    panel metric, and ``opponent`` (the panel member's index), per episode, in the same order
    for every player (so two players' lists pair up)."""
    c = league.config
    seeds = eval_seeds(PANEL_KEY, instances)
    engine = RolloutEngine(league._agents([*players, *setup.panel]), max_concurrent=setup.live,
                           sampling=Sampling(temperature=temperature, max_new_tokens=c.learner.max_new_tokens))
    out: dict[str, dict[str, Any]] = {}
    for player in players:
        specs = [EpisodeSpec(game=c.game, seed=seed, split="test", level=c.learner.level, game_options=c.learner.options(),
                             seats={s: player if s == seat else setup.panel[i % len(setup.panel)] for s in setup.seats},
                             tags={"league": "panel"})
                 for i, seed in enumerate(seeds) for seat in setup.seats]
        played = engine.run(specs)
        seat_of = [next(s for s, who in e.seats.items() if who == player) for e in played]
        out[player] = {name: [metric(e, s) for e, s in zip(played, seat_of, strict=True)]
                       for name, metric in setup.panel_metrics.items()}
        out[player]["opponent"] = [float(i % len(setup.panel)) for i in range(len(seeds)) for _ in setup.seats]
        if setup.play_summary is not None:
            out.setdefault("play", {})[player] = setup.play_summary(played, player)
    return out


def parse(setup: Setup, argv: Sequence[str] | None, doc: str | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--iterations", type=int, default=6, help="league iterations (the middle checkpoint is it-ceil(N/2))")
    parser.add_argument("--minutes", type=float, default=30.0, help="wall-time budget of the whole recipe (a guide: "
                        "the iterations are fixed, so that the middle checkpoint is named before the run)")
    parser.add_argument("--episodes", type=int, default=32, help="training episodes per iteration")
    parser.add_argument("--eval-episodes", type=int, default=8, help="in-league evaluation matches per opponent")
    parser.add_argument("--eval-opponents", type=int, default=2)
    parser.add_argument("--sampler", default="pfsp", help=f"the training opponents' sampler: {SAMPLER_HELP}")
    parser.add_argument("--final-episodes", type=int, default=200,
                        help="held-out matches of the final checkpoint against the base and against the middle one "
                        "each: half as many instances, each played in both seats")
    parser.add_argument("--panel-episodes", type=int, default=120,
                        help="held-out matches of the final checkpoint, and of the base, against the panel")
    parser.add_argument("--payoff-episodes", type=int, default=8, help="matches of every pair of the payoff table at least")
    parser.add_argument("--eval-temperature", type=float, default=1.0,
                        help="temperature of the league's evaluations, the payoff table and the sampled final evaluation "
                        "(the final evaluation is also played greedy)")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--beta", type=float, default=0.0, help="weight of the KL to the base model (the adapter off)")
    parser.add_argument("--gate", type=float, default=None, help="admit a checkpoint to the pool only if it scores at "
                        "least this against the best rated member in its in-league evaluation (unset: every one)")
    parser.add_argument("--rollback", action=argparse.BooleanOptionalAction, default=False,
                        help="with --gate, undo a checkpoint the gate turns away (the learner back to its weights before "
                        "that update)")
    parser.add_argument("--baseline", choices=("role", "group"), default="role",
                        help="role: each training instance played once, a baseline per (seat, opponent); group: each "
                        "played --group-size times in one seating, a baseline per group (the deal's luck cancels)")
    parser.add_argument("--credit", choices=("episode", "round"), default="episode",
                        help="a reply's reward: the episode's, or its round's alone (a hand of Kuhn Poker)")
    parser.add_argument("--group-size", type=int, default=4, help="plays of each training instance with --baseline group")
    parser.add_argument("--epochs", type=int, default=1, help="passes over each iteration's batch (an optimizer step each; "
                        "the ratio is clipped from the second on)")
    parser.add_argument("--train-option", action="append", metavar="KEY=VALUE", dest="train_options",
                        help="a game option of the training episodes only (repeatable; every evaluation plays the "
                        f"recipe's {' '.join(setup.options) or 'default options'}); default: "
                        f"{' '.join(setup.train_options) or 'none'}")
    parser.add_argument("--sft-instances", type=int, default=0,
                        help=f"SFT warm start on every reply of {setup.warm_start_player or 'a scripted player'} in both "
                        "seats of this many train instances, after the base (it-0) joins the pool (0: none)")
    parser.add_argument("--sft-steps", type=int, default=20, help="SFT steps of 8 rows")
    parser.add_argument("--sft-lr", type=float, default=1e-3)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0, help="the learner's sampling temperature in training")
    parser.add_argument("--paired-training", action=argparse.BooleanOptionalAction, default=False,
                        help="play each training instance in both seat orders against the same opponent (a deal's "
                        "cards reach the learner from both sides)")
    parser.add_argument("--opponent-temperature", type=float, default=None,
                        help="the pool's checkpoints' sampling temperature in training (0: greedy); default: the learner's")
    parser.add_argument("--base-temperature", type=float, default=None,
                        help="the base's (it-0) sampling temperature in training; default: --opponent-temperature's")
    parser.add_argument("--max-new-tokens", type=int, default=24, help="longest reply")
    parser.add_argument("--grad-accum", type=int, default=4, help="chunks of each iteration's batch (the same gradient)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(f"runs/recipes/{setup.recipe}"), help="league folder (replaced)")
    parser.add_argument("--results", type=Path, default=Path("docs/results"))
    parser.add_argument("--tag", default="", help="suffix of the results files' names (a second seed: --seed 1 --tag _seed1)")
    parser.set_defaults(**setup.defaults)
    args = parser.parse_args(argv)
    if args.train_options is None:  # append's default would be extended, not replaced
        args.train_options = list(setup.train_options)
    if args.rollback and args.gate is None:
        parser.error("--rollback undoes what the gate turns away: give --gate too (--gate 0.5, say)")
    if args.iterations < 2:
        parser.error(f"--iterations {args.iterations}: at least 2, so that the middle checkpoint is not the final one")
    try:
        make_sampler(args.sampler, setup.seats)
    except ValueError as e:
        parser.error(f"--sampler: {e}")
    if args.sft_instances and setup.warm_start_player is None:
        parser.error(f"--sft-instances: {setup.recipe} has no warm-start player")
    return args


def config_of(setup: Setup, args: argparse.Namespace) -> LeagueConfig:
    return LeagueConfig(game=setup.game, model=args.model, iterations=args.iterations, episodes=args.episodes,
                        eval_episodes=args.eval_episodes, eval_opponents=args.eval_opponents, sampler=args.sampler,
                        payoff_episodes=args.payoff_episodes, eval_temperature=args.eval_temperature,
                        train_game_options=args.train_options, opponent_temperature=args.opponent_temperature,
                        base_temperature=args.base_temperature,
                        paired_training=args.paired_training, gate=args.gate, rollback=args.rollback,
                        learner={"lr": args.lr, "beta": args.beta, "lora_rank": args.lora_rank, "guided": True, "temperature": args.temperature,
                                 "max_new_tokens": args.max_new_tokens, "seed": args.seed, "loss_type": "dapo",
                                 "grad_accum": args.grad_accum, "epochs": args.epochs,
                                 "baseline": args.baseline, "group_size": args.group_size, "credit": args.credit,
                                 "game_options": list(setup.options)})


def plot(setup: Setup, path: Path, lines: list[dict], game: MetaGame, final: dict[str, list] | None = None) -> Path:
    """Ratings over the iterations (with intervals; ``final``: each checkpoint's rating at the
    end, drawn at its iteration) beside the payoff heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dialogym.benchmarks.report import draw_payoff

    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [1, 1.3]})
    draw_ratings(left, lines, final)
    draw_payoff(right, game)
    fig.suptitle(setup.title)
    return save_png(fig, path)


def evaluate(setup: Setup, league: League, final: str, mid: str, args: argparse.Namespace, clock: Clock,
             temperature: float) -> dict[str, Any]:
    """The held-out evaluations of the final checkpoint at ``temperature`` (targets 1, 2 and 4)."""
    label = "greedy" if temperature == 0 else f"T={temperature:g}"
    seeds = eval_seeds(FINAL_KEY, eval_instances(args.final_episodes, len(setup.seats)))
    versus = league.paired([(final, "it-0"), (final, mid)], seeds, "final", live=setup.live, temperature=temperature)
    out: dict[str, Any] = {"temperature": temperature}
    for (_, opponent), matches in versus.items():
        win = matches.win_rate()
        out[f"vs_{'base' if opponent == 'it-0' else 'middle'}"] = {
            "opponent": opponent, "win_rate": win, "instances": len(matches.seeds),
            "matches": len(matches.seeds) * len(setup.seats),
            "win_rate_by_seat": {seat: estimate(s) for seat, s in matches.seat_scores().items()},
            "outcomes_by_seat": matches.by_seat()}
        print(f"{label}: {final} against {opponent}: win rate {fmt(win)} on {len(matches.seeds)} instances in both seats; "
              f"{matches.by_seat()} ({clock.seconds / 60:.1f} min)", flush=True)
    panel = panel_outcomes(setup, league, [final, "it-0"], eval_instances(args.panel_episodes, len(setup.seats)), temperature)
    p: dict[str, Any] = {"matches": len(panel[final]["opponent"])}
    for name in setup.panel_metrics:
        base, last = panel["it-0"][name], panel[final][name]
        p[f"{name}_base"], p[f"{name}_final"], p[f"{name}_gain"] = estimate(base), estimate(last), paired_gain(base, last)
        print(f"{label}: against the panel: {name} {fmt(p[f'{name}_base'])} (base) -> {fmt(p[f'{name}_final'])} ({final}), "
              f"paired gain {fmt(p[f'{name}_gain'])} ({clock.seconds / 60:.1f} min)", flush=True)
    opponent = np.array(panel[final]["opponent"])
    p["by_opponent"] = {member: {f"{name}_{who}": estimate(np.array(panel[player][name])[opponent == i])
                                 for name in setup.panel_metrics for who, player in (("base", "it-0"), ("final", final))}
                        for i, member in enumerate(setup.panel)}
    if "play" in panel:
        p["play"] = panel["play"]
        print(f"{label}: how they played against the panel: {panel['play']}", flush=True)
    out["vs_panel"] = p
    return out


def targets(setup: Setup, results: dict[str, Any], pool: CheckpointPool, final: str, game: MetaGame,
            checkpoints: list[str]) -> dict[str, Any]:
    first, last = pool.get(checkpoints[1] if len(checkpoints) > 1 else checkpoints[0]), pool.get(final)
    base, mid, panel = results["vs_base"]["win_rate"], results["vs_middle"]["win_rate"], results["vs_panel"]
    score = next(iter(setup.panel_metrics))
    panel_met = panel[f"{score}_final"].value >= panel[f"{score}_base"].value
    panel_target = f"{score} against the panel no lower than the base's"
    if setup.panel_floor is not None:
        metric, least = setup.panel_floor
        panel_met = panel_met and panel[f"{metric}_final"].value >= least
        panel_target += f", {metric} >= {least:g}"
    late = last_third_weight(game, checkpoints)
    # the league's own meta-game (its checkpoints without the panel), reported beside target 5:
    # the panel's equilibrium player, never beaten in expectation, takes the full table's weight
    # from checkpoints that tie it within a small table's noise
    league = solve(game.table.restricted(checkpoints)) if game.mixture is not None else None
    return {
        "read_from": setup.targets_from,
        "1_vs_base": {"met": base.value >= 0.65 and base.lo > 0.55, "target": "win rate >= 0.65, interval above 0.55"},
        "2_vs_middle": {"met": mid.value >= 0.55 and mid.lo > 0.50, "target": "win rate >= 0.55, interval above 0.50"},
        "3_ratings": {"met": bool(last.rating_lo is not None and first.rating_hi is not None and last.rating_lo > first.rating_hi),
                      "target": f"{final}'s rating interval above {first.name}'s",
                      "final": [last.rating_lo, last.rating, last.rating_hi], "first": [first.rating_lo, first.rating, first.rating_hi]},
        "4_vs_panel": {"met": panel_met, "target": panel_target},
        "5_nash": {"met": late > 0.5, "target": "most of the checkpoints' Nash weight on their last third",
                   "last_third_weight": _number(late),  # None: no checkpoint has weight
                   "checkpoints_only": None if league is None else {
                       "mixture": rounded_mixture(league), "last_third_weight": _number(last_third_weight(league, checkpoints))}},
    }


def main(setup: Setup, argv: Sequence[str] | None = None, doc: str | None = None) -> dict:
    """Run the recipe ``setup`` describes (its module is ``dialogym.trainers.recipes.<setup.recipe>``)."""
    _check_setup(setup)
    args = parse(setup, argv, doc)
    clock = Clock(args.minutes)
    shutil.rmtree(args.out, ignore_errors=True)  # a recipe run starts a new league
    config = config_of(setup, args)
    final, mid = f"it-{args.iterations}", middle(args.iterations)
    gated = "" if args.gate is None else " (the last admitted by then, where the gate turns checkpoints away)"
    print(f"league of {args.iterations} iterations on {setup.game}: the final checkpoint {final} will meet the base it-0 "
          f"and the middle checkpoint {mid}{gated}", flush=True)
    fitted: list[int] = []

    def sft(learner: Any) -> None:
        assert setup.warm_start_player is not None
        fitted.append(warm_start(learner, setup.game, setup.seats, args.sft_instances, args.sft_steps, args.sft_lr,
                                 args.out / "sft", player=setup.warm_start_player, min_reward=-math.inf,
                                 game_options=config.learner.options()))
        print(f"SFT warm start on {fitted[-1]} replies of {setup.warm_start_player} ({clock.seconds / 60:.1f} min)", flush=True)

    league = League(config, args.out, warm_start=sft if args.sft_instances else None)

    def stop(line: dict) -> bool:
        print(f"iteration {line['iteration']}: training reward {line['mean_reward']:+.3f}, flat groups "
              f"{line.get('flat_groups', float('nan')):.2f}, eval {line['eval']} ({clock.seconds / 60:.1f} min)", flush=True)
        return False

    lines = league.run(stop=stop)
    pool = CheckpointPool(args.out / "pool")
    final, mid = admitted_by(pool, args.iterations), admitted_by(pool, int(mid.removeprefix("it-")))
    greedy = evaluate(setup, league, final, mid, args, clock, 0.0)
    sampled = evaluate(setup, league, final, mid, args, clock, args.eval_temperature) if args.eval_temperature else greedy
    results = greedy if setup.targets_from == "greedy" else sampled
    game = league.payoff(args.payoff_episodes, add=setup.panel, live=setup.live,
                         progress=lambda a, b, m: print(f"payoff: {a} vs {b} {m.mean:.2f} ({clock.seconds / 60:.1f} min)", flush=True))
    pool.reload()  # the panel joined, the payoff's results recorded
    checkpoints = [e.name for e in pool.entries if e.kind != "external"]
    reached = targets(setup, results, pool, final, game, checkpoints)
    policies = None
    if setup.policy is not None:
        policies = {name: setup.policy(league.bank.agent(name, str(pool.path_of(name))), config.learner.options())
                    for name in checkpoints}
        for name, table in policies.items():
            print(f"policy of {name}: {table}", flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    name = f"{setup.recipe}{args.tag}"
    png = plot(setup, args.results / f"{name}.png", lines, game, final_ratings(pool))
    mixture = rounded_mixture(game)
    verdicts = ", ".join(f"{key} {'met' if v['met'] else 'missed'}" for key, v in reached.items() if isinstance(v, dict))
    league_only = reached["5_nash"]["checkpoints_only"]
    print(f"Nash mixture: {mixture}; of the checkpoints alone: {league_only and league_only['mixture']}; "
          f"targets ({setup.targets_from}): {verdicts}", flush=True)
    result = {"game": setup.game, "game_options": list(setup.options), "model": args.model, "config": config.model_dump(),
              "sft_warm_start": {"player": setup.warm_start_player, "instances": args.sft_instances, "steps": args.sft_steps,
                                 "lr": args.sft_lr, "rows": fitted[0]} if fitted else None,
              "iterations": len(lines), "final": final, "middle": mid, "panel": list(setup.panel), **results,
              "greedy": greedy, "sampled": sampled, "targets": reached, "policy": policies,
              "ratings": {e.name: [e.rating_lo, e.rating, e.rating_hi] for e in pool.entries},
              "metagame": game.as_dict(), "league": lines, "plot": png.name}
    path = write_results(args.results / f"{name}.json", setup.recipe, clock, **result)
    print(f"wrote {path} and {png} in {clock.seconds / 60:.1f} minutes", flush=True)
    return result
