"""PyTorch M2M100 against Hugging Face's M2M100ForConditionalGeneration: the common tests over every
tiny variant, then what is M2M100's own (padding-aware sinusoidal positions, the config, tying)."""

from __future__ import annotations

import json
import os

import pytest
import torch
import transformers
from safetensors.torch import save_file

from tests.hf_oracle import M2M100_VARIANTS, save_tiny_m2m100
from tests.hf_pinned import hf_internal
from tests.test_modeling_common import (
    CACHE_TOL,
    Seq2SeqModelTesterMixin,
    assert_float32_close,
    batch_for,
    copy_config_files,
    hf_checkpoint_folder,
    read_safetensors_folder,
)
from westron.models.m2m_100.configuration_m2m_100 import M2M100Config
from westron.models.m2m_100.modeling_m2m_100 import (
    M2M100ForConditionalGeneration,
    M2M100SinusoidalPositionalEmbedding,
    sinusoidal_table,
)


class TestM2M100Modeling(Seq2SeqModelTesterMixin):
    model_class = M2M100ForConditionalGeneration
    hf_model_class = transformers.M2M100ForConditionalGeneration
    variants = M2M100_VARIANTS
    save_hf_checkpoint = staticmethod(save_tiny_m2m100)


# ---- M2M100's own ------------------------------------------------------------------------------------

VARIANT = "pad98-odd-dim-deep-decoder"  # positions far from the sequence index, the HF table grown


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return hf_checkpoint_folder(save_tiny_m2m100, VARIANT, M2M100_VARIANTS[VARIANT], tmp_path_factory)


@pytest.fixture(scope="module")
def model(hf_folder):
    return M2M100ForConditionalGeneration.from_pretrained(hf_folder)


@pytest.fixture(scope="module")
def hf_model(hf_folder):
    return transformers.M2M100ForConditionalGeneration.from_pretrained(hf_folder).eval()


@pytest.fixture(scope="module")
def batch(model):
    return batch_for(model.config)


def logits(model, **inputs):
    with torch.no_grad():
        return model(**inputs).logits


def padded_ids(pad: int, left: bool) -> torch.Tensor:
    """Rows of 6, 4 and 1 tokens (ids 3..9, never pad), padded on the left or the right to 6."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 10, (3, 6), generator=generator)
    for row, length in enumerate((6, 4, 1)):
        if left:
            ids[row, : 6 - length] = pad
        else:
            ids[row, length:] = pad
    return ids


# ---- positions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_positions, dim, padding_idx", [(66, 32, 1), (199, 33, 98), (12, 6, 0), (1026, 64, 1)])
def test_sinusoidal_table_equals_hf_bit_for_bit(num_positions, dim, padding_idx):
    expected = torch.from_numpy(hf_internal(f"m2m100_table_{num_positions}x{dim}_pad{padding_idx}"))
    actual = sinusoidal_table(num_positions, dim, padding_idx)
    assert actual.dtype == torch.float32 and not actual[padding_idx].any()
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
@pytest.mark.parametrize("padding_idx", [1, 50])
@pytest.mark.parametrize("past_length", [0, 3])
def test_positions_equal_hf(left, padding_idx, past_length):
    """HF's position ids (pinned): non-padding tokens count from padding_idx + 1 (+ past); padding keeps padding_idx."""
    ids = padded_ids(padding_idx, left)
    positions = hf_internal(f"m2m100_positions_{'left' if left else 'right'}_pad{padding_idx}_past{past_length}")
    expected = sinusoidal_table(60, 16, padding_idx)[torch.from_numpy(positions)]
    actual = M2M100SinusoidalPositionalEmbedding(60, 16, padding_idx)(ids, past_length)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert not actual[ids == padding_idx].any()  # padding sits at the zero row


@pytest.mark.parametrize("position_type", [int, torch.tensor])
def test_chunked_positions_equal_the_whole_row_for_right_padding(position_type):
    """What cached decoding relies on: chunks embedded with past_length = their start give the whole
    row's positions (HF's incremental decoding does the same with its cache length)."""
    positions = M2M100SinusoidalPositionalEmbedding(20, 8, padding_idx=1)
    ids = padded_ids(1, left=False)
    whole = positions(ids)
    chunks = [positions(ids[:, start:end], position_type(start)) for start, end in [(0, 2), (2, 3), (3, 4), (4, 6)]]
    torch.testing.assert_close(torch.cat(chunks, dim=1), whole, rtol=0, atol=0)


def test_too_many_positions_is_a_clear_error():
    positions = M2M100SinusoidalPositionalEmbedding(8, 4, padding_idx=1)
    positions(torch.full((1, 8), 5))  # exactly max_position_embeddings: fine
    with pytest.raises(ValueError, match="max_position_embeddings"):
        positions(torch.full((1, 9), 5))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        positions(torch.full((1, 2), 5), 7)


def test_left_padded_source_equals_hf(hf_model, model, batch):
    """Positions skip left padding too (the common tests pad on the right only)."""
    pad = model.config.pad_token_id
    input_ids = padded_ids(pad, left=True)
    inputs = dict(
        input_ids=input_ids,
        attention_mask=(input_ids != pad).long(),
        decoder_input_ids=batch["decoder_input_ids"],
        decoder_attention_mask=batch["decoder_attention_mask"],
    )
    assert_float32_close(logits(model, **inputs), logits(hf_model, **inputs), CACHE_TOL)


def test_positions_are_neither_parameters_nor_saved(model, tmp_path):
    assert not any("embed_positions" in name for name in model.state_dict())
    assert not any("embed_positions" in name for name, _ in model.named_parameters())
    # ...but they are buffers, so .to(device / dtype) moves them with the model
    assert any(name.endswith("embed_positions.weights") for name, _ in model.named_buffers())
    model.save_pretrained(tmp_path)
    assert not any("embed_positions" in name for name in read_safetensors_folder(tmp_path))


def test_checkpoint_with_saved_positions_loads(hf_folder, model, batch, tmp_path):
    """transformers 4 checkpoints may hold the sinusoidal tables: they are ignored, not loaded."""
    tensors = read_safetensors_folder(hf_folder)
    for side in ("encoder", "decoder"):
        tensors[f"model.{side}.embed_positions.weights"] = torch.full((102, 33), 7.0)  # wrong values on purpose
    copy_config_files(hf_folder, tmp_path)
    save_file(tensors, os.path.join(tmp_path, "model.safetensors"))
    reloaded = M2M100ForConditionalGeneration.from_pretrained(tmp_path)
    inputs = {name: batch[name] for name in ("input_ids", "attention_mask", "decoder_input_ids")}
    torch.testing.assert_close(logits(reloaded, **inputs), logits(model, **inputs), rtol=0, atol=0)


# ---- config, registry, fresh models ----------------------------------------------------------------------


def test_config_defaults_equal_hf():
    expected = transformers.M2M100Config().to_dict()
    actual = M2M100Config().to_dict()
    keys = [key for key in actual if key in expected]
    assert len(keys) >= 25
    assert {key: actual[key] for key in keys} == {key: expected[key] for key in keys}
    config = M2M100Config(d_model=48, encoder_layers=3, encoder_attention_heads=6)
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (48, 3, 6)


def test_auto_classes_load_an_nllb_style_folder(hf_folder, model, batch, tmp_path):
    """NLLB-200 checkpoints are model_type m2m_100 (with tokenizer_class NllbTokenizer in their tokenizer files)."""
    from westron.models.auto import AutoConfig, AutoModelForSeq2SeqLM

    copy_config_files(hf_folder, tmp_path)
    save_file(read_safetensors_folder(hf_folder), os.path.join(tmp_path, "model.safetensors"))
    with open(tmp_path / "config.json", encoding="utf-8") as handle:
        config = json.load(handle)
    assert config["model_type"] == "m2m_100"
    config["tokenizer_class"] = "NllbTokenizer"  # as facebook/nllb-200-distilled-600M's config.json says
    with open(tmp_path / "config.json", "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), M2M100Config)
    loaded = AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert isinstance(loaded, M2M100ForConditionalGeneration)
    assert loaded.config.tokenizer_class == "NllbTokenizer"  # unknown keys are kept
    inputs = {name: batch[name] for name in ("input_ids", "attention_mask", "decoder_input_ids")}
    torch.testing.assert_close(logits(loaded, **inputs), logits(model, **inputs), rtol=0, atol=0)


TINY = dict(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, max_position_embeddings=20)


@pytest.mark.parametrize("tie", [True, False])
def test_fresh_model_is_initialised_and_tied_like_hf(tie):
    """A model built from a config (training from scratch): HF's init scheme, tied as HF 5 ties."""
    config = M2M100Config(**TINY, tie_word_embeddings=tie)
    hf_model = transformers.M2M100ForConditionalGeneration(transformers.M2M100Config(**TINY, tie_word_embeddings=tie))
    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(config)
    assert model.tied_weights() == dict(hf_model.all_tied_weights_keys)
    assert sorted(model.state_dict()) == sorted(hf_model.state_dict())
    shared = model.model.shared.weight
    embeddings = [model.lm_head.weight, model.model.encoder.embed_tokens.weight, model.model.decoder.embed_tokens.weight]
    assert all((weight is shared) == tie for weight in embeddings)
    assert not shared[config.pad_token_id].any()  # the padding row
    assert abs(shared.std().item() - 0.02) < 0.005
    layer = model.model.decoder.layers[0]
    assert not layer.fc1.bias.any() and torch.equal(layer.final_layer_norm.weight, torch.ones(16))
    assert torch.equal(model.model.encoder.layer_norm.weight, torch.ones(16))
