"""The Hugging Face transformers backend: batched ``generate`` on CPU or CUDA, the batch's
shared prompt prefix encoded once, keys and values kept across calls.

``agent`` (:class:`TransformersAgent`: batching, ``generate``, replies), ``decoder`` (each
token's choice: seeds, caps, grammar masks, log-probs), ``reuse`` (shared prefixes and
kept keys and values) on ``kvstore`` (the store and the in-place decoding cache),
``cpu_kernels`` (few-row products of CPU decoding steps), ``device`` (device and dtype),
``loading`` (a model from a local folder, a LoRA adapter onto it).
"""

from .agent import TransformersAgent
from .device import cpu_supports_bf16, inference_dtype, pick_device
from .loading import attach_lora, load_pretrained

__all__ = ["TransformersAgent", "attach_lora", "cpu_supports_bf16", "inference_dtype", "load_pretrained", "pick_device"]
