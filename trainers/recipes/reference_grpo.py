"""CPU recipe: teach SmolLM2-135M the referential game's listener seat, then GRPO it.

1. before: the embedded model as listener against the scripted speaker, 64 test episodes;
2. SFT warm start (TRL's SFTTrainer, LoRA): replies of the *scripted* listener on train
   instances, exported with ``sft_set(per_turn=True)`` so the loss is on the replies only —
   it teaches the strict ``ANSWER: n`` format (the base model answers in prose: 0% valid);
3. GRPO (ours, LoRA continued): the listener seat against the scripted speaker;
4. after: the same 64 test episodes.

    python -m dialogym.trainers.recipes.reference_grpo --out runs/recipe
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dialogym.agents.base import Sampling
from dialogym.agents.hf import TransformersAgent
from dialogym.agents.rollout import EpisodeSpec, RolloutEngine
from dialogym.agents.specs import load_agent
from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer
from dialogym.trainers.preference import sft_set, train_sft

GAME = "dialogym/Reference-v0"


def evaluate(agent, n: int) -> dict[str, float]:
    specs = [EpisodeSpec(GAME, seed=10_000 + i, seats={"speaker": "bot", "listener": "model"}, split="test") for i in range(n)]
    episodes = RolloutEngine({"bot": load_agent("scripted"), "model": agent}, sampling=Sampling(temperature=0.0, max_new_tokens=16)).run(specs)
    return {
        "played": sum(e.played for e in episodes) / n,
        "success": sum(e.metrics.get("success", 0.0) for e in episodes) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/recipe"))
    parser.add_argument("--eval-episodes", type=int, default=64)
    parser.add_argument("--sft-episodes", type=int, default=64)
    parser.add_argument("--sft-steps", type=int, default=24)
    parser.add_argument("--grpo-steps", type=int, default=30)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--instances-per-step", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, object] = {}

    trainer = GRPOTrainer(GAME, "smollm2", "scripted", GRPOConfig(
        group_size=args.group_size, instances_per_step=args.instances_per_step, lr=args.lr, max_new_tokens=16,
        lora_rank=16, seat="listener", temperature=args.temperature,
    ), out=args.out / "grpo")
    learner: TransformersAgent = trainer.agent
    results["before"] = evaluate(learner, args.eval_episodes)
    print("before", results["before"], flush=True)

    demos = RolloutEngine({"bot": load_agent("scripted"), "teacher": load_agent("scripted")}).run(
        [EpisodeSpec(GAME, seed=i, seats={"speaker": "bot", "listener": "teacher"}, split="train") for i in range(args.sft_episodes)]
    )
    rows = sft_set(demos, "teacher", per_turn=True)
    train_sft(trainer.model, learner.tokenizer, rows, args.out / "sft", max_steps=args.sft_steps,
              per_device_train_batch_size=8, learning_rate=2e-4, use_cpu=True, logging_steps=8)
    trainer.model.eval()
    results["after_sft"] = evaluate(learner, args.eval_episodes)
    print("after SFT", results["after_sft"], flush=True)

    history = trainer.train(args.grpo_steps)
    results["grpo_rewards"] = [round(h["mean_reward"], 3) for h in history]
    results["after_grpo"] = evaluate(learner, args.eval_episodes)
    print("after GRPO", results["after_grpo"], flush=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
