"""Cleaning and splitting: each rule's count, normalisation, deduplication and order-independent splits."""

from __future__ import annotations

import json
import random

import pytest

from westron.data.prepare import normalize_text, prepare
from westron.data.readers import read_pairs
from westron.data.records import Pair
from westron.errors import WestronError


def read_split(folder, split):
    return [(p.source, p.target) for p in read_pairs(folder / f"{split}.jsonl", "en", "es")]


def test_normalize_text():
    assert normalize_text("  Cafe\u0301 \t au\n lait ") == "Caf\u00e9 au lait"  # NFC, whitespace runs
    assert normalize_text("\u00ab\u00a0Bonjour\u00a0\u00bb") == "\u00ab\u00a0Bonjour\u00a0\u00bb"  # no-break spaces kept
    assert normalize_text("a\u2003\u3000b") == "a b"  # em and ideographic spaces are whitespace


def test_each_rule_counts_and_the_first_pair_of_a_source_is_kept(tmp_path):
    pairs = [
        Pair("Hello", "Hola"),
        Pair("  ", "vacío"),  # empty source
        Pair("Nothing", ""),  # empty target
        Pair("x" * 41, "y" * 41),  # too long (41 > 40 characters)
        Pair("Yes", "Sí, claro que sí, por supuesto"),  # ratio 29 / 3
        Pair("Hello ", "Hola otra vez"),  # duplicate source after normalisation
        Pair("Cafe\u0301", "Café"),
    ]
    summary = prepare(pairs, tmp_path / "out", "en", "es", max_length=40, max_length_ratio=3.0, validation_fraction=0, test_fraction=0)
    assert summary.read == 7
    assert dict(summary.removed) == {"empty": 2, "too_long": 1, "length_ratio": 1, "duplicate": 1}
    assert dict(summary.splits) == {"train": 2, "validation": 0, "test": 0}
    assert read_split(tmp_path / "out", "train") == [("Hello", "Hola"), ("Caf\u00e9", "Café")]
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["removed"] == {"empty": 2, "too_long": 1, "length_ratio": 1, "duplicate": 1}
    assert written["splits"] == {"train": 2, "validation": 0, "test": 0}
    assert written["options"]["max_length_chars"] == 40
    assert "removed: empty 2, too_long 1, length_ratio 1, duplicate 1" in summary.lines()


def test_rules_off_by_default(tmp_path):
    pairs = [Pair("x" * 1000, "y"), Pair("a", "b")]
    summary = prepare(pairs, tmp_path, "en", "es", validation_fraction=0, test_fraction=0)
    assert sum(summary.removed.values()) == 0 and summary.splits["train"] == 2


def corpus(n=600):
    return [Pair(f"source sentence {i}", f"frase {i}") for i in range(n)]


def test_splits_do_not_depend_on_input_order(tmp_path):
    pairs = corpus()
    shuffled = pairs[:]
    random.Random(1).shuffle(shuffled)
    first = prepare(pairs, tmp_path / "a", "en", "es", validation_fraction=0.1, test_fraction=0.1, seed=3)
    second = prepare(shuffled, tmp_path / "b", "en", "es", validation_fraction=0.1, test_fraction=0.1, seed=3)
    assert first.splits == second.splits
    for split in ("train", "validation", "test"):
        assert sorted(read_split(tmp_path / "a", split)) == sorted(read_split(tmp_path / "b", split))
    assert 30 < first.splits["validation"] < 90 and 30 < first.splits["test"] < 90  # about 10% of 600 each
    # Another seed gives another split.
    third = prepare(pairs, tmp_path / "c", "en", "es", validation_fraction=0.1, test_fraction=0.1, seed=4)
    assert read_split(tmp_path / "c", "test") != read_split(tmp_path / "a", "test")
    assert sum(third.splits.values()) == 600


def test_a_failure_replaces_no_output(tmp_path):
    out = tmp_path / "out"
    prepare(corpus(10), out, "en", "es")
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    def failing():
        yield Pair("new", "nuevo")
        raise WestronError("c.tsv:2: 1 fields, expected 2 fields")

    with pytest.raises(WestronError):
        prepare(failing(), out, "en", "es")
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before  # no temporary files left either
    with pytest.raises(WestronError):
        prepare(failing(), tmp_path / "fresh", "en", "es")
    assert not (tmp_path / "fresh").exists()


def test_bad_options(tmp_path):
    with pytest.raises(WestronError, match="leave nothing to train on"):
        prepare([], tmp_path, "en", "es", validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(WestronError, match="max_length_ratio must be at least 1"):
        prepare([], tmp_path, "en", "es", max_length_ratio=0.5)
    with pytest.raises(WestronError, match="max_length_ratio must be at least 1"):
        prepare([], tmp_path, "en", "es", max_length_ratio=float("nan"))  # would drop nothing
    (tmp_path / "file").write_text("")
    with pytest.raises(WestronError, match="it is a file, not a folder"):
        prepare([], tmp_path / "file", "en", "es")
