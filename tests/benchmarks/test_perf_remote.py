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
        assert 0 < row["ceiling_vs_ideal"] <= 1 and row["longest_episode_s"] > 0
        assert row["vs_ideal"] <= row["ceiling_vs_ideal"] + 0.002  # nor the longest episode
    assert fixed["ideal_s"] == pytest.approx(12 * 0.25 * 0.05 / 3)


def test_the_best_schedule_starts_each_episode_as_a_slot_frees():
    assert remote.best_schedule([1.0, 1.0, 1.0], 2) == 2.0
    assert remote.best_schedule([4.0, 1.0, 1.0, 1.0], 2) == 4.0
    assert remote.best_schedule([], 3) == 0.0


def test_the_ceiling_is_the_longest_episode_or_the_ideal_whichever_is_longer():
    assert remote.ceiling([4.0, 1.0, 1.0, 1.0], 2) == 4.0  # the 4 s episode, though the ideal is 3.5 s
    assert remote.ceiling([1.0, 1.0, 1.0], 2) == 1.5  # the ideal
    assert remote.ceiling([], 3) == 0.0


def test_no_engine_reaches_0_8_of_the_ideal_on_the_tail_scenarios_latencies(tmp_path):
    """The benchmark's 256 tail episodes hold one whose two requests are both slow (4.0 s),
    longer than the 3.03 s ideal: even an engine that knew every latency stays below 0.76."""
    from dialogym.benchmarks.runner import BenchConfig, plan
    from dialogym.envs import reply_seed

    scenario, latency = remote.SCENARIOS["tail"], remote.Latency.parse(remote.SCENARIOS["tail"].latency)
    config = BenchConfig(games=[remote.GAME], models=["openai:http://127.0.0.1:1/v1#latency"],
                         episodes=scenario.episodes, concurrency=64, temperature=0.7)
    specs = plan(config.resolved(tmp_path))
    # a referential episode of valid moves: the speaker's reply (turn 0, seat 0), then the listener's
    durations = [latency.of(reply_seed(s.seed, s.play, 0, 0)) + latency.of(reply_seed(s.seed, s.play, 1, 1)) for s in specs]
    ideal = sum(durations) / 64
    assert max(durations) == 4.0 and ideal == pytest.approx(3.034, abs=1e-3)
    assert ideal / remote.ceiling(durations, 64) == pytest.approx(0.759, abs=1e-3)
    assert ideal / remote.best_schedule(durations, 64) == pytest.approx(0.660, abs=1e-3)


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
