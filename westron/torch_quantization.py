"""int8 inference for PyTorch models: `from_pretrained(..., quantization="int8")`.

PyTorch's dynamic quantization (`torch.ao.quantization.quantize_dynamic`) swaps every nn.Linear for
an int8 one: the weight is quantized once, per output channel (symmetric, 8 bits); the input is
quantized on the fly per call (one scale and zero point per tensor, from its min and max), the
product runs in int8 with int32 accumulation (fbgemm) and comes back as float32. Embeddings, layer
norms, attention scores and softmax stay float32. A tied LM head is an nn.Linear sharing the
embedding's weight, so it gets its own int8 copy and the lookups keep the float matrix.

This is the TensorFlow twin of `tf_quantization.py`; both keep `model.quantization` set to the
method, which `save_pretrained` refuses (the int8 tensors are not a checkpoint another loader reads).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from westron.errors import WestronError


def quantize_model(model: nn.Module, method: str) -> nn.Module:
    """Quantizes `model` in place for inference (`method`: "int8") and returns it.

    Example:

        >>> from westron import AutoModelForSeq2SeqLM
        >>> model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint, quantization="int8")
        >>> model.quantization, type(model.lm_head).__name__
        ('int8', 'Linear')
        >>> model.lm_head.weight().dtype
        torch.qint8
    """
    if method != "int8":
        raise WestronError(f"quantization={method!r} is not supported in PyTorch (use 'int8')")
    if getattr(model, "quantization", None) is not None:
        raise WestronError(f"this model is already quantized ({model.quantization})")
    if model.dtype != torch.float32:
        raise WestronError(f"quantization='int8' quantizes a float32 model, not a {str(model.dtype).removeprefix('torch.')} one (leave dtype= out)")
    if model.device.type != "cpu":
        raise WestronError("PyTorch's int8 quantization runs on the CPU only (leave device= out, or use device='cpu')")
    model.eval()
    with warnings.catch_warnings():
        # torch 2.10+ warns that torch.ao.quantization moves to torchao; its eager dynamic
        # quantization is still PyTorch's own CPU int8 path (fbgemm), and Westron pins torch.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization.*")
        warnings.filterwarnings("ignore", message=".*per_channel.*")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    model.quantization = method
    return model
