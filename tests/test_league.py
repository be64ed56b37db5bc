"""A league with the tiny model: runs end to end on CPU, resumes after a crash."""

import json

import pytest

from dialogym.trainers.league import League, LeagueConfig, write_league_report
from dialogym.trainers.pool import CheckpointPool

CONFIG = LeagueConfig(game="dialogym/Reference-v0", model="tiny", iterations=2, episodes=6, eval_episodes=2, max_new_tokens=8)


def test_two_iteration_league_with_the_tiny_model_runs_end_to_end(tmp_path):
    log = League(CONFIG, tmp_path).run()
    assert [line["iteration"] for line in log] == [1, 2]
    pool = CheckpointPool(tmp_path / "pool")
    assert pool.names == ["it-0", "it-1", "it-2"]
    assert pool.get("it-2").parent == "it-1"
    assert all(e.rating is not None for e in pool.entries)
    assert {r.a for r in pool.results()} == {"it-1", "it-2"}
    report = write_league_report(tmp_path)
    assert (report.parent / "ratings.png").stat().st_size > 1000
    assert "it-2" in report.read_text()


def test_a_league_killed_mid_iteration_resumes_where_it_stopped(tmp_path, monkeypatch):
    league = League(CONFIG, tmp_path)
    real = League.iteration

    def crash_in_iteration_two(self, iteration, progress=False):
        if iteration == 2:
            self.pool.add("it-2", kind="external", spec="scripted", iteration=2)  # half-done work
            raise KeyboardInterrupt("killed")
        return real(self, iteration, progress)

    monkeypatch.setattr(League, "iteration", crash_in_iteration_two)
    with pytest.raises(KeyboardInterrupt):
        league.run()
    monkeypatch.undo()
    assert json.loads((tmp_path / "state.json").read_text()) == {"completed": 1}
    log = League(CONFIG, tmp_path).run()
    assert [line["iteration"] for line in log] == [2]
    pool = CheckpointPool(tmp_path / "pool")
    assert pool.names == ["it-0", "it-1", "it-2"] and pool.get("it-2").kind == "lora"
    lines = [json.loads(x) for x in (tmp_path / "league.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [1, 2]


def test_a_different_config_in_the_same_folder_is_refused(tmp_path):
    League(CONFIG, tmp_path)
    with pytest.raises(ValueError, match="different league config"):
        League(CONFIG.model_copy(update={"iterations": 5}), tmp_path)


def test_the_learner_update_uses_only_its_own_tokens_with_a_per_role_baseline(tmp_path):
    import torch

    league = League(CONFIG.model_copy(update={"iterations": 1}), tmp_path)
    learner = league.learner
    from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
    from dialogym.agents.specs import load_agent

    specs = [EpisodeSpec("dialogym/Reference-v0", seed=i, seats={"speaker": "scripted", "listener": "learner"}) for i in range(4)]
    episodes = RolloutEngine({"learner": learner.agent, "scripted": load_agent("scripted")}).run(specs)
    # give the learner's seat different rewards so advantages are non-zero
    for i, episode in enumerate(episodes):
        episode.rewards["listener"] = float(i % 2)
    before = {n: p.detach().clone() for n, p in learner.model.named_parameters() if p.requires_grad}
    metrics = learner.update(episodes)
    after = {n: p.detach() for n, p in learner.model.named_parameters() if p.requires_grad}
    listener_turns = sum(1 for e in episodes for t in e.turns if t.seat == "listener")
    # one sample per episode, or per turn where the template re-tokenises the tiny model's bytes
    assert len(episodes) <= metrics["samples"] <= listener_turns
    assert any(not torch.equal(before[n], after[n]) for n in before)
    frozen = [p for n, p in learner.model.named_parameters() if "lora" not in n]
    assert all(not p.requires_grad for p in frozen)


def test_a_three_seat_game_league_draws_each_opponent_seat(tmp_path):
    config = LeagueConfig(
        game="dialogym/Debate-v0", model="tiny", iterations=1, episodes=3, eval_episodes=3, max_new_tokens=8, sampler="uniform"
    )
    League(config, tmp_path).run()
    from dialogym.envs import read_episodes

    episodes = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(episodes) == 3
    assert [list(e.seats.values()).count("learner") for e in episodes] == [1, 1, 1]
    assert {seat for e in episodes for seat, agent in e.seats.items() if agent == "learner"} == {"debater_a", "debater_b", "judge"}
