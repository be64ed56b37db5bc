"""Hugging Face transformers backend: batched ``generate`` on CPU or CUDA, the batch's
shared prompt prefix encoded once, keys and values kept across calls."""

from __future__ import annotations

import inspect
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from dialogym.envs import derive_seed

from .base import Reply, Request, Sampling
from .defuse import defuse_messages
from .kvstore import Entry, KVStore, roomy_cache, roomy_layer_class
from .specs import ModelSpec


def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def inference_dtype(device: str, dtype: str | None) -> Any:
    """``dtype`` as given, else bf16 on GPUs and on CPUs with native bf16, else float32.

    bf16 made SmolLM2 generation 1.7x faster on a 2-core AVX512-BF16 CPU with the same
    greedy text; trainers that need float32 weights pass ``dtype="float32"``.
    """
    import torch

    if dtype not in (None, "auto"):
        return getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if device.startswith("cuda") or cpu_supports_bf16():
        return torch.bfloat16
    return torch.float32


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class TransformersAgent:
    """A local causal LM answering batches of chat requests.

    Requests with the same sampling settings share one left-padded ``generate`` call (in
    chunks of ``batch_size``), whatever their token caps and guidance: each row ends at its
    own ``max_new_tokens``, and only the rows that ask for guided moves decode under their
    grammar, so a batch of several games costs its longest reply. Each reply carries the generated token ids and their
    log-probabilities under the model's raw distribution (temperature 1, no top-p), which is
    what policy-gradient trainers need, and the prompt's token ids.

    Seeding: each request samples from its own seed (see :class:`_Decoder`), so its
    reply does not depend on which requests share its batch (up to floating-point effects
    of padding), the global torch RNG is untouched, and the same batch replays exactly.
    Stop strings end a reply; the reply text excludes the stop string.

    Shared prefix (``share_prefix``, on by default): the rows of a batch usually start with
    the same tokens (the system prompt and rules every episode of a seat repeats). That
    common prefix is run through the model once, with batch 1, and its key/value cache is
    copied to every row; only the rows' own suffixes are prefilled. Across calls
    (``reuse_kv``, on by default) each row's prompt and reply are kept with their keys and
    values in a :class:`~dialogym.agents.kvstore.KVStore` of ``kv_store_mb``, and a later
    prompt starts from the kept sequence it shares the longest prefix with: a seat's next
    turn runs only the tokens its earlier turns did not have. The store is emptied whenever
    the weights, the active adapter or the autocast dtype change. Rows are laid out as
    ``padding, kept tokens, padding, new tokens`` with the padding masked out, so every real
    token keeps the position and the attention it has in a left-padded batch: greedy
    float32 replies are token for token the same as with ``share_prefix=False``. Grammar
    masks and per-request seeds apply to generated tokens only and are untouched by it.
    With ``share_prefix`` the cache ``generate`` decodes into also has room for the reply
    (:func:`~dialogym.agents.kvstore.roomy_cache`), so a decoding step writes its keys and
    values in place instead of copying the whole cache; ``share_prefix=False`` is plain
    ``generate`` on a left-padded batch.

    On CPU (``skinny_linears``, on by default) the model's linear layers compute decoding
    steps' few-row products as ``(W @ x.T).T`` where that measures faster on the machine
    (:mod:`~dialogym.agents.cpu_kernels`); the values agree up to float rounding.
    """

    #: shared prefixes shorter than this are not worth a separate forward pass
    MIN_SHARED_PREFIX = 16

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "hf",
        device: str | None = None,
        batch_size: int = 32,
        return_logprobs: bool = True,
        autocast: Any = None,
        share_prefix: bool = True,
        reuse_kv: bool = True,
        kv_store_mb: int = 2048,
        skinny_linears: bool = True,
    ) -> None:
        self.name = name
        self.device = pick_device(device)
        self.model = model.to(self.device)
        self.model.eval()
        #: linear layers that decode with the transposed product (0: off, not on CPU, or not faster here)
        self.skinny_linears = 0
        if skinny_linears and self.device == "cpu":
            from .cpu_kernels import use_skinny_linears

            self.skinny_linears = use_skinny_linears(self.model)
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.batch_size = batch_size
        self.return_logprobs = return_logprobs
        #: a torch dtype to generate under autocast (trainers keep float32 weights, sample in bf16)
        self.autocast = autocast
        self.share_prefix = share_prefix
        #: keep key/value caches across calls (needs ``share_prefix``): see :class:`KVStore`
        self.reuse_kv = reuse_kv
        self.store = KVStore(kv_store_mb * 2**20)
        #: (start, end) prompt positions run by the model in the last ``act``, per row and
        #: per shared prefix (what FLOP counts need)
        self.last_prefill: list[tuple[int, int]] = []
        self._cache_unfit = False
        self._roomy_models: dict[int, bool] = {}
        self._tuner_layers: dict[int, list[Any]] = {}
        self.generated_tokens = 0
        #: prompt tokens whose keys and values came from a shared prefix or the store instead of a prefill
        self.reused_prompt_tokens = 0

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: ModelSpec, **options: Any) -> TransformersAgent:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .models import smollm2_path, tiny_model

        dtype = options.pop("dtype", None)
        if spec.kind == "tiny":
            model, tokenizer = tiny_model()
        else:
            path = str(smollm2_path()) if spec.kind == "smollm2" else spec.target
            try:
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(
                    path, dtype=inference_dtype(pick_device(options.get("device")), dtype)
                )
            except OSError as err:
                raise FileNotFoundError(
                    f"cannot load model {path!r}: {err.__class__.__name__}; give a local folder with "
                    "config.json and weights (dialogym never downloads weights)"
                ) from err
        if spec.lora:
            model = attach_lora(model, spec.lora)
        return cls(model, tokenizer, name=spec.raw, **options)

    # -- generation --------------------------------------------------------------------
    def act(self, requests: Sequence[Request]) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(requests)
        self.last_prefill = []
        self.store.tick()
        # One generate per sampling setting: rows with other token caps, guided or free, share
        # it (each row stops at its own cap, and only guided rows are masked), so a call costs
        # its longest reply's decoding steps, not the sum over its games' caps.
        groups: dict[Sampling, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            groups[_batch_key(request.sampling)].append(index)
        for key, indices in groups.items():
            for start in range(0, len(indices), self.batch_size):
                rows = indices[start : start + self.batch_size]
                chunk = [requests[i] for i in rows]
                sampling = key.with_(max_new_tokens=max(r.sampling.max_new_tokens for r in chunk), guided=any(_guided(r) for r in chunk))
                for index, reply in zip(rows, self._generate(chunk, sampling), strict=True):
                    replies[index] = reply
        return [r for r in replies if r is not None]

    def encode(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a chat prompt, ending with the assistant's generation prompt. No text in
        the messages becomes one of the tokenizer's special tokens (:mod:`.defuse`)."""
        safe = defuse_messages(messages, self.tokenizer)
        return list(self.tokenizer.apply_chat_template(safe, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])

    def _generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Reply]:
        import torch

        started = time.perf_counter()
        prompts = [self.encode(r.messages) for r in requests]
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        with (
            torch.no_grad(),
            torch.autocast(device_type, dtype=self.autocast or torch.bfloat16, enabled=self.autocast is not None),
        ):
            reused, cache = self._reuse(prompts, sampling.max_new_tokens)
            carried = max(reused)
            tail = max(len(p) - r for p, r in zip(prompts, reused, strict=True))
            width = carried + tail
            if cache is None and self.share_prefix and self._roomy():
                cache = roomy_cache(reserve=sampling.max_new_tokens)
            pad = self.tokenizer.pad_token_id
            rows, masks = [], []
            for prompt, r in zip(prompts, reused, strict=True):
                gap_a, gap_b = carried - r, tail - (len(prompt) - r)
                rows.append([pad] * gap_a + prompt[:r] + [pad] * gap_b + prompt[r:])
                masks.append([0] * gap_a + [1] * r + [0] * gap_b + [1] * (len(prompt) - r))
            input_ids = torch.tensor(rows, device=self.device)
            attention = torch.tensor(masks, device=self.device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": sampling.max_new_tokens,
                "pad_token_id": pad,
                "return_dict_in_generate": True,
            }
            if cache is not None:
                kwargs[_cache_keyword()] = cache
            # Every step's token is chosen by _Decoder (greedy, or sampled from the request's own
            # seed, under the row's grammar mask when guided) and handed to generate's greedy
            # step as the only finite score: no global RNG, and each reply depends on its own
            # request only.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            decoder = _Decoder(requests, sampling, width, self.device, self._row_masks(requests, sampling), self._stop_id())
            kwargs["logits_processor"] = [decoder]
            if sampling.stop:
                kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        new = out.sequences[:, width:]
        self.last_prefill.extend((r, len(p)) for p, r in zip(prompts, reused, strict=True))
        self.reused_prompt_tokens += sum(reused)
        logprobs = decoder.logprobs() if self.return_logprobs else None
        elapsed = time.perf_counter() - started
        replies = []
        eos_ids = self._eos_ids()
        for row, prompt in enumerate(prompts):
            ids = new[row, : requests[row].sampling.max_new_tokens].tolist()
            length = next((i + 1 for i, t in enumerate(ids) if t in eos_ids), len(ids))
            if length == len(ids) and pad not in eos_ids:
                while length and ids[length - 1] == pad:  # right padding after stop strings
                    length -= 1
            ids = ids[:length]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            for stop in sampling.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[:cut]
            self.generated_tokens += len(ids)
            replies.append(
                Reply(
                    text=text,
                    token_ids=ids,
                    logprobs=logprobs[row, :length].tolist() if logprobs is not None else None,
                    prompt_token_ids=prompt,
                    latency_s=elapsed,
                    guided=decoder.masks is not None and _guided(requests[row]),
                )
            )
        if self.reuse_kv:
            self._keep(out, attention, prompts, [r.token_ids or [] for r in replies])
        return replies

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
        """Whether ``generate`` may start from a :func:`~dialogym.agents.kvstore.roomy_cache`:
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
        ``reserve`` more (:func:`~dialogym.agents.kvstore.roomy_cache`), built in its
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

    def vocab_size(self) -> int:
        """Width of the model's logits (may exceed the tokenizer's vocabulary)."""
        head = self.model.get_output_embeddings()
        return int(head.weight.shape[0]) if head is not None else int(self.model.config.vocab_size)

    def grammar_tokenizer(self) -> Any:
        """llguidance's view of this agent's tokenizer (built once)."""
        from .guidance import grammar_tokenizer

        return grammar_tokenizer(self.tokenizer, self.vocab_size(), self._eos_ids())

    def _row_masks(self, requests: Sequence[Request], sampling: Sampling) -> Any:
        """Per-row grammar masks of a guided batch; None when no row is constrained."""
        if not sampling.guided or not any(_guided(r) for r in requests):
            return None
        from .guidance import RowMasks

        grammars = [r.grammar if _guided(r) else None for r in requests]
        return RowMasks(self.grammar_tokenizer(), grammars, self.vocab_size(), self._eos_ids())

    def _stop_id(self) -> int:
        """The end-of-sequence token ``generate`` stops a row on (what ends a row at its own cap)."""
        eos = self.model.generation_config.eos_token_id
        eos = eos[0] if isinstance(eos, list) else eos
        return eos if eos is not None else self.tokenizer.eos_token_id

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids


def _batch_key(sampling: Sampling) -> Sampling:
    """What requests must agree on to share a ``generate`` call: all but the token cap and guidance."""
    return sampling.with_(max_new_tokens=1, guided=False)


def _guided(request: Request) -> bool:
    """Whether ``request`` is decoded under its grammar: it asks for guided moves and has one."""
    return request.sampling.guided and request.grammar is not None


def _tuner_layers(model: Any) -> list[Any]:
    """The PEFT adapter layers in ``model`` (none without peft)."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def _cache_keyword() -> str:
    """``generate``'s name for a starting cache: ``cache`` from transformers 5, before that
    ``past_key_values``."""
    from transformers import GenerationMixin

    names = inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters
    return "cache" if "cache" in names else "past_key_values"


def _accepts(model: Any, keyword: str) -> bool:
    """Whether the causal LM under ``model`` (a PEFT wrapper's base model too) takes ``keyword``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return keyword in inspect.signature(base.forward).parameters


class _Decoder:
    """Chooses each row's next token and records its log-prob, one step at a time.

    Under a grammar (guided rows) the forbidden tokens' logits are set to -inf first, so the
    recorded log-prob is the one under the masked, renormalised distribution the token was
    drawn from. Greedy rows take the arg-max; sampled rows draw from their own request's
    seed (inverse CDF of the tempered, top-p filtered distribution), so a reply is the same
    whichever requests share its batch. Each row draws its uniforms up front from a
    generator seeded with its request's seed (unseeded requests: from the batch's seeds and
    their position). The scores returned are 0 for the chosen token and -inf elsewhere, for
    ``generate``'s greedy step to pick; only the chosen token's log-prob is kept (no
    (batch x steps x vocabulary) tensor of logits).
    """

    def __init__(self, requests: Sequence[Request], sampling: Sampling, prompt_width: int, device: str,
                 masks: Any = None, stop_id: int | None = None) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopPLogitsWarper

        self.width = prompt_width
        self.masks = masks
        self.greedy = sampling.greedy
        self.chosen: list[int] = []
        self._logprobs: list[Any] = []
        # Rows whose own cap is below the batch's (``sampling.max_new_tokens``) get ``stop_id``
        # at their cap, which ends them; the caller keeps only their first ``cap`` tokens.
        caps = [r.sampling.max_new_tokens for r in requests]
        self.caps = torch.tensor(caps, device=device) if stop_id is not None and min(caps) < sampling.max_new_tokens else None
        self.stop_id = stop_id
        if self.greedy:
            return

        batch = [r.seed if r.seed is not None else 0 for r in requests]
        uniforms = torch.zeros((len(requests), sampling.max_new_tokens), dtype=torch.float64)
        for row, request in enumerate(requests):
            seed = request.seed if request.seed is not None else derive_seed(*batch, row)
            generator = torch.Generator().manual_seed(seed % (2**63 - 1))
            cap = min(request.sampling.max_new_tokens, sampling.max_new_tokens)
            uniforms[row, :cap] = torch.rand(cap, generator=generator, dtype=torch.float64)
        self.uniforms = uniforms.to(device)
        self.warpers = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(sampling.top_p))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        step = input_ids.shape[1] - self.width
        if self.masks is not None:
            if step > 0:
                # a row generate has finished (end of sequence, stop string) shows padding
                # where its chosen token would be: its matcher stops there
                last = input_ids[:, -1].tolist()
                self.masks.advance(last, [got != want for got, want in zip(last, self.chosen, strict=True)])
            allowed = self.masks.allowed().to(scores.device)
            scores = scores.masked_fill(~allowed[:, : scores.shape[-1]], float("-inf"))
        if self.greedy:
            token = scores.argmax(dim=-1, keepdim=True)
        else:
            warped = scores
            for warper in self.warpers:
                warped = warper(input_ids, warped)
            cdf = torch.softmax(warped.double(), dim=-1).cumsum(dim=-1)
            drawn = self.uniforms[:, step : step + 1] * cdf[:, -1:]
            token = torch.searchsorted(cdf, drawn, right=True).clamp(max=scores.shape[-1] - 1)
        if self.caps is not None:
            token = token.masked_fill((self.caps <= step)[:, None], self.stop_id)
        self.chosen = token[:, 0].tolist()
        self._logprobs.append(torch.log_softmax(scores.float(), dim=-1).gather(-1, token)[:, 0])
        return torch.full_like(scores, float("-inf")).scatter_(1, token, 0.0)

    def logprobs(self) -> Any:
        """(batch, steps) log-probs of the chosen tokens (None before any step)."""
        import torch

        return torch.stack(self._logprobs, dim=1).cpu() if self._logprobs else None


def attach_lora(model: Any, adapter_path: str) -> Any:
    """Put a PEFT LoRA adapter on ``model``; needs the ``peft`` package."""
    try:
        from peft import PeftModel
    except ImportError as err:  # pragma: no cover - peft is in the train extra
        raise ImportError("a '+lora:' model spec needs peft: pip install 'dialogym[train]'") from err
    return PeftModel.from_pretrained(model, adapter_path)
