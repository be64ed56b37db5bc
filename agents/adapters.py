"""Many LoRA checkpoints as players on one base model, swapped per batch (no reloads).

A league's opponents are past adapters of the same base model. Instead of loading a model
per checkpoint, :class:`AdapterBank` loads each adapter once into one PEFT model and hands
out agents that activate their adapter for the length of a batched call. A lock keeps
concurrent calls (the rollout engine runs agents in threads) from swapping each other's
adapter mid-generation.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from .base import Reply, Request
from .hf import TransformersAgent


class AdapterBank:
    """Owns a base :class:`TransformersAgent` and the adapters loaded onto its model."""

    BASE = "base"

    def __init__(self, base: TransformersAgent) -> None:
        self.base = base
        self.lock = threading.RLock()
        self.loaded: dict[str, str] = {}

    def agent(self, name: str, adapter_path: str | None = None, *, guided: bool = False) -> AdapterAgent:
        """An agent playing with adapter ``name`` (loaded from ``adapter_path`` the first
        time); ``adapter_path=None`` plays the bare base model. ``guided``: see
        :class:`~dialogym.agents.base.Agent`."""
        with self.lock:
            if adapter_path is not None and self.loaded.get(name) != adapter_path:
                if name in self.loaded:
                    self.base.model.delete_adapter(name)
                self.base.load_adapter(name, adapter_path)
                self.loaded[name] = adapter_path
        return AdapterAgent(self, name if adapter_path is not None else None, guided=guided)


class AdapterAgent:
    """The bank's base agent playing with one adapter active (``None``: all off)."""

    def __init__(self, bank: AdapterBank, adapter: str | None, *, guided: bool = False) -> None:
        self.bank, self.adapter = bank, adapter
        self.name = adapter or AdapterBank.BASE
        self.guided = guided

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        with self.bank.lock, self._active():
            return self.bank.base.act(requests)

    def reply_logprobs(self, messages: list[dict[str, str]], replies: Sequence[str]) -> list[float]:
        """:meth:`TransformersAgent.reply_logprobs` with this agent's adapter active."""
        with self.bank.lock, self._active():
            return self.bank.base.reply_logprobs(messages, replies)

    @contextlib.contextmanager
    def _active(self) -> Any:
        model = self.bank.base.model
        if not hasattr(model, "set_adapter"):
            yield
            return
        if self.adapter is None:
            with model.disable_adapter():
                yield
            return
        previous = model.active_adapter
        model.set_adapter(self.adapter)
        try:
            yield
        finally:
            if previous in model.peft_config:
                model.set_adapter(previous)
