"""Smoke test of benchmarks/perf/textarena_engine.py: both loops run and the ratios are printed."""

import json

import pytest

pytest.importorskip("textarena")

from dialogym.benchmarks.perf import textarena_engine  # noqa: E402


def test_the_engine_and_textarenas_loop_run_side_by_side_and_their_ratios_are_printed(capsys, tmp_path):
    textarena_engine.main(["--model", "tiny", "--games", "TicTacToe-v0,KuhnPoker-v0", "--episodes", "2",
                           "--max-new-tokens", "4", "--out", str(tmp_path / "result.json")])
    printed = capsys.readouterr().out
    result = json.loads(printed.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "result.json").read_text())
    assert set(result["games"]) == {"TicTacToe-v0", "KuhnPoker-v0"}
    for row in result["games"].values():
        assert row["dialogym"]["episodes"] == row["textarena"]["episodes"] == 2
        assert row["episodes_ratio"] > 0 and row["replies_ratio"] > 0
    assert "episodes/s" in printed and "tokens/s" in printed and "dialogym bench" in printed
