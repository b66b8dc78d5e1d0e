"""`westron train` end to end on a tiny corpus, and every user mistake as one line and exit 2."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from tests.cli_utils import run_cli
from tests.hf_oracle import save_tiny_marian

WORDS = {"red": "rojo", "house": "casa", "big": "grande", "cat": "gato", "dog": "perro", "green": "verde", "car": "coche"}


def synthetic_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    english = list(WORDS)
    pairs = []
    for _ in range(count):
        words = [english[i] for i in rng.integers(0, len(english), rng.integers(2, 6))]
        pairs.append((" ".join(words), " ".join(WORDS[w] for w in words)))
    return pairs


def write_jsonl(path, pairs, source_lang="en", target_lang="es") -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for source, target in pairs:
            handle.write(json.dumps({"translation": {source_lang: source, target_lang: target}}) + "\n")
    return os.fspath(path)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from westron.data.tokenizer_training import train_tokenizer

    folder = tmp_path_factory.mktemp("corpus")
    files = {
        "train": write_jsonl(folder / "train.jsonl", synthetic_pairs(200, 0)),
        "validation": write_jsonl(folder / "validation.jsonl", synthetic_pairs(12, 1)),
        "test": write_jsonl(folder / "test.jsonl", synthetic_pairs(10, 2)),
    }
    train_tokenizer("marian", [files["train"]], "en", "es", folder / "tokenizer", vocab_size=60)
    return {**files, "tokenizer": os.fspath(folder / "tokenizer")}


def base_argv(corpus, output_dir, framework="pt"):
    return [
        "train", "--config", "marian-tiny", "--tokenizer", corpus["tokenizer"], "--train-file", corpus["train"],
        "--source-lang", "en", "--target-lang", "es", "--framework", framework, "--output-dir", os.fspath(output_dir),
        "--report-to", "none", "--max-tokens", "256",
    ]  # fmt: skip


def test_from_scratch_in_pytorch_writes_a_model_hf_loads_with_test_scores(corpus, tmp_path, monkeypatch):
    from transformers import MarianMTModel as HFMarianMTModel

    from westron.models.marian.modeling_marian import MarianMTModel

    out = tmp_path / "run"
    argv = base_argv(corpus, out) + ["--validation-file", corpus["validation"], "--test-file", corpus["test"]]
    argv += ["--max-steps", "4", "--eval-steps", "2", "--num-beams", "2", "--logging-steps", "2", "--dropout", "0"]
    code, _, stderr = run_cli(argv, monkeypatch)
    assert code == 0, stderr
    assert json.loads((out / "final" / "config.json").read_text())["dropout"] == 0.0  # the preset says 0.1
    results = json.loads((out / "results.json").read_text())
    assert results["framework"] == "pt" and results["global_step"] == 4
    assert set(results["test"]) >= {"bleu", "chrf", "ter"} and results["test"]["num_sentences"] == 10
    assert len((out / "test_hypotheses.txt").read_text().splitlines()) == 10
    logged = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert any("eval_bleu" in record for record in logged) and any("loss" in record for record in logged)
    card = (out / "final" / "README.md").read_text()
    assert "- en\n- es" in card and "westron train" in card
    ours, theirs = MarianMTModel.from_pretrained(out / "final"), HFMarianMTModel.from_pretrained(out / "final")
    ids = torch.tensor([[5, 6, 7, 0]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, decoder_input_ids=ids).logits, theirs(input_ids=ids, decoder_input_ids=ids).logits)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_seed_fixes_the_initial_weights_of_a_model_from_scratch(corpus, tmp_path, monkeypatch, framework):
    """Two runs with one --seed give the same model whatever the global generators held; another seed does not."""
    import tensorflow as tf
    from safetensors.numpy import load_file

    def train(name: str, seed: int, scramble: int) -> dict:
        torch.manual_seed(scramble)  # what earlier code in the process left in the global generators
        tf.random.set_seed(scramble)
        out = tmp_path / name
        argv = base_argv(corpus, out, framework) + ["--max-steps", "1", "--dropout", "0", "--seed", str(seed)]
        code, _, stderr = run_cli(argv, monkeypatch)
        assert code == 0, stderr
        return load_file(out / "final" / "model.safetensors")

    first, second, other = train("a", 5, scramble=1), train("b", 5, scramble=2), train("c", 6, scramble=1)
    assert first.keys() == second.keys() == other.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert any(not np.array_equal(first[name], other[name]) for name in first)


def test_tensorflow_run_continues_in_pytorch(corpus, tmp_path, monkeypatch):
    """A TF-trained checkpoint fine-tunes in PyTorch (--model on the other framework's output)."""
    out = tmp_path / "tf"
    code, _, stderr = run_cli(base_argv(corpus, out, "tf") + ["--max-steps", "2"], monkeypatch)
    assert code == 0, stderr
    assert json.loads((out / "results.json").read_text())["framework"] == "tf"
    argv = ["train", "--model", os.fspath(out / "final"), "--train-file", corpus["train"], "--source-lang", "en"]
    argv += ["--target-lang", "es", "--framework", "pt", "--output-dir", os.fspath(tmp_path / "pt"), "--report-to", "none"]
    code, _, stderr = run_cli(argv + ["--max-steps", "1", "--max-tokens", "256", "--dropout", "0.25"], monkeypatch)
    assert code == 0, stderr
    assert (tmp_path / "pt" / "final" / "model.safetensors").exists()
    assert json.loads((tmp_path / "pt" / "final" / "config.json").read_text())["dropout"] == 0.25


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda a, c, t: _replace(a, "--train-file", os.fspath(t / "missing.jsonl")), "no such file"),
        (lambda a, c, t: a + ["--model", c["tokenizer"]], "not both"),
        (lambda a, c, t: _drop(a, "--tokenizer"), "needs --tokenizer"),
        (lambda a, c, t: _replace(a, "--target-lang", "de"), "no de (it has: en, es)"),
        (lambda a, c, t: _replace(a, "--config", "marian-huge"), "neither a file nor a preset"),
        (lambda a, c, t: _drop(a, "--max-steps"), "say how long to train"),
        (lambda a, c, t: a + ["--xla"], "--xla applies to TensorFlow"),
        (lambda a, c, t: a + ["--dropout", "1.5"], "--dropout 1.5 must be at least 0 and below 1"),
        (lambda a, c, t: a + ["--resume", os.fspath(t / "nowhere")], "no such checkpoint folder"),
        (lambda a, c, t: _drop(a, "--framework") + ["--xla"], "--xla applies to TensorFlow"),  # the default is pt
        (lambda a, c, t: a + ["--eval-steps", "1"], "--eval-steps evaluates on validation pairs"),
        (lambda a, c, t: a + ["--early-stopping-patience", "2"], "--early-stopping-patience evaluates on validation"),
        (lambda a, c, t: _replace(a, "--report-to", "tensorbord"), "unknown report_to 'tensorbord'"),
        (lambda a, c, t: _replace(a, "--output-dir", _empty_file(t / "a-file")), "a-file is a file, not a folder"),
        (lambda a, c, t: _replace(a, "--output-dir", os.fspath(t / _empty_file(t / "a-file") / "run")), "a-file is a file, not a folder"),
        (lambda a, c, t: _as_dataset(_replace(a, "--train-file", _single_dataset(t / "dataset"))), "holds one dataset, not train/validation/test splits: give it as --train-file"),
        (lambda a, c, t: _as_dataset(_replace(a, "--train-file", os.fspath(t / "no-such-dataset"))), "cannot load the Hugging Face dataset"),
        # Flags that the run would accept and ignore:
        (lambda a, c, t: a + ["--validation-file", _empty_file(t / "validation.jsonl"), "--eval-steps", "1"], "validation.jsonl holds no en-es pairs"),
        (lambda a, c, t: a + ["--test-file", _empty_file(t / "test.jsonl")], "test.jsonl holds no en-es pairs"),
        (lambda a, c, t: a + ["--dataset-config", "en-es"], "--dataset-config applies to a --dataset"),
        (lambda a, c, t: _as_dataset(a) + ["--validation-file", c["validation"]], "--validation-file: --dataset brings its own"),
        (lambda a, c, t: _as_dataset(a) + ["--test-file", c["test"]], "--test-file: --dataset brings its own"),
        (lambda a, c, t: a + ["--hub-model-id", "me/model"], "--hub-model-id names the repo of --push-to-hub"),
        (lambda a, c, t: _fine_tune(a, save_tiny_marian(t / "small-vocab", vocab_size=20, pad_token_id=19, decoder_start_token_id=19)),
         "has 35 tokens but"),
    ],
)
def test_mistakes_are_one_line_and_exit_2_before_any_work(corpus, tmp_path, monkeypatch, change, fragment):
    argv = change(base_argv(corpus, tmp_path / "out") + ["--max-steps", "1"], corpus, tmp_path)
    code, _, stderr = run_cli(argv, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("westron: error: "), stderr
    assert fragment in lines[0]
    assert not (tmp_path / "out").exists()  # nothing was started


TF_CLUSTER = '{"cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 1}}'


@pytest.mark.parametrize(
    "framework, env, extra, fragment",
    [
        ("tf", {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}, [], "torchrun launches PyTorch"),
        ("pt", {}, ["--tf-strategy", "mirrored"], "--tf-strategy applies to TensorFlow"),
        ("tf", {}, ["--tf-strategy", "multi-worker"], "needs TF_CONFIG"),
        ("tf", {"TF_CONFIG": TF_CLUSTER}, ["--tf-strategy", "mirrored"], "use multi-worker or unset TF_CONFIG"),
        ("tf", {}, ["--tf-strategy", "mirrored", "--device", "cpu"], "--device picks one device"),
        ("tf", {"TF_CONFIG": "{not json"}, [], "TF_CONFIG is not a cluster description"),
    ],
)
def test_distributed_mistakes_are_one_line(corpus, tmp_path, monkeypatch, framework, env, extra, fragment):
    """torchrun is PyTorch's, --tf-strategy and TF_CONFIG TensorFlow's: a wrong mix fails before any work."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, stderr = run_cli(base_argv(corpus, tmp_path / "out", framework) + ["--max-steps", "1"] + extra, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("westron: error: "), stderr
    assert fragment in lines[0]
    assert not (tmp_path / "out").exists()


def gpu_present(framework: str) -> bool:
    if framework == "pt":
        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@pytest.mark.parametrize(
    "framework, device, fragment",
    [
        ("tf", "gpu", "device gpu requested but TensorFlow sees no GPU"),
        ("tf", "gpu:0", "device gpu:0 requested but TensorFlow sees no GPU"),
        ("tf", "cuda:1", "device cuda:1 requested but TensorFlow sees no GPU"),
        ("tf", "tpu", "'tpu' is not a device"),
        ("pt", "cuda", "device cuda requested but no CUDA GPU is available"),
        ("pt", "gpu:0", "'gpu:0' is not a device"),
    ],
)
def test_a_device_this_machine_lacks_is_one_line_before_any_work(corpus, tmp_path, monkeypatch, framework, device, fragment):
    if fragment.startswith("device") and gpu_present(framework):
        pytest.skip("this machine has a GPU")
    argv = base_argv(corpus, tmp_path / "out", framework) + ["--max-steps", "1", "--device", device]
    code, _, stderr = run_cli(argv, monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"westron: error: {fragment}"), stderr  # no "reading ..." line before
    assert not (tmp_path / "out").exists()


def test_tensorflow_trains_on_the_device_it_is_given(corpus, tmp_path, monkeypatch):
    """--device for a TF run places the model and the training steps there (tf.device): on this
    machine the CPU; with a GPU, gpu:0 as well."""
    import tensorflow as tf

    from westron.training.tf_trainer import TFTrainer

    placed = []
    train = TFTrainer.train

    def train_and_record(self, *args, **kwargs):
        state = train(self, *args, **kwargs)
        variables = [*self.model.variables, *self.optimizer.variables]  # Keras variables; .value is the tf.Variable
        placed.append({variable.value.device for variable in variables})
        return state

    monkeypatch.setattr(TFTrainer, "train", train_and_record)
    devices = ["cpu"] + (["gpu:0"] if gpu_present("tf") else [])
    for device in devices:
        out = tmp_path / device.replace(":", "")
        code, _, stderr = run_cli(base_argv(corpus, out, "tf") + ["--max-steps", "1", "--device", device], monkeypatch)
        assert code == 0, stderr
        assert (out / "final" / "model.safetensors").exists()
        specs = [tf.DeviceSpec.from_string(name) for name in placed[-1]]
        assert {(spec.device_type, spec.device_index) for spec in specs} == {(device.split(":")[0].upper(), 0)}, placed[-1]


def test_test_hypotheses_keep_one_line_per_test_pair(corpus, tmp_path, monkeypatch):
    """A hypothesis holding a line break (a vocabulary may decode to one) is one line of test_hypotheses.txt."""
    import westron.evaluation

    evaluate_model = westron.evaluation.evaluate_model

    def with_line_breaks(*args, **kwargs):
        scores, hypotheses = evaluate_model(*args, **kwargs)
        return scores, [f"{text}\nmore\u2028end" for text in hypotheses]

    monkeypatch.setattr(westron.evaluation, "evaluate_model", with_line_breaks)
    out = tmp_path / "run"
    argv = base_argv(corpus, out) + ["--test-file", corpus["test"], "--max-steps", "1", "--num-beams", "1"]
    code, _, stderr = run_cli(argv, monkeypatch)
    assert code == 0, stderr
    lines = (out / "test_hypotheses.txt").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 10
    assert all(line.endswith(" more end") for line in lines[:-1])


def test_skipped_records_are_reported(corpus, tmp_path, monkeypatch):
    """--on-error skip trains on fewer pairs than the file holds: one warning line per file says so."""
    train_file = tmp_path / "train.jsonl"
    train_file.write_text(open(corpus["train"]).read() + "{not json\n", encoding="utf-8")
    argv = _replace(base_argv(corpus, tmp_path / "run"), "--train-file", os.fspath(train_file))
    code, _, stderr = run_cli(argv + ["--max-steps", "1", "--on-error", "skip"], monkeypatch)
    assert code == 0, stderr
    warnings = [line for line in stderr.splitlines() if "warning" in line]
    assert warnings == [f"westron: warning: {train_file}: skipped 1 malformed records (invalid_json 1), e.g. train.jsonl:201: not valid JSON (Expecting property name enclosed in double quotes at column 2)"]


def test_resume_from_another_models_checkpoint_is_refused(corpus, tmp_path, monkeypatch):
    out = tmp_path / "first"
    code, _, stderr = run_cli(base_argv(corpus, out) + ["--max-steps", "1"], monkeypatch)
    assert code == 0, stderr
    other = _replace(base_argv(corpus, tmp_path / "second"), "--config", "t5-tiny")
    code, _, stderr = run_cli(other + ["--max-steps", "1", "--resume", os.fspath(out / "checkpoint-1")], monkeypatch)
    assert code == 2 and "westron: error:" in stderr


def test_resume_with_other_batch_settings_is_refused(corpus, tmp_path, monkeypatch):
    """The saved data position counts batches of the run's own plan: resuming with another --max-tokens
    would silently skip or repeat examples."""
    out = tmp_path / "run"
    code, _, stderr = run_cli(base_argv(corpus, out) + ["--max-steps", "1"], monkeypatch)
    assert code == 0, stderr
    resumed = _replace(base_argv(corpus, out), "--max-tokens", "512") + ["--max-steps", "2", "--resume"]
    code, _, stderr = run_cli(resumed, monkeypatch)
    assert code == 2 and "Traceback" not in stderr, stderr
    assert stderr.splitlines()[-1].startswith("westron: error: the saved batcher state has max_tokens=256, this batcher 512")
    assert not (out / "checkpoint-2").exists()


def _replace(argv, flag, value):
    argv = list(argv)
    argv[argv.index(flag) + 1] = value
    return argv


def _fine_tune(argv, model_folder):
    """The from-scratch argv turned into fine-tuning `model_folder` with the corpus's own tokenizer."""
    index = argv.index("--config")
    return argv[:index] + ["--model", model_folder] + argv[index + 2 :]


def _empty_file(path) -> str:
    path.write_text("")
    return os.fspath(path)


def _single_dataset(folder) -> str:
    """A `datasets.Dataset` (not a DatasetDict) saved with save_to_disk: no splits."""
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"en": ["red house"], "es": ["casa roja"]}).save_to_disk(folder)
    return os.fspath(folder)


def _as_dataset(argv):
    """--train-file FILE turned into --dataset FILE (the dataset is never read: the mistake is found first)."""
    return ["--dataset" if arg == "--train-file" else arg for arg in argv]


def _drop(argv, flag):
    argv = list(argv)
    index = argv.index(flag)
    return argv[:index] + argv[index + 2 :]


@pytest.fixture(scope="module")
def tiny_m2m100(tmp_path_factory):
    """A random tiny M2M100 checkpoint with its tokenizer (no target language saved), as the Hub's are."""
    from tests.hf_oracle import save_tiny_m2m100
    from tests.spm_fixtures import write_m2m100_folder
    from westron.models.m2m_100.tokenization_m2m_100 import M2M100Tokenizer

    folder = write_m2m100_folder(tmp_path_factory.mktemp("m2m100"))
    return save_tiny_m2m100(folder, vocab_size=len(M2M100Tokenizer.from_pretrained(folder)), max_position_embeddings=128)


@pytest.fixture(scope="module")
def tiny_nllb(tmp_path_factory):
    """The same for NLLB, whose codes (eng_Latn) are not the corpus's keys (en)."""
    from tests.hf_oracle import save_tiny_m2m100
    from tests.spm_fixtures import write_nllb_folder
    from westron.models.m2m_100.tokenization_nllb import NllbTokenizer

    folder = write_nllb_folder(tmp_path_factory.mktemp("nllb"))
    return save_tiny_m2m100(folder, vocab_size=len(NllbTokenizer.from_pretrained(folder)), max_position_embeddings=128)


def test_nllb_needs_its_target_language_before_any_work(corpus, tmp_path, monkeypatch, tiny_nllb):
    argv = _fine_tune(_drop(base_argv(corpus, tmp_path / "out"), "--tokenizer"), tiny_nllb)
    code, _, stderr = run_cli(argv + ["--max-steps", "1", "--src-lang", "eng_Latn"], monkeypatch)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("westron: error: "), stderr  # no "reading ..." line before
    assert "--target-lang es is no language code of this model: give its code with --forced-bos-lang" in lines[0]
    assert not (tmp_path / "out").exists()


def test_m2m100_takes_the_corpus_keys_that_are_its_language_codes(corpus, tmp_path, monkeypatch, tiny_m2m100):
    """es -> en from the en/es corpus with no language flags: sources framed as Spanish (the tokenizer's
    default is English), targets and forced BOS English, as HF's run_translation.py does."""
    from westron.models.m2m_100.tokenization_m2m_100 import M2M100Tokenizer

    argv = _fine_tune(_drop(base_argv(corpus, tmp_path / "out"), "--tokenizer"), tiny_m2m100)
    argv = _replace(_replace(argv, "--source-lang", "es"), "--target-lang", "en")
    code, _, stderr = run_cli(argv + ["--max-steps", "1"], monkeypatch)
    assert code == 0, stderr
    saved = M2M100Tokenizer.from_pretrained(tmp_path / "out" / "final")
    assert (saved.src_lang, saved.tgt_lang) == ("es", "en")
    generation = json.loads((tmp_path / "out" / "final" / "generation_config.json").read_text())
    assert generation["forced_bos_token_id"] == saved.get_lang_id("en")


def test_nllb_fine_tuned_model_keeps_its_languages(corpus, tmp_path, monkeypatch, tiny_nllb):
    """--src-lang / --forced-bos-lang are saved with the tokenizer; fine-tuning the result again
    needs neither, and its BLEU runs force the same target language."""
    from westron.models.m2m_100.tokenization_nllb import NllbTokenizer

    argv = _fine_tune(_drop(base_argv(corpus, tmp_path / "first"), "--tokenizer"), tiny_nllb)
    code, _, stderr = run_cli(argv + ["--max-steps", "1", "--src-lang", "eng_Latn", "--forced-bos-lang", "spa_Latn"], monkeypatch)
    assert code == 0, stderr
    first = tmp_path / "first" / "final"
    argv = _fine_tune(_drop(base_argv(corpus, tmp_path / "second"), "--tokenizer"), os.fspath(first))
    argv += ["--validation-file", corpus["validation"], "--test-file", corpus["test"], "--eval-steps", "1"]
    code, _, stderr = run_cli(argv + ["--max-steps", "1", "--num-beams", "1"], monkeypatch)
    assert code == 0, stderr
    saved = NllbTokenizer.from_pretrained(tmp_path / "second" / "final")
    assert (saved.src_lang, saved.tgt_lang) == ("eng_Latn", "spa_Latn")
    generation = json.loads((tmp_path / "second" / "final" / "generation_config.json").read_text())
    assert generation["forced_bos_token_id"] == saved.get_lang_id("spa_Latn")
    assert json.loads((tmp_path / "second" / "results.json").read_text())["test"]["num_sentences"] == 10


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    """A random tiny T5 checkpoint with its tokenizer."""
    from tests.hf_oracle import save_tiny_t5
    from tests.spm_fixtures import write_t5_folder
    from westron.models.t5.tokenization_t5 import T5Tokenizer

    folder = write_t5_folder(tmp_path_factory.mktemp("t5"))
    return save_tiny_t5(folder, vocab_size=len(T5Tokenizer.from_pretrained(folder)))


def test_source_prefix_is_saved_for_the_direction_trained(corpus, tmp_path, monkeypatch, tiny_t5):
    """A T5 fine-tuned with --source-prefix translates with it afterwards without being told again
    (task_specific_params, as t5-small's config holds its prefixes; Hugging Face reads it too)."""
    from transformers import AutoConfig as HFAutoConfig

    from westron.pipelines import pipeline

    argv = _fine_tune(_drop(base_argv(corpus, tmp_path / "out"), "--tokenizer"), tiny_t5)
    code, _, stderr = run_cli(argv + ["--max-steps", "1", "--source-prefix", "translate English to Spanish: "], monkeypatch)
    assert code == 0, stderr
    final = tmp_path / "out" / "final"
    expected = {"translation_en_to_es": {"prefix": "translate English to Spanish: "}}
    assert HFAutoConfig.from_pretrained(final).task_specific_params == expected
    assert pipeline("translation_en_to_es", model=os.fspath(final), framework="pt").source_prefix == "translate English to Spanish: "


def test_bleu_runs_translate_as_the_model_was_trained_not_with_a_prefix_from_its_config(corpus, tmp_path, monkeypatch, tiny_t5):
    """Without --source-prefix the training pairs have none, and neither have the validation and test
    translations: not the first task_specific_params entry (t5-small's: English to German, with its
    generation settings), which a plain translation pipeline would take."""
    import shutil

    from westron.evaluation import translate_sources
    from westron.pipelines import TranslationPipeline

    folder = shutil.copytree(tiny_t5, tmp_path / "t5")
    config = json.loads((folder / "config.json").read_text())
    config["task_specific_params"] = {"translation_en_to_de": {"prefix": "translate English to German: ", "max_length": 2}}
    (folder / "config.json").write_text(json.dumps(config))
    argv = _fine_tune(_drop(base_argv(corpus, tmp_path / "out"), "--tokenizer"), os.fspath(folder))
    argv += ["--validation-file", corpus["validation"], "--eval-steps", "1", "--test-file", corpus["test"], "--num-beams", "1"]
    code, _, stderr = run_cli(argv + ["--max-steps", "1"], monkeypatch)
    assert code == 0, stderr
    assert "translation_en_to_de" not in stderr  # no "defaulting to" warning
    sources = [json.loads(line)["translation"]["en"] for line in open(corpus["test"], encoding="utf-8")]
    translator = TranslationPipeline(os.fspath(tmp_path / "out" / "final"), framework="pt", source_prefix="")
    expected = translate_sources(translator, sources, num_beams=1, max_new_tokens=128)  # --max-target-length's default
    assert (tmp_path / "out" / "test_hypotheses.txt").read_text().splitlines() == expected


def test_test_translations_may_be_as_long_as_the_training_targets(corpus, tmp_path, monkeypatch, tiny_t5):
    """The BLEU runs generate up to --max-target-length new tokens, as HF's run_translation.py does, and
    so does the saved model: not the generation config's default, which cuts every translation at 20 tokens."""
    from westron.evaluation import translate_sources
    from westron.pipelines import TranslationPipeline

    argv = _fine_tune(_drop(base_argv(corpus, tmp_path / "out"), "--tokenizer"), tiny_t5)
    argv += ["--test-file", corpus["test"], "--num-beams", "1", "--max-target-length", "26", "--max-steps", "1"]
    code, _, stderr = run_cli(argv, monkeypatch)
    assert code == 0, stderr
    sources = [json.loads(line)["translation"]["en"] for line in open(corpus["test"], encoding="utf-8")]
    translator = TranslationPipeline(os.fspath(tmp_path / "out" / "final"), framework="pt", source_prefix="")
    expected = translate_sources(translator, sources, num_beams=1, max_new_tokens=26)
    assert expected != translate_sources(translator, sources, num_beams=1, max_new_tokens=20)  # the untrained model runs past 20 tokens
    assert (tmp_path / "out" / "test_hypotheses.txt").read_text().splitlines() == expected
    # The saved model translates as long, unless its generation config says how long (opus-mt: 512).
    assert json.loads((tmp_path / "out" / "final" / "generation_config.json").read_text())["max_length"] == 27
    assert translate_sources(translator, sources, num_beams=1) == expected
