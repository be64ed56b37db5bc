"""Smoke tests of benchmarks/perf/rollout.py: it runs end to end and prints its ratios and MFU."""

import json
import sys

import pytest

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


def test_the_rollout_benchmark_reports_mfu_against_a_matmul_peak_measured_in_the_run(monkeypatch, capsys):
    argv = ["rollout", "--model", "tiny", "--game", "dialogym/Negotiation-v0", "--episodes", "2", "--max-new-tokens", "3",
            "--reps", "1", "--skip-sequential"]
    monkeypatch.setattr(sys, "argv", argv)
    rollout.main()
    result = json.loads(capsys.readouterr().out)
    assert result["game"] == "dialogym/Negotiation-v0"
    assert result["model_flops"] > 0 and result["matmul_peak_flops_per_s"] > 0
    assert 0 < result["rollout_mfu"] < 1
    # later turns of a seat start from its earlier turns' keys and values
    assert 0 < result["prompt_tokens_run"] < result["prompt_tokens"]
    assert result["model_flops_per_s"] == pytest.approx(result["rollout_mfu"] * result["matmul_peak_flops_per_s"], rel=1e-2)


def test_model_flops_count_a_shared_prefix_once_and_kept_or_padded_positions_never():
    from dialogym.agents.models import tiny_model

    model, _ = tiny_model()
    config, vocab = model.config, model.get_input_embeddings().weight.shape[0]
    non_embedding = sum(p.numel() for p in model.parameters()) - model.get_input_embeddings().weight.numel()
    layers, width = config.num_hidden_layers, config.hidden_size  # 4 heads x 16

    # one row, prompt 3, reply 2: tokens 1..4 are run (the last reply token never is)
    expected = 2 * non_embedding * 4 + 4 * layers * width * (1 + 2 + 3 + 4) + 2 * config.hidden_size * vocab * 2
    assert rollout.model_flops(model, [([(0, 3)], [3], [2])]) == expected
    # two rows sharing a 2-token prefix: the prefix is run once
    shared = rollout.model_flops(model, [([(0, 2), (2, 3), (2, 3)], [3, 3], [1, 1])])
    alone = rollout.model_flops(model, [([(0, 3)], [3], [1])])
    prefix = 2 * non_embedding * 2 + 4 * layers * width * (1 + 2)
    assert shared == 2 * alone - prefix
    # a row whose first 2 prompt tokens came with keys and values from an earlier call
    assert rollout.model_flops(model, [([(2, 3)], [3], [1])]) == alone - prefix
