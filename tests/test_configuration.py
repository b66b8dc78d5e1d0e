import json
import os

import pytest
import transformers

from tests.hf_oracle import tiny_marian_config
from westron import AutoConfig, GenerationConfig
from westron.errors import CheckpointError, WestronError
from westron.models.marian.configuration_marian import MarianConfig


def test_hf_config_json_round_trips_unknown_keys(tmp_path):
    hf_config = tiny_marian_config(activation_function="swish")
    hf_config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    written["some_future_key"] = {"nested": [1, 2]}
    (tmp_path / "config.json").write_text(json.dumps(written))

    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, MarianConfig)
    assert config.d_model == 32 and config.activation_function == "swish"
    assert config.some_future_key == {"nested": [1, 2]}

    config.save_pretrained(tmp_path / "again")
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == written


def test_attribute_map_aliases_read_and_write():
    config = MarianConfig(hidden_size=48)
    assert config.d_model == 48 and config.hidden_size == 48
    config.num_attention_heads = 6
    assert config.encoder_attention_heads == 6
    assert "hidden_size" not in config.to_dict()


def test_wrong_model_type_is_refused():
    with pytest.raises(CheckpointError, match="model_type 't5'"):
        MarianConfig.from_dict({"model_type": "t5"})


def test_unknown_model_type_lists_supported(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="unknown model_type 'bert'.*marian"):
        AutoConfig.from_pretrained(tmp_path)


def test_corrupt_config_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        AutoConfig.from_pretrained(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        AutoConfig.from_pretrained(str(tmp_path / "nowhere" / "model"))


def test_generation_config_defaults_from_model_config():
    config = MarianConfig(bad_words_ids=[[58100]], num_beams=4, max_length=512)
    generation = GenerationConfig.from_model_config(config)
    assert generation.bad_words_ids == [[58100]]
    assert generation.num_beams == 4 and generation.max_length == 512
    assert generation.forced_eos_token_id == 0 and generation.pad_token_id == 58100


def test_generation_config_json_round_trip_keeps_unknown_keys(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"num_beams": 6, "_from_model_config": True}))
    generation = GenerationConfig.from_pretrained(tmp_path)
    assert generation.num_beams == 6 and generation.max_length == 20
    generation.save_pretrained(tmp_path / "out")
    assert json.loads((tmp_path / "out" / "generation_config.json").read_text()) == {
        "num_beams": 6,
        "_from_model_config": True,
    }


def test_generation_config_update_works_in_place_as_in_hf_and_rejects_typos():
    """HF 4.x: `model.generation_config.update(num_beams=4)` changes the model's settings, returning the unused."""
    generation = GenerationConfig()
    assert generation.update(num_beams=3, max_new_tokens=5) == {}
    assert generation.num_beams == 3 and generation.max_new_tokens == 5
    hf_generation = transformers.GenerationConfig()
    assert hf_generation.update(num_beams=3) == {} and hf_generation.num_beams == 3  # the oracle
    with pytest.raises(WestronError, match="num_beam"):
        generation.update(num_beam=4)
    assert generation.num_beams == 3


def test_generation_config_under_another_file_name_as_in_hf_docs(tmp_path):
    """HF 4.x's docs keep several generation configs in one folder: save_pretrained(folder, name) / from_pretrained(folder, name)."""
    translation = GenerationConfig(num_beams=4, early_stopping=True, decoder_start_token_id=0)
    translation.save_pretrained(tmp_path, "translation_generation_config.json")
    assert sorted(os.listdir(tmp_path)) == ["translation_generation_config.json"]
    loaded = GenerationConfig.from_pretrained(tmp_path, "translation_generation_config.json")
    assert loaded == translation
    hf_loaded = transformers.GenerationConfig.from_pretrained(tmp_path, "translation_generation_config.json")
    assert (hf_loaded.num_beams, hf_loaded.early_stopping, hf_loaded.decoder_start_token_id) == (4, True, 0)
    GenerationConfig(num_beams=2).save_pretrained(tmp_path)  # the default name, next to the other
    assert GenerationConfig.from_pretrained(tmp_path).num_beams == 2
    assert GenerationConfig.from_pretrained(tmp_path, "translation_generation_config.json").num_beams == 4
    with pytest.raises(WestronError, match="push_to_hub=True"):
        translation.save_pretrained(tmp_path, push_to_hub=True)
    with pytest.raises(WestronError, match="unexpected save_pretrained argument"):
        translation.save_pretrained(tmp_path, safe_serialization=True)


def test_to_json_string_and_file_take_hf_use_diff(tmp_path):
    """HF 4.x's `config.to_json_string(use_diff=False)`: every setting; the default (True) is what the file holds."""
    config = MarianConfig.from_dict(tiny_marian_config().to_dict())
    expected = json.loads(json.dumps(config.to_dict()))  # JSON's keys are strings (id2label)
    assert json.loads(config.to_json_string()) == json.loads(config.to_json_string(use_diff=True)) == expected
    assert json.loads(config.to_json_string(use_diff=False)) == expected
    generation = GenerationConfig(num_beams=4)
    assert json.loads(generation.to_json_string()) == {"num_beams": 4}
    full = json.loads(generation.to_json_string(use_diff=False))
    hf_full = json.loads(transformers.GenerationConfig(num_beams=4).to_json_string(use_diff=False))
    assert full["num_beams"] == hf_full["num_beams"] == 4 and set(full) <= set(hf_full)
    # HF 4.x's defaults (HF 5 writes None for them)
    assert (full["max_length"], full["top_k"], full["do_sample"]) == (20, 50, False)
    generation.to_json_file(tmp_path / "full.json", use_diff=False)
    assert json.loads((tmp_path / "full.json").read_text()) == full
    generation.to_json_file(tmp_path / "diff.json")
    assert GenerationConfig.from_json_file(tmp_path / "diff.json") == generation
