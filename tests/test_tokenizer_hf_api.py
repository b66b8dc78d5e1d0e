"""Tokenizer calls HF 4.x translation code makes, with HF's tokenizers as the oracle (Marian and T5).

`tokenizer.encode(text, return_tensors="pt")` (T5's docs feed it straight to generate) gives HF's
(1, length) tensor; HF's other `__call__` options are accepted at their neutral value and refused
by name otherwise, never a TypeError and never silently ignored.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers

from tests.spm_fixtures import write_marian_folder, write_t5_folder
from westron.errors import WestronError
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
