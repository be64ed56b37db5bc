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
"The batch" is the whole step: the counts are taken over every gradient-accumulation chunk
and every process, so ``grad_accum`` and the number of processes change memory and speed,
not the objective.

Several processes (``torchrun --nproc_per_node N``, ``accelerate launch``): each rank plays
its share of the step's instances, advantages are computed over every rank's rewards, and
gradients are summed across ranks before each optimizer step, so all ranks hold the same
weights; only rank 0 writes metrics and checkpoints.
"""

from __future__ import annotations

import copy
import json
import os
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

from ._fs import atomic_replace_dir, recover_dir
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


def grpo_loss(logp: Any, batch: dict, adv: Any, cfg: GRPOConfig, ref_logp: Any = None, *,
              sequences: int | None = None, tokens: float | None = None) -> tuple[Any, dict[str, float]]:
    """The clipped surrogate (plus KL) of ``batch``, normalised as ``cfg.loss_type`` says.

    ``sequences`` and ``tokens`` are the number of sequences and of own tokens of the whole
    batch that ``batch`` is a part of (gradient-accumulation chunks, other ranks); by default
    this batch's own. With them, the losses of the parts add up to the loss of the whole.
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
        loss = (per_token * mask).sum() / (max(n_sequences, 1) * cfg.max_new_tokens)
    else:
        loss = (per_token * mask).sum() / n_tokens
    own = mask.sum().clamp(min=1)
    clipped = ((ratio < 1 - cfg.epsilon_low) | (ratio > 1 + cfg.epsilon_high)).float()
    stats = {"clip_fraction": float((clipped * mask).sum() / own), "kl": float((kl * mask).sum() / own)}
    return loss, stats


def _distributed() -> tuple[int, int]:
    """(rank, world size). Under a launcher (``torchrun``, ``accelerate launch``: ``WORLD_SIZE``
    > 1 in the environment) joins its process group: gloo on CPU, nccl on GPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


class GRPOTrainer:
    """Trains ``model`` (a model spec) on ``game`` against ``opponent`` (a model spec).

    ``tensorboard=True`` also logs the metrics under ``out/tensorboard`` (needs the
    ``tensorboard`` package).
    """

    def __init__(self, game: str, model: str = "tiny", opponent: str = "scripted", config: GRPOConfig | None = None,
                 out: str | Path | None = None, learner: TransformersAgent | None = None, tensorboard: bool = False) -> None:
        import torch

        self.game, self.cfg = game, config or GRPOConfig()
        self.roles = spec(game).game_cls.roles
        self.rank, self.world_size = _distributed()
        if self.cfg.instances_per_step < self.world_size:
            raise ValueError(f"instances_per_step={self.cfg.instances_per_step} is fewer than the {self.world_size} "
                             "processes: each process plays whole instances; raise instances_per_step")
        on_rank_gpu = {"device": f"cuda:{torch.cuda.current_device()}"} if self.world_size > 1 and torch.cuda.is_available() else {}
        self.agent = learner or load_agent(model, dtype="float32", **on_rank_gpu)
        if self.cfg.lora_rank > 0 and not hasattr(self.agent.model, "disable_adapter"):
            from peft import LoraConfig, get_peft_model

            with torch.random.fork_rng():
                torch.manual_seed(self.cfg.seed)
                lora = LoraConfig(r=self.cfg.lora_rank, lora_alpha=2 * self.cfg.lora_rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
                self.agent.model = get_peft_model(self.agent.model, lora)
        self.agent.name = LEARNER
        self.model = self.agent.model
        self.device = next(self.model.parameters()).device
        if self.world_size > 1:
            self._broadcast_parameters(self.model)
        # the KL reference: the base model (LoRA: the adapter switched off; full fine-tuning: a frozen copy)
        self.reference = None
        if self.cfg.beta > 0 and not hasattr(self.model, "disable_adapter"):
            self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opponent = load_agent(opponent) if len(self.roles) > 1 else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=self.cfg.lr, fused=True)
        from dialogym.agents.hf import cpu_supports_bf16

        self.device_type = "cuda" if self.device.type == "cuda" else "cpu"
        self.bf16 = self.cfg.bf16 if self.cfg.bf16 is not None else (self.device_type == "cuda" or cpu_supports_bf16())
        self.agent.autocast = torch.bfloat16 if self.bf16 else None
        self.out = Path(out) if out else None
        self.writer = None
        if tensorboard:
            if self.out is None:
                raise ValueError("tensorboard=True needs out=: the event files go to OUT/tensorboard")
            if self.rank == 0:
                self.writer = _tensorboard_writer(self.out / "tensorboard")
        self.steps = 0

    # -- playing -----------------------------------------------------------------------
    def episode_specs(self, step: int) -> list[EpisodeSpec]:
        """This process's share of the step: instances ``rank, rank + world_size, ...``, each
        played ``group_size`` times (whole groups stay on one process)."""
        cfg, specs = self.cfg, []
        for i in range(self.rank, cfg.instances_per_step, self.world_size):
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

    # -- learning ----------------------------------------------------------------------
    def update(self, episodes: Sequence[Episode]) -> dict[str, float]:
        import torch

        samples = episode_samples(episodes, LEARNER)
        everyone = self._gather(samples)  # every rank's samples, for advantages and metrics
        if not everyone:
            return {"loss": 0.0, "samples": 0.0}
        offset = sum(len(part) for part in everyone[: self.rank])
        all_samples = [s for part in everyone for s in part]
        adv_all = advantages(all_samples, self.cfg.scale_rewards, self.cfg.baseline)
        adv = torch.tensor(adv_all[offset : offset + len(samples)], dtype=torch.float32, device=self.device)
        batch = self._collate(samples)
        # the whole step's sizes, so that every chunk on every rank is normalised alike
        own_tokens = float(batch["loss_mask"][:, 1:].sum()) if samples else 0.0
        n_sequences, n_tokens = self._sum_across_ranks([float(len(samples)), own_tokens])
        stats = {"clip_fraction": 0.0, "kl": 0.0}
        self.model.train()
        for _ in range(self.cfg.epochs):
            self.optimizer.zero_grad()
            total, weighted = 0.0, {k: 0.0 for k in stats}
            for index in self._chunks(len(samples)):
                part = {k: v[index] for k, v in batch.items()}
                with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
                    logp = token_logprobs(self.model, part)
                    ref = self._reference_logprobs(part)
                loss, part_stats = grpo_loss(logp, part, adv[index], self.cfg, ref, sequences=int(n_sequences), tokens=n_tokens)
                loss.backward()
                total += float(loss.detach())
                part_tokens = float(part["loss_mask"][:, 1:].sum())
                for k in weighted:
                    weighted[k] += part_stats[k] * part_tokens
            self._reduce_gradients()
            self.optimizer.step()
            total, *sums = self._sum_across_ranks([total, *weighted.values()])
            stats = {k: v / max(n_tokens, 1.0) for k, v in zip(weighted, sums, strict=True)}
        self.model.eval()
        rewards = [s.reward for s in all_samples]
        return {"loss": total, "mean_reward": float(np.mean(rewards)), "samples": float(len(all_samples)), **stats}

    def _collate(self, samples: Sequence[Sample]) -> dict:
        """The padded batch on the model's device (an empty batch for a rank with no samples)."""
        import torch

        if not samples:
            empty = torch.zeros((0, 1), device=self.device)
            return {"input_ids": empty.long(), "attention_mask": empty.long(), "loss_mask": empty, "old_logprobs": empty}
        return {k: v.to(self.device) for k, v in collate(samples, pad_id=self.agent.tokenizer.pad_token_id).items()}

    def _chunks(self, n: int) -> list[Any]:
        """Index tensors of the ``grad_accum`` chunks of a batch of ``n`` samples."""
        import torch

        parts = np.array_split(np.arange(n), max(1, min(self.cfg.grad_accum, n)))
        return [torch.as_tensor(part, device=self.device) for part in parts if len(part)]

    def _reference_logprobs(self, part: dict) -> Any:
        import torch

        if self.cfg.beta <= 0:
            return None
        with torch.no_grad():
            if self.reference is not None:
                return token_logprobs(self.reference, part)
            with self.model.disable_adapter():
                return token_logprobs(self.model, part)

    # -- several processes ---------------------------------------------------------------
    def _gather(self, samples: list[Sample]) -> list[list[Sample]]:
        """Each rank's samples, without their tokens (only keys and rewards travel)."""
        if self.world_size == 1:
            return [samples] if samples else []
        import torch.distributed as dist

        light = [Sample([], [], [], s.reward, s.episode_id, s.instance_id, s.seat) for s in samples]
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, light)
        return parts if any(parts) else []

    def _sum_across_ranks(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def _reduce_gradients(self) -> None:
        """Sum the gradients of every trainable parameter across ranks (each rank's loss is
        already normalised by the whole step's counts), in one flat all-reduce; a rank
        without samples contributes zeros."""
        if self.world_size == 1:
            return
        import torch
        import torch.distributed as dist

        params = [p for group in self.optimizer.param_groups for p in group["params"] if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
        dist.all_reduce(flat)
        for p in params:
            n = p.numel()
            p.grad = flat[:n].view_as(p).clone()
            flat = flat[n:]

    def _broadcast_parameters(self, module: Any) -> None:
        """Rank 0's weights everywhere, so that every rank starts from the same model."""
        import torch.distributed as dist

        for p in module.parameters():
            dist.broadcast(p.data, 0)

    # -- the loop, logs and checkpoints ----------------------------------------------------
    def train(self, steps: int, log: bool = True) -> list[dict[str, float]]:
        history = []
        for _ in range(steps):
            started = time.perf_counter()
            metrics = self.update(self.play(self.steps))
            metrics.update(step=float(self.steps), seconds=time.perf_counter() - started)
            self.steps += 1
            history.append(metrics)
            if self.rank == 0:
                self._log(metrics, log)
        if self.out is not None:
            self.save(self.out / "checkpoint")
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()  # the checkpoint exists when train() returns on any rank
        return history

    def _log(self, metrics: dict[str, float], echo: bool) -> None:
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with (self.out / "metrics.jsonl").open("a") as handle:
                handle.write(json.dumps(metrics) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                if key != "step":
                    self.writer.add_scalar(f"train/{key}", value, self.steps)
            self.writer.flush()
        if echo:
            print(f"step {self.steps}: reward {metrics.get('mean_reward', 0):+.3f} loss {metrics['loss']:+.4f}")

    def save(self, path: str | Path) -> Path:
        """Weights (the adapter, for LoRA) and the config, written to a temporary folder and
        swapped into place (:func:`_fs.atomic_replace_dir`): a crash at any moment leaves a
        complete checkpoint. Only rank 0 writes."""
        path = Path(path)
        if self.rank != 0:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}-*"):  # half-written by a save that crashed
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        try:
            self._write_checkpoint(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return atomic_replace_dir(tmp, path)

    def _write_checkpoint(self, folder: Path) -> None:
        self.model.save_pretrained(folder)
        self.agent.tokenizer.save_pretrained(folder)
        (folder / "grpo_config.json").write_text(json.dumps(asdict(self.cfg), indent=1))

    def load(self, path: str | Path) -> None:
        """Load the weights of a checkpoint :meth:`save` wrote (after finishing or undoing a
        replacement a crash interrupted)."""
        path = recover_dir(path)
        from safetensors.torch import load_file

        if hasattr(self.model, "disable_adapter"):
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(self.model, load_file(path / "adapter_model.safetensors", device=str(self.device)))
        else:
            _, unexpected = self.model.load_state_dict(load_file(path / "model.safetensors", device=str(self.device)), strict=False)
            if unexpected:
                raise ValueError(f"{path}: weights {unexpected[:3]}... do not belong to this model")


def _tensorboard_writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError("tensorboard logging needs the tensorboard package: pip install tensorboard") from err
    return SummaryWriter(str(folder))


def _with_play_seed(item: EpisodeSpec, play: int) -> EpisodeSpec:
    """The same instance, with reply seeds of its own: the instance is fixed, the seed moves."""
    from dialogym.envs import draw_instance

    game = spec(item.game).game(**item.game_options)
    instance = draw_instance(game, item.seed, level=item.level, split=item.split)
    return EpisodeSpec(item.game, seed=item.seed * 7 + play + 1, seats=item.seats, instance=instance,
                       level=item.level, split=item.split, tags=item.tags)
