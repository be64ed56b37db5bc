"""`dialogym play`: a one-game bench run (same writer, resume and Ray path), and a clear
line when the argument names several games."""

import pytest
from typer.testing import CliRunner

from dialogym.benchmarks.runner import BenchConfig
from dialogym.cli import app
from dialogym.envs import read_episodes


@pytest.mark.parametrize("games", ["all", "reference,negotiation"])
def test_play_refuses_several_games_with_one_line_that_names_them(games, tmp_path):
    result = CliRunner().invoke(app, ["play", games, "--model", "scripted", "--episodes", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "too many values" not in result.output
    assert "play takes one game" in result.output and "dialogym/Reference-v0" in result.output
    assert "dialogym bench --games" in result.output
    assert not (tmp_path / "episodes.jsonl").exists()


def test_play_runs_one_game_and_writes_its_episodes(tmp_path):
    result = CliRunner().invoke(app, ["play", "reference", "--model", "scripted", "--episodes", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 2


def play(tmp_path, *args):
    return CliRunner().invoke(app, ["play", "reference", "--model", "scripted", "--episodes", "3", "--out", str(tmp_path), *args])


def test_play_twice_into_the_same_out_resumes_and_leaves_each_episode_once(tmp_path):
    first = play(tmp_path)
    assert first.exit_code == 0, first.output
    before = (tmp_path / "episodes.jsonl").read_bytes()
    again = play(tmp_path)
    assert again.exit_code == 0, again.output
    assert "3 of 3 episodes were already done; played 0" in again.output
    assert (tmp_path / "episodes.jsonl").read_bytes() == before
    ids = [e.id for e in read_episodes(tmp_path / "episodes.jsonl")]
    assert len(ids) == len(set(ids)) == 3


def test_play_into_a_folder_of_other_settings_is_refused_in_one_line(tmp_path):
    assert play(tmp_path).exit_code == 0
    result = play(tmp_path, "--seed", "4")
    assert result.exit_code == 2 and "other settings: seed (0 -> 4)" in result.output
    assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 3


def test_play_is_a_one_game_bench_run_with_plays_own_defaults(tmp_path):
    assert play(tmp_path).exit_code == 0
    config = BenchConfig.model_validate_json((tmp_path / "bench.json").read_text())
    assert (config.games, config.models, config.mode, config.episodes) == (["dialogym/Reference-v0"], ["scripted"], "selfplay", 3)
    assert (config.temperature, config.max_new_tokens, config.concurrency) == (0.7, 128, 32)


def test_play_with_an_opponent_puts_the_model_in_its_seat_and_the_opponent_in_the_others(tmp_path):
    result = play(tmp_path, "--opponent", "scripted:default", "--seat", "listener")
    assert result.exit_code == 0, result.output
    episodes = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(episodes) == 3
    assert all(e.seats == {"speaker": "scripted:default", "listener": "scripted"} for e in episodes)
    config = BenchConfig.model_validate_json((tmp_path / "bench.json").read_text())
    assert (config.mode, config.seat, config.models) == ("crossplay", "listener", ["scripted", "scripted:default"])


def test_play_with_the_model_as_its_own_opponent_is_self_play(tmp_path):
    assert play(tmp_path, "--opponent", "scripted").exit_code == 0
    assert BenchConfig.model_validate_json((tmp_path / "bench.json").read_text()).mode == "selfplay"
