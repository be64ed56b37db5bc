"""``dialogym bench``: self-play and cross-play runs with scores, ratings and reports."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from .runner import BenchConfig, load_config, run_bench


def bench(config: BenchConfig, out: Path, *, progress: bool | None = None, agents: dict[str, Any] | None = None) -> Path:
    """Run (or finish) a benchmark in ``out``, write tables and the report, print the leaderboard.

    Returns the path of the HTML report.
    """
    from dialogym.cli import console

    from .report import games_table, leaderboard_table, summarise, write_report, write_tables

    progress = sys.stderr.isatty() if progress is None else progress
    config, episodes, played_now = run_bench(config, out, agents=agents, progress=progress)
    if played_now < len(episodes):
        console.print(f"{out}: {len(episodes) - played_now} of {len(episodes)} episodes were already done; played {played_now}")
    summary = summarise(config, episodes)
    write_tables(summary, out)
    report = write_report(summary, episodes, out / "report")
    console.print(games_table(summary))
    console.print(leaderboard_table(summary))
    console.print(f"episodes: {out / 'episodes.jsonl'}; scores: {out / 'scores.csv'}; report: {report}")
    return report


def demo_config(episodes: int, model: str) -> BenchConfig:
    """What ``dialogym demo`` runs: ``model`` and the scripted players in self-play on every game."""
    return BenchConfig(
        name="demo", games=["all"], models=[model, "scripted"], mode="selfplay", episodes=episodes, split="test",
        temperature=0.0, max_new_tokens=48,
    )


def is_demo_config(stored: BenchConfig, demo: BenchConfig) -> bool:
    """Whether ``stored`` (a run folder's config) was written by ``dialogym demo``: every setting
    the demo fixes matches ``demo`` and its models are one model then ``scripted``; only
    ``--episodes``, ``--model`` and the game list (games get added) may differ."""
    fixed = {"name", "mode", "split", "level", "seed", "temperature", "max_new_tokens"}
    return (
        stored.model_dump(include=fixed) == demo.model_dump(include=fixed)
        and len(stored.models) == 2
        and stored.models[1] == "scripted"
    )


def register(app: typer.Typer) -> None:
    from dialogym.cli import user_errors

    @app.command("bench")
    @user_errors
    def bench_command(
        games: str = typer.Option(None, help="games: 'all', or ids/short names separated by commas (default: all)"),
        models: str = typer.Option(None, help="model specs separated by commas, e.g. smollm2,scripted (default: scripted)"),
        mode: str = typer.Option(None, help="selfplay (a model fills every seat) or crossplay (pairs of models) (default: selfplay)"),
        episodes: int = typer.Option(None, min=1, help="instances per game; every pairing plays all (default: 8)"),
        split: str = typer.Option(None, help="instance split: train, test or any (default: test)"),
        level: str = typer.Option(None, help="instance level for every game (default: each game's first)"),
        seed: int = typer.Option(None, help="seed of the instance sets and episodes (default: 0)"),
        temperature: float = typer.Option(None, min=0.0, help="sampling temperature, 0 = greedy (default: 0)"),
        max_new_tokens: int = typer.Option(None, min=1, help="longest reply; games cap it further (default: 64)"),
        concurrency: int = typer.Option(None, min=1, help="episodes played at once (default: 64)"),
        name: str = typer.Option(None, help="run name stored in episode tags (default: the out folder's name)"),
        ray: str = typer.Option(
            None, "--ray", help="play on Ray: 'local' (a Ray started here), 'auto' or 'ray://host:10001' (default: in-process)"
        ),
        ray_workers: int = typer.Option(None, min=1, help="Ray workers, each holding its own copy of the models (default: 2)"),
        config: Path = typer.Option(None, exists=False, help="YAML or JSON file of these settings; flags override it"),
        out: Path = typer.Option(Path("runs/bench"), help="run folder; rerunning the same command resumes it"),
    ) -> None:
        """Benchmark models on games: scores with intervals, ratings, a terminal leaderboard and an HTML report."""
        overrides = {
            "games": games, "models": models, "mode": mode, "episodes": episodes, "split": split, "level": level,
            "seed": seed, "temperature": temperature, "max_new_tokens": max_new_tokens, "concurrency": concurrency,
            "name": name, "ray": ray, "ray_workers": ray_workers,
        }
        bench(load_config(config, overrides), out)
