"""MarianTokenizer against Hugging Face's, on SentencePiece models trained by tests/spm_fixtures.py.

Every variant is an opus-mt style folder loaded by both libraries; ids, masks, labels and decoded
text must be identical on the whole multilingual corpus and its edge cases.
"""

import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

from tests.spm_fixtures import edge_case_texts, multilingual_corpus, trained_spm, write_marian_folder
from westron.errors import CheckpointError
from westron.models.marian.tokenization_marian import MarianTokenizer
from westron.tokenization_utils import SequenceTooLongWarning

LANGUAGE_CODES = [">>fra<<", ">>heb<<", ">>jpn<<", ">>kat<<"]

# name -> write_marian_folder arguments. "hf-saved" is "extras" after Hugging Face's save_pretrained
# (tokenizer_config.json with added_tokens_decoder, no special_tokens_map.json).
VARIANTS = {
    "shared": dict(language_codes=LANGUAGE_CODES),
    "separate": dict(separate_vocabs=True),
    "extras": dict(
        language_codes=LANGUAGE_CODES,
        tokenizer_config={
            # one extra special token new to the vocabulary, one already in it
            "additional_special_tokens": ["<eop>", ">>heb<<"],
            "clean_up_tokenization_spaces": True,
            "model_max_length": 24,
        },
        # Hugging Face ignores this list when tokenizer_config.json has one
        special_tokens_map={"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                            "additional_special_tokens": ["<eod>"]},
    ),
    "legacy-map": dict(
        # extras only in special_tokens_map.json; a token as a dict, as transformers 4.x wrote some
        language_codes=LANGUAGE_CODES,
        special_tokens_map={
            "eos_token": {"content": "</s>", "lstrip": False, "rstrip": False},
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "additional_special_tokens": ["<eod>", ">>kat<<"],
        },
    ),
    "hf-saved": None,
}

TEXTS = multilingual_corpus() + edge_case_texts()
TARGETS = TEXTS[7:] + TEXTS[:7]  # a different text beside each source
BATCH = 8
IGNORE_TOO_LONG = pytest.mark.filterwarnings("ignore::westron.tokenization_utils.SequenceTooLongWarning")


def hf_marian_tokenizer(folder, **kwargs):
    from transformers import MarianTokenizer as HFMarianTokenizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Recommended: pip install sacremoses."
        return HFMarianTokenizer.from_pretrained(os.fspath(folder), **kwargs)


def make_folder(variant, root):
    if variant == "hf-saved":
        hf_marian_tokenizer(make_folder("extras", root / "extras")).save_pretrained(root / "hf-saved")
        return os.fspath(root / "hf-saved")
    return write_marian_folder(root, **VARIANTS[variant])


@pytest.fixture(scope="module", params=list(VARIANTS))
def tokenizers(request, tmp_path_factory):
    """(westron, hf, folder) for one variant."""
    folder = make_folder(request.param, tmp_path_factory.mktemp(request.param))
    return MarianTokenizer.from_pretrained(folder), hf_marian_tokenizer(folder), folder


def batches(texts, size=BATCH):
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def as_plain(encoding):
    return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in dict(encoding).items()}


def first_mismatches(pairs, limit=3):
    """The first few (input, ours, theirs) that differ: a readable assertion message."""
    return [pair for pair in pairs if pair[1] != pair[2]][:limit]


# ---- encoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_tokens_and_ids_match_hf_text_by_text(tokenizers):
    ours, theirs, _ = tokenizers
    results = []
    for text in TEXTS:
        results.append((text, ours.tokenize(text), theirs.tokenize(text)))
        results.append((text, dict(ours(text)), dict(theirs(text))))
        results.append(("target: " + text, dict(ours(text_target=text)), dict(theirs(text_target=text))))
        results.append(("encode: " + text, ours.encode(text), theirs.encode(text)))
    assert not first_mismatches(results)


BATCH_SETTINGS = [
    dict(padding=True),
    dict(padding="longest", truncation=True, max_length=12),
    dict(padding="max_length", truncation=True, max_length=16),
    dict(padding="max_length", max_length=40, truncation=False),
    dict(padding="max_length"),  # to model_max_length
    dict(padding=True, truncation=True),  # to model_max_length
    dict(max_length=9),  # max_length alone truncates
    dict(truncation=True, max_length=10),  # truncated, not padded
    dict(padding=True, truncation=True, max_length=20, max_target_length=6),
    dict(padding=True, pad_to_multiple_of=8),
    dict(padding=True, padding_side="left"),
    dict(padding=True, return_attention_mask=False),
    dict(padding=True, add_special_tokens=False),
]


@IGNORE_TOO_LONG
@pytest.mark.parametrize("settings", BATCH_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_batches_with_targets_match_hf(tokenizers, settings):
    ours, theirs, _ = tokenizers
    results = []
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        ours_out = ours(sources, text_target=targets, **settings)
        theirs_out = theirs(sources, text_target=targets, **settings)
        results.append((sources, dict(ours_out), dict(theirs_out)))
        with_mask = settings.get("return_attention_mask", True)
        assert set(ours_out) == {"input_ids", "labels"} | ({"attention_mask"} if with_mask else set())
    assert not first_mismatches(results)
    if settings.get("padding"):
        sources, targets = TEXTS[-3 * BATCH :], TARGETS[-3 * BATCH :]  # long lines among them
        theirs_np = theirs(sources, text_target=targets, return_tensors="np", **settings)
        if any(array.dtype == object for array in theirs_np.values()):  # HF: ragged rows, no real tensor
            with pytest.raises(ValueError, match="different lengths"):
                ours(sources, text_target=targets, return_tensors="np", **settings)
            return
        ours_np = ours(sources, text_target=targets, return_tensors="np", **settings)
        for key in theirs_np:
            assert ours_np[key].dtype == np.int64 and ours_np[key].shape == theirs_np[key].shape
            np.testing.assert_array_equal(ours_np[key], theirs_np[key])


@IGNORE_TOO_LONG
def test_targets_alone_match_hf(tokenizers):
    ours, theirs, _ = tokenizers
    results = [
        (batch, dict(ours(text_target=batch, padding=True)), dict(theirs(text_target=batch, padding=True)))
        for batch in batches(TARGETS)
    ]
    assert not first_mismatches(results)
    assert "labels" not in ours(text_target=TARGETS[:2])


@IGNORE_TOO_LONG
def test_truncation_and_padding_sides_from_pretrained_match_hf(tokenizers):
    _, _, folder = tokenizers
    ours = MarianTokenizer.from_pretrained(folder, truncation_side="left", padding_side="left", model_max_length=11)
    theirs = hf_marian_tokenizer(folder, truncation_side="left", padding_side="left", model_max_length=11)
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        assert dict(ours(sources, text_target=targets, padding=True, truncation=True)) == dict(
            theirs(sources, text_target=targets, padding=True, truncation=True)
        )
    assert ours.model_max_length == 11


# ---- decoding -------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_decode_matches_hf(tokenizers):
    ours, theirs, _ = tokenizers
    results = []
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        encoded = theirs(sources, text_target=targets, padding=True)
        sequences = [(encoded["labels"], {})]
        # Source ids: with separate vocabularies they only make sense joined by source.spm.
        source_options = {"use_source_tokenizer": True} if ours.separate_vocabs else {}
        sequences.append((encoded["input_ids"], source_options))
        for ids, options in sequences:
            for skip in (False, True):
                options = dict(options, skip_special_tokens=skip)
                results.append((ids, ours.batch_decode(ids, **options), theirs.batch_decode(ids, **options)))
                results.append((ids[0], ours.decode(ids[0], **options), theirs.decode(ids[0], **options)))
    assert not first_mismatches(results)


def test_decode_of_random_ids_matches_hf(tokenizers):
    """Special tokens anywhere, pieces in any order, the ids of added tokens."""
    ours, theirs, _ = tokenizers
    rng = np.random.default_rng(0)
    ids = sorted(set(ours.decoder) | set(ours.added_tokens_decoder))
    results = []
    for length in list(range(0, 40)) * 2:
        sequence = [int(i) for i in rng.choice(ids, size=length)]
        for skip in (False, True):
            results.append(
                (sequence, ours.decode(sequence, skip_special_tokens=skip),
                 theirs.decode(sequence, skip_special_tokens=skip))
            )  # fmt: skip
        for clean_up in (False, True):
            results.append(
                (sequence, ours.decode(sequence, clean_up_tokenization_spaces=clean_up),
                 theirs.decode(sequence, clean_up_tokenization_spaces=clean_up))
            )  # fmt: skip
    assert not first_mismatches(results)
    assert [ours.decode(i) for i in ids[:20]] == [theirs.decode(i) for i in ids[:20]]


def test_decode_accepts_arrays_and_tensors(tokenizers):
    torch = pytest.importorskip("torch")
    ours, theirs, _ = tokenizers
    ids = theirs(text_target=TARGETS[:BATCH], padding=True, return_tensors="np")["input_ids"]
    expected = theirs.batch_decode(ids.tolist(), skip_special_tokens=True)
    assert ours.batch_decode(ids, skip_special_tokens=True) == expected
    assert ours.batch_decode(torch.from_numpy(ids), skip_special_tokens=True) == expected
    assert ours.decode(torch.from_numpy(ids[0]), skip_special_tokens=True) == expected[0]
    assert ours.batch_decode(ids[0].tolist()) == [theirs.decode(ids[0].tolist())]


# ---- vocabulary and special tokens ----------------------------------------------------------------


def test_special_tokens_and_sizes_match_hf(tokenizers):
    ours, theirs, _ = tokenizers
    for name in ("pad_token", "eos_token", "unk_token", "bos_token"):
        assert getattr(ours, name) == getattr(theirs, name), name
        assert getattr(ours, f"{name}_id") == getattr(theirs, f"{name}_id"), name
    assert ours.vocab_size == theirs.vocab_size
    assert len(ours) == len(theirs)
    assert ours.all_special_tokens == theirs.all_special_tokens
    assert ours.all_special_ids == theirs.all_special_ids
    assert ours.supported_language_codes == theirs.supported_language_codes
    assert ours.get_vocab() == theirs.get_vocab()
    assert {i: t.content for i, t in ours.added_tokens_decoder.items()} == {
        i: t.content for i, t in theirs.added_tokens_decoder.items()
    }
    ids = sorted(set(ours.decoder) | set(ours.added_tokens_decoder))
    assert ours.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(ids, skip_special_tokens=True) == theirs.convert_ids_to_tokens(
        ids, skip_special_tokens=True
    )
    tokens = list(ours.get_vocab()) + ["never-a-piece", ">>zzz<<"]
    assert ours.convert_tokens_to_ids(tokens) == theirs.convert_tokens_to_ids(tokens)


def test_language_code_is_one_token(tmp_path):
    ours = MarianTokenizer.from_pretrained(write_marian_folder(tmp_path, language_codes=LANGUAGE_CODES))
    ids = ours(">>heb<< שלום")["input_ids"]
    assert ids[0] == ours.get_vocab()[">>heb<<"] and ids[-1] == ours.eos_token_id == 0
    assert ours(">>xyz<< a")["input_ids"][0] == ours.unk_token_id
    assert ours.pad_token_id == len(ours.get_vocab()) - 1  # opus-mt: <pad> last


# ---- files ----------------------------------------------------------------------------------------


@IGNORE_TOO_LONG
def test_save_pretrained_round_trip(tokenizers, tmp_path):
    ours, theirs, folder = tokenizers
    written = ours.save_pretrained(tmp_path / "saved")
    names = sorted(os.listdir(tmp_path / "saved"))
    expected = ["source.spm", "special_tokens_map.json", "target.spm", "tokenizer_config.json", "vocab.json"]
    assert names == sorted(expected + (["target_vocab.json"] if ours.separate_vocabs else []))  # no temp files
    assert sorted(os.path.basename(path) for path in written) == names
    for name in ("source.spm", "target.spm"):
        with open(os.path.join(folder, name), "rb") as a, open(tmp_path / "saved" / name, "rb") as b:
            assert a.read() == b.read(), name
    config = json.loads((tmp_path / "saved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "MarianTokenizer"
    assert config["separate_vocabs"] == ours.separate_vocabs
    assert not {"source_spm", "vocab", "name_or_path", "is_local", "backend"} & set(config)

    reloaded = MarianTokenizer.from_pretrained(tmp_path / "saved")
    theirs_reloaded = hf_marian_tokenizer(tmp_path / "saved")
    assert reloaded.tokenizer_config() == ours.tokenizer_config()
    for sources, targets in zip(batches(TEXTS), batches(TARGETS)):
        expected_encoding = dict(theirs(sources, text_target=targets, padding=True))
        assert dict(reloaded(sources, text_target=targets, padding=True)) == expected_encoding
        assert dict(theirs_reloaded(sources, text_target=targets, padding=True)) == expected_encoding
        labels = expected_encoding["labels"]
        expected_text = theirs.batch_decode(labels, skip_special_tokens=True)
        assert reloaded.batch_decode(labels, skip_special_tokens=True) == expected_text
        assert theirs_reloaded.batch_decode(labels) == theirs.batch_decode(labels)

    # Saving again, into the folder it was loaded from, changes nothing.
    before = {name: (tmp_path / "saved" / name).read_bytes() for name in names}
    reloaded.save_pretrained(tmp_path / "saved")
    assert {name: (tmp_path / "saved" / name).read_bytes() for name in names} == before


def test_save_pretrained_refuses_a_file(tmp_path):
    ours = MarianTokenizer.from_pretrained(write_marian_folder(tmp_path / "tok"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception, match="is a file"):
        ours.save_pretrained(tmp_path / "file")


def test_from_pretrained_takes_hub_kwargs_and_overrides(tmp_path):
    folder = write_marian_folder(tmp_path)
    ours = MarianTokenizer.from_pretrained(folder, local_files_only=True, revision=None, model_max_length=7)
    assert ours.model_max_length == 7
    assert len(ours("a b c d e f g h i j k", truncation=True)["input_ids"]) == 7


def test_auto_tokenizer_picks_marian(tmp_path):
    from westron.models.auto import AutoTokenizer

    folder = write_marian_folder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "marian"}))
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    assert isinstance(tokenizer, MarianTokenizer)


def test_missing_or_broken_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError):
        MarianTokenizer.from_pretrained(tmp_path / "nowhere")
    folder = write_marian_folder(tmp_path / "no-vocab")
    os.remove(os.path.join(folder, "vocab.json"))
    with pytest.raises(CheckpointError, match="vocab.json"):
        MarianTokenizer.from_pretrained(folder)

    folder = write_marian_folder(tmp_path / "no-unk")
    vocab = json.loads(open(os.path.join(folder, "vocab.json"), encoding="utf-8").read())
    del vocab["<unk>"]
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as handle:
        json.dump(vocab, handle)
    with pytest.raises(CheckpointError, match="<unk>"):
        MarianTokenizer.from_pretrained(folder)

    folder = write_marian_folder(tmp_path / "no-target-vocab", separate_vocabs=True)
    os.remove(os.path.join(folder, "target_vocab.json"))
    with pytest.raises(CheckpointError, match="target_vocab.json"):
        MarianTokenizer.from_pretrained(folder)

    folder = write_marian_folder(tmp_path / "bad-spm")
    with open(os.path.join(folder, "source.spm"), "wb") as handle:
        handle.write(b"not a model")
    with pytest.raises(CheckpointError, match="source.spm"):
        MarianTokenizer.from_pretrained(folder)


# ---- behaviour around the call ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_tokenizers(tmp_path_factory):
    """model_max_length 24: many corpus lines are longer."""
    folder = write_marian_folder(tmp_path_factory.mktemp("short"), tokenizer_config={"model_max_length": 24})
    return MarianTokenizer.from_pretrained(folder), hf_marian_tokenizer(folder)


def test_too_long_text_warns_once_per_call_and_is_kept(short_tokenizers):
    ours, theirs = short_tokenizers
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        encoding = ours(TEXTS, padding=True)
    too_long = [w for w in caught if issubclass(w.category, SequenceTooLongWarning)]
    assert len(too_long) == 1, [str(w.message) for w in caught]
    assert "24" in str(too_long[0].message)
    assert dict(encoding) == dict(theirs(TEXTS, padding=True))  # kept whole, as Hugging Face does
    assert max(map(len, encoding["input_ids"])) > 24

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert max(map(len, ours(TEXTS, truncation=True)["input_ids"])) == 24
        ours(TEXTS, padding=True, verbose=False)
        ours(TEXTS, padding=True, truncation=False)  # explicit: the caller checks lengths itself
        ours("short")
    with pytest.warns(SequenceTooLongWarning, match="10"):
        ours(TEXTS, padding="max_length", max_length=10)  # padding: max_length does not truncate
    with warnings.catch_warnings():  # what the CLI does to make it an error
        warnings.simplefilter("error", SequenceTooLongWarning)
        with pytest.raises(SequenceTooLongWarning):
            ours(TEXTS)


def test_return_tensors_pt_and_tf_match_hf(short_tokenizers):
    torch = pytest.importorskip("torch")
    ours, theirs = short_tokenizers
    sources, targets = TEXTS[:BATCH], TARGETS[:BATCH]
    ours_pt = ours(sources, text_target=targets, padding=True, truncation=True, return_tensors="pt")
    theirs_pt = theirs(sources, text_target=targets, padding=True, truncation=True, return_tensors="pt")
    for key in theirs_pt:
        assert ours_pt[key].dtype == torch.long
        assert torch.equal(ours_pt[key], theirs_pt[key]), key
    assert ours_pt.input_ids is ours_pt["input_ids"]
    single = ours(sources[0], return_tensors="pt")
    assert single["input_ids"].shape == (1, len(ours(sources[0])["input_ids"]))

    tf = pytest.importorskip("tensorflow")
    ours_tf = ours(sources, text_target=targets, padding=True, truncation=True, return_tensors="tf")
    for key in theirs_pt:
        assert isinstance(ours_tf[key], tf.Tensor) and ours_tf[key].dtype == tf.int32
        np.testing.assert_array_equal(ours_tf[key].numpy(), theirs_pt[key].numpy())
    assert ours.batch_decode(ours_tf["labels"]) == theirs.batch_decode(theirs_pt["labels"])


def test_no_framework_imported_unless_asked(tmp_path):
    folder = write_marian_folder(tmp_path)
    code = (
        "import sys\n"
        "from westron.models.marian.tokenization_marian import MarianTokenizer\n"
        f"tok = MarianTokenizer.from_pretrained({folder!r})\n"
        "batch = tok(['a b', 'c'], text_target=['d', 'e f'], padding=True, return_tensors='np')\n"
        "tok.batch_decode(batch['labels'], skip_special_tokens=True)\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'framework imported'\n"
        "tok(['a'], return_tensors='pt')\n"
        "assert 'torch' in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bad_arguments_raise(short_tokenizers):
    ours, _ = short_tokenizers
    with pytest.raises(ValueError, match="padding=True"):
        ours(["a", "a much longer text"], return_tensors="np")
    with pytest.raises(ValueError, match="padding"):
        ours(["a"], padding="sideways")
    with pytest.raises(ValueError, match="truncation"):
        ours(["a"], truncation="only_second")
    with pytest.raises(ValueError, match="return_tensors"):
        ours(["a"], return_tensors="jax")
    with pytest.raises(ValueError):
        ours()
    with pytest.raises(TypeError):
        ours([1, 2, 3])
    with pytest.raises(ValueError, match="multiple"):
        ours(["a"], padding="max_length", truncation=True, max_length=10, pad_to_multiple_of=8)


@IGNORE_TOO_LONG
def test_pad_and_pickle(short_tokenizers):
    ours, theirs = short_tokenizers
    rows = [ours(text)["input_ids"] for text in TEXTS[:5]]
    padded = ours.pad({"input_ids": rows}, return_tensors="np")
    expected = theirs(TEXTS[:5], padding=True, return_tensors="np")
    np.testing.assert_array_equal(padded["input_ids"], expected["input_ids"])
    np.testing.assert_array_equal(padded["attention_mask"], expected["attention_mask"])
    assert ours.pad([{"input_ids": row} for row in rows])["input_ids"] == expected["input_ids"].tolist()

    copy = pickle.loads(pickle.dumps(ours))
    assert dict(copy(TEXTS[:BATCH], padding=True)) == dict(ours(TEXTS[:BATCH], padding=True))


def test_spm_fixture_is_multilingual_and_cached():
    corpus = multilingual_corpus()
    assert 250 <= len(corpus) <= 500 and "" in corpus
    scripts = {"\u05d0": "Hebrew", "\u3042": "Japanese", "\u10d0": "Georgian"}  # א, あ, ა ranges
    for first, name in scripts.items():
        block = ord(first) // 256
        assert any(ord(ch) // 256 == block for line in corpus for ch in line), name
    assert trained_spm("source") == trained_spm("source")  # cached: trained once
