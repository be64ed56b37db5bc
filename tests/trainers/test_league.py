"""A league with the tiny model: runs end to end on CPU, resumes after a kill at any point."""

import json
from collections import Counter

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import dialogym.trainers.league as league_module
from dialogym.envs import read_episodes
from dialogym.trainers.core import TrainerCore
from dialogym.trainers.league import (
    League,
    LeagueConfig,
    PairedMatches,
    choose_eval_opponents,
    league_learner,
    write_league_report,
)
from dialogym.trainers.pool import CheckpointPool, MatchResult

CONFIG = LeagueConfig(game="dialogym/Reference-v0", model="tiny", iterations=2, episodes=6, eval_episodes=2,
                      learner={"max_new_tokens": 8})


def changed(config: LeagueConfig, **settings) -> LeagueConfig:
    """``config`` with ``settings`` changed, each a league setting or a learner one, and
    validated again (so that ``algo`` picks the learner's config class)."""
    league = {key: value for key, value in settings.items() if key in LeagueConfig.model_fields}
    learner = {key: value for key, value in settings.items() if key not in league}
    return LeagueConfig.model_validate({**config.model_dump(exclude={"learner"}), **league,
                                        "learner": {**config.learner.model_dump(exclude_unset=True), **learner}})


#: the smallest league that still has two iterations and two eval opponents in iteration 2
SMALL = changed(CONFIG, episodes=2, eval_episodes=1, max_new_tokens=4)


def test_two_iteration_league_with_the_tiny_model_runs_end_to_end(tmp_path):
    log = League(CONFIG, tmp_path).run()
    assert [line["iteration"] for line in log] == [1, 2]
    pool = CheckpointPool(tmp_path / "pool")
    assert pool.names == ["it-0", "it-1", "it-2"]
    assert pool.get("it-2").parent == "it-1"
    assert all(e.rating is not None for e in pool.entries)
    assert {r.a for r in pool.results()} == {"it-1", "it-2"}
    assert set(pool.get("it-2").win_rates) == {"it-0", "it-1"}
    report = write_league_report(tmp_path)
    assert (report.parent / "ratings.png").stat().st_size > 1000
    assert "it-2" in report.read_text()


# -- kills and resumes -------------------------------------------------------------------
class Killed(BaseException):
    """A kill -9 stand-in that no ``except Exception`` swallows."""


def structure(out):
    """What an interrupted-then-resumed league must share with an uninterrupted one."""
    pool = CheckpointPool(out / "pool")
    lines = [json.loads(x) for x in (out / "league.jsonl").read_text().splitlines()]
    return {
        "pool": [(e.name, e.kind, e.parent, e.rating is not None) for e in pool.entries],
        "log": [line["iteration"] for line in lines],
        "matches": Counter((r.a, r.b, r.iteration) for r in pool.results()),
        "episodes": Counter(e.tags["league"] for e in read_episodes(out / "episodes.jsonl")),
        "state": json.loads((out / "state.json").read_text())["completed"],
        "learner": sorted(p.name for p in (out / "learner").iterdir()),
        "top": sorted(p.name for p in out.iterdir()),
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    League(SMALL, out).run()
    return structure(out)


def kill_after(monkeypatch, target, attribute, hit):
    real = getattr(target, attribute)

    def wrapper(*args, **kwargs):
        result = real(*args, **kwargs)
        if hit(*args, **kwargs):
            raise Killed(attribute)
        return result

    monkeypatch.setattr(target, attribute, wrapper)


def nth_call(n):
    """A hit test true on its n-th call (1-based)."""
    calls = iter(range(1, n + 1))
    return lambda *args, **kwargs: next(calls, None) == n


KILL_POINTS = {
    "pool.add": lambda k: (CheckpointPool, "add", lambda self, name, **kw: name == f"it-{k}"),
    # the commit of setup saves the learner first, then every iteration's commit
    "learner.save": lambda k: (TrainerCore, "save", nth_call(k + 1)),
    "league.jsonl": lambda k: (league_module, "append_text", lambda path, text: json.loads(text)["iteration"] == k),
}


@pytest.mark.parametrize("iteration", [1, 2])
@pytest.mark.parametrize("point", ["pool.add", "learner.save", "league.jsonl"])
def test_a_league_killed_at_any_point_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, uninterrupted, point, iteration):
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    kill_after(monkeypatch, *KILL_POINTS[point](iteration))
    with pytest.raises(Killed):
        League(SMALL, tmp_path).run()
    monkeypatch.undo()
    assert json.loads((tmp_path / "state.json").read_text())["completed"] == iteration - 1

    resumed = League(SMALL, tmp_path)
    assert resumed._resume() == iteration - 1
    # the learner is back to the committed checkpoint (the one admitted as it-<k-1>), not a step ahead
    committed = load_file(str(resumed.pool.path_of(f"it-{iteration - 1}") / "adapter_model.safetensors"))
    weights = get_peft_model_state_dict(resumed.learner.model, adapter_name="default")
    assert committed.keys() == weights.keys() and all((committed[k] == weights[k]).all() for k in committed)
    assert [line["iteration"] for line in resumed.run()] == list(range(iteration, SMALL.iterations + 1))
    assert structure(tmp_path) == uninterrupted


def test_a_kill_while_setting_up_the_league_is_resumed_too(tmp_path, monkeypatch, uninterrupted):
    kill_after(monkeypatch, *KILL_POINTS["pool.add"](0))
    with pytest.raises(Killed):
        League(SMALL, tmp_path).run()
    monkeypatch.undo()
    assert not (tmp_path / "state.json").exists()
    League(SMALL, tmp_path).run()
    assert structure(tmp_path) == uninterrupted


def test_learner_checkpoints_survive_a_kill_between_the_renames_of_a_save(tmp_path, monkeypatch):
    import os

    import torch

    import dialogym.envs.files as fs

    learner = league_learner(SMALL)
    path = tmp_path / "learner"
    learner.save(path)
    saved = {n: p.detach().clone() for n, p in learner.model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        for p in learner.model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    real_replace = os.replace

    def replace(src, dst):
        if str(dst) == str(path):  # the old copy is aside; the new one never arrives
            raise Killed("between renames")
        real_replace(src, dst)

    monkeypatch.setattr(fs.os, "replace", replace)
    with pytest.raises(Killed):
        learner.save(path)
    monkeypatch.undo()
    assert not path.exists()
    learner.load(path)
    assert path.exists()
    assert all(torch.equal(p, saved[n]) for n, p in learner.model.named_parameters() if p.requires_grad)


def test_a_different_config_in_the_same_folder_is_refused(tmp_path):
    League(CONFIG, tmp_path)
    with pytest.raises(ValueError, match="different league config"):
        League(CONFIG.model_copy(update={"iterations": 5}), tmp_path)


# -- options are checked before anything is written --------------------------------------
@pytest.mark.parametrize(
    ("sampler", "message"),
    [
        ("pfsp:sq", "unknown PFSP weighting"),
        ("recency:often", "recency"),
        ("fixed:", "needs model specs"),
        ("fixed:gpt9", "unknown model kind"),
        ("speaker=uniform,judge=latest", "roles \\['judge'\\]"),
        ("best", "unknown opponent sampler"),
    ],
)
def test_a_bad_sampler_is_refused_before_the_out_folder_is_touched(tmp_path, sampler, message):
    out = tmp_path / "league"
    with pytest.raises(ValueError, match=message):
        League(SMALL.model_copy(update={"sampler": sampler}), out)
    assert not out.exists()
    League(SMALL.model_copy(update={"sampler": "uniform"}), out)  # the corrected rerun is accepted
    assert json.loads((out / "league_config.json").read_text())["sampler"] == "uniform"


def test_a_league_with_fewer_episodes_than_processes_is_refused_before_writing(tmp_path, monkeypatch):
    # several processes themselves: tests/trainers/test_distributed_training.py runs a league on two ranks
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ValueError, match="episodes=2 is fewer than the 4 processes.*at least 4"):
        League(SMALL, tmp_path / "league")
    assert not (tmp_path / "league").exists()


def test_a_read_only_pool_view_writes_nothing_and_reloads_what_the_writer_committed(tmp_path):
    writer = CheckpointPool(tmp_path / "pool")
    view = CheckpointPool(tmp_path / "pool", read_only=True)
    (tmp_path / "pool" / "checkpoints" / "stray").mkdir()  # what the writer's own opening cleans
    CheckpointPool(tmp_path / "pool", read_only=True)
    assert (tmp_path / "pool" / "checkpoints" / "stray").exists()
    writer.add("scripted", kind="external", spec="scripted")
    assert view.names == []
    view.reload()
    assert view.names == ["scripted"]
    for write in (lambda: view.add("x", kind="external", spec="scripted"), lambda: view.record([MatchResult(a="a", b="b", score=1.0)]),
                  view.update_ratings, lambda: view.rollback(0)):
        with pytest.raises(PermissionError, match="read-only"):
            write()
    assert not (tmp_path / "other").exists() and CheckpointPool(tmp_path / "other", read_only=True).names == []
    assert not (tmp_path / "other").exists()


def test_a_vllm_learner_is_refused_with_a_clear_message(tmp_path):
    with pytest.raises(ValueError, match="to play the pool's checkpoints on vLLM, add --opponents-on vllm"):
        League(SMALL.model_copy(update={"model": "vllm:/models/x"}), tmp_path / "league")
    assert not (tmp_path / "league").exists()


def test_the_cli_refuses_a_bad_sampler_without_writing_and_passes_eval_opponents(tmp_path):
    from dialogym.cli import app

    out = tmp_path / "league"
    args = ["league", "reference", "--model", "tiny", "--iterations", "1", "--episodes", "2", "--eval-episodes", "1", "--out", str(out)]
    bad = CliRunner().invoke(app, [*args, "--sampler", "pfsp:sq"])
    assert bad.exit_code != 0 and "pfsp" in bad.output and not out.exists()
    good = CliRunner().invoke(app, [*args, "--sampler", "pfsp:variance", "--eval-opponents", "1"])
    assert good.exit_code == 0, good.output
    assert json.loads((out / "league_config.json").read_text())["eval_opponents"] == 1
    assert "report:" in good.output


# -- samplers in the loop ----------------------------------------------------------------
def test_each_opponent_seat_is_drawn_by_the_sampler_of_its_role(tmp_path):
    config = SMALL.model_copy(update={"iterations": 1, "episodes": 6, "sampler": "speaker=fixed:scripted,listener=latest"})
    League(config, tmp_path).run()
    episodes = list(read_episodes(tmp_path / "episodes.jsonl"))
    opponents = {role: {e.seats[role] for e in episodes if e.seats[role] != "learner"} for role in ("speaker", "listener")}
    assert opponents == {"speaker": {"scripted"}, "listener": {"it-0"}}


def test_a_fixed_sampler_league_rates_its_checkpoints_against_the_fixed_opponents(tmp_path):
    League(SMALL.model_copy(update={"sampler": "fixed:scripted"}), tmp_path).run()
    pool = CheckpointPool(tmp_path / "pool")
    assert pool.get("scripted").kind == "external"
    assert {r.b for r in pool.results()} == {"scripted"}
    assert all(pool.get(name).rating is not None for name in ("scripted", "it-1", "it-2"))
    assert set(pool.get("it-1").win_rates) == {"scripted"}


def test_a_cooperative_games_league_scores_the_learner_against_the_opponents_own_team(tmp_path):
    """The referential game's seats share the reward, so every single episode ties; the
    league compares the learner's team with the opponent's self-play instead. The scripted
    pair always succeeds, so a guided tiny learner can at best tie it and loses where it
    picks wrong or clues badly."""
    config = changed(SMALL, iterations=1, eval_episodes=6, sampler="fixed:scripted", guided=True)
    League(config, tmp_path).run()
    scores = [r.score for r in CheckpointPool(tmp_path / "pool").results()]
    assert len(scores) == 6 and set(scores) <= {0.0, 0.5} and 0.0 in scores  # 3 instances, each in both seats


def scoring(score):
    """An evaluation that stands in for ``League._evaluate``: ``score`` in both seats of one instance."""
    def evaluate(self, opponents, iteration, episodes=None):
        return {o: PairedMatches(o, ("speaker", "listener"), (0,), ((score, score),)) for o in opponents}

    return evaluate


def test_pfsp_in_the_league_weighs_opponents_by_the_newest_checkpoints_win_rates(tmp_path, monkeypatch):
    monkeypatch.setattr(League, "_evaluate", scoring(1.0))
    League(SMALL.model_copy(update={"episodes": 8, "sampler": "pfsp:squared"}), tmp_path).run()
    # it-1 beat it-0 every time: weight (1 - 1)^2 = 0, so iteration 2 only meets it-1 (unmet: w = 0.5)
    episodes = [e for e in read_episodes(tmp_path / "episodes.jsonl") if e.tags["league"] == "train-2"]
    assert {agent for e in episodes for agent in e.seats.values()} == {"learner", "it-1"}


def test_a_group_baseline_league_plays_each_instance_group_size_times_in_one_seating(tmp_path, monkeypatch):
    """GRPO's own groups in a league: each training instance played group_size times (new
    reply seeds) against the same opponent in the same seat, the baseline their mean; the
    iteration's episodes stay ``episodes``."""
    from dialogym.trainers import grpo

    seen = []
    monkeypatch.setattr(grpo, "advantages", lambda samples, *a, **k: seen.append((list(samples), k, a)) or
                        np.zeros(len(samples)))
    config = changed(SMALL, iterations=1, episodes=8, baseline="group", group_size=4)
    League(config, tmp_path).run()
    episodes = [e for e in read_episodes(tmp_path / "episodes.jsonl") if e.tags["league"] == "train-1"]
    assert len(episodes) == 8
    groups = Counter((e.instance_id, tuple(sorted(e.seats.items()))) for e in episodes)
    assert sorted(groups.values()) == [4, 4]  # two instances, four plays each, one seating each
    assert sorted(e.play for e in episodes) == [0, 0, 1, 1, 2, 2, 3, 3]
    samples, _, args = seen[0]
    # a baseline per group: the samples fall in at most the two groups, each of one instance's plays
    # (the tiny model's episodes that end before the learner's turn give no sample)
    per_group = Counter(grpo.group_key(s, "group") for s in samples)
    assert "group" in args and 1 <= len(per_group) <= 2 and {key[0] for key in per_group} <= {e.instance_id for e in episodes}
    with pytest.raises(ValueError, match=r"learner\.group_size\n.*episodes \(6\) must be a multiple"):
        changed(CONFIG, baseline="group", group_size=4)


def test_a_three_seat_game_league_draws_each_opponent_seat(tmp_path):
    config = LeagueConfig(
        game="dialogym/Debate-v0", model="tiny", iterations=1, episodes=3, eval_episodes=3, learner={"max_new_tokens": 8},
        sampler="uniform"
    )
    League(config, tmp_path).run()
    episodes = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(episodes) == 3
    assert [list(e.seats.values()).count("learner") for e in episodes] == [1, 1, 1]
    assert {seat for e in episodes for seat, agent in e.seats.items() if agent == "learner"} == {"debater_a", "debater_b", "judge"}


# -- evaluation and the gate -------------------------------------------------------------
RATINGS = {"it-0": 900.0, "it-1": 1100.0, "it-2": 1000.0, "it-3": None}


def test_a_gated_evaluation_always_plays_the_best_rated_member():
    names = list(RATINGS)
    assert choose_eval_opponents(names, RATINGS, "it-3", 1, gated=True) == (["it-1"], "it-1")
    assert choose_eval_opponents(names, RATINGS, "it-3", 2, gated=True) == (["it-1", "it-3"], "it-1")


def test_an_ungated_evaluation_plays_the_newest_then_the_best_rated():
    names = list(RATINGS)
    assert choose_eval_opponents(names, RATINGS, "it-3", 1, gated=False) == (["it-3"], "it-1")
    assert choose_eval_opponents(names, RATINGS, "it-3", 3, gated=False) == (["it-3", "it-1", "it-2"], "it-1")
    # fixed opponents only: the newest checkpoint is not a candidate
    assert choose_eval_opponents(["scripted"], {}, "it-3", 2, gated=False) == (["scripted"], "scripted")


@pytest.mark.parametrize(("score", "admitted"), [(0.25, False), (0.75, True)])
def test_the_gate_admits_on_the_score_against_the_best(tmp_path, monkeypatch, score, admitted):
    monkeypatch.setattr(League, "_evaluate", scoring(score))
    log = League(SMALL.model_copy(update={"iterations": 1, "gate": 0.5, "eval_opponents": 1}), tmp_path).run()
    assert log[0]["admitted"] is admitted and log[0]["eval"] == {"it-0": score}
    assert CheckpointPool(tmp_path / "pool").names == (["it-0", "it-1"] if admitted else ["it-0"])


def stepping_update(self, episodes):
    """An update that stands in for the learner's: one optimizer step on a gradient of ones
    (the weights and Adam's state both move)."""
    for group in self.optimizer.param_groups:
        for p in group["params"]:
            p.grad = torch.ones_like(p)
    self.optimizer.step()
    return {"loss": 0.0}


def learner_state(league):
    params = [p.detach().clone() for g in league.learner.optimizer.param_groups for p in g["params"]]
    return params, {k: {n: v.clone() for n, v in s.items()} for k, s in league.learner.optimizer.state_dict()["state"].items()}


@pytest.mark.parametrize(("score", "rollback"), [(0.25, True), (0.25, False), (0.75, True)])
def test_rollback_undoes_the_update_of_a_checkpoint_the_gate_turns_away(tmp_path, monkeypatch, score, rollback):
    from dialogym.trainers.grpo import GRPOTrainer

    monkeypatch.setattr(League, "_evaluate", scoring(score))
    monkeypatch.setattr(GRPOTrainer, "update", stepping_update)
    league = League(SMALL.model_copy(update={"iterations": 1, "gate": 0.5, "eval_opponents": 1, "rollback": rollback}), tmp_path)
    before = learner_state(league)
    log = league.run()
    after = learner_state(league)
    undone = rollback and score < 0.5
    assert log[0].get("rolled_back") == (float(undone) if rollback else None)
    same = all(torch.equal(a, b) for a, b in zip(before[0], after[0], strict=True))
    assert same is undone and (after[1] == {}) is undone  # an optimizer with no step taken holds no state
    resumed = League(SMALL.model_copy(update={"iterations": 1, "gate": 0.5, "eval_opponents": 1, "rollback": rollback}), tmp_path)
    resumed.run()  # nothing left to play: the learner is the committed one, rolled back where it was
    params, optimizer = learner_state(resumed)
    assert all(torch.equal(a, b) for a, b in zip(params, after[0], strict=True))
    assert optimizer.keys() == after[1].keys() and all(
        torch.equal(optimizer[k][n], v) for k, state in after[1].items() for n, v in state.items())


def test_rollback_without_a_gate_is_refused():
    with pytest.raises(ValueError, match="rollback undoes what the gate turns away: give a gate too"):
        changed(SMALL, rollback=True)


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


def test_the_league_learner_is_a_trainer_built_from_the_league_settings():
    from dialogym.trainers.grpo import GRPOTrainer
    from dialogym.trainers.ppo import PPOTrainer

    grpo = league_learner(changed(SMALL, grad_accum=2, lr=5e-3))
    assert isinstance(grpo, GRPOTrainer) and grpo.cfg.grad_accum == 2 and grpo.cfg.lr == 5e-3
    assert grpo.cfg.baseline == "role" and grpo.opponent is None
    assert isinstance(league_learner(changed(SMALL, algo="ppo")), PPOTrainer)


def test_the_league_holds_its_learners_config_with_the_leagues_defaults():
    from dialogym.trainers.config import GRPOConfig, PPOConfig

    league_defaults = {"lr": 1e-3, "max_new_tokens": 32, "baseline": "role"}
    assert LeagueConfig(game="dialogym/Reference-v0").learner == GRPOConfig(**league_defaults)
    assert LeagueConfig(game="dialogym/Reference-v0", algo="ppo").learner == PPOConfig(**league_defaults)  # epochs 2
    given = LeagueConfig(game="dialogym/Reference-v0", algo="ppo", learner=GRPOConfig(beta=0.1)).learner
    assert isinstance(given, PPOConfig) and (given.beta, given.lr, given.epochs) == (0.1, 1e-3, 2)
    with pytest.raises(ValueError, match="give it as learner.lr"):
        LeagueConfig(game="dialogym/Reference-v0", lr=1e-3)


@pytest.mark.parametrize(("key", "value"), [("seat", "speaker"), ("instances_per_step", 2), ("lora_rank", 0)])
def test_a_learner_setting_the_league_decides_itself_is_refused_naming_it(key, value):
    with pytest.raises(ValueError, match=rf"learner\.{key}\n"):
        LeagueConfig(game="dialogym/Reference-v0", learner={key: value})


def test_a_ppo_league_commits_and_resumes_its_value_head(tmp_path):
    import torch

    config = changed(SMALL, algo="ppo", iterations=1, grad_accum=2)
    league = League(config, tmp_path)
    league.run()
    committed = tmp_path / json.loads((tmp_path / "state.json").read_text())["learner"]
    assert (committed / "value_head.pt").exists() and (committed / "optimizer.pt").exists()
    resumed = League(config, tmp_path)
    assert resumed._resume() == 1
    assert torch.equal(resumed.learner.value_head.weight, league.learner.value_head.weight)


# -- opponents on vLLM (its interface mocked: tests/agents/test_vllm_backend.py) ------------------
from tests.agents.test_vllm_backend import fake_vllm  # noqa: E402,F401  (the fixture)


def test_pool_checkpoints_can_play_as_per_request_loras_on_one_vllm_engine(tmp_path, fake_vllm):  # noqa: F811
    from dialogym.agents.models import tiny_model

    model, tokenizer = tiny_model()
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    config = SMALL.model_copy(update={"model": f"hf:{tmp_path / 'base'}", "opponents_on": "vllm", "eval_episodes": 2})
    League(config, tmp_path / "league").run()
    assert [kw["model"] for kw in fake_vllm.built] == [str(tmp_path / "base")]  # one engine for every checkpoint
    from dialogym.agents.vllm_backend import _ENGINES

    (engine,) = _ENGINES.values()
    paths = {lora.lora_path for _, _, loras in engine.llm.calls for lora in loras}
    pool = CheckpointPool(tmp_path / "league" / "pool")
    assert paths and paths <= {str(pool.path_of(name).resolve()) for name in pool.names}
    assert len(paths) >= 2  # it-0 and it-1 both played through vLLM


def test_opponents_on_vllm_need_a_model_folder_and_say_so(tmp_path, fake_vllm):  # noqa: F811
    with pytest.raises(ValueError, match="need a model folder"):
        League(SMALL.model_copy(update={"opponents_on": "vllm"}), tmp_path / "league")
    assert not (tmp_path / "league").exists()


def test_a_warm_start_runs_once_after_the_base_joins_the_pool_and_the_learner_starts_from_it(tmp_path):
    import torch
    from safetensors.torch import load_file

    calls = []

    def warm(learner):
        calls.append(learner)
        with torch.no_grad():  # stands in for an SFT fit: move every LoRA weight
            for name, p in learner.model.named_parameters():
                if "lora_" in name:
                    p.add_(0.5)

    def lora_b(name):
        weights = load_file(next((tmp_path / "pool").rglob(f"{name}/**/adapter_model.safetensors")))
        return [v for k, v in weights.items() if "lora_B" in k]

    config = SMALL.model_copy(update={"iterations": 2})
    League(config, tmp_path, warm_start=warm).run(stop=lambda line: True)  # one iteration, then stopped
    assert len(calls) == 1
    assert lora_b("it-0") and all(float(v.abs().max()) == 0.0 for v in lora_b("it-0"))  # it-0 is the base
    assert max(float(v.abs().max()) for v in lora_b("it-1")) > 0.4  # the learner trained on from the warm start
    League(config, tmp_path, warm_start=warm).run()  # resumed: no second warm start
    assert len(calls) == 1 and CheckpointPool(tmp_path / "pool").names[-1] == "it-2"


# -- a competitive game: its options, the payoff table and the ratings' intervals --------------
NEGOTIATION = changed(SMALL, game="dialogym/Negotiation-v1", iterations=1, eval_episodes=2, max_new_tokens=12, guided=True,
                      game_options=["messages=false", "reward_view=zero_sum"])


def test_the_learners_game_options_hold_for_every_episode_of_the_league(tmp_path):
    """The zero-sum view rewards each seat its margin over the other: every training episode's
    rewards add up to 0, which the general view's (each side's own score) do not."""
    League(NEGOTIATION, tmp_path).run()
    played = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert played and all(abs(sum(e.rewards.values())) < 1e-9 for e in played)
    assert any(e.rewards["alice"] != 0 for e in played)
    assert all(e.metrics.get("score_alice") is not None for e in played)  # the scores stay in the metrics


def test_the_payoff_table_plays_the_pairs_that_never_met_records_them_and_solves_the_metagame(tmp_path, monkeypatch):
    league = League(NEGOTIATION, tmp_path)
    league.run()
    calls = []
    paired = League.paired

    def counted(self, pairs, *args, **kwargs):
        calls.extend(pairs)
        return paired(self, pairs, *args, **kwargs)

    monkeypatch.setattr(League, "paired", counted)
    game = league.payoff(4, add=["scripted:fair"])
    assert game.table.players == ["it-0", "it-1", "scripted:fair"] and game.solved
    # it-1 met it-0 in its own evaluation (2 matches, fewer than 4): every pair plays 4 more
    assert sorted(calls) == [("it-0", "it-1"), ("it-0", "scripted:fair"), ("it-1", "scripted:fair")]
    assert game.table.n[0, 2] == 4 and game.table.n[0, 1] == 6 and abs(game.mixture.sum() - 1) < 1e-9
    pool = CheckpointPool(tmp_path / "pool")
    assert pool.get("scripted:fair").kind == "external" and pool.get("scripted:fair").rating is not None
    calls.clear()
    again = League(NEGOTIATION, tmp_path).payoff(4, add=["scripted:fair"])  # a rerun: nothing left to play
    assert calls == [] and np.array_equal(again.table.mean, game.table.mean, equal_nan=True)
    write_league_report(tmp_path)
    assert (tmp_path / "report" / "payoff.png").stat().st_size > 1000
    assert json.loads((tmp_path / "metagame.json").read_text())["nash"]["mixture"].keys() == {"it-0", "it-1", "scripted:fair"}
    assert (tmp_path / "payoff.csv").read_text().startswith("player,it-0,it-1,scripted:fair\n")


def test_each_iteration_records_the_ratings_intervals_and_the_plot_draws_them(tmp_path):
    lines = League(changed(SMALL, iterations=2), tmp_path).run()
    for line in lines:
        assert line["rating_intervals"].keys() == {n for n, r in line["ratings"].items() if r is not None}
        assert all(lo <= line["ratings"][n] <= hi for n, (lo, hi) in line["rating_intervals"].items())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dialogym.trainers.league import draw_ratings

    fig, ax = plt.subplots()
    draw_ratings(ax, lines)
    assert len(ax.collections) == len(lines[-1]["rating_intervals"])  # one band per rated checkpoint
    assert not ax.containers
    plt.close(fig)
    # the final ratings: one error bar per rated checkpoint, at its iteration, from its interval
    fig, ax = plt.subplots()
    draw_ratings(ax, lines, {"it-0": [0, 900.0, 1000.0, 1100.0], "it-2": [2, 1000.0, 1150.0, 1300.0], "it-1": [1, None, None, None]})
    (bars,) = ax.containers
    x, y = bars.lines[0].get_data()
    assert list(x) == [0, 2] and list(y) == [1000.0, 1150.0]
    plt.close(fig)


def test_the_cli_plays_a_zero_sum_league_and_prints_and_writes_the_pools_metagame(tmp_path):
    from dialogym.cli import app

    out = tmp_path / "league"
    result = CliRunner().invoke(app, ["league", "negotiation", "--model", "tiny", "--iterations", "1", "--episodes", "2",
                                      "--eval-episodes", "2", "--guided", "--max-new-tokens", "12", "--payoff-episodes", "2",
                                      "--game-options", "messages=false", "--game-options", "reward_view=zero_sum",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Nash weight" in result.output and "it-1" in result.output
    config = json.loads((out / "league_config.json").read_text())
    assert config["learner"]["game_options"] == ["messages=false", "reward_view=zero_sum"] and config["payoff_episodes"] == 2
    assert json.loads((out / "metagame.json").read_text())["players"] == ["it-0", "it-1"]
    assert (out / "report" / "payoff.png").exists() and "payoff.png" in (out / "report" / "index.html").read_text()


def test_a_league_plays_a_textarena_zero_sum_game_with_guided_moves(tmp_path):
    """Kuhn Poker (SPIRAL's game, through the TextArena adapter) has no move that forces a
    tie: every episode is won or lost, so a league there has something to learn."""
    pytest.importorskip("textarena")
    config = changed(SMALL, game="textarena/KuhnPoker-v0", iterations=1, episodes=4, eval_episodes=2, guided=True,
                     max_new_tokens=12, payoff_episodes=2)
    league = League(config, tmp_path)
    lines = league.run()
    played = list(read_episodes(tmp_path / "episodes.jsonl"))
    assert len(played) == 4 and all(e.status == "completed" for e in played)
    assert all(abs(sum(e.rewards.values())) < 1e-9 for e in played)  # zero-sum: what one seat wins, the other loses
    assert any(e.rewards != dict.fromkeys(e.rewards, 0.0) for e in played)
    assert lines[0]["evaluation"]["it-0"]["matches"] == 2
    assert league.payoff(2).solved


def test_training_game_options_hold_for_training_episodes_only(tmp_path, monkeypatch):
    """``train_game_options`` override the learner's game options in the training episodes
    (Kuhn Poker: one hand an episode); every evaluation keeps the learner's (two hands)."""
    from dialogym.trainers import league as league_module

    evaluated = []
    real = league_module.play_paired
    monkeypatch.setattr(league_module, "play_paired", lambda *a, **k: evaluated.append(k["game_options"]) or real(*a, **k))
    config = LeagueConfig(game="dialogym/KuhnPoker-v0", model="tiny", iterations=1, episodes=2, eval_episodes=2,
                          train_game_options=["hands=1"], learner={"max_new_tokens": 4, "guided": True, "game_options": ["hands=2"]})
    assert config.train_options() == {"hands": 1}
    League(config, tmp_path).run()
    trained = [e for e in read_episodes(tmp_path / "episodes.jsonl") if e.tags["league"] == "train-1"]
    # the rules each seat reads first name the hands the episode plays
    assert len(trained) == 2 and all("Kuhn Poker, 1 hands against" in e.turns[0].messages[-1]["content"] for e in trained)
    assert evaluated and all(options == {"hands": 2} for options in evaluated)


def test_a_bad_training_game_option_fails_in_one_line_before_the_model_loads(tmp_path):
    with pytest.raises(ValueError, match="a game option is key=value"):
        LeagueConfig(game="dialogym/KuhnPoker-v0", train_game_options=["hands"])
    with pytest.raises(ValueError, match=r"league: train_game_options: .*unexpected keyword argument 'hand'"):
        League(LeagueConfig(game="dialogym/KuhnPoker-v0", model="tiny", train_game_options=["hand=1"]), tmp_path)
    with pytest.raises(ValueError, match=r"hands=99: a whole number from 1 to 16"):
        League(LeagueConfig(game="dialogym/KuhnPoker-v0", model="tiny", train_game_options=["hands=99"]), tmp_path)
    assert not (tmp_path / "league_config.json").exists()


def test_opponent_temperature_sets_how_the_pools_checkpoints_play_in_training(tmp_path, monkeypatch):
    """``opponent_temperature=0``: in the training episodes the pool's checkpoints answer greedy
    while the learner samples at its own temperature."""
    asked = []

    class Spy(league_module.RolloutEngine):
        def sampling_for(self, agent):
            sampling = super().sampling_for(agent)
            if self.sampling.temperature == 1.7:  # the training episodes' engine (evaluations are greedy)
                asked.append((agent, sampling.temperature))
            return sampling

    monkeypatch.setattr(league_module, "RolloutEngine", Spy)
    config = LeagueConfig(game="dialogym/KuhnPoker-v0", model="tiny", iterations=1, episodes=2, eval_episodes=2,
                          opponent_temperature=0.0, train_game_options=["hands=1"],
                          learner={"max_new_tokens": 4, "guided": True, "temperature": 1.7})
    League(config, tmp_path).run()
    learner = {t for agent, t in asked if agent == league_module.LEARNER}
    opponents = {t for agent, t in asked if agent != league_module.LEARNER}
    assert learner == {1.7} and opponents == {0.0}
    with pytest.raises(ValueError, match="opponent_temperature"):
        LeagueConfig(game="dialogym/KuhnPoker-v0", opponent_temperature=-1)


def test_base_temperature_sets_how_the_base_alone_plays_in_training(tmp_path, monkeypatch):
    """``base_temperature=1`` beside ``opponent_temperature=0``: in training the base (``it-0``)
    samples at T=1 while every later checkpoint answers greedy; unset, the base plays as the
    other checkpoints do."""
    asked = []

    class Spy(league_module.RolloutEngine):
        def sampling_for(self, agent):
            sampling = super().sampling_for(agent)
            if self.sampling.temperature == 1.7 and agent != league_module.LEARNER:  # training episodes only
                asked.append((agent, sampling.temperature))
            return sampling

    monkeypatch.setattr(league_module, "RolloutEngine", Spy)

    def run(folder, **temperatures):
        asked.clear()
        config = LeagueConfig(game="dialogym/KuhnPoker-v0", model="tiny", iterations=2, episodes=2, eval_episodes=2,
                              sampler="latest", train_game_options=["hands=1"], **temperatures,
                              learner={"max_new_tokens": 4, "guided": True, "temperature": 1.7})
        League(config, tmp_path / folder).run()
        return set(asked)

    assert run("base-hot", opponent_temperature=0.0, base_temperature=1.0) == {("it-0", 1.0), ("it-1", 0.0)}
    assert run("unset", opponent_temperature=0.0) == {("it-0", 0.0), ("it-1", 0.0)}
    assert run("base-only", base_temperature=0.5) == {("it-0", 0.5), ("it-1", 1.7)}
    with pytest.raises(ValueError, match="base_temperature"):
        LeagueConfig(game="dialogym/KuhnPoker-v0", base_temperature=-0.1)


def test_paired_training_plays_each_instance_in_every_seating_against_one_opponent(tmp_path):
    """``paired_training``: every training instance (a Kuhn deal) is played with the learner in
    both seats against the same opponent, so each card of the deal reaches the learner once
    per group of plays; an episode count that does not split into seatings is one line."""
    config = LeagueConfig(game="dialogym/KuhnPoker-v0", model="tiny", iterations=1, episodes=8, eval_episodes=2,
                          paired_training=True, train_game_options=["hands=1"],
                          learner={"max_new_tokens": 4, "guided": True, "baseline": "group", "group_size": 2})
    League(config, tmp_path).run()
    trained = [e for e in read_episodes(tmp_path / "episodes.jsonl") if e.tags["league"] == "train-1"]
    by_seed = {}
    for e in trained:
        by_seed.setdefault(e.seed, []).append(e)
    assert len(by_seed) == 2 and all(len(plays) == 4 for plays in by_seed.values())
    for plays in by_seed.values():
        learner_seats = Counter(next(s for s, who in e.seats.items() if who == league_module.LEARNER) for e in plays)
        assert learner_seats == {"player_0": 2, "player_1": 2}
        assert len({who for e in plays for who in e.seats.values() if who != league_module.LEARNER}) == 1
        assert len({json.dumps(e.instance, sort_keys=True) for e in plays}) == 1
    with pytest.raises(ValueError, match=r"paired_training plays each training instance in all 2 seatings, 2 times each: "
                                         r"episodes \(6\) must be a multiple of 4"):
        League(changed(config, episodes=6), tmp_path / "odd")
