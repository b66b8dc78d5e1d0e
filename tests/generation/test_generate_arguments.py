"""How HF 4.x code hands generate() its inputs and settings, in both frameworks, HF as the oracle.

The source ids come positionally, as `inputs=` (HF's parameter name) or as `input_ids=`; what
Westron's generate cannot take (`encoder_outputs`, `inputs_embeds`, HF's callback objects) is one
WestronError naming it, never a TypeError about a missing argument. A GenerationConfig argument
takes the special tokens it leaves unset from the model's, as in HF 4.x, and generation settings
edited on model.config apply with HF 4.x's FutureWarning (HF 5 refuses them).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch
import transformers

from tests.hf_oracle import random_batch, save_tiny_marian
from westron import GenerationConfig
from westron.errors import WestronError
from westron.models.marian.modeling_marian import MarianMTModel
from westron.models.marian.modeling_tf_marian import TFMarianMTModel

transformers.logging.set_verbosity_error()
PAD, EOS = 98, 0


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_marian(tmp_path_factory.mktemp("marian"), seed=2, init_std=0.15)


@pytest.fixture(scope="module")
def hf_model(folder):
    return transformers.MarianMTModel.from_pretrained(folder).eval()


@pytest.fixture(scope="module", params=["pt", "tf"])
def model(request, folder):
    return (MarianMTModel if request.param == "pt" else TFMarianMTModel).from_pretrained(folder)


@pytest.fixture(scope="module")
def batch():
    return random_batch(PAD, PAD, EOS, batch=3, length=7, seed=1)


def as_list(ids) -> list:
    return np.asarray(ids).tolist()


def source(model, ids):
    return ids if isinstance(model, MarianMTModel) else ids.numpy()


def generate(model, *args, **kwargs):
    """model.generate; TensorFlow's eager search (the compiled one is the same code, slower to start)."""
    if not isinstance(model, MarianMTModel):
        kwargs["eager"] = True
    return model.generate(*args, **kwargs)


def test_source_ids_by_position_inputs_or_input_ids(model, hf_model, batch):
    ids, mask = batch
    with torch.no_grad():
        expected = as_list(hf_model.generate(inputs=ids, attention_mask=mask, max_new_tokens=6))
    ids, mask = source(model, ids), source(model, mask)
    assert as_list(generate(model, inputs=ids, attention_mask=mask, max_new_tokens=6)) == expected
    assert as_list(generate(model, input_ids=ids, attention_mask=mask, max_new_tokens=6)) == expected
    assert as_list(generate(model, ids, mask, max_new_tokens=6)) == expected
    with pytest.raises(WestronError, match="given twice"):
        generate(model, ids, input_ids=ids)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, r"generate\(\) needs the source token ids"),
        ({"encoder_outputs": "encoded"}, r"generate\(encoder_outputs=...\) is not supported: generate runs the encoder"),
        ({"inputs_embeds": "embedded"}, r"generate\(inputs_embeds=...\) is not supported"),
    ],
)
def test_no_source_ids_is_one_clear_error(model, kwargs, message):
    with pytest.raises(WestronError, match=message):
        generate(model, max_new_tokens=3, **kwargs)


def test_the_whole_batch_as_ids_is_one_clear_error(model, batch):
    ids, mask = batch
    with pytest.raises(WestronError, match=r"unpack it, generate\(\*\*batch\)"):
        generate(model, {"input_ids": source(model, ids), "attention_mask": source(model, mask)})


def test_hf_arguments_westron_lacks_are_refused_by_name_unless_neutral(model, batch):
    ids = source(model, batch[0])
    with pytest.raises(WestronError, match="not supported by Westron: logits_processor, streamer"):
        generate(model, ids, logits_processor=[lambda ids, scores: scores], streamer=object(), max_new_tokens=3)
    with pytest.raises(WestronError, match="not supported by Westron: decoder_input_ids"):
        generate(model, ids, decoder_input_ids=ids[:, :1], max_new_tokens=3)
    neutral = dict(logits_processor=None, stopping_criteria=[], synced_gpus=False, streamer=None, encoder_outputs=None)
    assert as_list(generate(model, ids, max_new_tokens=3, **neutral)) == as_list(generate(model, ids, max_new_tokens=3))


def test_generation_config_argument_takes_the_models_special_tokens(model, hf_model, batch):
    """GenerationConfig(num_beams=2) names no decoder start or eos: HF 4.x takes the model's."""
    ids, mask = batch
    hf_config = transformers.GenerationConfig(num_beams=2, max_new_tokens=6)
    with torch.no_grad():
        expected = as_list(hf_model.generate(ids, attention_mask=mask, generation_config=hf_config))
    config = GenerationConfig(num_beams=2, max_new_tokens=6)
    actual = generate(model, source(model, ids), attention_mask=source(model, mask), generation_config=config)
    assert as_list(actual) == expected
    assert config.decoder_start_token_id is None  # the argument itself is left as it was
    # Its other settings are its own: the model's num_beams does not leak in.
    model.generation_config.num_beams = 3
    try:
        greedy = generate(model, source(model, ids), attention_mask=source(model, mask), generation_config=GenerationConfig(max_new_tokens=6))
    finally:
        model.generation_config.num_beams = 1
    with torch.no_grad():
        assert as_list(greedy) == as_list(hf_model.generate(ids, attention_mask=mask, max_new_tokens=6))


def test_a_transformers_generation_config_is_named_in_the_error(model, batch):
    with pytest.raises(WestronError, match="must be a westron.GenerationConfig, got transformers"):
        generate(model, source(model, batch[0]), generation_config=transformers.GenerationConfig(num_beams=2))


def test_settings_edited_on_model_config_apply_with_hf4_warning(folder, hf_model, batch):
    """HF 4.x: `model.config.num_beams = 3` then generate() used them, with a FutureWarning (HF 5 raises)."""
    ids, mask = batch
    with torch.no_grad():
        expected = as_list(hf_model.generate(ids, attention_mask=mask, num_beams=3, max_length=5))
    for model_class in (MarianMTModel, TFMarianMTModel):
        model = model_class.from_pretrained(folder)
        source_ids, source_mask = source(model, ids), source(model, mask)
        model.config.num_beams, model.config.max_length = 3, 5
        model.config.use_cache = False  # what training scripts do: changes nothing, no warning
        with pytest.warns(FutureWarning, match=r"set on model.config \(max_length=5, num_beams=3\) are applied"):
            assert as_list(generate(model, source_ids, attention_mask=source_mask)) == expected
        assert model.generation_config.num_beams == 1  # left as it was
        plain = GenerationConfig.from_dict(model.generation_config.to_dict(), max_new_tokens=6)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a generation_config argument is used as given
            actual = generate(model, source_ids, attention_mask=source_mask, generation_config=plain)
        with torch.no_grad():
            assert as_list(actual) == as_list(hf_model.generate(ids, attention_mask=mask, max_new_tokens=6))


def test_generation_settings_given_to_from_pretrained_reach_generate(folder, hf_model, batch, tmp_path):
    """HF 4.x gave from_pretrained(path, num_beams=3) to the generation config too (HF 5 refuses it)."""
    ids, mask = batch
    with torch.no_grad():
        expected = as_list(hf_model.generate(ids, attention_mask=mask, num_beams=3, max_length=5))
    opus_style = tmp_path / "opus-style"  # config.json also holding num_beams, as opus-mt's do
    opus_style.mkdir()
    for name in os.listdir(folder):
        shutil.copy(os.path.join(folder, name), opus_style / name)
    config = json.loads((opus_style / "config.json").read_text())
    (opus_style / "config.json").write_text(json.dumps({**config, "num_beams": 4}))
    for model_class in (MarianMTModel, TFMarianMTModel):
        for path in (folder, opus_style):
            model = model_class.from_pretrained(path, num_beams=3, max_length=5)
            assert (model.generation_config.num_beams, model.generation_config.max_length) == (3, 5)
            assert getattr(model.config, "num_beams", 3) == 3  # kept on the config only where it has the key
            assert as_list(generate(model, source(model, ids), attention_mask=source(model, mask))) == expected
        with pytest.raises(WestronError, match="unexpected from_pretrained argument.s.: num_beam "):
            model_class.from_pretrained(folder, num_beam=3)
