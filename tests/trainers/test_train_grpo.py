"""Samples and GRPO: exact token ids, separate masks, and a learning signal a broken sign fails."""

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from dialogym.envs import Episode, Turn
from dialogym.trainers import grpo as grpo_module
from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer, advantages, grpo_loss
from dialogym.trainers.logprobs import token_logprobs
from dialogym.trainers.samples import collate, episode_samples, seat_samples
from dialogym.trainers.toy import GAME_ID  # noqa: E402  (registers the toy game)


def turn(i, seat, prompt, generated, logprob=-1.0):
    return Turn(index=i, seat=seat, messages=[], raw="x", prompt_token_ids=prompt, token_ids=generated, logprobs=[logprob] * len(generated))


def episode(turns, rewards, seats=None, id="e"):
    return Episode(id=id, game="g", instance_id="i", instance_version="v0", instance={}, level="easy", seed=0,
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


def test_each_turn_of_a_sample_is_a_span_that_carries_the_grammar_it_was_decoded_under():
    guided = turn(0, "a", [1, 2], [3, 4]).model_copy(update={"grammar": 'start: "x"'})
    e = episode([guided, turn(1, "b", [9], [8]), turn(2, "a", [1, 2, 3, 4, 5, 6], [7])], {"a": 1.0, "b": 0.0})
    (sample,) = seat_samples(e, "a")
    assert [tuple(span) for span in sample.spans] == [(2, 4, 'start: "x"'), (6, 7, None)]
    assert sample.guided and not seat_samples(e, "b")[0].guided
    # a batch without replayed masks has no "allowed": free play is scored as before
    assert "allowed" not in collate([sample], pad_id=0)


def test_attention_mask_and_loss_mask_are_different_things():
    e = episode([turn(0, "a", [1, 2, 3], [4])], {"a": 1.0, "b": 0.0})
    batch = collate(seat_samples(e, "a") * 2 + seat_samples(episode([turn(0, "a", [1], [4])], {"a": 0.0, "b": 0.0}), "a"), pad_id=0)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["loss_mask"].tolist() == [[0, 0, 0, 1], [0, 0, 0, 1], [0, 1, 0, 0]]


def test_only_the_trained_agents_seats_give_samples():
    e = episode([turn(0, "a", [1], [2]), turn(1, "b", [1, 2, 5], [6])], {"a": 1.0, "b": 0.0})
    assert [s.seat for s in episode_samples([e], "learner")] == ["a"]


def test_group_relative_advantages_with_and_without_std_scaling_and_per_role():
    e1 = episode([turn(0, "a", [1], [2])], {"a": 1.0, "b": 0.0}, id="e1")
    e0 = [episode([turn(0, "a", [1], [2])], {"a": 0.0, "b": 0.0}, id=f"e0-{play}") for play in range(3)]
    samples = episode_samples([e1, *e0], "learner")
    scaled = advantages(samples)
    assert scaled[0] > 0 > scaled[1] and scaled.mean() == pytest.approx(0.0, abs=1e-6)
    assert advantages(samples, scale=False).tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])
    assert advantages(samples, baseline="role").tolist() == pytest.approx(scaled.tolist())


OPPONENT_REPLY = [40, 41, 42, 43]


def learner_batch_with_opponent_context(opponent_reward=0.0):
    """Two learner samples; the first one's second prompt holds the opponent's reply."""
    e = episode([turn(0, "a", [5, 6], [7, 8]), turn(1, "b", [5, 6, 7, 8], OPPONENT_REPLY),
                 turn(2, "a", [5, 6, 7, 8, *OPPONENT_REPLY, 9], [10, 11])], {"a": 1.0, "b": opponent_reward})
    e0 = episode([turn(0, "a", [5, 6], [7, 8])], {"a": 0.0, "b": 0.0})
    samples = episode_samples([e, e0], "learner")
    return samples, collate(samples, pad_id=0)


def gradient(model, batch, adv, cfg=None):
    model.zero_grad()
    loss, _ = grpo_loss(token_logprobs(model, batch), batch, adv, cfg or GRPOConfig())
    loss.backward()
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def weigh_opponent_positions(batch, positions):
    """The batch with large old log-probs and per-token advantages on the given positions."""
    out = {k: v.clone() for k, v in batch.items()}
    out["old_logprobs"][0, positions] = -4.0
    out["advantages"][0, [p - 1 for p in positions]] = 25.0  # advantage of predicting token p sits at p - 1
    return out


def test_opponent_tokens_in_the_learners_context_carry_no_loss_weight():
    from dialogym.agents.models import tiny_model

    model, _ = tiny_model()
    samples, batch = learner_batch_with_opponent_context()
    first = samples[0]
    positions = [i for i in range(len(first.input_ids)) if first.input_ids[i : i + 4] == OPPONENT_REPLY][0] + np.arange(4)
    # the opponent's reply is inside the learner's sample, as context
    assert [first.input_ids[p] for p in positions] == OPPONENT_REPLY
    assert [first.loss_mask[p] for p in positions] == [0, 0, 0, 0] and sum(first.loss_mask) == 4

    per_token = torch.tensor(advantages(samples), dtype=torch.float32)[:, None].repeat(1, batch["input_ids"].shape[1] - 1)
    batch["advantages"] = per_token

    def grad(b):
        return gradient(model, {k: v for k, v in b.items() if k != "advantages"}, b["advantages"])

    base = grad(batch)
    assert base.abs().sum() > 0
    # whatever the opponent's tokens are worth (old log-probs, advantages), the gradient is the same
    assert torch.equal(base, grad(weigh_opponent_positions(batch, positions)))
    # and so is the opponent's reward
    other_samples, other_batch = learner_batch_with_opponent_context(opponent_reward=5.0)
    other_batch["advantages"] = per_token
    assert torch.equal(base, grad(other_batch))

    # control: with the attention mask as loss mask (the known bug), the same change shows
    broken = {**batch, "loss_mask": batch["attention_mask"].float()}
    assert not torch.allclose(grad(broken), grad(weigh_opponent_positions(broken, positions)))


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


def classes(algo):
    """(config class, trainer class) of ``algo``."""
    from dialogym.trainers.ppo import PPOConfig, PPOTrainer

    return (PPOConfig, PPOTrainer) if algo == "ppo" else (GRPOConfig, GRPOTrainer)


def flip_advantages(monkeypatch, algo):
    """Negate every advantage: GRPO's group-relative ones, or PPO's GAE ones."""
    from dialogym.trainers import ppo as ppo_module

    if algo == "grpo":
        real = grpo_module.advantages
        monkeypatch.setattr(grpo_module, "advantages", lambda *a, **k: -real(*a, **k))
    else:
        real_gae = ppo_module.gae
        monkeypatch.setattr(ppo_module, "gae", lambda *a, **k: (lambda adv, ret: (-adv, ret))(*real_gae(*a, **k)))


def learning_curve(algo, steps=14):
    config_cls, trainer_cls = classes(algo)
    cfg = config_cls(group_size=8, instances_per_step=4, lr=1e-2, max_new_tokens=8, lora_rank=0, seed=0)
    history = trainer_cls(GAME_ID, "tiny", config=cfg).train(steps, log=False)
    assert all(np.isfinite(h["loss"]) and np.isfinite(h.get("value_loss", 0.0)) for h in history)
    return [h["mean_reward"] for h in history]


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_training_raises_the_mean_reward_and_a_flipped_sign_lowers_it(monkeypatch, algo):
    rewards = learning_curve(algo)
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.2
    flip_advantages(monkeypatch, algo)
    flipped = learning_curve(algo)
    assert np.mean(flipped[-3:]) < np.mean(flipped[:3])


def synthetic_episodes():
    """Four plays of one instance by the learner, with replies of 1, 2, 5 and 7 tokens."""
    lengths, rewards = [1, 2, 5, 7], [1.0, 0.0, 0.5, 0.25]
    return [episode([turn(0, "a", [5, 6, 9], list(range(20, 20 + n)), logprob=-3.0)], {"a": r}, seats={"a": "learner"},
                    id=f"play-{play}") for play, (n, r) in enumerate(zip(lengths, rewards, strict=True))]


def captured_gradient(trainer_cls, config):
    """The gradient ``update`` hands to the optimizer (the step itself is skipped)."""
    trainer = trainer_cls(GAME_ID, "tiny", config=config)
    seen = []
    trainer.optimizer.step = lambda: seen.append(torch.cat([p.grad.flatten() for g in trainer.optimizer.param_groups for p in g["params"]]))
    trainer.update(synthetic_episodes())
    return seen[0]


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_gradient_accumulation_does_not_change_the_gradient(loss_type, algo):
    config_cls, trainer_cls = classes(algo)

    def grad(accum):
        return captured_gradient(trainer_cls, config_cls(loss_type=loss_type, grad_accum=accum, lora_rank=0, bf16=False, epochs=1))

    whole = grad(1)
    assert whole.abs().sum() > 0
    for accum in (2, 4):  # chunks of unequal token counts: a per-chunk normalisation would show
        torch.testing.assert_close(grad(accum), whole, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("lora_rank", [0, 4])
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_beta_adds_a_kl_to_the_reference_for_lora_and_full_fine_tuning(lora_rank, algo):
    config_cls, trainer_cls = classes(algo)

    def kl(beta):
        cfg = config_cls(beta=beta, lora_rank=lora_rank, lr=1e-2, epochs=2, bf16=False)
        return trainer_cls(GAME_ID, "tiny", config=cfg).update(synthetic_episodes())["kl"]

    # the second epoch runs on weights the first one moved away from the reference
    assert kl(0.5) > 0
    assert kl(0.0) == 0


@pytest.mark.parametrize("lora_rank", [0, 4])
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_the_reference_log_probs_are_computed_once_a_step_and_equal_a_fresh_computation(lora_rank, algo, monkeypatch):
    config_cls, trainer_cls = classes(algo)
    cfg = config_cls(beta=0.5, lora_rank=lora_rank, lr=1e-2, epochs=3, grad_accum=2, bf16=False)
    trainer = trainer_cls(GAME_ID, "tiny", config=cfg)
    computed, parts = [], []
    reference = trainer.reference_logprobs

    def counted(part):
        parts.append(part)
        computed.append(reference(part))
        return computed[-1]

    monkeypatch.setattr(trainer, "reference_logprobs", counted)
    metrics = trainer.update(synthetic_episodes())
    assert len(computed) == 2 and metrics["kl"] > 0  # one per chunk, not one per chunk and epoch
    for part, ref in zip(parts, computed, strict=True):  # three optimizer steps later the reference is what it was
        with trainer.autocast():
            torch.testing.assert_close(reference(part), ref)


def lora_weights(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora" in n}


def flat_episodes():
    """``synthetic_episodes`` with every play rewarded alike: one flat group, no advantage."""
    return [episode(e.turns, {"a": 0.5}, seats={"a": "learner"}, id=e.id) for e in synthetic_episodes()]


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_a_step_with_no_signal_leaves_the_weights_and_the_optimizer_where_they_were(beta):
    # after a step with signal, Adam's momentum would move the weights on through a step whose
    # gradient is zero (every group flat, no KL): that step is skipped; a KL term is a signal
    trainer = GRPOTrainer(GAME_ID, "tiny", config=GRPOConfig(lora_rank=4, lr=1e-2, epochs=2, beta=beta, bf16=False))
    first = trainer.update(synthetic_episodes())
    assert first["skipped_steps"] == 0
    before, steps = lora_weights(trainer), [s["step"].item() for s in trainer.optimizer.state.values()]
    flat = trainer.update(flat_episodes())
    after = lora_weights(trainer)
    if beta == 0:
        assert flat["skipped_steps"] == 2 and flat["mean_abs_advantage"] == 0
        assert [s["step"].item() for s in trainer.optimizer.state.values()] == steps
        for name, weight in before.items():
            assert torch.equal(after[name], weight), name
    else:  # the policy moved away from the reference: the KL term pulls it back
        assert flat["skipped_steps"] == 0
        assert any(not torch.equal(after[name], weight) for name, weight in before.items())


def test_a_crash_between_moving_the_old_checkpoint_aside_and_renaming_the_new_one_in_loses_nothing(tmp_path, monkeypatch):
    from dialogym.envs import files

    cfg = GRPOConfig(group_size=2, instances_per_step=1, max_new_tokens=4, lora_rank=4)
    trainer = GRPOTrainer(GAME_ID, "tiny", config=cfg)
    path = tmp_path / "checkpoint"
    with torch.no_grad():
        for p in trainer.model.parameters():
            if p.requires_grad:
                p.add_(0.5)
    trainer.save(path)
    first = lora_weights(trainer)
    with torch.no_grad():
        for p in trainer.model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    real_replace = files.os.replace

    def crash_when_the_new_one_moves_in(src, dst):
        if Path(src).name.startswith(".checkpoint-"):
            raise OSError("simulated crash")
        real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", crash_when_the_new_one_moves_in)
    with pytest.raises(OSError, match="simulated crash"):
        trainer.save(path)
    monkeypatch.undo()
    assert not path.exists()  # the crash window: the old checkpoint is aside, the new one not in

    fresh = GRPOTrainer(GAME_ID, "tiny", config=cfg)
    fresh.load(path)  # recovers the old checkpoint
    assert all(torch.equal(fresh_weight, first[name]) for name, fresh_weight in lora_weights(fresh).items())
    assert lora_weights(fresh).keys() == first.keys()
    trainer.save(path)  # the next save replaces it and leaves nothing half-written behind
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]
    fresh.load(path)
    assert all(torch.equal(fresh_weight, lora_weights(trainer)[name]) for name, fresh_weight in lora_weights(fresh).items())


def test_ppo_checkpoints_hold_the_value_head(tmp_path):
    from dialogym.trainers.ppo import PPOConfig, PPOTrainer

    cfg = PPOConfig(group_size=2, instances_per_step=1, max_new_tokens=4, lora_rank=4, seed=1)
    trainer = PPOTrainer(GAME_ID, "tiny", config=cfg, out=tmp_path)
    trainer.train(1, log=False)
    assert (tmp_path / "checkpoint" / "value_head.pt").exists()
    fresh = PPOTrainer(GAME_ID, "tiny", config=PPOConfig(lora_rank=4, seed=2))
    assert not torch.equal(fresh.value_head.weight, trainer.value_head.weight)
    fresh.load(tmp_path / "checkpoint")
    assert torch.equal(fresh.value_head.weight, trainer.value_head.weight)
    assert torch.equal(fresh.value_head.bias, trainer.value_head.bias)


def test_tensorboard_logging_without_the_package_is_a_clear_error(tmp_path):
    pytest.importorskip("torch")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install tensorboard"):
            GRPOTrainer(GAME_ID, "tiny", config=GRPOConfig(lora_rank=0), out=tmp_path, tensorboard=True)
    else:
        GRPOTrainer(GAME_ID, "tiny", config=GRPOConfig(group_size=2, instances_per_step=1, max_new_tokens=4, lora_rank=0),
                    out=tmp_path, tensorboard=True).train(1, log=False)
        assert list((tmp_path / "tensorboard").iterdir())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_one_training_step_on_cuda_keeps_every_tensor_on_the_gpu(algo, tmp_path):
    config_cls, trainer_cls = classes(algo)
    cfg = config_cls(group_size=2, instances_per_step=2, max_new_tokens=4, lora_rank=4, beta=0.1, grad_accum=2)
    trainer = trainer_cls(GAME_ID, "tiny", config=cfg, out=tmp_path)
    assert trainer.device.type == "cuda"
    before = lora_weights(trainer)
    (metrics,) = trainer.train(1, log=False)
    assert np.isfinite(metrics["loss"]) and metrics["samples"] == 4
    assert any(not torch.equal(before[n], w) for n, w in lora_weights(trainer).items())
    if algo == "ppo":
        assert trainer.value_head.weight.device.type == "cuda"
        assert (tmp_path / "checkpoint" / "value_head.pt").exists()


def test_ppo_reports_clip_and_kl_stats_weighted_over_the_whole_step():
    from dialogym.trainers.ppo import PPOConfig, PPOTrainer

    def step(grad_accum):
        cfg = PPOConfig(group_size=4, instances_per_step=1, max_new_tokens=6, lora_rank=4, seed=3, grad_accum=grad_accum, beta=0.1)
        (metrics,) = PPOTrainer(GAME_ID, "tiny", config=cfg).train(1, log=False)
        return metrics

    whole, chunked = step(1), step(2)
    assert whole["kl"] > 0.0  # the second epoch has moved away from the reference
    # chunks are reported token-weighted over the step, not as the last chunk's values
    assert chunked["kl"] == pytest.approx(whole["kl"], rel=1e-3)
    assert chunked["clip_fraction"] == pytest.approx(whole["clip_fraction"], abs=1e-6)


def test_a_group_of_64_plays_shares_one_instance_and_gets_64_different_reply_seeds():
    from dialogym.agents.rollout import build_match, request_for

    trainer = GRPOTrainer(GAME_ID, "tiny", config=GRPOConfig(group_size=64, instances_per_step=2, lora_rank=0))
    specs = trainer.episode_specs(0)
    assert len(specs) == 128 and len({s.seed for s in specs}) == 2  # two instances, one seed each
    for seed in {s.seed for s in specs}:
        group = [build_match(s) for s in specs if s.seed == seed]
        assert [m.play for m in group] == list(range(64))
        assert len({m.instance.id for m in group}) == 1
        assert len({request_for(m, "writer").seed for m in group}) == 64
    # the next step draws other instances
    assert not {s.seed for s in specs} & {s.seed for s in trainer.episode_specs(1)}


def test_game_options_reach_every_training_episode_and_a_bad_one_fails_before_the_model_loads():
    from dialogym.agents.rollout import build_match

    config = GRPOConfig(game_options=["messages=false", "no_deal_reward=1.5"], lora_rank=0, instances_per_step=1)
    assert config.options() == {"messages": False, "no_deal_reward": 1.5}
    trainer = GRPOTrainer("dialogym/Negotiation-v0", "tiny", "scripted:fair", config)
    match = build_match(trainer.episode_specs(0)[0])
    assert match.game.messages is False and match.game.no_deal_reward == 1.5
    with pytest.raises(ValidationError, match="key=value"):
        GRPOConfig(game_options=["messages"])
    with pytest.raises(ValueError, match="bad game option"):
        GRPOTrainer("dialogym/Negotiation-v0", "no-such-model", config=GRPOConfig(game_options=["colour=1"]))


@pytest.mark.parametrize("config_cls", ["GRPOConfig", "PPOConfig", "LeagueConfig"])
def test_every_trainer_setting_has_a_default_and_a_help_text_and_unknown_keys_are_refused(config_cls):
    from dialogym.trainers import config

    cls = getattr(config, config_cls)
    required = {name for name, field in cls.model_fields.items() if field.is_required()}
    assert required <= {"game"}
    assert all(field.description for field in cls.model_fields.values())
    with pytest.raises(ValueError, match="max_new_token"):
        cls(**dict.fromkeys(required, GAME_ID), max_new_token=4)


def test_ppo_config_keeps_grpo_settings_and_its_own_defaults():
    from dialogym.trainers.ppo import PPOConfig

    assert issubclass(PPOConfig, GRPOConfig)
    assert PPOConfig().epochs == 2 and GRPOConfig().epochs == 1
    assert PPOConfig(gamma=0.9).model_copy(update={"lam": 0.5}).lam == 0.5


def test_the_train_step_benchmark_times_one_of_our_steps():
    from argparse import Namespace

    from dialogym.trainers.perf.train_step import our_step_seconds

    seconds = our_step_seconds("tiny", Namespace(generations=2, instances=1, length=4, warmup=0, steps=1))
    assert 0 < seconds < 60


def test_flat_groups_is_the_share_of_groups_without_reward_variance():
    from dialogym.trainers.grpo import flat_groups
    from dialogym.trainers.samples import Sample

    def sample(instance, reward):
        return Sample([1, 2], [0, 1], [0.0, 0.0], reward, f"e{instance}{reward}", instance, "listener")

    samples = [sample("a", 1.0), sample("a", 1.0), sample("b", 0.0), sample("b", 1.0), sample("c", 0.0), sample("c", 0.0)]
    assert flat_groups(samples) == 2 / 3
    assert flat_groups(samples, baseline="role") == 0.0  # one group per seat, with both rewards


def test_an_episode_split_into_several_samples_counts_once_in_its_groups_statistics():
    from dialogym.trainers.samples import Sample

    def sample(episode_id, reward):
        return Sample([1, 2], [0, 1], [0.0, 0.0], reward, episode_id, "i", "a")

    # episode "x" (reward 1) was split into three samples; "y" and "z" scored 0
    split = [sample("x", 1.0), sample("x", 1.0), sample("x", 1.0), sample("y", 0.0), sample("z", 0.0)]
    whole = [sample("x", 1.0), sample("y", 0.0), sample("z", 0.0)]
    assert advantages(split, scale=False).tolist() == pytest.approx([2 / 3] * 3 + [-1 / 3] * 2)
    assert advantages(split).tolist() == pytest.approx([advantages(whole)[0]] * 3 + [advantages(whole)[1]] * 2)


def test_baselines_are_conditioned_on_the_opponent_when_opponents_differ():
    from dialogym.trainers.samples import Sample

    def sample(episode_id, reward, opponent):
        return Sample([1, 2], [0, 1], [0.0, 0.0], reward, episode_id, "i", "a", opponents=(opponent,))

    # against the weak partner every play scores 1, against the strong one 0: no play was
    # better than another against the same opponent, so no advantage
    samples = [sample("w1", 1.0, "weak"), sample("w2", 1.0, "weak"), sample("s1", 0.0, "strong"), sample("s2", 0.0, "strong")]
    for baseline in ("group", "role"):
        assert advantages(samples, baseline=baseline).tolist() == pytest.approx([0.0] * 4)
    mixed = [sample("w1", 1.0, "weak"), sample("w2", 0.0, "weak")]
    assert advantages(mixed, scale=False).tolist() == pytest.approx([0.5, -0.5])


def test_samples_name_the_agents_in_the_other_seats():
    e = episode([turn(0, "a", [1], [2])], {"a": 1.0, "b": 0.0}, seats={"a": "learner", "b": "it-3"})
    (sample,) = episode_samples([e], "learner")
    assert sample.opponents == ("it-3",)


def test_several_training_opponents_meet_the_instances_in_turn_one_per_group():
    """Each instance of a step meets the next opponent, the same in every play of its group;
    the seatings name each opponent, so the records and the baselines tell them apart."""
    config = GRPOConfig(group_size=2, instances_per_step=3, seat="bob", max_new_tokens=4, game_options=["messages=false"])
    trainer = GRPOTrainer("dialogym/Negotiation-v1", "tiny", ["scripted:fair", "scripted:greedy"], config)
    assert set(trainer.opponents) == {"scripted:fair", "scripted:greedy"}
    specs = trainer.episode_specs(0)
    assert [s.seats["alice"] for s in specs] == ["scripted:fair"] * 2 + ["scripted:greedy"] * 2 + ["scripted:fair"] * 2
    assert {s.seats["bob"] for s in specs} == {"learner"}
    assert [s.seats["alice"] for s in trainer.episode_specs(1)][::2] == ["scripted:greedy", "scripted:fair", "scripted:greedy"]
    played = trainer.play(0)
    assert {e.seats["alice"] for e in played} == {"scripted:fair", "scripted:greedy"}
    # one spec, or a list of one, keeps the seat name "opponent"
    single = GRPOTrainer("dialogym/Negotiation-v1", "tiny", ["scripted:fair"], config)
    assert list(single.opponents) == ["opponent"] and {s.seats["alice"] for s in single.episode_specs(0)} == {"opponent"}
    with pytest.raises(ValueError, match="give a model spec"):
        GRPOTrainer("dialogym/Negotiation-v1", "tiny", [], config)


# -- credit per round ---------------------------------------------------------------------
def round_turn(i, seat, prompt, generated, round):
    return turn(i, seat, prompt, generated).model_copy(update={"round": round})


def rounds_episode(id, rounds, rewards=None):
    """Seat a: one reply in each of two rounds (the second's prompt extends the first's ids)."""
    turns = [round_turn(0, "a", [1, 2], [3], 0), round_turn(1, "b", [9], [8], 0), round_turn(2, "a", [1, 2, 3, 4], [5], 1)]
    total = rewards or {s: sum(r[s] for r in rounds) for s in ("a", "b")}
    return episode(turns, total, id=id).model_copy(update={"round_rewards": rounds})


def test_credit_per_round_makes_a_sample_of_each_round_with_its_own_reward():
    e = rounds_episode("e", [{"a": 0.5, "b": -0.5}, {"a": -0.25, "b": 0.25}])
    (whole,) = seat_samples(e, "a")
    assert whole.reward == 0.25 and whole.round is None
    first, second = seat_samples(e, "a", credit="round")
    assert (first.round, first.reward, first.input_ids, first.loss_mask) == (0, 0.5, [1, 2, 3], [0, 0, 1])
    # the second round's sample keeps the whole conversation as context and trains its own reply only
    assert (second.round, second.reward, second.input_ids, second.loss_mask) == (1, -0.25, [1, 2, 3, 4, 5], [0, 0, 0, 0, 1])
    # an aborted episode: the round it did not finish gets what the finished ones leave of the reward
    aborted = rounds_episode("x", [{"a": 0.5, "b": -0.5}], rewards={"a": -1.0, "b": 0.0})
    assert [s.reward for s in seat_samples(aborted, "a", credit="round")] == [0.5, -1.5]


def test_credit_per_round_refuses_a_game_without_rounds_and_an_unknown_credit():
    e = episode([turn(0, "a", [1], [2])], {"a": 1.0, "b": 0.0})
    with pytest.raises(ValueError, match="g has no rounds"):
        seat_samples(e, "a", credit="round")
    with pytest.raises(ValueError, match="credit='hand'"):
        seat_samples(e, "a", credit="hand")
    with pytest.raises(ValidationError):
        GRPOConfig(credit="hand")


def test_each_round_has_its_own_baseline():
    # two plays of one instance: round 0 went the same (+0.5 each), round 1 differed (+1 / -1);
    # per episode the plays' totals differ (1.5 / -0.5), per round only the second round does
    plays = [rounds_episode("p1", [{"a": 0.5, "b": -0.5}, {"a": 1.0, "b": -1.0}]),
             rounds_episode("p2", [{"a": 0.5, "b": -0.5}, {"a": -1.0, "b": 1.0}])]
    by_round = episode_samples(plays, "learner", credit="round")
    assert [s.round for s in by_round] == [0, 1, 0, 1]
    assert advantages(by_round, scale=False).tolist() == pytest.approx([0.0, 1.0, 0.0, -1.0])
    assert advantages(episode_samples(plays, "learner"), scale=False).tolist() == pytest.approx([1.0, -1.0])


def test_a_kuhn_training_step_with_credit_per_round_trains_one_sample_a_hand():
    """Two hands an episode: each seat's sample of a hand carries that hand's chips."""
    config = GRPOConfig(group_size=2, instances_per_step=1, max_new_tokens=8, guided=True, credit="round",
                        game_options=["hands=2"])
    trainer = GRPOTrainer("dialogym/KuhnPoker-v0", "tiny", "scripted:random", config)
    episodes = trainer.play(0)
    samples = episode_samples(episodes, "learner", credit="round")
    assert sorted({s.round for s in samples}) == [0, 1]
    for e in episodes:
        seat = next(s for s, who in e.seats.items() if who == "learner")
        mine = [s for s in samples if s.episode_id == e.id]
        assert [s.reward for s in mine] == [r[seat] for r in e.round_rewards]
        assert sum(s.reward for s in mine) == pytest.approx(e.rewards[seat])
    metrics = trainer.update(episodes)
    assert metrics["samples"] == len(samples) and np.isfinite(metrics["loss"])


def test_samples_gathered_across_ranks_keep_their_round():
    from dialogym.trainers.core import light_sample

    plays = [rounds_episode("p1", [{"a": 0.5, "b": -0.5}, {"a": 1.0, "b": -1.0}]),
             rounds_episode("p2", [{"a": 0.5, "b": -0.5}, {"a": -1.0, "b": 1.0}])]
    samples = episode_samples(plays, "learner", credit="round")
    light = [light_sample(s) for s in samples]
    assert [s.round for s in light] == [0, 1, 0, 1] and light[0].input_ids == []
    assert advantages(light, scale=False).tolist() == pytest.approx(advantages(samples, scale=False).tolist())


def test_the_reported_mean_reward_is_per_episode_whatever_the_credit():
    from dialogym.trainers.samples import episode_rewards

    e = rounds_episode("e", [{"a": 0.5, "b": -0.5}, {"a": -0.25, "b": 0.25}])
    assert episode_rewards(seat_samples(e, "a", credit="round")) == [0.25]
    assert episode_rewards(seat_samples(e, "a")) == [0.25]
    split = episode([turn(0, "a", [1, 2], [3, 4]), turn(1, "a", [1, 2, 99, 5], [7])], {"a": 1.0, "b": 0.0})
    assert len(seat_samples(split, "a")) == 2 and episode_rewards(seat_samples(split, "a")) == [1.0]


def test_an_aborted_kuhn_match_puts_the_whole_penalty_on_the_hand_cut_short():
    from dialogym.envs import new_match

    match = new_match("dialogym/KuhnPoker-v0", 3, split="test", hands=2, max_retries=0)
    for move in ["[bet]", "[call]", "no idea"]:  # the first hand is played out, the second aborted
        match.submit(match.to_act()[0], move)
    e = match.episode({"player_0": "learner", "player_1": "learner"})
    assert e.status == "aborted" and e.round_rewards == [{"player_0": 0.0, "player_1": 0.0}]
    from dialogym.trainers.samples import round_reward

    offender = match.aborted_by
    assert round_reward(e, offender, 0) == 0.0 and round_reward(e, offender, 1) == e.rewards[offender] < 0
    assert sum(round_reward(e, seat, r) for r in (0, 1) for seat in ("player_0",)) == e.rewards["player_0"]
