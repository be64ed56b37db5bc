"""``dialogym league``: train against a pool of past checkpoints.

Its settings are the fields of :class:`~dialogym.trainers.config.LeagueConfig` and, once
each, those of its learner's :class:`~dialogym.trainers.config.GRPOConfig` (or
:class:`~dialogym.trainers.config.PPOConfig` with ``--algo ppo``) that a league does not
decide itself, with the league's defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from dialogym.cli_config import Settings
from dialogym.cli_output import console, out_folder
from dialogym.trainers.config import LEAGUE_DECIDES, LEAGUE_LEARNER_DEFAULTS, LEARNER_CONFIGS

#: How ``league``'s options come from its config (:func:`~dialogym.cli_config.config_command`):
#: the game is an argument, the learner's settings are options of their own names.
LEAGUE_OPTIONS: dict[str, Any] = {
    "noun": "league",
    "exclude": ("game", *LEAGUE_DECIDES),
    "nested": {"learner": LEARNER_CONFIGS},
    "defaults": LEAGUE_LEARNER_DEFAULTS,
}


def league_command(
    settings: Settings,
    game: str = typer.Argument(..., help="game id or short name"),
    out: Path = typer.Option(Path("runs/league"), parser=out_folder, help="league folder; rerun the same command to resume"),
) -> None:
    """Train a LoRA learner against its own past checkpoints; resumable."""
    from dialogym.benchmarks.report import nash_table
    from dialogym.envs import resolve_ids
    from dialogym.trainers.config import LeagueConfig
    from dialogym.trainers.league import League, write_league_report

    ids = resolve_ids(game)
    if len(ids) != 1:
        raise ValueError(f"league takes one game; {game!r} names {len(ids)} ({', '.join(ids[:3])}"
                         f"{', ...' if len(ids) > 3 else ''}); run one league per game")
    gate = settings.values.get("gate")
    if isinstance(gate, (int, float)) and gate < 0:  # `--gate -1` meant "no gate" before the option could be left unset
        settings.values["gate"] = None
    config = settings.build(LeagueConfig, game=ids[0])
    league = League(config, out)  # checks every option before it writes anything
    lines = league.run(progress=league.rank == 0)
    game = league.payoff(config.payoff_episodes) if config.payoff_episodes else None
    report = write_league_report(out)
    if league.rank != 0:  # under torchrun every rank holds the same lines; rank 0 speaks
        return
    for line in lines:
        console.print(
            f"iteration {line['iteration']}: mean reward {line['mean_reward']:+.3f}, loss {line['loss']:.4f}, "
            f"admitted {line['admitted']}, eval {line['eval']}"
        )
    if game is not None:
        console.print(nash_table(game, "the pool's meta-game: Nash mixture and exploitability"))
    console.print(f"report: {report}")
