"""The pair record every reader yields, its JSON-lines form, and the deterministic split rule."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

from westron.file_utils import atomic_write

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Pair:
    """One parallel sentence pair and where it came from ("train.tsv:12", a catalog name), for messages and counts."""

    source: str
    target: str
    origin: str = ""


def to_json_line(pair: Pair, source_lang: str, target_lang: str) -> str:
    """Hugging Face's translation layout: {"translation": {"en": ..., "es": ...}}."""
    return json.dumps({"translation": {source_lang: pair.source, target_lang: pair.target}}, ensure_ascii=False)


def write_jsonl(pairs: Iterable[Pair], path: str | os.PathLike, source_lang: str, target_lang: str) -> int:
    """Writes pairs as JSON lines, atomically; returns how many were written."""
    count = 0
    with atomic_write(path) as handle:
        for pair in pairs:
            handle.write(to_json_line(pair, source_lang, target_lang) + "\n")
            count += 1
    return count


def split_of(key: str, validation_fraction: float, test_fraction: float, seed: int = 0) -> str:
    """The split a key (a source sentence, a catalog name) belongs to, from a hash of the key alone.

    The same key always lands in the same split, whatever the order or size of the input.
    """
    digest = hashlib.sha256(f"{seed}\0{key}".encode("utf-8", "surrogatepass")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    if position < test_fraction:
        return "test"
    if position < test_fraction + validation_fraction:
        return "validation"
    return "train"
