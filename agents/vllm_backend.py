"""vLLM backend (extra ``vllm``, needs a GPU): offline ``LLM`` engine, one batched call.

Prefix caching is on (games resend a growing chat every turn). Each request may carry a
LoRA adapter so past checkpoints play against each other on one base model: name an
adapter with ``request.meta["lora"] = <path>``, or give ``lora=`` for every request.
Adapters are registered under versioned names and ids that are never reused, so reloading
a path after the trainer rewrote it (``reload_adapter``) never reuses vLLM's stale cache.
Agents with the same base model and engine options share one engine (``vllm:X+lora:A``
and ``vllm:X+lora:B`` hold the base weights once).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import Reply, Request
from .defuse import defuse_messages


def import_vllm() -> Any:
    """``vllm``, or an ImportError that says how to install it."""
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            "the vllm backend needs the vllm package and a CUDA GPU: pip install 'dialogym[vllm]'"
        ) from err
    return vllm


#: The old private name, kept until every caller uses :func:`import_vllm`.
_import_vllm = import_vllm


@dataclass
class _Engine:
    """One ``vllm.LLM`` and the LoRA ids given out on it (ids must be unique per engine).

    ``lock`` serialises the agents that share it: the rollout engine calls each agent from
    its own thread, and ``vllm.LLM`` takes one call at a time.
    """

    llm: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    lora_ids: dict[str, tuple[str, int]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    #: never reused: a reloaded adapter must not get an id vLLM already holds other weights under
    next_id: Iterator[int] = field(default_factory=lambda: itertools.count(1))


#: engines by (base model, engine options), so specs that share a base share one engine
_ENGINES: dict[tuple[str, str], _Engine] = {}
#: engines around ``vllm.LLM`` objects handed in by callers, by object id
_GIVEN: dict[int, _Engine] = {}


def shared_engine(vllm: Any, model: str, **engine_kw: Any) -> _Engine:
    """The process's engine for ``model`` with these options, built on first use."""
    key = (str(model), repr(sorted(engine_kw.items())))
    if key not in _ENGINES:
        _ENGINES[key] = _Engine(vllm.LLM(model=model, **engine_kw))
    return _ENGINES[key]


def release_engines() -> None:
    """Forget the shared engines (their GPU memory is freed once no agent holds them)."""
    _ENGINES.clear()
    _GIVEN.clear()


class VLLMAgent:
    """Agents built for the same base model and engine options share one vLLM engine.

    ``guided``: the rollout engine sends this agent's requests with the seat's move grammar,
    which vLLM takes as per-request structured outputs (a ``+guided`` spec).
    """

    def __init__(
        self,
        model: str,
        *,
        lora: str | None = None,
        name: str | None = None,
        guided: bool = False,
        max_lora_rank: int = 64,
        max_loras: int = 8,
        gpu_memory_utilization: float = 0.85,
        llm: Any = None,
        **engine_kw: Any,
    ) -> None:
        self.vllm = import_vllm()
        self.name = name or f"vllm:{model}"
        self.guided = guided
        self.default_lora = lora
        if llm is not None:
            # the same LLM given to two agents is one engine: one id counter, one lock
            self._engine = _GIVEN.setdefault(id(llm), _Engine(llm))
        else:
            self._engine = shared_engine(
                self.vllm,
                model,
                enable_prefix_caching=True,
                enable_lora=True,
                max_lora_rank=max_lora_rank,
                max_loras=max_loras,
                gpu_memory_utilization=gpu_memory_utilization,
                **engine_kw,
            )
        self.llm = self._engine.llm

    def _tokenizer(self) -> Any:
        """The engine's tokenizer (its special tokens are defused in message text), or None
        where the engine does not expose one (then the widespread templates' are)."""
        get = getattr(self.llm, "get_tokenizer", None)
        return get() if get is not None else None

    def reload_adapter(self, path: str) -> None:
        """Make the next request with ``path`` load it afresh (the trainer rewrote it)."""
        key = str(Path(path).resolve())
        with self._engine.lock:
            self._engine.versions[key] = self._engine.versions.get(key, 0) + 1
            self._engine.lora_ids.pop(key, None)

    def _lora_request(self, path: str | None) -> Any:
        if not path:
            return None
        key = str(Path(path).resolve())
        engine = self._engine
        if key not in engine.lora_ids:
            version = engine.versions.get(key, 0)
            engine.lora_ids[key] = (f"{Path(key).name}@v{version}", next(engine.next_id))
        lora_name, lora_id = engine.lora_ids[key]
        return self.vllm.lora.request.LoRARequest(lora_name, lora_id, key)

    def _structured(self, request: Request) -> dict[str, Any]:
        """A guided request's grammar as vLLM's per-request structured outputs (Lark, which
        vLLM's ``guidance`` backend compiles with llguidance, as dialogym does on CPU)."""
        if not (request.sampling.guided and request.grammar):
            return {}
        params = self.vllm.sampling_params
        if hasattr(params, "StructuredOutputsParams"):  # vLLM >= 0.10.2
            return {"structured_outputs": params.StructuredOutputsParams(grammar=request.grammar)}
        return {"guided_decoding": params.GuidedDecodingParams(grammar=request.grammar, backend="guidance")}

    def act(self, requests: Sequence[Request]) -> list[Reply]:
        if not requests:
            return []
        params = [
            self.vllm.SamplingParams(
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                max_tokens=r.sampling.max_new_tokens,
                stop=list(r.sampling.stop) or None,
                seed=r.seed,
                logprobs=0,
                **self._structured(r),
            )
            for r in requests
        ]
        with self._engine.lock:
            loras = [self._lora_request(r.meta.get("lora", self.default_lora)) for r in requests]
            outputs = self.llm.chat([defuse_messages(r.messages, self._tokenizer()) for r in requests], params, lora_request=loras, use_tqdm=False)
        replies = []
        for request, output in zip(requests, outputs, strict=True):
            completion = output.outputs[0]
            ids = list(completion.token_ids)
            logprobs = None
            if completion.logprobs:
                logprobs = [float(step[token].logprob) for step, token in zip(completion.logprobs, ids, strict=False)]
            replies.append(
                Reply(
                    text=completion.text,
                    token_ids=ids,
                    logprobs=logprobs,
                    prompt_token_ids=list(output.prompt_token_ids or []),
                    guided=bool(self._structured(request)),
                )
            )
        return replies
