"""The settings of every trainer, each in one pydantic class: ``TrainerConfig`` (what every
on-policy trainer shares), ``GRPOConfig``, ``PPOConfig``, and ``LeagueConfig``, which holds
its learner's ``GRPOConfig`` or ``PPOConfig``.

Each field's default, range and help text are stated once, here: the command line's options
and the config file's keys are generated from these classes, and a value out of range is
refused with the field's name whichever way it came in. Unknown keys are refused too
(``extra="forbid"``), so a misspelt option is an error rather than a silent default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .opponents import SAMPLER_HELP


def check_options(items: list[str]) -> list[str]:
    """``items`` when each is a game option ``key=value``; else one clear error."""
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ValueError(f"a game option is key=value, got {item!r}")
    return items


def parse_options(items: list[str]) -> dict[str, Any]:
    """Game options ``key=value`` as a dict: each value parsed as JSON, else kept as the string."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            out[key.strip()] = json.loads(raw)
        except ValueError:
            out[key.strip()] = raw
    return out


class TrainerConfig(BaseModel):
    """What every on-policy trainer (:mod:`core`) shares: how a step plays, the learner's
    adapter and optimizer, the KL to the reference it keeps, and the game it plays."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    group_size: int = Field(4, ge=2, description="plays of each instance per step; advantages are relative to the group, so at least 2")
    instances_per_step: int = Field(4, ge=1, description="instances per step (each played group_size times)")
    lr: float = Field(1e-4, gt=0.0, description="AdamW learning rate")
    beta: float = Field(0.0, ge=0.0, description="weight of the KL to the reference (the base model: adapter off, or a frozen copy)")
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
        return check_options(items)

    def options(self) -> dict[str, Any]:
        """``game_options`` as a dict: each value parsed as JSON, else kept as the string."""
        return parse_options(self.game_options)


class GRPOConfig(TrainerConfig):
    """Group Relative Policy Optimization (:mod:`grpo`): the clipped surrogate, its
    normalisation and the group baseline."""

    epsilon_low: float = Field(0.2, ge=0.0, le=1.0, description="the ratio is clipped below 1 - epsilon_low")
    epsilon_high: float = Field(0.28, ge=0.0, description="the ratio is clipped above 1 + epsilon_high (DAPO's clip-higher)")
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = Field(
        "dapo", description="normalisation: grpo (per sequence), dr_grpo (sequences x max_new_tokens), dapo (tokens in the step)"
    )
    scale_rewards: bool = Field(True, description="divide advantages by the group's reward std")
    baseline: Literal["group", "role"] = Field(
        "group", description="group: one baseline per instance, seat and opponents (a league plays each training instance "
        "group_size times); role: one per seat and opponents (a league plays each once; asymmetric games)"
    )
    credit: Literal["episode", "round"] = Field(
        "episode", description="what a reply is credited with: episode: the episode's reward; round: in a game played in "
        "rounds (a hand of Kuhn Poker), the reward of the reply's round alone, each round a sample with its own baseline "
        "(the same round of the group's plays), so a hand's moves are not credited with the other hands' chips"
    )


class PPOConfig(GRPOConfig):
    """PPO with a value head (:mod:`ppo`): GRPO's clipped loss, GAE's and the value loss's settings."""

    gamma: float = Field(1.0, ge=0.0, le=1.0, description="discount between the seat's own tokens")
    lam: float = Field(0.95, ge=0.0, le=1.0, description="GAE lambda")
    vf_coef: float = Field(0.5, ge=0.0, description="weight of the value loss")
    vf_clip: float = Field(0.2, ge=0.0, description="values move at most this far from the old ones (clipped value loss)")
    epochs: int = Field(2, ge=1, description="passes over each step's batch")


#: The config class of each policy-gradient objective, by the name ``--algo`` gives it.
LEARNER_CONFIGS: dict[str, type[GRPOConfig]] = {"grpo": GRPOConfig, "ppo": PPOConfig}

#: A league learner's defaults where they differ from a lone trainer's (``dialogym train``'s):
#: ``dialogym league`` with no options trains with these. Its baseline: ``role`` plays each
#: training instance once, one baseline per (seat, opponents) (SPIRAL's); ``group`` plays
#: each ``group_size`` times, the same opponent in the same seat, one baseline per group
#: (GRPO's: the deal and the instance's luck cancel, only the moves differ).
LEAGUE_LEARNER_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "max_new_tokens": 32, "baseline": "role"}

#: The learner settings a league decides itself, and why; a league's learner config leaves
#: each at its default, and the league's command has no option for it.
LEAGUE_DECIDES = {
    "instances_per_step": "a league's step is an iteration of `episodes` episodes; set episodes instead",
    "seat": "a league seats the learner in every role in turn",
}


def _setting_error(key: str, value: Any, message: str) -> ValidationError:
    """The validation error of setting ``key``: raised in a validator, it names the key's
    place (``learner.lr``) as pydantic's own errors do."""
    return ValidationError.from_exception_data(
        "LeagueConfig", [{"type": PydanticCustomError("league_setting", message), "loc": (key,), "input": value}]
    )


class LeagueConfig(BaseModel):
    """A self-play league (:mod:`league`): the learner trains against a pool of its own past
    checkpoints, with a GRPO or PPO update (``learner``, as ``algo`` says) on each
    iteration's episodes."""

    model_config = ConfigDict(extra="forbid")

    game: str = Field(description="game id (the one setting without a default)")
    model: str = Field("smollm2", description="model spec of the base model (smollm2, tiny, hf:<folder>); the learner is a LoRA adapter on it")
    algo: Literal["grpo", "ppo"] = Field("grpo", description="learner update: grpo (clipped, role-conditioned baselines) or ppo (value head)")
    iterations: int = Field(3, ge=1, description="league iterations (play, update, evaluate, admit)")
    episodes: int = Field(16, ge=1, description="training episodes per iteration")
    eval_episodes: int = Field(8, ge=1, description="evaluation episodes against each opponent")
    eval_opponents: int = Field(3, ge=1, description="pool members each new checkpoint is evaluated against (newest, best rated, ...)")
    sampler: str = Field("pfsp", description=f"opponent sampler: {SAMPLER_HELP}")
    eval_temperature: float = Field(
        0.0, ge=0.0, description="sampling temperature of every evaluation (in-league, the payoff table, cross-play); 0: "
        "greedy. A greedy policy can collapse onto one move that ties everything (always walking away, in a zero-sum "
        "negotiation); a sampled evaluation measures the policy that trains"
    )
    opponent_temperature: float | None = Field(
        None, ge=0.0, description="sampling temperature of the pool's checkpoints in the training episodes (0: greedy); "
        "unset: the learner's. Greedy opponents make a group's rewards differ by the learner's own moves alone (the "
        "opponent's dice stop drowning them); the learner keeps its own temperature to explore"
    )
    base_temperature: float | None = Field(
        None, ge=0.0, description="sampling temperature of the base (it-0) in the training episodes; unset: "
        "opponent_temperature's. The base sampled while the checkpoints play greedy keeps moves in the learner's "
        "games that no greedy checkpoint makes (a Kuhn base at T=1 bets one card in eight, whatever the card)"
    )
    payoff_episodes: int = Field(
        8, ge=0, description="after the last iteration, every pair of pool members that met fewer times plays this many "
        "matches (paired, held-out instances) for the payoff table and its Nash mixture (0: the table of the league's own "
        "evaluations only)"
    )
    gate: float | None = Field(
        None, ge=0.0, le=1.0, description="admit a checkpoint only if it scores at least this against the best rated member; unset: always"
    )
    rollback: bool = Field(
        False, description="with a gate, also undo a checkpoint the gate turns away: the learner goes back to the "
        "weights and optimizer state it had before that iteration's update, so a step that lost to the best member is "
        "not built on (without it the learner goes on from the weights the pool refused)"
    )
    opponents_on: Literal["transformers", "vllm"] = Field(
        "transformers", description="backend of the pool's checkpoints when they play (vllm: per-request LoRA on a GPU)"
    )
    train_game_options: list[str] = Field(
        default_factory=list, description="game options of the training episodes only, over the learner's game_options "
        "(hands=1 in Kuhn Poker: one hand an episode, so each reward is one hand's chips); evaluations, cross-play and "
        "the payoff table keep the learner's"
    )
    paired_training: bool = Field(
        False, description="play each training instance with the learner in every seat, against the same opponents "
        "(their seats rotated), as every evaluation is played: each instance's luck (a deal's cards) reaches the learner "
        "from every side and a seat's advantage cancels within each iteration's batch. episodes must be a multiple of "
        "the number of seats (times group_size with baseline group)"
    )
    learner: GRPOConfig | PPOConfig = Field(
        default_factory=lambda: GRPOConfig.model_validate(LEAGUE_LEARNER_DEFAULTS), validate_default=True,
        description="the learner's settings: a GRPOConfig, or a PPOConfig for algo ppo; what it leaves unset takes the "
        "league's defaults (LEAGUE_LEARNER_DEFAULTS); its seed, level, temperature, max_new_tokens and guided are the "
        "league's too (the draws, the instances and how the pool's checkpoints play)",
    )

    @model_validator(mode="after")
    def _rollback_needs_a_gate(self) -> LeagueConfig:
        if self.rollback and self.gate is None:
            raise ValueError("rollback undoes what the gate turns away: give a gate too (gate: 0.5, say)")
        return self

    @field_validator("train_game_options")
    @classmethod
    def _train_key_value(cls, items: list[str]) -> list[str]:
        return check_options(items)

    def plays(self) -> int:
        """How many times a training instance is played in one seating: ``group_size`` with
        GRPO's own groups (``baseline="group"``), else once."""
        return self.learner.group_size if self.learner.baseline == "group" else 1

    def train_options(self) -> dict[str, Any]:
        """The game options of the league's training episodes: the learner's ``game_options``
        with ``train_game_options`` over them."""
        return {**self.learner.options(), **parse_options(self.train_game_options)}

    @model_validator(mode="before")
    @classmethod
    def _learner_settings_are_nested(cls, data: Any) -> Any:
        """A learner setting given beside the league's (``lr=...``) is refused, naming its place."""
        if isinstance(data, Mapping):
            for key, value in data.items():
                if key not in cls.model_fields and any(key in c.model_fields for c in LEARNER_CONFIGS.values()):
                    raise _setting_error(key, value, f"{key} is a setting of the learner: give it as learner.{key} "
                                                     "(in a config file, under learner:)")
        return data

    @field_validator("learner", mode="before")
    @classmethod
    def _learner_of_algo(cls, given: Any, info: ValidationInfo) -> Any:
        """The league's defaults and the settings given (a mapping, or those set on a config
        object), as the config class of ``algo``; the settings a league decides are refused."""
        if isinstance(given, BaseModel):
            given = given.model_dump(exclude_unset=True)
        config_cls = LEARNER_CONFIGS[info.data.get("algo", "grpo")]
        learner = config_cls.model_validate({**LEAGUE_LEARNER_DEFAULTS, **given} if isinstance(given, Mapping) else given)
        for key, why in LEAGUE_DECIDES.items():
            decided = LEAGUE_LEARNER_DEFAULTS.get(key, config_cls.model_fields[key].get_default(call_default_factory=True))
            if getattr(learner, key) != decided:
                raise _setting_error(key, getattr(learner, key), f"{why}; leave learner.{key} unset")
        episodes = info.data.get("episodes", cls.model_fields["episodes"].default)
        if learner.baseline == "group" and episodes % learner.group_size:
            raise _setting_error("group_size", learner.group_size, f"with baseline group a league plays each instance "
                                 f"group_size times: episodes ({episodes}) must be a multiple of it")
        if learner.lora_rank < 1:
            raise _setting_error("lora_rank", learner.lora_rank, "the league's learner is a LoRA adapter (its pool keeps "
                                                                 "adapters); give a rank of 1 or more")
        return learner


__all__ = ["LEAGUE_DECIDES", "LEAGUE_LEARNER_DEFAULTS", "LEARNER_CONFIGS", "GRPOConfig", "LeagueConfig", "PPOConfig",
           "TrainerConfig"]
