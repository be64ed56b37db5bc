"""Smoke tests of benchmarks/perf/env_step.py: dialogym's step rate, and TextArena's where installed."""

import pytest

from dialogym.benchmarks.perf import env_step


def test_the_env_step_benchmark_counts_ten_chatter_steps_an_episode(capsys, monkeypatch):
    monkeypatch.setattr(env_step.importlib.util, "find_spec", lambda name: None)  # as without textarena
    result = env_step.main(["--episodes", "3", "--reps", "1"])
    assert result["dialogym"]["steps"] == 30 and result["dialogym"]["steps_per_s"] > 0
    assert "not installed" in result["textarena"] and "ratio_vs_fresh" not in result
    assert '"steps_per_s"' in capsys.readouterr().out


def test_textarena_is_measured_fresh_per_episode_and_reused_without_wrappers():
    pytest.importorskip("textarena")
    result = env_step.main(["--episodes", "3", "--reps", "1"])
    for side in ("textarena_fresh", "textarena_raw_reused"):
        assert result[side]["episodes"] == 3 and result[side]["steps"] > 0
    ours = result["dialogym"]["steps_per_s"]
    assert result["ratio_vs_fresh"] == pytest.approx(ours / result["textarena_fresh"]["steps_per_s"], abs=0.006)


def test_bad_arguments_are_one_line(capsys):
    with pytest.raises(SystemExit):
        env_step.main(["--episodes", "0"])
    assert "--episodes and --reps must be at least 1" in capsys.readouterr().err
