"""Guided training is exact: the learner's replies are decoded under the seat's move grammar,
and the trainers score them under the same masks, replayed from the recorded grammar and
tokens; so the policy that played has ratio 1, a forced token has no gradient, and a tiny
model learns the one choice the grammar leaves it (and unlearns it with the sign flipped)."""

import dataclasses

import numpy as np
import pytest
import torch

from dialogym.agents import guidance
from dialogym.envs import Turn
from dialogym.trainers import core as core_module
from dialogym.trainers import grpo as grpo_module
from dialogym.trainers import ppo as ppo_module
from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer, grpo_loss
from dialogym.trainers.logprobs import token_logprobs
from dialogym.trainers.ppo import PPOConfig, PPOTrainer
from dialogym.trainers.samples import collate, episode_samples, guided_masks, own_positions
from dialogym.trainers.toy import CHOICE_ID


def trainer(algo="grpo", **settings):
    config_cls, trainer_cls = (PPOConfig, PPOTrainer) if algo == "ppo" else (GRPOConfig, GRPOTrainer)
    cfg = config_cls(**{"group_size": 4, "instances_per_step": 2, "lora_rank": 0, "bf16": False, "guided": True, **settings})
    return trainer_cls(CHOICE_ID, "tiny", config=cfg)


def first_losses(monkeypatch, algo):
    """The (new log-probs, batch part) of every ``grpo_loss`` call of one update, in order."""
    module = ppo_module if algo == "ppo" else grpo_module
    seen = []

    def recording(logp, part, *args, **kwargs):
        seen.append((logp.detach(), part))
        return grpo_loss(logp, part, *args, **kwargs)

    monkeypatch.setattr(module, "grpo_loss", recording)
    return seen


def ratios_of_the_first_update(monkeypatch, algo):
    """exp(new - recorded) on the learner's own tokens, before its first optimizer step."""
    t = trainer(algo, epochs=1)
    episodes = t.play(0)
    assert all(turn.grammar is not None for e in episodes for turn in e.turns)  # guided=True made them guided
    seen = first_losses(monkeypatch, algo)
    t.update(episodes)
    logp, part = seen[0]
    own = part["loss_mask"][:, 1:] > 0
    return torch.exp(logp - part["old_logprobs"][:, 1:])[own]


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_the_ratio_of_guided_replies_is_one_before_the_first_update(monkeypatch, algo):
    ratios = ratios_of_the_first_update(monkeypatch, algo)
    assert ratios.numel() >= 8 * 10  # 8 replies of "CHOICE: d" and end-of-sequence
    torch.testing.assert_close(ratios, torch.ones_like(ratios), rtol=0, atol=1e-5)


@pytest.mark.parametrize("algo", ["grpo", "ppo"])
def test_without_the_masks_the_ratio_of_guided_replies_is_not_one(monkeypatch, algo):
    # the control: the same check fails when the trainer does not replay the masks
    monkeypatch.setattr(core_module, "guided_masks", lambda *a, **k: None)
    ratios = ratios_of_the_first_update(monkeypatch, algo)
    assert (ratios - 1).abs().max() > 0.5


def forced_mask(samples, batch, vocab_size):
    """(batch, length) 1 on the own tokens whose grammar mask allowed exactly one token."""
    out = torch.zeros_like(batch["loss_mask"])
    for row, s in enumerate(samples):
        bits = np.unpackbits(s.allowed, axis=-1, bitorder="little")[:, :vocab_size]
        for position, allowed in zip(own_positions(s), bits.sum(1), strict=True):
            out[row, position] = float(allowed == 1)
    return out


def logits_gradient_of(t, batch, restrict_to):
    """d loss / d logits of the own positions, the loss restricted to ``restrict_to``."""
    captured = []

    def keep(module, args, output):
        output.retain_grad()
        captured.append(output)

    handle = t.model.get_output_embeddings().register_forward_hook(keep)
    try:
        t.model.zero_grad()
        logp = token_logprobs(t.model, batch)
        loss, _ = grpo_loss(logp, {**batch, "loss_mask": restrict_to}, torch.ones(len(restrict_to)), t.cfg)
        loss.backward()
    finally:
        handle.remove()
    return logp.detach(), captured[0].grad


def test_a_token_with_one_legal_choice_has_log_prob_zero_and_no_gradient():
    t = trainer()
    samples = episode_samples(t.play(0), "learner")
    batch = t.collate(samples)
    forced = forced_mask(samples, batch, t.agent.vocab_size())
    # per reply: the 8 bytes of "CHOICE: " and the end of sequence are forced, the digit is not
    assert forced.sum(1).tolist() == [9.0] * len(samples)
    logp, grad = logits_gradient_of(t, batch, forced)
    assert torch.equal(logp[forced[:, 1:] > 0], torch.zeros(int(forced.sum())))
    assert torch.count_nonzero(grad) == 0
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in t.model.parameters())

    # controls: the chosen digit does get a gradient, and so do forced tokens without the masks
    chosen = batch["loss_mask"] - forced
    _, digit_grad = logits_gradient_of(t, batch, chosen)
    assert torch.count_nonzero(digit_grad) > 0
    unmasked = {k: v for k, v in batch.items() if k != "allowed"}
    unmasked_logp, unmasked_grad = logits_gradient_of(t, unmasked, forced)
    assert (unmasked_logp[forced[:, 1:] > 0] < -1e-3).all() and torch.count_nonzero(unmasked_grad) > 0


def test_free_turns_of_a_sample_with_a_guided_turn_are_scored_unmasked():
    t = trainer()
    guided_episode = t.play(0)[0]
    first = guided_episode.turns[0]
    context = [*first.prompt_token_ids, *first.token_ids, 40, 41, 42]
    free = Turn(index=1, seat="chooser", messages=[], raw="x", prompt_token_ids=context, token_ids=[50, 51, 52, 53],
                logprobs=[-1.0] * 4, grammar=None)
    episode = guided_episode.model_copy(update={"turns": [first, free]})
    (sample,) = episode_samples([episode], "learner")
    assert [span.grammar is not None for span in sample.spans] == [True, False]
    guided_masks(sample, t.agent.grammar_tokenizer(), t.agent.vocab_size())
    batch = collate([sample], pad_id=0)
    with torch.no_grad():
        masked = token_logprobs(t.model, batch)
        plain = token_logprobs(t.model, {k: v for k, v in batch.items() if k != "allowed"})
    guided_positions, free_positions = ([p - 1 for p in range(span.start, span.stop)] for span in sample.spans)
    assert torch.equal(masked[0, free_positions], plain[0, free_positions])
    assert not torch.equal(masked[0, guided_positions], plain[0, guided_positions])


def test_masks_are_replayed_once_per_sample_whatever_the_epochs_and_chunks(monkeypatch):
    calls = []
    real = guidance.replay_masks
    monkeypatch.setattr(guidance, "replay_masks", lambda *a, **k: calls.append(1) or real(*a, **k))
    t = trainer("ppo", epochs=3, grad_accum=2)
    episodes = t.play(0)
    t.update(episodes)
    distinct = {(e.turns[0].grammar, tuple(e.turns[0].token_ids)) for e in episodes}  # one guided turn each
    assert len(calls) == len(distinct) < len(episodes)  # identical replies of a group are replayed once
    samples = episode_samples(episodes, "learner")
    t.collate(samples), t.collate(samples)
    assert len(calls) == 2 * len(distinct)  # fresh samples: replayed once, then kept on them


def test_the_trl_adapter_refuses_guided_play_in_one_line():
    from dialogym.trainers.trl_adapter import DialogymRollout

    with pytest.raises(ValueError, match="guided moves are not supported with TRL's GRPOTrainer") as err:
        DialogymRollout(CHOICE_ID, guided=True)
    assert "\n" not in str(err.value)


def flip_advantages(monkeypatch):
    real = grpo_module.advantages
    monkeypatch.setattr(grpo_module, "advantages", lambda *a, **k: -real(*a, **k))


def choice_curve(steps=5):
    t = trainer(group_size=8, instances_per_step=4, lr=1e-2, seed=0)
    history = t.train(steps, log=False)
    return [h["mean_reward"] for h in history]


def test_guided_grpo_learns_the_right_choice_and_a_flipped_sign_unlearns_it(monkeypatch):
    # measured: 0.31, 0.59, 0.84, 0.91, 1.00; flipped: 0.31, 0.09, 0.03, 0.00, 0.00
    rewards = choice_curve()
    assert np.mean(rewards[-2:]) > rewards[0] + 0.3, rewards
    flip_advantages(monkeypatch)
    flipped = choice_curve()
    assert np.mean(flipped[-2:]) < flipped[0] - 0.1, flipped


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_shared_prefixes_give_the_log_probs_and_gradients_of_whole_passes(lora_rank):
    """A group's plays share their prompt: encoding it once (its cache gathered to every
    row) must score and differentiate exactly like a pass per row."""
    from dialogym.trainers.core import LEARNER
    from dialogym.trainers.logprobs import _own_hidden

    t = trainer(lora_rank=lora_rank, group_size=4, instances_per_step=3)
    for p in (p for p in t.model.parameters() if p.requires_grad):  # LoRA's B starts at 0: make the adapter matter
        torch.nn.init.normal_(p, std=0.02)
    batch = t.collate(episode_samples(t.play(0), LEARNER))
    own = batch["loss_mask"][:, 1:] > 0
    lm = t.model.get_base_model() if lora_rank else t.model
    assert _own_hidden(lm.get_decoder(), batch, own) is not None  # 3 prompts, 12 rows
    results = []
    for share in (False, True):
        t.model.zero_grad()
        logp = token_logprobs(t.model, batch, share_prefixes=share)
        (logp * torch.linspace(-1, 1, logp.numel()).reshape(logp.shape)).sum().backward()
        results.append((logp.detach(), [p.grad.clone() for p in t.model.parameters() if p.requires_grad]))
    (whole, whole_grads), (shared, shared_grads) = results
    torch.testing.assert_close(shared, whole, rtol=0, atol=1e-5)
    for a, b in zip(shared_grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_rows_that_share_no_prefix_take_the_plain_pass():
    from dialogym.trainers.core import LEARNER
    from dialogym.trainers.logprobs import _own_hidden

    t = trainer(group_size=2, instances_per_step=2)
    samples = episode_samples(t.play(0), LEARNER)
    first, second = samples[0], dataclasses.replace(samples[1], allowed=None)
    second.input_ids = [(second.input_ids[0] + 1) % 200, *second.input_ids[1:]]  # a different first token
    batch = t.collate([first, second])
    assert _own_hidden(t.model.get_decoder(), batch, batch["loss_mask"][:, 1:] > 0) is None
