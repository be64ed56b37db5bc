"""Key/value caches of token sequences a model has already run, for later prompts that
start with the same tokens: the rules every episode of a seat repeats, and a seat's own
earlier turns (its prompt and reply), which its next prompt carries again."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, partial
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
    #: the store's call count when the entry was last added or served
    used: int = 0

    @property
    def nbytes(self) -> int:
        return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.layers)


class KVStore:
    """A store of :class:`Entry` within ``budget_bytes``.

    An entry serves any prompt by its longest common prefix with the prompt: the keys and
    values of a causal model at a position depend on the tokens up to it only. Entries are
    valid for one state of the weights, the key :meth:`validate` is given (the agent's
    weights fingerprint): the store keeps a shelf of entries per key, for the last ``keys``
    keys, and serves only the current key's. So agents that take turns on one model (LoRA
    adapters swapped per call: a league's evaluations, a learner against its past
    checkpoints) each keep their entries, where one shelf emptied at every swap would serve
    none. A key whose weights are gone (an optimizer step) is never given again; its shelf
    goes idle and makes room first. An entry whose tokens are a prefix of a newer one is
    dropped, as the newer one serves all it did.

    When full, the store makes room by dropping entries no call has used for ``idle_calls``
    calls (:meth:`tick` counts them), least recently used first, from any shelf; if that is
    not enough, the new entry is not kept. Live episodes are served in cycles (each call of a
    seat goes through all of them), and a least-recently-used store smaller than their chats
    would drop every entry just before its next use; this one keeps serving the ones it holds.
    """

    def __init__(self, budget_bytes: int, idle_calls: int = 4, keys: int = 4) -> None:
        self.idle_calls = idle_calls
        self.calls = 0
        self.budget_bytes = budget_bytes
        self.keys = keys
        #: the current key's entries (a shelf of :attr:`shelves`)
        self.entries: OrderedDict[int, Entry] = OrderedDict()
        self.key: Any = None
        #: every key's shelf, the current one last
        self.shelves: OrderedDict[Any, OrderedDict[int, Entry]] = OrderedDict({None: self.entries})
        self.nbytes = 0
        self._next = 0

    def __len__(self) -> int:
        return len(self.entries)

    def tick(self) -> None:
        """Count one call of the agent (entries unused for ``idle_calls`` of them may go)."""
        self.calls += 1

    def clear(self) -> None:
        """Forget every entry, of every key."""
        for shelf in self.shelves.values():
            shelf.clear()
        self.shelves = OrderedDict({self.key: self.entries})
        self.nbytes = 0

    def validate(self, key: Any) -> None:
        """Serve the entries computed under ``key`` from now on (none the first time; the
        shelf of the least recently served of more than ``keys`` keys is dropped)."""
        if key == self.key:
            return
        if not self.entries:
            del self.shelves[self.key]
        self.key, self.entries = key, self.shelves.pop(key, None) or OrderedDict()
        self.shelves[key] = self.entries
        while len(self.shelves) > self.keys:
            _, shelf = self.shelves.popitem(last=False)
            self.nbytes -= sum(entry.nbytes for entry in shelf.values())

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
            found.used = self.calls
        return found, length

    def add(self, tokens: Sequence[int] | np.ndarray, layers: list[tuple[Any, Any]]) -> Entry | None:
        """Store ``layers`` for ``tokens`` under the current key; None where there is no room
        (see the class)."""
        entry = Entry(np.asarray(tokens, dtype=np.int64), layers, used=self.calls)
        size = entry.nbytes
        if size > self.budget_bytes:
            return None
        for index, old in list(self.entries.items()):
            if len(old.tokens) <= len(entry.tokens) and common_length(old.tokens, entry.tokens) == len(old.tokens):
                self._drop(self.entries, index)
        while self.nbytes + size > self.budget_bytes:
            # each shelf's first entry is its least recently used: the oldest of them goes
            oldest = min(((shelf, next(iter(shelf))) for shelf in self.shelves.values() if shelf),
                         key=lambda found: found[0][found[1]].used, default=None)
            if oldest is None or oldest[0][oldest[1]].used > self.calls - self.idle_calls:
                return None
            self._drop(*oldest)
        self.entries[self._next] = entry
        self._next += 1
        self.nbytes += size
        return entry

    def _drop(self, shelf: OrderedDict[int, Entry], index: int) -> None:
        self.nbytes -= shelf.pop(index).nbytes


@cache
def roomy_layer_class() -> type:
    """transformers' ``DynamicLayer`` with room to spare (built on first use, so that this
    module imports without transformers): see :func:`roomy_cache`."""
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """A ``DynamicLayer`` whose keys and values are views of buffers with ``reserve``
        positions to spare: a decoding step writes its token in place, where
        ``DynamicLayer`` concatenates (copies) the whole cache, a cost that grows with the
        batch and the context. A buffer is sized once (prompt + reserve) and grows only
        when that runs out, or is re-seated when the layer's tensors were replaced (a
        batch reorder); every other method is ``DynamicLayer``'s, on the views."""

        def __init__(self, reserve: int = 64) -> None:
            super().__init__()
            self.reserve = reserve
            self._room: tuple[Any, Any] | None = None

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            old = self.keys.shape[-2] if self.keys.numel() else 0
            new = old + key_states.shape[-2]
            room = self._room
            if (room is None or room[0].shape[-2] < new or room[0].shape[:2] != key_states.shape[:2]
                    or room[1].shape[:2] != value_states.shape[:2] or (old and self.keys.data_ptr() != room[0].data_ptr())):
                size = new + self.reserve
                keys = key_states.new_empty((*key_states.shape[:2], size, key_states.shape[-1]))
                values = value_states.new_empty((*value_states.shape[:2], size, value_states.shape[-1]))
                if old:
                    keys[:, :, :old] = self.keys
                    values[:, :, :old] = self.values
                room = self._room = (keys, values)
            room[0][:, :, old:new] = key_states
            room[1][:, :, old:new] = value_states
            self.keys, self.values = room[0][:, :, :new], room[1][:, :, :new]
            return self.keys, self.values

        def seat(self, keys: Any, values: Any, length: int) -> None:
            """Take ``keys`` and ``values`` (``[batch, heads, capacity, head_dim]``) as the
            buffers, their first ``length`` positions as the cache: no copy."""
            self.lazy_initialization(keys, values)
            self._room = (keys, values)
            self.keys, self.values = keys[:, :, :length], values[:, :, :length]

    return RoomyLayer


def roomy_cache(buffers: Sequence[tuple[Any, Any]] = (), length: int = 0, reserve: int = 64) -> Any:
    """A transformers ``DynamicCache`` of :func:`roomy_layer_class` layers, for models whose
    every layer is plain full attention. ``buffers`` holds per layer the key and value
    buffers (``[batch, heads, capacity, head_dim]``) whose first ``length`` positions are the
    cache so far; the rest is room to decode into. Layers without a buffer (all of them by
    default) are made on first use, with room for ``reserve`` positions past their first
    update; a buffer that runs out grows by as much again."""
    from transformers import DynamicCache

    layer = partial(roomy_layer_class(), reserve)
    cache = DynamicCache()
    cache.layer_class_to_replicate = layer
    for keys, values in buffers:
        cache.layers.append(layer())
        cache.layers[-1].seat(keys, values, length)
    return cache
