"""Preference (DPO) pairs and imitation (SFT) sets from episodes, trained with TRL.

Formats are TRL's conversational ones, so ``DPOTrainer`` and ``SFTTrainer`` read them as is:

- DPO: ``{"prompt": [messages], "chosen": [assistant message], "rejected": [assistant message]}``
  — two replies of the same seat to the *same* dialogue history (same instance, same messages
  so far), from episodes whose rewards for that seat differ; the higher is chosen.
- SFT: ``{"messages": [the seat's whole conversation]}`` for episodes whose reward for the
  seat reaches ``min_reward`` (and that were not aborted). TRL trains such rows on every
  token, prompts included; ``per_turn=True`` gives instead one
  ``{"prompt": [history], "completion": [assistant message]}`` row per reply of the seat,
  which TRL trains on the completion only — the seat's own tokens, like our loss masks.

TRL applies the model's chat template to these messages, so their contents are defused
(:mod:`dialogym.agents.defuse`) as every backend's are: in the exported sets against the
widespread templates' special tokens, and again in :func:`train_dpo` / :func:`train_sft`
against the trained tokenizer's own. No seat's text becomes a special token in training.

:func:`train_preference` is ``dialogym train --algo dpo|sft``: play, export, train with TRL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dialogym.agents.defuse import defuse_messages
from dialogym.envs import Episode
from dialogym.envs.files import atomic_write_text

if TYPE_CHECKING:
    from .core import TrainerCore


def _trained_seats(episode: Episode, trained: str | Sequence[str]) -> list[str]:
    names = {trained} if isinstance(trained, str) else set(trained)
    return [seat for seat, agent in episode.seats.items() if agent in names]


def dpo_pairs(episodes: Iterable[Episode], trained: str | Sequence[str], *, min_gap: float = 1e-9) -> list[dict[str, Any]]:
    """One pair per dialogue history that got replies from episodes with different rewards."""
    by_history: dict[str, list[tuple[float, str, list[dict[str, str]]]]] = defaultdict(list)
    for episode in episodes:
        for seat in _trained_seats(episode, trained):
            history: list[dict[str, str]] = []
            reward = float(episode.rewards.get(seat, 0.0))
            for turn in episode.turns:
                if turn.seat != seat:
                    continue
                history = history + list(turn.messages)
                key = json.dumps([episode.instance_id, seat, history], sort_keys=True)
                by_history[key].append((reward, turn.raw, list(history)))
                history = history + [{"role": "assistant", "content": turn.raw}]
    pairs = []
    for replies in by_history.values():
        best = max(replies, key=lambda r: r[0])
        worst = min(replies, key=lambda r: r[0])
        if best[0] - worst[0] > min_gap and best[1] != worst[1]:
            pairs.append(
                {
                    "prompt": best[2],
                    "chosen": [{"role": "assistant", "content": best[1]}],
                    "rejected": [{"role": "assistant", "content": worst[1]}],
                }
            )
    return [defused(pair) for pair in pairs]


def defused(row: dict[str, Any], tokenizer: Any = None) -> dict[str, Any]:
    """``row`` (a DPO or SFT row) with every message list defused for ``tokenizer``'s
    template (None: the widespread templates')."""
    return {key: defuse_messages(value, tokenizer) if isinstance(value, list) else value for key, value in row.items()}


def sft_set(
    episodes: Iterable[Episode], trained: str | Sequence[str], *, min_reward: float = 1.0, per_turn: bool = False
) -> list[dict[str, Any]]:
    """Imitation rows from the played episodes where a trained seat earned ``min_reward``."""
    rows = []
    for episode in episodes:
        if not episode.played:
            continue
        for seat in _trained_seats(episode, trained):
            if episode.rewards.get(seat, 0.0) < min_reward:
                continue
            chat = defuse_messages(episode.conversation(seat))
            if not per_turn:
                rows.append({"messages": chat})
                continue
            for i, message in enumerate(chat):
                if message["role"] == "assistant":
                    rows.append({"prompt": chat[:i], "completion": [message]})
    return rows


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    return atomic_write_text(Path(path), "".join(json.dumps(row) + "\n" for row in rows))


def train_dpo(model: Any, tokenizer: Any, pairs: Sequence[dict[str, Any]], out: str | Path, *, ref_model: Any = None, **config: Any) -> Any:
    """Run TRL's DPOTrainer on exported pairs; ``config`` goes to ``trl.DPOConfig``."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    args = DPOConfig(output_dir=str(out), report_to=[], save_strategy="no", **config)
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=Dataset.from_list([defused(p, tokenizer) for p in pairs]),
                         processing_class=tokenizer)
    return trainer.train()


def _native_bf16() -> bool:
    import torch

    from dialogym.agents.hf import cpu_supports_bf16

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported() or (not torch.cuda.is_available() and cpu_supports_bf16())


def train_sft(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], out: str | Path, **config: Any) -> Any:
    """Run TRL's SFTTrainer on an exported set; ``config`` goes to ``trl.SFTConfig``.

    Unless ``config`` says otherwise: no gradient checkpointing (TRL's default recomputes
    every activation, which a LoRA on a small model does not need), and bf16 only where the
    hardware has it natively (TRL's CPU default emulates it: slower, and lossier)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    config = {"gradient_checkpointing": False, "bf16": _native_bf16(), **config}

    args = SFTConfig(output_dir=str(out), report_to=[], save_strategy="no", **config)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([defused(r, tokenizer) for r in rows]),
                         processing_class=tokenizer)
    return trainer.train()


def train_preference(trainer: TrainerCore, algo: str, steps: int, out: str | Path, *,
                     min_reward: float = 1.0) -> list[dict[str, Any]]:
    """DPO or SFT (``algo``) of ``trainer``'s learner: play ``steps`` of its batches, export
    them (``out/dpo.jsonl``: the pairs; ``out/sft.jsonl``: the conversations whose seat earned
    ``min_reward``), train with TRL's trainer at the trainer's learning rate (its logs in
    ``out/trl``) and save ``out/checkpoint``. Returns the exported rows; none is an error."""
    import torch

    from .core import LEARNER

    if algo not in ("dpo", "sft"):
        raise ValueError(f"unknown preference algo {algo!r}; choose dpo or sft")
    out = Path(out)
    episodes = [e for step in range(steps) for e in trainer.play(step)]
    settings = {"max_steps": steps, "learning_rate": trainer.cfg.lr, "use_cpu": not torch.cuda.is_available()}
    if algo == "dpo":
        rows = dpo_pairs(episodes, LEARNER)
        write_jsonl(rows, out / "dpo.jsonl")
        if not rows:
            raise ValueError("no preference pairs: every group's replies got the same reward; play more steps")
        train_dpo(trainer.model, trainer.agent.tokenizer, rows, out / "trl", **settings)
    else:
        rows = sft_set(episodes, LEARNER, min_reward=min_reward)
        write_jsonl(rows, out / "sft.jsonl")
        if not rows:
            raise ValueError(f"no conversation earned --min-reward {min_reward}; play more steps or lower it")
        train_sft(trainer.model, trainer.agent.tokenizer, rows, out / "trl", **settings)
    trainer.save(out / "checkpoint")
    return rows
