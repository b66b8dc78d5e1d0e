"""Tokenizer training: the folders load in Westron and in Hugging Face and give the same ids."""

from __future__ import annotations

import json
import os
import warnings

import pytest

from tests.spm_fixtures import edge_case_texts, multilingual_corpus
from westron.cli import main
from westron.data.tokenizer_training import train_tokenizer
from westron.errors import WestronError
from westron.models.auto import AutoTokenizer

CODES = [">>heb<<", ">>jpn<<"]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    """JSON lines pairing each corpus line with another one (the languages mix on both sides)."""
    lines = [line for line in multilingual_corpus() if line]
    path = tmp_path_factory.mktemp("corpus") / "train.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for source, target in zip(lines, lines[5:] + lines[:5]):
            handle.write(json.dumps({"translation": {"en": source, "es": target}}, ensure_ascii=False) + "\n")
    return os.fspath(path)


def sample():
    lines = [line for line in multilingual_corpus() if line]
    return lines[::7] + edge_case_texts() + [">>heb<< שלום", "text >>jpn<< 駅"]


def hf_tokenizer(folder):
    from transformers import AutoTokenizer as HFAutoTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Recommended: pip install sacremoses."
        return HFAutoTokenizer.from_pretrained(os.fspath(folder))


SETTINGS = {
    "marian-joint-unigram": dict(model_type="marian", vocab_size=400, user_defined_symbols=CODES),
    "marian-separate-bpe": dict(model_type="marian", vocab_size=300, model_kind="bpe", joint=False, character_coverage=0.99),
    "t5-unigram": dict(model_type="t5", vocab_size=400, extra_ids=10, user_defined_symbols=CODES),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_westron_and_hf_give_the_same_ids(tmp_path, train_file, name):
    settings = dict(SETTINGS[name])
    trained = train_tokenizer(settings.pop("model_type"), [train_file], "en", "es", tmp_path / "tok", **settings)
    ours, theirs = AutoTokenizer.from_pretrained(trained.folder), hf_tokenizer(trained.folder)
    expected_class = "T5Tokenizer" if trained.model_type == "t5" else "MarianTokenizer"
    assert type(ours).__name__ == expected_class and type(theirs).__name__ == expected_class

    texts = sample()
    ours_batch = ours(texts, text_target=texts[::-1])
    theirs_batch = theirs(texts, text_target=texts[::-1])
    assert ours_batch["input_ids"] == theirs_batch["input_ids"]
    assert ours_batch["labels"] == theirs_batch["labels"]
    assert ours.batch_decode(ours_batch["input_ids"]) == theirs.batch_decode(theirs_batch["input_ids"])

    ids = trained.config_ids
    assert ids["vocab_size"] == len(ours) == len(theirs)
    assert ids["pad_token_id"] == ours.pad_token_id == theirs.pad_token_id == ids["decoder_start_token_id"]
    assert ids["eos_token_id"] == ours.eos_token_id == theirs.eos_token_id
    if trained.model_type == "marian":
        assert (ids["eos_token_id"], ours.unk_token_id, ids["pad_token_id"]) == (0, 1, ids["vocab_size"] - 1)
        with open(os.path.join(trained.folder, "vocab.json"), encoding="utf-8") as handle:
            assert set(CODES) <= set(json.load(handle)) if settings.get("user_defined_symbols") else True
        if settings.get("joint", True):  # the pieces and <pad>: at most vocab_size (fewer on a tiny corpus)
            assert ids["vocab_size"] == ours.spm_source.get_piece_size() + 1 <= settings["vocab_size"]
    else:
        assert (ids["pad_token_id"], ids["eos_token_id"], ours.unk_token_id) == (0, 1, 2)
        assert ours.convert_tokens_to_ids("<extra_id_0>") == ids["vocab_size"] - 1
    for code in CODES if settings.get("user_defined_symbols") else ():
        assert code in ours.tokenize(f"{code} x")  # one piece, not split


def test_training_is_deterministic(tmp_path, train_file):
    folders = [train_tokenizer("marian", [train_file], "en", "es", tmp_path / name, vocab_size=300, joint=False).folder for name in "ab"]
    for name in ("source.spm", "target.spm", "vocab.json"):
        with open(os.path.join(folders[0], name), "rb") as first, open(os.path.join(folders[1], name), "rb") as second:
            assert first.read() == second.read()


def test_cli_trains_and_reports_ids(tmp_path, train_file, capsys):
    tsv = tmp_path / "more.tsv"
    tsv.write_text("en\tes\nGood morning\tBuenos días\nThank you\tGracias\n", encoding="utf-8")
    argv = ["tokenizer", "train", "--model-type", "marian", "--train-file", train_file, "--train-file", str(tsv)]
    argv += ["--source-lang", "en", "--target-lang", "es", "--vocab-size", "400", "-o", str(tmp_path / "tok")]
    assert main(argv) == 0
    with open(tmp_path / "tok" / "vocab.json", encoding="utf-8") as handle:
        vocab = json.load(handle)
    assert f"pad_token_id={vocab['<pad>']}, eos_token_id=0" in capsys.readouterr().err
    assert vocab["<pad>"] == len(vocab) - 1
    assert sorted(os.listdir(tmp_path / "tok")) == [
        "source.spm", "special_tokens_map.json", "target.spm", "tokenizer_config.json", "vocab.json",
    ]  # fmt: skip
    assert main(argv[:-2] + ["--separate", "--model-type", "t5", "-o", str(tmp_path / "t5")]) == 2
    assert capsys.readouterr().err == "westron: error: T5 has one vocabulary for both languages: --separate applies to Marian only\n"


def test_sentences_over_sentencepieces_length_limit_are_counted_in_a_warning(tmp_path):
    """SentencePiece drops sentences over max_sentence_length without a word: Westron says how many."""
    from westron.data.tokenizer_training import MAX_SENTENCE_BYTES

    long = "word " * (MAX_SENTENCE_BYTES // 5 + 1)
    path = tmp_path / "c.tsv"
    path.write_text("en\tes\n" + f"{long}\tshort\n" * 3 + "red house\tcasa roja\n" * 3, encoding="utf-8")
    with pytest.warns(UserWarning, match="^3 sentences longer than 4192 bytes .* were left out of tokenizer training"):
        train_tokenizer("marian", [path], "en", "es", tmp_path / "tok", vocab_size=30)
    only_long = tmp_path / "long.tsv"
    only_long.write_text("en\tes\n" + f"{long}\t{long}\n", encoding="utf-8")
    with pytest.raises(WestronError, match=r"hold no text to train a tokenizer on \(2 sentences are longer than"):
        train_tokenizer("marian", [only_long], "en", "es", tmp_path / "tok2", vocab_size=30)


def test_bad_training_files_are_westron_errors(tmp_path, train_file):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"translation": {"en": "x", "fr": "y"}}\n', encoding="utf-8")
    with pytest.raises(WestronError, match=r"bad.jsonl:1: no es \(it has: en, fr\)"):
        train_tokenizer("marian", [bad], "en", "es", tmp_path / "out")
    tsv = tmp_path / "bad.tsv"
    tsv.write_text("en\tes\none\ttwo\tthree\n", encoding="utf-8")
    with pytest.raises(WestronError, match=r"bad.tsv:2: .*3"):
        train_tokenizer("marian", [train_file, tsv], "en", "es", tmp_path / "out")
    with pytest.raises(WestronError, match="no such file"):
        train_tokenizer("marian", [tmp_path / "missing.jsonl"], "en", "es", tmp_path / "out")
    with pytest.raises(WestronError, match="--extra-ids applies to T5 only"):
        train_tokenizer("marian", [train_file], "en", "es", tmp_path / "out", extra_ids=5)
    kept = tmp_path / "kept"
    train_tokenizer("marian", [train_file], "en", "es", kept, vocab_size=300)
    (kept / "train.jsonl").write_bytes(open(train_file, "rb").read())
    with pytest.raises(WestronError, match="is inside the output folder .* replaced as a whole"):
        train_tokenizer("marian", [kept / "train.jsonl"], "en", "es", kept, vocab_size=300)
    assert (kept / "train.jsonl").exists()  # not deleted with the old tokenizer
    (kept / "config.json").write_text("{}")
    (kept / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(WestronError, match="holds a model \\(config.json\\)"):
        train_tokenizer("marian", [train_file], "en", "es", kept, vocab_size=300)
    assert (kept / "model.safetensors").read_bytes() == b"weights"  # a checkpoint's weights are not deleted
    with pytest.raises(WestronError, match=r"^vocab_size must be at least 8, character_coverage in \[0.98, 1\]"):
        train_tokenizer("marian", [train_file], "en", "es", tmp_path / "out", character_coverage=0.9)  # refused before reading
    assert not (tmp_path / "out").exists()
