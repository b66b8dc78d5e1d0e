"""M2M100Tokenizer against Hugging Face's, on a BPE sentencepiece.bpe.model trained by tests/spm_fixtures.py
and a fairseq vocab.json in another order than SentencePiece's (with pieces left out).

Ids, masks, labels and decoded text must be identical on the multilingual corpus and its edge
cases, for several source and target languages, and after our save_pretrained.
"""

import json
import os
import pickle
import warnings

import numpy as np
import pytest

from tests.hf_pinned import hf_language_codes
from tests.spm_fixtures import batches, edge_case_texts, first_mismatches, multilingual_corpus, write_m2m100_folder
from westron.errors import CheckpointError, WestronError
from westron.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES, M2M100Tokenizer

# name -> write_m2m100_folder arguments. "westron-saved": "hub" after our save_pretrained.
VARIANTS = {
    "hub": dict(),  # language tokens listed as additional_special_tokens, as on the Hub
    "unlisted": dict(list_language_tokens=False),
    # wmt21's 8 languages, and a special token new to the vocabulary: it comes after the languages
    "wmt21": dict(language_codes="wmt21", tokenizer_config={"additional_special_tokens": [
        f"__{code}__" for code in FAIRSEQ_LANGUAGE_CODES["wmt21"]] + ["<eop>"]}),
    "westron-saved": None,
}
LANGUAGES = {"m2m100": [("fr", "he"), ("en", "ja"), ("ka", "de"), ("zu", "af")], "wmt21": [("de", "ja"), ("ru", "en")]}

LANGUAGE_TEXTS = ["__de__ Hallo __en__", "__fr__", "x__ja__y __xx__", "__en____de__ __zz__", "a <eop> __he__b"]
TEXTS = multilingual_corpus() + edge_case_texts() + LANGUAGE_TEXTS
TARGETS = TEXTS[5:] + TEXTS[:5]
IGNORE_TOO_LONG = pytest.mark.filterwarnings("ignore::westron.tokenization_utils.SequenceTooLongWarning")


def hf_m2m100_tokenizer(folder, **kwargs):
    from transformers import M2M100Tokenizer as HFM2M100Tokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HFM2M100Tokenizer.from_pretrained(os.fspath(folder), **kwargs)


def make_folder(variant, root):
    if variant == "westron-saved":
        M2M100Tokenizer.from_pretrained(make_folder("hub", root / "hub")).save_pretrained(root / "saved")
        return os.fspath(root / "saved")
    return write_m2m100_folder(root, **VARIANTS[variant])


@pytest.fixture(scope="module", params=list(VARIANTS))
def tokenizers(request, tmp_path_factory):
    """(westron, hf, folder, languages) for one variant, both set to the same first languages."""
    folder = make_folder(request.param, tmp_path_factory.mktemp(request.param))
    languages = LANGUAGES["wmt21" if request.param == "wmt21" else "m2m100"]
    src, tgt = languages[0]
    ours = M2M100Tokenizer.from_pretrained(folder, src_lang=src, tgt_lang=tgt)
    return ours, hf_m2m100_tokenizer(folder, src_lang=src, tgt_lang=tgt), folder, languages


def set_languages(tokenizers, src, tgt):
    for tokenizer in tokenizers:
        tokenizer.src_lang, tokenizer.tgt_lang = src, tgt


# ---- encoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_ids_match_hf_text_by_text(tokenizers):
    ours, theirs, _, languages = tokenizers
    results = []
    for src, tgt in languages[:2]:
        set_languages((ours, theirs), src, tgt)
        for text in TEXTS:
            results.append((text, ours.tokenize(text), theirs.tokenize(text)))
            results.append((text, dict(ours(text)), dict(theirs(text))))
            results.append(("target: " + text, dict(ours(text_target=text)), dict(theirs(text_target=text))))
    assert not first_mismatches(results)
    # Not vacuous: the frame is __tgt__ ... </s>, and vocab.json's missing pieces read as <unk>.
    labels = ours(text_target="Hallo")["input_ids"]
    assert labels[0] == ours.get_lang_id(languages[1][1]) and labels[-1] == ours.eos_token_id == 2
    assert sum(ours(text)["input_ids"].count(ours.unk_token_id) for text in TEXTS) > 0


BATCH_SETTINGS = [
    dict(padding=True),
    dict(padding="max_length", truncation=True, max_length=16),
    dict(padding=True, truncation=True, max_length=20, max_target_length=6, padding_side="left"),
]


@IGNORE_TOO_LONG
@pytest.mark.parametrize("settings", BATCH_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_batches_with_targets_match_hf(tokenizers, settings):
    ours, theirs, _, languages = tokenizers
    set_languages((ours, theirs), *languages[0])
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


@IGNORE_TOO_LONG
def test_language_switching_matches_hf(tokenizers):
    """src_lang / tgt_lang set after loading, on both tokenizers: every pair frames the same ids."""
    ours, theirs, _, languages = tokenizers
    results = []
    for src, tgt in languages:
        set_languages((ours, theirs), src, tgt)
        for sources, targets in zip(batches(TEXTS, 32), batches(TARGETS, 32)):
            results.append(((src, tgt), dict(ours(sources, text_target=targets, padding=True)),
                            dict(theirs(sources, text_target=targets, padding=True))))  # fmt: skip
        assert ours(text_target="x")["input_ids"][0] == ours.get_lang_id(tgt) == theirs.get_lang_id(tgt)
    assert not first_mismatches(results)


# ---- decoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_decode_matches_hf(tokenizers):
    ours, theirs, _, languages = tokenizers
    results = []
    for src, tgt in languages[:2]:
        set_languages((ours, theirs), src, tgt)
        for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
            encoded = theirs(sources, text_target=targets, padding=True)
            for ids in (encoded["input_ids"], encoded["labels"]):
                for skip in (False, True):
                    results.append((ids, ours.batch_decode(ids, skip_special_tokens=skip),
                                    theirs.batch_decode(ids, skip_special_tokens=skip)))  # fmt: skip
    assert not first_mismatches(results)


def test_decode_of_random_ids_matches_hf(tokenizers):
    """Language tokens and special tokens anywhere, pieces in any order."""
    ours, theirs, _, _ = tokenizers
    rng = np.random.default_rng(0)
    ids = list(range(ours.vocab_size)) + list(ours.lang_code_to_id.values())
    results = []
    for length in list(range(0, 30)) * 2:
        sequence = [int(i) for i in rng.choice(ids, size=length)]
        for skip in (False, True):
            results.append((sequence, ours.decode(sequence, skip_special_tokens=skip),
                            theirs.decode(sequence, skip_special_tokens=skip)))  # fmt: skip
    assert not first_mismatches(results)
    assert [ours.decode(i) for i in ids] == [theirs.decode(i) for i in ids]


# ---- vocabulary, special tokens and languages -----------------------------------------------------


def test_special_tokens_languages_and_sizes_match_hf(tokenizers):
    ours, theirs, _, _ = tokenizers
    for name in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token"):
        assert getattr(ours, name) == getattr(theirs, name), name
        assert getattr(ours, f"{name}_id") == getattr(theirs, f"{name}_id"), name
    assert ours.vocab_size == theirs.vocab_size and len(ours) == len(theirs)
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.all_special_ids == theirs.all_special_ids
    assert ours.get_vocab() == theirs.get_vocab()
    assert ours.lang_code_to_id == theirs.lang_code_to_id
    assert list(ours.lang_code_to_id) == FAIRSEQ_LANGUAGE_CODES[ours.language_codes]
    assert [ours.get_lang_id(code) for code in ours.lang_code_to_id] == [
        theirs.get_lang_id(code) for code in ours.lang_code_to_id
    ]
    # The language tokens follow vocab.json.
    assert min(ours.lang_code_to_id.values()) == ours.vocab_size
    tokens = list(ours.get_vocab()) + ["never-a-piece", "__en__", "__xx__"]
    assert ours.convert_tokens_to_ids(tokens) == theirs.convert_tokens_to_ids(tokens)


def test_listed_language_tokens_keep_their_language_ids(tmp_path):
    """A folder listing a few language tokens out of order, and a new token. (Hugging Face 5 numbers
    them from the end of vocab.json, over the language ids: "__he__" reads as __af__ there.)"""
    listed = ["__he__", "__ja__", "<eop>", "__fr__"]
    folder = write_m2m100_folder(tmp_path, list_language_tokens=False,
                                 tokenizer_config={"additional_special_tokens": listed})  # fmt: skip
    ours = M2M100Tokenizer.from_pretrained(folder, src_lang="fr")
    he, ja, fr = (ours.get_lang_id(code) for code in ("he", "ja", "fr"))
    eop = ours.vocab_size + len(FAIRSEQ_LANGUAGE_CODES["m2m100"])
    assert ours.convert_tokens_to_ids(listed) == [he, ja, eop, fr]
    assert ours.all_special_tokens[-4:] == listed and ours.all_special_ids[-4:] == [he, ja, eop, fr]
    ids = ours("a <eop> __he__b")["input_ids"]
    assert ids[0] == fr and ids[2:4] == [eop, he] and ids[-1] == ours.eos_token_id
    assert ours.decode(ids, skip_special_tokens=True) == "a b"
    assert ours.decode([ours.get_lang_id("de")], skip_special_tokens=True) == "__de__"  # not listed: not special


def test_language_codes_match_hf():
    assert FAIRSEQ_LANGUAGE_CODES == hf_language_codes()["m2m100"]


def test_unknown_language_is_an_error_with_close_matches(tmp_path):
    folder = write_m2m100_folder(tmp_path)
    with pytest.raises(WestronError, match=r"unknown language 'EN'; did you mean: en\?"):
        M2M100Tokenizer.from_pretrained(folder, src_lang="EN")
    ours = M2M100Tokenizer.from_pretrained(folder)
    assert ours.src_lang == "en" and ours.tgt_lang is None  # Hugging Face's defaults
    with pytest.raises(WestronError, match=r"unknown language 'fre'; did you mean: .*\bfr\b"):
        ours.tgt_lang = "fre"
    with pytest.raises(WestronError, match=r"unknown language 'klingon'; this tokenizer knows 100 languages"):
        ours.get_lang_id("klingon")
    with pytest.raises(WestronError, match="unknown language"):
        ours.src_lang = "eng_Latn"
    assert ours.src_lang == "en"  # unchanged by the failed assignment
    with pytest.raises(WestronError, match="tgt_lang"):
        ours("a", text_target="b")  # no target language set
    ours.tgt_lang = "he"
    assert ours("a", text_target="b")["labels"][0] == ours.get_lang_id("he")


# ---- files ----------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_save_pretrained_round_trip(tokenizers, tmp_path):
    ours, theirs, folder, _ = tokenizers
    written = ours.save_pretrained(tmp_path / "saved")
    names = sorted(os.listdir(tmp_path / "saved"))
    expected = ["sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]
    assert names == expected and sorted(os.path.basename(path) for path in written) == names
    spm_bytes = (tmp_path / "saved" / "sentencepiece.bpe.model").read_bytes()
    assert spm_bytes == open(os.path.join(folder, "sentencepiece.bpe.model"), "rb").read()
    vocab = json.loads((tmp_path / "saved" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab == json.loads(open(os.path.join(folder, "vocab.json"), encoding="utf-8").read())
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "M2M100Tokenizer"
    assert (config["src_lang"], config["tgt_lang"]) == (ours.src_lang, ours.tgt_lang)

    reloaded = M2M100Tokenizer.from_pretrained(tmp_path / "saved")
    theirs_reloaded = hf_m2m100_tokenizer(tmp_path / "saved")
    assert reloaded.tokenizer_config() == ours.tokenizer_config()
    assert (reloaded.src_lang, reloaded.tgt_lang) == (theirs_reloaded.src_lang, theirs_reloaded.tgt_lang)
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        expected_encoding = dict(theirs(sources, text_target=targets, padding=True))
        assert dict(reloaded(sources, text_target=targets, padding=True)) == expected_encoding
        assert dict(theirs_reloaded(sources, text_target=targets, padding=True)) == expected_encoding
        labels = expected_encoding["labels"]
        assert reloaded.batch_decode(labels, skip_special_tokens=True) == theirs.batch_decode(
            labels, skip_special_tokens=True
        )


def test_pickle_round_trip(tmp_path):
    ours = M2M100Tokenizer.from_pretrained(write_m2m100_folder(tmp_path), src_lang="ja", tgt_lang="ka")
    copy = pickle.loads(pickle.dumps(ours))
    assert (copy.src_lang, copy.tgt_lang) == ("ja", "ka")
    assert dict(copy(TEXTS[:8], text_target=TARGETS[:8], padding=True)) == dict(
        ours(TEXTS[:8], text_target=TARGETS[:8], padding=True)
    )


def test_auto_tokenizer_picks_m2m100_by_tokenizer_class(tmp_path):
    from westron.models.auto import AutoTokenizer

    folder = write_m2m100_folder(tmp_path)  # tokenizer_class "M2M100Tokenizer", no config.json
    tokenizer = AutoTokenizer.from_pretrained(folder, src_lang="de")
    assert type(tokenizer) is M2M100Tokenizer and tokenizer.src_lang == "de"


def test_missing_or_broken_files_are_checkpoint_errors(tmp_path):
    folder = write_m2m100_folder(tmp_path / "no-vocab")
    os.remove(os.path.join(folder, "vocab.json"))
    with pytest.raises(CheckpointError, match="vocab.json"):
        M2M100Tokenizer.from_pretrained(folder)
    folder = write_m2m100_folder(tmp_path / "no-spm")
    os.remove(os.path.join(folder, "sentencepiece.bpe.model"))
    with pytest.raises(CheckpointError, match="sentencepiece.bpe.model"):
        M2M100Tokenizer.from_pretrained(folder)
    folder = write_m2m100_folder(tmp_path / "codes", tokenizer_config={"language_codes": "m2m200"})
    with pytest.raises(CheckpointError, match="language_codes"):
        M2M100Tokenizer.from_pretrained(folder)
