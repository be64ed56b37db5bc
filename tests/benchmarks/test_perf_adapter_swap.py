"""Smoke test of benchmarks/perf/adapter_swap.py on the tiny model."""

import pytest

from dialogym.benchmarks.perf import adapter_swap


def test_the_adapter_swap_benchmark_times_both_stores_on_the_same_replies(capsys):
    pytest.importorskip("peft")
    result = adapter_swap.main(["--model", "tiny", "--episodes", "2", "--reps", "1"])
    assert set(result) >= {"shelves_1", "shelves_4", "speedup"} and result["episodes"] == 2
    # the shelves serve the adapters' earlier turns: more prompt tokens come from the store
    assert result["shelves_4"]["reused_prompt_tokens"] > result["shelves_1"]["reused_prompt_tokens"]
    assert result["speedup"] > 0 and '"speedup"' in capsys.readouterr().out


def test_bad_arguments_are_one_line(capsys):
    with pytest.raises(SystemExit):
        adapter_swap.main(["--episodes", "3"])
    assert "--episodes must be even" in capsys.readouterr().err
