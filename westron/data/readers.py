"""Corpus readers: JSON lines, TSV, CSV, Moses file pairs and Hugging Face `datasets`, all yielding `Pair`s.

    pairs = read_pairs("corpus.tsv", "en", "es", on_error="skip", stats=stats)

Every reader streams: it holds one line (one row, one Arrow batch) at a time, so a corpus larger
than memory reads in bounded memory. Text is decoded strictly as UTF-8, line by line, so a bad
byte is reported with its file and line number. A malformed record (a line that is not JSON, a
missing language, a row with the wrong number of columns, invalid UTF-8, Moses files of unequal
length) raises `WestronError` naming the file and line under `on_error="fail"`; under
`on_error="skip"` it is skipped and counted in the caller's `ReadStats`.

A language the input does not have is always an error (skipping every line would hide it), and
the message names the languages (columns) that are there.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from westron.data.records import Pair
from westron.errors import WestronError

FORMATS = ("jsonl", "tsv", "csv", "moses", "hf")
ON_ERROR = ("fail", "skip")
# File name endings -> format; a trailing ".gz" is read through gzip and ignored here.
EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".csv": "csv"}
EXAMPLES_KEPT = 5  # skipped-record messages kept for the caller to show


@dataclass
class ReadStats:
    """What a reader did: pairs yielded, malformed records skipped (by kind), the first messages."""

    pairs: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict:
        return {"pairs": self.pairs, "skipped": dict(sorted(self.skipped.items())), "examples": list(self.examples)}

    def skipped_summary(self) -> str:
        """'3 malformed records (invalid_json 2, missing_language 1)': what was skipped, for a warning line."""
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.skipped.items()))
        return f"{self.num_skipped} malformed records ({kinds})"


class _Problems:
    """Applies the on_error policy: raise the message, or count it under its kind."""

    def __init__(self, on_error: str, stats: ReadStats):
        self.on_error = on_error
        self.stats = stats

    def __call__(self, kind: str, message: str) -> None:
        if self.on_error == "fail":
            if kind == "missing_language":  # often the whole file's keys are other than the languages asked for
                raise WestronError(
                    f"{message}: give the file's own language keys, or pass on_error='skip' / --on-error skip "
                    "if only some records lack one"
                )
            raise WestronError(f"{message} (pass on_error='skip' / --on-error skip to skip such records)")
        self.stats.skipped[kind] += 1
        if len(self.stats.examples) < EXAMPLES_KEPT:
            self.stats.examples.append(message)


# ---- entry point -----------------------------------------------------------------------------------


def read_pairs(
    path_or_name: str | os.PathLike,
    source_lang: str,
    target_lang: str,
    *,
    format: str | None = None,
    on_error: str = "fail",
    stats: ReadStats | None = None,
    source_column: str | int | None = None,
    target_column: str | int | None = None,
    header: bool | None = None,
    hf_config: str | None = None,
    split: str | None = None,
) -> Iterator[Pair]:
    """Streams the pairs of a corpus in any supported format; see the module docstring.

    The arguments, the format and the file's existence are checked at once; records are read
    (and malformed ones reported) as the returned iterator is consumed.

    format: "jsonl", "tsv", "csv", "moses" or "hf"; None guesses it from the path: the file
    extension (.jsonl/.json, .tsv, .csv, optionally + .gz), a folder written by `save_to_disk`, or
    a Moses prefix (`train` with `train.en` and `train.es`, or `train.en` itself). A Hub dataset
    name is never guessed (it could be a mistyped path): pass format="hf".
    source_column / target_column / header: TSV and CSV only (a column name from the header
    line, or a 0-based index; default: the columns named after the languages, with a header).
    hf_config / split: Hugging Face datasets only (the Hub config, e.g. "en-es"; the split,
    default "train" when the dataset has several). Options that do not apply to the format are
    refused rather than ignored.
    """
    if on_error not in ON_ERROR:
        raise WestronError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
    if not source_lang or not target_lang:
        raise WestronError("give both a source and a target language")
    if source_lang == target_lang:
        raise WestronError(f"the source and target languages are both {source_lang!r}")
    path = os.fspath(path_or_name)
    format = format or guess_format(path, source_lang, target_lang)
    if format not in FORMATS:
        raise WestronError(f"unknown input format {format!r}; choose one of {', '.join(FORMATS)}")
    options = {"source_column": source_column, "target_column": target_column, "header": header}
    hf_options = {"hf_config": hf_config, "split": split}
    given = {name for name, value in {**options, **hf_options}.items() if value is not None}
    allowed = {"tsv": set(options), "csv": set(options), "hf": set(hf_options)}.get(format, set())
    if given - allowed:
        raise WestronError(f"{', '.join(sorted(given - allowed))} do(es) not apply to {format} input")
    if format in ("jsonl", "tsv", "csv") and not os.path.isfile(path):
        reason = "it is a folder" if os.path.isdir(path) else "no such file"
        raise WestronError(f"cannot read input file {path}: {reason}")
    stats = stats if stats is not None else ReadStats()
    problems = _Problems(on_error, stats)
    if format == "jsonl":
        records = read_jsonl(path, source_lang, target_lang, problems)
    elif format in ("tsv", "csv"):
        records = read_table(path, source_lang, target_lang, problems, delimiter="\t" if format == "tsv" else ",", **options)
    elif format == "moses":
        records = read_moses(path, source_lang, target_lang, problems)
    else:
        dataset = load_hf_dataset(path, **hf_options)  # now, so that a missing dataset fails before any output
        records = read_hf_dataset(dataset, path, source_lang, target_lang, problems)
    return counted(records, stats)


def counted(records: Iterator[Pair], stats: ReadStats) -> Iterator[Pair]:
    for pair in records:
        stats.pairs += 1
        yield pair


def guess_format(path: str, source_lang: str, target_lang: str) -> str:
    """The format of `path` from its extension, its folder contents or its Moses siblings."""
    if os.path.isdir(path):
        if any(os.path.exists(os.path.join(path, name)) for name in ("dataset_info.json", "dataset_dict.json", "state.json")):
            return "hf"
        raise WestronError(f"{path} is a folder but not a Hugging Face dataset saved with save_to_disk")
    stem = path[: -len(".gz")] if path.endswith(".gz") else path
    extension = os.path.splitext(stem)[1].lower()
    if extension in EXTENSIONS:
        return EXTENSIONS[extension]
    if moses_files(path, source_lang, target_lang) is not None:
        return "moses"
    if os.path.exists(path):
        raise WestronError(f"cannot tell the format of {path} from its name: pass --input-format ({', '.join(FORMATS)})")
    raise WestronError(
        f"no such file, folder or Moses pair ({path}.{source_lang} + {path}.{target_lang}): {path} "
        "(for a Hugging Face Hub dataset pass --input-format hf)"
    )


# ---- reading lines ---------------------------------------------------------------------------------


def open_binary(path: str) -> BinaryIO:
    """Opens a file for reading bytes (through gzip for .gz); a missing file is a WestronError."""
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as error:
        raise WestronError(f"cannot read input file {path}: {error.strerror}") from None


def decode_line(raw: bytes, name: str, number: int, problems: _Problems, keep_ends: bool = False) -> str | None:
    """One line's text without its line ending (and a first line's byte-order mark); None if not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        problems("invalid_utf8", f"{name}:{number}: not valid UTF-8 ({error.reason} at byte {error.start})")
        return None
    if number == 1 and text.startswith("\ufeff"):  # the byte-order mark some editors write
        text = text[1:]
    return text if keep_ends else text.rstrip("\r\n")


def decoded_lines(stream: BinaryIO, name: str, problems: _Problems, keep_ends: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, text); lines with invalid UTF-8 are problems."""
    try:
        for number, raw in enumerate(stream, start=1):
            text = decode_line(raw, name, number, problems, keep_ends)
            if text is not None:
                yield number, text
    except (OSError, EOFError) as error:  # a truncated or corrupt .gz, a read error
        raise WestronError(f"cannot read {name}: {error}") from None


def check_languages_found(name: str, pairs_read: int, missing: int, seen: Iterable[str], source_lang, target_lang) -> None:
    """Every record lacked a language: the input does not have it (a clear error even under skip)."""
    if pairs_read == 0 and missing:
        present = ", ".join(sorted(seen)) or "none"
        raise WestronError(f"{name} has no {source_lang}-{target_lang} pairs; languages present: {present}")


# ---- JSON lines ------------------------------------------------------------------------------------


def read_jsonl(path: str, source_lang: str, target_lang: str, problems: _Problems) -> Iterator[Pair]:
    """Hugging Face's translation layout, one object a line: {"translation": {"en": ..., "es": ...}}.

    Blank lines are passed over.
    """
    name = os.path.basename(path)
    pairs_read, missing, seen = 0, 0, set()
    with open_binary(path) as stream:
        for number, line in decoded_lines(stream, name, problems):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            if pairs_read == missing == 0 and line.lstrip().startswith("["):  # a whole file's mistake, even under skip
                raise WestronError(
                    f"{where}: {name} holds a JSON array; Westron reads JSON lines, one object a line "
                    "(convert it, e.g. jq -c '.[]' FILE > FILE.jsonl)"
                )
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                problems("invalid_json", f"{where}: not valid JSON ({error.msg} at column {error.colno})")
                continue
            translation = record.get("translation") if isinstance(record, dict) else None
            if not isinstance(translation, dict):
                problems("invalid_json", f'{where}: no "translation" object (expected {{"translation": {{"{source_lang}": ..., "{target_lang}": ...}}}})')
                continue
            seen.update(translation)
            absent = [lang for lang in (source_lang, target_lang) if lang not in translation]
            if absent:
                missing += 1
                problems("missing_language", f"{where}: no {', '.join(absent)} (it has: {', '.join(translation) or 'nothing'})")
                continue
            source, target = translation[source_lang], translation[target_lang]
            if not isinstance(source, str) or not isinstance(target, str):
                problems("invalid_json", f"{where}: the {source_lang} and {target_lang} texts must be strings")
                continue
            if not (is_unicode_text(source) and is_unicode_text(target)):
                # json.loads accepts an escaped lone surrogate ("\ud800"); no UTF-8 file or tokenizer can hold it.
                problems("invalid_json", f"{where}: a lone surrogate escape (\\ud800-\\udfff) in the text: not Unicode text")
                continue
            pairs_read += 1
            yield Pair(source, target, where)
    check_languages_found(name, pairs_read, missing, seen, source_lang, target_lang)


def is_unicode_text(text: str) -> bool:
    """False for a string holding a lone surrogate, which has no UTF-8 form."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---- TSV and CSV -----------------------------------------------------------------------------------


def column_index(column: str | int, header: list[str] | None, name: str, role: str) -> int:
    """A column given by header name or by 0-based index (an int, or a string of digits)."""
    if isinstance(column, int) or (isinstance(column, str) and column.isdigit()):
        return int(column)
    if header is None:
        raise WestronError(f"{name}: the {role} column {column!r} is a name, but the file is read without a header")
    if column not in header:
        present = ", ".join(repr(title) for title in header)
        raise WestronError(
            f"{name} has no column {column!r} (its header: {present}); for a file without a header give the "
            "columns by index: --source-column 0 --target-column 1"
        )
    return header.index(column)


def read_table(
    path: str,
    source_lang: str,
    target_lang: str,
    problems: _Problems,
    *,
    delimiter: str,
    source_column: str | int | None = None,
    target_column: str | int | None = None,
    header: bool | None = None,
) -> Iterator[Pair]:
    """TSV (fields split on tabs, no quoting: corpora are full of stray quotes) or CSV (RFC 4180 quoting).

    The first line is a header unless `header=False`, or both columns are given by index. Every
    row must have as many fields as the header (or, without one, as the first row).
    """
    name = os.path.basename(path)
    source_column = source_lang if source_column is None else source_column
    target_column = target_lang if target_column is None else target_column
    by_index = all(isinstance(c, int) or c.isdigit() for c in (source_column, target_column))
    has_header = (not by_index) if header is None else header
    with open_binary(path) as stream:
        is_tsv = delimiter == "\t"
        lines = decoded_lines(stream, name, problems, keep_ends=not is_tsv)  # a CSV field may hold a newline
        rows = tsv_rows(lines) if is_tsv else csv_rows(lines, delimiter, name, problems)
        titles = None
        if has_header:
            first = next(rows, None)
            if first is None:
                raise WestronError(f"{name} is empty: no header line")
            titles = first[1]
        columns = [column_index(c, titles, name, role) for c, role in ((source_column, "source"), (target_column, "target"))]
        width = len(titles) if titles is not None else None
        for number, fields in rows:
            if width is None:
                width = len(fields)  # no header: the first row sets the width
            if max(columns) >= width:  # a whole-file mistake, even under skip (every row would be skipped)
                raise WestronError(f"{name} has {width} columns (0-based: 0 to {width - 1}): it has no column {max(columns)}")
            if len(fields) != width:
                problems("wrong_column_count", f"{name}:{number}: {len(fields)} fields, expected {width} fields")
                continue
            yield Pair(fields[columns[0]], fields[columns[1]], f"{name}:{number}")


def tsv_rows(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, list[str]]]:
    for number, line in lines:
        if line:
            yield number, line.split("\t")


def csv_rows(lines: Iterator[tuple[int, str]], delimiter: str, name: str, problems: _Problems) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with the line they start on; a quoted field may span lines. A row the csv module
    refuses (a lone carriage return in an unquoted field) is a problem; reading goes on after it."""
    last_line = [0]

    def texts():
        for number, line in lines:
            last_line[0] = number
            yield line

    reader = csv.reader(texts(), delimiter=delimiter, strict=False)
    while True:
        first_line = last_line[0] + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            reason = "a carriage return (\\r) inside an unquoted field" if "new-line character" in str(error) else str(error)
            problems("invalid_csv", f"{name}:{last_line[0]}: not valid CSV: {reason}")
            continue
        if fields:
            yield first_line, fields


# ---- Moses file pairs ------------------------------------------------------------------------------


def moses_files(path: str, source_lang: str, target_lang: str) -> tuple[str, str] | None:
    """The two files of a Moses pair: `PREFIX.src` + `PREFIX.tgt`, from the prefix or either file."""
    candidates = [path]
    for lang in (source_lang, target_lang):
        if path.endswith(f".{lang}"):
            candidates.append(path[: -len(lang) - 1])
    for prefix in candidates:
        files = (f"{prefix}.{source_lang}", f"{prefix}.{target_lang}")
        if all(os.path.isfile(file) for file in files):
            return files
    return None


def count_lines(path: str) -> int:
    """Lines in a file, counted in 1 MiB blocks (a last line without a newline counts)."""
    count, last = 0, b"\n"
    with open_binary(path) as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def read_moses(path: str, source_lang: str, target_lang: str, problems: _Problems) -> Iterator[Pair]:
    """Two aligned plain-text files, one sentence a line (`train.en` + `train.es`).

    Their line counts are checked first: unequal files mean the alignment is off. Under skip,
    the pairs up to the shorter file's end are read and the surplus lines counted as skipped.
    """
    files = moses_files(path, source_lang, target_lang)
    if files is None:
        raise WestronError(f"cannot read the Moses pair {path}.{source_lang} + {path}.{target_lang}: not both files exist")
    source_file, target_file = files
    source_name, target_name = os.path.basename(source_file), os.path.basename(target_file)
    counts = count_lines(source_file), count_lines(target_file)
    if counts[0] != counts[1]:
        message = f"{source_name} has {counts[0]} lines but {target_name} has {counts[1]}: the files are not aligned"
        if problems.on_error == "fail":
            problems("line_count_mismatch", message)
        problems.stats.skipped["line_count_mismatch"] += abs(counts[0] - counts[1])
        problems.stats.examples.append(message + f"; the last {abs(counts[0] - counts[1])} lines were skipped")
    with open_binary(source_file) as source_stream, open_binary(target_file) as target_stream:
        # Invalid UTF-8 on one side skips the pair (never shifts the alignment).
        for number, (raw_source, raw_target) in enumerate(zip(source_stream, target_stream), start=1):
            source = decode_line(raw_source, source_name, number, problems)
            target = decode_line(raw_target, target_name, number, problems)
            if source is not None and target is not None:
                yield Pair(source, target, f"{source_name}:{number}")


# ---- Hugging Face datasets -------------------------------------------------------------------------

HF_BATCH = 1000  # rows converted from Arrow at a time


def load_hf_dataset(path_or_name: str, hf_config: str | None = None, split: str | None = None):
    """A `datasets.Dataset`: from a `save_to_disk` folder, or a Hub name through the local cache.

    `HF_DATASETS_OFFLINE=1` (read by `datasets` itself) keeps a Hub name to the cache.
    """
    try:
        import datasets
    except ImportError:
        raise WestronError("reading Hugging Face datasets needs the `datasets` package: pip install 'westron[data]'") from None
    if os.path.isdir(path_or_name):
        if hf_config is not None:
            raise WestronError("hf_config applies to Hub datasets, not to a folder saved with save_to_disk")
        try:
            dataset = datasets.load_from_disk(path_or_name)
        except (FileNotFoundError, ValueError) as error:
            raise WestronError(f"cannot load the dataset folder {path_or_name}: {error}") from None
    else:
        try:
            dataset = datasets.load_dataset(path_or_name, hf_config, split=split)
        except Exception as error:  # datasets raises many types (ConnectionError, DatasetNotFoundError, ValueError)
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise WestronError(f"cannot load the Hugging Face dataset {path_or_name!r}: {first_line}") from None
    if isinstance(dataset, datasets.DatasetDict):
        if split is None and len(dataset) == 1:
            split = next(iter(dataset))
        split = split or "train"
        if split not in dataset:
            raise WestronError(f"{path_or_name} has no split {split!r}; its splits: {', '.join(dataset)}")
        dataset = dataset[split]
    elif split is not None and os.path.isdir(path_or_name):
        raise WestronError(f"{path_or_name} holds a single dataset, not splits: drop split={split!r}")
    return dataset


def read_hf_dataset(dataset, path_or_name: str, source_lang: str, target_lang: str, problems: _Problems) -> Iterator[Pair]:
    """Rows of a `translation` column ({"en": ..., "es": ...}) or of two columns named after the languages.

    The columns are checked at the call; the rows are read as the iterator is consumed.
    """
    name = os.path.basename(os.path.normpath(path_or_name)) if os.path.isdir(path_or_name) else path_or_name
    columns = list(dataset.column_names)
    if "translation" in columns:
        feature = dataset.features["translation"]
        languages = list(getattr(feature, "languages", None) or (feature if isinstance(feature, dict) else []))
        absent = [lang for lang in (source_lang, target_lang) if languages and lang not in languages]
        if absent:
            raise WestronError(f"{name} has no {', '.join(absent)} translations; languages present: {', '.join(languages)}")
        batches = dataset.select_columns(["translation"]).iter(batch_size=HF_BATCH)
        rows = (row for batch in batches for row in batch["translation"])
        return translation_dicts(rows, name, source_lang, target_lang, problems)
    if source_lang in columns and target_lang in columns:
        batches = dataset.select_columns([source_lang, target_lang]).iter(batch_size=HF_BATCH)
        rows = ({source_lang: source, target_lang: target} for batch in batches for source, target in zip(batch[source_lang], batch[target_lang]))
        return translation_dicts(rows, name, source_lang, target_lang, problems)
    raise WestronError(
        f"{name} has neither a 'translation' column nor columns {source_lang!r} and {target_lang!r}; "
        f"its columns: {', '.join(columns)}"
    )


def translation_dicts(rows: Iterable, name: str, source_lang: str, target_lang: str, problems: _Problems) -> Iterator[Pair]:
    """Pairs from {"en": ..., "es": ...} dicts; rows counted from 0, as `dataset[i]` numbers them."""
    pairs_read, missing, seen = 0, 0, set()
    for number, translation in enumerate(rows):
        translation = translation or {}
        present = {lang for lang, text in translation.items() if isinstance(text, str)}
        seen.update(present)
        absent = [lang for lang in (source_lang, target_lang) if lang not in present]
        not_text = [lang for lang in absent if translation.get(lang) is not None]
        if not_text:  # a number, a list: the column is there, its value is not a text
            kinds = ", ".join(f"{lang} is {type(translation[lang]).__name__}" for lang in not_text)
            problems("not_text", f"{name}: row {number}: the {source_lang} and {target_lang} texts must be strings ({kinds})")
            continue
        if absent:
            missing += 1
            problems("missing_language", f"{name}: row {number}: no {', '.join(absent)} (it has: {', '.join(sorted(present)) or 'nothing'})")
            continue
        pairs_read += 1
        yield Pair(translation[source_lang], translation[target_lang], f"{name}:{number}")
    check_languages_found(name, pairs_read, missing, seen, source_lang, target_lang)
