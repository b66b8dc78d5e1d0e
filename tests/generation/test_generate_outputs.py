"""generate(..., return_dict_in_generate=True, output_*=True) and compute_transition_scores against HF's.

Tiny random Marian and T5 checkpoints, loaded by HF (eager attention: its sdpa returns no weights)
and by Westron in both frameworks. Every field HF returns (sequences, scores, logits,
sequences_scores, beam_indices, the encoder's and the per-step decoder's attentions and hidden
states) must have HF's nesting and shapes and equal values (ids exactly, floats within float32
tolerance); compute_transition_scores must give HF's. The checkpoints end sentences at different
steps and make beams swap parents, so padding, -1 beam indices and beam bookkeeping are exercised.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers
from transformers import MarianMTModel as HFMarianMTModel
from transformers import T5ForConditionalGeneration as HFT5ForConditionalGeneration

from tests.hf_oracle import MARIAN_VARIANTS, T5_VARIANTS, random_batch, save_tiny_marian, save_tiny_t5
from tests.test_modeling_common import LOGITS_TOL, assert_float32_close
from westron.errors import WestronError
from westron.generation.outputs import GenerateBeamEncoderDecoderOutput, GenerateEncoderDecoderOutput
from westron.models.marian.modeling_marian import MarianMTModel
from westron.models.marian.modeling_tf_marian import TFMarianMTModel
from westron.models.t5.modeling_t5 import T5ForConditionalGeneration
from westron.models.t5.modeling_tf_t5 import TFT5ForConditionalGeneration

transformers.logging.set_verbosity_error()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ALL_OUTPUTS = dict(
    return_dict_in_generate=True,
    output_scores=True,
    output_logits=True,
    output_attentions=True,
    output_hidden_states=True,
)
GREEDY = dict(max_new_tokens=10)
BEAM = dict(max_new_tokens=10, num_beams=4, num_return_sequences=2)
MODES = {"greedy": GREEDY, "beam": BEAM}
# HF's fields that Westron does not return (its cache is Westron's own layout).
NOT_RETURNED = {"cache", "past_key_values"}


def save_marian(folder) -> str:
    """A lively tiny Marian: larger weights and a random final_logits_bias with a boost on eos (0)."""
    save_tiny_marian(folder, seed=2, init_std=0.15, **MARIAN_VARIANTS["shared-untied-gelu"])
    model = HFMarianMTModel.from_pretrained(folder)
    with torch.no_grad():
        model.final_logits_bias.copy_(torch.randn(model.final_logits_bias.shape, generator=torch.Generator().manual_seed(0)) * 0.2)
        model.final_logits_bias[0, 0] += 2.5
    model.save_pretrained(folder)
    return str(folder)


def save_t5(folder) -> str:
    variant = dict(T5_VARIANTS["t5-v1.1-gated-gelu-untied"])
    return save_tiny_t5(folder, seed=1, **variant)


class Family:
    """One checkpoint in HF, Westron PyTorch and Westron TensorFlow, and a padded batch for it."""

    def __init__(self, folder, hf_class, pt_class, tf_class, pad, eos, settings=None):
        self.hf = hf_class.from_pretrained(folder, attn_implementation="eager").eval()
        self.pt = pt_class.from_pretrained(folder)
        self.tf = tf_class.from_pretrained(folder)
        # Source ids below Marian's pad (98) or above T5's special tokens, so padding is only at the end.
        self.ids, self.mask = random_batch(pad if pad > eos else 99, pad, eos, batch=3, length=7, seed=1)
        self.settings = settings or {}  # added to every generate call of both libraries
        self.results = {}  # (framework, mode) -> generate(**MODES[mode], **ALL_OUTPUTS), run once

    def all_outputs(self, framework: str, mode: str):
        key = (framework, mode)
        if key not in self.results:
            run = self.hf_generate if framework == "hf" else lambda **kw: self.generate(framework, **kw)
            self.results[key] = run(**MODES[mode], **ALL_OUTPUTS)
        return self.results[key]

    def hf_generate(self, **kwargs):
        kwargs = {**self.settings, **kwargs}
        with torch.no_grad():
            return self.hf.generate(self.ids, attention_mask=self.mask, **kwargs)

    def generate(self, framework: str, **kwargs):
        kwargs = {**self.settings, **kwargs}
        if framework == "pt":
            return self.pt.generate(self.ids, attention_mask=self.mask, **kwargs)
        eager = framework == "tf-eager"
        return self.tf.generate(self.ids.numpy(), attention_mask=self.mask.numpy(), eager=eager, **kwargs)


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    made = {}

    def get(name: str) -> Family:
        if name not in made:
            folder = tmp_path_factory.mktemp(name)
            if name == "marian":
                # eos 69: a token this model reaches in some rows only (its own eos 0 in none within 10 steps)
                made[name] = Family(
                    save_marian(folder), HFMarianMTModel, MarianMTModel, TFMarianMTModel, 98, 0, dict(eos_token_id=69)
                )
            else:
                made[name] = Family(save_t5(folder), HFT5ForConditionalGeneration, T5ForConditionalGeneration, TFT5ForConditionalGeneration, 0, 1)
        return made[name]

    return get


def assert_same_outputs(ours, expected, framework: str) -> None:
    """Same class name, fields, nesting, shapes; ids equal, floats close."""
    assert type(ours).__name__ == type(expected).__name__
    assert set(ours.keys()) == set(expected.keys()) - NOT_RETURNED
    for name in ours.keys():
        assert_same_value(getattr(ours, name), getattr(expected, name), f"{framework} {name}")


def assert_same_value(ours, expected, where: str) -> None:
    if isinstance(expected, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(expected), f"{where}: {len(ours)} entries, HF {len(expected)}"
        for index, (a, b) in enumerate(zip(ours, expected)):
            assert_same_value(a, b, f"{where}[{index}]")
        return
    ours_np = ours.numpy() if hasattr(ours, "numpy") else np.asarray(ours)
    expected_np = expected.numpy()
    assert ours_np.shape == expected_np.shape, f"{where}: shape {ours_np.shape}, HF {expected_np.shape}"
    if expected.dtype.is_floating_point:  # -inf where a processor banned a token: the same places
        finite = np.isfinite(expected_np)
        np.testing.assert_array_equal(ours_np[~finite], expected_np[~finite], err_msg=where)
        assert_float32_close(ours_np[finite], expected_np[finite], LOGITS_TOL, where)
    else:
        np.testing.assert_array_equal(ours_np, expected_np, err_msg=where)


# ---- the fixture is interesting enough --------------------------------------------------------------


@pytest.mark.parametrize("name", ["marian", "t5"])
def test_checkpoints_end_rows_at_different_steps(families, name):
    family = families(name)
    greedy = family.all_outputs("hf", "greedy")
    pad = family.hf.config.pad_token_id
    assert (greedy.sequences[:, -1] == pad).any() and (greedy.sequences[:, -1] != pad).any()
    beam = family.all_outputs("hf", "beam")
    assert (beam.beam_indices == -1).any()  # some hypotheses end early
    parents = beam.beam_indices % 4
    assert (parents[:, 1:] != parents[:, :-1]).any()  # a hypothesis changes beams along the way
    assert len(beam.scores) >= beam.sequences.shape[1] - 1


# ---- every field equal to HF's ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("framework", ["pt", "tf-eager", "tf-compiled"])
def test_marian_outputs_equal_hf(families, framework, mode):
    family = families("marian")
    expected, ours = family.all_outputs("hf", mode), family.all_outputs(framework, mode)
    assert isinstance(ours, GenerateBeamEncoderDecoderOutput if mode == "beam" else GenerateEncoderDecoderOutput)
    assert_same_outputs(ours, expected, framework)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("framework", ["pt", "tf-eager"])
def test_t5_outputs_equal_hf(families, framework, mode):
    family = families("t5")
    assert_same_outputs(family.all_outputs(framework, mode), family.all_outputs("hf", mode), framework)


@pytest.mark.parametrize("framework", ["pt", "tf-eager"])
def test_processed_scores_and_early_stopping_equal_hf(families, framework):
    """Processors change scores but not logits; early_stopping runs more steps than the output is long."""
    family = families("marian")
    settings = dict(BEAM, min_new_tokens=3, no_repeat_ngram_size=2, length_penalty=0.6, early_stopping=True)
    settings.update(return_dict_in_generate=True, output_scores=True, output_logits=True)
    expected = family.hf_generate(**settings)
    assert not torch.equal(expected.scores[0], expected.logits[0].log_softmax(-1))
    assert_same_outputs(family.generate(framework, **settings), expected, framework)


def test_sampling_outputs_equal_hf_in_pytorch(families):
    family = families("marian")
    settings = dict(GREEDY, do_sample=True, top_k=5, num_return_sequences=2, **ALL_OUTPUTS)
    torch.manual_seed(3)
    expected = family.hf_generate(**settings)
    torch.manual_seed(3)
    assert_same_outputs(family.generate("pt", **settings), expected, "pt")


def test_sampling_outputs_in_tensorflow_hold_the_chosen_tokens(families):
    """TF samples from its own random stream: the scores are the top-k processed ones, per row."""
    family = families("marian")
    out = family.generate("tf-eager", **GREEDY, do_sample=True, top_k=5, num_return_sequences=2, seed=7, **ALL_OUTPUTS)
    assert out.sequences.shape[0] == 6 and len(out.scores) == out.sequences.shape[1] - 1
    scores = np.stack([s.numpy() for s in out.scores], axis=1)  # (rows, steps, vocab)
    assert (np.isfinite(scores).sum(-1) == 5).all()  # top_k=5 left five tokens per step
    chosen = np.take_along_axis(scores, out.sequences.numpy()[:, 1:, None], axis=-1)
    alive = np.ones(chosen.shape[:2], bool)  # before and at each row's eos
    alive[:, 1:] = np.cumsum(out.sequences.numpy()[:, 1:-1] == family.settings["eos_token_id"], axis=1) == 0
    assert np.isfinite(chosen[..., 0][alive]).all()


def test_only_what_was_asked_for(families):
    """return_dict_in_generate alone: the ids (and beam_indices, as HF); no per-step outputs collected."""
    family = families("marian")
    for framework in ("pt", "tf-eager"):
        greedy = family.generate(framework, **GREEDY, return_dict_in_generate=True)
        assert greedy.keys() == ["sequences"] and greedy["sequences"] is greedy.sequences
        beam = family.generate(framework, **BEAM, return_dict_in_generate=True, output_scores=True)
        assert beam.keys() == ["sequences", "sequences_scores", "scores", "beam_indices"]
        assert beam.logits is None and beam.decoder_attentions is None
        assert "beam_indices" in beam and "logits" not in beam
    plain = family.generate("pt", **GREEDY)
    assert isinstance(plain, torch.Tensor)


@pytest.mark.parametrize("framework", ["pt", "tf-eager"])
def test_output_flags_without_return_dict_are_an_error(families, framework):
    family = families("marian")
    with pytest.raises(WestronError, match="output_scores=True needs return_dict_in_generate=True"):
        family.generate(framework, **GREEDY, output_scores=True)
    with pytest.raises(WestronError, match="output_attentions must be True or False"):
        family.generate(framework, **GREEDY, return_dict_in_generate=True, output_attentions="yes")


# ---- compute_transition_scores -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("framework", ["pt", "tf-compiled"])
@pytest.mark.parametrize("name", ["marian", "t5"])
def test_compute_transition_scores_equals_hf(families, name, framework, mode):
    family = families(name)
    if framework == "tf-compiled" and name == "t5":
        framework = "tf-eager"  # one more XLA compile per setting is not worth the seconds
    expected_out, ours_out = family.all_outputs("hf", mode), family.all_outputs(framework, mode)
    model = family.pt if framework == "pt" else family.tf
    for normalize in (False, True):
        expected = family.hf.compute_transition_scores(
            expected_out.sequences, expected_out.scores, getattr(expected_out, "beam_indices", None), normalize
        )
        ours = model.compute_transition_scores(
            ours_out.sequences, ours_out.scores, getattr(ours_out, "beam_indices", None), normalize_logits=normalize
        )
        assert_same_value(ours, expected, f"{framework} {mode} normalize_logits={normalize}")
    if mode == "beam":  # HF's documented identity: the sum over a hypothesis, length-penalised
        ours = np.asarray(model.compute_transition_scores(ours_out.sequences, ours_out.scores, ours_out.beam_indices))
        lengths = (np.asarray(ours_out.beam_indices) >= 0).sum(axis=1)
        assert_float32_close(ours.sum(axis=1) / lengths, np.asarray(ours_out.sequences_scores), LOGITS_TOL)


def test_compute_transition_scores_needs_scores_and_beam_indices(families):
    family = families("marian")
    out = family.generate("pt", **BEAM, return_dict_in_generate=True, output_scores=True)
    with pytest.raises(WestronError, match="pass the beam_indices"):
        family.pt.compute_transition_scores(out.sequences, out.scores)
    with pytest.raises(WestronError, match="output_scores=True"):
        family.tf.compute_transition_scores(out.sequences.numpy(), None)
    assert isinstance(family.tf.compute_transition_scores(out.sequences.numpy(), tuple(tf.constant(s.numpy()) for s in out.scores), out.beam_indices.numpy()), tf.Tensor)
