"""Crash-safe writes (envs/files.py): a whole file is replaced or left as it was, readable by
all; the folder swap is tested with the checkpoint pool (tests/trainers/test_league_pool.py)."""

import json
import math
import os
import stat

import pytest

from dialogym.envs import files


def test_an_atomic_write_replaces_the_whole_file_readable_by_all_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out" / "summary.json"
    files.atomic_write_text(path, "old")
    files.atomic_write_json(path, {"score": 1.5})
    assert json.loads(path.read_text()) == {"score": 1.5} and path.read_text().endswith("}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["summary.json"]


def test_a_failed_write_leaves_the_old_file_and_clears_the_temporaries_of_earlier_killed_ones(tmp_path, monkeypatch):
    path = tmp_path / "scores.csv"
    files.atomic_write_text(path, "old")
    (tmp_path / ".scores.csv.k1ll3d.tmp").write_text("half")  # what a kill -9 before the rename leaves
    (tmp_path / ".notes.tmp").write_text("not ours")

    def failing(src, dst):
        raise OSError("disk died")

    monkeypatch.setattr(files.os, "replace", failing)
    with pytest.raises(OSError, match="disk died"):
        files.atomic_write_text(path, "new")
    monkeypatch.undo()
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == [".notes.tmp", "scores.csv"]


def test_strict_json_refuses_nan_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError):
        files.atomic_write_json(tmp_path / "summary.json", {"score": math.nan}, allow_nan=False)
    assert not list(tmp_path.iterdir())


def test_appended_lines_follow_a_torn_tail_only_once_it_is_cut(tmp_path):
    path = tmp_path / "matches.jsonl"
    files.append_text(path, '{"a": 1}\n{"a"')
    with pytest.warns(UserWarning, match="torn last line"):
        files.truncate_torn_tail(path)
    files.append_text(path, '{"a": 2}\n')
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n'
