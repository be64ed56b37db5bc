"""Key/value caches of token sequences a model has already run, for later prompts that
start with the same tokens: the rules every episode of a seat repeats, and a seat's own
earlier turns (its prompt and reply), which its next prompt carries again."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def common_length(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common prefix of two token arrays."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


@dataclass
class Entry:
    """One run sequence: its tokens and, per layer, keys and values of shape
    ``(1, heads, len(tokens), head_dim)``."""

    tokens: np.ndarray
    layers: list[tuple[Any, Any]]

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)


class KVStore:
    """A least-recently-used store of :class:`Entry` within ``budget_bytes``.

    An entry serves any prompt by its longest common prefix with the prompt: the keys and
    values of a causal model at a position depend on the tokens up to it only. Entries are
    valid for one state of the weights: :meth:`validate` empties the store when the key it
    is given (the agent's weights fingerprint) changes. An entry whose tokens are a prefix
    of a newer one is dropped, as the newer one serves all it did.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.entries: OrderedDict[int, Entry] = OrderedDict()
        self.nbytes = 0
        self.key: Any = None
        self._next = 0

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0

    def validate(self, key: Any) -> None:
        """Empty the store unless ``key`` is the one its entries were computed under."""
        if key != self.key:
            self.clear()
            self.key = key

    def best(self, tokens: Sequence[int] | np.ndarray, limit: int) -> tuple[Entry | None, int]:
        """The entry sharing the longest prefix with ``tokens`` and that length (at most
        ``limit``); ``(None, 0)`` when none shares a token."""
        tokens = np.asarray(tokens)
        found, length = None, 0
        for index, entry in self.entries.items():
            shared = min(common_length(entry.tokens, tokens), limit)
            if shared > length:
                found, length, found_index = entry, shared, index
        if found is not None:
            self.entries.move_to_end(found_index)
        return found, length

    def add(self, tokens: Sequence[int] | np.ndarray, layers: list[tuple[Any, Any]]) -> Entry | None:
        """Store ``layers`` for ``tokens`` (None where one entry alone exceeds the budget)."""
        entry = Entry(np.asarray(tokens, dtype=np.int64), layers)
        size = entry.nbytes
        if size > self.budget_bytes:
            return None
        for index, old in list(self.entries.items()):
            if len(old.tokens) <= len(entry.tokens) and common_length(old.tokens, entry.tokens) == len(old.tokens):
                self._drop(index)
        while self.entries and self.nbytes + size > self.budget_bytes:
            self._drop(next(iter(self.entries)))
        self.entries[self._next] = entry
        self._next += 1
        self.nbytes += size
        return entry

    def _drop(self, index: int) -> None:
        self.nbytes -= self.entries.pop(index).nbytes
