"""The base models (MarianModel, T5Model, M2M100Model and their TF twins) and AutoModel / TFAutoModel,
against Hugging Face's base classes: an LM checkpoint loads into the base model (the `model.` prefix
stripped, the head left out) and a base checkpoint into the LM, as HF does; every output field that
attention tools (bertviz) read equals HF's."""

from __future__ import annotations

import pytest
import torch
import transformers

import westron
from tests.hf_oracle import save_tiny_m2m100, save_tiny_marian, save_tiny_t5
from tests.test_modeling_common import LOGITS_TOL, OUTPUT_FIELDS, assert_outputs_close, batch_for
from westron.errors import CheckpointError

BASE_FIELDS = ("last_hidden_state",) + OUTPUT_FIELDS

# name: (save an HF LM folder, overrides, HF base class, Westron PT base, Westron TF base)
FAMILIES = {
    "marian": (save_tiny_marian, {}, transformers.MarianModel, "MarianModel"),
    "marian-separate-vocab": (
        save_tiny_marian,
        dict(share_encoder_decoder_embeddings=False, decoder_vocab_size=89, pad_token_id=88, decoder_start_token_id=88),
        transformers.MarianModel,
        "MarianModel",
    ),
    "t5": (save_tiny_t5, {}, transformers.T5Model, "T5Model"),
    "m2m_100": (save_tiny_m2m100, {}, transformers.M2M100Model, "M2M100Model"),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request, tmp_path_factory):
    save, overrides, hf_base, base_name = FAMILIES[request.param]
    folder = save(tmp_path_factory.mktemp(request.param), **overrides)
    return folder, hf_base, base_name


def model_inputs(config) -> dict[str, torch.Tensor]:
    batch = batch_for(config)
    return {key: batch[key] for key in ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")}


def run(model, inputs, framework="pt"):
    options = dict(output_attentions=True, output_hidden_states=True)
    if framework == "tf":
        return model(**{key: value.numpy() for key, value in inputs.items()}, **options)
    with torch.no_grad():
        return model(**inputs, **options)


def test_automodel_loads_an_lm_checkpoint_as_hf_does(family):
    folder, hf_base, base_name = family
    hf_model = hf_base.from_pretrained(folder, attn_implementation="eager").eval()
    pt_model = westron.AutoModel.from_pretrained(folder)
    tf_model = westron.TFAutoModel.from_pretrained(folder)
    assert type(pt_model).__name__ == base_name and type(tf_model).__name__ == "TF" + base_name
    assert type(pt_model) is getattr(westron, base_name) and type(tf_model) is getattr(westron, "TF" + base_name)
    assert not any(name.startswith(("model.", "lm_head")) for name in pt_model.state_dict())
    inputs = model_inputs(pt_model.config)
    expected = run(hf_model, inputs)
    assert len(expected.cross_attentions) == 2 and len(expected.encoder_hidden_states) == 3
    assert_outputs_close(expected, run(pt_model, inputs), fields=BASE_FIELDS)
    assert_outputs_close(expected, run(tf_model, inputs, "tf"), fields=BASE_FIELDS)


def test_base_checkpoint_loads_into_the_lm_and_the_base_model(family, tmp_path):
    """HF's XModel.save_pretrained folder (no prefix, no head) -> our LM and base model, both frameworks."""
    folder, hf_base, base_name = family
    hf_base.from_pretrained(folder).save_pretrained(tmp_path)
    hf_lm = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path).eval()
    config = westron.AutoConfig.from_pretrained(tmp_path)
    inputs = model_inputs(config)
    if not getattr(config, "share_encoder_decoder_embeddings", True):
        # Marian with two vocabularies: the head is the decoder's embeddings, tied; still loads.
        assert config.tie_word_embeddings
    for model, framework in (
        (westron.AutoModelForSeq2SeqLM.from_pretrained(tmp_path), "pt"),
        (westron.TFAutoModelForSeq2SeqLM.from_pretrained(tmp_path), "tf"),
    ):
        assert_outputs_close(run(hf_lm, inputs), run(model, inputs, framework), fields=("logits",))
    expected = run(hf_base.from_pretrained(tmp_path, attn_implementation="eager").eval(), inputs)
    assert_outputs_close(expected, run(getattr(westron, base_name).from_pretrained(tmp_path), inputs), BASE_FIELDS)
    tf_base = getattr(westron, "TF" + base_name).from_pretrained(tmp_path)
    assert_outputs_close(expected, run(tf_base, inputs, "tf"), BASE_FIELDS)


def test_base_model_saves_what_hf_loads(family, tmp_path):
    folder, hf_base, base_name = family
    models = {"pt": westron.AutoModel.from_pretrained(folder), "tf": westron.TFAutoModel.from_pretrained(folder)}
    for framework, model in models.items():
        model.save_pretrained(tmp_path / framework)
        hf_model = hf_base.from_pretrained(tmp_path / framework, attn_implementation="eager").eval()
        inputs = model_inputs(hf_model.config)
        assert_outputs_close(run(hf_model, inputs), run(model, inputs, framework), fields=BASE_FIELDS, tol=LOGITS_TOL)


def test_untied_head_missing_from_a_base_checkpoint_is_one_clear_error(tmp_path):
    """HF would initialise the head randomly with a warning; Westron says what is missing."""
    folder = save_tiny_marian(tmp_path / "lm", tie_word_embeddings=False)
    transformers.MarianModel.from_pretrained(folder).save_pretrained(tmp_path / "base")
    for model_class in (westron.MarianMTModel, westron.TFMarianMTModel):
        with pytest.raises(CheckpointError, match=r"missing: lm_head\.weight$"):
            model_class.from_pretrained(tmp_path / "base")


def test_a_base_model_still_rejects_unknown_tensors(tmp_path):
    from safetensors.torch import load_file, save_file

    folder = save_tiny_m2m100(tmp_path)
    tensors = load_file(f"{folder}/model.safetensors")
    tensors["model.encoder.extra.weight"] = torch.zeros(2)
    save_file(tensors, f"{folder}/model.safetensors")
    for model_class in (westron.M2M100Model, westron.TFM2M100Model):
        with pytest.raises(CheckpointError, match=r"unexpected: encoder\.extra\.weight"):
            model_class.from_pretrained(folder)
