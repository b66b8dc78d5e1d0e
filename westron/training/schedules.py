"""Learning-rate schedules, framework-free: both trainers set the same number on every update.

`step` counts updates from 1 (the first optimizer update is step 1), so no update is wasted at a
rate of zero: warm-up climbs linearly to the peak at step `warmup_steps`, then
- linear:       falls linearly, reaching peak / (max_steps - warmup_steps) on the last update;
- cosine:       half a cosine from the peak towards zero at max_steps;
- inverse-sqrt: peak * sqrt(warmup_steps / step), fairseq's `inverse_sqrt` (no end needed);
- constant:     stays at the peak.
"""

from __future__ import annotations

import math
from typing import Protocol


class ScheduleParams(Protocol):
    learning_rate: float
    warmup_steps: int
    scheduler: str
    max_steps: int | None


def learning_rate_at(step: int, args: ScheduleParams) -> float:
    """The learning rate of update number `step` (from 1) under `args` (TrainingArguments or alike)."""
    if step < 1:
        raise ValueError(f"updates are counted from 1, got step {step}")
    peak, warmup = args.learning_rate, args.warmup_steps
    if step <= warmup:
        return peak * step / warmup
    if args.scheduler == "constant":
        return peak
    if args.scheduler == "inverse-sqrt":
        return peak * math.sqrt(max(warmup, 1) / step)
    decay_steps = args.max_steps - warmup
    progress = min((step - warmup - 1) / decay_steps, 1.0)  # 0 on the first update after warm-up
    if args.scheduler == "linear":
        return peak * (1.0 - progress)
    if args.scheduler == "cosine":
        return peak * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown scheduler {args.scheduler!r}")
