"""`westron translate` on a file: bounded windows, length sorting, and the closing summary line."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli_utils import run_cli

# Sentences of different lengths, with empty and blank lines among them: 41 lines.
WORDS = "speak friend and enter the road goes ever on down from door where it began".split()
LINES = [" ".join(WORDS[(3 * n) % len(WORDS) :][: 1 + n % 9]) if n % 5 else ("" if n % 10 else "   ") for n in range(41)]
ARGS = ["--framework", "pt", "--max-new-tokens", "5", "--num-beams", "1"]


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from westron.demo import build_demo_checkpoint

    return build_demo_checkpoint(str(tmp_path_factory.mktemp("demo") / "model"))


@pytest.fixture(scope="module")
def one_by_one(demo_folder):
    """Each line translated alone, in order, through the Python pipeline: the reference."""
    from westron.pipelines import TranslationPipeline

    translator = TranslationPipeline(demo_folder, framework="pt")
    return [result["translation_text"] for result in translator(LINES, batch_size=1, max_new_tokens=5, num_beams=1)]


def translate_file(tmp_path, demo_folder, monkeypatch, *options):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    output = tmp_path / "out.txt"
    argv = ["translate", "--model", demo_folder, *ARGS, "-i", str(source), "-o", str(output), *options]
    code, stdout, stderr = run_cli(argv, monkeypatch=monkeypatch)
    assert code == 0, stderr
    text = output.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n"), stdout, stderr


def test_window_smaller_than_the_file_keeps_line_count_order_and_empty_lines(tmp_path, demo_folder, monkeypatch, one_by_one):
    assert len(set(one_by_one)) > 5, "the reference must tell lines apart, or order would go unchecked"
    # 41 lines in windows of 7, batches of 3: sorting happens inside each window, across several batches.
    lines, _, _ = translate_file(tmp_path, demo_folder, monkeypatch, "--window-size", "7", "--batch-size", "3")
    assert len(lines) == len(LINES)
    assert [line == "" for line in lines] == [not source.strip() for source in LINES]
    assert lines == one_by_one


def test_sorted_and_unsorted_give_identical_outputs(tmp_path, demo_folder, monkeypatch, one_by_one):
    options = ["--window-size", "16", "--batch-size", "4"]
    sorted_lines, _, _ = translate_file(tmp_path, demo_folder, monkeypatch, *options)
    unsorted_lines, _, _ = translate_file(tmp_path, demo_folder, monkeypatch, *options, "--no-sort")
    assert sorted_lines == unsorted_lines == one_by_one


def test_summary_line_on_stderr_not_stdout(demo_folder, monkeypatch):
    argv = ["translate", "--model", demo_folder, *ARGS]
    code, stdout, stderr = run_cli(argv, stdin_bytes="Hello\n\nWorld, again\n".encode(), monkeypatch=monkeypatch)
    assert code == 0, stderr
    assert stdout.count("\n") == 3 and stdout.split("\n")[1] == ""
    assert "sentences/s" not in stdout and "westron:" not in stdout
    summary = [line for line in stderr.splitlines() if line.startswith("westron: translated")]
    assert len(summary) == 1, stderr
    assert summary[0].startswith("westron: translated 3 lines (2 non-empty) in ")
    assert "sentences/s" in summary[0] and "tokens/s" in summary[0] and "peak RSS" in summary[0]


def test_summary_counts_new_tokens_up_to_each_eos():
    from westron.cli import TranslationStats

    stats = TranslationStats()
    start, eos, pad = 9, 2, 0
    stats.count_batch(np.array([[start, 5, 6, eos, pad, pad], [start, 5, 6, 7, 8, 5]]), [eos])  # 3 + 5
    stats.count_batch(np.array([[start, eos]]), [eos])  # 1
    assert (stats.sentences, stats.generated_tokens) == (3, 9)


def test_a_translation_holding_line_breaks_stays_one_line(tmp_path, demo_folder, monkeypatch, one_by_one):
    """A vocabulary may decode to a line break (a byte-fallback piece, a newline token): the output
    keeps one line per input line, the break written as a blank."""
    from westron.pipelines import TranslationPipeline

    decode_batch = TranslationPipeline.decode_batch
    breaks = ["\n", "\r\n", "\u2028"]

    def decode_with_breaks(self, output_ids):
        return [f"{text}{breaks[n % 3]}more" for n, text in enumerate(decode_batch(self, output_ids))]

    monkeypatch.setattr(TranslationPipeline, "decode_batch", decode_with_breaks)
    lines, _, _ = translate_file(tmp_path, demo_folder, monkeypatch, "--batch-size", "4")
    assert len(lines) == len(LINES)
    for line, source, reference in zip(lines, LINES, one_by_one):
        assert line == (f"{reference} more" if source.strip() else "")
