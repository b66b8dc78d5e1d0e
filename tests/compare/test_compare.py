"""`westron compare` and `westron report` on the tiny demo checkpoint.

The full run is small (--quick, PyTorch eager as the only speed mode, 4 new tokens): the suite
checks the structure, the flags a broken twin raises, failing modes and the one-line errors, not
speed (speed belongs in benchmarks/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli_utils import run_cli

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = [
    "Speak, friend, and enter.",
    "Not all those who wander are lost.",
    "The road goes ever on and on.",
    "One checkpoint, two frameworks.",
    "Greedy search takes the most likely token at every step.",
    "The encoder reads the source.",
]


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from westron.demo import build_demo_checkpoint

    return build_demo_checkpoint(str(tmp_path_factory.mktemp("demo") / "model"))


@pytest.fixture(scope="module")
def test_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "test.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for text in SENTENCES:
            handle.write(json.dumps({"translation": {"en": text, "de": text.upper()}}) + "\n")
    return str(path)


def write_log(folder: Path, framework: str, losses) -> Path:
    """A log.jsonl as `westron train` writes it, and the trainer_state.json naming the framework."""
    folder.mkdir(parents=True)
    with open(folder / "log.jsonl", "w", encoding="utf-8") as handle:
        for step, loss in enumerate(losses, start=1):
            handle.write(json.dumps({"step": step * 10, "loss": loss, "learning_rate": 1e-4, "tokens_per_second": 900.0 + step}) + "\n")
            if step % 2 == 0:
                handle.write(json.dumps({"step": step * 10, "eval_loss": loss + 0.5, "eval_bleu": 3.0 * step}) + "\n")
    (folder / "trainer_state.json").write_text(json.dumps({"framework": framework, "global_step": 10 * len(losses)}))
    return folder


def base_argv(demo_folder, test_file, out):
    return ["compare", "--model", demo_folder, "--test-file", test_file, "--source-lang", "en", "--target-lang", "de",
            "-o", str(out), "--quick", "--max-new-tokens", "4",
            "--equivalence-tf-mode", "eager"]  # XLA's compile would cost the suite 20 s here


@pytest.fixture(scope="module")
def full_run(demo_folder, test_file, tmp_path_factory):
    """One compare run: PyTorch eager timed, training logs of both frameworks."""
    root = tmp_path_factory.mktemp("run")
    pt_log = write_log(root / "pt-run", "pt", [5.0, 4.0, 3.5, 3.2])
    tf_log = write_log(root / "tf-run", "tf", [5.0, 4.1, 3.6, 3.1])
    out = root / "report"
    argv = base_argv(demo_folder, test_file, out) + ["--modes", "pt_eager", "--training-log", str(pt_log),
                                                     "--training-log", f"tf-trainer={tf_log}"]
    with pytest.MonkeyPatch.context() as monkeypatch:
        code, stdout, stderr = run_cli(argv, monkeypatch)
    assert code == 0, stderr
    return out, stdout, json.loads((out / "results.json").read_text())


def test_results_hold_every_section_with_how_it_was_measured(full_run):
    out, stdout, results = full_run
    assert "model: PyTorch and TensorFlow equivalent" in stdout
    model = results["models"][0]
    equivalence = model["equivalence"]
    assert equivalence["equivalent"] and equivalence["logits"]["within_tolerance"]
    assert equivalence["identical_share"] == {"greedy": 1.0, "beam": 1.0}
    assert equivalence["sentences"] == len(SENTENCES) and equivalence["differences"] == []
    assert "teacher-forced" in equivalence["method"]
    for framework in ("pt", "tf"):
        for decoding in ("greedy", "beam"):
            scores = model["quality"][framework][decoding]["all"]
            assert set(scores["signatures"]) == {"bleu", "chrf", "ter"} and scores["num_sentences"] == len(SENTENCES)
    # Same checkpoint, same outputs: the scores agree too.
    assert model["quality"]["pt"]["beam"]["all"]["chrf"] == model["quality"]["tf"]["beam"]["all"]["chrf"]

    speed = results["speed"]
    assert speed["method"]["statistic"] == "median" and speed["method"]["runs"] == 1
    pt_eager = speed["modes"]["pt_eager"]
    assert set(pt_eager["generation"]) == {"batch1_greedy", "batch1_beam", "batch32_greedy", "batch32_beam"}
    for entry in pt_eager["generation"].values():
        assert entry["tokens_per_second"] > 0 and entry["generated_tokens"] <= 4 * entry["sentences"]
        assert entry["compile_seconds"] >= 0 and len(entry["pass_seconds"]) == 1
    assert pt_eager["training_step"]["median_seconds"] > 0 and pt_eager["training_step"]["batch_size"] == 4
    assert pt_eager["memory"]["peak_rss_mib"] >= pt_eager["memory_after_load"]["rss_mib"] > 0
    assert results["devices"]["pt"]["device_used"] == "cpu" and "placement" in results["devices"]["pt"]
    assert results["environment"]["versions"]["torch"] and results["environment"]["usable_cpus"] >= 1

    logs = {log["label"]: log for log in results["training"]["logs"]}
    assert logs["pt"]["framework"] == "pt" and logs["tf-trainer"]["framework"] == "tf"  # from trainer_state.json
    assert [r["step"] for r in logs["pt"]["records"] if "eval_bleu" in r] == [20, 40]


def test_reports_are_drawn_from_the_json(full_run):
    out, _, results = full_run
    markdown = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    titles = ("## Equivalence", "## Quality", "## Training", "## Speed", "## Memory", "## Devices", "## Environment")
    for title in titles + ("## Attention maps",):  # the last from the extra-sections hook (attention_render)
        assert title in markdown
    for image in ("training", "speed", "step_memory"):
        assert (out / "plots" / f"{image}.png").read_bytes().startswith(b"\x89PNG")
        assert f"plots/{image}.png" in markdown
    attention = [s for s in results["extra_sections"] if s["id"] == "attention"]
    assert len(attention) == 1 and len(attention[0]["images"]) == 3 and attention[0]["data"]["max_difference"] < 1e-4
    assert 1 < len(attention[0]["data"]["target_ids"]) <= 1 + 4  # decoder start + at most --max-new-tokens 4
    assert page.count("data:image/png;base64,") == 3 + 3 and "plots/" not in page  # self-contained
    assert "PyTorch eager" in page and "nrefs:1" in page
    # The quality table says how many sentences its scores cover (a sample, with --max-sentences).
    assert "| model | framework | decoding | sentences | BLEU |" in markdown
    assert f"| {results['models'][0]['label']} | PyTorch | greedy | {len(SENTENCES)} |" in markdown


def test_render_only_and_report_rebuild_the_same_report(full_run, tmp_path, monkeypatch):
    out, _, _ = full_run
    code, _, stderr = run_cli(["compare", "--render-only", str(out / "results.json"), "-o", str(tmp_path / "a")], monkeypatch)
    assert code == 0, stderr
    code, _, stderr = run_cli(["report", str(tmp_path / "a" / "results.json"), "-o", str(tmp_path / "b")], monkeypatch)
    assert code == 0, stderr
    original = (out / "report.md").read_text()
    assert (tmp_path / "a" / "report.md").read_text() == original == (tmp_path / "b" / "report.md").read_text()


def test_a_broken_twin_is_flagged_and_a_failing_mode_is_reported(demo_folder, test_file, tmp_path, monkeypatch):
    """TensorFlow's weights nudged by 5% after loading: the report must say the twins differ.

    The same run gives its only speed mode one second: the mode fails, the report says so, and
    every other section is still there.
    """
    from westron.compare import tf_modes

    load = tf_modes.load_model

    def load_perturbed(folder, device):
        model = load(folder, device)
        tf_modes.perturb_weights(model, 0.05)
        return model

    monkeypatch.setattr(tf_modes, "load_model", load_perturbed)
    out = tmp_path / "report"
    argv = base_argv(demo_folder, test_file, out) + ["--modes", "pt_eager", "--mode-timeout", "1"]
    code, stdout, stderr = run_cli(argv, monkeypatch)
    assert code == 0, stderr
    results = json.loads((out / "results.json").read_text())
    equivalence = results["models"][0]["equivalence"]
    assert not equivalence["equivalent"] and not equivalence["logits"]["within_tolerance"]
    assert equivalence["logits"]["max_abs_diff"] > 10 * equivalence["logits"]["tolerance"]
    assert equivalence["identical_share"]["greedy"] < 1.0
    assert len(equivalence["differences"]) == sum(len(SENTENCES) - n for n in equivalence["identical_count"].values())
    assert "NOT EQUIVALENT" in stdout
    markdown = (out / "report.md").read_text()
    assert "> **Warning:** `model`: PyTorch and TensorFlow are **NOT equivalent**" in markdown
    assert "### Sentences whose outputs differ" in markdown

    assert results["speed"]["modes"]["pt_eager"] == {"error": "timed out after 1 s (--mode-timeout)"}
    assert "| PyTorch eager | – | failed: timed out after 1 s (--mode-timeout) |" in markdown
    assert "failed: timed out" in (out / "report.html").read_text()


def test_a_failing_cell_is_recorded_and_the_others_measured(demo_folder):
    """Inside one worker a generation setting that cannot run fails alone (here: 0 beams)."""
    from westron.compare.worker import run

    spec = {"framework": "pt", "mode": "eager", "model": demo_folder, "device": "cpu", "sources": SENTENCES[:2],
            "targets": SENTENCES[:2], "batch_sizes": [32], "sentences": 2, "batch1_sentences": 1,
            "decodings": {"greedy": 1, "broken": 0}, "runs": 1, "train_batch_size": 0, "max_new_tokens": 2}
    result = run(spec)
    assert result["generation"]["batch32_greedy"]["tokens_per_second"] > 0
    assert result["generation"]["batch32_broken"]["error"].startswith("WestronError: ")
    assert "\n" not in result["generation"]["batch32_broken"]["error"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda argv, tmp: argv.__setitem__(argv.index("--test-file") + 1, str(tmp / "missing.jsonl")), "cannot read input file"),
        (lambda argv, tmp: argv.__setitem__(argv.index("--model") + 1, str(tmp / "no-model")), "does not exist"),
        (lambda argv, tmp: argv.__setitem__(argv.index("-o") + 1, str(tmp / "a-file" / "out")), "cannot write to output folder"),
        (lambda argv, tmp: argv.extend(["--modes", "pt_eager,jax"]), "unknown mode 'jax'"),
        (lambda argv, tmp: argv.extend(["--tgt-lang", "fr"]), "--tgt-lang: this model takes no language codes"),
        (lambda argv, tmp: argv.extend(["--modes", "none", "--runs", "5", "--mode-timeout", "9"]),
         "--runs, --mode-timeout size(s) the speed modes, which --modes none skips"),
        (lambda argv, tmp: argv.extend(["--mode-timeout", "-5"]), "--mode-timeout: -5 must be a positive number of seconds"),
    ],
    ids=["unreadable-test-file", "missing-model", "unwritable-output", "unknown-mode", "language-a-marian-model-ignores",
         "speed-sizes-without-speed-modes", "negative-mode-timeout"],
)
def test_failures_are_one_line_and_exit_2(demo_folder, test_file, tmp_path, monkeypatch, change, message):
    (tmp_path / "a-file").write_text("not a folder")
    argv = base_argv(demo_folder, test_file, tmp_path / "out")
    change(argv, tmp_path)
    code, stdout, stderr = run_cli(argv, monkeypatch)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("westron: error: ") and message in stderr, stderr
    assert not (tmp_path / "out").exists()  # a mistake in the input leaves no empty output folder behind


@pytest.mark.parametrize("flag", ["--src-lang", "--tgt-lang"])
def test_test_file_keys_an_nllb_model_lacks_are_one_line_naming_the_flag(test_file, tmp_path, monkeypatch, flag):
    """NLLB's codes are eng_Latn, not the test file's en: said before measuring, with no output folder left."""
    from tests.hf_oracle import save_tiny_m2m100
    from tests.spm_fixtures import write_nllb_folder
    from westron.models.m2m_100.tokenization_nllb import NllbTokenizer

    folder = write_nllb_folder(tmp_path / "nllb")
    save_tiny_m2m100(folder, vocab_size=len(NllbTokenizer.from_pretrained(folder)))
    argv = ["compare", "--model", folder, "--test-file", test_file, "--source-lang", "en", "--target-lang", "de",
            "--quick", "--modes", "none", "-o", str(tmp_path / "out")]  # fmt: skip
    other = {"--src-lang": ["--tgt-lang", "deu_Latn"], "--tgt-lang": ["--src-lang", "eng_Latn"]}[flag]
    code, _, stderr = run_cli(argv + other, monkeypatch)
    assert code == 2
    assert stderr.count("\n") == 1 and stderr.startswith("westron: error: unknown language") and f"with {flag}" in stderr, stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ({"bleu": 3}, "not a westron compare results file (schema None"),
        ([1, 2], "not a westron compare results file (a JSON list, not an object"),
        ({"schema": "westron-compare/1"}, "other.json is incomplete or edited"),  # a truncated file with the right schema
    ],
)
def test_render_only_of_something_else_is_one_line(tmp_path, monkeypatch, content, message):
    (tmp_path / "other.json").write_text(json.dumps(content))
    for argv in (["report", str(tmp_path / "other.json"), "-o", str(tmp_path / "out")],
                 ["compare", "--render-only", str(tmp_path / "other.json"), "-o", str(tmp_path / "out")]):
        code, _, stderr = run_cli(argv, monkeypatch)
        assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [["--quick"], ["--num-beams", "2"], ["--modes", "none"], ["--device", "cpu"], ["--test-file", "t.jsonl"]])
def test_render_only_refuses_the_flags_of_a_measurement(tmp_path, monkeypatch, flags):
    """--render-only measures nothing: a measuring flag beside it would be silently ignored."""
    (tmp_path / "results.json").write_text(json.dumps({"schema": "westron-compare/1"}))
    argv = ["compare", "--render-only", str(tmp_path / "results.json"), "-o", str(tmp_path / "out"), *flags]
    code, _, stderr = run_cli(argv, monkeypatch)
    assert code == 2 and f"--render-only measures nothing: drop {flags[0]}" in stderr and stderr.count("\n") == 1, stderr


def test_training_log_framework_and_bad_lines(tmp_path):
    from westron.compare.training_logs import read_log
    from westron.errors import WestronError

    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 2, "loss": 1.5, "framework": "tensorflow"}\n{"step": 1, "loss": NaN, "eval_bleu": 2}\n')
    log = read_log(str(path))
    assert log["framework"] == "tf" and log["records"] == [{"step": 1, "eval_bleu": 2.0}, {"step": 2, "loss": 1.5}]
    path.write_text('{"loss": 1.5}\n')
    with pytest.raises(WestronError, match="line 1 is not a JSON object"):
        read_log(str(path))


def test_decoder_mask_keeps_positions_up_to_the_first_eos():
    from westron.compare.equivalence import decoder_mask

    ids = np.array([[5, 7, 0, 5, 5], [0, 7, 8, 9, 0]])  # start token 5 / 0 (Marian: pad, T5: 0 = pad = eos? no: eos 0 here)
    assert decoder_mask(ids, {0}).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]


def test_importing_compare_loads_no_framework_and_no_matplotlib():
    probe = (
        "import westron.cli, westron.compare.cli, westron.compare.measure, westron.compare.report, westron.compare.sections\n"
        "import westron.cli as c; c.build_parser()\n"
        "import sys, json; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'tensorflow', 'keras', 'matplotlib'})))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_extra_sections_hook_renders_sections_and_survives_a_failing_provider(full_run, tmp_path):
    import base64

    from westron.compare.plots import _png, _pyplot
    from westron.compare.report import write_reports
    from westron.compare.sections import collect_extra_sections

    figure = _pyplot().figure(figsize=(2, 2))
    png = _png(figure)

    def attention_maps(context):
        assert context["pairs"][0].sources == ["hello"]
        return {"id": "attention", "title": "Attention maps", "markdown": "Cross-attention of `hello`.",
                "images": [{"caption": "layer 1", "png_base64": base64.b64encode(png).decode()}]}

    def broken(context):
        raise RuntimeError("no maps today\nsecond line")

    _, _, results = full_run
    context = {"pairs": [type("Pair", (), {"sources": ["hello"]})()], "results": results, "loaded": {}, "settings": None}
    results = dict(results, extra_sections=collect_extra_sections(context, [attention_maps, broken]))
    assert [s["title"] for s in results["extra_sections"]] == ["Attention maps", "broken"]
    assert results["extra_sections"][1]["markdown"] == "failed: RuntimeError: no maps today"
    json.dumps(results)  # sections must stay JSON-able: the report is re-rendered from results.json
    write_reports(results, str(tmp_path))
    markdown = (tmp_path / "report.md").read_text()
    assert "## Attention maps\n\nCross-attention of `hello`.\n\n![layer 1](plots/attention-0.png)" in markdown
    assert "## broken\n\nfailed: RuntimeError: no maps today" in markdown
    page = (tmp_path / "report.html").read_text()
    assert '<h2 id="attention">' in page and page.count("data:image/png;base64,") == 4


def test_several_pairs_are_read_and_scored_per_pair(tmp_path):
    from westron.compare.measure import CompareSettings, language_pairs
    from westron.compare.quality import score_quality

    path = tmp_path / "multi.jsonl"
    rows = [{"en": "a cat", "de": "eine Katze", "fr": "un chat"}, {"en": "a dog", "de": "ein Hund", "fr": "un chien"}]
    path.write_text("".join(json.dumps({"translation": row}) + "\n" for row in rows))
    settings = CompareSettings(models=[], test_file=str(path), source_langs=["en"], target_langs=["de", "fr"], output_dir="x")
    pairs = language_pairs(settings)
    assert [(p.name, p.src_code, p.tgt_code, p.references) for p in pairs] == [
        ("en-de", "en", "de", ["eine Katze", "ein Hund"]), ("en-fr", "en", "fr", ["un chat", "un chien"])]
    perfect = {"pt": {"greedy": {"en-de": ["eine Katze", "ein Hund"], "en-fr": ["un chat", "wrong"]}}}
    quality = score_quality(perfect, pairs)["pt"]["greedy"]
    assert quality["per_pair"]["en-de"]["chrf"] == 100.0 and quality["per_pair"]["en-fr"]["chrf"] < 100.0
    assert quality["per_pair"]["en-de"]["chrf"] > quality["all"]["chrf"] > quality["per_pair"]["en-fr"]["chrf"]


def test_a_test_file_without_a_header_takes_columns_by_index(tmp_path, monkeypatch):
    """The reader's error suggests --source-column 0 --target-column 1: compare takes them (it refused them)."""
    from westron.compare.measure import CompareSettings, language_pairs
    from westron.errors import WestronError

    path = tmp_path / "test.tsv"
    path.write_text("a cat\teine Katze\na dog\tein Hund\n", encoding="utf-8")
    settings = CompareSettings(models=[], test_file=str(path), source_langs=["en"], target_langs=["de"], output_dir="x",
                               source_column="0", target_column="1")
    [pair] = language_pairs(settings)
    assert (pair.sources, pair.references) == (["a cat", "a dog"], ["eine Katze", "ein Hund"])
    settings.target_langs = ["de", "fr"]
    with pytest.raises(WestronError, match="name one pair's columns"):
        language_pairs(settings)
    seen = {}

    def stop(settings, log=print):
        seen["settings"] = settings
        raise WestronError("measured nothing")

    monkeypatch.setattr("westron.compare.cli.compare_and_report", stop)
    argv = ["compare", "--model", "m", "--test-file", str(path), "--source-lang", "en", "--target-lang", "de", "-o", "out"]
    run_cli([*argv, "--source-column", "0", "--target-column", "1"], monkeypatch)
    assert (seen["settings"].source_column, seen["settings"].target_column) == ("0", "1")


def test_skipped_test_records_are_one_warning(tmp_path):
    """--on-error skip scores fewer sentences than the file holds: a warning says how many and why."""
    from westron.compare.measure import CompareSettings, language_pairs

    path = tmp_path / "test.tsv"
    path.write_text("en\tde\na cat\teine Katze\nno tab\na dog\tein Hund\n", encoding="utf-8")
    settings = CompareSettings(models=[], test_file=str(path), source_langs=["en"], target_langs=["de"], output_dir="x", on_error="skip")
    with pytest.warns(UserWarning, match=r"^en-de: skipped 1 malformed records \(wrong_column_count 1\) of the test file, e.g. test.tsv:3"):
        [pair] = language_pairs(settings)
    assert pair.sources == ["a cat", "a dog"]
