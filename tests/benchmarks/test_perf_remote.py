"""Smoke tests of benchmarks/perf/remote.py: a short run prints every ratio, and bad input is one line."""

import json

import pytest

from dialogym.benchmarks.perf import remote


def test_a_short_remote_run_prints_the_engine_against_the_ideal_the_best_schedule_and_one_at_a_time(capsys, tmp_path):
    out = tmp_path / "remote.json"
    argv = ["--scenarios", "fixed,tail", "--episodes", "6", "--concurrency", "3", "--scale", "0.05", "--reps", "1",
            "--out", str(out)]
    result = remote.main(argv)
    assert json.loads(capsys.readouterr().out) == result == json.loads(out.read_text())
    fixed, tail = result["scenarios"]
    assert (fixed["scenario"], tail["scenario"]) == ("fixed", "tail")
    for row in (fixed, tail):
        assert row["episodes"] == 6 and row["requests"] == 12  # two replies an episode, all valid moves
        assert row["server_peak_in_flight"] == 3 and row["connections"] <= 3
        assert row["engine_s"] > 0 and row["client_cpu_ms_per_request"] > 0
        assert row["vs_ideal"] > 0 and row["vs_best_schedule"] > 0 and row["vs_sequential"] > 0
        assert row["best_schedule_s"] >= row["ideal_s"] - 1e-9  # no schedule beats the ideal
    assert fixed["ideal_s"] == pytest.approx(12 * 0.25 * 0.05 / 3)


def test_the_best_schedule_starts_each_episode_as_a_slot_frees():
    assert remote.best_schedule([1.0, 1.0, 1.0], 2) == 2.0
    assert remote.best_schedule([4.0, 1.0, 1.0, 1.0], 2) == 4.0
    assert remote.best_schedule([], 3) == 0.0


def test_latencies_are_a_function_of_the_request_seed():
    tail = remote.Latency.parse("tail:0.2:2.0:0.1")
    draws = [tail.of(seed) for seed in range(2000)]
    assert draws == [tail.of(seed) for seed in range(2000)]
    assert set(draws) == {0.2, 2.0} and 0.07 < draws.count(2.0) / len(draws) < 0.13
    assert tail.mean == pytest.approx(0.38) and str(tail.scaled(0.5)) == "tail:0.1:1:0.1"


@pytest.mark.parametrize("text", ["fixed", "fixed:x", "tail:0.2:2.0", "tail:0.2:2.0:1.5", "gauss:1"])
def test_a_bad_latency_is_one_clear_error(text):
    with pytest.raises(ValueError, match="write fixed:SECONDS or tail:BASE:SLOW:SHARE"):
        remote.Latency.parse(text)


@pytest.mark.parametrize("argv,fragment", [
    (["--scenarios", "slow"], "--scenarios: unknown ['slow']"),
    (["--concurrency", "0"], "must be positive"),
])
def test_bad_arguments_are_one_line(capsys, argv, fragment):
    with pytest.raises(SystemExit):
        remote.main(argv)
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
