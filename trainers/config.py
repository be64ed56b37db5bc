"""The settings of every trainer, each in one pydantic class: ``GRPOConfig``, ``PPOConfig``,
``LeagueConfig``.

Each field's default, range and help text are stated once, here: the command line's options
and the config file's keys are generated from these classes, and a value out of range is
refused with the field's name whichever way it came in. Unknown keys are refused too
(``extra="forbid"``), so a misspelt option is an error rather than a silent default.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .opponents import SAMPLER_HELP


class GRPOConfig(BaseModel):
    """Group Relative Policy Optimization (:mod:`grpo`); the shared settings of PPO too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    group_size: int = Field(4, ge=2, description="plays of each instance per step; advantages are relative to the group, so at least 2")
    instances_per_step: int = Field(4, ge=1, description="instances per step (each played group_size times)")
    lr: float = Field(1e-4, gt=0.0, description="AdamW learning rate")
    epsilon_low: float = Field(0.2, ge=0.0, le=1.0, description="the ratio is clipped below 1 - epsilon_low")
    epsilon_high: float = Field(0.28, ge=0.0, description="the ratio is clipped above 1 + epsilon_high (DAPO's clip-higher)")
    beta: float = Field(0.0, ge=0.0, description="weight of the KL to the reference (the base model: adapter off, or a frozen copy)")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = Field(
        "dapo", description="normalisation: grpo (per sequence), dr_grpo (sequences x max_new_tokens), dapo (tokens in the step)"
    )
    scale_rewards: bool = Field(True, description="divide advantages by the group's reward std")
    baseline: Literal["group", "role"] = Field(
        "group", description="group: one baseline per instance and seat; role: one per seat (asymmetric games)"
    )
    epochs: int = Field(1, ge=1, description="passes over each step's batch")
    grad_accum: int = Field(1, ge=1, description="chunks each step's batch is split into (memory; same gradient)")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature of the learner's replies")
    max_new_tokens: int = Field(48, ge=1, description="longest reply in tokens (each game caps it at its own limit)")
    lora_rank: int = Field(8, ge=0, description="rank of the LoRA adapter trained; 0 = full fine-tuning")
    bf16: bool | None = Field(
        None, description="bf16 autocast for generation and the forward pass (weights and optimizer stay float32); "
        "unset: on where the hardware has native bf16 (CUDA, AVX512-BF16/AMX CPUs)"
    )
    guided: bool = Field(False, description="decode the learner's replies under the seat's move grammar (legal moves only); "
                         "log-probs are recomputed under the same masks")
    seat: str | None = Field(None, description="seat the learner plays; unset: each seat in turn")
    level: str | None = Field(None, description="instance level; unset: the game's default")
    game_options: list[str] = Field(default_factory=list, description="the game's own options as key=value, the value "
                                    "read as JSON where it parses (messages=false, no_deal_reward=2)")
    seed: int = Field(0, ge=0, description="seed of the instances, the replies and the adapter's initialisation")

    @field_validator("game_options")
    @classmethod
    def _key_value(cls, items: list[str]) -> list[str]:
        for item in items:
            key, sep, _ = item.partition("=")
            if not sep or not key.strip().isidentifier():
                raise ValueError(f"a game option is key=value, got {item!r}")
        return items

    def options(self) -> dict[str, Any]:
        """``game_options`` as a dict: each value parsed as JSON, else kept as the string."""
        out: dict[str, Any] = {}
        for item in self.game_options:
            key, _, raw = item.partition("=")
            try:
                out[key.strip()] = json.loads(raw)
            except ValueError:
                out[key.strip()] = raw
        return out


class PPOConfig(GRPOConfig):
    """PPO with a value head (:mod:`ppo`): GRPO's settings, GAE's and the value loss's."""

    gamma: float = Field(1.0, ge=0.0, le=1.0, description="discount between the seat's own tokens")
    lam: float = Field(0.95, ge=0.0, le=1.0, description="GAE lambda")
    vf_coef: float = Field(0.5, ge=0.0, description="weight of the value loss")
    vf_clip: float = Field(0.2, ge=0.0, description="values move at most this far from the old ones (clipped value loss)")
    epochs: int = Field(2, ge=1, description="passes over each step's batch")


class LeagueConfig(BaseModel):
    """A self-play league (:mod:`league`): the learner trains against a pool of its own past
    checkpoints, with a GRPO or PPO update on each iteration's episodes."""

    model_config = ConfigDict(extra="forbid")

    game: str = Field(description="game id (the one setting without a default)")
    model: str = Field("smollm2", description="model spec of the base model (smollm2, tiny, hf:<folder>); the learner is a LoRA adapter on it")
    algo: Literal["grpo", "ppo"] = Field("grpo", description="learner update: grpo (clipped, role-conditioned baselines) or ppo (value head)")
    iterations: int = Field(3, ge=1, description="league iterations (play, update, evaluate, admit)")
    episodes: int = Field(16, ge=1, description="training episodes per iteration")
    eval_episodes: int = Field(8, ge=1, description="evaluation episodes against each opponent")
    eval_opponents: int = Field(3, ge=1, description="pool members each new checkpoint is evaluated against (newest, best rated, ...)")
    sampler: str = Field("pfsp", description=f"opponent sampler: {SAMPLER_HELP}")
    gate: float | None = Field(
        None, ge=0.0, le=1.0, description="admit a checkpoint only if it scores at least this against the best rated member; unset: always"
    )
    lr: float = Field(1e-3, gt=0, description="AdamW learning rate of the learner's adapter")
    lora_rank: int = Field(8, ge=1, description="rank of the learner's LoRA adapter")
    grad_accum: int = Field(1, ge=1, description="chunks each iteration's batch is split into (memory; same gradient)")
    guided: bool = Field(False, description="guided moves: the learner's and the pool checkpoints' replies decoded under each seat's move grammar")
    temperature: float = Field(1.0, ge=0.0, description="sampling temperature of the training episodes")
    max_new_tokens: int = Field(32, ge=1, description="longest reply in tokens (each game caps it at its own limit)")
    level: str | None = Field(None, description="instance level; unset: the game's default")
    seed: int = Field(0, ge=0, description="seed of the instances, the opponent draws and the adapter's initialisation")
    opponents_on: Literal["transformers", "vllm"] = Field(
        "transformers", description="backend of the pool's checkpoints when they play (vllm: per-request LoRA on a GPU)"
    )


__all__ = ["GRPOConfig", "LeagueConfig", "PPOConfig"]
