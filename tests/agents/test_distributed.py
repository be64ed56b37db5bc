"""Distributed rollouts on Ray: same episodes as in-process, each spec written once, crashes retried."""

import functools
import os
import sys

import pytest

from dialogym.agents.base import Sampling
from dialogym.agents.distributed import import_ray, run_on_ray
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.scripted import ScriptedAgent
from dialogym.agents.specs import load_agent
from dialogym.envs import EpisodeWriter, read_episodes

GREEDY = Sampling(temperature=0.0, max_new_tokens=8)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def reference_specs(n, seats):
    return [EpisodeSpec(game="dialogym/Reference-v0", seed=i, seats=seats) for i in range(n)]


class DiesOnce:
    """Scripted play, except that the first process to reach its ``after``-th call exits hard.

    The marker file makes "once" hold across processes: the fresh actor that replays the
    lost shard finds it and plays on. Without a marker every process dies.
    """

    name = "dies-once"

    def __init__(self, marker, after):
        self.marker, self.after, self.calls = marker, after, 0
        self.scripted = ScriptedAgent()

    def act(self, requests):
        self.calls += 1
        if self.calls >= self.after and self.marker is None:
            os._exit(1)
        if self.calls >= self.after:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os._exit(1)
        return self.scripted.act(requests)


@pytest.mark.slow  # about 20 s on 2 cores: every worker imports transformers and builds the tiny model
def test_sharded_rollout_equals_in_process_rollout(local_ray, tmp_path):
    specs = reference_specs(8, {"speaker": "tiny", "listener": "scripted"})
    agents = {"tiny": "tiny", "scripted": "scripted"}
    local = RolloutEngine({name: load_agent(s) for name, s in agents.items()}, sampling=GREEDY).run(specs)

    with EpisodeWriter(tmp_path / "episodes.jsonl") as writer:
        remote = run_on_ray(specs, agents, num_workers=2, shard_size=4, sampling=GREEDY, writer=writer)

    assert [e.id for e in remote] == [e.id for e in local]
    assert [e.rewards for e in remote] == [e.rewards for e in local]
    assert [[t.raw for t in e.turns] for e in remote] == [[t.raw for t in e.turns] for e in local]
    assert sorted(e.id for e in read_episodes(tmp_path / "episodes.jsonl")) == sorted(e.id for e in local)


def test_a_worker_that_dies_mid_run_loses_and_duplicates_no_episode(local_ray, tmp_path):
    # Reference-v0 takes two calls per scripted self-play shard, so the 3rd call is the
    # first of a worker's second shard: some shards are done and written by then.
    marker = tmp_path / "died"
    specs = reference_specs(24, {"speaker": "p", "listener": "p"})
    expected = RolloutEngine({"p": ScriptedAgent()}).run(specs)
    path = tmp_path / "episodes.jsonl"

    seen = []
    with EpisodeWriter(path) as writer:
        episodes = run_on_ray(
            specs, {"p": functools.partial(DiesOnce, str(marker), 3)}, num_workers=2, shard_size=4,
            writer=writer, on_episode=lambda e: seen.append(e.id),
        )

    assert marker.exists(), "no worker died, so the test checked nothing"
    assert [e.id for e in episodes] == [e.id for e in expected]
    assert [e.rewards for e in episodes] == [e.rewards for e in expected]
    written = [e.id for e in read_episodes(path)]
    assert len(written) == len(set(written)) == len(specs)
    assert set(written) == {e.id for e in expected}
    assert sorted(seen) == sorted(written)


def test_a_shard_that_keeps_killing_its_worker_fails_after_max_retries(local_ray):
    always = functools.partial(DiesOnce, None, 1)
    with pytest.raises(RuntimeError, match=r"shard 0 \(specs 0\.\.1\) lost its worker 2 times"):
        run_on_ray(reference_specs(2, {"speaker": "p", "listener": "p"}), {"p": always}, num_workers=1, max_retries=1)


def test_game_errors_in_a_worker_reach_the_caller_unretried(local_ray):
    bad = [EpisodeSpec(game="dialogym/Reference-v0", seed=0, seats={"speaker": "p", "judge": "p"})]
    with pytest.raises(ValueError, match="do not match the game's"):
        run_on_ray(bad, {"p": "scripted"}, num_workers=1)


def test_play_with_ray_writes_every_episode_once(local_ray, tmp_path):
    from typer.testing import CliRunner

    from dialogym.cli import app

    args = ["play", "reference", "--model", "scripted", "--episodes", "5", "--out", str(tmp_path), "--ray", "local"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    ids = [e.id for e in read_episodes(tmp_path / "episodes.jsonl")]
    assert len(ids) == len(set(ids)) == 5
    assert "5 episodes in" in result.output


def test_unknown_agent_names_and_bad_specs_fail_before_ray_is_used(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # would raise ImportError if reached
    with pytest.raises(KeyError, match="no agent named"):
        run_on_ray(reference_specs(1, {"speaker": "a", "listener": "b"}), {"a": "scripted"})
    with pytest.raises(ValueError, match="unknown model kind"):
        run_on_ray(reference_specs(1, {"speaker": "a", "listener": "a"}), {"a": "gpt5"})


def test_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'dialogym\[ray\]'"):
        import_ray()
