"""TensorFlow M2M100 against Hugging Face's M2M100ForConditionalGeneration (PyTorch) and our PyTorch twin:
the common TF tests over every tiny variant, then what is M2M100's own (padding-aware sinusoidal
positions, pre-LayerNorm layers with a final LayerNorm per stack, variable names, tying)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers
from safetensors.torch import save_file

from tests.hf_oracle import M2M100_VARIANTS, save_tiny_m2m100
from tests.hf_pinned import hf_internal
from tests.test_modeling_common import (
    LOGITS_TOL,
    assert_float32_close,
    batch_for,
    copy_config_files,
    hf_checkpoint_folder,
    read_safetensors_folder,
)
from tests.test_modeling_tf_common import TFSeq2SeqModelTesterMixin, to_tf
from westron.models.m2m_100.configuration_m2m_100 import M2M100Config
from westron.models.m2m_100.modeling_tf_m2m_100 import (
    TFM2M100ForConditionalGeneration,
    TFM2M100SinusoidalPositionalEmbedding,
    sinusoidal_table,
)


class TestTFM2M100Modeling(TFSeq2SeqModelTesterMixin):
    model_class = TFM2M100ForConditionalGeneration
    hf_model_class = transformers.M2M100ForConditionalGeneration
    pt_model_class = "westron.models.m2m_100.modeling_m2m_100.M2M100ForConditionalGeneration"
    variants = M2M100_VARIANTS
    save_hf_checkpoint = staticmethod(save_tiny_m2m100)


# ---- M2M100's own ------------------------------------------------------------------------------------

VARIANT = "scaled-tied-relu"  # the NLLB-200 / m2m100 shape: relu, scaled, everything tied to model.shared
TOP = "tfm2m100_for_conditional_generation"


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    return hf_checkpoint_folder(save_tiny_m2m100, VARIANT, M2M100_VARIANTS[VARIANT], tmp_path_factory)


@pytest.fixture(scope="module")
def model(hf_folder):
    return TFM2M100ForConditionalGeneration.from_pretrained(hf_folder)


@pytest.fixture(scope="module")
def hf_model(hf_folder):
    return transformers.M2M100ForConditionalGeneration.from_pretrained(hf_folder).eval()


@pytest.fixture(scope="module")
def batch(model):
    return batch_for(model.config)


@pytest.fixture(scope="module")
def tf_batch(batch):
    return to_tf(batch)


INPUTS = ("input_ids", "attention_mask", "decoder_input_ids")


def logits(model, inputs) -> np.ndarray:
    return model(**{name: inputs[name] for name in INPUTS}).logits.numpy()


def hf_logits(hf_model, inputs) -> np.ndarray:
    with torch.no_grad():
        return hf_model(**{name: inputs[name] for name in INPUTS}).logits.numpy()


def padded_ids(pad: int, left: bool) -> np.ndarray:
    """Rows of 6, 4 and 1 tokens (ids 3..9, never pad), padded on the left or the right to 6."""
    ids = np.random.default_rng(1).integers(3, 10, (3, 6))
    for row, length in enumerate((6, 4, 1)):
        if left:
            ids[row, : 6 - length] = pad
        else:
            ids[row, length:] = pad
    return ids


# ---- positions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_positions, dim, padding_idx, atol",
    [
        (66, 32, 1, 1.2e-7),  # the tiny variants' tables: one float32 ulp of sin/cos at most
        (199, 33, 98, 1.2e-7),  # odd dim (a zero column), padding row far down
        (12, 6, 0, 1.2e-7),
        (1026, 1024, 1, 6.2e-5),  # NLLB-200 / m2m100: a few frequencies one ulp off torch's exp
    ],
)
def test_sinusoidal_table_equals_hf(num_positions, dim, padding_idx, atol):
    expected = hf_internal(f"m2m100_table_{num_positions}x{dim}_pad{padding_idx}")
    actual = sinusoidal_table(num_positions, dim, padding_idx)
    assert actual.dtype == np.float32 and not actual[padding_idx].any()
    if dim == 1024:  # pinned rows only (the whole table would be 4 MB)
        actual = actual[hf_internal("m2m100_big_table_rows")]
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)
    assert np.mean(actual == expected) > 0.9  # mostly bit for bit


@pytest.mark.parametrize("left", [False, True], ids=["right-padded", "left-padded"])
@pytest.mark.parametrize("padding_idx", [1, 50])
@pytest.mark.parametrize("past_length", [0, 3])
def test_positions_equal_hf(left, padding_idx, past_length):
    """HF's position ids (pinned): non-padding tokens count from padding_idx + 1 (+ past); padding keeps padding_idx."""
    ids = padded_ids(padding_idx, left)
    positions = hf_internal(f"m2m100_positions_{'left' if left else 'right'}_pad{padding_idx}_past{past_length}")
    expected = sinusoidal_table(60, 16, padding_idx)[positions]
    actual = TFM2M100SinusoidalPositionalEmbedding(60, 16, padding_idx)(tf.constant(ids), past_length=past_length)
    np.testing.assert_allclose(actual.numpy(), expected, rtol=0, atol=1.2e-7)
    assert not actual.numpy()[ids == padding_idx].any()  # padding sits at the zero row


@pytest.mark.parametrize("position_type", [int, tf.constant])
def test_chunked_positions_equal_the_whole_row_for_right_padding(position_type):
    """What cached decoding relies on: chunks embedded with past_length = their start give the whole
    row's positions, with int and tensor past lengths (int64 ids too)."""
    positions = TFM2M100SinusoidalPositionalEmbedding(20, 8, padding_idx=1)
    ids = tf.constant(padded_ids(1, left=False), tf.int64)
    whole = positions(ids)
    chunks = [
        positions(ids[:, start:end], past_length=position_type(start))
        for start, end in [(0, 2), (2, 3), (3, 4), (4, 6)]
    ]
    np.testing.assert_array_equal(tf.concat(chunks, axis=1).numpy(), whole.numpy())


def test_too_many_positions_is_a_clear_error():
    positions = TFM2M100SinusoidalPositionalEmbedding(8, 4, padding_idx=1)
    positions(tf.fill((1, 8), 5))  # exactly max_position_embeddings: fine
    with pytest.raises(ValueError, match="max_position_embeddings"):
        positions(tf.fill((1, 9), 5))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        positions(tf.fill((1, 2), 5), past_length=7)


def test_left_padded_source_equals_hf(hf_model, model, batch):
    """Positions skip left padding too (the common tests pad on the right only)."""
    pad = model.config.pad_token_id
    input_ids = padded_ids(pad, left=True)
    inputs = dict(
        input_ids=input_ids,
        attention_mask=(input_ids != pad).astype(np.int64),
        decoder_input_ids=batch["decoder_input_ids"].numpy(),
    )
    expected = hf_logits(hf_model, {name: torch.from_numpy(value) for name, value in inputs.items()})
    actual = logits(model, {name: tf.constant(value) for name, value in inputs.items()})
    assert_float32_close(actual, expected, LOGITS_TOL)


def test_decoding_past_padding_equals_hf_incremental_decoding(hf_model, model, tf_batch):
    """A finished row keeps receiving pad tokens in a batch search: those embed at the zero padding row
    and the row's next real token would continue counting, as HF's own cached decoding does."""
    source, source_mask = tf_batch["input_ids"], tf_batch["attention_mask"]
    start, pad = model.config.decoder_start_token_id, model.config.pad_token_id
    steps = np.array([[start, 7, 8, pad, 9], [start, 5, pad, pad, pad], [start, 6, 7, 8, 9]])
    encoded = model.encode(source, source_mask).last_hidden_state
    cache = model.init_cache(encoded, max_length=steps.shape[1])
    ours = []
    for position in range(steps.shape[1]):
        step_logits, cache, _ = model.decode(
            tf.constant(steps[:, position : position + 1]), encoded, source_mask, cache, tf.constant(position)
        )
        ours.append(step_logits.numpy())
    theirs = []
    with torch.no_grad():
        encoder_outputs = hf_model.get_encoder()(
            input_ids=torch.from_numpy(source.numpy()), attention_mask=torch.from_numpy(source_mask.numpy())
        )
        past = None
        for position in range(steps.shape[1]):
            out = hf_model(
                encoder_outputs=encoder_outputs,
                attention_mask=torch.from_numpy(source_mask.numpy()),
                decoder_input_ids=torch.from_numpy(steps[:, position : position + 1]),
                past_key_values=past,
                use_cache=True,
            )
            past = out.past_key_values
            theirs.append(out.logits.numpy())
    assert_float32_close(np.concatenate(ours, 1), np.concatenate(theirs, 1), LOGITS_TOL)


def test_positions_are_neither_variables_nor_saved(model, tmp_path):
    assert not any("embed_positions" in variable.path for variable in model.variables)
    model.save_pretrained(tmp_path)
    assert not any("embed_positions" in name for name in read_safetensors_folder(tmp_path))


def test_checkpoint_with_saved_positions_loads(hf_folder, model, tf_batch, tmp_path):
    """transformers 4 checkpoints may hold the sinusoidal tables: they are ignored, not loaded."""
    tensors = read_safetensors_folder(hf_folder)
    for side in ("encoder", "decoder"):
        tensors[f"model.{side}.embed_positions.weights"] = torch.full((66, 32), 7.0)  # wrong values on purpose
    copy_config_files(hf_folder, tmp_path)
    save_file(tensors, os.path.join(tmp_path, "model.safetensors"))
    reloaded = TFM2M100ForConditionalGeneration.from_pretrained(tmp_path)
    np.testing.assert_array_equal(logits(reloaded, tf_batch), logits(model, tf_batch))


# ---- names and tying -------------------------------------------------------------------------------------


def test_variable_paths_are_checkpoint_names(model):
    """The one generic rule: Keras path minus the top name, '/' -> '.', kernel -> weight (transposed)."""
    paths = {variable.path for variable in model.weights}
    assert f"{TOP}/model/encoder/layers.0/self_attn/q_proj/kernel" in paths
    assert f"{TOP}/model/decoder/layers.1/encoder_attn_layer_norm/gamma" in paths
    assert f"{TOP}/model/encoder/layer_norm/gamma" in paths and f"{TOP}/model/decoder/layer_norm/beta" in paths
    assert f"{TOP}/model/shared/embeddings" in paths  # built under the model, not the encoder
    named = model.checkpoint_variables()
    variable, transposed = named["model.encoder.layers.0.fc1.weight"]
    assert transposed and variable.path.endswith("fc1/kernel")
    assert not named["model.shared.weight"][1]
    assert "final_logits_bias" not in named  # M2M100 has none (Marian has)


def test_tied_head_has_no_variable_of_its_own(model, hf_model, batch, tf_batch):
    """Tied: one embedding variable feeds the encoder, the decoder and the head (a matmul, transposed)."""
    assert model.lm_head is None
    embeddings = [v.path for v in model.weights if "embed" in v.path or "shared" in v.path or "lm_head" in v.path]
    assert embeddings == [f"{TOP}/model/shared/embeddings"]
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


TINY = dict(vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, max_position_embeddings=20)


@pytest.mark.parametrize("tie", [True, False])
def test_fresh_model_is_initialised_and_tied_like_hf(tie):
    """A model built from a config (training from scratch): HF's init scheme and names, tied as HF 5 ties."""
    hf_model = transformers.M2M100ForConditionalGeneration(transformers.M2M100Config(**TINY, tie_word_embeddings=tie))
    tf.random.set_seed(0)
    model = TFM2M100ForConditionalGeneration(M2M100Config(**TINY, tie_word_embeddings=tie))
    assert model.tied_weights() == dict(hf_model.all_tied_weights_keys)
    shapes = {name: tuple(t.shape) for name, t in hf_model.state_dict().items() if name not in model.tied_weights()}
    assert model.checkpoint_shapes() == shapes
    assert (model.lm_head is None) == tie
    assert (model.model.encoder.embed_tokens is model.model.shared) == tie
    shared = model.model.shared.embeddings.numpy()
    assert not shared[model.config.pad_token_id].any()  # the padding row
    assert abs(shared.std() - 0.02) < 0.005
    layer = model.model.decoder.layers[0]
    assert not layer.fc1.bias.numpy().any() and abs(layer.fc1.kernel.numpy().std() - 0.02) < 0.005
    np.testing.assert_array_equal(layer.final_layer_norm.gamma.numpy(), np.ones(16))
    np.testing.assert_array_equal(model.model.encoder.layer_norm.gamma.numpy(), np.ones(16))
    if not tie:
        assert abs(model.lm_head.kernel.numpy().std() - 0.02) < 0.005


# ---- generation (westron/generation/tf_search.py, compiled) ----------------------------------------------


@pytest.fixture(scope="module")
def diverse_models(tmp_path_factory):
    """A tiny random HF M2M100 whose outputs vary by position (HF's init std 0.02 repeats one token), so
    rows end at different steps (greedy with eos 54, beam search with eos 50): finished rows are fed padding."""
    from tests.hf_oracle import tiny_m2m100_config

    torch.manual_seed(0)
    hf_model = transformers.M2M100ForConditionalGeneration(
        tiny_m2m100_config(init_std=0.1, tie_word_embeddings=False)
    ).eval()
    with torch.no_grad():
        hf_model.lm_head.weight.normal_(0, 0.3)
    folder = tmp_path_factory.mktemp("m2m100_generation")
    hf_model.save_pretrained(folder)
    return hf_model, TFM2M100ForConditionalGeneration.from_pretrained(folder)


@pytest.mark.parametrize("num_beams, eos", [(1, 54), (3, 50)], ids=["greedy", "beam"])
def test_generate_equals_hf(diverse_models, num_beams, eos):
    from tests.hf_oracle import random_batch

    hf_model, model = diverse_models
    ids, mask = random_batch(99, 1, 2, batch=4, length=11)  # rows of 11, 9, 7, 5 tokens
    settings = dict(num_beams=num_beams, eos_token_id=eos, max_new_tokens=12)
    with torch.no_grad():
        expected = hf_model.generate(ids, attention_mask=mask, do_sample=False, **settings).numpy()
    assert len({int(np.sum(row != 1)) for row in expected}) > 1  # rows end at different steps
    actual = model.generate(ids.numpy(), attention_mask=mask.numpy(), **settings).numpy()
    assert actual.shape == expected.shape, (actual, expected)
    np.testing.assert_array_equal(actual, expected)
