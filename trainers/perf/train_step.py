"""One GRPO step of dialogym vs TRL's GRPOTrainer, side by side in one run.

Same model, the same prompt ("Write lowercase letters."), the same batch (instances x
generations completions) and completion length, the same reward (share of lowercase
letters), temperature 1, no KL. A step includes generating the batch and the update. Each
trainer takes ``--warmup`` untimed steps, then ``--steps`` timed ones; the ratio is
dialogym's mean step time over TRL's (target <= 1.0).

    python -m dialogym.trainers.perf.train_step --model tiny
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def our_step_seconds(model_spec: str, args: argparse.Namespace) -> float:
    from dialogym.trainers.grpo import GRPOConfig, GRPOTrainer
    from dialogym.trainers.toy import GAME_ID

    config = GRPOConfig(
        group_size=args.generations, instances_per_step=args.instances, lr=1e-5, max_new_tokens=args.length,
        lora_rank=0, loss_type="grpo",
    )
    trainer = GRPOTrainer(GAME_ID, model_spec, config=config)
    trainer.train(args.warmup, log=False)
    started = time.perf_counter()
    trainer.train(args.steps, log=False)
    return (time.perf_counter() - started) / args.steps


def trl_step_seconds(model_spec: str, args: argparse.Namespace) -> float:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from dialogym.agents.specs import load_agent
    from dialogym.trainers.toy import PROMPT, letter_share

    agent = load_agent(model_spec, dtype="float32")

    def reward(completions, **_):
        return [letter_share(c[0]["content"] if isinstance(c, list) else c) for c in completions]

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.ends: list[float] = []

        def on_step_begin(self, *a, **k):
            self.starts.append(time.perf_counter())

        def on_step_end(self, *a, **k):
            self.ends.append(time.perf_counter())

    timer = StepTimer()
    batch = args.instances * args.generations
    config = GRPOConfig(
        output_dir="/tmp/dialogym-trl-perf", max_steps=args.warmup + args.steps, per_device_train_batch_size=batch,
        num_generations=args.generations, max_completion_length=args.length, learning_rate=1e-5, beta=0.0,
        temperature=1.0, report_to=[], save_strategy="no", logging_steps=10_000, use_cpu=not torch.cuda.is_available(),
        loss_type="grpo",
    )
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": PROMPT}]}] * batch * (args.warmup + args.steps))
    trainer = GRPOTrainer(model=agent.model, reward_funcs=reward, args=config, train_dataset=data,
                          processing_class=agent.tokenizer, callbacks=[timer])
    trainer.train()
    timed = [end - start for start, end in zip(timer.starts, timer.ends, strict=False)][args.warmup :]
    return sum(timed) / len(timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    ours = our_step_seconds(args.model, args)
    trl = trl_step_seconds(args.model, args)
    print(json.dumps({
        "model": args.model, "completions_per_step": args.instances * args.generations, "max_completion_tokens": args.length,
        "threads": torch.get_num_threads(), "dialogym_step_s": round(ours, 3), "trl_step_s": round(trl, 3),
        "train_step_ratio": round(ours / trl, 3),
    }, indent=1))


if __name__ == "__main__":
    main()
