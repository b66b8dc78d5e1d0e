"""westron/torch_onednn.py: the oneDNN route for Linear layers while decoding on the CPU.

The route must compute what the layer computes (float32 rounding apart), be taken only where it
applies, and never serve a stale packed weight.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from tests.test_modeling_common import CACHE_TOL, assert_float32_close
from westron import torch_onednn
from westron.torch_onednn import linear, release_packed_weights

pytestmark = pytest.mark.skipif(not torch_onednn.onednn_linear_enabled(), reason="this torch build has no oneDNN")


def close(actual, expected) -> None:
    """One product by two kernels: the float32 bound of "one model two ways"."""
    assert_float32_close(actual, expected, CACHE_TOL)


def make_layer(bias: bool = True) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(64, 96, bias=bias)


def took_route(layer: nn.Module) -> bool:
    return layer in torch_onednn._PACKED_WEIGHTS


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 64), (3, 7, 64), (2, 1, 64)])
def test_same_output_as_the_layer(bias, shape):
    layer = make_layer(bias)
    hidden = torch.randn(*shape)
    extra = torch.randn(1, 96)
    with torch.no_grad():
        expected = layer(hidden)
        close(linear(layer, hidden), expected)
        close(linear(layer, hidden, extra_bias=extra), expected + extra)
    assert took_route(layer)


def test_inference_mode_and_non_contiguous_input():
    layer = make_layer()
    hidden = torch.randn(64, 6).t()  # (6, 64), not contiguous
    with torch.inference_mode():
        close(linear(layer, hidden), layer(hidden))
    assert took_route(layer)


def test_not_taken_where_it_does_not_apply(monkeypatch):
    hidden = torch.randn(4, 64)
    # Autograd on: the layer itself, and gradients flow.
    layer = make_layer()
    out = linear(layer, hidden)
    out.sum().backward()
    assert layer.weight.grad is not None and not took_route(layer)
    with torch.no_grad():
        # bf16 weights.
        bf16 = make_layer().to(torch.bfloat16)
        linear(bf16, hidden.to(torch.bfloat16))
        assert not took_route(bf16)
        # A hook on the layer must see the call.
        hooked = make_layer()
        seen = []
        hooked.register_forward_hook(lambda module, args, output: seen.append(output.shape))
        linear(hooked, hidden)
        assert seen == [(4, 96)] and not took_route(hooked)
        # Switched off.
        monkeypatch.setenv("WESTRON_ONEDNN_LINEAR", "0")
        off = make_layer()
        linear(off, hidden)
        assert not took_route(off)


def test_a_changed_weight_is_packed_again():
    layer = make_layer()
    hidden = torch.randn(4, 64)
    with torch.no_grad():
        linear(layer, hidden)
        layer.weight.mul_(2.0)  # in place: a new version
        close(linear(layer, hidden), layer(hidden))
        layer.load_state_dict({"weight": torch.randn(96, 64), "bias": torch.randn(96)})
        close(linear(layer, hidden), layer(hidden))
        layer.weight = nn.Parameter(torch.randn(96, 64))  # a new tensor
        close(linear(layer, hidden), layer(hidden))


def test_training_step_between_decodes_uses_the_new_weights():
    layer = make_layer()
    hidden = torch.randn(4, 64)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1)
    with torch.no_grad():
        before = linear(layer, hidden)
    linear(layer, hidden).pow(2).sum().backward()
    optimizer.step()
    with torch.no_grad():
        after = linear(layer, hidden)
        close(after, layer(hidden))
    assert not torch.allclose(before, after)


def test_models_with_packed_weights_copy_and_pickle():
    model = nn.Sequential(make_layer(), nn.ReLU(), nn.Linear(96, 32))
    hidden = torch.randn(3, 64)
    with torch.no_grad():
        linear(model[0], hidden)
    assert took_route(model[0])
    clone = copy.deepcopy(model)
    restored = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        for other in (clone, restored):
            close(linear(other[0], hidden), model[0](hidden))
    release_packed_weights(model)
    assert not took_route(model[0])
