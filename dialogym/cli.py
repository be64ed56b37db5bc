"""The ``dialogym`` command line.

Commands of other rooms (``bench``, ``train``, ``league``) live next to their code in a
``cli.py`` with a ``register(app)`` function and are added here.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="dialogym",
    help="Multi-agent dialogue games for language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, files) gets wide tables instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

#: Errors that mean "the user asked for something wrong": one clear line, exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, ImportError)


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/bold red] {message}", markup=True, highlight=False)
    raise typer.Exit(2)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn bad arguments, specs and configs into one line instead of a traceback."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dialogym.agents.models import ModelNotAvailable

        try:
            return func(*args, **kwargs)
        except (*USER_ERRORS, ModelNotAvailable) as err:
            text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            fail(str(text))

    return wrapper


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


def summary_table(episodes: list[Any], title: str) -> Table:
    """Per game and agent-in-seat: episodes, % played, mean reward and the game's metrics."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for episode in episodes:
        key = (episode.game, " vs ".join(f"{seat}={agent}" for seat, agent in episode.seats.items()))
        groups.setdefault(key, []).append(episode)
    table = Table(title=title)
    for column in ("game", "seats", "episodes", "% played", "mean reward per seat", "metrics (played episodes)"):
        table.add_column(column)
    for (game, seats), items in sorted(groups.items()):
        played = [e for e in items if e.played]
        rewards = {seat: statistics.fmean(e.rewards[seat] for e in items) for seat in items[0].rewards}
        metric_names = sorted({name for e in played for name in e.metrics})
        metrics = {name: statistics.fmean(e.metrics[name] for e in played if name in e.metrics) for name in metric_names}
        table.add_row(
            game,
            seats,
            str(len(items)),
            f"{100 * len(played) / len(items):.0f}",
            " ".join(f"{s}={v:+.2f}" for s, v in rewards.items()),
            " ".join(f"{n}={v:.2f}" for n, v in metrics.items()) or "-",
        )
    return table


@app.command("play")
@user_errors
def play_command(
    game: str = typer.Argument(..., help="game id or short name, e.g. dialogym/Reference-v0 or reference"),
    model: str = typer.Option("smollm2", help="model spec of the seat(s) under test"),
    opponent: str = typer.Option("", help="model spec for the other seats (default: the model itself)"),
    seat: str = typer.Option("", help="seat the model plays when an opponent is given (default: the first)"),
    episodes: int = typer.Option(8, min=1, help="number of episodes"),
    out: Path = typer.Option(Path("runs/play"), help="folder for episodes.jsonl"),
    level: str = typer.Option("", help="instance level (default: the game's default)"),
    split: str = typer.Option("test", help="instance split: train, test or any"),
    seed: int = typer.Option(0, help="first episode seed; episode i uses seed+i"),
    temperature: float = typer.Option(0.7, min=0.0, help="sampling temperature (0 = greedy)"),
    max_new_tokens: int = typer.Option(128, min=1, help="longest reply (games cap it further)"),
    concurrency: int = typer.Option(32, min=1, help="episodes played at once"),
    ray: str = typer.Option(
        "", "--ray", help="play on Ray: 'local' (a Ray started here), 'auto' or 'ray://host:10001' (default: in-process)"
    ),
    ray_workers: int = typer.Option(2, min=1, help="Ray workers, each holding its own copy of the models"),
) -> None:
    """Play episodes of one game; writes episodes.jsonl and prints a summary."""
    from dialogym.agents.base import Sampling
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
    from dialogym.agents.specs import load_agent, parse_spec
    from dialogym.envs import EpisodeWriter, resolve_ids, spec

    game_ids = resolve_ids(game)
    if len(game_ids) != 1:
        named = f"names {len(game_ids)} games ({', '.join(game_ids)})" if game_ids else "names no game"
        raise ValueError(
            f"play takes one game, but {game!r} {named}; play them one at a time, "
            f"or run several with: dialogym bench --games {game!r} --models {model!r}"
        )
    (game_id,) = game_ids
    roles = spec(game_id).game_cls.roles
    parse_spec(model)
    if opponent:
        parse_spec(opponent)
    if seat and seat not in roles:
        raise ValueError(f"{game_id} has no seat {seat!r}; seats are {list(roles)}")
    model_seat = seat or roles[0]
    seats = {r: (model if (not opponent or r == model_seat) else opponent) for r in roles}
    specs = [
        EpisodeSpec(game=game_id, seed=seed + i, seats=seats, level=level or None, split=split) for i in range(episodes)
    ]
    sampling = Sampling(temperature=temperature, max_new_tokens=max_new_tokens)
    path = out / "episodes.jsonl"
    if ray:
        from dialogym.agents.distributed import run_on_ray
        from dialogym.agents.rollout import RolloutStats

        started = time.perf_counter()
        with EpisodeWriter(path) as writer:
            records = run_on_ray(
                specs, {name: name for name in set(seats.values())}, address=ray, num_workers=ray_workers,
                shard_size=min(concurrency, (episodes + ray_workers - 1) // ray_workers), writer=writer,
                sampling=sampling, progress=sys.stderr.isatty(),
            )
        stats = RolloutStats(
            episodes=len(records), seconds=time.perf_counter() - started,
            generated_tokens=sum(len(t.token_ids or ()) for e in records for t in e.turns),
        )
    else:
        agents = {name: load_agent(name) for name in set(seats.values())}
        engine = RolloutEngine(agents, sampling=sampling, max_concurrent=concurrency, progress=sys.stderr.isatty())
        with EpisodeWriter(path) as writer:
            records = engine.run(specs, writer=writer)
        stats = engine.stats
    console.print(summary_table(records, f"{game_id}: {episodes} episodes"))
    console.print(
        f"{stats.episodes} episodes in {stats.seconds:.1f}s, {stats.generated_tokens} generated tokens "
        f"({stats.tokens_per_s:.0f} tok/s); episodes written to {path}"
    )


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


@app.command("demo")
@user_errors
def demo_command(
    episodes: int = typer.Option(3, min=1, help="test instances per game"),
    model: str = typer.Option("smollm2", help="model spec that plays self-play beside the scripted players"),
    out: Path = typer.Option(Path("runs/demo"), help="run folder; a rerun reuses its finished episodes"),
) -> None:
    """The main job: self-play of the embedded default model and the scripted players on every
    registered game (test split, greedy), then the leaderboard and the HTML report."""
    import shutil

    from dialogym.benchmarks.cli import bench, demo_config, is_demo_config
    from dialogym.benchmarks.runner import prepare_folder, stored_config

    config = demo_config(episodes, model)
    try:
        prepare_folder(config, out)
    except ValueError:
        # The demo replaces only a run it made itself (other --episodes/--model, or made before a
        # game was added); any other run in ``out`` is the user's and is left alone.
        stored = stored_config(out)  # raises its own one-line error when bench.json is not a bench config
        if stored is None:
            raise
        if not is_demo_config(stored, config):
            raise ValueError(
                f"{out} holds a bench run that `dialogym demo` did not make; it is left as it is: "
                "give the demo another --out"
            ) from None
        console.print(f"{out} holds a demo run of other settings; starting afresh")
        shutil.rmtree(out)
    bench(config, out)


for _module in ("dialogym.benchmarks.cli", "dialogym.trainers.cli", "dialogym.trainers.league_cli"):
    try:
        importlib.import_module(_module).register(app)
    except ModuleNotFoundError as _err:
        if _err.name != _module:
            raise


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
