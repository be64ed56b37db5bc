"""``dialogym train``: GRPO or PPO on a game against a fixed opponent, or DPO/SFT through TRL.

Its settings are the fields of :class:`~dialogym.trainers.config.GRPOConfig` (and
:class:`~dialogym.trainers.config.PPOConfig`'s for ``--algo ppo``)."""

from __future__ import annotations

from pathlib import Path

import typer

from dialogym.cli_config import Settings
from dialogym.cli_output import finite_float, out_folder, too_many_episodes
from dialogym.trainers.config import LEARNER_CONFIGS, GRPOConfig

#: The config classes whose fields are ``train``'s options, by the algo that uses each
#: (dpo and sft play with GRPO's settings).
TRAIN_CONFIGS = LEARNER_CONFIGS
#: Older flag and key names that keep working.
TRAIN_ALIASES = {"instances_per_step": "instances"}


def train_command(
    settings: Settings,
    game: str = typer.Argument(..., help="one game id or short name"),
    algo: str = typer.Option("grpo", help="grpo | ppo | dpo | sft (dpo/sft: play, export, then TRL's trainers)"),
    model: str = typer.Option("smollm2", help="model spec of the learner"),
    opponent: list[str] = typer.Option(["scripted"], help="model spec of the other seats; repeat it for several (grpo/ppo: "
                                       "each training instance meets the next in turn, one per group)"),
    steps: int = typer.Option(10, min=1, help="training steps (dpo/sft: batches played before TRL trains)"),
    min_reward: float = typer.Option(1.0, parser=finite_float, help="sft: keep the conversations whose seat earned at least this"),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="grpo/ppo: also log to OUT/tensorboard (needs tensorboard)"),
    out: Path = typer.Option(Path("runs/train"), parser=out_folder, help="metrics.jsonl and the final checkpoint"),
) -> None:
    """Train a model on a game (GRPO, PPO, or DPO/SFT through TRL); LoRA by default.

    Under ``torchrun --nproc_per_node N -m dialogym.cli train ...`` GRPO and PPO run on N
    processes (each plays its share of the instances; gradients are summed)."""
    from dialogym.envs import resolve_ids

    if algo not in ("grpo", "ppo", "dpo", "sft"):
        raise ValueError(f"unknown algo {algo!r}; choose grpo, ppo, dpo or sft")
    ids = resolve_ids(game)
    if len(ids) != 1:
        raise ValueError(f"train takes one game; {game!r} names {len(ids)} ({', '.join(ids[:3])}"
                         f"{', ...' if len(ids) > 3 else ''}); run one command per game")
    if tensorboard and algo in ("dpo", "sft"):
        raise ValueError("--tensorboard logs grpo and ppo; dpo/sft run TRL's trainers, whose logs go to OUT/trl")

    from dialogym.trainers.grpo import GRPOTrainer
    from dialogym.trainers.ppo import PPOTrainer

    config = settings.build(LEARNER_CONFIGS.get(algo, GRPOConfig))  # dpo and sft play with GRPO's settings
    if algo in ("dpo", "sft"):  # every step's episodes are kept for TRL's dataset
        played = steps * config.group_size * config.instances_per_step
        reason = too_many_episodes(played, "episodes per run (steps x group_size x instances_per_step, all kept for TRL)")
        if reason:
            raise ValueError(f"--steps: {reason}")
    trainer_cls = PPOTrainer if algo == "ppo" else GRPOTrainer
    if len(opponent) > 1 and algo in ("dpo", "sft"):
        raise ValueError("--opponent once for dpo/sft: their episodes are played against one opponent")
    trainer = trainer_cls(ids[0], model, opponent, config, out=out, tensorboard=tensorboard)
    if algo in ("grpo", "ppo"):
        trainer.train(steps)
        if trainer.world_size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
        if trainer.rank == 0:
            typer.echo(f"checkpoint: {out / 'checkpoint'}")
        return
    from dialogym.trainers.preference import train_preference

    rows = train_preference(trainer, algo, steps, out, min_reward=min_reward)
    typer.echo(f"{len(rows)} {algo} rows in {out}; checkpoint: {out / 'checkpoint'}")
