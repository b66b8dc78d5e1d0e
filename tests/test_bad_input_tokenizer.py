"""Input a tokenizer cannot take gets one clear error, not a wrong answer or a library's traceback.

Lone surrogates, non-positive lengths and non-integer ids, on the Marian and T5 tokenizers (the
checks live in the shared base class, so two families with different SentencePiece paths suffice).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.spm_fixtures import write_marian_folder, write_t5_folder
from westron.errors import WestronError
from westron.models.marian.tokenization_marian import MarianTokenizer
from westron.models.t5.tokenization_t5 import T5Tokenizer


@pytest.fixture(scope="module", params=["marian", "t5"])
def tokenizer(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "marian":
        return MarianTokenizer.from_pretrained(write_marian_folder(folder))
    return T5Tokenizer.from_pretrained(write_t5_folder(folder))


# What `open(path, errors="surrogateescape")` makes of the Latin-1 bytes of "café" read as UTF-8.
SURROGATE_TEXT = b"caf\xe9 au lait".decode("utf-8", errors="surrogateescape")


@pytest.mark.parametrize("call", ["call", "target", "batch", "tokenize", "encode"])
def test_lone_surrogate_is_a_clear_value_error(tokenizer, call):
    calls = {
        "call": lambda: tokenizer(SURROGATE_TEXT),
        "target": lambda: tokenizer(text_target=SURROGATE_TEXT),
        "batch": lambda: tokenizer(["fine", SURROGATE_TEXT], padding=True),
        "tokenize": lambda: tokenizer.tokenize(SURROGATE_TEXT),
        "encode": lambda: tokenizer.encode(SURROGATE_TEXT),
    }
    with pytest.raises(ValueError, match=r"lone surrogate U\+DCE9 at character 3") as error:
        calls[call]()
    assert isinstance(error.value, WestronError)  # the CLI prints it on one line


def test_text_with_valid_astral_characters_still_encodes(tokenizer):
    assert tokenizer("🙂 fine")["input_ids"]  # a real astral character is no surrogate in Python


@pytest.mark.parametrize("max_length", [-1, 0, 2.5, True])
@pytest.mark.parametrize("argument", ["max_length", "max_target_length"])
def test_max_length_must_be_a_positive_integer(tokenizer, max_length, argument):
    with pytest.raises(ValueError, match=f"{argument} must be a positive integer, not {max_length!r}"):
        tokenizer("a few words", text_target="some more", truncation=True, **{argument: max_length})


def test_pad_max_length_must_be_a_positive_integer(tokenizer):
    with pytest.raises(ValueError, match="max_length must be a positive integer, not -1"):
        tokenizer.pad({"input_ids": [[5, 6]]}, padding="max_length", max_length=-1)


def test_positive_max_length_still_truncates(tokenizer):
    ids = tokenizer("a few words and then some more words", max_length=3)["input_ids"]
    assert len(ids) == 3 and ids[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize(
    "ids",
    [[1.5], [4, 2.0], [[4, 5], [6, 7.5]], np.array([1.5, 2.0]), "12", [None]],
    ids=["float", "float-among-ints", "float-in-batch", "float-array", "string", "none"],
)
@pytest.mark.parametrize("method", ["decode", "batch_decode", "convert_ids_to_tokens"])
def test_decode_refuses_ids_that_are_not_integers(tokenizer, ids, method):
    with pytest.raises(TypeError, match="token ids must be integers, not"):
        getattr(tokenizer, method)(ids)


def test_decode_accepts_integer_arrays_and_tensors(tokenizer):
    import torch

    expected = tokenizer.decode([4, 5, 6])
    assert tokenizer.decode(np.array([4, 5, 6], dtype=np.int32)) == expected
    assert tokenizer.decode(torch.tensor([4, 5, 6])) == expected
    assert tokenizer.decode(np.int64(4)) == tokenizer.decode([4])


def test_a_second_positional_text_is_refused_not_read_as_the_target(tokenizer):
    """HF 4.x's second argument is text_pair: `tokenizer(src, tgt)` used to give labels here, a pair there."""
    with pytest.raises(WestronError, match="text pairs .* not supported: translation targets go in text_target="):
        tokenizer(["a few words"], ["some more"])
    assert "labels" in tokenizer(["a few words"], text_target=["some more"])
