"""The roomy cache layer: keys and values written in place into buffers with room to
spare, with the results of transformers' concatenating DynamicLayer."""

import pytest
import torch

from dialogym.agents.hf.kvstore import roomy_cache, roomy_layer_class

transformers = pytest.importorskip("transformers")
from transformers.cache_utils import DynamicLayer  # noqa: E402


def states(batch=3, heads=2, length=1, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, heads, length, dim, generator=g), torch.randn(batch, heads, length, dim, generator=g)


def test_updates_match_a_concatenating_layer_and_decode_steps_do_not_reallocate():
    roomy, plain = roomy_layer_class()(reserve=4), DynamicLayer()
    pointers = set()
    for step, length in enumerate([5, 1, 1, 1, 1]):
        k, v = states(length=length, seed=step)
        got, want = roomy.update(k, v), plain.update(k, v)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        assert roomy.get_seq_length() == plain.get_seq_length()
        pointers.add(got[0].data_ptr())
    assert len(pointers) == 1  # 5 prefilled + 4 reserved: the buffer was never replaced
    k, v = states(length=1, seed=9)  # the reserve is spent: the buffer grows, contents kept
    got, want = roomy.update(k, v), plain.update(k, v)
    assert torch.equal(got[0], want[0]) and got[0].data_ptr() not in pointers


def test_a_reordered_or_cropped_layer_keeps_its_contents():
    roomy, plain = roomy_layer_class()(reserve=8), DynamicLayer()
    for layer in (roomy, plain):
        layer.update(*states(length=6))
        layer.batch_select_indices(torch.tensor([2, 0]))  # the layer's tensors are replaced
        layer.update(*states(batch=2, seed=1))
        layer.crop(-2)
        layer.update(*states(batch=2, seed=2))
    assert torch.equal(roomy.keys, plain.keys) and torch.equal(roomy.values, plain.values)


def test_a_filled_cache_reports_its_length_and_grows_lazily():
    k, v = states(length=5)  # buffers of 5 positions, the first 3 filled
    cache = roomy_cache([(k, v), (k + 1, v + 1)], length=3, reserve=2)
    assert cache.get_seq_length() == 3 and len(cache.layers) == 2
    assert torch.equal(cache.layers[1].keys, (k + 1)[:, :, :3])
    step = states(seed=4)
    keys, _ = cache.update(*step, layer_idx=0)  # decodes into the given buffer, in place
    assert keys.data_ptr() == k.data_ptr() and torch.equal(keys[:, :, 3:], step[0])
    k, v = states(length=3)
    empty = roomy_cache(reserve=2)
    empty.update(k, v, layer_idx=0)
    assert type(empty.layers[0]) is roomy_layer_class() and empty.get_seq_length() == 3
