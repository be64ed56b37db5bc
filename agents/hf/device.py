"""Where the transformers backend runs and in which dtype: the device when none is given,
and bf16 where the hardware computes it natively."""

from __future__ import annotations

from typing import Any


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
    """``device`` as given, else ``"cuda"`` where torch sees a GPU, else ``"cpu"``."""
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"
