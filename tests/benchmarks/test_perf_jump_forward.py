"""Smoke test of benchmarks/perf/jump_forward.py on the tiny model."""

import pytest

from dialogym.benchmarks.perf import jump_forward


@pytest.mark.parametrize("adapters", [[], ["--adapters"]])
def test_the_jump_forward_benchmark_times_both_decoders_on_the_same_matches(capsys, monkeypatch, adapters):
    from dialogym.agents.hf import TransformersAgent

    steps = []  # each generate call's max_new_tokens: 1 on the jump path only
    run = TransformersAgent._run
    monkeypatch.setattr(TransformersAgent, "_run", lambda self, prompts, sampling, decoder_of:
                        steps.append(sampling.max_new_tokens) or run(self, prompts, sampling, decoder_of))
    result = jump_forward.main(["--model", "tiny", "--episodes", "2", "--reps", "1", *adapters])
    assert 1 in steps and any(n > 1 for n in steps)  # both decoders ran
    assert result["adapters"] == bool(adapters)
    assert result["identical_episodes"] == "2/2"  # float32 tiny model: the same tokens either way
    assert result["jump_forward"]["seconds"] > 0 and result["step_by_step"]["seconds"] > 0
    assert result["speedup"] == pytest.approx(result["step_by_step"]["seconds"] / result["jump_forward"]["seconds"], abs=0.01)
    assert '"speedup"' in capsys.readouterr().out


def test_the_jump_forward_benchmark_refuses_an_odd_episode_count():
    with pytest.raises(SystemExit):
        jump_forward.main(["--episodes", "3"])
