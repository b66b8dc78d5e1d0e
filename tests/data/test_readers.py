"""Corpus readers on files the tests write: every format, each kind of malformed record, both on_error modes."""

from __future__ import annotations

import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from westron.data.readers import ReadStats, read_pairs
from westron.errors import WestronError

ROOT = Path(__file__).resolve().parents[2]
PAIRS = [("Hello", "Hola"), ("Good night, friend", "Buenas noches, amigo"), ('She said "yes"', 'Dijo "sí"')]


def read_all(path, *args, **kwargs) -> list[tuple[str, str]]:
    return [(pair.source, pair.target) for pair in read_pairs(path, *args, **kwargs)]


def jsonl_line(translation) -> str:
    return json.dumps({"translation": translation}, ensure_ascii=False)


def write_bytes(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else line.encode()) + b"\n" for line in lines))
    return path


# ---- JSON lines ------------------------------------------------------------------------------------


def test_jsonl_reads_hf_layout_with_origins(tmp_path):
    path = write_bytes(tmp_path / "c.jsonl", [jsonl_line({"en": s, "es": t, "fr": "x"}) for s, t in PAIRS])
    pairs = list(read_pairs(path, "en", "es"))
    assert [(p.source, p.target) for p in pairs] == PAIRS
    assert pairs[1].origin == "c.jsonl:2"
    assert read_all(path, "es", "en") == [(t, s) for s, t in PAIRS]  # either direction


def test_jsonl_gzip(tmp_path):
    path = tmp_path / "c.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(jsonl_line({"en": s, "es": t}) + "\n" for s, t in PAIRS)
    assert read_all(path, "en", "es") == PAIRS


MALFORMED_JSONL = [
    jsonl_line({"en": "one", "es": "uno"}),
    '{"translation": {"en": "broken"',  # line 2: not JSON
    jsonl_line({"en": "two"}),  # line 3: no es
    b'{"translation": {"en": "caf\xe9", "es": "x"}}',  # line 4: Latin-1, not UTF-8
    '{"text": "no translation"}',  # line 5
    "",  # line 6: blank, passed over
    jsonl_line({"en": "three", "es": "tres"}),
]


def test_jsonl_skip_counts_each_kind(tmp_path):
    path = write_bytes(tmp_path / "bad.jsonl", MALFORMED_JSONL)
    stats = ReadStats()
    assert read_all(path, "en", "es", on_error="skip", stats=stats) == [("one", "uno"), ("three", "tres")]
    assert stats.pairs == 2
    assert dict(stats.skipped) == {"invalid_json": 2, "missing_language": 1, "invalid_utf8": 1}
    assert stats.examples[0].startswith("bad.jsonl:2: not valid JSON")


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"translation": {"en": "broken"', "bad.jsonl:2: not valid JSON"),
        (jsonl_line({"en": "two"}), "bad.jsonl:2: no es (it has: en)"),
        (b'{"translation": {"en": "caf\xe9"}}', "bad.jsonl:2: not valid UTF-8"),
        ("[1, 2]", 'bad.jsonl:2: no "translation" object'),
        (jsonl_line({"en": "x", "es": 3}), "bad.jsonl:2: the en and es texts must be strings"),
        ('{"translation": {"en": "x\\ud800", "es": "y"}}', "bad.jsonl:2: a lone surrogate escape"),  # valid JSON, no UTF-8 form
    ],
)
def test_jsonl_fail_names_file_and_line(tmp_path, line, message):
    path = write_bytes(tmp_path / "bad.jsonl", [jsonl_line({"en": "one", "es": "uno"}), line])
    with pytest.raises(WestronError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        read_all(path, "en", "es")


def test_a_missing_language_points_at_the_language_keys_first(tmp_path):
    """A file without the language asked for is usually a wrong --target-lang: --on-error skip alone would
    only lead to a second error (no pairs), so the message names the keys first."""
    path = write_bytes(tmp_path / "test.jsonl", [jsonl_line({"en": "one", "es": "uno"})])
    with pytest.raises(WestronError, match=r"no fr \(it has: en, es\): give the file's own language keys, or pass .* if only some records lack one$"):
        read_all(path, "en", "fr")


@pytest.mark.parametrize("lines", [["[", jsonl_line({"en": "a", "es": "b"}), "]"], ["[" + jsonl_line({"en": "a", "es": "b"}) + "]"]])
def test_a_json_array_is_named_as_such_even_under_skip(tmp_path, lines):
    """A .json file holding one array (pretty-printed or not) is not JSON lines: skipping its lines would read a part or nothing."""
    path = write_bytes(tmp_path / "c.json", ["", *lines])
    for on_error in ("fail", "skip"):
        with pytest.raises(WestronError, match=r"^c.json:2: c.json holds a JSON array; Westron reads JSON lines"):
            read_all(path, "en", "es", on_error=on_error)


def test_jsonl_absent_language_names_languages_present_even_under_skip(tmp_path):
    path = write_bytes(tmp_path / "c.jsonl", [jsonl_line({"en": s, "fr": t}) for s, t in PAIRS])
    with pytest.raises(WestronError, match="c.jsonl has no en-es pairs; languages present: en, fr"):
        read_all(path, "en", "es", on_error="skip")


# ---- TSV and CSV -----------------------------------------------------------------------------------


def test_tsv_by_header_name_keeps_quotes(tmp_path):
    path = write_bytes(tmp_path / "c.tsv", ["id\tes\ten"] + [f"{i}\t{t}\t{s}" for i, (s, t) in enumerate(PAIRS)])
    assert read_all(path, "en", "es") == PAIRS  # columns found by name, in any order; quotes kept
    assert read_all(path, "en", "es", source_column="es", target_column="en") == [(t, s) for s, t in PAIRS]


def test_tsv_by_index_without_header(tmp_path):
    path = write_bytes(tmp_path / "c.tsv", [f"{s}\t{t}" for s, t in PAIRS])
    assert read_all(path, "en", "es", source_column=0, target_column="1") == PAIRS
    # An index with header=True reads the first line as a header.
    assert read_all(path, "en", "es", source_column=0, target_column=1, header=True) == PAIRS[1:]


def test_tsv_wrong_column_count(tmp_path):
    path = write_bytes(tmp_path / "c.tsv", ["en\tes", "a\tb", "only one field", "c\td\textra", "e\tf"])
    stats = ReadStats()
    assert read_all(path, "en", "es", on_error="skip", stats=stats) == [("a", "b"), ("e", "f")]
    assert dict(stats.skipped) == {"wrong_column_count": 2}
    with pytest.raises(WestronError, match="^c.tsv:3: 1 fields, expected 2 fields"):
        read_all(path, "en", "es")


@pytest.mark.parametrize("header", [True, False])
def test_a_column_index_past_the_last_column_is_a_whole_file_error_even_under_skip(tmp_path, header):
    """Every row would be skipped as malformed, leaving an empty corpus and exit 0: one error instead."""
    path = write_bytes(tmp_path / "c.tsv", (["en\tes"] if header else []) + ["a\tb", "c\td"])
    for on_error in ("fail", "skip"):
        with pytest.raises(WestronError, match=r"^c.tsv has 2 columns \(0-based: 0 to 1\): it has no column 2"):
            read_all(path, "en", "es", source_column=0, target_column=2, header=header, on_error=on_error)


def test_tsv_missing_column_names_the_header(tmp_path):
    path = write_bytes(tmp_path / "c.tsv", ["en\tde", "a\tb"])
    with pytest.raises(WestronError, match="c.tsv has no column 'es' \\(its header: 'en', 'de'\\)"):
        read_all(path, "en", "es", on_error="skip")


def test_tsv_invalid_utf8(tmp_path):
    path = write_bytes(tmp_path / "c.tsv", ["en\tes", b"caf\xe9\tcafe", "a\tb"])
    stats = ReadStats()
    assert read_all(path, "en", "es", on_error="skip", stats=stats) == [("a", "b")]
    assert dict(stats.skipped) == {"invalid_utf8": 1}
    with pytest.raises(WestronError, match="^c.tsv:2: not valid UTF-8"):
        read_all(path, "en", "es")


def test_csv_quoting_and_multiline_fields(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text('en,es\n"Hello, world","Hola, mundo"\n"two\nlines",dos\n"say ""hi""",di\n', encoding="utf-8")
    pairs = list(read_pairs(path, "en", "es"))
    assert [(p.source, p.target) for p in pairs] == [("Hello, world", "Hola, mundo"), ("two\nlines", "dos"), ('say "hi"', "di")]
    assert pairs[2].origin == "c.csv:5" and pairs[1].origin == "c.csv:3"


def test_csv_wrong_column_count(tmp_path):
    path = write_bytes(tmp_path / "c.csv", ["en,es", "a,b", "a,b,c", "d,e"])
    stats = ReadStats()
    assert read_all(path, "en", "es", on_error="skip", stats=stats) == [("a", "b"), ("d", "e")]
    assert dict(stats.skipped) == {"wrong_column_count": 1}
    with pytest.raises(WestronError, match="^c.csv:3: 3 fields"):
        read_all(path, "en", "es")


def test_csv_lone_carriage_return_names_the_file_and_follows_on_error(tmp_path):
    """The csv module refuses a lone CR in an unquoted field: a malformed record (file and line), skippable."""
    path = tmp_path / "c.csv"
    path.write_bytes(b"en,es\na,b\nc\rd,e\nf,g\n")
    with pytest.raises(WestronError, match=r"^c.csv:3: not valid CSV: a carriage return \(\\r\) inside an unquoted field"):
        read_all(path, "en", "es")
    stats = ReadStats()
    assert read_all(path, "en", "es", on_error="skip", stats=stats) == [("a", "b"), ("f", "g")]
    assert dict(stats.skipped) == {"invalid_csv": 1}


# ---- Moses -----------------------------------------------------------------------------------------


def write_moses(folder: Path, sources, targets, prefix="train"):
    write_bytes(folder / f"{prefix}.en", list(sources))
    write_bytes(folder / f"{prefix}.es", list(targets))
    return folder / prefix


def test_moses_by_prefix_or_either_file(tmp_path):
    prefix = write_moses(tmp_path, [s for s, _ in PAIRS], [t for _, t in PAIRS])
    assert read_all(prefix, "en", "es") == PAIRS
    assert read_all(f"{prefix}.es", "en", "es") == PAIRS
    assert read_all(f"{prefix}.en", "es", "en") == [(t, s) for s, t in PAIRS]


def test_moses_mismatched_line_counts(tmp_path):
    prefix = write_moses(tmp_path, ["a", "b", "c"], ["x", "y"])
    with pytest.raises(WestronError, match="^train.en has 3 lines but train.es has 2: the files are not aligned"):
        read_all(prefix, "en", "es")
    stats = ReadStats()
    assert read_all(prefix, "en", "es", on_error="skip", stats=stats) == [("a", "x"), ("b", "y")]
    assert dict(stats.skipped) == {"line_count_mismatch": 1}


def test_moses_invalid_utf8_skips_the_pair_without_shifting(tmp_path):
    prefix = write_moses(tmp_path, ["a", b"\xff", "c"], ["x", "y", "z"])
    stats = ReadStats()
    assert read_all(prefix, "en", "es", on_error="skip", stats=stats) == [("a", "x"), ("c", "z")]
    assert dict(stats.skipped) == {"invalid_utf8": 1}
    with pytest.raises(WestronError, match="^train.en:2: not valid UTF-8"):
        read_all(prefix, "en", "es")


# ---- arguments and format guessing -----------------------------------------------------------------


def test_missing_input_and_unknown_format(tmp_path):
    with pytest.raises(WestronError, match="cannot read input file .*missing.jsonl: no such file"):
        read_pairs(tmp_path / "missing.jsonl", "en", "es")  # at the call, before iteration
    with pytest.raises(WestronError, match="no such file, folder or Moses pair"):
        read_pairs(tmp_path / "corpus", "en", "es")
    (tmp_path / "corpus.txt").write_text("x\n")
    with pytest.raises(WestronError, match="cannot tell the format"):
        read_pairs(tmp_path / "corpus.txt", "en", "es")


def test_options_that_do_not_apply_are_refused(tmp_path):
    path = write_bytes(tmp_path / "c.jsonl", [jsonl_line({"en": "a", "es": "b"})])
    with pytest.raises(WestronError, match="source_column do\\(es\\) not apply to jsonl"):
        read_pairs(path, "en", "es", source_column="en")
    with pytest.raises(WestronError, match="on_error must be"):
        read_pairs(path, "en", "es", on_error="ignore")
    assert read_all(path, "en", "es", format="jsonl") == [("a", "b")]


# ---- Hugging Face datasets -------------------------------------------------------------------------

@pytest.fixture
def datasets():
    return pytest.importorskip("datasets")


def test_hf_dataset_saved_to_disk(tmp_path, datasets):
    rows = [{"en": s, "es": t} for s, t in PAIRS] + [{"en": "lonely", "es": None}]
    dataset = datasets.Dataset.from_dict({"translation": rows})
    datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(tmp_path / "dd")
    stats = ReadStats()
    assert read_all(tmp_path / "dd", "en", "es", on_error="skip", stats=stats) == PAIRS
    assert dict(stats.skipped) == {"missing_language": 1}
    assert read_all(tmp_path / "dd", "en", "es", split="test", on_error="skip") == PAIRS[:1]
    with pytest.raises(WestronError, match="dd: row 3: no es"):
        read_all(tmp_path / "dd", "en", "es")
    with pytest.raises(WestronError, match="dd has no fr translations; languages present: en, es"):
        read_pairs(tmp_path / "dd", "en", "fr")
    with pytest.raises(WestronError, match="no split 'dev'; its splits: train, test"):
        read_pairs(tmp_path / "dd", "en", "es", split="dev")


def test_hf_dataset_with_language_columns(tmp_path, datasets):
    datasets.Dataset.from_dict({"en": [s for s, _ in PAIRS], "es": [t for _, t in PAIRS]}).save_to_disk(tmp_path / "d")
    assert read_all(tmp_path / "d", "en", "es") == PAIRS
    with pytest.raises(WestronError, match="neither a 'translation' column nor columns 'en' and 'fr'; its columns: en, es"):
        read_pairs(tmp_path / "d", "en", "fr")


def test_hf_dataset_with_columns_that_are_not_text(tmp_path, datasets):
    """Numbers in a language column are named as such, not reported as a missing language ("it has: nothing")."""
    datasets.Dataset.from_dict({"en": [1, 2], "es": [3, None]}).save_to_disk(tmp_path / "d")
    with pytest.raises(WestronError, match=r"^d: row 0: the en and es texts must be strings \(en is int, es is int\)"):
        read_all(tmp_path / "d", "en", "es")
    stats = ReadStats()
    assert read_all(tmp_path / "d", "en", "es", on_error="skip", stats=stats) == []
    assert dict(stats.skipped) == {"not_text": 2}


def test_hf_hub_name_from_the_local_cache(tmp_path, monkeypatch, datasets):
    """A Hub dataset read offline from the datasets cache (laid out as a download would leave it)."""
    source = write_bytes(tmp_path / "rows.jsonl", [jsonl_line({"en": s, "es": t}) for s, t in PAIRS])
    cache = tmp_path / "cache"
    datasets.load_dataset("json", data_files={"train": str(source)}, cache_dir=str(cache))
    [built] = [path for path in glob.glob(f"{cache}/json/*/*/*") if os.path.isdir(path)]
    entry = cache / "tester___tiny_pairs" / "en-es" / "0.0.0" / os.path.basename(built)
    shutil.move(built, entry.parent.mkdir(parents=True) or entry)
    for arrow in entry.glob("json-*.arrow"):
        arrow.rename(entry / arrow.name.replace("json-", "tiny_pairs-"))
    info = json.loads((entry / "dataset_info.json").read_text())
    (entry / "dataset_info.json").write_text(json.dumps({**info, "config_name": "en-es", "dataset_name": "tiny_pairs"}))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    assert read_all("tester/tiny_pairs", "en", "es", format="hf", hf_config="en-es") == PAIRS
    with pytest.raises(WestronError, match="cannot load the Hugging Face dataset 'tester/absent'"):
        read_pairs("tester/absent", "en", "es", format="hf")


# ---- memory --------------------------------------------------------------------------------------

# Peak resident memory from /proc (VmHWM): ru_maxrss would include the pytest parent's peak,
# which a child inherits across fork and exec.
MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    from westron.data.readers import read_pairs

    def peak():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

    path, mode = sys.argv[1], sys.argv[2]
    pairs = read_pairs(path, "en", "es")
    before = peak()
    keep = [] if mode == "keep" else None
    count = 0
    for pair in pairs:
        count += 1
        if keep is not None:
            keep.append(pair)
    print(json.dumps({"count": count, "grown": peak() - before}))
    """
)


@pytest.fixture(scope="module")
def big_jsonl(tmp_path_factory) -> tuple[Path, int]:
    """About 20 MB of JSON lines: 10,000 pairs of 1 KB sentences."""
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(10_000):
            handle.write(jsonl_line({"en": f"{i} " + "a" * 1000, "es": f"{i} " + "b" * 1000}) + "\n")
    return path, 10_000


def grown_memory(path: Path, mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(path), mode], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads peak memory from Linux's /proc")
def test_reader_streams_in_bounded_memory(big_jsonl):
    path, count = big_jsonl
    size = path.stat().st_size
    streamed = grown_memory(path, "stream")
    assert streamed["count"] == count
    assert streamed["grown"] < size / 8, f"peak memory grew {streamed['grown']} bytes reading a {size}-byte file"
    # The probe can fail: keeping the pairs grows memory by about the file's text.
    kept = grown_memory(path, "keep")
    assert kept["grown"] > size / 2
