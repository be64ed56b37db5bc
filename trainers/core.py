"""What every policy-gradient trainer shares, in one place; the objectives are elsewhere.

:class:`TrainerCore` holds the learner (a model spec loaded as a LoRA adapter or for full
fine-tuning) and does everything around an objective's loss:

- **play**: a step's episodes, every group of plays of every instance in one batched
  :class:`~dialogym.agents.rollout.RolloutEngine` run (:meth:`~TrainerCore.episode_specs`);
- **optimise**: ``epochs`` optimizer steps on a batch, each split into ``grad_accum`` chunks
  whose losses the objective has normalised by the whole step's counts, so the chunks'
  gradients add up to the whole batch's (:meth:`~TrainerCore.optimise`);
- **several processes** (``torchrun --nproc_per_node N``, ``accelerate launch``): each rank
  plays whole instances of its share, the counts and gradients are summed across ranks
  before every optimizer step, and rank 0's weights are broadcast at the start, so every
  rank holds the same weights; only rank 0 writes;
- **checkpoints**: written to a temporary folder and swapped into place
  (:func:`~dialogym.envs.files.atomic_replace_dir`), read back after finishing or undoing a
  swap a crash interrupted (:func:`~dialogym.envs.files.recover_dir`);
- **logs**: ``metrics.jsonl``, TensorBoard (``tensorboard=True``) and the terminal;
- **guided moves** (``guided=True``, or a ``+guided`` model spec): the learner's replies are
  decoded under the seat's move grammar, and :func:`~logprobs.token_logprobs` scores them
  under the same masks, replayed from the recorded grammar and tokens, so the importance
  ratio of the policy that played is exactly 1.

An objective (:class:`~dialogym.trainers.grpo.GRPOTrainer`,
:class:`~dialogym.trainers.ppo.PPOTrainer`) subclasses it and writes :meth:`~TrainerCore.update`:
samples, advantages, and the loss of one chunk.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dialogym.agents.base import Sampling
from dialogym.agents.hf import TransformersAgent, cpu_supports_bf16
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import ModelSpec, load_agent
from dialogym.envs import Episode, derive_seed, spec
from dialogym.envs.files import atomic_replace_dir, recover_dir

from .config import TrainerConfig
from .logprobs import token_logprobs
from .samples import Sample, collate, guided_masks

#: the agent name of the model being trained, in episode seatings
LEARNER = "learner"

#: (the chunk, its rows in the batch, the reference's log-probs of it or None) -> the chunk's loss
#: and the numbers it reports, each already a share of the whole step's value (so that they add
#: up over chunks and ranks)
ChunkLoss = Callable[[dict, Any, Any], tuple[Any, dict[str, float]]]


def own_tokens(batch: dict) -> float:
    """The number of tokens the seat generated in ``batch`` (the loss mask's ones)."""
    return float(batch["loss_mask"][:, 1:].sum()) if batch["loss_mask"].numel() else 0.0


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


def check_game_options(game: str, options: Mapping[str, Any], what: str = "") -> None:
    """Build ``game`` with ``options`` once, so that a bad option fails in one line (a
    ``ValueError``, its message after ``what``) before any model loads."""
    try:
        spec(game).game(**options)
    except TypeError as err:
        raise ValueError(f"{what}{err}") from err


def _opponents(opponent: str | Sequence[str] | None) -> dict[str, Any]:
    """The training opponents by seat name: ``{"opponent": agent}`` for one spec, ``{spec:
    agent}`` for several (each loaded once)."""
    if opponent is None:
        return {}
    specs = list(dict.fromkeys([opponent] if isinstance(opponent, str) else opponent))
    if not specs:
        raise ValueError("opponent: give a model spec, a list of them, or None (no other seats played)")
    if len(specs) == 1:
        return {"opponent": load_agent(specs[0])}
    if LEARNER in specs:
        raise ValueError(f"opponent: {LEARNER!r} names the learner's seat; give the opponents' model specs")
    return {spec: load_agent(spec) for spec in specs}


def light_sample(sample: Sample) -> Sample:
    """``sample`` without its tokens: the keys and the reward that advantages need (what
    travels between ranks)."""
    return Sample([], [], [], sample.reward, sample.episode_id, sample.instance_id, sample.seat,
                  opponents=sample.opponents, round=sample.round)


class TrainerCore:
    """Trains ``model`` (a model spec, a string or parsed; or the model of the agent
    ``learner``) on ``game`` against ``opponent`` (a model spec, or several: each instance of
    a step then meets one of them in turn, the same one in every play of its group; None: no
    other seats are played by this trainer). The agent that plays, :attr:`agent`, is built from it
    (:meth:`~dialogym.agents.hf.TransformersAgent.with_`), on the same model: ``learner`` keeps
    its name and settings, while its model is the one trained.

    ``tensorboard=True`` also logs the metrics under ``out/tensorboard`` (needs the
    ``tensorboard`` package). Subclasses write :meth:`update`.
    """

    #: the objective's config class (the default config is its defaults), and the file a
    #: checkpoint keeps the config in
    config_cls: type[TrainerConfig] = TrainerConfig
    config_file = "trainer_config.json"

    def __init__(self, game: str, model: str | ModelSpec = "tiny", opponent: str | Sequence[str] | None = "scripted",
                 config: TrainerConfig | None = None,
                 out: str | Path | None = None, learner: TransformersAgent | None = None, tensorboard: bool = False) -> None:
        import torch

        self.game, self.cfg = game, config or self.config_cls()
        self.roles = spec(game).game_cls.roles
        #: the longest reply the learner is allowed: the run's cap within the game's, guided
        #: replies included (the one dr_grpo's normaliser divides by)
        self.reply_cap = min(self.cfg.max_new_tokens, spec(game).game_cls.max_reply_tokens)
        check_game_options(game, self.cfg.options())
        self.rank, self.world_size = _distributed()
        if self.cfg.instances_per_step < self.world_size:
            raise ValueError(f"instances_per_step={self.cfg.instances_per_step} is fewer than the {self.world_size} "
                             "processes: each process plays whole instances; raise instances_per_step")
        on_rank_gpu = {"device": f"cuda:{torch.cuda.current_device()}"} if self.world_size > 1 and torch.cuda.is_available() else {}
        base = learner or load_agent(model, dtype="float32", **on_rank_gpu)
        self.model = base.model
        if self.cfg.lora_rank > 0 and not hasattr(self.model, "disable_adapter"):
            from peft import LoraConfig, get_peft_model

            with torch.random.fork_rng():
                torch.manual_seed(self.cfg.seed)
                lora = LoraConfig(r=self.cfg.lora_rank, lora_alpha=2 * self.cfg.lora_rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
                self.model = get_peft_model(self.model, lora)
        self.device = next(self.model.parameters()).device
        if self.world_size > 1:
            self.broadcast_parameters(self.model)
        # the KL reference: the base model (LoRA: the adapter switched off; full fine-tuning: a frozen copy)
        self.reference = None
        if self.cfg.beta > 0 and not hasattr(self.model, "disable_adapter"):
            self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        #: the other seats' agents by the name the seatings give them: "opponent" for one, each
        #: spec for several (so the records, and the baselines per opponent, tell them apart)
        self.opponents = _opponents(opponent) if len(self.roles) > 1 else {}
        self.opponent = next(iter(self.opponents.values()), None)  # the first (the only one, mostly)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=self.cfg.lr, fused=True)
        self.device_type = "cuda" if self.device.type == "cuda" else "cpu"
        self.bf16 = self.cfg.bf16 if self.cfg.bf16 is not None else (self.device_type == "cuda" or cpu_supports_bf16())
        # the learner as it plays: the model trained (the optimizer updates it in place), named
        # in the seatings, guided as the config or a +guided spec says (the engine then sends
        # it the seat's move grammar), and sampling in bf16 where the forward pass computes in it
        self.agent = base.with_(model=self.model, name=LEARNER, guided=self.cfg.guided or base.guided,
                                autocast=torch.bfloat16 if self.bf16 else None)
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
        played ``group_size`` times (whole groups stay on one process). The members of a
        group share the instance seed and differ in ``play``, which gives each its own
        reply seeds."""
        cfg, specs = self.cfg, []
        for i in range(self.rank, cfg.instances_per_step, self.world_size):
            seat = cfg.seat or self.roles[(step * cfg.instances_per_step + i) % len(self.roles)]
            names = list(self.opponents) or ["opponent"]
            opponent = names[(step * cfg.instances_per_step + i) % len(names)]
            seats = {role: LEARNER if role == seat else opponent for role in self.roles}
            instance_seed = derive_seed(cfg.seed, step, i)
            specs += [EpisodeSpec(self.game, seed=instance_seed, play=g, seats=seats, level=cfg.level, split="train",
                                  game_options=cfg.options(), tags={"step": str(step)}) for g in range(cfg.group_size)]
        return specs

    def play(self, step: int) -> list[Episode]:
        """The episodes of step ``step`` (this process's share), in one batched engine run."""
        agents: dict[str, Any] = {LEARNER: self.agent, **self.opponents}
        sampling = Sampling(temperature=self.cfg.temperature, max_new_tokens=self.cfg.max_new_tokens)
        self.model.eval()
        return RolloutEngine(agents, sampling=sampling).run(self.episode_specs(step))

    # -- learning ----------------------------------------------------------------------
    def update(self, episodes: Sequence[Episode]) -> dict[str, float]:
        """One update on ``episodes`` (this process's share of a step); the objective's part."""
        raise NotImplementedError

    def optimise(self, batch: dict, chunk_loss: ChunkLoss, reported: Sequence[str]) -> dict[str, float]:
        """``cfg.epochs`` optimizer steps on ``batch``. Each step backpropagates
        ``chunk_loss(part, index, ref)`` of each of the ``grad_accum`` chunks (rows ``index`` of
        the batch; ``ref`` the reference's log-probs of them, None without a KL term), sums
        the gradients across ranks and steps. ``chunk_loss`` returns the chunk's loss,
        normalised by the whole step's counts, and the numbers ``reported``, each as this
        chunk's share of the step's value; returns the last epoch's ``loss`` and ``reported``
        summed over the chunks of every rank. The reference does not move within a step, so
        its log-probs are computed in the first epoch and reused in the others.

        A step whose summed gradient is zero everywhere (every advantage zero and no KL term:
        every GRPO group flat) is skipped, not taken: Adam's momentum would otherwise move the
        weights on in the direction of earlier steps with no signal to do so (a league's
        learner whose groups all tied stopped betting its Queens so). ``skipped_steps`` counts
        them."""
        n = batch["input_ids"].shape[0]
        self.model.train()
        refs: dict[int, Any] = {}
        skipped = 0
        for _ in range(self.cfg.epochs):
            self.optimizer.zero_grad()
            sums = dict.fromkeys(["loss", *reported], 0.0)  # the same keys on every rank, for the all-reduce
            for k, index in enumerate(self._chunks(n)):
                part = {key: v[index] for key, v in batch.items()}
                if k not in refs:
                    with self.autocast():  # as the policy's: a KL of precision alone would be no KL
                        refs[k] = self.reference_logprobs(part)
                loss, stats = chunk_loss(part, index, refs[k])
                loss.backward()
                sums["loss"] += float(loss.detach())
                for key in reported:
                    sums[key] += stats[key]
            self._reduce_gradients()
            if self._has_gradient():
                self.optimizer.step()
            else:
                skipped += 1
            sums = dict(zip(sums, self.sum_across_ranks(list(sums.values())), strict=True))
        self.model.eval()
        return {**sums, "skipped_steps": float(skipped)}

    def trainable_state(self) -> tuple[list[Any], dict[str, Any]]:
        """A copy of what an update changes: every trainable parameter and the optimizer's
        state (for :meth:`load_trainable_state`: a step undone)."""
        import copy

        params = [p.detach().clone() for p in self._optimised()]
        return params, copy.deepcopy(self.optimizer.state_dict())

    def load_trainable_state(self, state: tuple[list[Any], dict[str, Any]]) -> None:
        """Put back what :meth:`trainable_state` copied: the parameters and the optimizer's state."""
        import torch

        params, optimizer = state
        with torch.no_grad():
            for p, saved in zip(self._optimised(), params, strict=True):
                p.copy_(saved)
        self.optimizer.load_state_dict(optimizer)

    def _has_gradient(self) -> bool:
        """Whether any trainable parameter has a non-zero gradient (the same on every rank,
        after :meth:`_reduce_gradients`)."""
        return any(p.grad is not None and bool(p.grad.any()) for p in self._optimised() if p.requires_grad)

    def _optimised(self) -> Iterator[Any]:
        """Every parameter the optimizer updates, in its groups' order."""
        for group in self.optimizer.param_groups:
            yield from group["params"]

    def autocast(self) -> Any:
        """bf16 autocast of the forward pass where ``bf16`` is on (weights stay float32)."""
        import torch

        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16)

    def collate(self, samples: Sequence[Sample]) -> dict:
        """The padded batch on the model's device (an empty batch for a rank with no samples)."""
        import torch

        if not samples:
            empty = torch.zeros((0, 1), device=self.device)
            return {"input_ids": empty.long(), "attention_mask": empty.long(), "loss_mask": empty, "old_logprobs": empty}
        if any(s.guided for s in samples):  # each sample's masks are replayed once and kept on it
            lltokenizer, vocab_size = self.agent.grammar_tokenizer(), self.agent.vocab_size()
            replays: dict = {}  # a group's identical replies are replayed once
            for s in samples:
                guided_masks(s, lltokenizer, vocab_size, replays)
        return {k: v.to(self.device) for k, v in collate(samples, pad_id=self.agent.tokenizer.pad_token_id).items()}

    def _chunks(self, n: int) -> list[Any]:
        """Index tensors of the ``grad_accum`` chunks of a batch of ``n`` samples."""
        import torch

        parts = np.array_split(np.arange(n), max(1, min(self.cfg.grad_accum, n)))
        return [torch.as_tensor(part, device=self.device) for part in parts if len(part)]

    def reference_logprobs(self, part: dict) -> Any:
        """The reference policy's log-probs of ``part`` (None without a KL term)."""
        import torch

        if self.cfg.beta <= 0:
            return None
        with torch.no_grad():
            if self.reference is not None:
                return token_logprobs(self.reference, part, temperature=self.cfg.temperature)
            with self.model.disable_adapter():
                return token_logprobs(self.model, part, temperature=self.cfg.temperature)

    # -- several processes ---------------------------------------------------------------
    def gather_samples(self, samples: list[Sample]) -> list[list[Sample]]:
        """Each rank's samples, without their tokens (only keys and rewards travel); [] when
        no rank has any."""
        if self.world_size == 1:
            return [samples] if samples else []
        import torch.distributed as dist

        light = [light_sample(s) for s in samples]
        parts: list[Any] = [None] * self.world_size
        dist.all_gather_object(parts, light)
        return parts if any(parts) else []

    def sum_across_ranks(self, values: list[float]) -> list[float]:
        """``values`` summed element-wise over every rank (as they are with one process)."""
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

        params = [p for p in self._optimised() if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params])
        dist.all_reduce(flat)
        for p in params:
            n = p.numel()
            p.grad = flat[:n].view_as(p).clone()
            flat = flat[n:]

    def broadcast_parameters(self, module: Any) -> None:
        """Rank 0's weights everywhere, so that every rank starts from the same model."""
        import torch.distributed as dist

        for p in module.parameters():
            dist.broadcast(p.data, 0)

    # -- the loop, logs and checkpoints ----------------------------------------------------
    def train(self, steps: int, log: bool = True) -> list[dict[str, float]]:
        """``steps`` steps of play and update; then the checkpoint ``out/checkpoint``."""
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

    def save(self, path: str | Path, *, optimizer: bool = False) -> Path:
        """Weights (the adapter, for LoRA), the tokenizer and the config, and with
        ``optimizer=True`` the optimizer's state (to resume training exactly), written to a
        temporary folder and swapped into place (:func:`~dialogym.envs.files.atomic_replace_dir`): a crash at
        any moment leaves a complete checkpoint. Only rank 0 writes."""
        path = Path(path)
        if self.rank != 0:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.name}-*"):  # half-written by a save that crashed
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        try:
            self._write_checkpoint(tmp)
            if optimizer:
                import torch

                torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return atomic_replace_dir(tmp, path)

    def _write_checkpoint(self, folder: Path) -> None:
        if hasattr(self.model, "peft_config"):
            # only the trained adapter: others may be loaded on the same model (a league's pool)
            self.model.save_pretrained(folder, selected_adapters=["default"])
        else:
            self.model.save_pretrained(folder)
        self.agent.tokenizer.save_pretrained(folder)
        (folder / self.config_file).write_text(self.cfg.model_dump_json(indent=1))

    def load(self, path: str | Path) -> None:
        """Load a checkpoint :meth:`save` wrote (after finishing or undoing a replacement a
        crash interrupted): the weights, and the optimizer's state where it was saved."""
        import torch
        from safetensors.torch import load_file

        path = recover_dir(path)
        if hasattr(self.model, "disable_adapter"):
            from peft import set_peft_model_state_dict

            weights = load_file(path / "adapter_model.safetensors", device=str(self.device))
            set_peft_model_state_dict(self.model, weights, adapter_name="default")
        else:
            _, unexpected = self.model.load_state_dict(load_file(path / "model.safetensors", device=str(self.device)), strict=False)
            if unexpected:
                raise ValueError(f"{path}: weights {unexpected[:3]}... do not belong to this model")
        if (path / "optimizer.pt").exists():
            self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=self.device))


def _tensorboard_writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ImportError("tensorboard logging needs the tensorboard package: pip install tensorboard") from err
    return SummaryWriter(str(folder))


__all__ = ["LEARNER", "TrainerCore", "own_tokens"]
