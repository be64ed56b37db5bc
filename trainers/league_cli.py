"""``dialogym league``: train against a pool of past checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from .opponents import SAMPLER_HELP


def register(app: typer.Typer) -> None:
    from dialogym.cli import console, user_errors

    @app.command("league")
    @user_errors
    def league(
        game: str = typer.Argument(..., help="game id or short name"),
        model: str = typer.Option("smollm2", help="base model spec; the learner is a LoRA adapter on it"),
        algo: str = typer.Option("grpo", help="learner update: grpo (clipped, role-conditioned baselines)"),
        iterations: int = typer.Option(3, min=1),
        episodes: int = typer.Option(16, min=1, help="training episodes per iteration"),
        eval_episodes: int = typer.Option(8, min=1, help="evaluation episodes per opponent"),
        eval_opponents: int = typer.Option(3, min=1, help="pool members each new checkpoint is evaluated against (newest, best rated, ...)"),
        sampler: str = typer.Option("pfsp", help=SAMPLER_HELP),
        gate: float = typer.Option(-1.0, help="admit a checkpoint only if it scores >= this against the best rated member (off if < 0)"),
        lr: float = typer.Option(1e-3, min=0.0),
        opponents_on: str = typer.Option("transformers", help="transformers | vllm: backend the pool's checkpoints play on (vllm: per-request LoRA, GPU)"),
        level: str = typer.Option("", help="instance level"),
        seed: int = typer.Option(0),
        out: Path = typer.Option(Path("runs/league"), help="league folder; rerun the same command to resume"),
    ) -> None:
        """Train a LoRA learner against its own past checkpoints; resumable."""
        from dialogym.envs import resolve_ids

        from .league import League, LeagueConfig, write_league_report

        if algo != "grpo":
            raise ValueError(f"unknown league algo {algo!r}; available: grpo")
        if opponents_on not in ("transformers", "vllm"):
            raise ValueError(f"--opponents-on {opponents_on!r}: use transformers or vllm")
        (game_id,) = resolve_ids(game)
        config = LeagueConfig(
            game=game_id, model=model, iterations=iterations, episodes=episodes, eval_episodes=eval_episodes,
            eval_opponents=eval_opponents, sampler=sampler, gate=gate if gate >= 0 else None, lr=lr, level=level or None, seed=seed,
            opponents_on=opponents_on,
        )
        league = League(config, out)  # checks every option before it writes anything
        for line in league.run(progress=True):
            console.print(
                f"iteration {line['iteration']}: mean reward {line['mean_reward']:+.3f}, loss {line['loss']:.4f}, "
                f"admitted {line['admitted']}, eval {line['eval']}"
            )
        console.print(f"report: {write_league_report(out)}")
