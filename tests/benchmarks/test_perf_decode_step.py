import json

import pytest

from dialogym.benchmarks.perf import decode_step


def test_the_decode_step_benchmark_prints_both_forms_and_their_ratio_per_batch(capsys):
    result = decode_step.main(["--model", "tiny", "--batches", "1,3", "--reps", "1"])
    printed = json.loads(capsys.readouterr().out)
    assert printed == result and [row["batch"] for row in result["steps"]] == [1, 3]
    for row in result["steps"]:
        assert row["linear_ms"] > 0 and row["transposed_ms"] > 0
        assert row["speedup"] == pytest.approx(row["linear_ms"] / row["transposed_ms"], rel=0.2)
    assert result["skinny_gain"] > 0


def test_bad_batch_sizes_are_one_clear_error(capsys):
    with pytest.raises(SystemExit):
        decode_step.main(["--model", "tiny", "--batches", "1,x"])
    assert "--batches takes whole numbers" in capsys.readouterr().err
