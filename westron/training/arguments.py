"""TrainingArguments: the recipe both trainers follow, framework-free and validated.

Names follow Hugging Face's Seq2SeqTrainingArguments / run_translation.py where one exists, so a
user of those finds the same knob under the same name. Defaults are a recipe that learns fast on
a small CPU budget (a from-scratch small Marian on 2 cores, see docs/training.md):

- learning_rate 1e-3 with warmup_steps 150: a small Transformer tolerates a high peak rate once
  Adam's second-moment estimates have settled; the short warm-up is what lets it (without it the
  first updates, divided by a near-zero variance estimate, blow the post-LN model up).
- scheduler "inverse-sqrt" (fairseq's Transformer recipe): needs no known end, so it suits a run
  bounded by max_time; "linear" and "cosine" decay to zero at max_steps and need it.
- label_smoothing 0.1: the standard Transformer value; it keeps the model from growing
  over-confident on a small corpus and usually adds BLEU, at a slightly higher reported loss.
- max_grad_norm 1.0: clips the rare huge gradient (early steps, an odd batch) that would
  otherwise undo many steps of progress at a high learning rate.
- weight_decay 0.01 (AdamW, decoupled; biases and LayerNorm weights excluded): a mild
  regulariser that costs nothing per step; 0.0 turns it off.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from westron.errors import WestronError

SCHEDULERS = ("linear", "cosine", "inverse-sqrt", "constant")
MIXED_PRECISION = (None, "bf16", "fp16")


@dataclass
class TrainingArguments:
    output_dir: str
    # ---- the optimizer and its schedule ----
    learning_rate: float = 1e-3
    warmup_steps: int = 150
    scheduler: str = "inverse-sqrt"
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98  # the Transformer paper's and fairseq's: adapts faster than 0.999 on short runs
    adam_epsilon: float = 1e-8
    max_grad_norm: float | None = 1.0  # None: no clipping
    label_smoothing: float = 0.1
    gradient_accumulation: int = 1
    mixed_precision: str | None = None  # None (fp32), "bf16" (CPU or GPU) or "fp16" (CUDA, PyTorch only)
    seed: int = 42
    # ---- how long (the first limit reached ends the run; at least one is needed) ----
    max_steps: int | None = None
    epochs: float | None = None  # passes over the data, fractional (0.5: half an epoch)
    max_time: float | None = None  # seconds of training over resumed runs too (as max_steps), checked after each step
    # ---- evaluation, checkpoints, logging ----
    eval_steps: int | None = None  # None: evaluate only at the end (when validation batches are given)
    save_steps: int | None = 500
    keep_checkpoints: int | None = 2  # None keeps all; the best checkpoint is never removed
    early_stopping_patience: int | None = None  # evaluations without improvement before stopping
    metric_for_best_model: str = "eval_loss"
    greater_is_better: bool | None = None  # None: True for every metric except losses
    num_beams: int = 1  # for generation in evaluation (passed on to the compute_metrics callable)
    logging_steps: int = 50
    progress_bar: bool | None = None  # None: a tqdm bar when stderr is a terminal
    # ---- speed ----
    compile: bool = False  # PyTorch: torch.compile the forward pass
    xla: bool = False  # TensorFlow: jit_compile the training step
    device: str | None = None  # PyTorch: cpu, cuda, cuda:N (default: the model's device)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raises a WestronError naming the first field with a bad value."""
        positive_or_zero = ("warmup_steps", "weight_decay", "label_smoothing")
        _check(self.learning_rate > 0 and math.isfinite(self.learning_rate), "learning_rate", self.learning_rate, "must be positive")
        for name in positive_or_zero:
            _check(getattr(self, name) >= 0, name, getattr(self, name), "must not be negative")
        _check(self.label_smoothing < 1, "label_smoothing", self.label_smoothing, "must be below 1")
        _check(self.scheduler in SCHEDULERS, "scheduler", self.scheduler, f"must be one of {', '.join(SCHEDULERS)}")
        _check(self.mixed_precision in MIXED_PRECISION, "mixed_precision", self.mixed_precision, "must be None, 'bf16' or 'fp16'")
        for name in ("adam_beta1", "adam_beta2"):
            _check(0 <= getattr(self, name) < 1, name, getattr(self, name), "must be in [0, 1)")
        _check(self.adam_epsilon > 0, "adam_epsilon", self.adam_epsilon, "must be positive")
        _check(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", self.max_grad_norm, "must be positive (or None: no clipping)")
        _check(self.gradient_accumulation >= 1, "gradient_accumulation", self.gradient_accumulation, "must be at least 1")
        for name in ("max_steps", "eval_steps", "save_steps", "keep_checkpoints", "early_stopping_patience"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, int) and value >= 1), name, value, "must be a whole number of at least 1 (or None)")
        _check(self.logging_steps >= 1, "logging_steps", self.logging_steps, "must be at least 1")
        _check(self.num_beams >= 1, "num_beams", self.num_beams, "must be at least 1")
        for name in ("epochs", "max_time"):
            value = getattr(self, name)
            _check(value is None or value > 0, name, value, "must be positive (or None)")
        if self.max_steps is None and self.epochs is None and self.max_time is None:
            raise WestronError("TrainingArguments: set max_steps, epochs or max_time (otherwise training never ends)")
        if self.scheduler in ("linear", "cosine"):
            _check(
                self.max_steps is not None or self.max_time is not None, "scheduler", self.scheduler,
                "decays to zero at max_steps or max_time: set one (or use inverse-sqrt or constant)",
            )  # fmt: skip
            if self.max_steps is not None:
                _check(self.warmup_steps < self.max_steps, "warmup_steps", self.warmup_steps, f"must be below max_steps ({self.max_steps})")
        _check(bool(self.output_dir), "output_dir", self.output_dir, "must name a folder")

    @property
    def best_is_greater(self) -> bool:
        if self.greater_is_better is not None:
            return self.greater_is_better
        return not self.metric_for_best_model.endswith("loss")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check(ok: bool, field: str, value, requirement: str) -> None:
    if not ok:
        raise WestronError(f"TrainingArguments.{field} = {value!r} {requirement}")
