"""`westron quickstart` in its smoke mode, end to end on fixture catalogs, and its failure paths."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from tests.cli_utils import run_cli
from tests.data.test_gettext import entry, write_catalog
from westron.quickstart import FRAMEWORK_NAMES

WORDS = [("file", "archivo"), ("window", "ventana"), ("open", "abrir"), ("save", "guardar"), ("new", "nuevo"), ("print", "imprimir")]


def fixture_catalogs(root, count: int = 100) -> None:
    """Enough small catalogs for a by-catalog split: UI strings made of a few shared words."""
    for index in range(count):
        entries = []
        for k in range(6):
            words = [WORDS[(index + k * j) % len(WORDS)] for j in range(1, 1 + k % 4 + 1)]
            entries.append(entry(" ".join(w for w, _ in words) + f" {index}", " ".join(t for _, t in words) + f" {index}"))
        write_catalog(root, "es", f"app{index:02d}", entries, mo=index % 2 == 0)


def test_smoke_run_trains_both_frameworks_and_writes_every_part(tmp_path, monkeypatch):
    fixture_catalogs(tmp_path / "locale")
    monkeypatch.setenv("WESTRON_GETTEXT_PATH", os.fspath(tmp_path / "locale"))
    out = tmp_path / "quickstart"
    code, _, stderr = run_cli(["quickstart", "--smoke", "--budget-minutes", "0.05", "--output-dir", os.fspath(out)], monkeypatch)
    assert code == 0, stderr
    assert "about" in stderr.splitlines()[0]  # it says what it will do and how long it takes
    parts = ("corpus/train.jsonl", "corpus/test.jsonl", "tokenizer/vocab.json", "pt/model.safetensors", "tf/model.safetensors")
    for part in parts + ("report/report.md", "report/report.html", "report/results.json"):
        assert (out / part).exists(), part
    report = (out / "report" / "report.md").read_text()
    for section in ("Equivalence", "Quality", "Training", "Speed", "Memory", "Devices", "Environment", "Attention", "BLEU by language"):
        assert section in report, section
    assert "failed:" not in report
    results = json.loads((out / "quickstart.json").read_text())
    frameworks = results["pairs"]["en-es"]["frameworks"]
    assert set(frameworks) == {"pt", "tf"}
    for numbers in frameworks.values():
        assert numbers["steps"] >= 1 and set(numbers["test"]) >= {"bleu", "chrf", "ter"}
        assert set(numbers["samples"]) == set(json.loads((out / "quickstart.json").read_text())["pairs"]["en-es"]["frameworks"]["pt"]["samples"])
    # The checkpoints are normal folders: HF transformers loads them.
    from transformers import MarianMTModel

    MarianMTModel.from_pretrained(out / "pt")
    MarianMTModel.from_pretrained(out / "tf")
    # ... and decode, in `westron translate` too, as they were scored: beam search up to the training length.
    from westron.quickstart import SMOKE_RECIPE

    for framework in ("pt", "tf"):
        generation = json.loads((out / framework / "generation_config.json").read_text())
        assert (generation["num_beams"], generation["max_length"]) == (SMOKE_RECIPE.num_beams, SMOKE_RECIPE.max_length + 1)

    # A rerun reuses the corpus and the vocabulary.
    code, _, stderr = run_cli(
        ["quickstart", "--smoke", "--budget-minutes", "0.02", "--frameworks", "pt", "--output-dir", os.fspath(out), "--no-report"],
        monkeypatch,
    )
    assert code == 0, stderr
    assert "reusing the corpus" in stderr and "reusing the vocabulary" in stderr


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--pairs", "es-en"], "gettext catalogs translate from English"),
        (["--pairs", "english"], "is not a language pair"),
        (["--frameworks", "jax"], "--frameworks: choose pt, tf or pt,tf"),
        (["--budget-minutes", "0"], "--budget-minutes must be positive"),
        (["--budget-minutes", "nan"], "--budget-minutes must be positive and finite, not nan"),
        (["--pairs", "en-en"], "the source is English already"),
        (["--frameworks", "tf", "--device", "gpu:0"], "device gpu:0 requested but TensorFlow sees no GPU"),
        (["--device", "cuda"], "device cuda requested but no CUDA GPU is available"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, monkeypatch, argv, fragment):
    code, _, stderr = run_cli(["quickstart", "--output-dir", os.fspath(tmp_path / "out")] + argv, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], stderr


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--pairs", "en-he"], "holds the en-es corpus of an earlier run, not en-he: choose another --output-dir, or add --fresh"),
        (["--catalogs", "extra.po"], "--catalogs: the corpus in"),
    ],
)
def test_an_earlier_runs_corpus_is_not_reused_for_another_pair_or_other_catalogs(tmp_path, monkeypatch, argv, fragment):
    """The corpus of an earlier run in the same --output-dir is reused as built: refused where it does not fit."""
    corpus = tmp_path / "out" / "corpus"
    corpus.mkdir(parents=True)
    (corpus / "summary.json").write_text(json.dumps({"source_lang": "en", "target_lang": "es"}))
    code, _, stderr = run_cli(["quickstart", "--smoke", "--output-dir", os.fspath(tmp_path / "out")] + argv, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and fragment in lines[0], stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["corpus"]  # no work started


def test_no_catalogs_is_one_line_and_exit_2(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("WESTRON_GETTEXT_PATH", os.fspath(tmp_path / "empty"))
    code, _, stderr = run_cli(["quickstart", "--smoke", "--output-dir", os.fspath(tmp_path / "out")], monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("westron quickstart:")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("westron: error:"), stderr


def test_an_output_dir_that_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, stderr = run_cli(["quickstart", "--smoke", "--output-dir", os.fspath(blocker / "out")], monkeypatch)
    assert code == 2 and "cannot create --output-dir" in stderr


def test_a_saved_vocabulary_of_another_size_is_retrained(tmp_path, monkeypatch, capsys):
    from westron.data.gettext import build_gettext_corpus
    from westron.quickstart import SMOKE_RECIPE, ensure_tokenizer, saved_vocabulary_size

    fixture_catalogs(tmp_path / "locale")
    monkeypatch.setenv("WESTRON_GETTEXT_PATH", os.fspath(tmp_path / "locale"))
    build_gettext_corpus("en", "es", os.fspath(tmp_path / "corpus"), split="by-catalog")
    folder = os.fspath(tmp_path / "tokenizer")
    ensure_tokenizer(folder, os.fspath(tmp_path / "corpus"), "en", "es", SMOKE_RECIPE, fresh=False)
    assert saved_vocabulary_size(folder) == SMOKE_RECIPE.vocab_size
    ensure_tokenizer(folder, os.fspath(tmp_path / "corpus"), "en", "es", SMOKE_RECIPE, fresh=False)
    assert "reusing the vocabulary" in capsys.readouterr().err
    smaller = dataclasses.replace(SMOKE_RECIPE, vocab_size=SMOKE_RECIPE.vocab_size - 20)
    ensure_tokenizer(folder, os.fspath(tmp_path / "corpus"), "en", "es", smaller, fresh=False)
    assert "training a new one" in capsys.readouterr().err
    assert saved_vocabulary_size(folder) == smaller.vocab_size


# ---- one framework installed: the other must never be imported ---------------------------------------

HIDDEN_MODULES = {"pt": ("torch",), "tf": ("tensorflow", "tf_keras")}

# The quickstart's smoke run, smaller still (4 test sentences, 8 tokens), through the real CLI.
SMOKE_CLI = (
    "import dataclasses, sys\n"
    "import westron.quickstart as quickstart\n"
    "quickstart.SMOKE_RECIPE = dataclasses.replace(quickstart.SMOKE_RECIPE, test_sentences=4, max_length=8)\n"
    "from westron.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_without(framework: str, code: str, argv, tmp_path, env=None):
    """`code` in a fresh interpreter where importing `framework`'s modules fails, as on a machine without it."""
    import subprocess
    import sys
    from pathlib import Path

    shim = tmp_path / f"without-{framework}"
    shim.mkdir(exist_ok=True)
    (shim / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in HIDDEN_MODULES[framework])
    )
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, **(env or {}), "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([os.fspath(shim), os.fspath(repo)])}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


@pytest.mark.parametrize("hidden", ["pt", "tf"])
def test_the_shim_hides_the_framework(hidden, tmp_path):
    done = run_without(hidden, f"import {HIDDEN_MODULES[hidden][0]}", [], tmp_path)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr


@pytest.mark.parametrize("framework, hidden", [("tf", "pt"), ("pt", "tf")])
def test_smoke_run_with_only_one_framework_installed(framework, hidden, tmp_path):
    fixture_catalogs(tmp_path / "locale")
    out = tmp_path / "quickstart"
    argv = ["quickstart", "--smoke", "--budget-minutes", "0.01", "--frameworks", framework, "--output-dir", os.fspath(out)]
    argv += ["--device", "cpu"]  # TensorFlow: the run goes inside tf.device
    done = run_without(hidden, SMOKE_CLI, argv, tmp_path, env={"WESTRON_GETTEXT_PATH": os.fspath(tmp_path / "locale")})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert (out / framework / "model.safetensors").exists() and not (out / hidden).exists()
    results = json.loads((out / "quickstart.json").read_text())
    assert list(results["pairs"]["en-es"]["frameworks"]) == [framework]
    # The report runs the checkpoint in both frameworks: it is left out, and the run says so.
    assert "no comparison report" in done.stderr and not (out / "report").exists()


@pytest.mark.parametrize("framework, hidden", [("tf", "tf"), ("pt,tf", "pt")])
def test_a_framework_that_is_not_installed_is_one_line(framework, hidden, tmp_path):
    argv = ["quickstart", "--smoke", "--frameworks", framework, "--output-dir", os.fspath(tmp_path / "out")]
    done = run_without(hidden, SMOKE_CLI, argv, tmp_path)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        f"westron: error: --frameworks {framework}: {FRAMEWORK_NAMES[hidden]} ({HIDDEN_MODULES[hidden][0]}) is not installed"
    ], done.stderr
    assert not (tmp_path / "out").exists()


def test_side_by_side_workers_print_warnings_as_one_line(monkeypatch, capsys):
    """The training processes are spawned: without the CLI's handler their warnings came out in
    Python's plain format (file, line number and source line) in the middle of the run's output."""
    import warnings

    from westron import quickstart

    def warns(*job, threads):
        warnings.warn("inputs longer than the model's limit of 32 tokens are truncated", stacklevel=2)
        return {"threads": threads}

    monkeypatch.setattr(quickstart, "train_and_score", warns)
    assert quickstart.train_and_score_in_worker("folder", "pt", threads=1) == {"threads": 1}
    assert capsys.readouterr().err == "westron: warning: inputs longer than the model's limit of 32 tokens are truncated\n"
