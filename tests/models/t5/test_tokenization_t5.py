"""T5Tokenizer against Hugging Face's, on a unigram spiece.model trained by tests/spm_fixtures.py.

Every variant is a T5 folder loaded by both libraries; ids, masks, labels and decoded text (with
the <extra_id_N> sentinels in and around the text) must be identical on the multilingual corpus
and its edge cases.
"""

import json
import os
import pickle
import re
import warnings

import numpy as np
import pytest

from tests.spm_fixtures import (
    batches,
    edge_case_texts,
    first_mismatches,
    multilingual_corpus,
    trained_spm,
    write_t5_folder,
)
from westron.errors import CheckpointError
from westron.models.t5.tokenization_t5 import T5Tokenizer

SENTINELS = [f"<extra_id_{i}>" for i in range(100)]

# name -> write_t5_folder(tokenizer_config=...). "westron-saved": "listed" after our save_pretrained.
VARIANTS = {
    "t5-small": {},  # only model_max_length: 100 sentinels by default
    "listed": dict(extra_ids=100, additional_special_tokens=SENTINELS, clean_up_tokenization_spaces=True),
    "mt5": dict(extra_ids=0, additional_special_tokens=None, model_max_length=24),
    "ten": dict(extra_ids=10),
    "westron-saved": None,
}

SENTINEL_TEXTS = [
    "<extra_id_0>",
    "The <extra_id_0> walks in <extra_id_1> park",
    "<extra_id_0> cute dog <extra_id_1> the <extra_id_2>",
    "x<extra_id_12>y<extra_id_99>z <extra_id_9>",
    "<extra_id_100> is not a sentinel, <extra_id_-1> neither",
    "  <extra_id_3>  padded   <extra_id_4>  ",
]
TEXTS = multilingual_corpus() + edge_case_texts() + SENTINEL_TEXTS
TARGETS = TEXTS[5:] + TEXTS[:5]
IGNORE_TOO_LONG = pytest.mark.filterwarnings("ignore::westron.tokenization_utils.SequenceTooLongWarning")


def hf_t5_tokenizer(folder, **kwargs):
    from transformers import T5Tokenizer as HFT5Tokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HFT5Tokenizer.from_pretrained(os.fspath(folder), **kwargs)


def make_folder(variant, root):
    if variant == "westron-saved":
        T5Tokenizer.from_pretrained(make_folder("listed", root / "listed")).save_pretrained(root / "saved")
        return os.fspath(root / "saved")
    return write_t5_folder(root, tokenizer_config=VARIANTS[variant])


@pytest.fixture(scope="module", params=list(VARIANTS))
def tokenizers(request, tmp_path_factory):
    """(westron, hf, folder) for one variant."""
    folder = make_folder(request.param, tmp_path_factory.mktemp(request.param))
    return T5Tokenizer.from_pretrained(folder), hf_t5_tokenizer(folder), folder


# ---- encoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_ids_match_hf_text_by_text(tokenizers):
    ours, theirs, _ = tokenizers
    results = []
    for text in TEXTS:
        results.append((text, ours.tokenize(text), theirs.tokenize(text)))
        results.append((text, dict(ours(text)), dict(theirs(text))))
        results.append(("target: " + text, dict(ours(text_target=text)), dict(theirs(text_target=text))))
        results.append(("no specials: " + text, ours.encode(text, add_special_tokens=False),
                        theirs.encode(text, add_special_tokens=False)))  # fmt: skip
    assert not first_mismatches(results)
    # Not vacuous: the corpus reaches <unk> and every line ends with </s> = 1.
    assert ours("Ꭰ 🙂")["input_ids"].count(ours.unk_token_id) >= 1
    assert all(ours(text)["input_ids"][-1] == 1 for text in TEXTS)


BATCH_SETTINGS = [
    dict(padding=True),
    dict(padding="max_length", truncation=True, max_length=16),
    dict(padding=True, truncation=True, max_length=20, max_target_length=6),
    dict(padding=True, padding_side="left", pad_to_multiple_of=8),
]


@IGNORE_TOO_LONG
@pytest.mark.parametrize("settings", BATCH_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_batches_with_targets_match_hf(tokenizers, settings):
    ours, theirs, _ = tokenizers
    results = [
        (sources, dict(ours(sources, text_target=targets, **settings)),
         dict(theirs(sources, text_target=targets, **settings)))
        for sources, targets in zip(batches(TEXTS), batches(TARGETS))
    ]  # fmt: skip
    assert not first_mismatches(results)
    ours_np = ours(TEXTS[:8], text_target=TARGETS[:8], return_tensors="np", **settings)
    theirs_np = theirs(TEXTS[:8], text_target=TARGETS[:8], return_tensors="np", **settings)
    for key in theirs_np:
        np.testing.assert_array_equal(ours_np[key], theirs_np[key])


# ---- decoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_decode_matches_hf(tokenizers):
    ours, theirs, _ = tokenizers
    results = []
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        encoded = theirs(sources, text_target=targets, padding=True)
        for ids in (encoded["input_ids"], encoded["labels"]):
            for skip in (False, True):
                results.append((ids, ours.batch_decode(ids, skip_special_tokens=skip),
                                theirs.batch_decode(ids, skip_special_tokens=skip)))  # fmt: skip
                results.append((ids[0], ours.decode(ids[0], skip_special_tokens=skip),
                                theirs.decode(ids[0], skip_special_tokens=skip)))  # fmt: skip
    assert not first_mismatches(results)


def test_decode_of_random_ids_matches_hf(tokenizers):
    """Sentinels and special tokens anywhere, pieces in any order, ids past the vocabulary."""
    ours, theirs, _ = tokenizers
    rng = np.random.default_rng(0)
    ids = list(range(len(theirs))) + [len(theirs), len(theirs) + 7]
    results = []
    for length in list(range(0, 30)) * 2:
        sequence = [int(i) for i in rng.choice(ids, size=length)]
        for skip in (False, True):
            results.append((sequence, ours.decode(sequence, skip_special_tokens=skip),
                            theirs.decode(sequence, skip_special_tokens=skip)))  # fmt: skip
        results.append((sequence, ours.decode(sequence, clean_up_tokenization_spaces=True),
                        theirs.decode(sequence, clean_up_tokenization_spaces=True)))  # fmt: skip
    assert not first_mismatches(results)
    assert [ours.decode(i) for i in range(len(ours))] == [theirs.decode(i) for i in range(len(theirs))]


# ---- vocabulary, special tokens and sentinels -----------------------------------------------------


def test_special_tokens_sentinels_and_sizes_match_hf(tokenizers):
    ours, theirs, _ = tokenizers
    for name in ("pad_token", "eos_token", "unk_token", "bos_token"):
        assert getattr(ours, name) == getattr(theirs, name), name
        assert getattr(ours, f"{name}_id") == getattr(theirs, f"{name}_id"), name
    assert (ours.pad_token_id, ours.eos_token_id, ours.unk_token_id) == (0, 1, 2)
    assert ours.vocab_size == theirs.vocab_size and len(ours) == len(theirs)
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.all_special_ids == theirs.all_special_ids
    assert ours.get_vocab() == theirs.get_vocab()
    # (Hugging Face 5's get_sentinel_tokens() fails: it reads an attribute that no longer exists.)
    theirs_sentinels = [token for token in theirs.all_special_tokens if re.fullmatch(r"<extra_id_\d+>", token)]
    assert sorted(ours.get_sentinel_tokens()) == sorted(theirs_sentinels)
    assert sorted(ours.get_sentinel_token_ids()) == sorted(theirs.convert_tokens_to_ids(theirs_sentinels))
    ids = list(range(len(ours)))
    assert ours.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
    tokens = list(ours.get_vocab()) + ["never-a-piece", "<extra_id_100>"]
    assert ours.convert_tokens_to_ids(tokens) == theirs.convert_tokens_to_ids(tokens)
    # The sentinels close the vocabulary in reverse order: <extra_id_0> is the last id.
    sentinels = ours.get_sentinel_tokens()
    assert len(sentinels) == ours.extra_ids
    assert ours.convert_tokens_to_ids(sentinels) == list(range(len(ours) - 1, len(ours) - 1 - ours.extra_ids, -1))


def test_sentinels_are_whole_tokens(tmp_path):
    ours = T5Tokenizer.from_pretrained(write_t5_folder(tmp_path))
    ids = ours("The <extra_id_0> walks in <extra_id_1> park")["input_ids"]
    assert ids.count(len(ours) - 1) == 1 and ids.count(len(ours) - 2) == 1
    assert ours.decode(ids) == "The<extra_id_0> walks in<extra_id_1> park</s>"  # Hugging Face 5's spacing
    assert ours.decode(ids, skip_special_tokens=True) == "The walks in park"


def test_sentinels_are_appended_to_other_extra_special_tokens(tmp_path):
    """A folder listing extra special tokens but no sentinel: they come after, as special tokens."""
    folder = write_t5_folder(tmp_path, tokenizer_config=dict(extra_ids=3, additional_special_tokens=["<eop>"]))
    ours = T5Tokenizer.from_pretrained(folder)
    size = ours.vocab_size  # pieces + 3 sentinels
    assert ours.all_special_tokens[-4:] == ["<eop>", "<extra_id_0>", "<extra_id_1>", "<extra_id_2>"]
    assert ours.convert_tokens_to_ids(ours.all_special_tokens[-4:]) == [size, size - 1, size - 2, size - 3]
    ids = ours("a <extra_id_1> <eop>")["input_ids"]
    assert ids[-3:] == [size - 2, size, 1]
    assert ours.decode(ids, skip_special_tokens=True) == "a"


# ---- files ----------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_save_pretrained_round_trip(tokenizers, tmp_path):
    ours, theirs, folder = tokenizers
    written = ours.save_pretrained(tmp_path / "saved")
    names = sorted(os.listdir(tmp_path / "saved"))
    assert names == ["special_tokens_map.json", "spiece.model", "tokenizer_config.json"]
    assert sorted(os.path.basename(path) for path in written) == names
    assert (tmp_path / "saved" / "spiece.model").read_bytes() == open(trained_spm("t5"), "rb").read()
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "T5Tokenizer" and config["extra_ids"] == ours.extra_ids

    reloaded = T5Tokenizer.from_pretrained(tmp_path / "saved")
    theirs_reloaded = hf_t5_tokenizer(tmp_path / "saved")  # Hugging Face reads our folder alike
    assert reloaded.tokenizer_config() == ours.tokenizer_config()
    assert theirs_reloaded.get_vocab() == theirs.get_vocab()
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        expected = dict(theirs(sources, text_target=targets, padding=True))
        assert dict(reloaded(sources, text_target=targets, padding=True)) == expected
        assert dict(theirs_reloaded(sources, text_target=targets, padding=True)) == expected
        assert reloaded.batch_decode(expected["labels"], skip_special_tokens=True) == theirs.batch_decode(
            expected["labels"], skip_special_tokens=True
        )
    before = {name: (tmp_path / "saved" / name).read_bytes() for name in names}
    reloaded.save_pretrained(tmp_path / "saved")  # into the folder it was loaded from: no change
    assert {name: (tmp_path / "saved" / name).read_bytes() for name in names} == before


def test_pickle_round_trip(tmp_path):
    ours = T5Tokenizer.from_pretrained(write_t5_folder(tmp_path))
    copy = pickle.loads(pickle.dumps(ours))
    assert dict(copy(TEXTS[:8], padding=True)) == dict(ours(TEXTS[:8], padding=True))


def test_auto_tokenizer_picks_t5(tmp_path):
    from westron.models.auto import AutoTokenizer

    # By tokenizer_class (the "Fast" name too), with no config.json at all.
    for name in ("T5Tokenizer", "T5TokenizerFast", "MT5Tokenizer"):
        folder = write_t5_folder(tmp_path / name, tokenizer_config={"tokenizer_class": name})
        assert type(AutoTokenizer.from_pretrained(folder)) is T5Tokenizer
    # Without tokenizer_class: config.json's model_type.
    folder = write_t5_folder(tmp_path / "by-model-type")
    with pytest.raises(CheckpointError, match="config.json"):
        AutoTokenizer.from_pretrained(folder)
    (tmp_path / "by-model-type" / "config.json").write_text(json.dumps({"model_type": "t5"}))
    assert type(AutoTokenizer.from_pretrained(folder, local_files_only=True)) is T5Tokenizer
    # A tokenizer_class Westron does not have: model_type's default too.
    folder = write_t5_folder(tmp_path / "other", tokenizer_config={"tokenizer_class": "PreTrainedTokenizerFast"})
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "mt5"}))
    assert type(AutoTokenizer.from_pretrained(folder)) is T5Tokenizer


def test_missing_files_and_bad_settings_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="spiece.model"):
        T5Tokenizer.from_pretrained(tmp_path)  # e.g. a folder Hugging Face 5 saved: tokenizer.json only
    folder = write_t5_folder(tmp_path / "bad-spm")
    with open(os.path.join(folder, "spiece.model"), "wb") as handle:
        handle.write(b"not a model")
    with pytest.raises(CheckpointError, match="spiece.model"):
        T5Tokenizer.from_pretrained(folder)
    disagree = dict(extra_ids=5, additional_special_tokens=SENTINELS)
    folder = write_t5_folder(tmp_path / "disagree", tokenizer_config=disagree)
    with pytest.raises(CheckpointError, match="extra_ids"):
        T5Tokenizer.from_pretrained(folder)
