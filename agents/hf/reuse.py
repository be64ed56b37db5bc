"""Prompt tokens whose keys and values are already computed, so ``generate`` prefills only
the rest: the batch's shared prefix, run once, and what :class:`~.kvstore.KVStore` kept of
earlier calls (the rules, a seat's earlier turns). :class:`KVReuse` is that part of
:class:`~.agent.TransformersAgent`, kept apart from its batching."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from .kvstore import Entry, KVStore, roomy_cache, roomy_layer_class


class KVReuse:
    """The shared-prefix and key/value reuse methods of :class:`~.agent.TransformersAgent`
    (a mixin: they read and update the agent's state, set in its ``__init__``).

    A row reuses the first ``length`` tokens of its prompt from a store entry or the shared
    prefix; the batch cache holds them as ``padding, kept tokens`` per row, and the agent
    lays out its rows as ``padding, kept tokens, padding, new tokens`` to match. The store
    is emptied whenever the weights fingerprint (:meth:`_weights_key`) changes, and reuse
    turns itself off for a model whose cache is not plain full attention.
    """

    #: shared prefixes shorter than this are not worth a separate forward pass
    MIN_SHARED_PREFIX = 16

    # the agent's state these methods read and update
    model: Any
    device: str
    autocast: Any
    share_prefix: bool
    reuse_kv: bool
    store: KVStore
    last_prefill: list[tuple[int, int]]
    reused_prompt_tokens: int
    _cache_unfit: bool
    _roomy_models: dict[int, bool]
    _tuner_layers: dict[int, list[Any]]

    def shared_prefix(self, prompts: Sequence[list[int]]) -> list[int]:
        """The batch's longest common token prefix, when sharing it pays (else ``[]``). It
        stops one token short of the shortest prompt: ``generate`` needs a token to prefill
        in every row."""
        if not self.share_prefix or len(prompts) < 2:
            return []
        first, limit = prompts[0], min(len(p) for p in prompts) - 1
        length = 0
        while length < limit and all(p[length] == first[length] for p in prompts):
            length += 1
        return list(first[:length]) if length >= self.MIN_SHARED_PREFIX else []

    def _reuse(self, prompts: list[list[int]], max_new_tokens: int) -> tuple[list[int], Any]:
        """How many leading tokens of each prompt come with keys and values already, and the
        batch cache holding them (``padding, kept tokens`` per row, as wide as the longest;
        None where no row reuses any). They come from the store (earlier calls: the rules,
        a seat's earlier turns) or from the batch's shared prefix, run here once. Each row
        keeps at least one token to prefill, which ``generate`` needs."""
        none = [0] * len(prompts)
        if not self.share_prefix or self._cache_unfit:
            return none, None
        if self.reuse_kv:
            self.store.validate(self._weights_key())
        else:
            self.store.clear()
        hits = [self.store.best(p, len(p) - 1) for p in prompts]
        shared = self.shared_prefix(prompts)
        if shared and any(length < len(shared) for _, length in hits):
            entry = self._run_prefix(shared)
            if entry is None:
                return none, None
            hits = [(entry, len(shared)) if length < len(shared) else (e, length) for e, length in hits]
        hits = [(e, length) if length >= self.MIN_SHARED_PREFIX else (None, 0) for e, length in hits]
        carried = max(length for _, length in hits)
        if not carried:
            return none, None
        tail = max(len(p) - length for p, (_, length) in zip(prompts, hits, strict=True))
        return [length for _, length in hits], self._batch_cache(hits, carried, tail + max_new_tokens)

    def _run_prefix(self, prefix: list[int]) -> Any:
        """The store's entry for ``prefix``: its best partial entry extended by one forward
        pass (batch 1) over the rest. None where the model's cache is not plain full
        attention (sliding windows, recurrent state), which the ``prefix, padding, suffix``
        layout would get wrong; reuse is then off for this agent."""
        import torch
        from transformers import DynamicCache

        start, known = self.store.best(prefix, len(prefix))
        if start is not None and known == len(prefix):
            return start
        ids = torch.tensor([prefix[known:]], device=self.device)
        extra = {"logits_to_keep": 1} if _accepts(self.model, "logits_to_keep") else {}
        if start is not None:
            extra["cache" if _accepts(self.model, "cache") else "past_key_values"] = DynamicCache([(k[:, :, :known], v[:, :, :known]) for k, v in start.layers])
        out = self.model(input_ids=ids, use_cache=True, **extra)
        layers = self._plain_layers(out.cache if hasattr(out, "cache") else out.past_key_values)
        if layers is None:
            return None
        self.last_prefill.append((known, len(prefix)))
        self.reused_prompt_tokens -= len(prefix) - known
        entry = self.store.add(prefix, [(k.contiguous(), v.contiguous()) for k, v in layers])
        return entry if entry is not None else Entry(np.asarray(prefix), layers)  # no room: this call only

    def _roomy(self) -> bool:
        """Whether ``generate`` may start from a :func:`~dialogym.agents.hf.kvstore.roomy_cache`:
        every layer of the model's own cache is plain full attention (no sliding window,
        no recurrent state)."""
        if self._cache_unfit:
            return False
        known = self._roomy_models.get(id(self.model))
        if known is None:
            from transformers import DynamicCache

            try:
                layers = DynamicCache(config=self.model.config).layers
            except Exception:  # a config transformers cannot read layer types from: its default cache
                layers = []
            known = bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers)
            self._roomy_models = {id(self.model): known}
        return known

    def _plain_layers(self, cache: Any) -> list[tuple[Any, Any]] | None:
        layers = getattr(cache, "layers", None)
        plain = ("DynamicLayer", roomy_layer_class().__name__)
        if not layers or any(type(layer).__name__ not in plain for layer in layers):
            self._cache_unfit = True
            self.store.clear()
            return None
        return [(layer.keys, layer.values) for layer in layers]

    def _batch_cache(self, hits: list[tuple[Any, int]], carried: int, reserve: int) -> Any:
        """A cache of ``len(hits)`` rows and ``carried`` positions, with room for
        ``reserve`` more (:func:`~dialogym.agents.hf.kvstore.roomy_cache`), built in its
        buffers: row ``i`` holds its entry's first ``length`` keys and values at the right,
        zeros (masked) before them."""
        first = next(e for e, length in hits if length)
        layers = []
        for layer, (k0, v0) in enumerate(first.layers):
            keys = k0.new_empty((len(hits), k0.shape[1], carried + reserve, k0.shape[3]))
            values = v0.new_empty((len(hits), v0.shape[1], carried + reserve, v0.shape[3]))
            keys[:, :, :carried] = 0  # masked padding must still be finite (0 x NaN is NaN)
            values[:, :, :carried] = 0
            for row, (entry, length) in enumerate(hits):
                if length:
                    k, v = entry.layers[layer]
                    keys[row, :, carried - length : carried] = k[0, :, :length]
                    values[row, :, carried - length : carried] = v[0, :, :length]
            layers.append((keys, values))
        return roomy_cache(layers, carried, reserve)

    def _keep(self, out: Any, attention: Any, prompts: list[list[int]], replies: list[list[int]]) -> None:
        """Store each row's prompt and reply with their keys and values from ``generate``'s
        cache (the reply's last token was never run: it has none)."""
        import torch

        cache = out.cache if hasattr(out, "cache") else getattr(out, "past_key_values", None)
        layers = self._plain_layers(cache) if cache is not None else None
        if layers is None:
            return
        width, length = attention.shape[1], layers[0][0].shape[2]
        for row, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
            ran = reply[: max(0, min(len(reply), length - width))]
            where = torch.cat([attention[row].nonzero()[:, 0], torch.arange(width, width + len(ran), device=attention.device)])
            where = where.to(layers[0][0].device)
            self.store.add(prompt + ran, [(k[row : row + 1].index_select(2, where), v[row : row + 1].index_select(2, where)) for k, v in layers])

    def _weights_key(self) -> tuple:
        """Changes whenever what the model computes may have: another model object, another
        active or disabled adapter, an in-place update of a parameter (an optimizer step,
        a loaded state dict), another autocast dtype."""
        model = self.model
        params = list(model.parameters())
        tuners = self._tuner_layers.get(id(model))
        if tuners is None:
            tuners = _tuner_layers(model)[:1]
            self._tuner_layers = {id(model): tuners}
        disabled = tuple(bool(m.disable_adapters) for m in tuners)
        adapters = tuple(model.active_adapters) if tuners and not callable(model.active_adapters) else ()
        # fused optimizers and ``.data`` writes leave ``_version`` alone: the trainable
        # parameters' sums catch those (one read of them per call)
        import torch

        trainable = [p.detach().sum(dtype=torch.float32) for p in params if p.requires_grad]
        sums = tuple(torch.stack(trainable).tolist()) if trainable else ()
        return (id(model), adapters, disabled, sum(p._version for p in params), sum(id(p) for p in params),
                str(self.autocast), sums)

    def clear_kv_store(self) -> None:
        """Forget every stored key/value cache (done by itself when the weights change)."""
        self.store.clear()


def _tuner_layers(model: Any) -> list[Any]:
    """The PEFT adapter layers in ``model`` (none without peft)."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def _accepts(model: Any, keyword: str) -> bool:
    """Whether the causal LM under ``model`` (a PEFT wrapper's base model too) takes ``keyword``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return keyword in inspect.signature(base.forward).parameters
