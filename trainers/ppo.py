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
seat's tokens). ``grad_accum`` splits the batch into chunks normalised by the whole batch's
counts, as in GRPO. Checkpoints hold the value head too (``value_head.pt``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .grpo import GRPOConfig, GRPOTrainer, grpo_loss
from .samples import episode_samples


@dataclass
class PPOConfig(GRPOConfig):
    gamma: float = 1.0
    lam: float = 0.95
    vf_coef: float = 0.5
    vf_clip: float = 0.2
    epochs: int = 2


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


class PPOTrainer(GRPOTrainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import torch

        super().__init__(*args, **kwargs)
        hidden = self.model.config.hidden_size if hasattr(self.model, "config") else self.model.base_model.config.hidden_size
        with torch.random.fork_rng():
            torch.manual_seed(self.cfg.seed)
            self.value_head = torch.nn.Linear(hidden, 1).to(self.device)
        if self.world_size > 1:
            self._broadcast_parameters(self.value_head)
        self.optimizer.add_param_group({"params": list(self.value_head.parameters())})

    def _forward(self, batch: dict) -> tuple[Any, Any]:
        import torch

        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
        logits = out.logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, batch["input_ids"][:, 1:, None])[..., 0]
        # V at position t estimates the return of generating token t (read from the state before it)
        values = self.value_head(out.hidden_states[-1][:, :-1].float())[..., 0]
        return logp, values

    def update(self, episodes) -> dict[str, float]:
        import torch

        cfg = self.cfg
        samples = episode_samples(episodes, "learner")
        reward_sum, n_sequences = self._sum_across_ranks([float(sum(s.reward for s in samples)), float(len(samples))])
        if not n_sequences:
            return {"loss": 0.0, "samples": 0.0}
        batch = self._collate(samples)
        own = batch["loss_mask"][:, 1:].detach().cpu().numpy()
        if samples:
            with torch.no_grad():
                _, old_values_t = self._forward(batch)
            old_values = old_values_t.detach().cpu().numpy() * own
        else:  # a rank with no samples still joins the step's all-reduces
            old_values = np.zeros_like(own)
        rewards = np.zeros_like(own)
        for i, s in enumerate(samples):
            rewards[i, s.turn_ends[-1] - 1] = s.reward  # shifted by one: position t predicts token t+1
        adv = np.zeros_like(own)
        returns = np.zeros_like(own)
        for i in range(len(samples)):
            adv[i], returns[i] = gae(rewards[i], old_values[i], own[i], cfg.gamma, cfg.lam)
        # whitened over the seat's tokens of the whole step (every rank's)
        flat = adv[own > 0]
        n_tokens, first, second = self._sum_across_ranks([float(flat.size), float(flat.sum()), float((flat**2).sum())])
        if n_tokens > 1:
            mean = first / n_tokens
            adv = (adv - mean) / (np.sqrt(max(second / n_tokens - mean**2, 0.0)) + 1e-6) * own
        adv_t, ret_t, old_v = (torch.tensor(x, dtype=torch.float32, device=self.device) for x in (adv, returns, old_values))
        self.model.train()
        stats = {"clip_fraction": 0.0, "kl": 0.0}
        for _ in range(cfg.epochs):
            self.optimizer.zero_grad()
            total, total_value, weighted = 0.0, 0.0, {k: 0.0 for k in stats}
            for index in self._chunks(len(samples)):
                part = {k: v[index] for k, v in batch.items()}
                logp, values = self._forward(part)
                ref = self._reference_logprobs(part)
                policy_loss, part_stats = grpo_loss(logp, part, adv_t[index], cfg, ref, sequences=int(n_sequences), tokens=n_tokens)
                mask = part["loss_mask"][:, 1:]
                clipped = old_v[index] + torch.clamp(values - old_v[index], -cfg.vf_clip, cfg.vf_clip)
                vf = torch.max((values - ret_t[index]) ** 2, (clipped - ret_t[index]) ** 2)
                value_loss = 0.5 * (vf * mask).sum() / max(n_tokens, 1.0)
                loss = policy_loss + cfg.vf_coef * value_loss
                loss.backward()
                total, total_value = total + float(loss.detach()), total_value + float(value_loss.detach())
                part_tokens = float(mask.sum())
                for k in weighted:
                    weighted[k] += part_stats[k] * part_tokens
            self._reduce_gradients()
            self.optimizer.step()
            total, total_value, *sums = self._sum_across_ranks([total, total_value, *weighted.values()])
            # token-weighted over the whole step (every chunk, every rank), as GRPO reports them
            stats = {k: v / max(n_tokens, 1.0) for k, v in zip(weighted, sums, strict=True)}
        self.model.eval()
        return {
            "loss": total, "value_loss": total_value,
            "mean_reward": reward_sum / n_sequences, "samples": n_sequences, **stats,
        }

    def _write_checkpoint(self, folder: Path) -> None:
        import torch

        super()._write_checkpoint(folder)
        torch.save(self.value_head.state_dict(), folder / "value_head.pt")

    def load(self, path: str | Path) -> None:
        import torch

        super().load(path)
        self.value_head.load_state_dict(torch.load(Path(path) / "value_head.pt", map_location=self.device))


__all__ = ["PPOConfig", "PPOTrainer", "gae", "grpo_loss"]
