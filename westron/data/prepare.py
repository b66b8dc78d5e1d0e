"""Cleaning and splitting: pairs -> train / validation / test JSON lines, in one streaming pass.

Each pair is normalised (Unicode NFC; runs of whitespace other than no-break spaces become one
space; ends stripped), then dropped by the first rule it breaks, in this order:

    empty         the source or the target is empty after normalisation
    too_long      a side has more than `max_length` characters (characters, not tokens: no
                  tokenizer exists yet at this stage, and characters work for every script)
    length_ratio  the longer side has more than `max_length_ratio` times the characters of the
                  shorter (a misalignment symptom)
    duplicate     its source was seen before: the first pair with a source is kept

Survivors go to a split by `split_of(source)`, a hash of the normalised source alone, so a pair
lands in the same split whatever the input order, and one source never sits in two splits.
Deduplication keeps a 16-byte BLAKE2b digest per distinct source: memory grows with the number of
distinct sources (about 100 bytes each in a Python set, 1 GB for 10 M sources), not with the
corpus text, which is streamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from westron.data.readers import ReadStats
from westron.data.records import SPLITS, Pair, split_of, to_json_line
from westron.errors import WestronError
from westron.file_utils import atomic_write

RULES = ("empty", "too_long", "length_ratio", "duplicate")
SUMMARY_FILE = "summary.json"
# Whitespace runs collapse to one space; no-break spaces (U+00A0, U+2007, U+202F) carry meaning
# in typography (French « guillemets », thousands separators) and are kept.
WHITESPACE = re.compile(r"[^\S\u00a0\u2007\u202f]+")


NO_BREAK_SPACES = ("\u00a0", "\u2007", "\u202f")


def normalize_text(text: str) -> str:
    """NFC, whitespace runs as one space, no leading or trailing whitespace."""
    text = unicodedata.normalize("NFC", text)
    if any(space in text for space in NO_BREAK_SPACES):
        return WHITESPACE.sub(" ", text).strip()
    return " ".join(text.split())  # the same result without no-break spaces, several times faster


@dataclass
class PrepareSummary:
    """The counts `westron data prepare` prints and writes to summary.json."""

    read: int = 0
    removed: Counter = field(default_factory=lambda: Counter({rule: 0 for rule in RULES}))
    splits: Counter = field(default_factory=lambda: Counter({split: 0 for split in SPLITS}))
    malformed: ReadStats | None = None
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "read": self.read,
            "removed": {rule: self.removed[rule] for rule in RULES},
            "splits": {split: self.splits[split] for split in SPLITS},
            "malformed_skipped": dict(sorted(self.malformed.skipped.items())) if self.malformed else {},
            "options": self.options,
        }

    def lines(self) -> list[str]:
        """The summary as a few lines for a terminal."""
        lines = [f"read {self.read} pairs"]
        if self.malformed is not None and self.malformed.num_skipped:
            lines.append(f"skipped {self.malformed.skipped_summary()}")
            lines.extend(f"  e.g. {example}" for example in self.malformed.examples)
        lines.append("removed: " + ", ".join(f"{rule} {self.removed[rule]}" for rule in RULES))
        lines.append("kept: " + ", ".join(f"{split} {self.splits[split]}" for split in SPLITS))
        return lines


class PairCleaner:
    """Normalises a pair and says which rule drops it (None: keep); remembers the sources seen."""

    def __init__(self, max_length: int | None = None, max_length_ratio: float | None = None):
        if max_length is not None and max_length < 1:
            raise WestronError(f"max_length must be at least 1, not {max_length}")
        if max_length_ratio is not None and not max_length_ratio >= 1:  # NaN too: it would drop nothing
            raise WestronError(f"max_length_ratio must be at least 1, not {max_length_ratio}")
        self.max_length = max_length
        self.max_length_ratio = max_length_ratio
        self.seen_sources: set[bytes] = set()

    def __call__(self, pair: Pair) -> tuple[Pair, str | None]:
        source, target = normalize_text(pair.source), normalize_text(pair.target)
        pair = Pair(source, target, pair.origin)
        if not source or not target:
            return pair, "empty"
        if self.max_length is not None and max(len(source), len(target)) > self.max_length:
            return pair, "too_long"
        if self.max_length_ratio is not None:
            if max(len(source), len(target)) > self.max_length_ratio * min(len(source), len(target)):
                return pair, "length_ratio"
        digest = hashlib.blake2b(source.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if digest in self.seen_sources:
            return pair, "duplicate"
        self.seen_sources.add(digest)
        return pair, None


def prepare(
    pairs: Iterable[Pair],
    output_dir: str | os.PathLike,
    source_lang: str,
    target_lang: str,
    *,
    max_length: int | None = None,
    max_length_ratio: float | None = None,
    validation_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
    read_stats: ReadStats | None = None,
) -> PrepareSummary:
    """Cleans `pairs` and writes OUTPUT_DIR/{train,validation,test}.jsonl and summary.json.

    Each file is written atomically: on an error (a malformed record under on_error="fail") no
    output file is replaced. `read_stats`, the reader's counts, goes into the summary.
    """
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise WestronError(f"{name} must be in [0, 1), not {fraction}")
    if validation_fraction + test_fraction >= 1:
        raise WestronError("validation_fraction + test_fraction leave nothing to train on")
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise WestronError(f"cannot write to {output_dir}: it is a file, not a folder")
    summary = PrepareSummary(malformed=read_stats)
    summary.options = {
        "source_lang": source_lang,
        "target_lang": target_lang,
        "max_length_chars": max_length,
        "max_length_ratio": max_length_ratio,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "dedupe": "by source, first pair kept",
    }
    cleaner = PairCleaner(max_length, max_length_ratio)
    created = not os.path.exists(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    try:
        write_splits(pairs, output_dir, cleaner, summary)
        return summary
    except BaseException:
        if created:  # leave no empty folder behind a failed run
            with contextlib.suppress(OSError):
                os.rmdir(output_dir)
        raise


def write_splits(pairs: Iterable[Pair], output_dir: str, cleaner: PairCleaner, summary: PrepareSummary) -> None:
    """The streaming pass: clean, split, write; counts go into `summary` (its options say how)."""
    options = summary.options
    source_lang, target_lang = options["source_lang"], options["target_lang"]
    with contextlib.ExitStack() as stack:
        outputs = {split: stack.enter_context(atomic_write(os.path.join(output_dir, f"{split}.jsonl"))) for split in SPLITS}
        for pair in pairs:
            summary.read += 1
            pair, rule = cleaner(pair)
            if rule is not None:
                summary.removed[rule] += 1
                continue
            split = split_of(pair.source, options["validation_fraction"], options["test_fraction"], options["seed"])
            outputs[split].write(to_json_line(pair, source_lang, target_lang) + "\n")
            summary.splits[split] += 1
    with atomic_write(os.path.join(output_dir, SUMMARY_FILE)) as handle:
        json.dump(summary.to_dict(), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
