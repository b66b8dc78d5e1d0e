"""Tokenizer calls HF 4.x translation code makes, with HF's tokenizers as the oracle.

`tokenizer.encode(text, return_tensors="pt")` (T5's docs feed it straight to generate) gives HF's
(1, length) tensor; HF's other `__call__` options are accepted at their neutral value and refused
by name otherwise, never a TypeError and never silently ignored. `add_tokens` /
`add_special_tokens` (before `model.resize_token_embeddings(len(tokenizer))`) give HF's ids and
decoded texts in every family.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers

from tests.hf_oracle import save_tiny_marian
from tests.spm_fixtures import write_m2m100_folder, write_marian_folder, write_nllb_folder, write_t5_folder
from westron import AutoModelForSeq2SeqLM, TFAutoModelForSeq2SeqLM
from westron.errors import WestronError
from westron.models.m2m_100.tokenization_m2m_100 import M2M100Tokenizer
from westron.models.m2m_100.tokenization_nllb import NllbTokenizer
from westron.models.marian.tokenization_marian import MarianTokenizer
from westron.models.t5.tokenization_t5 import T5Tokenizer

TEXTS = ["The road goes ever on.", "Speak, friend, and enter. Not all those who wander are lost."]


@pytest.fixture(scope="module", params=["marian", "t5"])
def tokenizers(request, tmp_path_factory):
    """(Westron's tokenizer, HF's) for one folder."""
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "marian":
        folder = write_marian_folder(folder)
        return MarianTokenizer.from_pretrained(folder), transformers.MarianTokenizer.from_pretrained(folder)
    folder = write_t5_folder(folder)
    return T5Tokenizer.from_pretrained(folder), transformers.T5Tokenizer.from_pretrained(folder)


@pytest.mark.parametrize(
    "options",
    [
        dict(return_tensors="pt"),
        dict(return_tensors="np"),
        dict(return_tensors="pt", padding="max_length", max_length=48),
        dict(return_tensors="pt", truncation=True, max_length=5),
        dict(add_special_tokens=False),
    ],
)
def test_encode_takes_hf_options(tokenizers, options):
    tokenizer, hf_tokenizer = tokenizers
    expected = hf_tokenizer.encode(TEXTS[1], **options)
    actual = tokenizer.encode(TEXTS[1], **options)
    assert type(actual) is type(expected)
    assert np.asarray(actual).tolist() == np.asarray(expected).tolist()


def test_encode_return_tensors_tf_is_one_row(tokenizers):
    tokenizer, hf_tokenizer = tokenizers
    ids = tokenizer.encode(TEXTS[0], return_tensors="tf")
    assert isinstance(ids, tf.Tensor) and ids.numpy().tolist() == [hf_tokenizer.encode(TEXTS[0])]


def test_hf_call_options_at_their_neutral_value_change_nothing(tokenizers):
    tokenizer, hf_tokenizer = tokenizers
    neutral = dict(
        return_token_type_ids=False,
        return_length=False,
        return_special_tokens_mask=False,
        return_offsets_mapping=False,
        return_overflowing_tokens=False,
        is_split_into_words=False,
        stride=0,
    )
    expected = hf_tokenizer(TEXTS, padding=True, return_tensors="pt", **neutral)
    actual = tokenizer(TEXTS, padding=True, return_tensors="pt", **neutral)
    assert sorted(actual) == sorted(expected)
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(return_length=True), "tokenizer option.s. not supported by Westron: return_length=True"),
        (dict(return_special_tokens_mask=True, stride=2), "return_special_tokens_mask=True, stride=2"),
        (dict(return_tensor="pt"), r"unexpected tokenizer argument\(s\): return_tensor"),
    ],
)
def test_other_hf_call_options_are_refused_by_name(tokenizers, options, message):
    tokenizer, _ = tokenizers
    with pytest.raises(WestronError, match=message):
        tokenizer(TEXTS, **options)
    with pytest.raises(WestronError, match=message):
        tokenizer.encode(TEXTS[0], **options)


# ---- add_tokens / add_special_tokens ---------------------------------------------------------------

FAMILIES = {
    "marian": (write_marian_folder, MarianTokenizer, "MarianTokenizer"),
    "t5": (write_t5_folder, T5Tokenizer, "T5Tokenizer"),
    "nllb": (write_nllb_folder, NllbTokenizer, "NllbTokenizer"),
    "m2m100": (write_m2m100_folder, M2M100Tokenizer, "M2M100Tokenizer"),
}
ADDED_TEXTS = ["a newword <new1> b", "newword", "x<new1>y newwords", "Hello <x> world <2fr>", "<x>"]


def add_and_encode(tokenizer, special: bool) -> list:
    """What HF 4.x fine-tuning code does before resize_token_embeddings: counts, ids and decoded texts."""
    results = [
        tokenizer.add_tokens(["<new1>", "newword"], special_tokens=special),
        tokenizer.add_tokens("newword", special_tokens=special),  # already there: nothing new
        tokenizer.add_special_tokens({"additional_special_tokens": ["<x>", "<2fr>"]}),
        len(tokenizer),
    ]
    for text in ADDED_TEXTS:
        ids = tokenizer(text)["input_ids"]
        results.append((ids, tokenizer.decode(ids), tokenizer.decode(ids, skip_special_tokens=True)))
    return results


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("special", [False, True], ids=["plain", "special"])
def test_added_tokens_as_in_hf(family, special, tmp_path):
    write, westron_class, hf_name = FAMILIES[family]
    folder = write(tmp_path / "tokenizer")
    tokenizer = westron_class.from_pretrained(folder)
    expected = add_and_encode(getattr(transformers, hf_name).from_pretrained(folder), special)
    assert add_and_encode(tokenizer, special) == expected
    assert tokenizer.additional_special_tokens[-2:] == ["<x>", "<2fr>"]
    tokenizer.save_pretrained(tmp_path / "saved")  # the added tokens travel with the folder, for HF too
    for reloaded in (westron_class.from_pretrained(tmp_path / "saved"), getattr(transformers, hf_name).from_pretrained(tmp_path / "saved")):
        assert len(reloaded) == expected[3]
        assert reloaded(ADDED_TEXTS[0])["input_ids"] == expected[4][0]


def test_added_tokens_then_resized_embeddings_translate_in_both_frameworks(tmp_path):
    folder = write_marian_folder(tmp_path / "opus-mt")
    tokenizer = MarianTokenizer.from_pretrained(folder)
    save_tiny_marian(folder, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, decoder_start_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    assert tokenizer.add_special_tokens({"additional_special_tokens": [">>tgt<<"]}) == 1
    for auto, tensors in ((AutoModelForSeq2SeqLM, "pt"), (TFAutoModelForSeq2SeqLM, "tf")):
        model = auto.from_pretrained(folder)
        model.resize_token_embeddings(len(tokenizer))
        batch = tokenizer([">>tgt<< Speak, friend."], return_tensors=tensors)
        assert int(np.asarray(batch["input_ids"])[0, 0]) == len(tokenizer) - 1
        fast = {"eager": True} if tensors == "tf" else {}  # TensorFlow's step-by-step search: no compiling
        assert np.asarray(model.generate(**batch, max_new_tokens=3, **fast)).shape[0] == 1


def test_add_special_tokens_refuses_what_it_cannot_take(tokenizers):
    tokenizer, _ = tokenizers
    with pytest.raises(WestronError, match="unknown key.s. sep_tokn"):
        tokenizer.add_special_tokens({"sep_tokn": "<sep>"})
    with pytest.raises(WestronError, match="additional_special_tokens must be a list"):
        tokenizer.add_special_tokens({"additional_special_tokens": "<x>"})
    with pytest.raises(WestronError, match="non-empty strings or AddedTokens"):
        tokenizer.add_tokens([""])


def assert_same_encoding(actual, expected) -> None:
    assert sorted(actual) == sorted(expected)
    for key in expected:
        assert np.asarray(actual[key]).tolist() == np.asarray(expected[key]).tolist(), key


def test_hf4_encode_plus_batch_encode_plus_and_prepare_seq2seq_batch(tokenizers):
    """HF 4.x's older spellings (HF 5 dropped them, so HF's __call__ is the oracle)."""
    tokenizer, hf_tokenizer = tokenizers
    assert_same_encoding(tokenizer.encode_plus(TEXTS[0], return_tensors="pt"), hf_tokenizer(TEXTS[0], return_tensors="pt"))
    assert_same_encoding(
        tokenizer.batch_encode_plus(TEXTS, padding=True, return_tensors="np"), hf_tokenizer(TEXTS, padding=True, return_tensors="np")
    )
    with pytest.warns(FutureWarning, match="prepare_seq2seq_batch.. is deprecated"):
        batch = tokenizer.prepare_seq2seq_batch(TEXTS, TEXTS[::-1], max_target_length=6, return_tensors="pt")
    expected = hf_tokenizer(TEXTS, padding="longest", truncation=True, return_tensors="pt")
    expected["labels"] = hf_tokenizer(text_target=TEXTS[::-1], padding="longest", truncation=True, max_length=6, return_tensors="pt")["input_ids"]
    assert_same_encoding(batch, expected)
    with pytest.raises(WestronError, match="use batch_encode_plus for a list"):
        tokenizer.encode_plus(TEXTS)
    with pytest.raises(WestronError, match="batch_encode_plus takes a list of texts"):
        tokenizer.batch_encode_plus(TEXTS[0])
