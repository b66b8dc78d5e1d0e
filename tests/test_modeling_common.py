"""Common tests for the PyTorch seq2seq models, with Hugging Face transformers as the oracle.

A model family's test module subclasses `Seq2SeqModelTesterMixin` and names four things:

    class TestMarianModeling(Seq2SeqModelTesterMixin):
        model_class = MarianMTModel                  # the Westron PyTorch seq2seq LM
        hf_model_class = transformers.MarianMTModel  # its Hugging Face counterpart
        variants = MARIAN_VARIANTS                   # {name: config overrides}
        save_hf_checkpoint = staticmethod(save_tiny_marian)  # (folder, **overrides) -> folder

Every test then runs once per variant (the class-scoped parameter `variant`). HF checkpoint folders
are saved once per session (`hf_checkpoint_folder`), HF and Westron models once per class and
variant, so the suite stays fast. The helpers below take no PyTorch model of ours: the TensorFlow
counterpart (tests/test_modeling_tf_common.py) can import `hf_checkpoint_folder`, `batch_for`,
`assert_outputs_close`, `OUTPUT_FIELDS` and the tolerances, and compare against the same folders.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, Callable, ClassVar

import numpy as np
import pytest
import torch

from tests.hf_oracle import random_batch
from westron.errors import CheckpointError

# Float32 tolerances, written once. Two float32 computations of the same function that add in a
# different order (fused vs unfused attention, another kernel, another CPU or thread count) differ by
# a few units in the last place of the magnitudes summed along the way. A fixed absolute bound is
# wrong both ways: too tight on logits of magnitude 10, too loose on probabilities. So the bound
# grows with the largest |value| compared, floored at 1 because every output is computed from
# layer-normalised hidden states of order 1:
#     |actual - expected| <= tol * max(1, max|expected|) + tol * |expected|
LOGITS_TOL = 1e-4  # Westron vs HF, every output field: other kernels through every layer
CACHE_TOL = 1e-5  # one model two ways: cached step-by-step vs the full pass, XLA vs eager, fused vs HF's attention


def float32_atol(expected, tol: float) -> float:
    """The absolute part of the bound above: tol times the larger of 1 and the largest |expected|."""
    return tol * max(1.0, float(np.max(np.abs(to_numpy(expected)), initial=0.0)))


def assert_float32_close(actual, expected, tol: float, msg: str = "") -> None:
    """Asserts two float32 results (torch, TF, numpy or scalars) agree within the bound above."""
    actual, expected = to_numpy(actual), to_numpy(expected)
    assert actual.shape == expected.shape, f"{msg}: shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=float32_atol(expected, tol), err_msg=msg)

# The optional fields of a Seq2SeqLMOutput, the same names in HF's output and ours.
OUTPUT_FIELDS = (
    "encoder_last_hidden_state",
    "encoder_hidden_states",
    "encoder_attentions",
    "decoder_hidden_states",
    "decoder_attentions",
    "cross_attentions",
)

# ---- helpers shared with the TensorFlow counterpart --------------------------------------------------

_FOLDERS: dict[tuple[str, str], str] = {}


def hf_checkpoint_folder(save: Callable[..., str], variant: str, overrides: dict, tmp_path_factory) -> str:
    """The folder of a saved tiny HF model, saved once per session for each (save function, variant)."""
    key = (f"{save.__module__}.{save.__qualname__}", variant)
    if key not in _FOLDERS:
        _FOLDERS[key] = save(tmp_path_factory.mktemp(re.sub(r"\W", "_", variant)), **overrides)
    return _FOLDERS[key]


def decoder_vocab_size(config) -> int:
    return getattr(config, "decoder_vocab_size", None) or config.vocab_size


def batch_for(config, seed: int = 0) -> dict[str, torch.Tensor]:
    """A padded batch (3 rows of different lengths) for the encoder and the decoder, and labels.

    Labels are the target ids with -100 over padding, as a tokenizer makes them.
    """
    input_ids, attention_mask = random_batch(config.vocab_size, config.pad_token_id, config.eos_token_id, seed=seed)
    decoder_input_ids, decoder_attention_mask = random_batch(
        decoder_vocab_size(config), config.pad_token_id, config.eos_token_id, length=5, seed=seed + 1
    )
    labels = decoder_input_ids.masked_fill(decoder_attention_mask == 0, -100)
    return dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        decoder_input_ids=decoder_input_ids,
        decoder_attention_mask=decoder_attention_mask,
        labels=labels,
    )


def to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().float().numpy()
    return np.asarray(value)  # a tf.Tensor or an array


def assert_outputs_close(expected, actual, fields=("logits",) + OUTPUT_FIELDS, tol=LOGITS_TOL) -> None:
    """Compares output fields (tensors or tuples of tensors) of two outputs, naming the first that differs."""
    for field in fields:
        want, got = getattr(expected, field), getattr(actual, field)
        assert (want is None) == (got is None), f"{field}: expected {type(want).__name__}, got {type(got).__name__}"
        if want is None:
            continue
        if isinstance(want, (tuple, list)):
            assert len(got) == len(want), f"{field}: {len(got)} entries, expected {len(want)}"
            pairs = [(f"{field}[{i}]", w, g) for i, (w, g) in enumerate(zip(want, got))]
        else:
            pairs = [(field, want, got)]
        for name, w, g in pairs:
            w, g = to_numpy(w), to_numpy(g)
            assert g.shape == w.shape, f"{name}: shape {g.shape}, expected {w.shape}"
            assert_float32_close(g, w, tol, msg=name)


def copy_config_files(source: str | os.PathLike, target: str | os.PathLike) -> None:
    os.makedirs(target, exist_ok=True)
    for name in ("config.json", "generation_config.json"):
        if os.path.exists(os.path.join(source, name)):
            shutil.copy(os.path.join(source, name), os.path.join(target, name))


def read_safetensors_folder(folder: str | os.PathLike) -> dict[str, torch.Tensor]:
    from westron.checkpoint import load_state_dict

    return load_state_dict(folder, framework="pt")


def identity_groups(named_tensors) -> list[list[str]]:
    """Names grouped by the storage they share, only groups of two or more (i.e. the tied ones)."""
    groups: dict[Any, list[str]] = {}
    for name, tensor in named_tensors:
        groups.setdefault((tensor.data_ptr(), tuple(tensor.shape)), []).append(name)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


# ---- the mixin ----------------------------------------------------------------------------------------


class Seq2SeqModelTesterMixin:
    model_class: ClassVar[type]
    hf_model_class: ClassVar[type]
    variants: ClassVar[dict[str, dict]]
    save_hf_checkpoint: ClassVar[Callable[..., str]]
    # Config names that differ between families (Marian's here; T5: ("dropout_rate",), "num_decoder_layers").
    dropout_config_keys: ClassVar[tuple[str, ...]] = ("dropout", "attention_dropout", "activation_dropout")
    decoder_layers_config_key: ClassVar[str] = "decoder_layers"

    def pytest_generate_tests(self, metafunc):
        if "variant" in metafunc.fixturenames:
            metafunc.parametrize("variant", list(self.variants), scope="class")

    # ---- fixtures (cached per class and variant; tests must not modify these models) ----------------------

    @pytest.fixture(scope="class")
    @classmethod
    def hf_folder(cls, variant, tmp_path_factory) -> str:
        return hf_checkpoint_folder(cls.save_hf_checkpoint, variant, cls.variants[variant], tmp_path_factory)

    @pytest.fixture(scope="class")
    @classmethod
    def hf_model(cls, hf_folder):
        # eager: HF's sdpa returns no attention weights.
        return cls.hf_model_class.from_pretrained(hf_folder, attn_implementation="eager").eval()

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, hf_folder):
        return cls.model_class.from_pretrained(hf_folder)

    @pytest.fixture(scope="class")
    @classmethod
    def batch(cls, model) -> dict[str, torch.Tensor]:
        return batch_for(model.config)

    @staticmethod
    def model_inputs(batch, *names):
        names = names or ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
        return {name: batch[name] for name in names}

    # ---- HF -> Westron ------------------------------------------------------------------------------------

    def test_hf_checkpoint_gives_hf_outputs(self, hf_model, model, batch):
        """Logits and every optional output field equal HF's on a padded batch."""
        with torch.no_grad():
            expected = hf_model(**self.model_inputs(batch), output_attentions=True, output_hidden_states=True)
            actual = model(**self.model_inputs(batch), output_attentions=True, output_hidden_states=True)
        assert actual.encoder_attentions is not None and len(actual.encoder_attentions) > 0
        assert_outputs_close(expected, actual)

    def test_fused_attention_matches_hf(self, hf_folder, model, batch):
        """Without attention weights asked for, the fast path stays within CACHE_TOL of HF's default."""
        hf_default = self.hf_model_class.from_pretrained(hf_folder).eval()
        with torch.no_grad():
            expected = hf_default(**self.model_inputs(batch))
            actual = model(**self.model_inputs(batch))
        assert_outputs_close(expected, actual, fields=("logits", "encoder_last_hidden_state"), tol=CACHE_TOL)

    def test_optional_outputs_follow_arguments_and_config(self, model, batch):
        with torch.no_grad():
            plain = model(**self.model_inputs(batch))
        for field in OUTPUT_FIELDS[1:]:
            assert getattr(plain, field) is None, field
        config = model.config
        config.output_attentions, config.output_hidden_states = True, True
        try:
            with torch.no_grad():
                from_config = model(**self.model_inputs(batch))
                overridden = model(**self.model_inputs(batch), output_attentions=False)
        finally:
            config.output_attentions, config.output_hidden_states = False, False
        for field in OUTPUT_FIELDS[1:]:
            assert getattr(from_config, field) is not None, field
        assert overridden.encoder_attentions is None and overridden.cross_attentions is None
        assert overridden.decoder_hidden_states is not None

    def test_loss_matches_hf(self, hf_model, model, batch):
        """labels -> decoder inputs shifted right and the mean cross-entropy over labels != -100."""
        inputs = self.model_inputs(batch, "input_ids", "attention_mask", "labels")
        assert (batch["labels"] == -100).any()
        with torch.no_grad():
            expected = hf_model(**inputs)
            actual = model(**inputs)
        assert_float32_close(to_numpy(actual.logits), to_numpy(expected.logits), LOGITS_TOL)
        assert_float32_close(actual.loss.item(), expected.loss.item(), CACHE_TOL)

    def test_gradients_match_hf(self, hf_folder, batch):
        """The training path: train mode, loss.backward(), the same gradient on every parameter."""
        hf_model = self.hf_model_class.from_pretrained(hf_folder, attn_implementation="eager").train()
        model = self.model_class.from_pretrained(hf_folder).train()
        assert all(getattr(model.config, key) == 0 for key in self.dropout_config_keys)  # so HF's RNG doesn't matter
        inputs = self.model_inputs(batch, "input_ids", "attention_mask", "labels")
        hf_model(**inputs).loss.backward()
        model(**inputs).loss.backward()
        ours = dict(model.named_parameters())
        computed = [re.compile(p) for p in self.model_class.checkpoint_keys_to_ignore]  # HF's sinusoidal tables
        theirs = {n: p for n, p in hf_model.named_parameters() if not any(c.search(n) for c in computed)}
        assert sorted(ours) == sorted(theirs)
        for name, parameter in theirs.items():
            if parameter.grad is None:
                assert ours[name].grad is None, f"{name} has a gradient, HF's has none"
                continue
            assert ours[name].grad is not None, f"{name} has no gradient"
            assert_float32_close(to_numpy(ours[name].grad), to_numpy(parameter.grad), CACHE_TOL, msg=name)

    def test_dropout_active_only_in_train_mode(self, hf_folder, model, batch):
        rates = dict.fromkeys(self.dropout_config_keys, 0.3)
        noisy = self.model_class.from_pretrained(hf_folder, **rates)
        inputs = self.model_inputs(batch)
        with torch.no_grad():
            reference = model(**inputs).logits
            torch.testing.assert_close(noisy(**inputs).logits, reference, rtol=0, atol=0)  # eval: no dropout
            noisy.train()
            torch.manual_seed(0)
            first = noisy(**inputs).logits
            second = noisy(**inputs).logits
        assert not torch.allclose(first, second)
        assert not torch.allclose(first, reference)

    # ---- saving -------------------------------------------------------------------------------------------

    def test_westron_save_loads_in_hf(self, model, hf_folder, batch, tmp_path):
        """Our save holds exactly the tensors HF saved, and HF loads it with nothing missing or left over."""
        model.save_pretrained(tmp_path)
        ours = read_safetensors_folder(tmp_path)
        theirs = read_safetensors_folder(hf_folder)
        assert sorted(ours) == sorted(theirs)
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0, msg=name)
        hf_model, info = self.hf_model_class.from_pretrained(tmp_path, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        with torch.no_grad():
            expected = model(**self.model_inputs(batch)).logits
            actual = hf_model.eval()(**self.model_inputs(batch)).logits
        assert_float32_close(actual, expected, CACHE_TOL)

    def test_save_load_round_trip(self, model, batch, tmp_path):
        model.save_pretrained(tmp_path)
        reloaded = self.model_class.from_pretrained(tmp_path)
        assert reloaded.config.to_dict() == model.config.to_dict()
        assert sorted(reloaded.state_dict()) == sorted(model.state_dict())
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(reloaded.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
        with torch.no_grad():
            torch.testing.assert_close(
                reloaded(**self.model_inputs(batch)).logits, model(**self.model_inputs(batch)).logits, rtol=0, atol=0
            )

    # ---- tying --------------------------------------------------------------------------------------------

    def test_tied_weights_match_hf(self, hf_model, model):
        """tied_weights() names what HF ties, and exactly those parameters are one nn.Parameter."""
        assert model.tied_weights() == dict(hf_model.all_tied_weights_keys)
        for tied, source in model.tied_weights().items():
            assert model.get_parameter(tied) is model.get_parameter(source), f"{tied} is not {source}"
        ours = identity_groups(model.named_parameters(remove_duplicate=False))
        theirs = identity_groups(hf_model.named_parameters(remove_duplicate=False))
        assert ours == theirs

    # ---- checkpoint errors --------------------------------------------------------------------------------

    def test_bad_checkpoint_raises_one_error_naming_every_problem(self, hf_folder, tmp_path):
        from safetensors.torch import save_file

        tensors = read_safetensors_folder(hf_folder)
        names = sorted(tensors)
        missing, misshapen = names[0], next(n for n in reversed(names) if tensors[n].dim() >= 1)
        del tensors[missing]
        tensors[misshapen] = torch.zeros(tensors[misshapen].shape[0] + 1, *tensors[misshapen].shape[1:])
        tensors["model.encoder.not_a_weight"] = torch.zeros(2)
        copy_config_files(hf_folder, tmp_path)
        save_file(tensors, os.path.join(tmp_path, "model.safetensors"))
        with pytest.raises(CheckpointError) as error:
            self.model_class.from_pretrained(tmp_path)
        message = str(error.value)
        for name in (missing, misshapen, "model.encoder.not_a_weight"):
            assert name in message, f"{name} not in: {message}"
        assert "missing" in message and "unexpected" in message and "shape" in message

    # ---- cached decoding ----------------------------------------------------------------------------------

    def test_cache_layout(self, model, batch):
        with torch.no_grad():
            encoded = model.encode(batch["input_ids"], batch["attention_mask"])
            cache = model.init_cache(encoded.last_hidden_state, max_length=9)
        batch_size, source_len = batch["input_ids"].shape
        assert isinstance(cache, tuple) and len(cache) == getattr(model.config, self.decoder_layers_config_key)
        for self_k, self_v, cross_k, cross_v in cache:
            assert self_k.shape[:1] + self_k.shape[2:3] == (batch_size, 9) and self_k.shape == self_v.shape
            assert not self_k.any() and not self_v.any()
            assert cross_k.shape[:1] + cross_k.shape[2:3] == (batch_size, source_len) and cross_k.shape == cross_v.shape
            assert self_k.shape[1] == cross_k.shape[1] and self_k.shape[3] == cross_k.shape[3]

    @pytest.mark.parametrize("position_type", [int, torch.tensor])
    def test_cached_decode_equals_full_pass(self, model, batch, position_type):
        """decode() over chunks of 2, 1, 1, 1 tokens gives the full pass's logits, attentions and hidden states."""
        input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]
        decoder_input_ids = batch["decoder_input_ids"]
        length = decoder_input_ids.shape[1]
        with torch.no_grad():
            full = model(input_ids, attention_mask, decoder_input_ids, output_attentions=True, output_hidden_states=True)
            encoded = model.encode(input_ids, attention_mask)
            assert_float32_close(encoded.last_hidden_state, full.encoder_last_hidden_state, CACHE_TOL)
            cache = model.init_cache(encoded.last_hidden_state, max_length=length + 3)
            for start, end in [(0, 2)] + [(i, i + 1) for i in range(2, length)]:
                logits, cache, step_outputs = model.decode(
                    decoder_input_ids[:, start:end],
                    encoded.last_hidden_state,
                    attention_mask,
                    cache,
                    position_type(start),
                    output_attentions=True,
                    output_hidden_states=True,
                )
                assert_float32_close(logits, full.logits[:, start:end], CACHE_TOL)
                cross_attentions = step_outputs.cross_attentions
                assert len(cross_attentions) == len(full.cross_attentions)
                for step, whole in zip(cross_attentions, full.cross_attentions):
                    assert_float32_close(step, whole[:, :, start:end], CACHE_TOL)
                # self-attention over the cache (an int position: the keys so far; a tensor: the whole buffer, 0 past them)
                for step, whole in zip(step_outputs.attentions, full.decoder_attentions):
                    assert_float32_close(step[..., :end], whole[:, :, start:end, :end], CACHE_TOL)
                    assert not step[..., end:].any()
                assert len(step_outputs.hidden_states) == len(full.decoder_hidden_states)
                for step, whole in zip(step_outputs.hidden_states, full.decoder_hidden_states):
                    assert_float32_close(step, whole[:, start:end], CACHE_TOL)
            _, _, no_attentions = model.decode(
                decoder_input_ids[:, :1], encoded.last_hidden_state, attention_mask, cache, position_type(0)
            )
        assert no_attentions.cross_attentions is None and no_attentions.attentions is None

    def test_reorder_cache_follows_beams(self, model, batch):
        """After reorder_cache(beams) decoding continues each row from the history of the row it picked."""
        # Beams of one sentence: the same source in every row, different target prefixes.
        source = batch["input_ids"][:1].expand(3, -1)
        source_mask = batch["attention_mask"][:1].expand(3, -1)
        targets = batch["decoder_input_ids"].clone()
        targets[:, 0] = model.config.decoder_start_token_id
        beams = torch.tensor([2, 0, 0])
        with torch.no_grad():
            encoded = model.encode(source, source_mask).last_hidden_state
            cache = model.init_cache(encoded, max_length=targets.shape[1])
            _, cache, _ = model.decode(targets[:, :3], encoded, source_mask, cache, 0)
            cache = model.reorder_cache(cache, beams)
            logits, _, _ = model.decode(targets[beams, 3:], encoded, source_mask, cache, 3)
            expected = model(source, source_mask, targets[beams]).logits[:, 3:]
        assert_float32_close(logits, expected, CACHE_TOL)
