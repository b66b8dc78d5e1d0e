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
from westron.torch_onednn import decoding, linear, release_packed_weights

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
@pytest.mark.parametrize("shape", [(5, 64), (3, 7, 64), (2, 1, 64), (1, 64)])
def test_same_output_as_the_layer(bias, shape):
    layer = make_layer(bias)
    hidden = torch.randn(*shape)
    extra = torch.randn(1, 96)
    with torch.no_grad(), decoding(layer):
        expected = layer(hidden)
        close(linear(layer, hidden), expected)
        close(linear(layer, hidden, extra_bias=extra), expected + extra)
    assert took_route(layer)


def test_inference_mode_and_non_contiguous_input():
    layer = make_layer()
    hidden = torch.randn(64, 6).t()  # (6, 64), not contiguous
    with torch.inference_mode(), decoding(layer):
        close(linear(layer, hidden), layer(hidden))
    assert took_route(layer)
    with torch.no_grad(), decoding(layer):  # a packed copy made in inference mode, used outside it
        close(linear(layer, hidden), layer(hidden))


def test_not_taken_where_it_does_not_apply(monkeypatch):
    hidden = torch.randn(4, 64)
    layer = make_layer()
    with torch.no_grad():
        # Outside decoding(): a forward pass under no_grad (an evaluation loss) is the layer itself.
        linear(layer, hidden)
        assert not took_route(layer)
    with decoding(layer):
        # Autograd on: the layer itself, and gradients flow.
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
    # Switched off (read when generate enters the scope), also inside an enabled scope, which comes back after.
    monkeypatch.setenv("WESTRON_ONEDNN_LINEAR", "0")
    off = make_layer()
    with torch.no_grad(), decoding(off):
        linear(off, hidden)
        assert not took_route(off)
    monkeypatch.setenv("WESTRON_ONEDNN_LINEAR", "1")
    with torch.no_grad(), decoding(off):
        monkeypatch.setenv("WESTRON_ONEDNN_LINEAR", "0")
        with decoding(off):
            linear(off, hidden)
            assert not took_route(off)
        linear(off, hidden)
        assert took_route(off)


def test_a_changed_weight_is_packed_again():
    layer = make_layer()
    hidden = torch.randn(4, 64)
    with torch.no_grad():
        with decoding(layer):
            linear(layer, hidden)
        layer.weight.mul_(2.0)  # in place: a new version
        with decoding(layer):
            close(linear(layer, hidden), layer(hidden))
        layer.load_state_dict({"weight": torch.randn(96, 64), "bias": torch.randn(96)})
        with decoding(layer):
            close(linear(layer, hidden), layer(hidden))
        layer.weight = nn.Parameter(torch.randn(96, 64))  # a new tensor
        with decoding(layer):
            close(linear(layer, hidden), layer(hidden))
        layer.weight.data.add_(1.0)  # through .data: the version counter does not move
        with decoding(layer):
            close(linear(layer, hidden), layer(hidden))


@pytest.mark.parametrize("optimizer_options", [{"fused": True}, {"foreach": True}, {"foreach": False}])
def test_an_optimizer_step_between_decodes_is_seen(optimizer_options):
    """torch's fused AdamW updates the weights without bumping their version counter."""
    layer = make_layer()
    hidden = torch.randn(4, 64)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, **optimizer_options)
    with torch.no_grad(), decoding(layer):
        before = linear(layer, hidden)
    linear(layer, hidden).pow(2).sum().backward()
    optimizer.step()
    with torch.no_grad(), decoding(layer):
        after = linear(layer, hidden)
        close(after, layer(hidden))
    assert not torch.allclose(before, after)


def test_generate_decodes_on_onednn_and_sees_training(monkeypatch):
    """The model's generate enters decoding(); a fused AdamW step before the next call is used by it."""
    import westron

    torch.manual_seed(0)
    config = westron.MarianConfig(
        vocab_size=40, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=32,
        pad_token_id=39, eos_token_id=0, decoder_start_token_id=39, forced_eos_token_id=None,
    )  # fmt: skip
    model = westron.MarianMTModel(config).eval()
    ids = torch.tensor([[5, 6, 7, 8, 0], [9, 10, 11, 0, 39]])
    mask = (ids != 39).long()
    first = model.generate(ids, attention_mask=mask, max_new_tokens=6, num_beams=2)
    assert took_route(model.lm_head)
    monkeypatch.setenv("WESTRON_ONEDNN_LINEAR", "0")
    assert torch.equal(first, model.generate(ids, attention_mask=mask, max_new_tokens=6, num_beams=2))
    monkeypatch.delenv("WESTRON_ONEDNN_LINEAR")
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.5, fused=True)
    labels = torch.tensor([[1, 2, 3, 0], [4, 5, 0, -100]])
    model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        logits_plain = model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.full((2, 1), 39)).logits
        with decoding(model):
            logits_route = model(input_ids=ids, attention_mask=mask, decoder_input_ids=torch.full((2, 1), 39)).logits
    close(logits_route, logits_plain)


def test_models_with_packed_weights_copy_and_pickle():
    model = nn.Sequential(make_layer(), nn.ReLU(), nn.Linear(96, 32))
    hidden = torch.randn(3, 64)
    with torch.no_grad(), decoding(model):
        linear(model[0], hidden)
    assert took_route(model[0])
    clone = copy.deepcopy(model)
    restored = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        for other in (clone, restored):
            with decoding(other):
                close(linear(other[0], hidden), model[0](hidden))
    release_packed_weights(model)
    assert not took_route(model[0])
