"""Episodes into token-level training samples, one per trained seat.

A seat's sample is the token sequence of its conversation exactly as the backend saw and
produced it: turn k's prompt ids followed by its generated ids, then only the *new* prompt
tokens of turn k+1 (the game master's next message), and so on. No text is re-tokenised:
the ids are the ones recorded in the episode. When a chat template does not extend the
previous turn's ids (some templates rewrite earlier turns), the seat's turns are split into
one sample per turn instead, so no token is ever trained in a context the model did not see.

Credit per round (``credit="round"``, a game played in rounds: a hand of poker): each of the
seat's rounds is a sample of its own, rewarded with that round's reward alone
(``Episode.round_rewards``), so a hand's moves are not credited with the other hands' chips.
A round the episode did not finish (an abort) gets what is left of the episode's reward.

``loss_mask`` is 1 exactly on the tokens the seat generated; opponent, judge and
game-master text is context. ``attention_mask`` is a different thing — 1 on every real
token, 0 on padding — and :func:`collate` keeps the two apart.

A guided turn (decoded under the seat's move grammar) is a :class:`Span` with its grammar;
its recorded log-probs are under the grammar's mask, so the new ones must be too:
:func:`guided_masks` replays the masks once per sample (and keeps them on it), and
:func:`collate` hands them to the log-prob computation as ``allowed``. Free turns' tokens
are unconstrained (every token allowed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dialogym.envs import Episode


class Span(NamedTuple):
    """One turn's generated tokens: positions ``start`` to ``stop`` (exclusive) of the
    sample, and the grammar they were decoded under (None: free)."""

    start: int
    stop: int
    grammar: str | None


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
    #: the seat's turns, in order: where each one's generated tokens are, and its grammar
    spans: list[Span] = field(default_factory=list)
    #: the replayed grammar masks (see :func:`guided_masks`), kept so epochs and chunks
    #: do not replay them again
    allowed: Any = field(default=None, repr=False, compare=False)
    #: the agents in the episode's other seats (sorted): baselines are conditioned on them
    opponents: tuple[str, ...] = ()
    #: the round of the game whose reward this is (``credit="round"``); None: the episode's
    round: int | None = None

    @property
    def reward_key(self) -> tuple[str, str, int | None]:
        """Whose reward this sample carries: its episode, seat and round. The samples of an
        episode split by its chat template share one key (their reward counts once)."""
        return self.episode_id, self.seat, self.round

    @property
    def guided(self) -> bool:
        """Whether any of the seat's turns was decoded under a grammar."""
        return any(span.grammar is not None for span in self.spans)


CREDITS = ("episode", "round")


def round_reward(episode: Episode, seat: str, round: int) -> float:
    """``seat``'s reward for round ``round`` of ``episode``; for a round the episode did not
    finish, what the finished rounds leave of its reward (the rounds always sum to it)."""
    if round < len(episode.round_rewards):
        return float(episode.round_rewards[round].get(seat, 0.0))
    return float(episode.rewards.get(seat, 0.0)) - sum(float(r.get(seat, 0.0)) for r in episode.round_rewards)


def seat_samples(episode: Episode, seat: str, credit: str = "episode") -> list[Sample]:
    """The sample(s) of one seat of one episode (empty if it has no recorded token ids); with
    ``credit="round"``, one (or more) per round of the game, each with the round's reward."""
    turns = [t for t in episode.turns if t.seat == seat and t.token_ids is not None and t.prompt_token_ids is not None]
    if not turns:
        return []
    if credit not in CREDITS:
        raise ValueError(f"credit={credit!r}: use one of {CREDITS}")
    if credit == "round" and any(t.round is None for t in turns):
        raise ValueError(f"credit='round': {episode.game} has no rounds, or the episode was recorded before turns kept "
                         "their round; use credit='episode'")
    round_now: int | None = None
    reward = float(episode.rewards.get(seat, 0.0))
    opponents = tuple(sorted(agent for other, agent in episode.seats.items() if other != seat))
    samples: list[Sample] = []
    ids: list[int] = []
    mask: list[int] = []
    logprobs: list[float] = []
    ends: list[int] = []
    spans: list[Span] = []

    def flush() -> None:
        if ids:
            samples.append(Sample(list(ids), list(mask), list(logprobs), reward, episode.id, episode.instance_id, seat,
                                  list(ends), list(spans), opponents=opponents, round=round_now))
            ids.clear(), mask.clear(), logprobs.clear(), ends.clear(), spans.clear()

    for turn in turns:
        if credit == "round" and turn.round != round_now:  # a new round: a sample of its own
            flush()
            round_now = turn.round
            reward = round_reward(episode, seat, round_now)
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
        spans.append(Span(len(ids), len(ids) + len(generated), turn.grammar))
        ids.extend(generated)
        mask.extend([1] * len(generated))
        old = list(turn.logprobs or [0.0] * len(generated))
        logprobs.extend(old[: len(generated)] + [0.0] * (len(generated) - len(old)))
        ends.append(len(ids) - 1)
    flush()
    return samples


def episode_samples(episodes: Iterable[Episode], trained: str | Sequence[str], credit: str = "episode") -> list[Sample]:
    """Samples of every seat filled by the agent(s) named ``trained`` (``credit``: see :func:`seat_samples`)."""
    names = {trained} if isinstance(trained, str) else set(trained)
    out: list[Sample] = []
    for episode in episodes:
        for seat, agent in episode.seats.items():
            if agent in names:
                out.extend(seat_samples(episode, seat, credit))
    return out


def episode_rewards(samples: Iterable[Sample]) -> list[float]:
    """Each (episode, seat)'s reward, once, whatever its samples: an episode split by its
    chat template counts its reward once, and one split by round sums its rounds."""
    per_round = {s.reward_key: s.reward for s in samples}
    totals: dict[tuple[str, str], float] = {}
    for (episode_id, seat, _), reward in per_round.items():
        totals[episode_id, seat] = totals.get((episode_id, seat), 0.0) + reward
    return list(totals.values())


def own_positions(sample: Sample) -> list[int]:
    """The positions whose token the seat generated and the model predicts (all but a first one)."""
    return [p for p in range(1, len(sample.input_ids)) if sample.loss_mask[p]]


def guided_masks(sample: Sample, lltokenizer: Any, vocab_size: int, replays: dict | None = None) -> Any:
    """The grammar masks of ``sample``'s own tokens, one row per :func:`own_positions` entry
    (row k: the tokens allowed when the k-th was chosen; every token for free turns), as
    bits packed along the vocabulary (numpy uint8, little-endian bit order); None when no
    turn was guided. Replayed from each guided turn's grammar and tokens with the learner's
    tokenizer (``lltokenizer``: llguidance's view of it), once: the result stays on the sample.
    ``replays`` (a dict the caller keeps across samples) memoises a turn's masks by its
    grammar and tokens: the plays of a group often give the same reply."""
    if not sample.guided:
        return None
    if sample.allowed is None or sample.allowed.shape[1] != (vocab_size + 7) // 8:
        import numpy as np

        from dialogym.agents.guidance import replay_masks

        row_of = {p: k for k, p in enumerate(own_positions(sample))}
        rows = np.ones((len(row_of), vocab_size), dtype=bool)
        for span in sample.spans:
            if span.grammar is not None:
                tokens = sample.input_ids[span.start : span.stop]
                key = (span.grammar, tuple(tokens))
                masks = replays.get(key) if replays is not None else None
                if masks is None:
                    masks = replay_masks(lltokenizer, span.grammar, tokens, vocab_size, lltokenizer.eos_tokens).numpy()
                    if replays is not None:
                        replays[key] = masks
                for t, p in enumerate(range(span.start, span.stop)):
                    if p in row_of:
                        rows[row_of[p]] = masks[t]
        sample.allowed = np.packbits(rows, axis=-1, bitorder="little")
    return sample.allowed


def collate(samples: Sequence[Sample], pad_id: int) -> dict:
    """Right-padded tensors: input_ids, attention_mask (real tokens), loss_mask (own tokens),
    old_logprobs; and where a sample's grammar masks were replayed (:func:`guided_masks`),
    ``allowed``: (batch, most own tokens of a sample, packed vocabulary) uint8, row k of a
    sample the mask of its k-th own token (every bit set for free tokens and padding)."""
    import torch

    width = max(len(s.input_ids) for s in samples)

    def pad(rows: list[list], value: float, dtype) -> torch.Tensor:
        return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=dtype)

    batch = {
        "input_ids": pad([s.input_ids for s in samples], pad_id, torch.long),
        "attention_mask": pad([[1] * len(s.input_ids) for s in samples], 0, torch.long),
        "loss_mask": pad([s.loss_mask for s in samples], 0, torch.float32),
        "old_logprobs": pad([s.old_logprobs for s in samples], 0.0, torch.float32),
    }
    guided = [s.allowed for s in samples if s.guided and s.allowed is not None]
    if guided:
        counts = [len(own_positions(s)) for s in samples]
        allowed = torch.full((len(samples), max(counts), guided[0].shape[1]), 255, dtype=torch.uint8)
        for row, s in enumerate(samples):
            if s.guided and s.allowed is not None:
                allowed[row, : counts[row]] = torch.from_numpy(s.allowed)
        batch["allowed"] = allowed
    return batch
