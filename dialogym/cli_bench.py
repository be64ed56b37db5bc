"""``dialogym bench``, ``play`` and ``demo``: runs of the one benchmark runner
(:mod:`dialogym.benchmarks.runner`), so all three write, resume and shard on Ray alike."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from dialogym.benchmarks.runner import BenchConfig, guided_spec, prepare_folder, run_bench, stored_config
from dialogym.cli_config import Settings
from dialogym.cli_output import console, out_folder, too_many_episodes


def bench(config: BenchConfig, out: Path, *, progress: bool | None = None, agents: dict[str, Any] | None = None) -> Path:
    """Run (or finish) a benchmark in ``out``, write tables and the report, print the leaderboard.

    Returns the path of the HTML report.
    """
    from dialogym.benchmarks.report import (
        games_table,
        leaderboard_table,
        metagame_table,
        summarise,
        write_report,
        write_tables,
    )

    progress = sys.stderr.isatty() if progress is None else progress
    config, episodes, played_now = run_bench(config, out, agents=agents, progress=progress)
    if played_now < len(episodes):
        console.print(f"{out}: {len(episodes) - played_now} of {len(episodes)} episodes were already done; played {played_now}")
    summary = summarise(config, episodes)
    write_tables(summary, out)
    report = write_report(summary, episodes, out / "report")
    console.print(games_table(summary))
    console.print(leaderboard_table(summary))
    meta = metagame_table(summary)
    if meta is not None:
        console.print(meta)
    console.print(f"episodes: {out / 'episodes.jsonl'}; scores: {out / 'scores.csv'}; report: {report}")
    return report


def bench_command(
    settings: Settings,
    out: Path = typer.Option(Path("runs/bench"), parser=out_folder, help="run folder; rerunning the same command resumes it"),
) -> None:
    """Benchmark models on games: scores with intervals, ratings, a terminal leaderboard and an HTML report."""
    bench(settings.build(BenchConfig), out)


# --------------------------------------------------------------------------- play
#: The BenchConfig settings ``play`` has options for, and its defaults where they differ
#: from a benchmark's: a quick look at sampled play rather than a greedy score.
PLAY_SETTINGS = (
    "guided", "episodes", "split", "level", "seed", "temperature", "max_new_tokens", "concurrency", "ray", "ray_workers"
)
PLAY_DEFAULTS = {"temperature": 0.7, "max_new_tokens": 128, "concurrency": 32}


def play_config(settings: Settings, game: str, model: str, opponent: str, seat: str) -> BenchConfig:
    """The bench run ``play`` is: ``game`` alone; ``model`` in self-play, or with an
    ``opponent`` cross-play with ``model`` in ``seat`` (default: the first) and the opponent
    in every other seat."""
    from dialogym.agents.specs import parse_spec
    from dialogym.envs import resolve_ids, spec

    game_ids = resolve_ids(game)
    if len(game_ids) != 1:
        named = f"names {len(game_ids)} games ({', '.join(game_ids)})" if game_ids else "names no game"
        raise ValueError(
            f"play takes one game, but {game!r} {named}; play them one at a time, "
            f"or run several with: dialogym bench --games {game!r} --models {model!r}"
        )
    (game_id,) = game_ids
    roles = spec(game_id).game_cls.roles
    parse_spec(model)  # a bad spec is refused in the words of --model and --opponent (the config's are 'models')
    if opponent:
        parse_spec(opponent)
    if seat and seat not in roles:
        raise ValueError(f"{game_id} has no seat {seat!r}; seats are {list(roles)}")
    if not opponent or opponent == model:
        return settings.build(BenchConfig, games=[game_id], models=[model], mode="selfplay")
    return settings.build(
        BenchConfig, games=[game_id], models=[model, opponent], mode="crossplay", seat=seat or roles[0]
    )


def play_command(
    settings: Settings,
    game: str = typer.Argument(..., help="game id or short name, e.g. dialogym/Reference-v0 or reference"),
    model: str = typer.Option("smollm2", help="model spec of the seat(s) under test"),
    opponent: str = typer.Option("", help="model spec for the other seats (default: the model itself)"),
    seat: str = typer.Option("", help="seat the model plays when an opponent is given (default: the first)"),
    out: Path = typer.Option(
        Path("runs/play"), parser=out_folder, help="folder for episodes.jsonl; rerunning the same command resumes it"
    ),
) -> None:
    """Play episodes of one game (a one-game bench run); writes episodes.jsonl and prints a summary."""
    from dialogym.benchmarks.report import summary_table

    config = play_config(settings, game, model, opponent, seat)
    generated = 0

    def count_tokens(episode: Any) -> None:
        nonlocal generated
        generated += sum(len(turn.token_ids or ()) for turn in episode.turns)

    started = time.perf_counter()
    config, episodes, played_now = run_bench(config, out, progress=sys.stderr.isatty(), on_episode=count_tokens)
    seconds = time.perf_counter() - started
    (game_id,) = config.games
    console.print(summary_table(episodes, f"{game_id}: {len(episodes)} episodes"))
    if played_now < len(episodes):
        console.print(f"{out}: {len(episodes) - played_now} of {len(episodes)} episodes were already done; played {played_now}")
    rate = generated / seconds if seconds else 0.0
    # backends that report no token ids (HTTP servers) leave the token count out, not at 0
    tokens = f", {generated} generated tokens ({rate:.0f} tok/s)" if generated else ""
    console.print(f"{played_now} episodes in {seconds:.1f}s{tokens}; episodes written to {out / 'episodes.jsonl'}")


# --------------------------------------------------------------------------- demo
def demo_config(episodes: int, model: str) -> BenchConfig:
    """What ``dialogym demo`` runs: ``model`` free and guided (``model+guided``) and the scripted
    players, each in self-play on the newest version of every built-in game (``dialogym/``; games
    of other packages, TextArena's among them, are left to ``dialogym bench``). Guided replies keep to each move's format (in the
    games that write a move grammar), so beside the free run they tell format-following and
    decision quality apart."""
    return BenchConfig(
        name="demo", games=builtin_latest(), models=list(dict.fromkeys([model, guided_spec(model), "scripted"])), mode="selfplay",
        episodes=episodes, split="test", temperature=0.0, max_new_tokens=48,
    )


def builtin_latest() -> list[str]:
    """The newest version of every built-in game (the ``dialogym/`` namespace)."""
    from dialogym.envs.registry import latest_versions, registered

    return latest_versions([game_id for game_id in registered() if game_id.startswith("dialogym/")])


def is_demo_config(stored: BenchConfig, demo: BenchConfig) -> bool:
    """Whether ``stored`` (a run folder's config) was written by ``dialogym demo``: every setting
    the demo fixes matches ``demo`` and its models end with ``scripted`` after one model (free,
    and guided since the demo plays both); only ``--episodes``, ``--model`` and the game list
    (games get added) may differ."""
    fixed = {"name", "mode", "seat", "split", "level", "seed", "temperature", "max_new_tokens"}
    *models, last = stored.models
    one_model = bool(models) and models in ([models[0]], [models[0], stored.specs[models[0]].as_guided().raw])
    return stored.model_dump(include=fixed) == demo.model_dump(include=fixed) and one_model and last == "scripted"


def demo_command(
    episodes: int = typer.Option(3, min=1, help="test instances per game"),
    model: str = typer.Option("smollm2", help="model spec that plays self-play, free and guided, beside the scripted players"),
    out: Path = typer.Option(Path("runs/demo"), parser=out_folder, help="run folder; a rerun reuses its finished episodes"),
) -> None:
    """The main job: self-play of the embedded default model, free and with guided moves, and of
    the scripted players on every registered game (test split, greedy), then the leaderboard and
    the HTML report."""
    import shutil

    if too_many_episodes(episodes, "test instances per game"):
        raise ValueError(f"--episodes: {too_many_episodes(episodes, 'test instances per game')}")
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
