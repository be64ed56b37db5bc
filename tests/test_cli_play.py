"""`dialogym play`: one game per run, and a clear line when the argument names several."""

import pytest
from typer.testing import CliRunner

from dialogym.cli import app


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
