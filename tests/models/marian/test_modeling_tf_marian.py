"""TensorFlow Marian against Hugging Face's MarianMTModel (PyTorch) and our PyTorch twin: the common TF
tests over every tiny variant, then what is Marian's own (variable names, sinusoidal positions,
final_logits_bias, activations, TFMarianModel alone) and checkpoint I/O."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers
from safetensors.torch import save_file

from tests.hf_oracle import MARIAN_VARIANTS, save_tiny_marian, tiny_marian_config
from tests.hf_pinned import hf_internal
from tests.test_modeling_common import (
    CACHE_TOL,
    LOGITS_TOL,
    assert_float32_close,
    batch_for,
    copy_config_files,
    hf_checkpoint_folder,
    read_safetensors_folder,
)
from tests.test_modeling_tf_common import TFSeq2SeqModelTesterMixin, to_tf
from westron.errors import CheckpointError, WestronError
from westron.models.marian.configuration_marian import MarianConfig
from westron.models.marian.modeling_tf_marian import (
    ACT2FN,
    TFMarianModel,
    TFMarianMTModel,
    TFMarianSinusoidalPositionalEmbedding,
    sinusoidal_table,
)


class TestTFMarianModeling(TFSeq2SeqModelTesterMixin):
    model_class = TFMarianMTModel
    hf_model_class = transformers.MarianMTModel
    pt_model_class = "westron.models.marian.modeling_marian.MarianMTModel"
    variants = MARIAN_VARIANTS
    save_hf_checkpoint = staticmethod(save_tiny_marian)


# ---- Marian's own ------------------------------------------------------------------------------------

VARIANT = "shared-tied-swish"


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return hf_checkpoint_folder(save_tiny_marian, VARIANT, MARIAN_VARIANTS[VARIANT], tmp_path_factory)


@pytest.fixture(scope="module")
def model(hf_folder):
    return TFMarianMTModel.from_pretrained(hf_folder)


@pytest.fixture(scope="module")
def hf_model(hf_folder):
    return transformers.MarianMTModel.from_pretrained(hf_folder).eval()


@pytest.fixture(scope="module")
def batch(model):
    return batch_for(model.config)


@pytest.fixture(scope="module")
def tf_batch(batch):
    return to_tf(batch)


def logits(model, tf_batch) -> np.ndarray:
    return model(
        input_ids=tf_batch["input_ids"],
        attention_mask=tf_batch["attention_mask"],
        decoder_input_ids=tf_batch["decoder_input_ids"],
    ).logits.numpy()


def hf_logits(hf_model, batch) -> np.ndarray:
    with torch.no_grad():
        return hf_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=batch["decoder_input_ids"]
        ).logits.numpy()


def test_variable_paths_are_checkpoint_names(model):
    """The one generic rule: Keras path minus the top name, '/' -> '.', kernel -> weight (transposed)."""
    paths = {variable.path for variable in model.weights}
    assert "tf_marian_mt_model/model/encoder/layers.0/self_attn/q_proj/kernel" in paths
    assert "tf_marian_mt_model/model/decoder/layers.1/encoder_attn_layer_norm/gamma" in paths
    assert "tf_marian_mt_model/model/shared/embeddings" in paths  # built under the model, not the encoder
    assert "tf_marian_mt_model/final_logits_bias" in paths
    named = model.checkpoint_variables()
    variable, transposed = named["model.encoder.layers.0.self_attn.q_proj.weight"]
    assert transposed and variable.path.endswith("q_proj/kernel")
    assert not named["model.shared.weight"][1]


def test_tied_head_has_no_variable_of_its_own(model, hf_model, batch, tf_batch):
    """Tied: one embedding variable feeds the encoder, the decoder and the head (a matmul, transposed)."""
    assert model.lm_head is None
    embeddings = [v for v in model.weights if "embed" in v.path or "shared" in v.path]
    assert [v.path for v in embeddings] == ["tf_marian_mt_model/model/shared/embeddings"]
    assert model.model.encoder.embed_tokens is model.model.decoder.embed_tokens is model.model.shared
    # Changing the one variable changes the head too, as in HF where lm_head.weight is model.shared.weight.
    shared = model.model.shared.embeddings
    original = shared.numpy()
    try:
        shared.assign(original * 0.5)
        with torch.no_grad():
            hf_model.model.shared.weight.mul_(0.5)
        assert_float32_close(logits(model, tf_batch), hf_logits(hf_model, batch), LOGITS_TOL)
    finally:
        shared.assign(original)
        with torch.no_grad():
            hf_model.model.shared.weight.mul_(2.0)


@pytest.mark.parametrize("num_positions, dim", [(64, 32), (11, 7), (5, 2)])
def test_sinusoidal_table_equals_hf(num_positions, dim):
    expected = hf_internal(f"marian_table_{num_positions}x{dim}")
    actual = TFMarianSinusoidalPositionalEmbedding(num_positions, dim).weight
    assert actual.dtype == tf.float32
    np.testing.assert_array_equal(actual.numpy(), expected)
    np.testing.assert_array_equal(sinusoidal_table(num_positions, dim), expected)


def test_positions_are_neither_variables_nor_saved(model, tmp_path):
    assert not any("embed_positions" in variable.path for variable in model.variables)
    model.save_pretrained(tmp_path)
    assert not any("embed_positions" in name for name in read_safetensors_folder(tmp_path))


def test_checkpoint_with_saved_positions_loads(hf_folder, model, tf_batch, tmp_path):
    """transformers 4 saved the sinusoidal tables (opus-mt checkpoints hold them): they are ignored."""
    tensors = read_safetensors_folder(hf_folder)
    for side in ("encoder", "decoder"):
        tensors[f"model.{side}.embed_positions.weight"] = torch.full((64, 32), 7.0)  # wrong values on purpose
    copy_config_files(hf_folder, tmp_path)
    save_file(tensors, os.path.join(tmp_path, "model.safetensors"))
    reloaded = TFMarianMTModel.from_pretrained(tmp_path)
    np.testing.assert_array_equal(logits(reloaded, tf_batch), logits(model, tf_batch))


def test_final_logits_bias_is_loaded_used_and_not_trained(hf_model, model, tf_batch):
    expected = hf_model.final_logits_bias.numpy()
    assert np.abs(expected).sum() > 0  # the oracle makes it non-zero
    np.testing.assert_array_equal(model.final_logits_bias.numpy(), expected)
    assert model.final_logits_bias.shape == (1, model.config.decoder_vocab_size)
    assert not model.final_logits_bias.trainable  # a buffer in HF
    assert all("final_logits_bias" not in v.path for v in model.trainable_weights)
    hidden = model.model(
        tf_batch["input_ids"], tf_batch["attention_mask"], tf_batch["decoder_input_ids"]
    ).last_hidden_state
    without_bias = tf.einsum("btd,vd->btv", hidden, model.model.shared.embeddings).numpy()
    assert_float32_close(logits(model, tf_batch), without_bias + expected, CACHE_TOL)


def test_sharded_save_and_load(model, tf_batch, batch, tmp_path):
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    names = sorted(os.listdir(tmp_path))
    shards = [n for n in names if n.startswith("model-") and n.endswith(".safetensors")]
    assert len(shards) > 1 and "model.safetensors.index.json" in names and "model.safetensors" not in names
    with open(tmp_path / "model.safetensors.index.json") as handle:
        weight_map = json.load(handle)["weight_map"]
    assert sorted(weight_map) == sorted(model.checkpoint_variables())
    reloaded = TFMarianMTModel.from_pretrained(tmp_path)
    np.testing.assert_array_equal(logits(reloaded, tf_batch), logits(model, tf_batch))
    hf_reloaded = transformers.MarianMTModel.from_pretrained(tmp_path).eval()
    assert_float32_close(hf_logits(hf_reloaded, batch), logits(model, tf_batch), LOGITS_TOL)


def test_checkpoint_error_for_a_lone_wrong_shape(hf_folder, tmp_path):
    tensors = read_safetensors_folder(hf_folder)
    tensors["final_logits_bias"] = torch.zeros(1, 7)
    copy_config_files(hf_folder, tmp_path)
    save_file(tensors, os.path.join(tmp_path, "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"final_logits_bias \(checkpoint \(1, 7\), model \(1, 99\)\)"):
        TFMarianMTModel.from_pretrained(tmp_path)


def test_decode_past_the_cache_is_an_error(model, tf_batch):
    encoded = model.encode(tf_batch["input_ids"], tf_batch["attention_mask"]).last_hidden_state
    cache = model.init_cache(encoded, max_length=4)
    with pytest.raises(ValueError, match="cache"):
        model.decode(tf_batch["decoder_input_ids"][:, :2], encoded, tf_batch["attention_mask"], cache, 3)


def test_decode_returns_new_buffers_and_leaves_the_old_ones(model, tf_batch):
    encoded = model.encode(tf_batch["input_ids"], tf_batch["attention_mask"]).last_hidden_state
    cache = model.init_cache(encoded, max_length=6)
    _, new_cache, _ = model.decode(tf_batch["decoder_input_ids"][:, :1], encoded, tf_batch["attention_mask"], cache, 0)
    for (old_k, _, old_ck, _), (new_k, new_v, new_ck, _) in zip(cache, new_cache):
        assert not np.any(old_k.numpy())
        assert np.abs(new_k[:, :, 0].numpy()).sum() > 0 and not np.any(new_k[:, :, 1:].numpy())
        assert np.abs(new_v[:, :, 0].numpy()).sum() > 0
        assert new_ck is old_ck  # the cross keys/values are computed once, passed through


def test_decode_accepts_int64_positions_and_ids(model, tf_batch):
    encoded = model.encode(tf_batch["input_ids"], tf_batch["attention_mask"]).last_hidden_state
    ids = tf.cast(tf_batch["decoder_input_ids"], tf.int64)
    cache = model.init_cache(encoded, max_length=6)
    a, _, _ = model.decode(ids[:, :1], encoded, tf_batch["attention_mask"], cache, tf.constant(0, tf.int64))
    b, _, _ = model.decode(tf.cast(ids, tf.int32)[:, :1], encoded, tf_batch["attention_mask"], cache, 0)
    assert_float32_close(a.numpy(), b.numpy(), CACHE_TOL)


def test_marian_model_alone_loads_hf_marian_model(tmp_path):
    """TFMarianModel (no head) reads HF MarianModel's own checkpoints (names without the `model.` prefix)."""
    torch.manual_seed(0)
    hf_base = transformers.MarianModel(tiny_marian_config(activation_function="relu")).eval()
    hf_base.save_pretrained(tmp_path)
    model = TFMarianModel.from_pretrained(tmp_path)
    batch = batch_for(model.config)
    inputs = {n: batch[n] for n in ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")}
    with torch.no_grad():
        expected = hf_base(**inputs).last_hidden_state.numpy()
    actual = model(**to_tf(inputs)).last_hidden_state.numpy()
    assert_float32_close(actual, expected, LOGITS_TOL)
    assert model.tied_weights() == dict(hf_base.all_tied_weights_keys)


@pytest.mark.parametrize("name", sorted(ACT2FN))
def test_activation_numerics_equal_hf(name):
    x = np.linspace(-8, 8, 4001, dtype=np.float32)
    expected = hf_internal(f"activation_{name}")
    np.testing.assert_allclose(ACT2FN[name](tf.constant(x)).numpy(), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_activation_model_equals_hf(activation, tmp_path):
    folder = save_tiny_marian(tmp_path, activation_function=activation)
    model = TFMarianMTModel.from_pretrained(folder)
    hf_model = transformers.MarianMTModel.from_pretrained(folder).eval()
    batch = batch_for(model.config)
    assert_float32_close(logits(model, to_tf(batch)), hf_logits(hf_model, batch), LOGITS_TOL)


def test_unknown_activation_is_a_clear_error():
    config = MarianConfig(vocab_size=20, d_model=8, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=8, decoder_ffn_dim=8, pad_token_id=19,
                          activation_function="gelu_but_wrong")
    with pytest.raises(WestronError, match="gelu_but_wrong"):
        TFMarianMTModel(config)


def test_fresh_model_is_initialised_like_hf():
    """A model built from a config (training from scratch): HF's init scheme, tied as configured."""
    config = MarianConfig(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, pad_token_id=49,
                          decoder_start_token_id=49, init_std=0.02)
    tf.random.set_seed(0)
    model = TFMarianMTModel(config)
    model.build_weights()
    shared = model.model.shared.embeddings.numpy()
    assert model.lm_head is None and model.model.encoder.embed_tokens is model.model.shared
    assert not shared[49].any()  # the padding row
    assert abs(shared.std() - 0.02) < 0.005
    assert not model.final_logits_bias.numpy().any()
    layer = model.model.encoder.layers[0]
    assert not layer.fc1.bias.numpy().any() and abs(layer.fc1.kernel.numpy().std() - 0.02) < 0.005
    np.testing.assert_array_equal(layer.final_layer_norm.gamma.numpy(), np.ones(16))


def test_layerdrop_only_while_training(hf_folder, model, tf_batch):
    """LayerDrop skips whole layers in training only; with every layer dropped the encoder output is the embeddings."""
    dropping = TFMarianMTModel.from_pretrained(hf_folder, encoder_layerdrop=1.0, decoder_layerdrop=1.0)
    np.testing.assert_array_equal(logits(dropping, tf_batch), logits(model, tf_batch))
    out = dropping(
        tf_batch["input_ids"], tf_batch["attention_mask"], tf_batch["decoder_input_ids"],
        output_hidden_states=True, training=True,
    )
    np.testing.assert_array_equal(out.encoder_last_hidden_state.numpy(), out.encoder_hidden_states[0].numpy())


def test_fp16_clamp_only_once_something_overflowed():
    """The PyTorch twin's rule, as HF's Marian: clamp float16 to max - 1000 only once something is not finite."""
    from westron.models.marian.modeling_tf_marian import clamp_overflow_fp16

    large = tf.constant([65000.0, -65000.0, 1.0], dtype=tf.float16)  # finite, above max - 1000
    np.testing.assert_array_equal(clamp_overflow_fp16(large).numpy(), large.numpy())
    overflowed = tf.constant([np.inf, -65000.0, 1.0], dtype=tf.float16)
    expected = np.array([64504.0, -64504.0, 1.0], np.float16)
    np.testing.assert_array_equal(clamp_overflow_fp16(overflowed).numpy(), expected)
    compiled = tf.function(clamp_overflow_fp16, jit_compile=True)
    np.testing.assert_array_equal(compiled(large).numpy(), large.numpy())
