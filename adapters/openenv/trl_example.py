"""Train a model against a dialogym game server with TRL's GRPOTrainer, the way TRL documents
OpenEnv environments: a ``rollout_func`` that plays each prompt's episode through the
environment's client and hands back the tokens, their log-probs and the environment's reward.

Runnable as written, on the tiny random-weight model (a CPU dry run; name a real model with
``--model hf:<path>`` or ``--model smollm2``)::

    dialogym env-serve dialogym/Reference-v0 --seat listener --port 8000 &
    python -m dialogym.adapters.openenv.trl_example --url http://127.0.0.1:8000 \\
        --game dialogym/Reference-v0 --steps 1

Each dataset row is the client seat's first prompt on one instance seed (``reset(seed=...)``
on the server). For every prompt TRL hands over, :class:`ServerRollout` resets the server to
that seed, lets the model answer every turn of its seat (the other seats are played by the
server's opponents), and returns the first reply's tokens as the completion, with the
episode's reward for the seat as ``env_reward``. Training on the first reply alone keeps the
example short; dialogym's own trainers (docs/training.md) train on every turn of a seat.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from .client import DialogueEnvClient
from .models import DialogueAction


class ServerRollout:
    """TRL's ``rollout_func`` for a dialogym game server at ``url`` (a session per episode)."""

    def __init__(self, url: str, game: str, *, seat: str | None = None, max_new_tokens: int = 16) -> None:
        self.url, self.game, self.seat, self.max_new_tokens = url, game, seat, max_new_tokens
        #: first prompt -> the instance seed it was made from
        self.seeds: dict[str, int] = {}

    def options(self, seed: int) -> dict[str, Any]:
        return {"game": self.game, "seed": seed, **({"seat": self.seat} if self.seat else {})}

    def dataset(self, n: int, seed: int = 0) -> Any:
        """``n`` rows, one per instance seed ``seed, seed + 1, ...``: the seat's first prompt."""
        from datasets import Dataset

        rows = []
        with DialogueEnvClient(base_url=self.url).sync() as env:
            for instance_seed in range(seed, seed + n):
                observation = env.reset(**self.options(instance_seed)).observation
                self.seeds[observation.text] = instance_seed
                rows.append({"prompt": observation.messages})
        return Dataset.from_list(rows)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list]:
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_reward": []}
        with DialogueEnvClient(base_url=self.url).sync() as env:
            for prompt in prompts:
                result = env.reset(**self.options(self.seeds[prompt[-1]["content"]]))
                first = None
                while not result.done:
                    prompt_ids, completion_ids, logprobs, text = self.generate(trainer, result.observation.messages)
                    first = first or (prompt_ids, completion_ids, logprobs)
                    result = env.step(DialogueAction(text=text))
                prompt_ids, completion_ids, logprobs = first or (self.encode(trainer, prompt), [0], [0.0])
                out["prompt_ids"].append(prompt_ids)
                out["completion_ids"].append(completion_ids)
                out["logprobs"].append(logprobs)
                out["env_reward"].append(float(result.observation.rewards.get(result.observation.seat, 0.0)))
        return out

    @staticmethod
    def encode(trainer: Any, messages: list[dict[str, str]]) -> list[int]:
        ids = trainer.processing_class.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)

    def generate(self, trainer: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int], list[float], str]:
        """The model's reply to ``messages``: prompt ids, reply ids, their log-probs, the text."""
        import torch

        model, tokenizer = trainer.model, trainer.processing_class
        prompt_ids = self.encode(trainer, messages)
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt_ids], device=model.device), do_sample=True,
                                 max_new_tokens=self.max_new_tokens, output_scores=True, return_dict_in_generate=True,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            scores = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        completion = out.sequences[0, len(prompt_ids):].tolist()
        text = tokenizer.decode(completion, skip_special_tokens=True)
        return prompt_ids, completion, scores[0].tolist(), text


def env_reward(completions: list[Any], env_reward: list[float], **_: Any) -> list[float]:
    """TRL reward function: the seat's episode reward, as the server reported it."""
    return [float(reward) for reward in env_reward]


def train(url: str, game: str, *, seat: str | None = None, model: str = "tiny", steps: int = 1, rows: int = 8,
          output_dir: str = "runs/trl-openenv") -> Any:
    """Train ``model`` (``tiny``, ``smollm2`` or ``hf:<path>``) for ``steps`` GRPO steps against
    the server at ``url``; return the trainer."""
    from trl import GRPOConfig, GRPOTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    policy, tokenizer = load_policy(model)
    rollout = ServerRollout(url, game, seat=seat)
    config = GRPOConfig(output_dir=output_dir, max_steps=steps, per_device_train_batch_size=4, num_generations=4,
                        max_completion_length=rollout.max_new_tokens, report_to=[], save_strategy="no",
                        use_cpu=True, beta=0.0, logging_steps=1)
    trainer = GRPOTrainer(model=policy, processing_class=tokenizer, args=config, train_dataset=rollout.dataset(rows),
                          reward_funcs=env_reward, rollout_func=rollout)
    trainer.train()
    return trainer


def load_policy(model: str) -> tuple[Any, Any]:
    """A trainable model and its tokenizer: ``tiny`` is built in code, the rest loaded from disk."""
    from dialogym.agents.models import tiny_model

    if model == "tiny":
        return tiny_model()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialogym.agents.models import smollm2_path

    path = str(smollm2_path()) if model == "smollm2" else model.removeprefix("hf:")
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the dialogym env-serve server")
    parser.add_argument("--game", default="dialogym/Reference-v0")
    parser.add_argument("--seat", default=None, help="default: the server's seat")
    parser.add_argument("--model", default="tiny", help="tiny, smollm2 or hf:<path>")
    parser.add_argument("--steps", type=int, default=1)
    args = parser.parse_args(argv)
    trainer = train(args.url, args.game, seat=args.seat, model=args.model, steps=args.steps)
    print(trainer.state.log_history[-1])


if __name__ == "__main__":  # pragma: no cover
    main()
