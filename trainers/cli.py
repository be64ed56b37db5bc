"""``dialogym train``: GRPO on a game, against a fixed opponent."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from dialogym.cli import user_errors

    @app.command("train")
    @user_errors
    def train(
        game: str = typer.Argument(..., help="game id or short name"),
        algo: str = typer.Option("grpo", help="grpo (ppo, dpo and sft are not implemented yet)"),
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
    ) -> None:
        """Train a model on a game with GRPO; the checkpoint is a LoRA adapter by default."""
        from dialogym.envs import resolve_ids

        from .grpo import GRPOConfig, GRPOTrainer

        if algo != "grpo":
            raise ValueError(f"algo {algo!r} is not implemented yet; available: grpo")
        (game_id,) = resolve_ids(game)
        config = GRPOConfig(
            group_size=group_size, instances_per_step=instances, lr=lr, lora_rank=lora_rank, loss_type=loss_type,
            beta=beta, seat=seat or None, level=level or None, max_new_tokens=max_new_tokens, seed=seed,
        )
        GRPOTrainer(game_id, model, opponent, config, out=out).train(steps)
        typer.echo(f"checkpoint: {out / 'checkpoint'}")
