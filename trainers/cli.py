"""``dialogym train``: GRPO on a game, against a fixed opponent."""

from __future__ import annotations

from pathlib import Path

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


def register(app: typer.Typer) -> None:
    from dialogym.cli import user_errors

    @app.command("train")
    @user_errors
    def train(
        ctx: typer.Context,
        game: str = typer.Argument(..., help="game id or short name"),
        algo: str = typer.Option("grpo", help="grpo | ppo | dpo | sft (dpo/sft: play, export, then TRL's trainers)"),
        model: str = typer.Option("smollm2", help="model spec of the learner"),
        opponent: str = typer.Option("scripted", help="model spec of the other seats"),
        steps: int = typer.Option(10, min=1),
        group_size: int = typer.Option(4, min=2, help="plays of each instance per step"),
        instances: int = typer.Option(4, min=1, help="instances per step"),
        lr: float = typer.Option(1e-4, min=0.0),
        lora_rank: int = typer.Option(8, min=0, help="0 = full fine-tuning"),
        loss_type: str = typer.Option("dapo", help="grpo | dr_grpo | dapo"),
        beta: float = typer.Option(0.0, min=0.0, help="KL to the reference (the base model, adapter off)"),
        seat: str = typer.Option("", help="seat the learner plays (default: each seat in turn)"),
        level: str = typer.Option(""),
        max_new_tokens: int = typer.Option(48, min=1),
        seed: int = typer.Option(0),
        out: Path = typer.Option(Path("runs/train"), help="metrics.jsonl and the final checkpoint"),
        config_file: Path = typer.Option(None, "--config", help="YAML/JSON file with any of these options; flags override it"),
    ) -> None:
        """Train a model on a game (GRPO, PPO, or DPO/SFT through TRL); LoRA by default."""
        from dialogym.envs import resolve_ids

        if config_file is not None:
            values = _read_config(config_file)
            options = {p.name for p in ctx.command.params} - {"ctx", "game", "config_file"}
            unknown = set(values) - options
            if unknown:
                raise ValueError(f"{config_file}: unknown training option(s) {sorted(unknown)}; known: {sorted(options)}")
            # compared by name: typer may carry its own copy of click's ParameterSource enum
            given = {k for k in values if getattr(ctx.get_parameter_source(k), "name", "") == "COMMANDLINE"}
            local = locals()
            for key, value in values.items():
                if key not in given:
                    local[key] = value
            algo, model, opponent, steps = local["algo"], local["model"], local["opponent"], int(local["steps"])
            group_size, instances, lr, lora_rank = int(local["group_size"]), int(local["instances"]), float(local["lr"]), int(local["lora_rank"])
            loss_type, beta, seat, level = local["loss_type"], float(local["beta"]), local["seat"], local["level"]
            max_new_tokens, seed, out = int(local["max_new_tokens"]), int(local["seed"]), Path(local["out"])

        from .grpo import GRPOConfig, GRPOTrainer
        from .ppo import PPOConfig, PPOTrainer

        if algo not in ("grpo", "ppo", "dpo", "sft"):
            raise ValueError(f"unknown algo {algo!r}; choose grpo, ppo, dpo or sft")
        (game_id,) = resolve_ids(game)
        config_cls, trainer_cls = (PPOConfig, PPOTrainer) if algo == "ppo" else (GRPOConfig, GRPOTrainer)
        config = config_cls(
            group_size=group_size, instances_per_step=instances, lr=lr, lora_rank=lora_rank, loss_type=loss_type,
            beta=beta, seat=seat or None, level=level or None, max_new_tokens=max_new_tokens, seed=seed,
        )
        trainer = trainer_cls(game_id, model, opponent, config, out=out)
        if algo in ("grpo", "ppo"):
            trainer.train(steps)
            typer.echo(f"checkpoint: {out / 'checkpoint'}")
            return
        from .preference import dpo_pairs, sft_set, train_dpo, train_sft, write_jsonl

        episodes = [e for step in range(steps) for e in trainer.play(step)]
        if algo == "dpo":
            rows = dpo_pairs(episodes, "learner")
            write_jsonl(rows, out / "dpo.jsonl")
            if not rows:
                raise ValueError("no preference pairs: every group's replies got the same reward; play more steps")
            train_dpo(trainer.model, trainer.agent.tokenizer, rows, out / "trl", max_steps=steps, learning_rate=lr, use_cpu=True)
        else:
            rows = sft_set(episodes, "learner")
            write_jsonl(rows, out / "sft.jsonl")
            if not rows:
                raise ValueError("no rewarded conversations to imitate; play more steps or lower the bar")
            train_sft(trainer.model, trainer.agent.tokenizer, rows, out / "trl", max_steps=steps, learning_rate=lr, use_cpu=True)
        trainer.save(out / "checkpoint")
        typer.echo(f"{len(rows)} {algo} rows in {out}; checkpoint: {out / 'checkpoint'}")
