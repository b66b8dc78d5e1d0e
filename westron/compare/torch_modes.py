"""PyTorch's side of `westron compare`: devices, loading, generation, logits, a training step, memory.

Twin of `tf_modes.py` (same functions, same order). The modes are how PyTorch runs the model:
"eager" (plain autograd and Python) and "compile" (`torch.compile` of the encoder, the decoder
step and the training forward pass). Nothing here times anything: `worker.py` does, the same way
for both frameworks.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

FRAMEWORK = "pt"
MODES = ("eager", "compile")
PLACEMENT = "model.to(torch.device(...)) once after loading; every input tensor created with device=..."


def setup(device: str) -> str:
    """Chooses the device ("auto": the first CUDA GPU if any, else the CPU); returns its name."""
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    from westron.modeling_utils import resolve_device

    resolved = resolve_device("cuda" if device == "gpu" else device.replace("gpu", "cuda"))
    return str(resolved) if resolved.type != "cuda" or resolved.index is not None else "cuda:0"


def devices() -> dict[str, Any]:
    """What PyTorch sees: the CPU, CUDA GPUs (name, memory), and how Westron places work on them."""
    gpus = []
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        properties = torch.cuda.get_device_properties(index)
        gpus.append({"name": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1)})
    return {
        "cpu": platform.processor() or platform.machine(),
        "gpus": gpus,
        "cuda_version": torch.version.cuda,
        "placement": PLACEMENT,
    }


def threads() -> dict[str, Any]:
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


def device_scope(device: str):
    """Nothing to enter: the model and every input are put on the device explicitly."""
    return contextlib.nullcontext()


def load_model(folder: str, device: str):
    from westron.models.auto import AutoModelForSeq2SeqLM

    return AutoModelForSeq2SeqLM.from_pretrained(folder, device=device).eval()


def prepare_generation(model, mode: str):
    """Returns the model ready for generation in this mode ("compile": encode and decode compiled)."""
    if mode == "compile":
        # Instance attributes shadow the methods, so the shared search loop calls the compiled ones.
        model.encode = torch.compile(model.encode, dynamic=True)
        model.decode = torch.compile(model.decode, dynamic=True)
    return model


def generate_ids(model, input_ids: np.ndarray, attention_mask: np.ndarray, mode: str, **kwargs) -> np.ndarray:
    """Generated ids (B * returned sequences, L) as numpy; the search is the same in every mode."""
    device = model.device
    output = model.generate(
        torch.as_tensor(input_ids, device=device), attention_mask=torch.as_tensor(attention_mask, device=device), **kwargs
    )
    return output.cpu().numpy()


def teacher_forced_logits(model, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask) -> np.ndarray:
    """Logits (B, T, V) of one full forward pass, as float32 numpy."""
    device = model.device
    with torch.inference_mode():
        output = model(
            input_ids=torch.as_tensor(input_ids, device=device),
            attention_mask=torch.as_tensor(attention_mask, device=device),
            decoder_input_ids=torch.as_tensor(decoder_input_ids, device=device),
            decoder_attention_mask=torch.as_tensor(decoder_attention_mask, device=device),
        )
    return output.logits.float().cpu().numpy()


def perturb_weights(model, scale: float, seed: int = 0) -> None:
    """Adds noise of relative size `scale` to every weight (how a test breaks one twin on purpose)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            noise = torch.randn(parameter.shape, generator=generator).to(parameter.device, parameter.dtype)
            parameter.add_(noise * scale * parameter.abs().mean())


def make_training_step(model, batch: dict[str, np.ndarray], mode: str) -> Callable[[], float]:
    """One optimizer update (forward, backward, AdamW) on a fixed batch; returns the loss.

    A plain step written here rather than westron.training's Trainer.train_step, which this
    branch does not have yet: swap it in here (one place) when it lands.
    """
    device = model.device
    model.train()
    tensors = {name: torch.as_tensor(array, device=device) for name, array in batch.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    forward = torch.compile(model) if mode == "compile" else model

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = forward(**tensors).loss
        loss.backward()
        optimizer.step()
        return loss.item()  # .item() waits for the GPU, so the step's time is all in

    return step


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_memory_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def memory_peak(device: str) -> dict[str, Any]:
    """The GPU's peak memory since reset_memory_peak, in MiB (empty on the CPU)."""
    if not device.startswith("cuda"):
        return {}
    return {
        "max_memory_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
        "max_memory_reserved_mib": torch.cuda.max_memory_reserved() / 2**20,
        "source": "torch.cuda.max_memory_allocated / max_memory_reserved",
    }
