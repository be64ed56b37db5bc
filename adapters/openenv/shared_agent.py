"""One agent answering many sessions at once: their calls are gathered into batched calls.

The OpenEnv server steps each session in a thread of its own, and each session's opponents are
played by a rollout engine of its own; a model must not run two ``act`` calls at once (one
model, one device) and is fastest on batches. :class:`SharedAgent` wraps the agent: the
first thread to call becomes the caller for everyone, and hands the agent every request
waiting at that moment as one batch, again and again until none waits; the other threads
wait for their own replies. A batch that fails fails only the calls it held.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from dialogym.agents.base import Agent, Reply, Request


@dataclass
class _Call:
    requests: list[Request]
    done: threading.Event = field(default_factory=threading.Event)
    replies: list[Reply] | None = None
    error: BaseException | None = None


class SharedAgent:
    """``agent`` behind a batching gate: ``act`` may be called from many threads at once."""

    def __init__(self, agent: Agent, *, max_batch: int = 64) -> None:
        self.agent = agent
        self.name = agent.name
        self.guided = bool(getattr(agent, "guided", False))
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[_Call] = []
        self._busy = False
        #: sizes of the batches handed to ``agent`` (for tests and logs)
        self.batch_sizes: list[int] = []

    @property
    def waiting(self) -> int:
        """Requests waiting for the next batch."""
        with self._lock:
            return sum(len(call.requests) for call in self._waiting)

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        call = _Call(list(requests))
        with self._lock:
            self._waiting.append(call)
            lead, self._busy = not self._busy, True
        if lead:
            self._drain()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.replies is not None
        return call.replies

    def _drain(self) -> None:
        while True:
            with self._lock:
                calls = self._take()
                if not calls:
                    self._busy = False
                    return
            self._answer(calls)

    def _take(self) -> list[_Call]:
        """Calls waiting now, up to ``max_batch`` requests (at least one call)."""
        taken, size = [], 0
        while self._waiting and (not taken or size + len(self._waiting[0].requests) <= self.max_batch):
            call = self._waiting.pop(0)
            taken.append(call)
            size += len(call.requests)
        return taken

    def _answer(self, calls: list[_Call]) -> None:
        batch = [request for call in calls for request in call.requests]
        try:
            replies = list(self.agent.act(batch))
            if len(replies) != len(batch):
                raise RuntimeError(f"agent {self.name!r} returned {len(replies)} replies for {len(batch)} requests")
        except BaseException as err:  # noqa: BLE001 - the waiting threads must all be released
            for call in calls:
                call.error = err
                call.done.set()
            return
        self.batch_sizes.append(len(batch))
        start = 0
        for call in calls:
            call.replies = replies[start:start + len(call.requests)]
            start += len(call.requests)
            call.done.set()
