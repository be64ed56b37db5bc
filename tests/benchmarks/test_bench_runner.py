"""The benchmark runner: pairings, shared instances, resumption, config checks, the score table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dialogym.benchmarks.runner import (
    BenchConfig,
    crossplay_assignments,
    plan,
    run_bench,
    selfplay_assignments,
)
from dialogym.cli import app
from dialogym.cli_bench import demo_config
from dialogym.envs import read_episodes, registered

REF = "dialogym/Reference-v0"
DEBATE = "dialogym/Debate-v0"
cli = CliRunner()


def one_error_line(output: str) -> bool:
    """One error message and no traceback (rich may wrap the line at the console width)."""
    return output.startswith("error:") and output.count("error:") == 1 and "Traceback" not in output


def test_selfplay_puts_one_model_in_every_seat():
    assert selfplay_assignments(["a", "b"], ("x", "y", "z")) == [
        ("a", {"x": "a", "y": "a", "z": "a"}),
        ("b", {"x": "b", "y": "b", "z": "b"}),
    ]


def test_crossplay_with_two_seats_plays_both_orders_of_every_pair():
    pairs = crossplay_assignments(["a", "b", "c"], ("speaker", "listener"))
    orders = [(s["speaker"], s["listener"]) for _, s in pairs]
    assert sorted(orders) == sorted([("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c"), ("c", "b")])
    assert ("a vs b", {"speaker": "a", "listener": "b"}) in pairs


@pytest.mark.parametrize("n_seats", [2, 3, 4])
def test_crossplay_gives_every_model_every_seat_equally_often(n_seats):
    roles = tuple(f"s{i}" for i in range(n_seats))
    pairs = crossplay_assignments(["a", "b"], roles)
    assert len({tuple(s.values()) for _, s in pairs}) == len(pairs)  # no assignment twice
    for _, seats in pairs:
        assert set(seats.values()) == {"a", "b"}  # both models play in every episode
    for role in roles:
        held = Counter(seats[role] for _, seats in pairs)
        assert held["a"] == held["b"]


def test_crossplay_with_a_seat_tests_the_first_model_in_that_seat_against_each_other_model():
    assert crossplay_assignments(["a", "b", "c"], ("x", "y", "z"), seat="y") == [
        ("b vs a vs b", {"x": "b", "y": "a", "z": "b"}),
        ("c vs a vs c", {"x": "c", "y": "a", "z": "c"}),
    ]


def test_a_seat_is_a_crossplay_setting_and_must_be_one_of_the_games():
    with pytest.raises(ValueError, match="seat 'x' is a crossplay setting"):
        BenchConfig(models=["scripted"], seat="x")
    config = BenchConfig(games=[REF], models=["scripted", "tiny"], mode="crossplay", seat="judge").resolved(Path("x"))
    with pytest.raises(ValueError, match="has no seat 'judge'; seats are"):
        plan(config)


def test_crossplay_needs_two_models():
    with pytest.raises(ValueError, match="at least two models"):
        crossplay_assignments(["a"], ("x", "y"))


def test_every_pairing_plays_the_same_instances_with_the_same_seeds():
    config = BenchConfig(games=[REF, DEBATE], models=["scripted", "tiny"], mode="crossplay", episodes=3).resolved(Path("x"))
    specs = plan(config)
    for game in (REF, DEBATE):
        by_pairing: dict[str, list] = {}
        for s in (s for s in specs if s.game == game):
            by_pairing.setdefault(s.tags["pairing"], []).append((s.seed, json.dumps(s.instance, sort_keys=True)))
        assert len(by_pairing) == (2 if game == REF else 6)
        assert len({tuple(v) for v in by_pairing.values()}) == 1
        assert all(len(v) == 3 for v in by_pairing.values())


def test_all_means_every_registered_game():
    config = BenchConfig(games=["all"], models=["scripted"], episodes=1).resolved(Path("x"))
    assert config.games == registered()
    assert {s.game for s in plan(config)} == set(registered())


def test_a_scripted_variant_a_game_lacks_is_refused_before_anything_is_played(tmp_path):
    result = cli.invoke(app, ["bench", "--games", "reference", "--models", "scripted:fair", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "has no scripted player 'scripted:fair' (it has: scripted:default)" in result.output
    assert not list(tmp_path.iterdir())


def test_config_file_sets_what_flags_leave_unset_and_flags_win(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text("games: reference\nmodels: [scripted, tiny]\nmode: crossplay\nepisodes: 5\nmax_new_tokens: 4\n")
    result = cli.invoke(app, ["bench", "--config", str(path), "--episodes", "1", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    stored = BenchConfig.model_validate_json((tmp_path / "a" / "bench.json").read_text())
    assert (stored.games, stored.models, stored.mode, stored.episodes) == ([REF], ["scripted", "tiny"], "crossplay", 1)
    as_json = tmp_path / "bench.json"
    as_json.write_text(json.dumps({"models": "scripted", "games": "reference", "temperature": 0.5, "episodes": 1}))
    result = cli.invoke(app, ["bench", "--config-file", str(as_json), "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert BenchConfig.model_validate_json((tmp_path / "b" / "bench.json").read_text()).temperature == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mode: tournament\n", "bad bench setting 'mode'"),
        ("episodes: 0\n", "bad bench setting 'episodes'"),
        ("modles: [tiny]\n", "unknown bench option(s) ['modles']; known: ["),
        ("models: [gpt9]\n", "unknown model kind"),
        ("games: [reference\n", "not valid yaml"),
        ("- a list\n", "must be a mapping"),
    ],
)
def test_a_bad_config_file_is_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = cli.invoke(app, ["bench", "--config", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert message in result.output
    assert one_error_line(result.output)


def test_resuming_into_a_folder_of_another_config_is_refused_in_one_line(tmp_path):
    out = tmp_path / "run"
    first = cli.invoke(app, ["bench", "--games", "reference", "--models", "scripted", "--episodes", "2", "--out", str(out)])
    assert first.exit_code == 0, first.output
    second = cli.invoke(app, ["bench", "--games", "reference", "--models", "scripted", "--episodes", "3", "--out", str(out)])
    assert second.exit_code == 2
    assert "other settings: episodes (2 -> 3)" in second.output
    assert one_error_line(second.output)


def test_a_finished_run_rerun_plays_nothing_and_keeps_its_episodes(tmp_path):
    config = BenchConfig(games=["reference"], models=["scripted"], episodes=3)
    _, episodes, played = run_bench(config, tmp_path)
    assert played == 3
    before = (tmp_path / "episodes.jsonl").read_bytes()
    _, again, played_again = run_bench(config, tmp_path)
    assert played_again == 0
    assert [e.id for e in again] == [e.id for e in episodes]
    assert (tmp_path / "episodes.jsonl").read_bytes() == before


SLOW_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dialogym.agents.scripted import ScriptedAgent
    from dialogym.benchmarks.runner import BenchConfig, run_bench

    class SlowScripted(ScriptedAgent):
        def act(self, requests):
            time.sleep(0.15)
            return super().act(requests)

    config = BenchConfig(games=["reference", "negotiation"], models=["scripted"], episodes=6, concurrency=2)
    run_bench(config, Path(sys.argv[1]), agents={"scripted": SlowScripted()})
    """
)


def test_a_killed_run_restarted_with_the_same_command_finishes_without_repeating_or_losing_episodes(tmp_path):
    out = tmp_path / "run"
    path = out / "episodes.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(out)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the slow run wrote no episodes in 30 s")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = path.read_bytes()
    lines_before = before.count(b"\n")
    assert 3 <= lines_before < 12
    # What a kill in the middle of a write leaves: a torn last line.
    with path.open("ab") as handle:
        handle.write(b'{"id": "torn", "game": "dialog')

    with pytest.warns(UserWarning, match="torn last line"):
        result = cli.invoke(
            app,
            ["bench", "--games", "reference,negotiation", "--models", "scripted", "--episodes", "6", "--concurrency", "2",
             "--out", str(out)],
        )
    assert result.exit_code == 0, result.output
    assert f"{lines_before} of 12 episodes were already done" in result.output
    after = path.read_bytes()
    assert after.startswith(before)  # finished episodes are kept byte for byte; the torn tail is gone
    ids = [e.id for e in read_episodes(path)]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert "torn" not in ids
    frame = pd.read_csv(out / "scores.csv")
    assert len(frame) == 12 and frame["episode_id"].is_unique


def test_crossplay_run_writes_a_tidy_table_pandas_reads_and_a_report(tmp_path):
    result = cli.invoke(
        app,
        ["bench", "--games", "reference", "--models", "scripted,tiny", "--mode", "crossplay", "--episodes", "2",
         "--max-new-tokens", "8", "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "scores.csv")
    parquet = pd.read_parquet(tmp_path / "scores.parquet")
    # 2 instances x 2 seat orders, one row per model in each episode
    assert len(frame) == len(parquet) == 8
    assert set(frame["model"]) == {"scripted", "tiny"}
    assert set(frame["pairing"]) == {"scripted vs tiny", "tiny vs scripted"}
    assert frame.groupby("episode_id").size().eq(2).all()
    assert {"played", "aborted_by_model", "quality", "reward", "result"} <= set(frame.columns)
    assert frame["result"].isin([0.0, 0.5, 1.0]).all()  # one opponent per episode: every row has a result
    played, aborted = frame[frame["played"]], frame[~frame["played"]]
    if len(played):  # (greedy tiny at 8 tokens aborts every episode today)
        assert played["quality"].between(0, 100).all() and played["metric_success"].notna().all()
    assert aborted["quality"].isna().all()
    # an aborted episode is lost by the model whose invalid moves aborted it, and won by the other
    assert (aborted.loc[aborted["aborted_by_model"], "result"] == 0.0).all()
    assert (aborted.loc[~aborted["aborted_by_model"], "result"] == 1.0).all()
    assert aborted.groupby("episode_id")["aborted_by_model"].sum().eq(1).all()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["model"] for r in summary["scores"] if r["game"] == "all"} == {"scripted", "tiny"}
    ratings = summary["ratings"]["all"]
    assert set(ratings) == {"scripted", "tiny"}
    wins = frame.groupby("model")["result"].mean()
    if wins["scripted"] != wins["tiny"]:  # the model with more wins is rated higher
        assert (ratings["scripted"]["mu"] > ratings["tiny"]["mu"]) == (wins["scripted"] > wins["tiny"])
    assert (tmp_path / "report" / "index.html").exists()
    assert "rating" in result.output and "report:" in result.output


def test_demo_plays_the_model_free_and_guided_beside_the_scripted_players():
    assert demo_config(1, "tiny").models == ["tiny", "tiny+guided", "scripted"]
    assert demo_config(1, "tiny+guided").models == ["tiny+guided", "scripted"]


@pytest.mark.parametrize(
    ("models", "made_by_demo"),
    [
        (["smollm2", "smollm2+guided", "scripted"], True),
        (["smollm2", "scripted"], True),  # a demo from before it played guided moves
        (["smollm2", "tiny", "scripted"], False),
        (["smollm2+guided", "smollm2", "scripted"], False),
        (["smollm2", "smollm2+guided"], False),
    ],
)
def test_a_demo_folder_is_known_by_one_model_free_and_guided_then_scripted(models, made_by_demo):
    from dialogym.cli_bench import is_demo_config

    stored = demo_config(5, "tiny").model_copy(update={"models": models})
    assert is_demo_config(stored, demo_config(1, "tiny")) is made_by_demo


def test_demo_plays_the_newest_version_of_every_game_in_self_play_and_replaces_a_stale_demo_folder(tmp_path):
    from dialogym.cli_bench import builtin_latest

    out = tmp_path / "demo"
    out.mkdir()
    # what a demo with 2 episodes left before the other games were added
    stale = demo_config(2, "tiny").model_copy(update={"games": [REF]})
    (out / "bench.json").write_text(stale.model_dump_json())
    result = cli.invoke(app, ["demo", "--model", "tiny", "--episodes", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "holds a demo run of other settings; starting afresh" in result.output
    episodes = list(read_episodes(out / "episodes.jsonl"))
    latest = builtin_latest()
    assert {e.game for e in episodes} == set(latest) and "dialogym/Negotiation-v1" in latest
    assert all(game.startswith("dialogym/") for game in latest)  # plug-in games (TextArena's) are not the demo's
    n = len(latest)
    assert Counter(e.tags["pairing"] for e in episodes) == {"tiny": n, "tiny+guided": n, "scripted": n}
    assert all(len(set(e.seats.values())) == 1 for e in episodes)
    assert "report:" in result.output and (out / "report" / "index.html").exists()


def test_demo_leaves_a_bench_run_it_did_not_make_alone(tmp_path):
    out = tmp_path / "mybench"
    run_bench(BenchConfig(games=["reference"], models=["scripted"], episodes=1), out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    result = cli.invoke(app, ["demo", "--model", "tiny", "--episodes", "1", "--out", str(out)])
    assert result.exit_code == 2
    assert "did not make" in result.output and one_error_line(result.output)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_demo_leaves_a_folder_with_a_foreign_bench_json_alone(tmp_path):
    (tmp_path / "bench.json").write_text('{"who": "someone else"}')
    result = cli.invoke(app, ["demo", "--model", "tiny", "--episodes", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not a bench config" in result.output and one_error_line(result.output)
    assert (tmp_path / "bench.json").read_text() == '{"who": "someone else"}'


@pytest.mark.parametrize("games", [",", " , ", ""])
def test_an_empty_game_list_is_refused_before_anything_is_played(tmp_path, games):
    result = cli.invoke(app, ["bench", "--games", games, "--models", "scripted", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "bad bench setting 'games': name at least one game" in result.output and one_error_line(result.output)
    assert not (tmp_path / "run").exists()


def test_a_config_path_that_is_a_folder_is_one_clear_line(tmp_path):
    result = cli.invoke(app, ["bench", "--config", str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "cannot read the bench config (Is a directory)" in result.output and one_error_line(result.output)
