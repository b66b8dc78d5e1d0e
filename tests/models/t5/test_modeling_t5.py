"""PyTorch T5 against Hugging Face's T5ForConditionalGeneration and MT5ForConditionalGeneration: the
common tests over every tiny variant, then what is T5's own (relative position buckets, RMS norm,
the tied / untied / rescaled head as HF 5 decides it, the config)."""

from __future__ import annotations

import json
import os

import pytest
import torch
import transformers
from safetensors.torch import save_file

from tests.hf_oracle import MT5_VARIANTS, T5_VARIANTS, save_tiny_mt5, save_tiny_t5
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
from westron.errors import WestronError
from westron.models.auto import AutoConfig, AutoModelForSeq2SeqLM
from westron.models.t5.configuration_t5 import MT5Config, T5Config
from westron.models.t5.modeling_t5 import (
    ACT2FN,
    T5ForConditionalGeneration,
    T5LayerNorm,
    T5Model,
    relative_position_bucket,
)


class TestT5Modeling(Seq2SeqModelTesterMixin):
    model_class = T5ForConditionalGeneration
    hf_model_class = transformers.T5ForConditionalGeneration
    variants = T5_VARIANTS
    save_hf_checkpoint = staticmethod(save_tiny_t5)
    dropout_config_keys = ("dropout_rate",)
    decoder_layers_config_key = "num_decoder_layers"


class TestMT5Modeling(Seq2SeqModelTesterMixin):
    model_class = T5ForConditionalGeneration  # mT5 runs on the T5 classes with an MT5Config
    hf_model_class = transformers.MT5ForConditionalGeneration
    variants = MT5_VARIANTS
    save_hf_checkpoint = staticmethod(save_tiny_mt5)
    dropout_config_keys = ("dropout_rate",)
    decoder_layers_config_key = "num_decoder_layers"


# ---- T5's own ----------------------------------------------------------------------------------------


def folder_of(variant: str, tmp_path_factory) -> str:
    return hf_checkpoint_folder(save_tiny_t5, variant, T5_VARIANTS[variant], tmp_path_factory)


def logits(model, batch):
    with torch.no_grad():
        return model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            decoder_input_ids=batch["decoder_input_ids"],
        ).logits


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("num_buckets, max_distance", [(32, 128), (8, 6), (6, 20)])
def test_relative_position_bucket_equals_hf(bidirectional, num_buckets, max_distance):
    relative = torch.from_numpy(hf_internal("t5_relative"))  # (3, 601), every distance class
    expected = torch.from_numpy(hf_internal(f"t5_buckets_{bidirectional}_{num_buckets}_{max_distance}")).long()
    actual = relative_position_bucket(relative, bidirectional, num_buckets, max_distance)
    assert actual.dtype == torch.int64
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
    # The exact, logarithmic and saturated branches are all reached.
    assert actual.max() == num_buckets - 1 and len(actual.unique()) > num_buckets // 2 + 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_layer_norm_is_hfs_rms_norm(dtype):
    ours = T5LayerNorm(16, eps=1e-6)
    with torch.no_grad():
        ours.weight.copy_(torch.from_numpy(hf_internal("t5_norm_weight")))
    ours.to(dtype)
    x = torch.from_numpy(hf_internal("t5_norm_input")).to(dtype)  # a mean far from 0: no mean subtraction shows
    expected = torch.from_numpy(hf_internal(f"t5_norm_output_{str(dtype).split('.')[-1]}")).to(dtype)
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=0)
    assert ours(x).dtype == dtype
    assert [name for name, _ in ours.named_parameters()] == ["weight"]


@pytest.mark.parametrize("name", ["relu", "gelu_new", "silu", "gelu", "gelu_pytorch_tanh"])
def test_t5_activations_equal_hf(name):
    x = torch.linspace(-8, 8, 4001)
    torch.testing.assert_close(ACT2FN[name](x), torch.from_numpy(hf_internal(f"activation_{name}")), rtol=0, atol=0)


def test_original_t5_rescales_before_its_tied_head(tmp_path_factory):
    model = T5ForConditionalGeneration.from_pretrained(folder_of("t5-v1.0-relu-tied", tmp_path_factory))
    assert model.config.tie_word_embeddings and model.config.scale_decoder_outputs
    batch = batch_for(model.config)
    with torch.no_grad():
        hidden = model.decoder(
            batch["decoder_input_ids"],
            encoder_hidden_states=model.encode(batch["input_ids"], batch["attention_mask"]).last_hidden_state,
            encoder_attention_mask=batch["attention_mask"],
        ).last_hidden_state
    expected = hidden @ model.shared.weight.T * model.config.d_model**-0.5
    assert_float32_close(logits(model, batch), expected, CACHE_TOL)


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
    folder = folder_of(variant, tmp_path_factory)
    model = T5ForConditionalGeneration.from_pretrained(folder)
    assert (model.config.tie_word_embeddings, model.config.scale_decoder_outputs) == (tied, scaled)
    assert (model.lm_head.weight is model.shared.weight) == tied
    assert ("lm_head.weight" in model.tied_weights()) == tied
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
    reloaded = T5ForConditionalGeneration.from_pretrained(tmp_path, allow_pickle=True)
    assert reloaded.config.tie_word_embeddings and reloaded.lm_head.weight is reloaded.shared.weight
    model = T5ForConditionalGeneration.from_pretrained(folder)
    batch = batch_for(model.config)
    torch.testing.assert_close(logits(reloaded, batch), logits(model, batch), rtol=0, atol=0)


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
    model = T5ForConditionalGeneration.from_pretrained(tmp_path)
    hf_model = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert model.lm_head.weight is model.shared.weight and hf_model.lm_head.weight is hf_model.shared.weight
    batch = batch_for(model.config)
    assert_float32_close(logits(model, batch), logits(hf_model, batch), CACHE_TOL)


def test_t5_model_without_head_equals_hf(tmp_path_factory):
    folder = folder_of("flan-legacy-config-deep-encoder", tmp_path_factory)
    tensors = read_safetensors_folder(folder)
    model = T5Model(T5Config.from_pretrained(folder))
    model.load_checkpoint({n: t for n, t in tensors.items() if n != "lm_head.weight"})
    hf_model = transformers.T5Model.from_pretrained(folder).eval()
    assert model.tied_weights() == dict(hf_model.all_tied_weights_keys)
    batch = batch_for(model.config)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")}
    with torch.no_grad():
        assert_float32_close(model(**inputs).last_hidden_state, hf_model(**inputs).last_hidden_state, CACHE_TOL)


def test_decode_with_tensor_position_and_long_cache_crosses_max_distance(tmp_path_factory):
    """Past relative_attention_max_distance (6 here) the decoder's buckets saturate; a static cache
    longer than the target gives the full pass's logits at every step."""
    model = T5ForConditionalGeneration.from_pretrained(folder_of("t5-v1.0-relu-tied", tmp_path_factory))
    torch.manual_seed(1)
    source = torch.randint(2, 99, (2, 4))
    target = torch.randint(2, 99, (2, 10))
    with torch.no_grad():
        full = model(source, decoder_input_ids=target).logits
        encoded = model.encode(source).last_hidden_state
        cache = model.init_cache(encoded, max_length=16)
        for position in range(10):
            step, cache, _ = model.decode(target[:, position : position + 1], None, None, cache, torch.tensor(position))
            assert_float32_close(step, full[:, position : position + 1], CACHE_TOL)


# ---- the config --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "feed_forward_proj, act, gated",
    [("relu", "relu", False), ("gated-gelu", "gelu_new", True), ("gated-gelu_new", "gelu_new", True),
     ("gated-silu", "silu", True), ("gelu", "gelu", False)],
)
def test_feed_forward_proj_parsed_as_hf(feed_forward_proj, act, gated):
    hf = transformers.T5Config(feed_forward_proj=feed_forward_proj)
    ours = T5Config(feed_forward_proj=feed_forward_proj)
    assert (ours.dense_act_fn, ours.is_gated_act) == (hf.dense_act_fn, hf.is_gated_act) == (act, gated)


@pytest.mark.parametrize("bad", ["gated-gelu-new", "ungated-relu"])
def test_bad_feed_forward_proj_is_a_clear_error(bad):
    with pytest.raises(WestronError, match=bad):
        T5Config(feed_forward_proj=bad)


@pytest.mark.parametrize(
    "config_class, hf_class", [(T5Config, transformers.T5Config), (MT5Config, transformers.MT5Config)]
)
def test_defaults_equal_hf(config_class, hf_class):
    hf = hf_class().to_dict()
    ours = config_class().to_dict()
    keys = ["vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
            "relative_attention_num_buckets", "relative_attention_max_distance", "dropout_rate",
            "layer_norm_epsilon", "initializer_factor", "feed_forward_proj", "dense_act_fn", "is_gated_act",
            "pad_token_id", "eos_token_id", "is_encoder_decoder", "use_cache", "model_type"]
    assert {k: ours[k] for k in keys} == {k: hf[k] for k in keys}
    assert ours["decoder_start_token_id"] == 0
    assert ours["scale_decoder_outputs"] == hf.get("scale_decoder_outputs", False)  # HF's MT5 never rescales
    assert T5Config(num_layers=3).num_decoder_layers == 3


@pytest.mark.parametrize(
    "settings", [{}, {"tie_word_embeddings": False}, {"tie_word_embeddings": True, "scale_decoder_outputs": False},
                 {"tie_word_embeddings": False, "scale_decoder_outputs": True}]
)
def test_scale_decoder_outputs_resolved_as_hf(settings):
    hf = transformers.T5Config.from_dict(dict(settings))
    assert T5Config.from_dict(dict(settings)).scale_decoder_outputs == hf.scale_decoder_outputs
    assert MT5Config.from_dict(dict(settings)).scale_decoder_outputs is False


def test_config_round_trip_keeps_hf_keys_and_aliases(tmp_path):
    config = T5Config(d_model=24, num_heads=3, task_specific_params={"translation_en_to_de": {"prefix": "x: "}})
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers, config.head_dim) == (24, 3, 6, 64)
    config.save_pretrained(tmp_path)
    reloaded = T5Config.from_pretrained(tmp_path)
    assert reloaded == config and reloaded.task_specific_params["translation_en_to_de"]["prefix"] == "x: "
    hf = transformers.T5Config.from_pretrained(tmp_path)
    assert (hf.d_model, hf.num_heads, hf.task_specific_params) == (24, 3, config.task_specific_params)


def test_mt5_folders_load_through_t5_and_auto(tmp_path):
    folder = save_tiny_mt5(tmp_path / "mt5", **MT5_VARIANTS["mt5-untied"])
    config = T5Config.from_pretrained(folder)
    assert type(config) is MT5Config and config.model_type == "mt5"
    assert type(AutoConfig.from_pretrained(folder)) is MT5Config
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    assert type(model) is T5ForConditionalGeneration and model.config.model_type == "mt5"
    model.save_pretrained(tmp_path / "ours")
    with open(tmp_path / "ours" / "config.json") as handle:
        assert json.load(handle)["model_type"] == "mt5"


def test_fresh_model_is_initialised_like_hf():
    """A model built from a config (training from scratch): HF's init scheme, tied as configured."""
    config = T5Config(vocab_size=300, d_model=64, d_kv=16, d_ff=128, num_layers=1, num_heads=4,
                      feed_forward_proj="gated-gelu", initializer_factor=1.0)
    torch.manual_seed(0)
    model = T5ForConditionalGeneration(config)
    shared = model.shared.weight
    assert model.lm_head.weight is shared and model.encoder.embed_tokens.weight is shared
    assert abs(shared.std().item() - 1.0) < 0.05
    attention = model.encoder.block[0].layer[0].SelfAttention
    assert abs(attention.q.weight.std().item() - (64 * 16) ** -0.5) < 0.01
    assert abs(attention.relative_attention_bias.weight.std().item() - 64**-0.5) < 0.05
    ff = model.decoder.block[0].layer[2].DenseReluDense
    assert abs(ff.wo.weight.std().item() - 128**-0.5) < 0.01
    assert torch.equal(model.encoder.final_layer_norm.weight, torch.ones(64))
    untied = T5ForConditionalGeneration(T5Config(**{**config.to_dict(), "tie_word_embeddings": False}))
    assert untied.lm_head.weight is not untied.shared.weight and abs(untied.lm_head.weight.std().item() - 1.0) < 0.05


@pytest.mark.parametrize("variant", ["t5-v1.0-relu-tied", "t5-v1.1-gated-gelu-untied"])
def test_training_dropout_is_hfs_under_the_same_seed(variant, tmp_path_factory):
    """Dropout where HF has it, in HF's order: with the same seed, train-mode logits and loss equal
    HF's (explicit attention on both sides, so the attention-weight dropout draws the same numbers)."""
    folder = folder_of(variant, tmp_path_factory)
    model = T5ForConditionalGeneration.from_pretrained(folder, dropout_rate=0.2).train()
    hf_model = transformers.T5ForConditionalGeneration.from_pretrained(
        folder, dropout_rate=0.2, attn_implementation="eager"
    ).train()
    batch = batch_for(model.config)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
    torch.manual_seed(3)
    expected = hf_model(**inputs, output_attentions=True)
    torch.manual_seed(3)
    actual = model(**inputs, output_attentions=True)
    assert_float32_close(actual.logits, expected.logits, CACHE_TOL)
    assert_float32_close(actual.loss, expected.loss, CACHE_TOL)
    torch.manual_seed(4)
    assert not torch.allclose(model(**inputs, output_attentions=True).logits, actual.logits)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_equals_hf(num_beams, tmp_path_factory):
    """encode / init_cache / decode / reorder_cache through westron.generation: HF's ids, greedy and beam."""
    folder = folder_of("t5-v1.1-gated-gelu-untied", tmp_path_factory)
    model = T5ForConditionalGeneration.from_pretrained(folder)
    hf_model = transformers.T5ForConditionalGeneration.from_pretrained(folder).eval()
    batch = batch_for(model.config)
    settings = dict(max_new_tokens=8, num_beams=num_beams)
    expected = hf_model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], **settings)
    actual = model.generate(batch["input_ids"], batch["attention_mask"], **settings)
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)
