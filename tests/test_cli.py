"""`westron translate`: streaming, order, empty lines, and one-line errors with exit code 2."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from tests.cli_utils import assert_one_line_error, run_cli

LINES = ["Speak, friend, and enter.", "", "One checkpoint.", "The road goes ever on and on, down from the door.", "", "x"]


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory):
    from westron.demo import build_demo_checkpoint

    return build_demo_checkpoint(str(tmp_path_factory.mktemp("demo") / "model"))


def write_input(tmp_path, lines):
    path = tmp_path / "input.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_translate_file_keeps_line_count_order_and_empty_lines(tmp_path, demo_folder, monkeypatch, framework):
    source = write_input(tmp_path, LINES)
    output = tmp_path / "out.txt"
    argv = ["translate", "--model", demo_folder, "--framework", framework, "-i", str(source), "-o", str(output)]
    code, stdout, stderr = run_cli(argv + ["--batch-size", "2", "--max-new-tokens", "5"], monkeypatch=monkeypatch)
    assert code == 0, stderr
    small_batches = output.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(small_batches) == len(LINES)
    assert [line == "" for line in small_batches] == [line == "" for line in LINES]

    # Batching and length-sorting must not change any translation.
    code, _, stderr = run_cli(argv + ["--batch-size", "16", "--max-new-tokens", "5"], monkeypatch=monkeypatch)
    assert code == 0, stderr
    assert output.read_text(encoding="utf-8").split("\n")[:-1] == small_batches


@pytest.mark.parametrize("dashes", [[], ["-i", "-", "-o", "-"]], ids=["no_flags", "dash"])
def test_stdin_to_stdout(demo_folder, monkeypatch, dashes):
    code, stdout, stderr = run_cli(
        ["translate", "--model", demo_folder, "--framework", "pt", "--max-new-tokens", "4", *dashes],
        stdin_bytes="Hello\n\nWorld\n".encode(),
        monkeypatch=monkeypatch,
    )
    assert code == 0, stderr
    assert stdout.count("\n") == 3 and stdout.split("\n")[1] == ""


def test_output_through_a_symbolic_link_keeps_the_link(demo_folder, tmp_path, monkeypatch):
    """-o out.txt where out.txt links to a file elsewhere: the target gets the translations, the link stays."""
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "real.txt"
    target.write_text("old\n")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    argv = ["translate", "--model", demo_folder, "--framework", "pt", "--max-new-tokens", "3", "-o", str(link)]
    code, _, stderr = run_cli(argv, stdin_bytes=b"Hello\n\nWorld\n", monkeypatch=monkeypatch)
    assert code == 0, stderr
    assert link.is_symlink() and target.read_text(encoding="utf-8").count("\n") == 3
    assert sorted(os.listdir(tmp_path)) == ["data", "out.txt"] and os.listdir(tmp_path / "data") == ["real.txt"]


@pytest.mark.parametrize("stream, message", [("stdin", "standard input is closed: give the input file with -i FILE"),
                                             ("stdout", "standard output is closed: give the output file with -o FILE")])
def test_a_closed_standard_stream_is_one_line(demo_folder, tmp_path, monkeypatch, stream, message):
    """Started with descriptor 0 or 1 closed (`<&-`, `>&-`), Python's sys.stdin / sys.stdout is None."""
    from westron.cli import main

    stderr = io.StringIO()
    (tmp_path / "in.txt").write_text("Hello\n")
    argv = ["translate", "--model", demo_folder, "--framework", "pt", "--max-new-tokens", "2"]
    argv += ["-o", str(tmp_path / "out.txt")] if stream == "stdin" else ["-i", str(tmp_path / "in.txt")]
    monkeypatch.setattr(sys, stream, None)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert_one_line_error(main(argv), stderr.getvalue(), message)
    assert not (tmp_path / "out.txt").exists()


def test_missing_model_folder(tmp_path, monkeypatch):
    code, _, stderr = run_cli(["translate", "--model", str(tmp_path / "no" / "such" / "model")], monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "does not exist")


def test_corrupt_weights(tmp_path, demo_folder, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in os.listdir(demo_folder):
        (broken / name).write_bytes((open(os.path.join(demo_folder, name), "rb")).read())
    (broken / "model.safetensors").write_bytes(b"garbage" * 10)
    code, _, stderr = run_cli(["translate", "--model", str(broken), "--framework", "pt"], monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "safetensors")


def test_unknown_model_type(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    code, _, stderr = run_cli(["translate", "--model", str(tmp_path)], monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "unknown model_type 'bert'")


def test_invalid_utf8_names_the_line_and_leaves_no_output(tmp_path, demo_folder, monkeypatch):
    source = tmp_path / "bad.txt"
    source.write_bytes(b"fine\nalso fine\nbad \xff byte\n")
    output = tmp_path / "out.txt"
    argv = ["translate", "--model", demo_folder, "--framework", "pt", "-i", str(source), "-o", str(output)]
    code, _, stderr = run_cli(argv, monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "line 3", "UTF-8")
    assert not output.exists() and os.listdir(tmp_path) == ["bad.txt"]


def test_too_long_input_truncates_with_one_warning_or_fails_with_no_truncate(tmp_path, demo_folder, monkeypatch):
    long_line = " ".join(["translation"] * 400)
    source = write_input(tmp_path, ["short", long_line, long_line])
    argv = ["translate", "--model", demo_folder, "--framework", "pt", "-i", str(source), "--max-new-tokens", "3"]
    # --batch-size 1: the two long lines are truncated in different batches, still one warning.
    code, stdout, stderr = run_cli(argv + ["--batch-size", "1"], monkeypatch=monkeypatch)
    assert code == 0 and stdout.count("\n") == 3
    assert stderr.count("westron: warning:") == 1 and "truncated" in stderr

    code, _, stderr = run_cli(argv + ["--no-truncate"], monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "line 2", "limit")


@pytest.mark.parametrize("framework, device", [("pt", "cuda:0"), ("tf", "gpu:3"), ("pt", "tpu")])
def test_device_that_is_not_there(demo_folder, monkeypatch, framework, device):
    argv = ["translate", "--model", demo_folder, "--framework", framework, "--device", device]
    code, _, stderr = run_cli(argv, stdin_bytes=b"hello\n", monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, device)


def test_missing_input_file(tmp_path, monkeypatch):
    code, _, stderr = run_cli(["translate", "--model", "x", "-i", str(tmp_path / "none.txt")], monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, "none.txt")


def test_real_process_exit_code_and_no_traceback(tmp_path):
    """The installed entry point: exit status 2, a single line, no Python traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "westron.cli", "translate", "--model", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        input="",
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("westron: error:") and len(done.stderr.strip().splitlines()) == 1


def test_real_process_tensorflow_start_up_notices_stay_off_stderr(demo_folder):
    """TensorFlow writes C++ notices to file descriptor 2 on import; the user sees Westron's one line only."""
    done = subprocess.run(
        [sys.executable, "-m", "westron.cli", "translate", "--model", demo_folder, "--framework", "tf", "--device", "gpu:3"],
        capture_output=True,
        text=True,
        input="hello\n",
        env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["westron: error: device gpu:3 requested but TensorFlow sees no GPU"]


def test_demo_translates_identically_in_both_frameworks(tmp_path, monkeypatch):
    code, stdout, stderr = run_cli(["demo", "--folder", str(tmp_path / "demo")], monkeypatch=monkeypatch)
    assert code == 0, stderr
    assert "outputs are identical" in stdout
    pt_lines = [line for line in stdout.splitlines() if line.startswith("  pt: ")]
    tf_lines = [line for line in stdout.splitlines() if line.startswith("  tf: ")]
    assert len(pt_lines) == 4 and [line[6:] for line in pt_lines] == [line[6:] for line in tf_lines]


@pytest.mark.parametrize("kind", ["file", "folder of other files"])
def test_demo_folder_that_is_not_a_checkpoint_is_one_line(tmp_path, monkeypatch, kind):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("mine")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    code, stdout, stderr = run_cli(["demo", "--folder", str(target), "--framework", "pt"], monkeypatch=monkeypatch)
    assert_one_line_error(code, stderr, str(target))
    assert (target.read_text() if kind == "file" else sorted(os.listdir(target))) == ("mine" if kind == "file" else ["notes.txt"])


# ---- argparse's own refusals are one line too ---------------------------------------------------------

# One bad typed value (or choice) for every subcommand: (argv, the flag the line must name).
BAD_TYPED_VALUES = {
    "translate": (["translate", "--model", "m", "--num-beams", "x"], "--num-beams"),
    "evaluate": (["evaluate", "--model", "m", "--test-file", "t", "--source-lang", "en", "--target-lang", "es", "--batch-size", "0"], "--batch-size"),
    "attention": (["attention", "--model", "m", "--source", "s", "-o", "out", "--layers", "two"], "--layers"),
    "demo": (["demo", "--framework", "jax"], "--framework"),
    "data prepare": (["data", "prepare", "--input", "f", "--source-lang", "en", "--target-lang", "es", "-o", "d", "--seed", "one"], "--seed"),
    "data gettext": (["data", "gettext", "--target-lang", "es", "-o", "d", "--max-chars", "many"], "--max-chars"),
    "tokenizer train": (["tokenizer", "train", "--model-type", "bart", "--train-file", "f", "--source-lang", "en", "--target-lang", "es", "-o", "d"], "--model-type"),
    "train": (["train", "--max-steps", "abc", "--source-lang", "en", "--target-lang", "es", "--output-dir", "d"], "--max-steps"),
    "quickstart": (["quickstart", "--budget-minutes", "foo"], "--budget-minutes"),
    "compare": (["compare", "-o", "out", "--runs", "-3"], "--runs"),
    "report": (["report"], "results"),  # its only flag is a path: the missing positional is argparse's refusal
}


def subcommand_names(parser, prefix="") -> list[str]:
    """Every leaf subcommand of `parser` ('train', 'data prepare', ...)."""
    import argparse

    names = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                names.extend(subcommand_names(subparser, f"{prefix}{name} ") or [f"{prefix}{name}"])
    return names


def test_every_subcommand_is_in_the_sweep():
    from westron.cli import build_parser

    assert sorted(subcommand_names(build_parser())) == sorted(BAD_TYPED_VALUES)


@pytest.mark.parametrize("command", sorted(BAD_TYPED_VALUES))
def test_bad_typed_value_is_one_line_without_usage(command, monkeypatch):
    argv, flag = BAD_TYPED_VALUES[command]
    code, stdout, stderr = run_cli(argv, monkeypatch)
    assert_one_line_error(code, stderr, flag, f"westron {command} --help")
    assert "usage:" not in stderr and stdout == ""


def test_help_still_prints_the_full_usage(capsys):
    from westron.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert help_text.startswith("usage: westron train") and "--max-steps MAX_STEPS" in help_text and "--tf-strategy" in help_text


def test_real_process_bad_typed_value_is_one_line():
    done = subprocess.run([sys.executable, "-m", "westron", "quickstart", "--budget-minutes", "foo"], capture_output=True, text=True, input="")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["westron: error: argument --budget-minutes: invalid float value: 'foo' (see westron quickstart --help)"]


@pytest.mark.parametrize("command", ["translate", "evaluate", "attention"])
def test_language_codes_a_marian_model_cannot_use_are_refused(tmp_path, demo_folder, monkeypatch, command):
    """--tgt-lang fr on a one-direction Marian model used to be accepted and ignored."""
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(json.dumps({"translation": {"en": "Speak.", "fr": "Parle."}}) + "\n", encoding="utf-8")
    argv = {
        "translate": ["translate"],
        "evaluate": ["evaluate", "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "fr"],
        "attention": ["attention", "--source", "Speak.", "-o", str(tmp_path / "maps")],
    }[command]
    code, stdout, stderr = run_cli(
        [*argv, "--model", demo_folder, "--framework", "pt", "--tgt-lang", "fr"], monkeypatch, stdin_bytes=b"Speak.\n"
    )
    assert_one_line_error(code, stderr, "--tgt-lang: this model takes no language codes", ">>fra<<")
    assert stdout == "" and not (tmp_path / "maps").exists()
