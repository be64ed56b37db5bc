"""The ``dialogym`` command line: the typer app and its commands.

All CLI code lives in this top package (rooms never import it): ``bench``/``play``/``demo``
in :mod:`dialogym.cli_bench`, ``train`` in :mod:`dialogym.cli_train`, ``league`` in
:mod:`dialogym.cli_league`. Their settings' options and config-file keys are generated from
each command's config class (:mod:`dialogym.cli_config`).
"""

from __future__ import annotations

import typer
from rich.table import Table

from dialogym.benchmarks.runner import BenchConfig
from dialogym.cli_bench import PLAY_DEFAULTS, PLAY_SETTINGS, bench_command, demo_command, play_command
from dialogym.cli_config import config_command
from dialogym.cli_league import league_command
from dialogym.cli_output import console, fail, user_errors
from dialogym.cli_train import TRAIN_ALIASES, TRAIN_CONFIGS, train_command
from dialogym.trainers.config import LeagueConfig

__all__ = ["app", "console", "fail", "main", "user_errors"]

app = typer.Typer(
    name="dialogym",
    help="Multi-agent dialogue games for language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("games")
def games_command() -> None:
    """List the registered games with their seats and levels."""
    from dialogym.envs import registered, spec

    table = Table(title="dialogym games")
    for column in ("id", "seats", "levels", "scripted players"):
        table.add_column(column)
    for game_id in registered():
        s = spec(game_id)
        table.add_row(game_id, ", ".join(s.game_cls.roles), ", ".join(s.game_cls.levels), ", ".join(s.players) or "-")
    console.print(table)


@app.command("serve")
@user_errors
def serve_command(
    model: str = typer.Option("smollm2", help="model spec to serve"),
    host: str = typer.Option("127.0.0.1", help="address to bind (loopback by default)"),
    port: int = typer.Option(8000, min=1, max=65535),
    max_batch: int = typer.Option(32, min=1, help="most requests answered in one batched call"),
) -> None:
    """Serve a model over an OpenAI-compatible /v1/chat/completions API."""
    from dialogym.agents.server import serve
    from dialogym.agents.specs import load_agent

    serve(load_agent(model), host=host, port=port, max_batch=max_batch)


#: Flags spelled otherwise than ``--x/--no-x``, in every command whose config has the field:
#: guided moves are the opposite of free ones, not the absence of something.
FLAGS = {"guided": "--guided/--free"}

app.command("play")(
    config_command(play_command, BenchConfig, noun="play", include=PLAY_SETTINGS, defaults=PLAY_DEFAULTS, flags=FLAGS)
)
app.command("bench")(config_command(bench_command, BenchConfig, noun="bench", flags=FLAGS))
app.command("demo")(user_errors(demo_command))
app.command("train")(config_command(train_command, TRAIN_CONFIGS, noun="training", aliases=TRAIN_ALIASES, flags=FLAGS))
app.command("league")(config_command(league_command, LeagueConfig, noun="league", exclude=("game",), flags=FLAGS))


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
