"""PyTorch Marian against Hugging Face's MarianMTModel: the common tests over every tiny variant,
then what is Marian's own (sinusoidal positions, final_logits_bias, activations) and checkpoint I/O."""

from __future__ import annotations

import json
import os

import pytest
import torch
import transformers
from safetensors.torch import save_file

from tests.hf_oracle import MARIAN_VARIANTS, save_tiny_marian
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
from westron.errors import CheckpointError, WestronError
from westron.models.marian.configuration_marian import MarianConfig
from westron.models.marian.modeling_marian import ACT2FN, MarianMTModel, MarianSinusoidalPositionalEmbedding


class TestMarianModeling(Seq2SeqModelTesterMixin):
    model_class = MarianMTModel
    hf_model_class = transformers.MarianMTModel
    variants = MARIAN_VARIANTS
    save_hf_checkpoint = staticmethod(save_tiny_marian)


# ---- Marian's own ------------------------------------------------------------------------------------

VARIANT = "shared-tied-swish"


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return hf_checkpoint_folder(save_tiny_marian, VARIANT, MARIAN_VARIANTS[VARIANT], tmp_path_factory)


@pytest.fixture(scope="module")
def model(hf_folder):
    return MarianMTModel.from_pretrained(hf_folder)


@pytest.fixture(scope="module")
def hf_model(hf_folder):
    return transformers.MarianMTModel.from_pretrained(hf_folder).eval()


@pytest.fixture(scope="module")
def batch(model):
    return batch_for(model.config)


def logits(model, batch):
    with torch.no_grad():
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
        ).logits


@pytest.mark.parametrize("num_positions, dim", [(64, 32), (11, 7), (5, 2)])
def test_sinusoidal_table_equals_hf(num_positions, dim):
    expected = torch.from_numpy(hf_internal(f"marian_table_{num_positions}x{dim}"))
    actual = MarianSinusoidalPositionalEmbedding(num_positions, dim).weight
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    assert actual.dtype == torch.float32


def test_positions_are_neither_parameters_nor_saved(model, tmp_path):
    assert not any("embed_positions" in name for name in model.state_dict())
    assert not any("embed_positions" in name for name, _ in model.named_parameters())
    # ...but they are buffers, so .to(device / dtype) moves them with the model
    assert any(name.endswith("embed_positions.weight") for name, _ in model.named_buffers())
    model.save_pretrained(tmp_path)
    assert not any("embed_positions" in name for name in read_safetensors_folder(tmp_path))


def test_checkpoint_with_saved_positions_loads(hf_folder, model, batch, tmp_path):
    """transformers 4 saved the sinusoidal tables (opus-mt checkpoints hold them): they are ignored."""
    tensors = read_safetensors_folder(hf_folder)
    for side in ("encoder", "decoder"):
        tensors[f"model.{side}.embed_positions.weight"] = torch.full((64, 32), 7.0)  # wrong values on purpose
    copy_config_files(hf_folder, tmp_path)
    save_file(tensors, os.path.join(tmp_path, "model.safetensors"))
    reloaded = MarianMTModel.from_pretrained(tmp_path)
    torch.testing.assert_close(logits(reloaded, batch), logits(model, batch), rtol=0, atol=0)


def test_final_logits_bias_is_loaded_and_used(hf_model, model, batch):
    expected = hf_model.final_logits_bias
    assert expected.abs().sum() > 0  # the oracle makes it non-zero
    torch.testing.assert_close(model.final_logits_bias, expected, rtol=0, atol=0)
    assert model.final_logits_bias.shape == (1, model.config.decoder_vocab_size)
    assert "final_logits_bias" in model.state_dict()
    assert "final_logits_bias" not in dict(model.named_parameters())  # a buffer, as in HF
    with torch.no_grad():
        hidden = model.model(
            batch["input_ids"], batch["attention_mask"], batch["decoder_input_ids"]
        ).last_hidden_state
        assert_float32_close(logits(model, batch), model.lm_head(hidden) + expected, CACHE_TOL)


def test_sharded_save_and_load(model, batch, tmp_path):
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    names = sorted(os.listdir(tmp_path))
    shards = [n for n in names if n.startswith("model-") and n.endswith(".safetensors")]
    assert len(shards) > 1 and "model.safetensors.index.json" in names and "model.safetensors" not in names
    with open(tmp_path / "model.safetensors.index.json") as handle:
        weight_map = json.load(handle)["weight_map"]
    assert sorted(weight_map) == sorted(n for n in model.state_dict() if n not in model.tied_weights())
    reloaded = MarianMTModel.from_pretrained(tmp_path)
    torch.testing.assert_close(logits(reloaded, batch), logits(model, batch), rtol=0, atol=0)
    hf_reloaded = transformers.MarianMTModel.from_pretrained(tmp_path).eval()
    assert_float32_close(logits(hf_reloaded, batch), logits(model, batch), CACHE_TOL)


def test_pickle_checkpoint_needs_allow_pickle(hf_folder, model, batch, tmp_path):
    copy_config_files(hf_folder, tmp_path)
    torch.save(read_safetensors_folder(hf_folder), tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="allow_pickle"):
        MarianMTModel.from_pretrained(tmp_path)
    reloaded = MarianMTModel.from_pretrained(tmp_path, allow_pickle=True)
    torch.testing.assert_close(logits(reloaded, batch), logits(model, batch), rtol=0, atol=0)


def test_decode_writes_the_cache_in_place(model, batch):
    """No reallocation of the static self-attention buffers per step under no_grad."""
    with torch.no_grad():
        encoded = model.encode(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        cache = model.init_cache(encoded, max_length=6)
        pointers = [(k.data_ptr(), v.data_ptr()) for k, v, _, _ in cache]
        _, new_cache, _ = model.decode(batch["decoder_input_ids"][:, :1], encoded, batch["attention_mask"], cache, 0)
    assert [(k.data_ptr(), v.data_ptr()) for k, v, _, _ in new_cache] == pointers
    assert all(k[:, :, 0].abs().sum() > 0 and not k[:, :, 1:].any() for k, _, _, _ in new_cache)
    with pytest.raises(ValueError, match="cache"):
        with torch.no_grad():
            model.decode(batch["decoder_input_ids"][:, :2], encoded, batch["attention_mask"], new_cache, 5)


def test_decode_with_autograd_recording_leaves_the_cache_alone(model, batch):
    with torch.no_grad():
        encoded = model.encode(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        cache = model.init_cache(encoded, max_length=4)
    step, new_cache, _ = model.decode(batch["decoder_input_ids"][:, :2], encoded, batch["attention_mask"], cache, 0)
    step.sum().backward()  # the graph is intact: the buffers were not modified in place
    assert not cache[0][0].any() and new_cache[0][0][:, :, :2].abs().sum() > 0
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", sorted(ACT2FN))
def test_activation_numerics_equal_hf(name):
    x = torch.linspace(-8, 8, 4001)
    torch.testing.assert_close(ACT2FN[name](x), torch.from_numpy(hf_internal(f"activation_{name}")), rtol=0, atol=0)


def test_gelu_new_model_equals_hf(tmp_path):
    folder = save_tiny_marian(tmp_path, activation_function="gelu_new")
    model = MarianMTModel.from_pretrained(folder)
    hf_model = transformers.MarianMTModel.from_pretrained(folder).eval()
    batch = batch_for(model.config)
    assert_float32_close(logits(model, batch), logits(hf_model, batch), CACHE_TOL)


def test_unknown_activation_is_a_clear_error():
    config = MarianConfig(vocab_size=20, d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=8, decoder_ffn_dim=8, pad_token_id=19,
                          activation_function="gelu_but_wrong")
    with pytest.raises(WestronError, match="gelu_but_wrong"):
        MarianMTModel(config)


def test_fresh_model_is_initialised_like_hf():
    """A model built from a config (training from scratch): HF's init scheme, tied as configured."""
    config = MarianConfig(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, pad_token_id=49,
                          decoder_start_token_id=49, init_std=0.02)
    torch.manual_seed(0)
    model = MarianMTModel(config)
    shared = model.model.shared.weight
    assert model.lm_head.weight is shared and model.model.encoder.embed_tokens.weight is shared
    assert not shared[49].any()  # the padding row
    assert abs(shared.std().item() - 0.02) < 0.005
    assert not model.final_logits_bias.any()
    layer = model.model.encoder.layers[0]
    assert not layer.fc1.bias.any() and torch.equal(layer.final_layer_norm.weight, torch.ones(16))


def test_layerdrop_only_while_training(hf_folder, model, batch):
    """LayerDrop keeps a layer's input instead of its output, in training only; as in the TF twin, a
    dropped layer still adds its entry to hidden_states, so both frameworks give one per layer."""
    dropping = MarianMTModel.from_pretrained(hf_folder, encoder_layerdrop=1.0, decoder_layerdrop=1.0)
    torch.testing.assert_close(logits(dropping, batch), logits(model, batch), rtol=0, atol=0)
    dropping.train()
    with torch.no_grad():
        out = dropping(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"], output_hidden_states=True,
        )
    assert len(out.encoder_hidden_states) == dropping.config.encoder_layers + 1
    assert len(out.decoder_hidden_states) == dropping.config.decoder_layers + 1
    torch.testing.assert_close(out.encoder_last_hidden_state, out.encoder_hidden_states[0], rtol=0, atol=0)


def test_fp16_clamp_only_once_something_overflowed():
    """HF's Marian clamps float16 activations to max - 1000 only when one of them is not finite."""
    from westron.models.marian.modeling_marian import clamp_overflow_fp16

    large = torch.tensor([65000.0, -65000.0, 1.0], dtype=torch.float16)  # finite, above max - 1000
    torch.testing.assert_close(clamp_overflow_fp16(large), large, rtol=0, atol=0)
    overflowed = torch.tensor([float("inf"), -65000.0, 1.0], dtype=torch.float16)
    expected = torch.tensor([64504.0, -64504.0, 1.0], dtype=torch.float16)
    torch.testing.assert_close(clamp_overflow_fp16(overflowed), expected, rtol=0, atol=0)
