"""The Episode record every part of dialogym shares, and its crash-safe JSON-lines store."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from .core import Message
from .files import truncate_torn_tail
from .text import storable_data


class Turn(BaseModel):
    """One reply of one seat, valid or not."""

    index: int
    seat: str
    #: Messages appended to this seat's conversation just before it replied (the game
    #: master's prompt, or the error of a re-prompt). The whole conversation of a seat is
    #: the concatenation of its turns' ``messages`` and ``raw`` replies.
    messages: list[Message]
    raw: str
    move: dict[str, Any] | None = None
    error: str | None = None
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prompt_token_ids: list[int] | None = None
    latency_s: float | None = None
    #: The move grammar the reply was decoded under (guided turns only; None: free). Its
    #: ``logprobs`` are under that grammar's mask, and trainers replay the same mask.
    grammar: str | None = None
    #: What was changed in the reply before it was read (e.g. unpaired surrogates replaced).
    note: str | None = None
    #: The round of the game the reply belongs to (a hand of poker: ``Game.round_of``); None
    #: in a game without rounds.
    round: int | None = None


class Episode(BaseModel):
    """Everything that happened in one game, enough to replay and to train on it."""

    id: str
    game: str
    instance_id: str
    instance_version: str
    instance: dict[str, Any]
    level: str
    seed: int
    #: Which play of the instance (see :class:`~.match.Match`); absent in older records.
    play: int = 0
    seats: dict[str, str] = Field(description="seat -> agent (or checkpoint) name")
    turns: list[Turn] = Field(default_factory=list)
    rewards: dict[str, float] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    #: each finished round's rewards per seat, in a game of rounds (``Outcome.round_rewards``;
    #: they sum to ``rewards``); empty otherwise
    round_rewards: list[dict[str, float]] = Field(default_factory=list)
    status: Literal["completed", "aborted"] = "completed"
    abort_reason: str | None = None
    aborted_by: str | None = None
    started_at: float = 0.0
    duration_s: float = 0.0
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def played(self) -> bool:
        return self.status == "completed"

    def conversation(self, seat: str) -> list[Message]:
        """The chat of ``seat`` exactly as it was shown and answered."""
        chat: list[Message] = []
        for turn in self.turns:
            if turn.seat == seat:
                chat.extend(turn.messages)
                chat.append({"role": "assistant", "content": turn.raw})
        return chat


# --------------------------------------------------------------------------- writing
class EpisodeWriter:
    """Appends episodes as JSON lines, one ``write`` per episode and an ``fsync`` per call
    (:meth:`write_many` flushes its episodes to disk together, as databases commit a group).

    A crash can at worst leave a torn last line; opening the file again cuts it off, and
    :func:`read_episodes` skips it, so every earlier episode stays readable.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_torn_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, episode: Episode) -> None:
        self.write_many([episode])

    def write_many(self, episodes: Iterable[Episode]) -> None:
        """Append each episode (a line, in one ``write``), then flush them to disk at once."""
        for episode in episodes:
            view = memoryview((storable_json(episode) + "\n").encode("utf-8"))
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def storable_json(episode: Episode) -> str:
    """The record as one JSON line. Text that is not valid Unicode (which a :class:`~.match.Match`
    repairs where it enters, but a record built by hand may hold) is repaired here with
    :func:`~.text.storable_data` and counted in the ``repaired`` tag, so one bad string never
    costs the episode, nor the ones written after it."""
    try:
        return episode.model_dump_json()
    except ValueError:  # pydantic's "surrogates not allowed" serialization error
        data, replaced = storable_data(episode.model_dump(mode="python"))
        data["tags"] = {**data.get("tags", {}), "repaired": f"unpaired surrogates replaced by U+FFFD: {replaced}"}
        return Episode.model_validate(data).model_dump_json()


def read_episodes(path: str | Path) -> Iterator[Episode]:
    """Yield every complete episode in a JSON-lines file; a torn last line is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as handle:
        lines = handle.read().split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Episode.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValueError) as err:
            if number == len(lines):  # the torn tail of a crashed writer
                warnings.warn(f"{path}:{number}: skipped an incomplete last line", stacklevel=2)
                continue
            raise ValueError(f"{path}:{number}: not a valid episode record: {err}") from err
