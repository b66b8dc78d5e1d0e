"""int8 inference (westron/torch_quantization.py, westron/tf_quantization.py): close to float32, refused where it cannot work.

The bound on the logits follows from 8-bit rounding. Symmetric int8 rounds a value to a step of
max|row| / 127; the rounding error is uniform within half a step, so its RMS is step / sqrt(12),
about 0.23% of the row's largest value, which for these bell-shaped rows (largest value about 3-4
standard deviations) is about 0.8% of the row's RMS. A product of two rounded operands then errs
by about sqrt(2) * 0.8% = 1.1% (PyTorch's fbgemm rounds activations to 7 bits, twice the step:
about 2%). A logit of the tiny models here passes through about a dozen such products in series
(attention projections, feed-forward, the head: 2 encoder and 2 decoder layers); independent
errors add in quadrature (sqrt(12) * 2% = 7%) and the layer norms and residual stream damp them.
So the logits' RMS error, relative to their RMS, must stay below INT8_LOGITS_RTOL = 10%; the tiny
model measures about 1.5-2%. It must also be above zero: the int8 path really ran.

Greedy agreement is derived from the same error: where float32's best logit beats the second by
more than twice the largest logit error, int8 picks the same token; so the two greedy outputs must
agree at least up to the first step where that margin is smaller (DECIDED_MARGIN: 2 for the two
logits moving apart, times 2 because a step's activation scale is computed over other rows than
the full pass that measured the error).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import westron
from tests import hf_oracle
from tests.cli_utils import assert_one_line_error, run_cli
from westron.errors import WestronError

INT8_LOGITS_RTOL = 0.10
DECIDED_MARGIN = 4.0  # times the largest logit error measured in a full pass


@pytest.fixture(scope="module")
def marian_folder(tmp_path_factory):
    """A random tiny Marian whose greedy outputs vary (init_std 0.1: float32 margins well above int8's error)."""
    from westron.models.marian.configuration_marian import MarianConfig

    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=64,
        pad_token_id=98, eos_token_id=0, decoder_start_token_id=98, forced_eos_token_id=None, init_std=0.1,
    )
    folder = tmp_path_factory.mktemp("marian") / "model"
    westron.MarianMTModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from westron.demo import build_demo_checkpoint

    return build_demo_checkpoint(str(tmp_path_factory.mktemp("demo") / "model"))


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    return hf_oracle.save_tiny_t5(tmp_path_factory.mktemp("t5") / "model", seed=4)


def batch():
    return hf_oracle.random_batch(99, pad_token_id=98, eos_token_id=0, batch=4, length=9, seed=1)


def load(framework, folder, **kwargs):
    auto = westron.AutoModelForSeq2SeqLM if framework == "pt" else westron.TFAutoModelForSeq2SeqLM
    return auto.from_pretrained(folder, **kwargs)


@pytest.fixture(scope="module")
def loaded(marian_folder, t5_folder):
    """(framework, family, "fp32" | "int8") -> a model, each loaded once for the module."""
    cache = {}

    def get(framework, family, variant):
        key = (framework, family, variant)
        if key not in cache:
            folder = marian_folder if family == "marian" else t5_folder
            cache[key] = load(framework, folder, **({"quantization": "int8"} if variant == "int8" else {}))
        return cache[key]

    return get


def logits(model, framework, ids, mask, decoder_ids) -> np.ndarray:
    if framework == "pt":
        with torch.no_grad():
            return model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits.numpy()
    import tensorflow as tf

    tensors = [tf.constant(t.numpy()) for t in (ids, mask, decoder_ids)]
    return model(input_ids=tensors[0], attention_mask=tensors[1], decoder_input_ids=tensors[2]).logits.numpy()


def greedy(model, framework, ids, mask, max_new_tokens=12) -> np.ndarray:
    if framework == "pt":
        with torch.no_grad():
            return model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens).numpy()
    import tensorflow as tf

    # Eager: the same search without an XLA compile per model (the CLI test runs int8 under XLA).
    ids, mask = tf.constant(ids.numpy()), tf.constant(mask.numpy())
    return model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens, eager=True).numpy()


def relative_rms_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.sqrt(np.mean((actual - expected) ** 2)) / np.sqrt(np.mean(expected**2)))


@pytest.mark.parametrize("framework", ["pt", "tf"])
@pytest.mark.parametrize("family", ["marian", "t5"])
def test_int8_logits_stay_within_the_rounding_bound(framework, family, loaded):
    """Every Linear / Dense, the tied head included, is int8; the logits move by int8's rounding error only."""
    ids, mask = batch()
    fp32, int8 = loaded(framework, family, "fp32"), loaded(framework, family, "int8")
    assert fp32.quantization is None and int8.quantization == "int8"
    if framework == "pt":
        assert type(int8.lm_head).__module__.startswith("torch.ao.nn.quantized.dynamic")
        assert not any(type(m) is torch.nn.Linear for m in int8.modules())
    else:
        import keras

        dense = [layer for layer in int8._flatten_layers() if type(layer) is keras.layers.Dense]
        assert dense and all(layer.quantization_mode == "int8" for layer in dense)
        assert int8.lm_head.kernel.dtype == "int8"  # the tied head got its own int8 layer
    want = logits(fp32, framework, ids, mask, ids)
    got = logits(int8, framework, ids, mask, ids)
    error = relative_rms_error(got, want)
    assert 0 < error < INT8_LOGITS_RTOL, error


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_int8_greedy_agrees_with_float32_where_float32_is_decided(framework, loaded):
    ids, mask = batch()
    fp32, int8 = loaded(framework, "marian", "fp32"), loaded(framework, "marian", "int8")
    want = greedy(fp32, framework, ids, mask)
    got = greedy(int8, framework, ids, mask)
    # Both models teacher-forced on float32's output: the margins, and the largest logit error.
    decoder_ids = torch.from_numpy(want[:, :-1])
    reference = logits(fp32, framework, ids, mask, decoder_ids)  # (B, t, V)
    error = np.abs(logits(int8, framework, ids, mask, decoder_ids) - reference).max()
    top2 = np.sort(reference, axis=-1)[..., -2:]
    decided = (top2[..., 1] - top2[..., 0]) > DECIDED_MARGIN * error  # (B, t)
    assert decided.mean() > 0.5, "the test needs a model whose choices are mostly clear"
    for row in range(want.shape[0]):
        undecided = np.flatnonzero(~decided[row])
        first_undecided = undecided[0] if undecided.size else decided.shape[1]
        n = first_undecided + 1  # the start token, then the decided steps
        assert got.shape[1] >= n and (got[row, :n] == want[row, :n]).all(), (row, want[row], got[row], decided[row])


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_quantized_model_cannot_be_saved(framework, loaded, tmp_path):
    model = loaded(framework, "marian", "int8")
    with pytest.raises(WestronError, match="quantized.*cannot be saved"):
        model.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()
    if framework == "pt":  # HF's state_dict= route: its own packed int8 entries are one line too, not an AttributeError
        with pytest.raises(WestronError, match="is not a plain tensor .* quantized model's state_dict cannot be saved"):
            model.save_pretrained(tmp_path / "saved", state_dict=model.state_dict())
        assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_bad_quantization_values_are_one_clear_error(framework, marian_folder):
    for value in ("foo", "int4", 8):
        with pytest.raises(WestronError, match=r"quantization=.* is not supported \(use 'int8'"):
            load(framework, marian_folder, quantization=value)
    with pytest.raises(WestronError, match="float32 model, not a bfloat16"):
        load(framework, marian_folder, quantization="int8", dtype="bfloat16")
    with pytest.raises(WestronError, match="quantization='int8'"):  # HF's bitsandbytes keyword points to ours
        load(framework, marian_folder, load_in_8bit=True)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_translate_quantize_int8(framework, demo_folder, tmp_path, monkeypatch):
    folder = demo_folder
    source = tmp_path / "input.txt"
    source.write_text("Speak, friend, and enter.\n\nOne checkpoint.\n", encoding="utf-8")
    argv = ["translate", "--model", folder, "--framework", framework, "-i", str(source), "--max-new-tokens", "5"]
    code, stdout, stderr = run_cli(argv + ["--quantize", "int8"], monkeypatch=monkeypatch)
    assert code == 0, stderr
    assert stdout.count("\n") == 3 and stdout.split("\n")[1] == ""


def test_evaluate_quantize_int8_quantizes(demo_folder, tmp_path, monkeypatch):
    import json

    from westron import torch_quantization

    quantized = []
    real = torch_quantization.quantize_model
    monkeypatch.setattr(torch_quantization, "quantize_model", lambda model, method: quantized.append(method) or real(model, method))
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(json.dumps({"translation": {"en": "Speak, friend.", "es": "Habla, amigo."}}) + "\n", encoding="utf-8")
    argv = ["evaluate", "--model", demo_folder, "--framework", "pt", "--test-file", str(test_file), "--source-lang", "en",
            "--target-lang", "es", "--max-new-tokens", "4", "--quantize", "int8", "--output-json", str(tmp_path / "scores.json")]
    code, _, stderr = run_cli(argv, monkeypatch=monkeypatch)
    assert code == 0, stderr
    assert quantized == ["int8"]
    assert json.loads((tmp_path / "scores.json").read_text())["settings"]["quantization"] == "int8"


def test_quantize_bad_method_is_one_line(tmp_path, monkeypatch):
    for command in ("translate", "evaluate"):
        argv = [command, "--model", str(tmp_path / "never-read"), "--quantize", "int4"]
        if command == "evaluate":
            argv += ["--test-file", str(tmp_path / "never-read.jsonl"), "--source-lang", "en", "--target-lang", "es"]
        code, _, stderr = run_cli(argv, monkeypatch=monkeypatch)
        assert_one_line_error(code, stderr, "--quantize int4", "int8")
