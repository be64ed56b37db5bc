"""Samples and GRPO: exact token ids, separate masks, and a learning signal a broken sign fails."""

import numpy as np
import pytest
import torch

from dialogym.envs import Episode, Turn
from dialogym.trainers import grpo as grpo_module
from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer, advantages, grpo_loss, token_logprobs
from dialogym.trainers.samples import collate, episode_samples, seat_samples
from dialogym.trainers.toy import GAME_ID  # noqa: E402  (registers the toy game)


def turn(i, seat, prompt, generated, logprob=-1.0):
    return Turn(index=i, seat=seat, messages=[], raw="x", prompt_token_ids=prompt, token_ids=generated, logprobs=[logprob] * len(generated))


def episode(turns, rewards, seats=None):
    return Episode(id="e", game="g", instance_id="i", instance_version="v0", instance={}, level="easy", seed=0,
                   seats=seats or {"a": "learner", "b": "opponent"}, turns=turns, rewards=rewards)


def test_a_multi_turn_seat_becomes_one_sample_of_exactly_the_recorded_ids():
    e = episode([turn(0, "a", [1, 2], [3, 4]), turn(1, "b", [9], [8]), turn(2, "a", [1, 2, 3, 4, 5, 6], [7])], {"a": 1.0, "b": 0.0})
    (sample,) = seat_samples(e, "a")
    assert sample.input_ids == [1, 2, 3, 4, 5, 6, 7]
    assert sample.loss_mask == [0, 0, 1, 1, 0, 0, 1]
    assert sample.old_logprobs == [0, 0, -1, -1, 0, 0, -1] and sample.turn_ends == [3, 6]


def test_a_template_that_breaks_the_prefix_gives_one_sample_per_turn():
    e = episode([turn(0, "a", [1, 2], [3, 4]), turn(1, "a", [1, 2, 99, 5], [7])], {"a": 1.0, "b": 0.0})
    first, second = seat_samples(e, "a")
    assert first.input_ids == [1, 2, 3, 4] and second.input_ids == [1, 2, 99, 5, 7]
    assert second.loss_mask == [0, 0, 0, 0, 1]


def test_attention_mask_and_loss_mask_are_different_things():
    e = episode([turn(0, "a", [1, 2, 3], [4])], {"a": 1.0, "b": 0.0})
    batch = collate(seat_samples(e, "a") * 2 + seat_samples(episode([turn(0, "a", [1], [4])], {"a": 0.0, "b": 0.0}), "a"), pad_id=0)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["loss_mask"].tolist() == [[0, 0, 0, 1], [0, 0, 0, 1], [0, 1, 0, 0]]


def test_only_the_trained_agents_seats_give_samples():
    e = episode([turn(0, "a", [1], [2]), turn(1, "b", [1, 2, 5], [6])], {"a": 1.0, "b": 0.0})
    assert [s.seat for s in episode_samples([e], "learner")] == ["a"]


def test_group_relative_advantages_with_and_without_std_scaling_and_per_role():
    e1 = episode([turn(0, "a", [1], [2])], {"a": 1.0, "b": 0.0})
    e0 = episode([turn(0, "a", [1], [2])], {"a": 0.0, "b": 0.0})
    samples = episode_samples([e1, e0, e0, e0], "learner")
    scaled = advantages(samples)
    assert scaled[0] > 0 > scaled[1] and scaled.mean() == pytest.approx(0.0, abs=1e-6)
    assert advantages(samples, scale=False).tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])
    assert advantages(samples, baseline="role").tolist() == pytest.approx(scaled.tolist())


def test_opponent_tokens_and_rewards_do_not_change_the_learners_gradient():
    from dialogym.agents.models import tiny_model

    model, _ = tiny_model()
    cfg = GRPOConfig()

    def grad(opponent_reward, opponent_tokens):
        e = episode([turn(0, "a", [5, 6], [7, 8]), turn(1, "b", [5, 6, 7, 8], opponent_tokens), turn(2, "a", [5, 6, 7, 8, 9], [10])],
                    {"a": 1.0, "b": opponent_reward})
        e0 = episode([turn(0, "a", [5, 6], [7, 8])], {"a": 0.0, "b": 0.0})
        samples = episode_samples([e, e0], "learner")
        batch = collate(samples, pad_id=0)
        model.zero_grad()
        loss, _ = grpo_loss(token_logprobs(model, batch), batch, torch.tensor(advantages(samples), dtype=torch.float32), cfg)
        loss.backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    base = grad(0.0, [11, 12])
    assert torch.allclose(base, grad(5.0, [40, 41, 42]))  # the opponent's own tokens and reward do not matter
    assert base.abs().sum() > 0


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_loss_normalisations_differ_only_in_scale(loss_type):
    e = episode([turn(0, "a", [1], [2, 3, 4])], {"a": 1.0, "b": 0.0})
    batch = collate(seat_samples(e, "a"), pad_id=0)
    logp = torch.full((1, 3), -1.0)
    loss, _ = grpo_loss(logp, batch, torch.tensor([1.0]), GRPOConfig(loss_type=loss_type, max_new_tokens=6))
    expected = {"grpo": -1.0, "dr_grpo": -3.0 / 6, "dapo": -1.0}[loss_type]
    assert float(loss) == pytest.approx(expected)


def test_ratios_are_clipped_low_and_high():
    e = episode([turn(0, "a", [1], [2, 3])], {"a": 1.0, "b": 0.0})
    batch = collate(seat_samples(e, "a"), pad_id=0)
    cfg = GRPOConfig(epsilon_low=0.2, epsilon_high=0.28)
    high = torch.log(torch.tensor([[1.0, 2.0, 2.0]])) + batch["old_logprobs"]  # ratio 2 > 1.28
    loss, stats = grpo_loss(high[:, 1:], batch, torch.tensor([1.0]), cfg)
    assert float(loss) == pytest.approx(-1.28) and stats["clip_fraction"] == 1.0


def learning_curve(monkeypatch=None, flip=False, steps=14):
    if flip:
        real = grpo_module.advantages
        monkeypatch.setattr(grpo_module, "advantages", lambda *a, **k: -real(*a, **k))
    cfg = GRPOConfig(group_size=8, instances_per_step=4, lr=1e-2, max_new_tokens=8, lora_rank=0, seed=0)
    history = GRPOTrainer(GAME_ID, "tiny", config=cfg).train(steps, log=False)
    return [h["mean_reward"] for h in history]


def test_grpo_raises_the_mean_reward_and_a_flipped_sign_lowers_it(monkeypatch):
    rewards = learning_curve()
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.2
    flipped = learning_curve(monkeypatch, flip=True)
    assert np.mean(flipped[-3:]) < np.mean(flipped[:3])


def test_trainer_writes_metrics_and_an_atomic_checkpoint(tmp_path):
    cfg = GRPOConfig(group_size=2, instances_per_step=2, max_new_tokens=4, lora_rank=4)
    GRPOTrainer(GAME_ID, "tiny", config=cfg, out=tmp_path).train(2, log=False)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "checkpoint" / "adapter_config.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_config_values_are_clear_errors():
    with pytest.raises(ValueError, match="loss_type"):
        GRPOConfig(loss_type="ppo")
    with pytest.raises(ValueError, match="group_size"):
        GRPOConfig(group_size=1)


def test_gae_runs_over_the_seats_own_tokens_and_skips_context():
    from dialogym.trainers.ppo import gae

    own = np.array([0, 1, 1, 0, 0, 1], dtype=float)
    rewards = np.array([0, 0, 0, 0, 0, 1.0])
    values = np.array([9.0, 0.5, 0.5, 9.0, 9.0, 0.5])  # context values must never be used
    adv, ret = gae(rewards, values * own, own, gamma=1.0, lam=1.0)
    assert adv.tolist() == pytest.approx([0, 0.5, 0.5, 0, 0, 0.5])
    assert ret.tolist() == pytest.approx([0, 1, 1, 0, 0, 1])


def test_ppo_raises_the_mean_reward(monkeypatch):
    from dialogym.trainers.ppo import PPOConfig, PPOTrainer

    cfg = PPOConfig(group_size=8, instances_per_step=4, lr=1e-2, max_new_tokens=8, lora_rank=0, seed=0)
    history = PPOTrainer(GAME_ID, "tiny", config=cfg).train(14, log=False)
    rewards = [h["mean_reward"] for h in history]
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.2
    assert all(np.isfinite(h["value_loss"]) for h in history)
