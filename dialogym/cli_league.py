"""``dialogym league``: train against a pool of past checkpoints.

Its settings are the fields of :class:`~dialogym.trainers.config.LeagueConfig`."""

from __future__ import annotations

from pathlib import Path

import typer

from dialogym.cli_config import Settings
from dialogym.cli_output import console, out_folder


def league_command(
    settings: Settings,
    game: str = typer.Argument(..., help="game id or short name"),
    out: Path = typer.Option(Path("runs/league"), parser=out_folder, help="league folder; rerun the same command to resume"),
) -> None:
    """Train a LoRA learner against its own past checkpoints; resumable."""
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
    report = write_league_report(out)
    if league.rank != 0:  # under torchrun every rank holds the same lines; rank 0 speaks
        return
    for line in lines:
        console.print(
            f"iteration {line['iteration']}: mean reward {line['mean_reward']:+.3f}, loss {line['loss']:.4f}, "
            f"admitted {line['admitted']}, eval {line['eval']}"
        )
    console.print(f"report: {report}")
