"""PPO with a value head, advantages over the trained seat's own tokens only.

Rewards sit on the seat's turns: the episode reward of the seat is placed on the last token
it generated (earlier turn ends get 0). Values are read at the seat's own generated tokens;
GAE runs over those positions in order and skips every context token in between (opponent,
judge and game-master text is not a step of this seat's policy):

    delta_k = r_k + gamma * V_{k+1} - V_k          k = the seat's generated tokens, in order
    A_k     = delta_k + gamma * lam * A_{k+1}      (V after the last own token = 0)
    R_k     = A_k + V_k

Losses: the clipped policy loss of :mod:`grpo` (its ``loss_type`` normalisations and its
optional KL to the reference, ``beta``) on whitened ``A``, plus ``vf_coef`` times the clipped
value loss ``max((V - R)^2, (V_old + clip(V - V_old, ±vf_clip) - R)^2) / 2`` (mean over the
seat's tokens). Playing, ``grad_accum`` chunks normalised by the whole step's counts, the
all-reduces of several processes, checkpoints and logs are the trainer core's (:mod:`core`),
shared with GRPO; checkpoints hold the value head too (``value_head.pt``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dialogym.envs import Episode

from .config import PPOConfig
from .core import LEARNER, TrainerCore, own_tokens
from .grpo import grpo_loss
from .logprobs import token_logprobs
from .samples import episode_rewards, episode_samples


def gae(rewards: np.ndarray, values: np.ndarray, own: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns on the positions where ``own`` is 1; 0 elsewhere."""
    advantages = np.zeros_like(values)
    positions = np.flatnonzero(own)
    next_value, running = 0.0, 0.0
    for k in positions[::-1]:
        delta = rewards[k] + gamma * next_value - values[k]
        running = delta + gamma * lam * running
        advantages[k] = running
        next_value = values[k]
    return advantages, (advantages + values) * own


class PPOTrainer(TrainerCore):
    """PPO on ``game`` against ``opponent`` (see :class:`core.TrainerCore` for the
    arguments), with a value head on the model's last hidden state."""

    config_cls, config_file = PPOConfig, "ppo_config.json"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import torch

        super().__init__(*args, **kwargs)
        hidden = self.model.config.hidden_size if hasattr(self.model, "config") else self.model.base_model.config.hidden_size
        with torch.random.fork_rng():
            torch.manual_seed(self.cfg.seed)
            self.value_head = torch.nn.Linear(hidden, 1).to(self.device)
        if self.world_size > 1:
            self.broadcast_parameters(self.value_head)
        self.optimizer.add_param_group({"params": list(self.value_head.parameters())})

    def logprobs_and_values(self, batch: dict) -> tuple[Any, Any]:
        """log pi of the seat's own tokens, and V at every position: V at position t estimates
        the return of generating token t + 1 (read from the state before it)."""
        with self.autocast():
            logp, hidden = token_logprobs(self.model, batch, temperature=self.cfg.temperature, return_hidden=True)
        return logp, self.value_head(hidden[:, :-1].float())[..., 0]

    def update(self, episodes: Sequence[Episode]) -> dict[str, float]:
        import torch

        cfg = self.cfg
        samples = episode_samples(episodes, LEARNER, cfg.credit)
        rewards = episode_rewards(samples)  # per episode and seat, whatever the credit
        reward_sum, n_episodes, n_sequences = self.sum_across_ranks([float(sum(rewards)), float(len(rewards)), float(len(samples))])
        if not n_sequences:
            return {"loss": 0.0, "mean_reward": 0.0, "samples": 0.0, "skipped_steps": 0.0}
        batch = self.collate(samples)
        own = batch["loss_mask"][:, 1:].detach().cpu().numpy()

        # rewards on the seat's last token, values of the policy that played, GAE over own tokens
        old_values = np.zeros_like(own)  # a rank with no samples still joins the step's all-reduces
        with torch.no_grad():
            for index in self._chunks(len(samples)):
                _, values = self.logprobs_and_values({k: v[index] for k, v in batch.items()})
                old_values[index.cpu().numpy()] = values.float().cpu().numpy() * own[index.cpu().numpy()]
        rewards = np.zeros_like(own)
        for i, s in enumerate(samples):
            rewards[i, s.turn_ends[-1] - 1] = s.reward  # shifted by one: position t predicts token t+1
        adv, returns = np.zeros_like(own), np.zeros_like(own)
        for i in range(len(samples)):
            adv[i], returns[i] = gae(rewards[i], old_values[i], own[i], cfg.gamma, cfg.lam)

        # whitened over the seat's tokens of the whole step (every rank's)
        flat = adv[own > 0]
        n_tokens, first, second = self.sum_across_ranks([float(flat.size), float(flat.sum()), float((flat**2).sum())])
        if n_tokens > 1:
            mean = first / n_tokens
            adv = (adv - mean) / (np.sqrt(max(second / n_tokens - mean**2, 0.0)) + 1e-6) * own
        adv_t, ret_t, old_v = (torch.tensor(x, dtype=torch.float32, device=self.device) for x in (adv, returns, old_values))

        def chunk_loss(part: dict, index: Any, ref: Any) -> tuple[Any, dict[str, float]]:
            logp, values = self.logprobs_and_values(part)
            policy_loss, stats = grpo_loss(logp, part, adv_t[index], cfg, ref, sequences=int(n_sequences), tokens=n_tokens,
                                           reply_cap=self.reply_cap)
            mask = part["loss_mask"][:, 1:]
            clipped = old_v[index] + torch.clamp(values - old_v[index], -cfg.vf_clip, cfg.vf_clip)
            vf = torch.max((values - ret_t[index]) ** 2, (clipped - ret_t[index]) ** 2)
            value_loss = 0.5 * (vf * mask).sum() / max(n_tokens, 1.0)
            share = own_tokens(part) / max(n_tokens, 1.0)  # token-weighted over the whole step
            return policy_loss + cfg.vf_coef * value_loss, {"value_loss": float(value_loss.detach()),
                                                            **{k: v * share for k, v in stats.items()}}

        reported = self.optimise(batch, chunk_loss, reported=("value_loss", "clip_fraction", "kl"))
        return {"loss": reported.pop("loss"), "value_loss": reported.pop("value_loss"),
                "mean_reward": reward_sum / n_episodes, "samples": n_sequences, **reported}

    def _write_checkpoint(self, folder: Path) -> None:
        import torch

        super()._write_checkpoint(folder)
        torch.save(self.value_head.state_dict(), folder / "value_head.pt")

    def load(self, path: str | Path) -> None:
        import torch

        super().load(path)
        self.value_head.load_state_dict(torch.load(Path(path) / "value_head.pt", map_location=self.device))


__all__ = ["PPOConfig", "PPOTrainer", "gae", "grpo_loss"]
