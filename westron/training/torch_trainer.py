"""PyTorch trainer: eager autograd (torch.compile optional). Twin of tf_trainer.py.

One update: for each micro-batch, forward (under autocast for mixed precision), the label-smoothed
loss summed over target tokens and divided by the target tokens of the whole accumulated batch,
backward; then a finite-loss check, global-norm clipping, the step's learning rate, AdamW.

Launched by torchrun (RANK, WORLD_SIZE, LOCAL_RANK in the environment) the trainer joins the process
group (gloo on the CPU, nccl on CUDA, each process on cuda:LOCAL_RANK) and wraps the model in
DistributedDataParallel. Each process reads its shard of every global batch; the loss is divided by
the target tokens of the whole global batch (summed over processes) and multiplied by the number of
processes, so DDP's gradient average equals the single-process gradient of the global batch.
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from westron.checkpoint import load_state_dict
from westron.errors import WestronError
from westron.modeling_utils import resolve_device
from westron.training.base import (
    Batch,
    BaseTrainer,
    StepOutput,
    as_batch_list,
    check_master_weights,
    count_target_tokens,
    no_weight_decay,
)

MODEL_INPUTS = ("input_ids", "attention_mask", "decoder_input_ids")


def label_smoothed_loss_sum(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Sum over target tokens (labels != -100) of (1 - smoothing) * NLL + smoothing * mean_k(-log p_k).

    logits (B, T, V) of any float dtype, computed in float32; labels (B, T). A 0-d float32 tensor.
    """
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1).long(),
        ignore_index=-100,
        reduction="sum",
        label_smoothing=smoothing,
    )


class Trainer(BaseTrainer):
    framework = "pt"

    def __init__(self, model, args, train_batches, **kwargs):
        if args.xla:
            raise WestronError("TrainingArguments.xla is for TensorFlow; the PyTorch trainer compiles with compile=True")
        self.device = resolve_device(args.device) if args.device else model.device
        self._owns_process_group = False
        if launched_distributed() or torch.distributed.is_initialized():
            self.device = self.join_process_group(self.device)
        if args.mixed_precision == "fp16" and self.device.type != "cuda":
            raise WestronError("mixed_precision fp16 needs a CUDA GPU (loss scaling); on the CPU use bf16")
        trainable = (p for p in model.parameters() if p.requires_grad)
        check_master_weights(args.mixed_precision, (str(p.dtype).removeprefix("torch.") for p in trainable))
        model.to(self.device)
        super().__init__(model, args, train_batches, **kwargs)

    def join_process_group(self, device: torch.device) -> torch.device:
        """Joins (or uses the caller's) torch.distributed group; returns this process's device."""
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if device.type == "cuda":
            if device.index not in (None, local_rank):
                raise WestronError(f"under torchrun each process trains on cuda:LOCAL_RANK (cuda:{local_rank}), not {device}: give --device cuda")
            device = resolve_device(f"cuda:{local_rank}")
            torch.cuda.set_device(device)
        elif device.type != "cpu":
            raise WestronError(f"distributed training runs on cpu (gloo) or cuda (nccl), not {device.type}")
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            self._owns_process_group = True
        self.process_index = torch.distributed.get_rank()
        self.num_processes = torch.distributed.get_world_size()
        return device

    # ---- framework parts, in BaseTrainer's order ------------------------------------------------------

    def seed(self, seed: int) -> None:
        super().seed(seed)
        torch.manual_seed(seed)  # dropout draws from torch's global generator (and CUDA's)

    def create_optimizer(self) -> None:
        """AdamW, decoupled weight decay except on biases and LayerNorm weights; the learning rate is
        set before every update from schedules.learning_rate_at."""
        self.parameter_names = checkpoint_parameter_names(self.model)  # {parameter: checkpoint name}
        decay, no_decay = [], []
        for parameter, name in self.parameter_names.items():
            if parameter.requires_grad:
                (no_decay if no_weight_decay(name, tuple(parameter.shape)) else decay).append(parameter)
        args = self.args
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
            # One kernel over all the parameters instead of ~10 passes over memory per parameter: the
            # default (per-parameter) update took a sixth of an opus-mt-sized CPU step (benchmarks/train.py).
            fused=fused_adamw_available(self.device),
        )
        self.scaler = torch.amp.GradScaler("cuda") if args.mixed_precision == "fp16" else None
        self.forward = self.model
        if self.num_processes > 1:  # DDP averages the gradients across processes during backward
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        if args.compile:
            self.forward = torch.compile(self.forward)

    def autocast(self):
        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
        if self.args.mixed_precision is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtypes[self.args.mixed_precision])

    def to_tensors(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {name: torch.as_tensor(np.asarray(array), device=self.device) for name, array in batch.items()}

    def logits(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        with self.autocast():
            return self.forward(**{name: tensors[name] for name in MODEL_INPUTS}).logits  # (B, T, V)

    def train_step(self, batches: Batch | Iterable[Batch]) -> StepOutput:
        """One optimizer update over one batch or the micro-batches of an accumulated batch."""
        batches = as_batch_list(batches)
        num_tokens = self.sum_over_processes(sum(count_target_tokens(batch) for batch in batches))
        learning_rate = self.learning_rate(self.state.global_step + 1)
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        for index, batch in enumerate(batches):
            tensors = self.to_tensors(batch)
            with self.gradient_sync(index == len(batches) - 1):
                batch_loss = label_smoothed_loss_sum(self.logits(tensors), tensors["labels"], self.args.label_smoothing)
                loss = batch_loss * self.num_processes / num_tokens  # DDP divides by num_processes again
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            loss_sum += batch_loss.detach()
        loss = self.sum_over_processes(loss_sum).item() / num_tokens
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = self.clip_gradients()
        try:
            # fp16: an overflowing gradient is the scaler's business (it skips the step), not divergence.
            self.check_finite(loss, None if self.scaler is not None else grad_norm)
        except WestronError:
            self.optimizer.zero_grad(set_to_none=True)
            raise
        self.optimizer_step(learning_rate)
        return StepOutput(loss=loss, grad_norm=grad_norm, learning_rate=learning_rate, num_tokens=num_tokens)

    def sum_over_processes(self, value):
        """A token count (int) or a 0-d tensor summed over every process (itself in a single process)."""
        if self.num_processes == 1:
            return value
        tensor = torch.as_tensor(value, device=self.device, dtype=torch.int64 if isinstance(value, int) else None).clone()
        torch.distributed.all_reduce(tensor)
        return int(tensor) if isinstance(value, int) else tensor

    def gradient_sync(self, last_micro_batch: bool):
        """DDP all-reduces the gradients once per update, during the last micro-batch's backward."""
        if self.num_processes == 1 or last_micro_batch:
            return contextlib.nullcontext()
        ddp = self.forward._orig_mod if hasattr(self.forward, "_orig_mod") else self.forward  # under torch.compile
        return ddp.no_sync()

    def clip_gradients(self) -> float:
        """The global gradient norm before clipping; scales the gradients to max_grad_norm if above."""
        parameters = [p for p in self.parameter_names if p.grad is not None]
        max_norm = self.args.max_grad_norm if self.args.max_grad_norm is not None else float("inf")
        return float(torch.nn.utils.clip_grad_norm_(parameters, max_norm))

    def optimizer_step(self, learning_rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    @torch.no_grad()
    def evaluation_loss(self, batch: Batch) -> tuple[float, int]:
        self.model.eval()
        tensors = self.to_tensors(batch)
        loss_sum = label_smoothed_loss_sum(self.logits(tensors), tensors["labels"], 0.0)
        return float(loss_sum), count_target_tokens(batch)

    def model_shapes(self) -> dict[str, tuple[int, ...]]:
        tied = self.model.tied_weights()
        return {name: tuple(t.shape) for name, t in self.model.state_dict().items() if name not in tied}

    def load_model_weights(self, folder: str) -> None:
        self.model.load_checkpoint(load_state_dict(folder, framework="pt"), source=folder)

    def optimizer_moments(self) -> dict[str, np.ndarray]:
        moments = {}
        for parameter, name in self.parameter_names.items():
            state = self.optimizer.state.get(parameter)
            if state:
                moments[f"exp_avg.{name}"] = state["exp_avg"].detach().float().cpu().numpy()
                moments[f"exp_avg_sq.{name}"] = state["exp_avg_sq"].detach().float().cpu().numpy()
        return moments

    def load_optimizer_moments(self, moments: Mapping[str, np.ndarray], step: int) -> None:
        fused = self.optimizer.defaults["fused"]  # fused AdamW keeps its step count on the parameter's device
        for parameter, name in self.parameter_names.items():
            if f"exp_avg.{name}" not in moments:
                continue  # never updated (unused) in the run that saved it
            self.optimizer.state[parameter] = {
                "step": torch.tensor(float(step), dtype=torch.float32, device=parameter.device if fused else "cpu"),
                "exp_avg": torch.as_tensor(moments[f"exp_avg.{name}"], device=parameter.device).to(parameter.dtype),
                "exp_avg_sq": torch.as_tensor(moments[f"exp_avg_sq.{name}"], device=parameter.device).to(parameter.dtype),
            }

    def framework_rng_state(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"framework": self.framework, "torch": _bytes_to_text(torch.get_rng_state())}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["torch_cuda"] = [_bytes_to_text(state) for state in torch.cuda.get_rng_state_all()]
        return rng

    def restore_framework_rng_state(self, rng: Mapping[str, Any]) -> None:
        torch.set_rng_state(_text_to_bytes(rng["torch"]))
        if "torch_cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([_text_to_bytes(state) for state in rng["torch_cuda"]])

    def barrier(self) -> None:
        if self.num_processes > 1:
            torch.distributed.barrier()

    def train(self, resume_from=None):
        """BaseTrainer.train; a process group the trainer joined itself is left when training ends."""
        try:
            return super().train(resume_from)
        finally:
            if self._owns_process_group and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
                self._owns_process_group = False


def launched_distributed() -> bool:
    """True in a process torchrun started with WORLD_SIZE > 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def fused_adamw_available(device: torch.device) -> bool | None:
    """True where torch has a fused AdamW kernel (CPU, CUDA); None (torch's default) elsewhere."""
    return True if device.type in ("cpu", "cuda") else None


def checkpoint_parameter_names(model: torch.nn.Module) -> dict[torch.nn.Parameter, str]:
    """Each distinct parameter -> its checkpoint name (a tied parameter is named by its source)."""
    tied = model.tied_weights()
    names: dict[torch.nn.Parameter, str] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if name not in tied and parameter not in names:
            names[parameter] = name
    return names


def _bytes_to_text(state: torch.Tensor) -> str:
    return base64.b64encode(state.cpu().numpy().tobytes()).decode("ascii")


def _text_to_bytes(text: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())
