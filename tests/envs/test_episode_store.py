"""The episode store: atomic JSON lines that survive a crash mid-write."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from dialogym.envs import EpisodeWriter, Match, draw_instance, read_episodes
from dialogym.envs.games.reference import ReferenceGame


def finished_episode(seed):
    game = ReferenceGame()
    match = Match(game, draw_instance(game, seed), game_id="dialogym/Reference-v0", seed=seed)
    match.submit("speaker", "CLUE: the shape")
    match.submit("listener", "ANSWER: 1")
    return match.episode({"speaker": "a", "listener": "b"})


def test_written_episodes_read_back_equal(tmp_path):
    path = tmp_path / "episodes.jsonl"
    episodes = [finished_episode(s) for s in range(3)]
    with EpisodeWriter(path) as writer:
        writer.write_many(episodes)
    assert list(read_episodes(path)) == episodes


def test_write_many_appends_a_line_per_episode_and_flushes_them_to_disk_at_once(tmp_path, monkeypatch):
    import dialogym.envs.episode as store

    writes, flushes = [], []
    real_write = os.write
    monkeypatch.setattr(store.os, "write", lambda fd, data: writes.append(bytes(data)) or real_write(fd, data))
    monkeypatch.setattr(store.os, "fsync", flushes.append)
    with EpisodeWriter(tmp_path / "episodes.jsonl") as writer:
        writer.write_many([finished_episode(s) for s in range(3)])
        assert len(flushes) == 1
        writer.write(finished_episode(3))
    assert len(flushes) == 2 and [w.count(b"\n") for w in writes] == [1, 1, 1, 1]  # each line in one write
    assert [e.seed for e in read_episodes(tmp_path / "episodes.jsonl")] == [0, 1, 2, 3]


def test_a_torn_last_line_is_skipped_and_cut_before_the_next_append(tmp_path):
    path = tmp_path / "episodes.jsonl"
    with EpisodeWriter(path) as writer:
        writer.write(finished_episode(1))
    line = finished_episode(2).model_dump_json()
    with path.open("a") as handle:
        handle.write(line[: len(line) // 2])  # what a crash mid-write leaves
    with pytest.warns(UserWarning, match="incomplete last line"):
        assert [e.seed for e in read_episodes(path)] == [1]
    with pytest.warns(UserWarning, match="torn last line"), EpisodeWriter(path) as writer:
        writer.write(finished_episode(3))
    assert [e.seed for e in read_episodes(path)] == [1, 3]


def test_a_writer_killed_mid_run_leaves_every_earlier_episode_readable(tmp_path):
    path = tmp_path / "episodes.jsonl"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_episode_store import finished_episode
        from dialogym.envs import EpisodeWriter
        writer = EpisodeWriter({str(path)!r})
        seed = 0
        while True:
            writer.write(finished_episode(seed))
            seed += 1
            if seed == 5:
                print("ready", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seeds = [e.seed for e in read_episodes(path)]
    assert len(seeds) >= 5 and seeds == list(range(len(seeds)))


def test_a_corrupt_line_in_the_middle_is_a_clear_error(tmp_path):
    path = tmp_path / "episodes.jsonl"
    path.write_text("{not json}\n" + finished_episode(1).model_dump_json() + "\n")
    with pytest.raises(ValueError, match="episodes.jsonl:1: not a valid episode record"):
        list(read_episodes(path))
