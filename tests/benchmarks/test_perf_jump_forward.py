"""Smoke test of benchmarks/perf/jump_forward.py on the tiny model."""

import pytest

from dialogym.benchmarks.perf import jump_forward


@pytest.mark.parametrize("adapters", [[], ["--adapters"]])
def test_the_jump_forward_benchmark_times_both_decoders_on_the_same_matches(capsys, adapters):
    result = jump_forward.main(["--model", "tiny", "--episodes", "2", "--reps", "1", *adapters])
    assert result["adapters"] == bool(adapters)
    assert result["identical_episodes"] == "2/2"  # float32 tiny model: the same tokens either way
    assert result["jump_forward"]["seconds"] > 0 and result["step_by_step"]["seconds"] > 0
    assert result["speedup"] == pytest.approx(result["step_by_step"]["seconds"] / result["jump_forward"]["seconds"], abs=0.01)
    assert '"speedup"' in capsys.readouterr().out


def test_the_jump_forward_benchmark_refuses_an_odd_episode_count():
    with pytest.raises(SystemExit):
        jump_forward.main(["--episodes", "3"])
