"""Linear layers on oneDNN with pre-packed weights: float32 inference on the CPU, for decoding.

Why: PyTorch's `F.linear` on an x86 CPU calls MKL's sgemm, which re-lays-out the weight matrix on
every call. Decoding multiplies few rows (one per sentence, or per beam) by large weights, step
after step, and there that costs up to half the speed. oneDNN's inner product with the weight
reordered once into its own blocked layout runs most of those products faster on the 2-core AVX2
development machine, up to 4x at 4 rows (the 58k-word vocabulary head of opus-mt 1.8x at 128 rows;
a few shapes, such as 128 rows x 2048 -> 512, level with MKL), and opus-mt's greedy and beam
decoding 1.3-2x faster (docs/benchmarks.md). CTranslate2
does the same with its packed GEMMs.

The models call `linear(layer, hidden)` where they would call `layer(hidden)`, and PyTorch's
`generate` runs inside `decoding(model)`. Inside that scope, `linear` takes the oneDNN route where
it is the same computation (float rounding apart): a plain `nn.Linear`, float32 weights and input
on the CPU, autograd off, no hooks on the layer, not under torch.compile. Everything else (a
forward pass outside `generate`, training, CUDA, bf16, int8-quantized layers, which are no longer
`nn.Linear`) calls the layer as before.

The packed weight is a copy kept beside the layer while the model lives (as much memory again as
the Linear weights), made on first use. `decoding(model)` first drops the copies whose weight
changed since they were packed: a new tensor, a bumped version counter (in-place edits through
autograd, `load_state_dict`), or a different value at any of ~1,024 evenly spaced elements (what
catches an optimizer step, which changes every element: torch's fused AdamW, for one, leaves the
version counter as it was). An edit of a few elements through `.data` may touch none of those:
call `release_packed_weights(model)` after one. `WESTRON_ONEDNN_LINEAR=0` turns the route off.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref

import torch
from torch import nn

# The row count oneDNN chooses its weight layout for; one layout serves every row count (checked
# 1 to 128 rows), and 128 (32 sentences x 4 beams) was as fast as or faster than 1 or 32 at 4+ rows.
PACKING_ROWS = 128

# Elements of a weight compared, evenly spaced, to tell whether it changed since it was packed.
SAMPLED_ELEMENTS = 1024

# layer -> (weight version, storage pointer, sampled elements, packed weight); outside the layers,
# so that copying or pickling a model never meets the packed copies.
_PACKED_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SCOPE = threading.local()  # .enabled: inside a decoding() scope, with the route switched on


def onednn_linear_enabled() -> bool:
    """oneDNN is in this torch build (x86 CPU wheels) and the route is not switched off."""
    return _AVAILABLE and os.environ.get("WESTRON_ONEDNN_LINEAR", "1") != "0"


def _onednn_available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_reorder_linear_weight")
        and hasattr(ops, "_linear_pointwise")
    )


_AVAILABLE = _onednn_available()


@contextlib.contextmanager
def decoding(model: nn.Module):
    """The scope in which the model's Linear layers may run on oneDNN (generate enters it).

    On entry, the packed copies of the model's weights that changed since they were packed are dropped.
    """
    enabled = onednn_linear_enabled()
    if enabled:
        for module in model.modules():
            entry = _PACKED_WEIGHTS.get(module)
            if entry is not None and not _unchanged(module.weight, entry):
                del _PACKED_WEIGHTS[module]
    outer = getattr(_SCOPE, "enabled", False)
    _SCOPE.enabled = enabled  # read once per scope, not once per product
    try:
        yield
    finally:
        _SCOPE.enabled = outer


def linear(layer: nn.Module, hidden: torch.Tensor, extra_bias: torch.Tensor | None = None) -> torch.Tensor:
    """layer(hidden) (+ extra_bias, broadcast over the last dimension): (..., in) -> (..., out).

    extra_bias: a (out,) or (1, out) vector added after the layer (Marian's final_logits_bias);
    on the oneDNN route it is folded into the product's own bias.
    """
    if not _takes_onednn_route(layer, hidden):
        output = layer(hidden)
        return output if extra_bias is None else output + extra_bias
    bias = layer.bias
    if extra_bias is not None:
        extra_bias = extra_bias.reshape(-1)
        bias = extra_bias if bias is None else bias + extra_bias
    return torch.ops.mkldnn._linear_pointwise(hidden.contiguous(), _packed_weight(layer), bias, "none", [], "")


def _takes_onednn_route(layer: nn.Module, hidden: torch.Tensor) -> bool:
    if not getattr(_SCOPE, "enabled", False) or type(layer) is not nn.Linear or torch.is_grad_enabled():
        return False
    weight = layer.weight
    if not (hidden.is_cpu and weight.is_cpu) or hidden.dtype != torch.float32 or weight.dtype != torch.float32:
        return False
    if layer._forward_hooks or layer._forward_pre_hooks or _global_hooks():
        return False
    return not torch.compiler.is_compiling()


def _packed_weight(layer: nn.Linear) -> torch.Tensor:
    """The layer's weight in oneDNN's blocked layout (packed on first use, or again after a new tensor
    or version; decoding() checks the sampled elements once per scope)."""
    weight = layer.weight
    entry = _PACKED_WEIGHTS.get(layer)
    if entry is None or entry[:2] != (weight._version, weight.data_ptr()):
        detached = weight.detach()
        packed = torch.ops.mkldnn._reorder_linear_weight(detached, PACKING_ROWS)
        entry = (weight._version, weight.data_ptr(), _sampled_elements(detached).clone(), packed)
        _PACKED_WEIGHTS[layer] = entry
    return entry[3]


def _sampled_elements(weight: torch.Tensor) -> torch.Tensor:
    flat = weight.reshape(-1)
    return flat[:: max(1, flat.numel() // SAMPLED_ELEMENTS)]


def _unchanged(weight: torch.Tensor, entry: tuple) -> bool:
    version, pointer, sampled, _ = entry
    if (version, pointer) != (weight._version, weight.data_ptr()):
        return False
    return torch.equal(sampled, _sampled_elements(weight.detach()))


def _global_hooks() -> bool:
    module = nn.modules.module
    return bool(module._global_forward_hooks or module._global_forward_pre_hooks)


def release_packed_weights(model: nn.Module) -> None:
    """Drops the model's packed copies (they are made again on the next decoding call)."""
    for module in model.modules():
        _PACKED_WEIGHTS.pop(module, None)
