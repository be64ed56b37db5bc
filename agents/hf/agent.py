"""The transformers agent: requests batched by sampling settings into left-padded
``generate`` calls, and each call's tokens turned back into replies. Token choice is
:mod:`.decoder`'s; key/value reuse across rows and calls is :mod:`.reuse`'s."""

from __future__ import annotations

import copy
import inspect
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from ..base import Reply, Request, Sampling
from ..defuse import defuse_messages
from ..guidance import Choice
from .decoder import Decoder
from .device import pick_device
from .kvstore import KVStore, roomy_cache
from .reuse import KVReuse


class TransformersAgent(KVReuse):
    """A local causal LM answering batches of chat requests.

    Requests with the same sampling settings share one left-padded ``generate`` call (in
    chunks of ``batch_size``), whatever their token caps and guidance: each row ends at its
    own ``max_new_tokens``, and only the rows that ask for guided moves decode under their
    grammar, so a batch of several games costs its longest reply. Each reply carries the generated token ids and their
    log-probabilities under the distribution it was sampled from (tempered, top-p filtered), which is
    what policy-gradient trainers need, and the prompt's token ids.

    Seeding: each request samples from its own seed (see :class:`~.decoder.Decoder`), so its
    reply does not depend on which requests share its batch (up to floating-point effects
    of padding), the global torch RNG is untouched, and the same batch replays exactly.
    Stop strings end a reply; the reply text excludes the stop string.

    Shared prefix (``share_prefix``, on by default): the rows of a batch usually start with
    the same tokens (the system prompt and rules every episode of a seat repeats). That
    common prefix is run through the model once, with batch 1, and its key/value cache is
    copied to every row; only the rows' own suffixes are prefilled. Across calls
    (``reuse_kv``, on by default) each row's prompt and reply are kept with their keys and
    values in a :class:`~dialogym.agents.hf.kvstore.KVStore` of ``kv_store_mb``, and a later
    prompt starts from the kept sequence it shares the longest prefix with: a seat's next
    turn runs only the tokens its earlier turns did not have. The store is emptied whenever
    the weights, the active adapter or the autocast dtype change. Rows are laid out as
    ``padding, kept tokens, padding, new tokens`` with the padding masked out, so every real
    token keeps the position and the attention it has in a left-padded batch: greedy
    float32 replies are token for token the same as with ``share_prefix=False``. Grammar
    masks and per-request seeds apply to generated tokens only and are untouched by it.
    With ``share_prefix`` the cache ``generate`` decodes into also has room for the reply
    (:func:`~dialogym.agents.hf.kvstore.roomy_cache`), so a decoding step writes its keys and
    values in place instead of copying the whole cache; ``share_prefix=False`` is plain
    ``generate`` on a left-padded batch.

    On CPU (``skinny_linears``, on by default) the model's linear layers compute decoding
    steps' few-row products as ``(W @ x.T).T`` where that measures faster on the machine
    (:mod:`~dialogym.agents.hf.cpu_kernels`); the values agree up to float rounding.

    Jump-forward decoding (``jump_forward``, on by default): when every row of a batch is
    guided by a short list of literal moves whose spellings part at one token (Kuhn Poker's
    ``[check]`` or ``[bet]``: :class:`~dialogym.agents.guidance.Choice`), the tokens its mask
    would force one step at a time (``[`` before the choice; ``]`` and end of sequence after)
    are written without running the model: each prompt runs with the forced prefix appended,
    once, for the choice. The replies, log-probs and seeded draws are those of step-by-step
    decoding (up to float rounding); a batch of Kuhn Poker moves takes one model step instead
    of four with SmolLM2's tokenizer.

    ``guided``: the rollout engine sends this agent's requests with the seat's move grammar
    (a ``+guided`` spec). ``autocast``: a torch dtype to generate under autocast (trainers
    keep float32 weights and sample in bf16). :meth:`with_` builds an agent that differs in
    these, its name or its model (a trainer's learner: this model with a LoRA adapter on).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "hf",
        guided: bool = False,
        device: str | None = None,
        batch_size: int = 32,
        return_logprobs: bool = True,
        autocast: Any = None,
        share_prefix: bool = True,
        reuse_kv: bool = True,
        kv_store_mb: int = 2048,
        skinny_linears: bool = True,
        jump_forward: bool = True,
    ) -> None:
        self.name = name
        self.guided = guided
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
        self.autocast = autocast
        self.share_prefix = share_prefix
        #: keep key/value caches across calls (needs ``share_prefix``): see :class:`KVStore`
        self.reuse_kv = reuse_kv
        #: decode literal-move choices with one model step (:meth:`_choose`)
        self.jump_forward = jump_forward
        #: grammar -> its Choice (None: decoded step by step)
        self._choice_cache: dict[str, Choice | None] = {}
        self._start(KVStore(kv_store_mb * 2**20))

    def _start(self, store: KVStore) -> None:
        """The state an agent gathers while it plays, empty: its key/value ``store`` and counters."""
        self.store = store
        #: (start, end) prompt positions run by the model in the last ``act``, per row and
        #: per shared prefix (what FLOP counts need)
        self.last_prefill: list[tuple[int, int]] = []
        self._cache_unfit = False
        self._roomy_models: dict[int, bool] = {}
        self._tuner_layers: dict[int, list[Any]] = {}
        self.generated_tokens = 0
        #: prompt tokens whose keys and values came from a shared prefix or the store instead of a prefill
        self.reused_prompt_tokens = 0

    def with_(self, **changes: Any) -> TransformersAgent:
        """A new agent like this one but for ``changes`` to ``model``, ``name``, ``guided`` or
        ``autocast``. It shares this agent's tokenizer, device and settings (and its model,
        unless ``model`` is given: this model wrapped, say with a LoRA adapter, on the same
        device); its key/value store and counters start empty. A trainer builds its learner
        so: its model with the adapter it trains, named for the seatings, guided, in bf16."""
        unknown = sorted(set(changes) - {"model", "name", "guided", "autocast"})
        if unknown:
            raise TypeError(f"TransformersAgent.with_: cannot change {', '.join(unknown)}; only model, name, guided and autocast")
        agent = copy.copy(self)
        vars(agent).update(changes)
        agent._start(KVStore(self.store.budget_bytes, self.store.idle_calls))
        return agent

    def load_adapter(self, name: str, path: str) -> None:
        """Load the LoRA adapter at ``path`` onto this agent's model as ``name``, inactive
        unless it is the model's first (which makes the model a PEFT model). In place: the
        agents of an :class:`~dialogym.agents.adapters.AdapterBank` all play on this model."""
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            self.model.load_adapter(path, adapter_name=name, is_trainable=False)
        else:
            self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name, is_trainable=False)
            self.model.eval()

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

    def reply_logprobs(self, messages: list[dict[str, str]], replies: Sequence[str]) -> list[float]:
        """The log-probability of each of ``replies`` as this model's answer to ``messages``
        (temperature 1, no grammar, each reply in the tokenizer's own tokenization): how a
        policy weighs its moves, read exactly instead of sampled."""
        import torch

        prompt = self.encode(messages)
        rows = [prompt + list(self.tokenizer(reply, add_special_tokens=False)["input_ids"]) for reply in replies]
        width = max(map(len, rows))
        ids = torch.tensor([row + [0] * (width - len(row)) for row in rows], device=self.model.device)
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows], device=self.model.device)
        start = len(prompt) - 1  # the position that predicts each reply's first token
        with torch.no_grad():
            logits = self.model(input_ids=ids, attention_mask=mask).logits[:, start:]
            logp = logits.float().log_softmax(-1)
        return [float(sum(logp[i, t - 1 - start, row[t]] for t in range(len(prompt), len(row)))) for i, row in enumerate(rows)]

    def _generate(self, requests: Sequence[Request], sampling: Sampling) -> list[Reply]:
        started = time.perf_counter()
        prompts = [self.encode(r.messages) for r in requests]
        choices = self._choices(requests, sampling)
        if choices is not None:
            return self._choose(requests, sampling, prompts, choices, started)
        masks = self._row_masks(requests, sampling)
        out, attention, decoder = self._run(prompts, sampling, lambda width: Decoder(requests, sampling, width, self.device, masks, self._stop_id()))
        new = out.sequences[:, attention.shape[1] :]
        logprobs = decoder.logprobs() if self.return_logprobs else None
        elapsed = time.perf_counter() - started
        replies = self._replies(requests, sampling, prompts, new, logprobs, decoder.masks is not None, elapsed)
        if self.reuse_kv:
            self._keep(out, attention, prompts, [r.token_ids or [] for r in replies])
        return replies

    def _run(self, prompts: list[list[int]], sampling: Sampling, decoder_of: Callable[[int], Decoder]) -> tuple[Any, Any, Decoder]:
        """One ``generate`` call over ``prompts`` (keys and values reused where kept, see
        :class:`KVReuse`), each token chosen by ``decoder_of(prompt width)``: its output, the
        attention mask of the prompts' layout and the decoder."""
        import torch

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
            # Every step's token is chosen by Decoder (greedy, or sampled from the request's own
            # seed, under the row's grammar mask when guided) and handed to generate's greedy
            # step as the only finite score: no global RNG, and each reply depends on its own
            # request only.
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            decoder = decoder_of(width)
            kwargs["logits_processor"] = [decoder]
            if sampling.stop:
                kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
            out = self.model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
        self.last_prefill.extend((r, len(p)) for p, r in zip(prompts, reused, strict=True))
        self.reused_prompt_tokens += sum(reused)
        return out, attention, decoder

    def _choices(self, requests: Sequence[Request], sampling: Sampling) -> list[Choice] | None:
        """Each row's :class:`~dialogym.agents.guidance.Choice` when jump-forward decoding
        applies to the whole batch: every row guided by a literal list of moves that part at
        one token, one end-of-sequence token, room for the longest move under every row's cap,
        no stop strings. None otherwise (decoded step by step)."""
        if not self.jump_forward or not sampling.guided or sampling.stop or len(self._eos_ids()) != 1:
            return None
        from ..guidance import choice_of

        lltokenizer = None
        choices = []
        for request in requests:
            if not _guided(request):
                return None
            assert request.grammar is not None
            known = self._choice_cache.get(request.grammar, _UNSEEN)
            if known is _UNSEEN:  # (agents made by with_ share the cache, and may run in threads)
                lltokenizer = lltokenizer or self.grammar_tokenizer()
                if len(self._choice_cache) >= 4096:
                    self._choice_cache.clear()
                known = self._choice_cache[request.grammar] = choice_of(lltokenizer, request.grammar)
            choice = known
            if choice is None or choice.longest > request.sampling.max_new_tokens:
                return None
            choices.append(choice)
        return choices

    def _choose(self, requests: Sequence[Request], sampling: Sampling, prompts: list[list[int]], choices: list[Choice],
                started: float) -> list[Reply]:
        """Jump-forward decoding of a batch of literal-move choices: each prompt runs with its
        forced prefix appended, one step chooses among the tokens that tell the moves apart
        (under the same mask, temperature, top-p and uniform draw as step-by-step decoding),
        and the chosen move's rest and end of sequence are written with log-prob 0, as their
        one-token masks give them. The replies are those of step-by-step decoding."""
        import torch

        heads = [prompt + list(choice.prefix) for prompt, choice in zip(prompts, choices, strict=True)]
        allowed = torch.zeros((len(requests), self.vocab_size()), dtype=torch.bool)
        for row, choice in enumerate(choices):
            allowed[row, list(choice.rest)] = True
        one = sampling.with_(max_new_tokens=1)
        skip = [len(c.prefix) for c in choices]
        out, attention, decoder = self._run(heads, one, lambda width: Decoder(requests, one, width, self.device, _FixedMask(allowed), skip=skip))
        picked = out.sequences[:, attention.shape[1]].tolist()
        logprobs = decoder.logprobs() if self.return_logprobs else None
        elapsed = time.perf_counter() - started
        (eos,) = self._eos_ids()
        replies = []
        for row, (prompt, choice, token) in enumerate(zip(prompts, choices, picked, strict=True)):
            ids = [*choice.prefix, token, *choice.rest[token], eos]
            logp = [0.0] * len(ids)
            logp[len(choice.prefix)] = float(logprobs[row, 0]) if logprobs is not None else 0.0
            self.generated_tokens += len(ids)
            replies.append(Reply(text=self.tokenizer.decode(ids, skip_special_tokens=True), token_ids=ids,
                                 logprobs=logp if logprobs is not None else None, prompt_token_ids=prompt,
                                 latency_s=elapsed, guided=True))
        if self.reuse_kv:
            self._keep(out, attention, heads, [[] for _ in heads])
        return replies

    def _replies(self, requests: Sequence[Request], sampling: Sampling, prompts: list[list[int]], new: Any,
                 logprobs: Any, masked: bool, elapsed: float) -> list[Reply]:
        """One reply per row of ``new`` (the generated tokens): cut at the row's own cap, at
        its end of sequence and before its first stop string; ``masked``: the batch decoded
        under grammar masks, so its guided rows kept their grammar."""
        pad = self.tokenizer.pad_token_id
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
                    guided=masked and _guided(requests[row]),
                )
            )
        return replies

    def vocab_size(self) -> int:
        """Width of the model's logits (may exceed the tokenizer's vocabulary)."""
        head = self.model.get_output_embeddings()
        return int(head.weight.shape[0]) if head is not None else int(self.model.config.vocab_size)

    def grammar_tokenizer(self) -> Any:
        """llguidance's view of this agent's tokenizer (built once)."""
        from ..guidance import grammar_tokenizer

        return grammar_tokenizer(self.tokenizer, self.vocab_size(), self._eos_ids())

    def _row_masks(self, requests: Sequence[Request], sampling: Sampling) -> Any:
        """Per-row grammar masks of a guided batch; None when no row is constrained."""
        if not sampling.guided or not any(_guided(r) for r in requests):
            return None
        from ..guidance import RowMasks

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


def _cache_keyword() -> str:
    """``generate``'s name for a starting cache: ``cache`` from transformers 5, before that
    ``past_key_values``."""
    from transformers import GenerationMixin

    names = inspect.signature(GenerationMixin.prepare_inputs_for_generation).parameters
    return "cache" if "cache" in names else "past_key_values"


_UNSEEN = object()


class _FixedMask:
    """The grammar masks of a one-step call: ``allowed`` (rows, V), the same whatever came before."""

    def __init__(self, allowed: Any) -> None:
        self.mask = allowed

    def allowed(self) -> Any:
        return self.mask

    def advance(self, tokens: Sequence[int], ended: Sequence[bool]) -> None:
        pass
