"""Group Relative Policy Optimization on dialogym games, in one file.

A step: play ``instances_per_step`` instances ``group_size`` times each with the learner in
its seat (the rollout engine batches them all), turn every episode into token-level samples
of the learner's seat (:mod:`samples`), and take a clipped policy-gradient step:

    A_i      = (r_i - mean(r_group)) / (std(r_group) + eps)       group = same instance and seat
                                                                   (no division if scale_rewards=False;
                                                                    baseline="role": group = same seat)
    ratio_t  = exp(logp_t - logp_old_t)
    loss_t   = -min(ratio_t * A, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A)  + beta * KL_t
    KL_t     = exp(ref_t - logp_t) - (ref_t - logp_t) - 1          (k3 estimator, reference = adapter off)

Normalisation (``loss_type``), over the learner's own tokens only (loss mask):
    "grpo"     mean over each sequence's tokens, then over sequences      (Shao et al. 2024)
    "dr_grpo"  sum over tokens / (number of sequences * max_new_tokens)   (Liu et al. 2025, Dr. GRPO)
    "dapo"     sum over tokens / number of tokens in the batch            (Yu et al. 2025, DAPO)
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dialogym.agents.base import Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.envs import Episode, spec

from .samples import Sample, collate, episode_samples

LEARNER = "learner"


@dataclass
class GRPOConfig:
    group_size: int = 4
    instances_per_step: int = 4
    lr: float = 1e-4
    epsilon_low: float = 0.2
    epsilon_high: float = 0.28
    beta: float = 0.0
    loss_type: str = "dapo"
    scale_rewards: bool = True
    baseline: str = "group"
    epochs: int = 1
    grad_accum: int = 1
    temperature: float = 1.0
    max_new_tokens: int = 32
    lora_rank: int = 8  # 0: full fine-tuning
    #: bf16 autocast for generation and the forward pass (weights and optimizer stay float32);
    #: None: on where the hardware has native bf16 (CUDA, AVX512-BF16/AMX CPUs), as TRL does
    bf16: bool | None = None
    seat: str | None = None  # None: the learner takes each seat in turn
    level: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss_type not in ("grpo", "dr_grpo", "dapo"):
            raise ValueError(f"loss_type must be grpo, dr_grpo or dapo, got {self.loss_type!r}")
        if self.baseline not in ("group", "role"):
            raise ValueError(f"baseline must be 'group' or 'role', got {self.baseline!r}")
        if self.group_size < 2:
            raise ValueError("group_size must be at least 2: advantages are relative to the group")


def advantages(samples: Sequence[Sample], scale: bool = True, baseline: str = "group") -> np.ndarray:
    """Group-relative advantages; a group is one instance and seat, or one seat (``role``)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[(s.instance_id, s.seat) if baseline == "group" else (s.seat,)].append(i)
    rewards = np.array([s.reward for s in samples], dtype=np.float64)
    out = np.zeros(len(samples))
    for members in groups.values():
        r = rewards[members]
        centred = r - r.mean()
        out[members] = centred / (r.std() + 1e-4) if scale else centred
    return out


def token_logprobs(model: Any, batch: dict) -> Any:
    """log pi(token_t | tokens_<t) for t >= 1, shape (batch, length - 1), computed only where
    ``loss_mask`` is 1 (0 elsewhere): the vocabulary projection, the costliest part of a
    small model's forward pass, runs on the seat's own tokens alone, not on the context."""
    import torch

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers live inside
    hidden = lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    own = batch["loss_mask"][:, 1:] > 0
    selected = hidden[:, :-1][own]
    logits = lm.get_output_embeddings()(selected).float()
    targets = batch["input_ids"][:, 1:][own]
    out = torch.zeros(own.shape, dtype=torch.float32, device=logits.device)
    out[own] = torch.log_softmax(logits, -1).gather(-1, targets[:, None])[:, 0]
    return out


def grpo_loss(logp: Any, batch: dict, adv: Any, cfg: GRPOConfig, ref_logp: Any = None) -> tuple[Any, dict[str, float]]:
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
    if cfg.loss_type == "grpo":
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
    elif cfg.loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / (mask.shape[0] * cfg.max_new_tokens)
    else:
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
    tokens = mask.sum().clamp(min=1)
    clipped = ((ratio - 1).abs() > cfg.epsilon_low).float()
    stats = {"clip_fraction": float((clipped * mask).sum() / tokens), "kl": float((kl * mask).sum() / tokens)}
    return loss, stats


class GRPOTrainer:
    """Trains ``model`` (a model spec) on ``game`` against ``opponent`` (a model spec)."""

    def __init__(self, game: str, model: str = "tiny", opponent: str = "scripted", config: GRPOConfig | None = None,
                 out: str | Path | None = None, learner: TransformersAgent | None = None) -> None:
        import torch

        self.game, self.cfg = game, config or GRPOConfig()
        self.roles = spec(game).game_cls.roles
        self.agent = learner or load_agent(model, dtype="float32")
        if self.cfg.lora_rank > 0 and not hasattr(self.agent.model, "disable_adapter"):
            from peft import LoraConfig, get_peft_model

            with torch.random.fork_rng():
                torch.manual_seed(self.cfg.seed)
                lora = LoraConfig(r=self.cfg.lora_rank, lora_alpha=2 * self.cfg.lora_rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
                self.agent.model = get_peft_model(self.agent.model, lora)
        self.agent.name = LEARNER
        self.model = self.agent.model
        self.opponent = load_agent(opponent) if len(self.roles) > 1 else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=self.cfg.lr, fused=True)
        from dialogym.agents.hf import cpu_supports_bf16

        device = str(next(self.model.parameters()).device)
        self.device_type = "cuda" if device.startswith("cuda") else "cpu"
        self.bf16 = self.cfg.bf16 if self.cfg.bf16 is not None else (self.device_type == "cuda" or cpu_supports_bf16())
        self.agent.autocast = torch.bfloat16 if self.bf16 else None
        self.out = Path(out) if out else None
        self.steps = 0

    def episode_specs(self, step: int) -> list[EpisodeSpec]:
        cfg, specs = self.cfg, []
        for i in range(cfg.instances_per_step):
            seat = cfg.seat or self.roles[(step * cfg.instances_per_step + i) % len(self.roles)]
            seats = {role: LEARNER if role == seat else "opponent" for role in self.roles}
            instance_seed = cfg.seed * 1_000_003 + step * 1_009 + i
            for g in range(cfg.group_size):
                # the same instance (drawn from instance_seed) played group_size times
                specs.append(EpisodeSpec(self.game, seed=instance_seed, seats=seats, level=cfg.level, split="train",
                                         tags={"play": str(g), "step": str(step)}))
        return specs

    def play(self, step: int) -> list[Episode]:
        agents: dict[str, Any] = {LEARNER: self.agent}
        if self.opponent is not None:
            agents["opponent"] = self.opponent
        sampling = Sampling(temperature=self.cfg.temperature, max_new_tokens=self.cfg.max_new_tokens)
        self.model.eval()
        # every play of every instance in one batched engine run
        specs = [_with_play_seed(s, int(s.tags["play"])) for s in self.episode_specs(step)]
        return RolloutEngine(agents, sampling=sampling).run(specs)

    def update(self, episodes: Sequence[Episode]) -> dict[str, float]:
        import torch

        samples = episode_samples(episodes, LEARNER)
        if not samples:
            return {"loss": 0.0, "samples": 0.0}
        adv = torch.tensor(advantages(samples, self.cfg.scale_rewards, self.cfg.baseline), dtype=torch.float32)
        batch = collate(samples, pad_id=self.agent.tokenizer.pad_token_id)
        stats: dict[str, float] = {}
        self.model.train()
        for _ in range(self.cfg.epochs):
            self.optimizer.zero_grad()
            chunks = np.array_split(np.arange(len(samples)), max(1, min(self.cfg.grad_accum, len(samples))))
            total = 0.0
            for chunk in chunks:
                index = torch.tensor(chunk)
                part = {k: v[index] for k, v in batch.items()}
                with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
                    logp = token_logprobs(self.model, part)
                    ref = None
                    if self.cfg.beta > 0 and hasattr(self.model, "disable_adapter"):
                        with torch.no_grad(), self.model.disable_adapter():
                            ref = token_logprobs(self.model, part)
                loss, stats = grpo_loss(logp, part, adv[index], self.cfg, ref)
                (loss * len(chunk) / len(samples)).backward()
                total += float(loss.detach()) * len(chunk) / len(samples)
            self.optimizer.step()
        self.model.eval()
        rewards = [s.reward for s in samples]
        return {"loss": total, "mean_reward": float(np.mean(rewards)), "samples": float(len(samples)), **stats}

    def train(self, steps: int, log: bool = True) -> list[dict[str, float]]:
        history = []
        for _ in range(steps):
            started = time.perf_counter()
            metrics = self.update(self.play(self.steps))
            metrics.update(step=float(self.steps), seconds=time.perf_counter() - started)
            self.steps += 1
            history.append(metrics)
            if self.out is not None:
                self.out.mkdir(parents=True, exist_ok=True)
                with (self.out / "metrics.jsonl").open("a") as handle:
                    handle.write(json.dumps(metrics) + "\n")
            if log:
                print(f"step {self.steps}: reward {metrics.get('mean_reward', 0):+.3f} loss {metrics['loss']:+.4f}")
        if self.out is not None:
            self.save(self.out / "checkpoint")
        return history

    def save(self, path: Path) -> Path:
        """Weights (the adapter, for LoRA) and the config, written aside then renamed into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        self.model.save_pretrained(tmp)
        self.agent.tokenizer.save_pretrained(tmp)
        (tmp / "grpo_config.json").write_text(json.dumps(asdict(self.cfg), indent=1))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
        return path


def _with_play_seed(item: EpisodeSpec, play: int) -> EpisodeSpec:
    """The same instance, with reply seeds of its own: the instance is fixed, the seed moves."""
    from dialogym.envs import draw_instance

    game = spec(item.game).game(**item.game_options)
    instance = draw_instance(game, item.seed, level=item.level, split=item.split)
    return EpisodeSpec(item.game, seed=item.seed * 7 + play + 1, seats=item.seats, instance=instance,
                       level=item.level, split=item.split, tags=item.tags)
