"""``dialogym bench --ray``: benchmark shards on Ray workers, written by the one driver, resumable."""

from __future__ import annotations

import functools
import shutil

import pytest
from typer.testing import CliRunner

from dialogym.benchmarks.runner import BenchConfig, run_bench
from dialogym.cli import app
from dialogym.envs import read_episodes

# DiesOnce: scripted play, except that the first worker to reach its n-th call exits hard.
# local_ray: one Ray instance (2 CPUs) for the module; run_on_ray uses it and leaves it open.
from tests.agents.test_distributed import DiesOnce, local_ray  # noqa: F401

cli = CliRunner()
ARGS = ["bench", "--games", "reference,negotiation", "--models", "scripted", "--episodes", "3", "--name", "sharded"]


def outcomes(path):
    return {e.id: (e.status, e.rewards, e.metrics) for e in read_episodes(path)}


@pytest.mark.usefixtures("local_ray")
def test_bench_on_ray_finishes_a_half_done_run_like_the_in_process_one(tmp_path):
    here, there = tmp_path / "here", tmp_path / "there"
    assert cli.invoke(app, [*ARGS, "--out", str(here)]).exit_code == 0
    # a run killed after two episodes: its config and first two episodes
    there.mkdir()
    shutil.copy(here / "bench.json", there / "bench.json")
    lines = (here / "episodes.jsonl").read_bytes().splitlines(keepends=True)
    (there / "episodes.jsonl").write_bytes(b"".join(lines[:2]))

    result = cli.invoke(app, [*ARGS, "--out", str(there), "--ray", "local", "--ray-workers", "2"])

    assert result.exit_code == 0, result.output
    assert "2 of 6 episodes were already done; played 4" in result.output
    after = (there / "episodes.jsonl").read_bytes()
    assert after.startswith(b"".join(lines[:2]))
    ids = [e.id for e in read_episodes(there / "episodes.jsonl")]
    assert len(ids) == len(set(ids)) == 6
    assert outcomes(there / "episodes.jsonl") == outcomes(here / "episodes.jsonl")
    assert (there / "report" / "index.html").exists()


@pytest.mark.usefixtures("local_ray")
def test_a_bench_worker_that_dies_loses_and_duplicates_no_episode(tmp_path):
    marker = tmp_path / "died"
    config = BenchConfig(games=["reference"], models=["scripted"], episodes=6, concurrency=2, ray="local", ray_workers=2)

    _, episodes, played = run_bench(config, tmp_path / "run", agents={"scripted": functools.partial(DiesOnce, str(marker), 2)})

    assert marker.exists()  # a worker did die
    assert played == 6
    ids = [e.id for e in read_episodes(tmp_path / "run" / "episodes.jsonl")]
    assert len(ids) == len(set(ids)) == 6 and ids and set(ids) == {e.id for e in episodes}
    assert all(e.played for e in episodes)


def test_ray_settings_may_change_on_resume_like_concurrency(tmp_path):
    config = BenchConfig(games=["reference"], models=["scripted"], episodes=1)
    run_bench(config, tmp_path)
    _, _, played = run_bench(config.model_copy(update={"ray": "local", "ray_workers": 3}), tmp_path)
    assert played == 0  # nothing left to play, so Ray is never started


def test_ready_agent_objects_are_refused_on_ray_before_it_starts(tmp_path):
    from dialogym.agents.scripted import ScriptedAgent

    config = BenchConfig(games=["reference"], models=["scripted"], episodes=1, ray="local")
    with pytest.raises(ValueError, match="every Ray worker builds its own"):
        run_bench(config, tmp_path, agents={"scripted": ScriptedAgent()})
