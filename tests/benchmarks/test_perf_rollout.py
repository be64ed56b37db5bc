"""Smoke test of benchmarks/perf/rollout.py: it runs end to end and prints both ratios."""

import json
import sys

from dialogym.benchmarks.perf import rollout


def test_the_rollout_benchmark_prints_efficiency_and_speedup_ratios(monkeypatch, capsys):
    argv = ["rollout", "--model", "tiny", "--episodes", "4", "--max-new-tokens", "4", "--reps", "1"]
    monkeypatch.setattr(sys, "argv", argv)
    rollout.main()
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "tiny" and result["episodes"] == 4
    assert result["generated_tokens"] > 0
    assert result["rollout_efficiency"] > 0 and result["concurrency_speedup"] > 0
    assert result["engine_s"] > 0 and result["sequential_s"] > 0
