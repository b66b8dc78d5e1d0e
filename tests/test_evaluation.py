"""westron.evaluation and `westron evaluate`: sacrebleu's own numbers, the tokenizer rule, PT and TF models, the CLI."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU, CHRF, TER

from tests.cli_utils import assert_one_line_error, run_cli
from westron.errors import WestronError
from westron.evaluation import bleu_tokenizer_for, evaluate_model, score_translations

HYPOTHESES = ["The cat sat on the mat.", "A dog barks at night", "", "Speak, friend, and enter!", "Hello world"]
REFERENCES = ["The cat is on the mat.", "The dog barks loudly at night.", "Hello", "Speak friend and enter.", "Hello, world."]
SOURCES = [
    "The common tongue is spoken by every people of the West.",
    "Speak, friend, and enter.",
    "",
    "One checkpoint, two frameworks.",
    "Not all those who wander are lost.",
]
TARGETS = ["La lengua común.", "Habla, amigo, y entra.", "", "Un punto de control.", "No todos los que vagan están perdidos."]


def mecab_available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ---- scores --------------------------------------------------------------------------------------------


def test_scores_equal_sacrebleu_corpus_functions():
    result = score_translations(HYPOTHESES, REFERENCES, target_lang="en")
    bleu = sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES])
    assert result.bleu == bleu.score
    assert result.chrf == sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score
    assert result.ter == sacrebleu.corpus_ter(HYPOTHESES, [REFERENCES]).score
    assert (result.hyp_length, result.ref_length) == (bleu.sys_len, bleu.ref_len)
    assert result.length_ratio == pytest.approx(bleu.sys_len / bleu.ref_len, rel=1e-12)
    assert result.length_ratio < 1 and 0 < result.bleu < 100 and result.num_sentences == len(REFERENCES)
    metrics = {"bleu": BLEU(), "chrf": CHRF(), "ter": TER()}
    for metric in metrics.values():
        metric.corpus_score(HYPOTHESES, [REFERENCES])  # a signature needs a scored corpus (nrefs)
    assert result.signatures == {name: str(metric.get_signature()) for name, metric in metrics.items()}
    assert "tok:13a" in result.signatures["bleu"] and f"version:{sacrebleu.__version__}" in result.signatures["bleu"]
    assert result.to_dict()["signatures"] == result.signatures and result.to_dict()["bleu"] == result.bleu


def test_perfect_translations_score_100():
    result = score_translations(REFERENCES, REFERENCES)
    # BLEU is exp(mean log precision): 100 within float64 rounding.
    assert result.bleu == pytest.approx(100.0, rel=1e-12) and result.chrf == 100.0
    assert (result.ter, result.length_ratio) == (0.0, 1.0)


def test_format_prints_each_score_with_its_signature():
    result = score_translations(HYPOTHESES, REFERENCES)
    text = result.format()
    for line_start, signature in (("BLEU", "bleu"), ("chrF2", "chrf"), ("TER", "ter")):
        line = next(line for line in text.splitlines() if line.startswith(line_start))
        assert line.endswith(result.signatures[signature])
    assert f"{result.bleu:.2f}" in text and f"{result.length_ratio:.3f}" in text


@pytest.mark.parametrize(
    "target_lang, tokenizer",
    [
        ("ja", "ja-mecab"),
        ("jpn_Jpan", "ja-mecab"),
        ("ja-JP", "ja-mecab"),
        ("zh", "zh"),
        ("zh-TW", "zh"),
        ("zho_Hans", "zh"),
        ("ko", "ko-mecab"),
        ("kor_Hang", "ko-mecab"),
        ("es", "13a"),
        ("spa_Latn", "13a"),
        ("de", "13a"),
        (None, "13a"),
    ],
)
def test_bleu_tokenizer_follows_the_target_language_as_sacrebleu_does(target_lang, tokenizer):
    assert bleu_tokenizer_for(target_lang) == tokenizer
    two_letter = {"ja-mecab": "ja", "zh": "zh", "ko-mecab": "ko"}.get(tokenizer, "")
    assert BLEU(trg_lang=two_letter).tokenizer.signature().startswith(tokenizer)


def test_chinese_bleu_uses_the_zh_tokenizer():
    hypotheses, references = ["今天天气很好。", "我喜欢读书"], ["今天天气不错。", "我爱读书"]
    result = score_translations(hypotheses, references, target_lang="zho_Hans")
    expected = BLEU(trg_lang="zh")
    assert result.bleu == expected.corpus_score(hypotheses, [references]).score > 0
    assert result.signatures["bleu"] == str(expected.get_signature())
    # Without the language, 13a sees each sentence as one or two words: a different number.
    assert score_translations(hypotheses, references).bleu != result.bleu


@pytest.mark.parametrize(
    "lang, module, hypotheses, references",
    [
        ("ja", "MeCab", ["今日は良い天気です。", "猫が好きです"], ["今日はいい天気です。", "私は猫が好きです"]),
        ("ko", "mecab_ko", ["오늘은 날씨가 좋다.", "고양이를 좋아해요"], ["오늘은 날씨가 좋네요.", "저는 고양이를 좋아해요"]),
    ],
)
def test_japanese_and_korean_bleu_use_mecab(lang, module, hypotheses, references):
    if not mecab_available(module):
        pytest.skip(f"{module} is not installed (pip install 'westron[{lang}]')")
    result = score_translations(hypotheses, references, target_lang=lang)
    expected = BLEU(trg_lang=lang)
    assert result.bleu == expected.corpus_score(hypotheses, [references]).score
    assert result.signatures["bleu"] == str(expected.get_signature())
    assert f"tok:{lang}-mecab" in result.signatures["bleu"]


@pytest.mark.parametrize("lang, module_name, extra", [("ja", "tokenizer_ja_mecab", "westron[ja]"), ("ko", "tokenizer_ko_mecab", "westron[ko]")])
def test_missing_mecab_is_one_clear_error_naming_the_extra(monkeypatch, lang, module_name, extra):
    import importlib

    # sacrebleu marks MeCab missing this way when its import fails.
    monkeypatch.setattr(importlib.import_module(f"sacrebleu.tokenizers.{module_name}"), "MeCab", None)
    with pytest.raises(WestronError, match=re.escape(f"pip install '{extra}'")) as caught:
        score_translations(["a"], ["a"], target_lang=lang)
    assert "\n" not in str(caught.value)
    # Choosing another tokenizer is the way around it.
    assert "tok:char" in score_translations(["a"], ["a"], target_lang=lang, bleu_tokenize="char").signatures["bleu"]


def test_bleu_tokenize_overrides_the_language_rule():
    result = score_translations(HYPOTHESES, REFERENCES, target_lang="zh", bleu_tokenize="intl")
    assert "tok:intl" in result.signatures["bleu"]
    assert result.bleu == BLEU(tokenize="intl").corpus_score(HYPOTHESES, [REFERENCES]).score


@pytest.mark.parametrize(
    "hypotheses, references, kwargs, message",
    [
        (["a", "b"], ["a"], {}, "2 translations for 1 references"),
        ([], [], {}, "no sentences"),
        (["a"], ["a"], {"bleu_tokenize": "moses"}, "unknown BLEU tokenizer 'moses'"),
    ],
)
def test_bad_scoring_input_is_a_westron_error(hypotheses, references, kwargs, message):
    with pytest.raises(WestronError, match=message):
        score_translations(hypotheses, references, **kwargs)


# ---- models --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from westron.demo import build_demo_checkpoint

    return build_demo_checkpoint(str(tmp_path_factory.mktemp("evaluation") / "model"))


def load(folder, framework):
    from westron.models.auto import AutoModelForSeq2SeqLM, AutoTokenizer, TFAutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if framework == "pt" else TFAutoModelForSeq2SeqLM
    return auto.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_evaluate_model_translates_in_input_order_and_scores(demo_folder, framework):
    from westron.pipelines import TranslationPipeline

    model, tokenizer = load(demo_folder, framework)
    if framework == "pt":
        model.train()  # as a trainer calls it: dropout on; evaluation must switch it off and back
    settings = dict(num_beams=1, max_new_tokens=4)
    if framework == "tf":
        settings["eager"] = True  # the search step by step: no XLA compile per batch shape (seconds each here)
    result, hypotheses = evaluate_model(model, tokenizer, SOURCES, TARGETS, target_lang="es", batch_size=2, **settings)

    assert len(hypotheses) == len(SOURCES) and hypotheses[2] == ""
    if framework == "pt":
        assert model.training
        model.eval()
    # One unsorted batch through the pipeline gives the same translations, in the same order.
    nonempty = [text for text in SOURCES if text]
    expected = TranslationPipeline(model, tokenizer).translate_batch(nonempty, **settings)
    assert [text for source, text in zip(SOURCES, hypotheses) if source] == expected
    assert len(set(expected)) > 1  # the sentences translate differently, so a wrong order would show
    assert result == score_translations(hypotheses, TARGETS, target_lang="es")


def test_evaluate_model_counts_must_match(demo_folder):
    model, tokenizer = load(demo_folder, "pt")
    with pytest.raises(WestronError, match="2 sources for 1 references"):
        evaluate_model(model, tokenizer, ["a", "b"], ["a"])


# ---- westron evaluate ----------------------------------------------------------------------------------


def write_jsonl(path, pairs, source_lang="en", target_lang="es"):
    lines = [json.dumps({"translation": {source_lang: s, target_lang: t}}, ensure_ascii=False) for s, t in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


PAIRS = [(s, t) for s, t in zip(SOURCES, TARGETS) if s]


@pytest.mark.parametrize("file_type", ["jsonl", "tsv", "tsv-without-header"])
def test_cli_writes_hypotheses_and_json_beside_the_printed_scores(demo_folder, tmp_path, monkeypatch, file_type):
    """A TSV without a header takes --source-column 0 --target-column 1 (the error suggested them; evaluate refused them)."""
    columns = []
    if file_type == "jsonl":
        test_file = write_jsonl(tmp_path / "test.jsonl", PAIRS)
    else:
        test_file = tmp_path / "test.tsv"
        header = "en\tes\n" if file_type == "tsv" else ""
        test_file.write_text(header + "".join(f"{s}\t{t}\n" for s, t in PAIRS), encoding="utf-8")
        columns = ["--source-column", "0", "--target-column", "1"] if not header else []
    scores = tmp_path / "scores.json"
    argv = ["evaluate", "--model", demo_folder, "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "es", *columns]
    argv += ["--framework", "pt", "--num-beams", "2", "--max-new-tokens", "5", "--batch-size", "3", "--output-json", str(scores)]
    code, stdout, stderr = run_cli(argv, monkeypatch)
    assert code == 0, stderr

    hypotheses = (tmp_path / "scores.hyp.txt").read_text(encoding="utf-8").split("\n")
    assert hypotheses[-1] == "" and len(hypotheses) - 1 == len(PAIRS)
    report = json.loads(scores.read_text(encoding="utf-8"))
    expected = score_translations(hypotheses[:-1], [t for _, t in PAIRS], target_lang="es")
    assert {key: report[key] for key in expected.to_dict()} == expected.to_dict()
    assert report["settings"]["num_beams"] == 2 and report["settings"]["hypotheses_file"] == str(tmp_path / "scores.hyp.txt")
    assert f"BLEU  = {expected.bleu:6.2f}  {expected.signatures['bleu']}" in stdout
    assert expected.signatures["chrf"] in stdout and expected.signatures["ter"] in stdout


def test_cli_output_flag_names_the_hypotheses_file(demo_folder, tmp_path, monkeypatch):
    test_file = write_jsonl(tmp_path / "test.jsonl", PAIRS[:2])
    output = tmp_path / "hyp.txt"
    argv = ["evaluate", "--model", demo_folder, "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "es"]
    code, stdout, stderr = run_cli(argv + ["--framework", "pt", "--max-new-tokens", "3", "-o", str(output)], monkeypatch)
    assert code == 0, stderr
    assert output.read_text(encoding="utf-8").count("\n") == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hyp.txt", "test.jsonl"]  # no JSON unless asked


@pytest.mark.parametrize(
    "content, file_name, extra_args, fragments",
    [
        (None, "missing.jsonl", [], ("cannot read input file", "missing.jsonl")),
        ('{"translation": {"en": "a", "de": "b"}}\n', "test.jsonl", [], ("test.jsonl:1: no es (it has: en, de)",)),
        ('{"translation": {"en": "a", "es": "b"}}\n{oops\n', "test.jsonl", [], ("test.jsonl:2:",)),
        ('{"en": "a", "es": "b"}\n', "test.jsonl", [], ("test.jsonl:1:",)),
        ("en\tes\na\tb\tc\n", "test.tsv", [], ("test.tsv:2:",)),
        ("en\tes\na\tb\n", "test.txt", [], ("test.txt",)),
        ("en\tes\n", "test.tsv", [], ("holds no sentence pairs",)),
        ("en\tes\na\t\nb\t  \n", "test.tsv", [], ("every es reference is empty",)),
        ("en\tes\na\tb\n", "test.tsv", ["--model", "{tmp}/no/such/model"], ("does not exist",)),
        ("en\tes\na\tb\n", "test.tsv", ["--model", "{tmp}"], ("has no config.json",)),
        ("en\tes\na\tb\n", "test.tsv", ["--bleu-tokenize", "moses"], ("unknown BLEU tokenizer 'moses'",)),
        ('{"translation": {"en": "a", "es": "b"}}\n', "test.jsonl", ["--source-column", "0"], ("source_column",)),
        ("en\tes\na\tb\n", "test.tsv", ["--output-json", "{tmp}/no/such/folder/scores.json"], ("does not exist",)),
        ("en\tes\na\tb\n", "test.tsv", ["-o", "{tmp}/./test.tsv"], ("is the input file", "choose another -o")),
        ("en\tes\na\tb\n", "test.tsv", ["--output-json", "{tmp}/test.tsv"], ("is the input file", "choose another --output-json")),
        ("en\tes\na\tb\n", "test.tsv", ["-o", "{tmp}/s.json", "--output-json", "{tmp}/s.json"], ("-o and --output-json both name",)),
        ("en\tes\na\tb\n", "test.tsv", ["--output-json", "{tmp}"], ("cannot write", "it is a folder")),  # not a traceback after translating
        ("en\tes\na\tb\n", "test.tsv", ["-o", "{tmp}"], ("cannot write", "it is a folder")),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(demo_folder, tmp_path, monkeypatch, content, file_name, extra_args, fragments):
    test_file = tmp_path / file_name
    if content is not None:
        test_file.write_text(content, encoding="utf-8")
    argv = ["evaluate", "--model", demo_folder, "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "es"]
    argv += ["--framework", "pt"] + [arg.replace("{tmp}", str(tmp_path)) for arg in extra_args]
    code, stdout, stderr = run_cli(argv, monkeypatch)
    assert_one_line_error(code, stderr, *fragments)
    assert stdout == ""
    if content is not None:
        assert test_file.read_text(encoding="utf-8") == content  # never overwritten


def test_cli_hypotheses_to_stdout_with_dash(demo_folder, tmp_path, monkeypatch):
    """-o -: stdout holds the hypotheses alone (one a line, for a pipe), the scores go to stderr."""
    test_file = write_jsonl(tmp_path / "test.jsonl", PAIRS[:3])
    argv = ["evaluate", "--model", demo_folder, "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "es"]
    code, stdout, stderr = run_cli(argv + ["--framework", "pt", "--max-new-tokens", "3", "-o", "-"], monkeypatch)
    assert code == 0, stderr
    assert stdout.count("\n") == 3 and "BLEU" not in stdout
    assert "BLEU  = " in stderr and "sentences = 3" in stderr
    assert os.listdir(tmp_path) == ["test.jsonl"]  # no file named "-"
    code, _, stderr = run_cli(argv + ["--output-json", "-"], monkeypatch)
    assert_one_line_error(code, stderr, "--output-json -: give a file name")


def test_cli_skipped_test_records_are_one_warning(demo_folder, tmp_path, monkeypatch):
    """--on-error skip scores fewer sentences than the file holds: a warning says how many and why."""
    test_file = tmp_path / "test.tsv"
    test_file.write_text("en\tes\nHello\tHola\nno tab here\nWorld\tMundo\n", encoding="utf-8")
    argv = ["evaluate", "--model", demo_folder, "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "es"]
    code, stdout, stderr = run_cli(argv + ["--framework", "pt", "--max-new-tokens", "3", "--on-error", "skip"], monkeypatch)
    assert code == 0, stderr
    assert "sentences = 2" in stdout
    assert stderr.splitlines() == [
        "westron: warning: skipped 1 malformed records (wrong_column_count 1) of the test file, e.g. test.tsv:3: 1 fields, expected 2 fields"
    ]


def test_cli_bad_utf8_names_the_line(demo_folder, tmp_path, monkeypatch):
    test_file = tmp_path / "test.tsv"
    test_file.write_bytes(b"en\tes\na\tb\n\xff\tc\n")
    argv = ["evaluate", "--model", demo_folder, "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "es"]
    code, _, stderr = run_cli(argv, monkeypatch)
    assert_one_line_error(code, stderr, "test.tsv:3")


def test_importing_evaluation_and_the_cli_loads_no_framework_or_tracker():
    import subprocess
    from pathlib import Path

    probe = (
        "import json, sys\n"
        "import westron.evaluation, westron.training.tracking, westron.cli\n"
        "westron.cli.build_parser()\n"
        "heavy = {'torch', 'tensorflow', 'keras', 'mlflow', 'wandb', 'tensorboard', 'sacrebleu'}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & heavy)))\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=root, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_cli_multilingual_model_takes_its_codes_from_the_test_file_keys(tmp_path, monkeypatch):
    """M2M100's codes are the test file's keys (en, es): evaluate defaults --src-lang/--tgt-lang to them, as
    compare and train do, and writes what --tgt-lang es writes; a key that is no code of the model needs --tgt-lang."""
    from tests.hf_oracle import save_tiny_m2m100
    from tests.spm_fixtures import write_m2m100_folder
    from westron.models.m2m_100.tokenization_m2m_100 import M2M100Tokenizer

    folder = write_m2m100_folder(tmp_path / "m2m100")
    save_tiny_m2m100(folder, vocab_size=len(M2M100Tokenizer.from_pretrained(folder)), max_position_embeddings=128)
    test_file = write_jsonl(tmp_path / "test.jsonl", PAIRS)
    argv = ["evaluate", "--model", folder, "--test-file", str(test_file), "--source-lang", "en", "--target-lang", "es"]
    argv += ["--framework", "pt", "--num-beams", "1", "--max-new-tokens", "4"]
    outputs = {}
    for name, extra in (("defaulted", []), ("explicit", ["--src-lang", "en", "--tgt-lang", "es"])):
        code, _, stderr = run_cli(argv + extra + ["-o", str(tmp_path / f"{name}.txt")], monkeypatch)
        assert code == 0, stderr
        outputs[name] = (tmp_path / f"{name}.txt").read_text(encoding="utf-8")
    assert outputs["defaulted"] == outputs["explicit"]
    other_keys = write_jsonl(tmp_path / "other.jsonl", PAIRS, "en", "spanish")
    argv = ["evaluate", "--model", folder, "--test-file", str(other_keys), "--source-lang", "en", "--target-lang", "spanish"]
    code, _, stderr = run_cli(argv + ["--framework", "pt"], monkeypatch)
    assert_one_line_error(code, stderr, "'spanish' is not one of its codes", "--tgt-lang")
