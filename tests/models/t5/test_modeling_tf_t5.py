"""TensorFlow T5 against Hugging Face's T5ForConditionalGeneration (PyTorch, the oracle) and our PyTorch
twin: the common TF tests over every tiny variant, then what is T5's own (relative position buckets,
RMS norm, variable names, the tied / untied / rescaled head as HF 5 decides it, decoding past
relative_attention_max_distance under XLA)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers
from safetensors.torch import save_file

from tests.hf_oracle import MT5_VARIANTS, T5_VARIANTS, save_tiny_mt5, save_tiny_t5
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
from westron.checkpoint import load_state_dict
from westron.errors import CheckpointError
from westron.models.t5.configuration_t5 import T5Config
from westron.models.t5.modeling_tf_t5 import (
    TFT5ForConditionalGeneration,
    TFT5LayerNorm,
    TFT5Model,
    relative_position_bucket,
)

INPUTS = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")


class TestTFT5Modeling(TFSeq2SeqModelTesterMixin):
    model_class = TFT5ForConditionalGeneration
    hf_model_class = transformers.T5ForConditionalGeneration
    pt_model_class = "westron.models.t5.modeling_t5.T5ForConditionalGeneration"
    variants = T5_VARIANTS
    save_hf_checkpoint = staticmethod(save_tiny_t5)
    dropout_config_keys = ("dropout_rate",)
    decoder_layers_config_key = "num_decoder_layers"


# ---- T5's own ----------------------------------------------------------------------------------------


def folder_of(variant: str, tmp_path_factory) -> str:
    return hf_checkpoint_folder(save_tiny_t5, variant, T5_VARIANTS[variant], tmp_path_factory)


_LOADED: dict[str, TFT5ForConditionalGeneration] = {}


def loaded(variant: str, tmp_path_factory) -> TFT5ForConditionalGeneration:
    """The TF model of a variant's HF folder, loaded once per session: for tests that only read it."""
    if variant not in _LOADED:
        _LOADED[variant] = TFT5ForConditionalGeneration.from_pretrained(folder_of(variant, tmp_path_factory))
    return _LOADED[variant]


def tf_logits(model, batch) -> np.ndarray:
    inputs = to_tf({name: batch[name] for name in ("input_ids", "attention_mask", "decoder_input_ids")})
    return model(**inputs).logits.numpy()


def hf_logits(model, batch) -> np.ndarray:
    with torch.no_grad():
        inputs = {name: batch[name] for name in ("input_ids", "attention_mask", "decoder_input_ids")}
        return model(**inputs).logits.numpy()


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (8, 6), (6, 20)])
def test_relative_position_bucket_equals_hf_eager_and_xla(bidirectional, num_buckets, max_distance):
    """Exact equality, log-bucket boundaries included (the float32 log is where the frameworks could part)."""
    relative = hf_internal("t5_relative")  # (3, 601), every distance class
    expected = hf_internal(f"t5_buckets_{bidirectional}_{num_buckets}_{max_distance}").astype(np.int64)

    def buckets(positions):
        return relative_position_bucket(positions, bidirectional, num_buckets, max_distance)

    positions = tf.constant(relative, tf.int32)
    for mode, function in (("eager", buckets), ("xla", tf.function(buckets, jit_compile=True))):
        actual = function(positions).numpy()
        np.testing.assert_array_equal(actual, expected, err_msg=mode)
    # The test sees each branch: exact distances, the logarithmic buckets and the saturated last one.
    half = num_buckets // 2 if bidirectional else num_buckets
    within_half = set(np.unique(expected % half))
    assert {0, half // 2, half - 1} <= within_half and (expected >= half).any() == bidirectional


def test_layer_norm_is_hfs_rms_norm():
    ours = TFT5LayerNorm(16, eps=1e-6, name="layer_norm")
    ours.build(None)
    ours.weight.assign(hf_internal("t5_norm_weight"))
    x = hf_internal("t5_norm_input")  # a mean far from 0: a mean subtraction would show
    expected = hf_internal("t5_norm_output_float32")
    assert_float32_close(ours(tf.constant(x)).numpy(), expected, CACHE_TOL)
    assert [variable.path for variable in ours.weights] == ["layer_norm/weight"]


def test_variables_carry_hf_checkpoint_names(tmp_path_factory):
    """`shared` sits at the top (not under the encoder, its first user); the bias table under block 0."""
    untied = loaded("t5-v1.1-gated-gelu-untied", tmp_path_factory)
    paths = {variable.path for variable in untied.weights}
    assert "tf_t5_for_conditional_generation/shared/embeddings" in paths
    names = untied.checkpoint_variables()
    for name in (
        "shared.weight",
        "lm_head.weight",
        "encoder.block.0.layer.0.SelfAttention.q.weight",
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.1.layer.1.EncDecAttention.o.weight",
        "decoder.block.1.layer.2.DenseReluDense.wi_1.weight",
        "encoder.final_layer_norm.weight",
    ):
        assert name in names, name
    assert not any("relative_attention_bias" in name and ".block.0." not in name for name in names)
    assert names["lm_head.weight"][1] and not names["shared.weight"][1]  # Dense kernels are stored transposed


def test_original_t5_rescales_before_its_tied_head(tmp_path_factory):
    model = loaded("t5-v1.0-relu-tied", tmp_path_factory)
    assert model.config.tie_word_embeddings and model.config.scale_decoder_outputs
    batch = to_tf(batch_for(model.config))
    encoded = model.encode(batch["input_ids"], batch["attention_mask"]).last_hidden_state
    hidden = model.decoder(
        batch["decoder_input_ids"], encoder_hidden_states=encoded, encoder_attention_mask=batch["attention_mask"]
    ).last_hidden_state
    expected = tf.einsum("btd,vd->btv", hidden, model.shared.embeddings) * model.config.d_model**-0.5
    actual = model(batch["input_ids"], batch["attention_mask"], batch["decoder_input_ids"]).logits
    assert_float32_close(actual.numpy(), expected.numpy(), CACHE_TOL)


@pytest.mark.parametrize(
    "variant, tied, scaled",
    [
        ("t5-v1.0-relu-tied", True, True),
        ("t5-v1.1-gated-gelu-untied", False, False),  # HF 5's config.json says tied: the checkpoint decides
        ("flan-legacy-config-deep-encoder", False, False),
        ("tied-unscaled-gated-silu-deep-decoder", True, False),
    ],
)
def test_head_tying_and_scaling_as_hf_decides(variant, tied, scaled, tmp_path_factory, tmp_path):
    model = loaded(variant, tmp_path_factory)
    assert (model.config.tie_word_embeddings, model.config.scale_decoder_outputs) == (tied, scaled)
    assert model.lm_head.built == (not tied)  # tied: the head is `shared`, no variable of its own
    assert ("lm_head.weight" in model.tied_weights()) == tied
    assert ("lm_head.weight" in model.checkpoint_variables()) == (not tied)
    model.save_pretrained(tmp_path)
    with open(tmp_path / "config.json") as handle:
        saved = json.load(handle)
    assert (saved["tie_word_embeddings"], saved["scale_decoder_outputs"]) == (tied, scaled)
    assert ("lm_head.weight" in read_safetensors_folder(tmp_path)) == (not tied)


def test_transformers_4_checkpoint_with_every_tied_copy_loads_tied(tmp_path_factory, tmp_path):
    """transformers 4 pickles held shared, both embed_tokens and lm_head, all equal: one tied matrix."""
    folder = folder_of("t5-v1.0-relu-tied", tmp_path_factory)
    tensors = read_safetensors_folder(folder)
    for name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"):
        tensors[name] = tensors["shared.weight"].clone()
    # ...and old checkpoints hold an unused cross-attention bias table, which is ignored
    tensors["decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"] = torch.ones(8, 4)
    copy_config_files(folder, tmp_path)
    torch.save(tensors, tmp_path / "pytorch_model.bin")
    reloaded = TFT5ForConditionalGeneration.from_pretrained(tmp_path, allow_pickle=True)
    assert reloaded.config.tie_word_embeddings and not reloaded.lm_head.built
    model = loaded("t5-v1.0-relu-tied", tmp_path_factory)
    batch = batch_for(model.config)
    np.testing.assert_array_equal(tf_logits(reloaded, batch), tf_logits(model, batch))


def test_untied_config_without_lm_head_ties_it_as_hf(tmp_path_factory, tmp_path):
    """config.json says untied but the checkpoint has no lm_head.weight: HF 5 ties it to shared."""
    folder = folder_of("tied-unscaled-gated-silu-deep-decoder", tmp_path_factory)
    copy_config_files(folder, tmp_path)
    save_file(read_safetensors_folder(folder), os.path.join(tmp_path, "model.safetensors"))
    with open(tmp_path / "config.json") as handle:
        config = json.load(handle)
    config["tie_word_embeddings"] = False
    with open(tmp_path / "config.json", "w") as handle:
        json.dump(config, handle)
    model = TFT5ForConditionalGeneration.from_pretrained(tmp_path)
    hf_model = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert model.config.tie_word_embeddings and not model.lm_head.built
    assert hf_model.lm_head.weight is hf_model.shared.weight
    batch = batch_for(model.config)
    assert_float32_close(tf_logits(model, batch), hf_logits(hf_model, batch), LOGITS_TOL)


def test_built_model_unties_its_head_for_an_untied_checkpoint(tmp_path_factory):
    """load_checkpoint on a model already built tied (e.g. by a call) gives it its head, correctly named;
    the reverse (a built own head, a tied checkpoint) is refused rather than silently kept."""
    folder = folder_of("t5-v1.1-gated-gelu-untied", tmp_path_factory)
    state_dict = load_state_dict(folder)
    config = T5Config.from_pretrained(folder)
    assert config.tie_word_embeddings  # HF 5's config.json: only the checkpoint says untied
    model = TFT5ForConditionalGeneration(config)
    model.build_weights()
    assert "lm_head.weight" not in model.checkpoint_variables()
    model.load_checkpoint(state_dict)
    assert not model.config.tie_word_embeddings
    head, transposed = model.checkpoint_variables()["lm_head.weight"]
    assert transposed and head.path == "tf_t5_for_conditional_generation/lm_head/kernel"
    np.testing.assert_array_equal(head.numpy().T, state_dict["lm_head.weight"])
    hf_model = transformers.T5ForConditionalGeneration.from_pretrained(folder).eval()
    batch = batch_for(model.config)
    assert_float32_close(tf_logits(model, batch), hf_logits(hf_model, batch), LOGITS_TOL)

    tied_state = {name: array for name, array in state_dict.items() if name != "lm_head.weight"}
    with pytest.raises(CheckpointError, match="lm_head"):
        model.load_checkpoint(tied_state)


def test_t5_model_without_head_equals_hf(tmp_path_factory):
    folder = folder_of("flan-legacy-config-deep-encoder", tmp_path_factory)
    state_dict = load_state_dict(folder)
    model = TFT5Model(T5Config.from_pretrained(folder))
    model.load_checkpoint({name: array for name, array in state_dict.items() if name != "lm_head.weight"})
    hf_model = transformers.T5Model.from_pretrained(folder).eval()
    assert model.tied_weights() == dict(hf_model.all_tied_weights_keys)
    assert set(model.checkpoint_variables()) == {name for name, _ in hf_model.named_parameters()}
    batch = batch_for(model.config)
    with torch.no_grad():
        expected = hf_model(**{name: batch[name] for name in INPUTS}).last_hidden_state.numpy()
    actual = model(**to_tf({name: batch[name] for name in INPUTS})).last_hidden_state.numpy()
    assert_float32_close(actual, expected, LOGITS_TOL)


def test_xla_decoding_past_max_distance_with_a_long_cache_equals_full_pass(tmp_path_factory):
    """Past relative_attention_max_distance (6 here) the decoder's buckets saturate; one compiled step
    (a scalar tensor position, a static cache longer than the target) gives the full pass's logits
    at every position, without encoder_hidden_states (the cache holds the cross keys/values)."""
    model = loaded("t5-v1.0-relu-tied", tmp_path_factory)
    generator = np.random.default_rng(1)
    source = tf.constant(generator.integers(2, 99, (2, 4)), tf.int32)
    target = tf.constant(generator.integers(2, 99, (2, 10)), tf.int32)
    full = model(source, decoder_input_ids=target).logits.numpy()
    encoded = model.encode(source).last_hidden_state
    cache = model.init_cache(encoded, max_length=16)

    @tf.function(jit_compile=True)
    def step(token, cache, position):
        logits, cache, _ = model.decode(token, None, None, cache, position)
        return logits, cache

    for position in range(10):
        logits, cache = step(target[:, position : position + 1], cache, tf.constant(position))
        assert_float32_close(logits.numpy(), full[:, position : position + 1], CACHE_TOL)


def test_mt5_folder_runs_on_the_t5_classes(tmp_path_factory):
    folder = hf_checkpoint_folder(save_tiny_mt5, "mt5-untied", MT5_VARIANTS["mt5-untied"], tmp_path_factory)
    model = TFT5ForConditionalGeneration.from_pretrained(folder)
    assert model.config.model_type == "mt5" and not model.config.scale_decoder_outputs
    hf_model = transformers.MT5ForConditionalGeneration.from_pretrained(folder).eval()
    batch = batch_for(model.config)
    assert_float32_close(tf_logits(model, batch), hf_logits(hf_model, batch), LOGITS_TOL)


def test_fresh_model_is_initialised_like_hf():
    """A model built from a config (training from scratch): HF's init scheme; the head tied as configured."""
    config = T5Config(vocab_size=300, d_model=64, d_kv=16, d_ff=128, num_layers=1, num_heads=4,
                      feed_forward_proj="gated-gelu", initializer_factor=1.0)
    keras.utils.set_random_seed(0)
    model = TFT5ForConditionalGeneration(config)
    named = model.checkpoint_variables()
    assert "lm_head.weight" not in named and model.tied_weights()["lm_head.weight"] == "shared.weight"

    def std(name):
        return float(np.std(named[name][0].numpy()))

    assert abs(std("shared.weight") - 1.0) < 0.05
    assert abs(std("encoder.block.0.layer.0.SelfAttention.q.weight") - (64 * 16) ** -0.5) < 0.01
    assert abs(std("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight") - 64**-0.5) < 0.05
    assert abs(std("decoder.block.0.layer.2.DenseReluDense.wo.weight") - 128**-0.5) < 0.01
    np.testing.assert_array_equal(named["encoder.final_layer_norm.weight"][0].numpy(), np.ones(64))
    untied = TFT5ForConditionalGeneration(T5Config(**{**config.to_dict(), "tie_word_embeddings": False}))
    assert abs(float(np.std(untied.checkpoint_variables()["lm_head.weight"][0].numpy())) - 1.0) < 0.05


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_matches_hf_eager_and_compiled(num_beams, tmp_path_factory):
    """westron.generation.tf_search over T5's encode / init_cache / decode / reorder_cache: HF's ids."""
    folder = folder_of("t5-v1.1-gated-gelu-untied", tmp_path_factory)
    hf_model = transformers.T5ForConditionalGeneration.from_pretrained(folder).eval()
    model = loaded("t5-v1.1-gated-gelu-untied", tmp_path_factory)
    batch = batch_for(model.config)
    with torch.no_grad():
        expected = hf_model.generate(
            batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=8, num_beams=num_beams
        ).numpy()
    assert len(np.unique(expected)) > 4  # varied tokens and rows of different lengths, not one repeated id
    for eager in (True, False):
        actual = model.generate(
            tf.constant(batch["input_ids"].numpy()),
            tf.constant(batch["attention_mask"].numpy()),
            max_new_tokens=8,
            num_beams=num_beams,
            eager=eager,
        ).numpy()
        np.testing.assert_array_equal(actual, expected, err_msg="eager" if eager else "compiled")
