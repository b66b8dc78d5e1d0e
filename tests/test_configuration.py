import json

import pytest

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


def test_generation_config_update_rejects_typos():
    with pytest.raises(WestronError, match="num_beam"):
        GenerationConfig().update(num_beam=4)
    assert GenerationConfig().update(num_beams=3).num_beams == 3
