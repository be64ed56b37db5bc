"""``dialogym train``: GRPO or PPO on a game against a fixed opponent, or DPO/SFT through TRL."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer


def _read_config(path: Path) -> dict:
    import json

    import yaml

    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from err
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of option names to values")
    return {k.replace("-", "_"): v for k, v in values.items()}


def _options(ctx: typer.Context, config_file: Path | None) -> dict[str, Any]:
    """The command's option values: the config file's, where the command line gave none."""
    options = dict(ctx.params)
    options.pop("config_file", None)
    if config_file is None:
        return options
    values = _read_config(config_file)
    params = {p.name: p for p in ctx.command.params if p.name not in ("game", "config_file")}
    unknown = set(values) - set(params)
    if unknown:
        raise ValueError(f"{config_file}: unknown training option(s) {sorted(unknown)}; known: {sorted(params)}")
    for key, value in values.items():
        # compared by name: typer may carry its own copy of click's ParameterSource enum
        if getattr(ctx.get_parameter_source(key), "name", "") != "COMMANDLINE":
            try:
                options[key] = params[key].process_value(ctx, value)
            except Exception as err:  # click's BadParameter and friends: one line, naming the key
                raise ValueError(f"{config_file}: {key}: {err}") from err
    return options


def register(app: typer.Typer) -> None:
    from dialogym.cli import user_errors

    @app.command("train")
    @user_errors
    def train(
        ctx: typer.Context,
        game: str = typer.Argument(..., help="one game id or short name"),
        algo: str = typer.Option("grpo", help="grpo | ppo | dpo | sft (dpo/sft: play, export, then TRL's trainers)"),
        model: str = typer.Option("smollm2", help="model spec of the learner"),
        opponent: str = typer.Option("scripted", help="model spec of the other seats"),
        steps: int = typer.Option(10, min=1),
        group_size: int = typer.Option(4, min=2, help="plays of each instance per step"),
        instances: int = typer.Option(4, min=1, help="instances per step"),
        lr: float = typer.Option(1e-4, min=0.0),
        lora_rank: int = typer.Option(8, min=0, help="0 = full fine-tuning"),
        loss_type: str = typer.Option("dapo", help="grpo | dr_grpo | dapo"),
        beta: float = typer.Option(0.0, min=0.0, help="KL to the reference (the base model: adapter off, or a frozen copy)"),
        baseline: str = typer.Option("group", help="group: one baseline per instance and seat; role: one per seat (asymmetric games)"),
        scale_rewards: bool = typer.Option(True, "--scale-rewards/--no-scale-rewards", help="divide advantages by the group's std"),
        epsilon_low: float = typer.Option(0.2, min=0.0, help="the ratio is clipped below 1 - epsilon_low"),
        epsilon_high: float = typer.Option(0.28, min=0.0, help="the ratio is clipped above 1 + epsilon_high"),
        grad_accum: int = typer.Option(1, min=1, help="chunks each step's batch is split into (memory; same gradient)"),
        epochs: Optional[int] = typer.Option(None, min=1, help="passes over each step's batch (default: grpo 1, ppo 2)"),
        temperature: float = typer.Option(1.0, min=0.0, help="sampling temperature of the learner's replies"),
        min_reward: float = typer.Option(1.0, help="sft: keep the conversations whose seat earned at least this"),
        seat: str = typer.Option("", help="seat the learner plays (default: each seat in turn)"),
        level: str = typer.Option(""),
        max_new_tokens: int = typer.Option(48, min=1),
        seed: int = typer.Option(0),
        tensorboard: bool = typer.Option(False, "--tensorboard", help="grpo/ppo: also log to OUT/tensorboard (needs tensorboard)"),
        out: Path = typer.Option(Path("runs/train"), help="metrics.jsonl and the final checkpoint"),
        config_file: Path = typer.Option(None, "--config", help="YAML/JSON file with any of these options; flags override it"),
    ) -> None:
        """Train a model on a game (GRPO, PPO, or DPO/SFT through TRL); LoRA by default.

        Under ``torchrun --nproc_per_node N -m dialogym.cli train ...`` GRPO and PPO run on N
        processes (each plays its share of the instances; gradients are summed)."""
        from dialogym.envs import resolve_ids

        o = _options(ctx, config_file)
        algo, out = o["algo"], Path(o["out"])
        if algo not in ("grpo", "ppo", "dpo", "sft"):
            raise ValueError(f"unknown algo {algo!r}; choose grpo, ppo, dpo or sft")
        ids = resolve_ids(o["game"])
        if len(ids) != 1:
            raise ValueError(f"train takes one game; {o['game']!r} names {len(ids)} ({', '.join(ids[:3])}"
                             f"{', ...' if len(ids) > 3 else ''}); run one command per game")
        if o["tensorboard"] and algo in ("dpo", "sft"):
            raise ValueError("--tensorboard logs grpo and ppo; dpo/sft run TRL's trainers, whose logs go to OUT/trl")

        from .grpo import GRPOConfig, GRPOTrainer
        from .ppo import PPOConfig, PPOTrainer

        config_cls, trainer_cls = (PPOConfig, PPOTrainer) if algo == "ppo" else (GRPOConfig, GRPOTrainer)
        settings = {name: o[name] for name in ("group_size", "lr", "lora_rank", "loss_type", "beta", "baseline", "scale_rewards",
                                               "epsilon_low", "epsilon_high", "grad_accum", "temperature", "max_new_tokens", "seed")}
        if o["epochs"] is not None:
            settings["epochs"] = o["epochs"]
        config = config_cls(instances_per_step=o["instances"], seat=o["seat"] or None, level=o["level"] or None, **settings)
        trainer = trainer_cls(ids[0], o["model"], o["opponent"], config, out=out, tensorboard=o["tensorboard"])
        if algo in ("grpo", "ppo"):
            trainer.train(o["steps"])
            if trainer.world_size > 1:
                import torch.distributed as dist

                dist.destroy_process_group()
            if trainer.rank == 0:
                typer.echo(f"checkpoint: {out / 'checkpoint'}")
            return
        _train_with_trl(trainer, algo, o["steps"], o["lr"], o["min_reward"], out)


def _train_with_trl(trainer: Any, algo: str, steps: int, lr: float, min_reward: float, out: Path) -> None:
    """DPO or SFT: play ``steps`` batches, export them, train with TRL's trainer, save."""
    import torch

    from .preference import dpo_pairs, sft_set, train_dpo, train_sft, write_jsonl

    episodes = [e for step in range(steps) for e in trainer.play(step)]
    settings = {"max_steps": steps, "learning_rate": lr, "use_cpu": not torch.cuda.is_available()}
    if algo == "dpo":
        rows = dpo_pairs(episodes, "learner")
        write_jsonl(rows, out / "dpo.jsonl")
        if not rows:
            raise ValueError("no preference pairs: every group's replies got the same reward; play more steps")
        train_dpo(trainer.model, trainer.agent.tokenizer, rows, out / "trl", **settings)
    else:
        rows = sft_set(episodes, "learner", min_reward=min_reward)
        write_jsonl(rows, out / "sft.jsonl")
        if not rows:
            raise ValueError(f"no conversation earned --min-reward {min_reward}; play more steps or lower it")
        train_sft(trainer.model, trainer.agent.tokenizer, rows, out / "trl", **settings)
    trainer.save(out / "checkpoint")
    typer.echo(f"{len(rows)} {algo} rows in {out}; checkpoint: {out / 'checkpoint'}")
