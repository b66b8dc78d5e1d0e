"""Learning-rate schedules, framework-free: both trainers set the same number on every update.

`step` counts updates from 1 (the first optimizer update is step 1), so no update is wasted at a
rate of zero: warm-up climbs linearly to the peak at step `warmup_steps`, then
- linear:       falls linearly, reaching peak / (max_steps - warmup_steps) on the last update;
- cosine:       half a cosine from the peak towards zero at max_steps;
- inverse-sqrt: peak * sqrt(warmup_steps / step), fairseq's `inverse_sqrt` (no end needed);
- constant:     stays at the peak.

A run bounded only by time (max_time, no max_steps) cannot know its last step, so linear and cosine
follow the elapsed training time instead: the warm-up ramp times the decay of the time fraction
f = train_time / max_time (linear: 1 - f; cosine: half a cosine), reaching zero as the budget
ends. Decaying to zero by the end of a fixed budget is what makes a short run count ("Budgeted
training", Li et al., ICLR 2020); the price is a schedule that depends on the machine's speed.
"""

from __future__ import annotations

import math
from typing import Protocol


class ScheduleParams(Protocol):
    learning_rate: float
    warmup_steps: int
    scheduler: str
    max_steps: int | None
    max_time: float | None


def learning_rate_at(step: int, args: ScheduleParams, train_time: float = 0.0) -> float:
    """The learning rate of update number `step` (from 1) under `args` (TrainingArguments or alike).

    train_time: seconds of training before this update; used only by a time-bounded linear or cosine run.
    """
    if step < 1:
        raise ValueError(f"updates are counted from 1, got step {step}")
    peak, warmup = args.learning_rate, args.warmup_steps
    if args.scheduler in ("linear", "cosine") and args.max_steps is None:
        fraction = min(train_time / args.max_time, 1.0)
        ramp = min(step / warmup, 1.0) if warmup else 1.0
        decay = 1.0 - fraction if args.scheduler == "linear" else 0.5 * (1.0 + math.cos(math.pi * fraction))
        return peak * ramp * max(decay, 0.0)
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
