"""The training-side API of Hugging Face 4.x fine-tuning scripts, against HF transformers itself:
DataCollatorForSeq2Seq, the embedding accessors, resize_token_embeddings (PyTorch and TensorFlow),
train() / eval(), as_target_tokenizer(), and run_translation_no_trainer.py's set-up and evaluation
loop with only the imports changed."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers

import westron
from tests.hf_oracle import random_batch, save_tiny_m2m100, save_tiny_marian, save_tiny_t5
from tests.test_modeling_common import CACHE_TOL, LOGITS_TOL, assert_float32_close, read_safetensors_folder
from westron.demo import build_demo_checkpoint
from westron.errors import WestronError

SOURCES = ["Speak, friend, and enter.", "Not all those who wander are lost.", "The road goes ever on"]
TARGETS = ["Sprich, Freund, und tritt ein.", "Nicht alle, die wandern, sind verloren.", "Die Straße"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny opus-mt folder: Marian tokenizer files and random weights."""
    return build_demo_checkpoint(str(tmp_path_factory.mktemp("tiny-opus-mt")))


@pytest.fixture(scope="module")
def tokenizers(checkpoint):
    return westron.AutoTokenizer.from_pretrained(checkpoint), transformers.AutoTokenizer.from_pretrained(checkpoint)


def features(tokenizer, **options):
    return [tokenizer(s, text_target=t, **options) for s, t in zip(SOURCES, TARGETS)]


def as_arrays(batch) -> dict[str, np.ndarray]:
    return {key: None if value is None else np.asarray(value) for key, value in batch.items()}


def assert_same_batch(ours, theirs) -> None:
    ours, theirs = as_arrays(ours), as_arrays(theirs)
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        if theirs[key] is None:
            assert ours[key] is None, key
        else:
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


# ---- DataCollatorForSeq2Seq ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{}, {"pad_to_multiple_of": 8}, {"padding": "max_length", "max_length": 64}, {"label_pad_token_id": 7}],
    ids=["longest", "multiple-of-8", "max-length", "label-pad-7"],
)
def test_collator_batches_equal_hf(tokenizers, checkpoint, settings):
    ours_tok, hf_tok = tokenizers
    model = westron.MarianMTModel.from_pretrained(checkpoint)
    hf_model = transformers.MarianMTModel.from_pretrained(checkpoint)
    ours = westron.DataCollatorForSeq2Seq(ours_tok, model=model, **settings)(features(ours_tok))
    theirs = transformers.DataCollatorForSeq2Seq(hf_tok, model=hf_model, **settings)(features(hf_tok))
    assert_same_batch(ours, theirs)
    labels = ours["labels"]
    assert labels.dtype == torch.int64 and (labels == settings.get("label_pad_token_id", -100)).any()
    assert ours["decoder_input_ids"][:, 0].eq(model.config.decoder_start_token_id).all()


def test_collator_left_padding_without_model_and_without_labels(tokenizers):
    ours_tok, hf_tok = tokenizers
    ours_tok.padding_side = hf_tok.padding_side = "left"
    try:
        ours = westron.DataCollatorForSeq2Seq(ours_tok)(features(ours_tok))
        theirs = transformers.DataCollatorForSeq2Seq(hf_tok)(features(hf_tok))
        assert_same_batch(ours, theirs)
        assert "decoder_input_ids" not in ours and ours["labels"][0, 0] == -100  # a shorter row, padded left
        plain = [ours_tok(s) for s in SOURCES]
        assert_same_batch(westron.DataCollatorForSeq2Seq(ours_tok)(plain), transformers.DataCollatorForSeq2Seq(hf_tok)(
            [hf_tok(s) for s in SOURCES]
        ))
    finally:
        ours_tok.padding_side = hf_tok.padding_side = "right"


@pytest.mark.parametrize("family", ["marian", "t5", "m2m_100"])
def test_collator_decoder_inputs_from_every_family_both_frameworks(tokenizers, family, tmp_path):
    """decoder_input_ids = the model's own shift of the padded labels, equal to HF's, in PT and TF."""
    ours_tok, hf_tok = tokenizers
    save = {"marian": save_tiny_marian, "t5": save_tiny_t5, "m2m_100": save_tiny_m2m100}[family]
    folder = save(tmp_path)
    hf_model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder)
    pt_model = westron.AutoModelForSeq2SeqLM.from_pretrained(folder)
    tf_model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(folder)
    # Sources of one length: the demo tokenizer's pad id lies outside these tiny models' vocabularies.
    rows = [{"input_ids": [5, 6, 2], "labels": [7, 2]}, {"input_ids": [5, 8, 2], "labels": [7, 8, 9, 2]}]
    theirs = transformers.DataCollatorForSeq2Seq(hf_tok, model=hf_model)(rows)
    if "decoder_input_ids" not in theirs:  # HF's M2M100 lacks the method: its own shift, as forward(labels=) does
        theirs["decoder_input_ids"] = hf_shift_tokens_right(family, theirs["labels"], hf_model.config)
    ours = westron.DataCollatorForSeq2Seq(ours_tok, model=pt_model)(rows)
    assert_same_batch(ours, theirs)
    assert ours["labels"][0].tolist() == [7, 2, -100, -100]
    tf_batch = westron.DataCollatorForSeq2Seq(ours_tok, model=tf_model, return_tensors="tf")(rows)
    assert all(isinstance(value, tf.Tensor) for value in tf_batch.values())
    assert_same_batch(tf_batch, theirs)
    loss_tf = float(tf_model(**tf_batch).loss)
    with torch.no_grad():
        loss_hf = float(hf_model(**theirs).loss)
    assert_float32_close(loss_tf, loss_hf, LOGITS_TOL)


def hf_shift_tokens_right(family, labels, config):
    shift = importlib.import_module(f"transformers.models.{family}.modeling_{family}").shift_tokens_right
    return shift(labels, config.pad_token_id, config.decoder_start_token_id)


def test_collator_numpy_and_bad_input(tokenizers):
    ours_tok, _ = tokenizers
    batch = westron.DataCollatorForSeq2Seq(ours_tok, return_tensors="np")(features(ours_tok))
    assert isinstance(batch["labels"], np.ndarray) and batch["labels"].dtype == np.int64
    with pytest.raises(ValueError, match="return_tensors must be"):
        westron.DataCollatorForSeq2Seq(ours_tok, return_tensors="jax")
    with pytest.raises(ValueError, match="empty list"):
        westron.DataCollatorForSeq2Seq(ours_tok)([])
    with pytest.raises(ValueError, match="different lengths"):
        westron.DataCollatorForSeq2Seq(ours_tok, padding=False)(features(ours_tok))


# ---- as_target_tokenizer ----------------------------------------------------------------------------


def test_as_target_tokenizer_warns_and_tokenizes_targets(tokenizers):
    ours_tok, _ = tokenizers
    with pytest.warns(FutureWarning, match="text_target"):
        with ours_tok.as_target_tokenizer():
            labels = ours_tok(TARGETS, max_length=16, truncation=True)
    assert labels["input_ids"] == ours_tok(text_target=TARGETS, max_length=16, truncation=True)["input_ids"]
    assert "labels" in ours_tok(SOURCES[0], text_target=TARGETS[0])  # outside the block, text is the source again
    with pytest.warns(FutureWarning), ours_tok.as_target_tokenizer():
        with pytest.raises(ValueError, match="as_target_tokenizer"):
            ours_tok(SOURCES, text_target=TARGETS)


def test_as_target_tokenizer_gives_m2m100_the_target_language(tmp_path):
    """Where sources and targets are encoded differently (M2M100's language codes), the block is the target."""
    from tests.spm_fixtures import write_m2m100_folder

    tokenizer = westron.M2M100Tokenizer.from_pretrained(write_m2m100_folder(tmp_path), src_lang="en", tgt_lang="fr")
    with pytest.warns(FutureWarning), tokenizer.as_target_tokenizer():
        labels = tokenizer(TARGETS)["input_ids"]
    assert labels == tokenizer(text_target=TARGETS)["input_ids"] != tokenizer(TARGETS)["input_ids"]
    assert labels[0][0] == tokenizer.get_lang_id("fr")


# ---- embeddings, resize_token_embeddings, train / eval ---------------------------------------------

FAMILIES = {
    "marian": (save_tiny_marian, {}),
    "marian-separate-vocab": (
        save_tiny_marian,
        dict(share_encoder_decoder_embeddings=False, decoder_vocab_size=89, pad_token_id=88, decoder_start_token_id=88),
    ),
    "t5-untied-head": (save_tiny_t5, {}),
    "m2m_100": (save_tiny_m2m100, {}),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def resize_folder(request, tmp_path_factory):
    save, overrides = FAMILIES[request.param]
    return save(tmp_path_factory.mktemp(request.param), **overrides)


def test_embedding_accessors_match_hf(resize_folder):
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    ours = westron.AutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    tf_model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    torch.testing.assert_close(ours.get_input_embeddings().weight, hf.get_input_embeddings().weight)
    torch.testing.assert_close(ours.get_output_embeddings().weight, hf.get_output_embeddings().weight)
    np.testing.assert_array_equal(
        tf_model.get_input_embeddings().embeddings.numpy(), hf.get_input_embeddings().weight.detach().numpy()
    )
    head = tf_model.get_output_embeddings()
    head_matrix = head.embeddings.numpy() if isinstance(head, tf.keras.layers.Embedding) else head.kernel.numpy().T
    np.testing.assert_array_equal(head_matrix, hf.get_output_embeddings().weight.detach().numpy())
    base = westron.AutoModel.from_pretrained(resize_folder)
    assert base.get_output_embeddings() is None
    assert torch.equal(base.get_input_embeddings().weight, ours.get_input_embeddings().weight)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_get_encoder_runs_the_encoder_as_in_hf(resize_folder, framework):
    """model.get_encoder() (an AttributeError before): its output equals HF's and feeds encoder_outputs=."""
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(resize_folder).eval()
    auto = westron.AutoModelForSeq2SeqLM if framework == "pt" else westron.TFAutoModelForSeq2SeqLM
    as_tensor = torch.as_tensor if framework == "pt" else tf.constant
    ids = np.array([[5, 6, 7, 8, 2], [9, 10, 11, 2, hf.config.pad_token_id]])
    mask, decoder_ids = (ids != hf.config.pad_token_id).astype(np.int64), ids[:, :3]
    with torch.no_grad():
        want = hf.get_encoder()(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask)).last_hidden_state
    model = auto.from_pretrained(resize_folder)
    for family_model in (model, (westron.AutoModel if framework == "pt" else westron.TFAutoModel).from_pretrained(resize_folder)):
        encoded = family_model.get_encoder()(input_ids=as_tensor(ids), attention_mask=as_tensor(mask))
        assert_float32_close(encoded.last_hidden_state, want, LOGITS_TOL, type(family_model).__name__)
    encoded = model.get_encoder()(input_ids=as_tensor(ids), attention_mask=as_tensor(mask))
    inputs = dict(attention_mask=as_tensor(mask), decoder_input_ids=as_tensor(decoder_ids))
    assert_float32_close(model(encoder_outputs=encoded, **inputs).logits, model(as_tensor(ids), **inputs).logits, 1e-6, "logits")


def test_set_input_embeddings_keeps_ties_in_both_frameworks(resize_folder):
    ours = westron.AutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    tf_model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    old = ours.get_input_embeddings()
    new = torch.nn.Embedding(old.num_embeddings, old.embedding_dim, padding_idx=old.padding_idx)
    ours.set_input_embeddings(new)
    assert ours.get_input_embeddings() is new
    for name, source in ours.tied_weights().items():
        assert ours.get_parameter(name) is ours.get_parameter(source)
    tf_model.set_input_embeddings(new.weight.detach().numpy())
    np.testing.assert_array_equal(tf_model.get_input_embeddings().embeddings.numpy(), new.weight.detach().numpy())
    batch = dict(input_ids=torch.tensor([[5, 6, 2]]), decoder_input_ids=torch.tensor([[3, 4, 7]]))
    with torch.no_grad():
        expected = ours(**batch).logits
    assert_float32_close(tf_model(**{k: v.numpy() for k, v in batch.items()}).logits, expected, LOGITS_TOL)
    with pytest.raises(WestronError, match="resize_token_embeddings"):
        tf_model.set_input_embeddings(np.zeros((3, old.embedding_dim), np.float32))


def test_num_parameters_counts_as_hf_in_both_frameworks(resize_folder):
    """num_parameters(only_trainable=, exclude_embeddings=) as HF 4.x's (TF models lacked it, PyTorch the keywords)."""
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    ours = westron.AutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    tf_model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    marian = hf.config.model_type == "marian"
    for options in ({}, {"exclude_embeddings": True}):
        expected = hf.num_parameters(**options)
        if marian and not options:  # HF counts Marian's two fixed sinusoidal tables: buffers here
            expected -= 2 * hf.config.max_position_embeddings * hf.config.d_model
        assert ours.num_parameters(**options) == tf_model.num_parameters(**options) == expected, options
    assert ours.num_parameters(only_trainable=True) == ours.num_parameters()
    for model in (hf, ours):  # freezing the encoder (its embeddings too)
        model.get_encoder().requires_grad_(False)
    tf_model.get_encoder().trainable = False
    trainable = ours.num_parameters(only_trainable=True)
    assert 0 < trainable < ours.num_parameters()
    assert tf_model.num_parameters(only_trainable=True) == trainable
    if not marian:  # HF 5 counts Marian's decoder position table as trainable
        assert hf.num_parameters(only_trainable=True) == trainable


def test_tf_compile_without_a_loss_fits_on_the_models_own_loss(tmp_path):
    """HF 4.x's TF recipe: model.compile(optimizer) with no loss, then fit / evaluate on batches holding labels,
    in the inputs or apart as Keras' y (to_tf_dataset(label_cols=["labels"])). It was Keras' "No loss to compute"."""
    model = westron.TFMarianMTModel.from_pretrained(save_tiny_marian(tmp_path / "marian"))
    ids, mask = (t.numpy() for t in random_batch(98, 98, 0, batch=2, length=6))
    features = {"input_ids": ids, "attention_mask": mask}
    labels = ids[:, :4]
    expected = float(model(**features, labels=labels).loss)
    model.compile(optimizer=tf.keras.optimizers.SGD(0.5), run_eagerly=True)  # the same steps, no tracing
    labels_in_inputs = tf.data.Dataset.from_tensor_slices({**features, "labels": labels}).batch(2)
    labels_apart = tf.data.Dataset.from_tensor_slices((features, labels)).batch(2)
    assert model.evaluate(labels_in_inputs, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(labels_apart, verbose=0) == pytest.approx(expected, rel=1e-5)
    losses = model.fit(labels_apart, epochs=2, verbose=0).history["loss"]
    assert losses[0] == pytest.approx(expected, rel=1e-5) and losses[1] < losses[0]
    weighted = tf.data.Dataset.from_tensor_slices((features, labels, np.ones(2, np.float32))).batch(2)
    with pytest.raises(WestronError, match="sample weights are not supported"):
        model.fit(weighted, verbose=0)
    with pytest.raises(WestronError, match="prepare_tf_dataset is not supported: make a tf.data.Dataset"):
        model.prepare_tf_dataset(None, batch_size=2)


@pytest.mark.parametrize("new_num_tokens, multiple", [(117, None), (90, None), (101, 8)])
def test_resize_token_embeddings_matches_hf_in_both_frameworks(resize_folder, new_num_tokens, multiple, tmp_path):
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(resize_folder).eval()
    ours = westron.AutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    tf_model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    tied_before = ours.tied_weights()
    if new_num_tokens <= ours.config.pad_token_id:  # HF fails with an AssertionError here
        for model in (ours, tf_model):
            with pytest.raises(WestronError, match="would drop the pad token"):
                model.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=multiple)
        return
    results = [model.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=multiple) for model in (hf, ours)]
    tf_model.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=multiple)
    size = results[0].weight.shape[0]
    assert results[1].weight.shape[0] == size == ours.config.vocab_size == tf_model.config.vocab_size
    assert ours.tied_weights() == tied_before
    for name, source in tied_before.items():  # tied weights are still one tensor
        assert ours.get_parameter(name) is ours.get_parameter(source)
    hf_state = {k: v for k, v in hf.state_dict().items() if "embed_positions" not in k}
    if multiple and getattr(hf.config, "share_encoder_decoder_embeddings", False):
        # HF's Marian pads its bias to new_num_tokens, not to the padded size (its forward then fails); ours
        # follows the head. The bias is zeros for added tokens either way.
        bias = hf_state["final_logits_bias"]
        hf_state["final_logits_bias"] = torch.cat([bias, bias.new_zeros(1, size - bias.shape[1])], dim=1)
        hf.final_logits_bias = hf_state["final_logits_bias"]
    ours_state = ours.state_dict()
    assert {k: tuple(v.shape) for k, v in ours_state.items()} == {k: tuple(v.shape) for k, v in hf_state.items()}
    for name, tensor in ours_state.items():
        assert_resized_close(tensor, hf_state[name], name)
    tf_shapes = tf_model.checkpoint_shapes()
    assert {k: tuple(v.shape) for k, v in ours_state.items() if k not in tied_before} == tf_shapes
    batch = dict(input_ids=torch.tensor([[size - 1, 5, 6, 2]]), decoder_input_ids=torch.tensor([[3, 4, 7, 8]]))
    with torch.no_grad():
        expected, actual = hf(**batch).logits, ours(**batch).logits
    assert_float32_close(actual, expected, RESIZED_TOL)
    assert_float32_close(tf_model(**{k: v.numpy() for k, v in batch.items()}).logits, actual, LOGITS_TOL)
    tf_model.save_pretrained(tmp_path / "tf")  # the resized TF model saves a folder HF loads as it is
    saved = read_safetensors_folder(tmp_path / "tf")
    for name, tensor in saved.items():
        assert_float32_close(tensor, ours_state[name], CACHE_TOL, msg=name)
    assert transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "tf").config.vocab_size == size


# HF draws each added row from N(mean, 1e-9 * covariance); ours is the mean. With T5's unit-variance
# embeddings that is a few 1e-5 per entry, so added rows (and logits through them) get a looser bound.
RESIZED_TOL = 1e-3
TINY_VOCAB_SIZE = 99


def assert_resized_close(actual, expected, name):
    rows = TINY_VOCAB_SIZE  # every tiny oracle config's vocab_size: the rows resizing kept
    if actual.ndim != 2 or actual.shape[0] <= rows:
        assert_float32_close(actual, expected, CACHE_TOL, msg=name)
        return
    assert_float32_close(actual[:rows], expected[:rows], CACHE_TOL, msg=name + " (kept rows)")
    assert_float32_close(actual[rows:], expected[rows:], RESIZED_TOL, msg=name + " (added rows)")


def test_resize_bad_input_and_mean_resizing_off(resize_folder):
    ours = westron.AutoModelForSeq2SeqLM.from_pretrained(resize_folder)
    assert ours.resize_token_embeddings() is ours.get_input_embeddings()  # nothing asked: nothing changes
    for bad in (0, -3, 2.5, True):
        with pytest.raises(WestronError, match="new_num_tokens must be a positive int"):
            ours.resize_token_embeddings(bad)
    with pytest.raises(WestronError, match="pad_to_multiple_of"):
        ours.resize_token_embeddings(120, pad_to_multiple_of=0)
    old = ours.get_input_embeddings().weight.detach().clone()
    new = ours.resize_token_embeddings(old.shape[0] + 50, mean_resizing=False).weight.detach()
    torch.testing.assert_close(new[: old.shape[0]], old, rtol=0, atol=0)
    assert new[old.shape[0]:].std() > 1e-3  # random rows, not the mean


def test_train_and_eval_switch_dropout_as_in_hf(tmp_path):
    folder = save_tiny_marian(tmp_path, dropout=0.5)
    model = westron.MarianMTModel.from_pretrained(folder)
    assert not model.training  # from_pretrained returns an eval-mode model, as HF's
    batch = dict(input_ids=torch.tensor([[5, 6, 7, 0]]), decoder_input_ids=torch.tensor([[98, 5, 6, 7]]))
    with torch.no_grad():
        first, second = model(**batch).logits, model(**batch).logits
        assert torch.equal(first, second)
        assert model.train() is model and model.training and all(m.training for m in model.modules())
        assert not torch.equal(model(**batch).logits, first)
        assert model.eval() is model and not any(m.training for m in model.modules())
        assert torch.equal(model(**batch).logits, first)


# ---- run_translation_no_trainer.py, imports changed ---------------------------------------------------


def run_translation_no_trainer(library, checkpoint, framework_tensors="pt"):
    """The set-up and evaluation loop of HF's examples/pytorch/translation/run_translation_no_trainer.py
    (datasets replaced by a list, accelerate by plain torch), written against `library`."""
    from torch.utils.data import DataLoader

    tokenizer = library.AutoTokenizer.from_pretrained(checkpoint)
    model = library.AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
    embedding_size = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > embedding_size:
        model.resize_token_embeddings(len(tokenizer))
    if model.config.decoder_start_token_id is None:
        raise ValueError("Make sure that `config.decoder_start_token_id` is correctly defined")

    def preprocess_function(examples):
        inputs = [ex["en"] for ex in examples["translation"]]
        targets = [ex["de"] for ex in examples["translation"]]
        model_inputs = tokenizer(inputs, max_length=32, padding=False, truncation=True)
        labels = tokenizer(text_target=targets, max_length=32, padding=False, truncation=True)
        model_inputs["labels"] = labels["input_ids"]
        return model_inputs

    raw = {"translation": [{"en": s, "de": t} for s, t in zip(SOURCES, TARGETS)]}
    processed = preprocess_function(raw)
    dataset = [{key: processed[key][i] for key in processed} for i in range(len(SOURCES))]
    label_pad_token_id = -100
    data_collator = library.DataCollatorForSeq2Seq(
        tokenizer, model=model, label_pad_token_id=label_pad_token_id, pad_to_multiple_of=None
    )
    eval_dataloader = DataLoader(dataset, collate_fn=data_collator, batch_size=2)

    model.eval()
    losses, decoded_preds, decoded_labels = [], [], []
    gen_kwargs = {"max_length": 16, "num_beams": 2}
    for batch in eval_dataloader:
        with torch.no_grad():
            losses.append(float(model(**batch).loss))
            generated_tokens = model.generate(batch["input_ids"], attention_mask=batch["attention_mask"], **gen_kwargs)
        labels = batch["labels"].cpu().numpy()
        labels = np.where(labels != -100, labels, tokenizer.pad_token_id)
        decoded_preds += tokenizer.batch_decode(generated_tokens.cpu().numpy(), skip_special_tokens=True)
        decoded_labels += tokenizer.batch_decode(labels, skip_special_tokens=True)
    return losses, decoded_preds, decoded_labels


def test_run_translation_no_trainer_loop_runs_unchanged(checkpoint):
    losses, preds, labels = run_translation_no_trainer(westron, checkpoint)
    hf_losses, hf_preds, hf_labels = run_translation_no_trainer(transformers, checkpoint)
    assert_float32_close(np.array(losses), np.array(hf_losses), LOGITS_TOL)
    assert preds == hf_preds
    assert labels == hf_labels and labels[0] == TARGETS[0]  # (the tiny SentencePiece model lacks "ß")


# ---- model outputs as HF's ModelOutput ----------------------------------------------------------------


@pytest.mark.parametrize("framework", ["pt", "tf"])
@pytest.mark.parametrize("with_labels", [True, False])
def test_model_outputs_index_like_hf(checkpoint, tokenizers, framework, with_labels):
    """`loss = model(**batch)[0]`, `outputs["logits"]` and `return_dict=False` (HF 4.x loops) used to be TypeErrors."""
    theirs = tokenizers[1]
    hf_model = transformers.AutoModelForSeq2SeqLM.from_pretrained(checkpoint).eval()
    auto = westron.AutoModelForSeq2SeqLM if framework == "pt" else westron.TFAutoModelForSeq2SeqLM
    model = auto.from_pretrained(checkpoint)
    targets = {"text_target": TARGETS} if with_labels else {}
    batch = {key: value.numpy() for key, value in theirs(SOURCES, padding=True, return_tensors="pt", **targets).items()}
    if not with_labels:
        batch["decoder_input_ids"] = batch["input_ids"][:, :3]
    with torch.no_grad():
        want = hf_model(**{key: torch.as_tensor(value) for key, value in batch.items()}, use_cache=False)
    as_tensor = torch.as_tensor if framework == "pt" else tf.constant
    got = model(**{key: as_tensor(value) for key, value in batch.items()})
    assert got.keys() == [key for key in want.keys() if key != "past_key_values"]
    assert list(got) == got.keys() and ("loss" in got) == with_labels
    first = "loss" if with_labels else "logits"
    assert_float32_close(got[0], want[0], LOGITS_TOL, first)
    assert_float32_close(got[first], want[first], LOGITS_TOL, first)
    assert all(a is b for a, b in zip(got[:2], got.to_tuple()[:2])) and got.values()[1] is got.to_tuple()[1]
    with pytest.raises(KeyError):
        got["decoder_attentions"]  # not asked for: not set, as in HF
    as_tuple = model(**{key: as_tensor(value) for key, value in batch.items()}, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(got.keys())
    assert_float32_close(as_tuple[0], want[0], LOGITS_TOL, f"{first}, return_dict=False")
    assert isinstance(model(**{key: as_tensor(value) for key, value in batch.items()}, return_dict=True), type(got))
    if framework == "tf":  # HF 4.x TF, Keras style: the batch dict as the one positional input
        assert_float32_close(model({key: as_tensor(value) for key, value in batch.items()})[0], want[0], LOGITS_TOL, "model(dict)")
