"""On-policy at any temperature: the behaviour log-probs a backend records are under the
distribution it sampled from (tempered), and the trainers score the same tokens under the same
temperature, so the policy that played has ratio 1 before its first update."""

import pytest
import torch

from dialogym.trainers import grpo as grpo_module
from dialogym.trainers import ppo as ppo_module
from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer, grpo_loss
from dialogym.trainers.ppo import PPOConfig, PPOTrainer
from dialogym.trainers.toy import GAME_ID


def first_ratios(monkeypatch, algo: str, temperature: float) -> torch.Tensor:
    """exp(new - recorded) on the learner's own tokens in the first loss of one update."""
    config_cls, trainer_cls, module = (PPOConfig, PPOTrainer, ppo_module) if algo == "ppo" else (
        GRPOConfig, GRPOTrainer, grpo_module)
    cfg = config_cls(group_size=4, instances_per_step=2, lora_rank=0, bf16=False, epochs=1, temperature=temperature,
                     max_new_tokens=12)
    trainer = trainer_cls(GAME_ID, "tiny", config=cfg)
    seen = []

    def recording(logp, part, *args, **kwargs):
        seen.append((logp.detach(), part))
        return grpo_loss(logp, part, *args, **kwargs)

    monkeypatch.setattr(module, "grpo_loss", recording)
    trainer.update(trainer.play(0))
    logp, part = seen[0]
    own = part["loss_mask"][:, 1:] > 0
    assert int(own.sum()) >= 8
    return torch.exp(logp - part["old_logprobs"][:, 1:])[own]


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
@pytest.mark.parametrize("temperature", [0.7, 1.3])
def test_the_ratio_is_one_before_the_first_update_at_any_temperature(monkeypatch, algo, temperature):
    ratios = first_ratios(monkeypatch, algo, temperature)
    torch.testing.assert_close(ratios, torch.ones_like(ratios), rtol=0, atol=1e-5)


def test_scoring_at_temperature_one_what_was_sampled_at_another_is_off_policy(monkeypatch):
    # the control: a trainer that forgets the temperature sees ratios far from 1
    original = grpo_module.token_logprobs
    monkeypatch.setattr(grpo_module, "token_logprobs", lambda model, part, **kw: original(model, part))
    ratios = first_ratios(monkeypatch, "grpo", 0.7)
    assert (ratios - 1).abs().max() > 0.05


@pytest.mark.parametrize("temperature", [0.7, 1.0, 1.3])
def test_a_sampled_replys_log_probs_are_under_the_tempered_distribution_it_was_drawn_from(temperature):
    from dialogym.agents.base import Request, Sampling
    from dialogym.agents.hf import TransformersAgent
    from dialogym.agents.models import tiny_model

    model, tokenizer = tiny_model()
    agent = TransformersAgent(model, tokenizer, name="tiny")
    request = Request(messages=[{"role": "user", "content": "Say something."}], seed=3,
                      sampling=Sampling(temperature=temperature, max_new_tokens=10))
    (reply,) = agent.act([request])
    ids = torch.tensor([reply.prompt_token_ids + reply.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(reply.prompt_token_ids) - 1 : -1].float() / temperature
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(reply.token_ids)[:, None])[:, 0]
    torch.testing.assert_close(torch.tensor(reply.logprobs), expected, rtol=0, atol=1e-4)
