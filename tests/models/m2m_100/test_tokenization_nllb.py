"""NllbTokenizer against Hugging Face's, on a BPE sentencepiece.bpe.model trained by tests/spm_fixtures.py.

The folders are nllb-200's layout: the 202 FLORES codes listed in tokenizer_config.json, with
their fairseq ids (as the Hub's) or without. Ids, masks, labels and decoded text must be
identical on the multilingual corpus and its edge cases, for several language pairs.
"""

import json
import os
import pickle
import warnings

import numpy as np
import pytest

from tests.hf_pinned import hf_language_codes
from tests.spm_fixtures import (
    batches,
    edge_case_texts,
    first_mismatches,
    multilingual_corpus,
    spm_pieces,
    trained_spm,
    write_nllb_folder,
)
from westron.errors import CheckpointError, WestronError
from westron.models.m2m_100.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES, NllbTokenizer

# name -> (write_nllb_folder arguments, the folder variant Hugging Face reads for the expected ids).
# Without ids Hugging Face 5 numbers <mask> before the codes, unlike fairseq and the checkpoints:
# there we must give the ids Hugging Face gives for the Hub's folder.
VARIANTS = {
    "hub": (dict(), "hub"),
    "no-ids": (dict(with_ids=False), "hub"),
    "legacy": (dict(tokenizer_config={"legacy_behaviour": True}), "legacy"),
    "westron-saved": (None, "hub"),
}
PAIRS = [("fra_Latn", "heb_Hebr"), ("eng_Latn", "jpn_Jpan"), ("kat_Geor", "deu_Latn"), ("zul_Latn", "ace_Arab")]

LANGUAGE_TEXTS = [
    "eng_Latn Hello",
    "Bonjour <mask> eng_Latn x ",
    "x<mask>y <mask>  <mask>",
    "heb_Hebrjpn_Jpan eng_latn",
    "  two  blanks  ",
    "trailing ",
]
TEXTS = multilingual_corpus() + edge_case_texts() + LANGUAGE_TEXTS
TARGETS = TEXTS[5:] + TEXTS[:5]
IGNORE_TOO_LONG = pytest.mark.filterwarnings("ignore::westron.tokenization_utils.SequenceTooLongWarning")


def hf_nllb_tokenizer(folder, **kwargs):
    from transformers import NllbTokenizer as HFNllbTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HFNllbTokenizer.from_pretrained(os.fspath(folder), **kwargs)


def make_folder(variant, root):
    if variant == "westron-saved":
        NllbTokenizer.from_pretrained(make_folder("hub", root / "hub")).save_pretrained(root / "saved")
        return os.fspath(root / "saved")
    return write_nllb_folder(root / variant, **VARIANTS[variant][0])


@pytest.fixture(scope="module", params=list(VARIANTS))
def tokenizers(request, tmp_path_factory):
    """(westron, hf, folder) for one variant, both set to the first language pair."""
    root = tmp_path_factory.mktemp(request.param)
    folder = make_folder(request.param, root)
    reference = VARIANTS[request.param][1]
    hf_folder = folder if reference == request.param else make_folder(reference, root)
    src, tgt = PAIRS[0]
    ours = NllbTokenizer.from_pretrained(folder, src_lang=src, tgt_lang=tgt)
    return ours, hf_nllb_tokenizer(hf_folder, src_lang=src, tgt_lang=tgt), folder


def set_languages(tokenizers, src, tgt):
    for tokenizer in tokenizers:
        tokenizer.src_lang, tokenizer.tgt_lang = src, tgt


# ---- encoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_ids_match_hf_text_by_text(tokenizers):
    ours, theirs, _ = tokenizers
    results = []
    for src, tgt in PAIRS[:2]:
        set_languages((ours, theirs), src, tgt)
        for text in TEXTS:
            results.append((text, dict(ours(text)), dict(theirs(text))))
            results.append(("target: " + text, dict(ours(text_target=text)), dict(theirs(text_target=text))))
            results.append(("no specials: " + text, ours.encode(text, add_special_tokens=False),
                            theirs.encode(text, add_special_tokens=False)))  # fmt: skip
    assert not first_mismatches(results)
    # Not vacuous: the language code frames the text, and a trailing blank is a "▁" of its own.
    ids = ours("Hallo ")["input_ids"]
    lang_id, blank = ours.get_lang_id(PAIRS[1][0]), ours.convert_tokens_to_ids("▁")
    if ours.legacy_behaviour:
        assert ids[-3:] == [blank, 2, lang_id]
    else:
        assert ids[0] == lang_id and ids[-2:] == [blank, 2]


BATCH_SETTINGS = [
    dict(padding=True),
    dict(padding="max_length", truncation=True, max_length=16),
    dict(padding=True, truncation=True, max_length=20, max_target_length=6, padding_side="left"),
]


@IGNORE_TOO_LONG
@pytest.mark.parametrize("settings", BATCH_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_batches_with_targets_match_hf(tokenizers, settings):
    ours, theirs, _ = tokenizers
    set_languages((ours, theirs), *PAIRS[0])
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
    ours, theirs, _ = tokenizers
    results = []
    for src, tgt in PAIRS:
        set_languages((ours, theirs), src, tgt)
        for sources, targets in zip(batches(TEXTS, 32), batches(TARGETS, 32)):
            results.append(((src, tgt), dict(ours(sources, text_target=targets, padding=True)),
                            dict(theirs(sources, text_target=targets, padding=True))))  # fmt: skip
        assert ours.get_lang_id(tgt) == theirs.convert_tokens_to_ids(tgt) in ours(text_target="x")["input_ids"]
    assert not first_mismatches(results)


def test_targets_default_to_the_source_language(tokenizers):
    """Hugging Face: with no tgt_lang, targets are framed with src_lang."""
    ours, theirs, _ = tokenizers
    set_languages((ours, theirs), "kat_Geor", None)
    assert ours(text_target=TARGETS[:8])["input_ids"] == theirs(text_target=TARGETS[:8])["input_ids"]
    assert ours.get_lang_id("kat_Geor") in ours(text_target="x")["input_ids"]


# ---- decoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_decode_matches_hf(tokenizers):
    ours, theirs, _ = tokenizers
    set_languages((ours, theirs), *PAIRS[0])
    results = []
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        encoded = theirs(sources, text_target=targets, padding=True)
        for ids in (encoded["input_ids"], encoded["labels"]):
            for skip in (False, True):
                results.append((ids, ours.batch_decode(ids, skip_special_tokens=skip),
                                theirs.batch_decode(ids, skip_special_tokens=skip)))  # fmt: skip
                # Hugging Face 5 ignores clean_up_tokenization_spaces for BPE tokenizers.
                results.append((ids, ours.batch_decode(ids, clean_up_tokenization_spaces=True),
                                theirs.batch_decode(ids, clean_up_tokenization_spaces=True)))  # fmt: skip
    assert not first_mismatches(results)


def test_decode_of_random_ids_matches_hf(tokenizers):
    """Language codes, <mask> and special tokens anywhere, pieces in any order, ids past the vocabulary."""
    ours, theirs, _ = tokenizers
    rng = np.random.default_rng(0)
    ids = list(range(len(theirs))) + [len(theirs), len(theirs) + 3]
    results = []
    for length in list(range(0, 30)) * 2:
        sequence = [int(i) for i in rng.choice(ids, size=length)]
        for skip in (False, True):
            results.append((sequence, ours.decode(sequence, skip_special_tokens=skip),
                            theirs.decode(sequence, skip_special_tokens=skip)))  # fmt: skip
    assert not first_mismatches(results)
    assert [ours.decode(i) for i in range(len(ours))] == [theirs.decode(i) for i in range(len(theirs))]


# ---- vocabulary, special tokens and languages -----------------------------------------------------


def test_special_tokens_languages_and_sizes_match_hf(tokenizers):
    ours, theirs, _ = tokenizers
    for name in ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"):
        assert getattr(ours, name) == getattr(theirs, name), name
        assert getattr(ours, f"{name}_id") == getattr(theirs, f"{name}_id"), name
    assert ours.vocab_size == theirs.vocab_size and len(ours) == len(theirs)
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.all_special_ids == theirs.all_special_ids
    assert ours.get_vocab() == theirs.get_vocab()
    assert list(ours.lang_code_to_id) == FAIRSEQ_LANGUAGE_CODES
    assert [ours.get_lang_id(code) for code in FAIRSEQ_LANGUAGE_CODES] == theirs.convert_tokens_to_ids(
        FAIRSEQ_LANGUAGE_CODES
    )
    tokens = list(ours.get_vocab()) + ["never-a-piece", "eng_latn"]
    assert ours.convert_tokens_to_ids(tokens) == theirs.convert_tokens_to_ids(tokens)


def test_fairseq_ids(tmp_path):
    """<s> <pad> </s> <unk> = 0..3, piece k at k + 1, the codes after the pieces, <mask> last,
    also for a folder that does not give the ids."""
    pieces = spm_pieces(trained_spm("nllb"))
    for with_ids in (True, False):
        folder = write_nllb_folder(tmp_path / str(with_ids), with_ids=with_ids)
        ours = NllbTokenizer.from_pretrained(folder)
        assert [ours.bos_token_id, ours.pad_token_id, ours.eos_token_id, ours.unk_token_id] == [0, 1, 2, 3]
        assert ours.convert_ids_to_tokens(list(range(4, len(pieces) + 1))) == pieces[3:]
        assert ours.get_lang_id("ace_Arab") == len(pieces) + 1
        assert ours.get_lang_id("eng_Latn") == len(pieces) + 1 + FAIRSEQ_LANGUAGE_CODES.index("eng_Latn")
        assert ours.mask_token_id == len(pieces) + 1 + len(FAIRSEQ_LANGUAGE_CODES) == len(ours) - 1
        assert ours.vocab_size == len(pieces) + 1


def test_language_codes_match_hf():
    assert FAIRSEQ_LANGUAGE_CODES == hf_language_codes()["nllb"] and len(FAIRSEQ_LANGUAGE_CODES) == 202


def test_unknown_language_is_an_error_with_close_matches(tmp_path):
    folder = write_nllb_folder(tmp_path)
    with pytest.raises(WestronError, match=r"^unknown language 'eng_latn'; did you mean: eng_Latn\?"):
        NllbTokenizer.from_pretrained(folder, src_lang="eng_latn")
    ours = NllbTokenizer.from_pretrained(folder)
    assert ours.src_lang == "eng_Latn" and ours.tgt_lang is None  # Hugging Face's defaults
    with pytest.raises(WestronError, match=r"unknown language 'heb_Hbr'; did you mean: heb_Hebr"):
        ours.tgt_lang = "heb_Hbr"
    with pytest.raises(WestronError, match=r"unknown language 'en'; this tokenizer knows 202 languages"):
        ours.get_lang_id("en")
    with pytest.raises(WestronError, match="unknown language"):
        ours.src_lang = "<mask>"
    assert ours.src_lang == "eng_Latn"


def test_get_lang_id_is_the_forced_bos_id_on_both_multilingual_tokenizers(tmp_path):
    from tests.spm_fixtures import write_m2m100_folder
    from westron.models.m2m_100.tokenization_m2m_100 import M2M100Tokenizer

    nllb = NllbTokenizer.from_pretrained(write_nllb_folder(tmp_path / "nllb"), tgt_lang="fra_Latn")
    m2m = M2M100Tokenizer.from_pretrained(write_m2m100_folder(tmp_path / "m2m"), tgt_lang="fr")
    for tokenizer in (nllb, m2m):
        forced_bos = tokenizer.get_lang_id(tokenizer.tgt_lang)
        assert tokenizer(text_target="Bonjour")["input_ids"][0] == forced_bos
        assert tokenizer.lang_code_to_id[tokenizer.tgt_lang] == forced_bos


# ---- files ----------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_save_pretrained_round_trip(tokenizers, tmp_path):
    ours, theirs, folder = tokenizers
    set_languages((ours, theirs), *PAIRS[2])
    written = ours.save_pretrained(tmp_path / "saved")
    names = sorted(os.listdir(tmp_path / "saved"))
    assert names == ["sentencepiece.bpe.model", "special_tokens_map.json", "tokenizer_config.json"]
    assert sorted(os.path.basename(path) for path in written) == names
    assert (tmp_path / "saved" / "sentencepiece.bpe.model").read_bytes() == open(trained_spm("nllb"), "rb").read()
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "NllbTokenizer" and config["legacy_behaviour"] == ours.legacy_behaviour
    assert (config["src_lang"], config["tgt_lang"]) == PAIRS[2]

    reloaded = NllbTokenizer.from_pretrained(tmp_path / "saved")
    theirs_reloaded = hf_nllb_tokenizer(tmp_path / "saved")  # Hugging Face reads our folder alike
    assert reloaded.tokenizer_config() == ours.tokenizer_config()
    assert theirs_reloaded.get_vocab() == theirs.get_vocab()
    assert (theirs_reloaded.src_lang, theirs_reloaded.tgt_lang) == PAIRS[2]
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        expected = dict(theirs(sources, text_target=targets, padding=True))
        assert dict(reloaded(sources, text_target=targets, padding=True)) == expected
        assert dict(theirs_reloaded(sources, text_target=targets, padding=True)) == expected
        assert reloaded.batch_decode(expected["labels"], skip_special_tokens=True) == theirs.batch_decode(
            expected["labels"], skip_special_tokens=True
        )


def test_pickle_round_trip(tmp_path):
    ours = NllbTokenizer.from_pretrained(write_nllb_folder(tmp_path), src_lang="jpn_Jpan", tgt_lang="kat_Geor")
    copy = pickle.loads(pickle.dumps(ours))
    assert (copy.src_lang, copy.tgt_lang) == ("jpn_Jpan", "kat_Geor")
    assert dict(copy(TEXTS[:8], text_target=TARGETS[:8], padding=True)) == dict(
        ours(TEXTS[:8], text_target=TARGETS[:8], padding=True)
    )


def test_auto_tokenizer_picks_nllb_by_tokenizer_class(tmp_path):
    from westron.models.auto import AutoTokenizer

    # An NLLB checkpoint: model_type m2m_100, but tokenizer_config.json names NllbTokenizer(Fast).
    for name in ("NllbTokenizer", "NllbTokenizerFast"):
        folder = write_nllb_folder(tmp_path / name, tokenizer_config={"tokenizer_class": name})
        (tmp_path / name / "config.json").write_text(json.dumps({"model_type": "m2m_100"}))
        tokenizer = AutoTokenizer.from_pretrained(folder, src_lang="heb_Hebr")
        assert type(tokenizer) is NllbTokenizer and tokenizer.src_lang == "heb_Hebr"


def test_missing_or_broken_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="sentencepiece.bpe.model"):
        NllbTokenizer.from_pretrained(tmp_path)
    folder = write_nllb_folder(tmp_path / "bad-spm")
    with open(os.path.join(folder, "sentencepiece.bpe.model"), "wb") as handle:
        handle.write(b"not a model")
    with pytest.raises(CheckpointError, match="sentencepiece.bpe.model"):
        NllbTokenizer.from_pretrained(folder)
