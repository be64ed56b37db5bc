"""Transposed few-row products for CPU decoding: same values as nn.Linear, same replies."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dialogym.agents.base import Request, Sampling
from dialogym.agents.hf import TransformersAgent, cpu_kernels
from dialogym.agents.hf.cpu_kernels import SKINNY_ROWS, SkinnyLinear, use_skinny_linears
from dialogym.agents.models import tiny_model


def linear_pair(bias=True):
    torch.manual_seed(0)
    plain = nn.Linear(48, 200, bias=bias)
    skinny = copy.deepcopy(plain)
    skinny.__class__ = SkinnyLinear
    return plain, skinny


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(1, 48), (3, 48), (2, 5, 48), (4, 1, 48)])
def test_few_rows_without_gradients_give_nn_linear_s_values(bias, shape):
    plain, skinny = linear_pair(bias)
    x = torch.randn(*shape)
    with torch.no_grad():
        want, got = plain(x), skinny(x)
    assert got.shape == want.shape and got.is_contiguous()
    assert torch.allclose(got, want, atol=1e-5)


def test_many_rows_and_gradients_take_nn_linear_s_own_path():
    plain, skinny = linear_pair()
    many = torch.randn(SKINNY_ROWS + 1, 48)
    with torch.no_grad():
        assert torch.equal(skinny(many), plain(many))
    few = torch.randn(2, 48, requires_grad=True)
    out = skinny(few)
    assert torch.equal(out, plain(few))
    out.sum().backward()
    assert few.grad is not None and skinny.weight.grad is not None


def test_only_plain_linears_change_and_only_where_the_transposed_product_pays(monkeypatch):
    class Custom(nn.Linear):
        pass

    model = nn.Sequential(nn.Linear(8, 8), Custom(8, 8), nn.ReLU(), nn.Linear(8, 4))
    assert cpu_kernels.skinny_gain(64, 16) > 0  # the real measurement runs
    monkeypatch.setattr(cpu_kernels, "skinny_gain", lambda *shape: 1.0)
    assert use_skinny_linears(model) == 0 and type(model[0]) is nn.Linear
    monkeypatch.setattr(cpu_kernels, "skinny_gain", lambda *shape: 2.0)
    assert use_skinny_linears(model) == 2
    assert type(model[0]) is SkinnyLinear and type(model[1]) is Custom and type(model[3]) is SkinnyLinear
    assert isinstance(model[0], nn.Linear)


@pytest.mark.parametrize("share_prefix", [True, False])
def test_replies_with_transposed_products_are_the_replies_without(share_prefix):
    def agent(skinny):
        model, tokenizer = tiny_model()
        made = TransformersAgent(model, tokenizer, share_prefix=share_prefix, skinny_linears=False)
        if skinny:
            assert use_skinny_linears(made.model, force=True) > 0
        return made

    requests = [
        Request(messages=[{"role": "user", "content": text}], sampling=Sampling(temperature=t, max_new_tokens=12), seed=i)
        for i, (text, t) in enumerate([("hello", 0.0), ("a longer prompt here", 0.0), ("sampled", 1.0)])
    ]
    plain, skinny = agent(False).act(requests), agent(True).act(requests)
    assert [r.token_ids for r in skinny] == [r.token_ids for r in plain]
    for mine, theirs in zip(skinny, plain, strict=True):
        assert mine.logprobs == pytest.approx(theirs.logprobs, abs=1e-4)
