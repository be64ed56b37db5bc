"""Episodes into token-level training samples, one per trained seat.

A seat's sample is the token sequence of its conversation exactly as the backend saw and
produced it: turn k's prompt ids followed by its generated ids, then only the *new* prompt
tokens of turn k+1 (the game master's next message), and so on. No text is re-tokenised:
the ids are the ones recorded in the episode. When a chat template does not extend the
previous turn's ids (some templates rewrite earlier turns), the seat's turns are split into
one sample per turn instead, so no token is ever trained in a context the model did not see.

``loss_mask`` is 1 exactly on the tokens the seat generated; opponent, judge and
game-master text is context. ``attention_mask`` is a different thing — 1 on every real
token, 0 on padding — and :func:`collate` keeps the two apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dialogym.envs import Episode


@dataclass
class Sample:
    input_ids: list[int]
    loss_mask: list[int]
    #: per token: the behaviour policy's log-prob where it generated the token, else 0
    old_logprobs: list[float]
    reward: float
    episode_id: str
    instance_id: str
    seat: str
    #: positions where each of the seat's turns ends (index of its last generated token)
    turn_ends: list[int] = field(default_factory=list)


def seat_samples(episode: Episode, seat: str) -> list[Sample]:
    """The sample(s) of one seat of one episode (empty if it has no recorded token ids)."""
    turns = [t for t in episode.turns if t.seat == seat and t.token_ids is not None and t.prompt_token_ids is not None]
    if not turns:
        return []
    reward = float(episode.rewards.get(seat, 0.0))
    samples: list[Sample] = []
    ids: list[int] = []
    mask: list[int] = []
    logprobs: list[float] = []
    ends: list[int] = []

    def flush() -> None:
        if ids:
            samples.append(Sample(list(ids), list(mask), list(logprobs), reward, episode.id, episode.instance_id, seat, list(ends)))
            ids.clear(), mask.clear(), logprobs.clear(), ends.clear()

    for turn in turns:
        prompt = list(turn.prompt_token_ids or [])
        if ids and prompt[: len(ids)] == ids:
            new_context = prompt[len(ids) :]
        else:  # first turn, or a template that does not extend the earlier ids
            flush()
            new_context = prompt
        ids.extend(new_context)
        mask.extend([0] * len(new_context))
        logprobs.extend([0.0] * len(new_context))
        generated = list(turn.token_ids or [])
        ids.extend(generated)
        mask.extend([1] * len(generated))
        old = list(turn.logprobs or [0.0] * len(generated))
        logprobs.extend(old[: len(generated)] + [0.0] * (len(generated) - len(old)))
        ends.append(len(ids) - 1)
    flush()
    return samples


def episode_samples(episodes: Iterable[Episode], trained: str | Sequence[str]) -> list[Sample]:
    """Samples of every seat filled by the agent(s) named ``trained``."""
    names = {trained} if isinstance(trained, str) else set(trained)
    out: list[Sample] = []
    for episode in episodes:
        for seat, agent in episode.seats.items():
            if agent in names:
                out.extend(seat_samples(episode, seat))
    return out


def collate(samples: Sequence[Sample], pad_id: int) -> dict:
    """Right-padded tensors: input_ids, attention_mask (real tokens), loss_mask (own tokens)."""
    import torch

    width = max(len(s.input_ids) for s in samples)

    def pad(rows: list[list], value: float, dtype) -> torch.Tensor:
        return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=dtype)

    return {
        "input_ids": pad([s.input_ids for s in samples], pad_id, torch.long),
        "attention_mask": pad([[1] * len(s.input_ids) for s in samples], 0, torch.long),
        "loss_mask": pad([s.loss_mask for s in samples], 0, torch.float32),
        "old_logprobs": pad([s.old_logprobs for s in samples], 0.0, torch.float32),
    }
