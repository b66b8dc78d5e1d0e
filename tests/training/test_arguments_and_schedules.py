"""TrainingArguments validation and the learning-rate schedules (framework-free)."""

from __future__ import annotations

import math

import pytest

from westron.errors import WestronError
from westron.training.arguments import TrainingArguments
from westron.training.schedules import learning_rate_at


def args(**overrides):
    return TrainingArguments(**{"output_dir": "out", "max_steps": 1000, "warmup_steps": 100, **overrides})


@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(scheduler="noam"), "scheduler"),
        (dict(mixed_precision="fp8"), "mixed_precision"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(gradient_accumulation=0), "gradient_accumulation"),
        (dict(max_grad_norm=-1.0), "max_grad_norm"),
        (dict(save_steps=0), "save_steps"),
        (dict(warmup_steps=1000), "warmup_steps"),
        (dict(scheduler="linear", max_steps=None, epochs=2.0), "scheduler"),
        (dict(adam_beta2=1.0), "adam_beta2"),
    ],
)
def test_bad_arguments_name_their_field(overrides, field):
    with pytest.raises(WestronError, match=rf"^TrainingArguments\.{field} = "):
        args(scheduler=overrides.pop("scheduler", "linear"), **overrides)


def test_a_run_needs_an_end():
    with pytest.raises(WestronError, match="set max_steps, epochs or max_time"):
        TrainingArguments(output_dir="out")
    assert TrainingArguments(output_dir="out", max_time=600).scheduler == "inverse-sqrt"


@pytest.mark.parametrize("scheduler", ["linear", "cosine", "inverse-sqrt", "constant"])
def test_warm_up_climbs_linearly_to_the_peak(scheduler):
    settings = args(scheduler=scheduler, learning_rate=1e-3)
    assert learning_rate_at(1, settings) == pytest.approx(1e-5)
    assert learning_rate_at(50, settings) == pytest.approx(5e-4)
    assert learning_rate_at(100, settings) == pytest.approx(1e-3)
    after_peak = math.sqrt(100 / 101) if scheduler == "inverse-sqrt" else 1.0  # the others decay from the peak
    assert learning_rate_at(101, settings) == pytest.approx(1e-3 * after_peak)


def test_decay_shapes():
    linear, cosine = args(scheduler="linear"), args(scheduler="cosine")
    assert learning_rate_at(1000, linear) == pytest.approx(1e-3 / 900)  # the last update is not wasted at 0
    assert learning_rate_at(551, linear) == pytest.approx(0.5e-3)
    assert learning_rate_at(551, cosine) == pytest.approx(0.5e-3)
    assert learning_rate_at(326, cosine) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert learning_rate_at(2000, linear) == 0.0
    inverse = args(scheduler="inverse-sqrt")
    assert learning_rate_at(400, inverse) == pytest.approx(0.5e-3)  # fairseq: peak * sqrt(warmup / step)
    assert learning_rate_at(5000, args(scheduler="constant")) == 1e-3
    with pytest.raises(ValueError):
        learning_rate_at(0, linear)


def test_a_time_budget_decays_with_the_elapsed_training_time():
    """max_time and no max_steps: the warm-up ramp times the decay of train_time / max_time."""
    linear = args(scheduler="linear", max_steps=None, max_time=600.0)
    cosine = args(scheduler="cosine", max_steps=None, max_time=600.0)
    assert learning_rate_at(50, linear, train_time=60.0) == pytest.approx(1e-3 * 0.5 * 0.9)  # ramp 0.5, 10% of the time gone
    assert learning_rate_at(400, linear, train_time=300.0) == pytest.approx(0.5e-3)
    assert learning_rate_at(400, cosine, train_time=150.0) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert learning_rate_at(900, linear, train_time=600.0) == 0.0
    assert learning_rate_at(900, linear, train_time=700.0) == 0.0  # a last update past the budget
    with_steps = args(scheduler="linear", max_time=600.0)  # max_steps set too: the steps decide
    assert learning_rate_at(551, with_steps, train_time=599.0) == pytest.approx(0.5e-3)
