"""Matrix products of decoding steps on CPU.

A decoding step multiplies every weight matrix by a handful of rows (one token per live
reply). For that shape some CPU BLAS builds take a slow path: MKL on this project's 2-core
AMD EPYC runs ``x @ W.T`` with 2-8 rows at half the speed of one row, though the cost is
reading ``W`` either way. The same product written as ``(W @ x.T).T`` streams ``W`` once
and runs about twice as fast there. :func:`use_skinny_linears` measures both forms once per
weight shape on the machine at hand and, where the second pays, makes the model's
``nn.Linear`` layers use it for products of few rows without gradients (decoding);
prefill, training and GPUs keep PyTorch's own path.

Imported only by the transformers backend (it imports torch at once).
"""

from __future__ import annotations

import time
from functools import cache

import torch
from torch import nn

#: products of at most this many rows (batch x tokens) take the transposed form
SKINNY_ROWS = 32
#: the transposed form is used where it is at least this much faster
MIN_GAIN = 1.2


class SkinnyLinear(nn.Linear):
    """``nn.Linear`` computing a product of at most :data:`SKINNY_ROWS` rows on CPU
    without gradients as ``(W @ x.T).T`` (the same values up to float rounding); other
    products go to ``nn.Linear``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            x.is_cpu and x.dim() >= 2 and not torch.is_grad_enabled()
            and x.dtype == self.weight.dtype and x.numel() <= SKINNY_ROWS * x.shape[-1]
        ):
            out = torch.mm(self.weight, x.reshape(-1, x.shape[-1]).T).T
            if self.bias is not None:
                out = out + self.bias
            return out.contiguous().reshape(*x.shape[:-1], self.out_features)
        return super().forward(x)


@cache
def skinny_gain(out_features: int, in_features: int, dtype: torch.dtype = torch.float32, rows: int = 4) -> float:
    """How many times faster ``(W @ x.T).T`` is than ``F.linear`` here, for a weight of this
    shape and ``rows`` rows (measured once per shape and process, best of a few runs)."""
    weight = torch.randn(out_features, in_features, dtype=dtype)
    x = torch.randn(rows, in_features, dtype=dtype)

    def best(product) -> float:
        product()
        times = []
        for _ in range(5):
            start = time.perf_counter()
            product()
            times.append(time.perf_counter() - start)
        return min(times)

    with torch.no_grad():
        plain = best(lambda: nn.functional.linear(x, weight))
        skinny = best(lambda: torch.mm(weight, x.T).T.contiguous())
    return plain / skinny if skinny > 0 else 1.0


def plain_linears(model: nn.Module) -> list[nn.Linear]:
    """``model``'s layers that are exactly ``nn.Linear`` (subclasses such as quantized layers
    or adapters' own types are not): the ones :func:`use_skinny_linears` may switch."""
    return [m for m in model.modules() if type(m) is nn.Linear]


def use_skinny_linears(model: nn.Module, *, force: bool = False) -> int:
    """Make ``model``'s plain ``nn.Linear`` layers :class:`SkinnyLinear` where the transposed
    product pays on this CPU (measured on the largest one; ``force``: regardless). Subclasses
    (quantized layers, adapters' own types) are left alone. Returns how many layers changed."""
    linears = plain_linears(model)
    if not linears:
        return 0
    largest = max(linears, key=lambda m: m.weight.numel())
    if largest.weight.device.type != "cpu":
        return 0
    if not force and skinny_gain(largest.out_features, largest.in_features, largest.weight.dtype) < MIN_GAIN:
        return 0
    for module in linears:
        module.__class__ = SkinnyLinear
    return len(linears)
