"""`westron data prepare`: outputs, printed summary, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.cli_utils import assert_one_line_error, run_cli


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "corpus.tsv"
    rows = [f"sentence number {i}\tfrase número {i}" for i in range(200)] + ["sentence number 7\totra", "malformed row"]
    path.write_text("en\tes\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def prepare_args(input_path, out, *extra):
    return ["data", "prepare", "--input", str(input_path), "--source-lang", "en", "--target-lang", "es", "-o", str(out), *extra]


def test_prepare_writes_splits_and_prints_the_summary(tsv, tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = prepare_args(tsv, out, "--on-error", "skip", "--validation-fraction", "0.1", "--test-fraction", "0.1")
    code, stdout, stderr = run_cli(args, monkeypatch)
    assert code == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["read"] == 201 and summary["removed"]["duplicate"] == 1
    assert summary["malformed_skipped"] == {"wrong_column_count": 1}
    assert sum(summary["splits"].values()) == 200
    for split, count in summary["splits"].items():
        lines = (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == count
        assert set(json.loads(lines[0])["translation"]) == {"en", "es"}
    assert "read 201 pairs" in stdout
    assert "skipped 1 malformed records (wrong_column_count 1)" in stdout
    assert f"kept: train {summary['splits']['train']}, validation {summary['splits']['validation']}" in stdout


def test_prepare_reads_several_inputs(tsv, tmp_path, monkeypatch):
    (tmp_path / "more.en").write_text("one more\n", encoding="utf-8")
    (tmp_path / "more.es").write_text("uno más\n", encoding="utf-8")
    args = prepare_args(tsv, tmp_path / "out", "--on-error", "skip", "--input", str(tmp_path / "more"))
    code, stdout, stderr = run_cli(args, monkeypatch)
    assert code == 0, stderr
    assert "read 202 pairs" in stdout


def test_malformed_input_fails_by_default(tsv, tmp_path, monkeypatch):
    code, _, stderr = run_cli(prepare_args(tsv, tmp_path / "out"), monkeypatch)
    assert_one_line_error(code, stderr, "corpus.tsv:203: 1 fields, expected 2 fields")
    assert not (tmp_path / "out").exists()


def test_unknown_language(tsv, tmp_path, monkeypatch):
    args = prepare_args(tsv, tmp_path / "out")
    args[args.index("es")] = "fr"
    code, _, stderr = run_cli(args, monkeypatch)
    assert_one_line_error(code, stderr, "no column 'fr'", "'en', 'es'")


def test_a_length_ratio_that_is_not_a_number_is_refused(tsv, tmp_path, monkeypatch):
    code, _, stderr = run_cli(prepare_args(tsv, tmp_path / "out", "--max-length-ratio", "nan"), monkeypatch)
    assert_one_line_error(code, stderr, "--max-length-ratio must be at least 1, not nan")


def test_option_for_another_format(tmp_path, monkeypatch):
    path = tmp_path / "c.jsonl"
    path.write_text('{"translation": {"en": "a", "es": "b"}}\n')
    code, _, stderr = run_cli(prepare_args(path, tmp_path / "out", "--source-column", "0"), monkeypatch)
    assert_one_line_error(code, stderr, "source_column do(es) not apply to jsonl input")


def test_a_lone_surrogate_escape_is_a_malformed_record_not_a_traceback(tmp_path, monkeypatch):
    path = tmp_path / "c.jsonl"
    path.write_text('{"translation": {"en": "a", "es": "b"}}\n{"translation": {"en": "c\\udc80", "es": "d"}}\n')
    code, _, stderr = run_cli(prepare_args(path, tmp_path / "out"), monkeypatch)
    assert_one_line_error(code, stderr, "c.jsonl:2: a lone surrogate escape")
    code, stdout, stderr = run_cli(prepare_args(path, tmp_path / "out", "--on-error", "skip"), monkeypatch)
    assert code == 0, stderr
    assert (tmp_path / "out" / "train.jsonl").read_text(encoding="utf-8") == '{"translation": {"en": "a", "es": "b"}}\n'


def test_missing_file_in_a_real_process(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "westron.cli", *prepare_args(tmp_path / "none.tsv", tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"westron: error: cannot read input file {tmp_path / 'none.tsv'}: no such file"]
