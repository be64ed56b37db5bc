"""Group Relative Policy Optimization on dialogym games, in one file.

A step: play ``instances_per_step`` instances ``group_size`` times each with the learner in
its seat (the rollout engine batches them all), turn every episode into token-level samples
of the learner's seat (:mod:`samples`), and take a clipped policy-gradient step:

    A_i      = (r_i - mean(r_group)) / (std(r_group) + eps)       group = same instance, seat and opponents
                                                                   (no division if scale_rewards=False;
                                                                    baseline="role": same seat and opponents;
                                                                    an episode counts once however it is split)
    ratio_t  = exp(logp_t - logp_old_t)
    loss_t   = -min(ratio_t * A, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A)  + beta * KL_t
    KL_t     = exp(ref_t - logp_t) - (ref_t - logp_t) - 1          (k3 estimator, reference = adapter off)

Normalisation (``loss_type``), over the learner's own tokens only (loss mask):
    "grpo"     mean over each sequence's tokens, then over sequences      (Shao et al. 2024)
    "dr_grpo"  sum over tokens / (number of sequences * max_new_tokens)   (Liu et al. 2025, Dr. GRPO)
    "dapo"     sum over tokens / number of tokens in the batch            (Yu et al. 2025, DAPO)
"The batch" is the whole step: the counts are taken over every gradient-accumulation chunk
and every process, so ``grad_accum`` and the number of processes change memory and speed,
not the objective.

Several processes (``torchrun --nproc_per_node N``, ``accelerate launch``): each rank plays
its share of the step's instances and advantages are computed over every rank's rewards;
playing, gradient accumulation, the all-reduces, checkpoints and logs are the trainer core's
(:mod:`core`), shared with PPO. This file is the objective: advantages, loss, update.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from dialogym.envs import Episode

from .config import GRPOConfig
from .core import LEARNER, TrainerCore, own_tokens
from .logprobs import token_logprobs
from .samples import Sample, episode_rewards, episode_samples


def group_key(sample: Sample, baseline: str = "group") -> tuple:
    """The group whose rewards make ``sample``'s baseline: one instance, seat and set of
    opponents (``group``), or one seat and set of opponents (``role``). Conditioning on the
    opponents keeps a weak partner's gift from counting as the learner's merit when the
    episodes of a step face different opponents (a league); with one opponent it changes
    nothing. With credit per round (:func:`~.samples.seat_samples`), each round of the game is
    a group of its own."""
    if baseline == "group":
        return sample.instance_id, sample.seat, sample.opponents, sample.round
    return sample.seat, sample.opponents, sample.round


def advantages(samples: Sequence[Sample], scale: bool = True, baseline: str = "group") -> np.ndarray:
    """Group-relative advantages (groups: :func:`group_key`). An episode split into several
    samples (a chat template that does not extend its earlier turns) counts once in its
    group's mean and standard deviation, and each of its samples gets its advantage."""
    groups: dict[tuple, dict[tuple, float]] = defaultdict(dict)
    for s in samples:
        groups[group_key(s, baseline)][s.reward_key] = s.reward
    stats = {}
    for key, episodes in groups.items():
        r = np.array(list(episodes.values()), dtype=np.float64)
        stats[key] = (r.mean(), r.std() + 1e-4 if scale else 1.0)
    out = np.zeros(len(samples))
    for i, s in enumerate(samples):
        mean, spread = stats[group_key(s, baseline)]
        out[i] = (s.reward - mean) / spread
    return out


def flat_groups(samples: Sequence[Sample], baseline: str = "group") -> float:
    """The share of groups whose rewards are all equal: they give no advantage, so no signal."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for s in samples:
        groups[group_key(s, baseline)].append(s.reward)
    return float(np.mean([max(r) == min(r) for r in groups.values()])) if groups else 0.0


def grpo_loss(logp: Any, batch: dict, adv: Any, cfg: GRPOConfig, ref_logp: Any = None, *,
              sequences: int | None = None, tokens: float | None = None,
              reply_cap: int | None = None) -> tuple[Any, dict[str, float]]:
    """The clipped surrogate (plus KL) of ``batch``, normalised as ``cfg.loss_type`` says.

    ``sequences`` and ``tokens`` are the number of sequences and of own tokens of the whole
    batch that ``batch`` is a part of (gradient-accumulation chunks, other ranks); by default
    this batch's own. With them, the losses of the parts add up to the loss of the whole.
    ``reply_cap`` is the token cap the replies were generated under (dr_grpo divides by it;
    default ``cfg.max_new_tokens``).
    """
    import torch

    mask = batch["loss_mask"][:, 1:]
    old = batch["old_logprobs"][:, 1:]
    ratio = torch.exp(logp - old)
    a = adv[:, None] if adv.dim() == 1 else adv  # one advantage per sequence (GRPO) or per token (PPO)
    per_token = -torch.min(ratio * a, torch.clamp(ratio, 1 - cfg.epsilon_low, 1 + cfg.epsilon_high) * a)
    kl = torch.zeros_like(per_token)
    if ref_logp is not None and cfg.beta > 0:
        delta = ref_logp - logp
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + cfg.beta * kl
    n_sequences = mask.shape[0] if sequences is None else sequences
    n_tokens = mask.sum().clamp(min=1) if tokens is None else max(float(tokens), 1.0)
    if cfg.loss_type == "grpo":
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).sum() / max(n_sequences, 1)
    elif cfg.loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / (max(n_sequences, 1) * (reply_cap or cfg.max_new_tokens))
    else:
        loss = (per_token * mask).sum() / n_tokens
    own = mask.sum().clamp(min=1)
    clipped = ((ratio < 1 - cfg.epsilon_low) | (ratio > 1 + cfg.epsilon_high)).float()
    stats = {"clip_fraction": float((clipped * mask).sum() / own), "kl": float((kl.detach() * mask).sum() / own)}
    return loss, stats


class GRPOTrainer(TrainerCore):
    """GRPO on ``game`` against ``opponent`` (see :class:`core.TrainerCore` for the
    arguments): every sample of a group shares one advantage, on each of its own tokens."""

    config_cls, config_file = GRPOConfig, "grpo_config.json"

    def update(self, episodes: Sequence[Episode]) -> dict[str, float]:
        import torch

        cfg = self.cfg
        samples = episode_samples(episodes, LEARNER, cfg.credit)
        everyone = self.gather_samples(samples)  # every rank's samples, for advantages and metrics
        if not everyone:
            return {"loss": 0.0, "mean_reward": 0.0, "samples": 0.0, "skipped_steps": 0.0}
        all_samples = [s for part in everyone for s in part]
        offset = sum(len(part) for part in everyone[: self.rank])
        adv_all = advantages(all_samples, cfg.scale_rewards, cfg.baseline)
        adv = torch.tensor(adv_all[offset : offset + len(samples)], dtype=torch.float32, device=self.device)
        batch = self.collate(samples)
        # the whole step's sizes, so that every chunk on every rank is normalised alike
        n_sequences, n_tokens = self.sum_across_ranks([float(len(samples)), own_tokens(batch)])

        def chunk_loss(part: dict, index: Any, ref: Any) -> tuple[Any, dict[str, float]]:
            with self.autocast():
                logp = token_logprobs(self.model, part, temperature=cfg.temperature)
            loss, stats = grpo_loss(logp, part, adv[index], cfg, ref, sequences=int(n_sequences), tokens=n_tokens,
                                    reply_cap=self.reply_cap)
            share = own_tokens(part) / max(n_tokens, 1.0)  # token-weighted over the whole step
            return loss, {k: v * share for k, v in stats.items()}

        reported = self.optimise(batch, chunk_loss, reported=("clip_fraction", "kl"))
        rewards = episode_rewards(all_samples)  # per episode and seat, whatever the credit
        return {"loss": reported.pop("loss"), "mean_reward": float(np.mean(rewards)), "samples": float(len(all_samples)),
                "flat_groups": flat_groups(all_samples, cfg.baseline), "mean_abs_advantage": float(np.mean(np.abs(adv_all))),
                **reported}


__all__ = ["GRPOConfig", "GRPOTrainer", "advantages", "flat_groups", "grpo_loss"]
