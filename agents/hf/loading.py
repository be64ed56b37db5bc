"""Loading a causal LM and its tokenizer from a local folder, and a LoRA adapter onto it.

Model specs (:mod:`dialogym.agents.specs`) say *which* model; this module only loads one
from a path, in the device's inference dtype (:func:`.device.inference_dtype`).
"""

from __future__ import annotations

from typing import Any

from .device import inference_dtype, pick_device


def load_pretrained(path: str, *, device: str | None = None, dtype: str | None = None) -> tuple[Any, Any]:
    """The model and tokenizer saved at ``path`` (a local folder or the HF cache; nothing is
    downloaded), the model in :func:`.device.inference_dtype` of ``device``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=inference_dtype(pick_device(device), dtype))
    except OSError as err:
        raise FileNotFoundError(
            f"cannot load model {path!r}: {err.__class__.__name__}; give a local folder with "
            "config.json and weights (dialogym never downloads weights)"
        ) from err
    return model, tokenizer


def attach_lora(model: Any, adapter_path: str) -> Any:
    """Put a PEFT LoRA adapter on ``model``; needs the ``peft`` package."""
    try:
        from peft import PeftModel
    except ImportError as err:  # pragma: no cover - peft is in the train extra
        raise ImportError("a '+lora:' model spec needs peft: pip install 'dialogym[train]'") from err
    return PeftModel.from_pretrained(model, adapter_path)
