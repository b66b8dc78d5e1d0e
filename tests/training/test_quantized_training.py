"""A model quantized for inference (from_pretrained(..., quantization="int8")) is refused by both trainers
with one line: its int8 matrices have no gradients, so training would silently update only the rest."""

from __future__ import annotations

import pytest

from tests.training.batches import ListBatches
from tests.training.test_trainers import FAMILIES, TRAINERS, arguments, family_batches, save_family
from westron.errors import WestronError


@pytest.mark.parametrize("framework", list(TRAINERS))
def test_a_quantized_model_cannot_be_trained(framework, tmp_path):
    folder = save_family("marian", tmp_path / "hf")
    trainer_class, index = TRAINERS[framework]
    model = FAMILIES["marian"][index].from_pretrained(folder, quantization="int8")
    with pytest.raises(WestronError, match=r"quantized \(int8\) for inference and cannot be trained"):
        trainer_class(model, arguments(tmp_path / framework, max_steps=2), ListBatches(family_batches("marian", 2)))
    assert not (tmp_path / framework).exists()  # refused before anything is written
