"""Common tests for the TensorFlow seq2seq models, with Hugging Face transformers (PyTorch) as the oracle.

The twin of tests/test_modeling_common.py. A model family's TF test module subclasses
`TFSeq2SeqModelTesterMixin` and names five things:

    class TestTFMarianModeling(TFSeq2SeqModelTesterMixin):
        model_class = TFMarianMTModel                # the Westron TensorFlow seq2seq LM
        hf_model_class = transformers.MarianMTModel  # the Hugging Face (PyTorch) oracle
        pt_model_class = "westron.models.marian.modeling_marian.MarianMTModel"  # our PyTorch twin
        variants = MARIAN_VARIANTS                   # {name: config overrides}
        save_hf_checkpoint = staticmethod(save_tiny_marian)  # (folder, **overrides) -> folder

Every test runs once per variant (the class-scoped parameter `variant`). HF folders are saved once
per session and shared with the PyTorch tests (`hf_checkpoint_folder`); HF and Westron models are
built once per class and variant. XLA compiles are kept to a few per variant (tiny models compile
in about a second each on a CPU).

The model contract tested here (docs/internals.md): `call(...) -> Seq2SeqLMOutput`, `encode`,
`init_cache`, `decode`, `reorder_cache`, `tied_weights`, `checkpoint_shapes`, `save_pretrained`,
`from_pretrained`; and every one of these must work eagerly, in tf.function and under XLA.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from typing import Callable, ClassVar

import numpy as np
import pytest
import tensorflow as tf
import torch

from tests.test_modeling_common import (
    CACHE_TOL,
    LOGITS_TOL,
    OUTPUT_FIELDS,
    assert_float32_close,
    assert_outputs_close,
    batch_for,
    copy_config_files,
    hf_checkpoint_folder,
    read_safetensors_folder,
    to_numpy,
)
from westron.errors import CheckpointError

MODEL_INPUTS = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")


def to_tf(batch: dict[str, torch.Tensor]) -> dict[str, tf.Tensor]:
    return {name: tf.constant(value.numpy()) for name, value in batch.items()}


def tf_gradients(model, inputs: dict) -> dict[str, np.ndarray]:
    """{checkpoint name: gradient of the loss, in the checkpoint's layout} for every trainable variable."""
    named = model.checkpoint_variables()
    with tf.GradientTape() as tape:
        loss = model(**inputs, training=True).loss
    variables = [variable for variable, _ in named.values()]
    grads = tape.gradient(loss, variables)
    result = {}
    for (name, (variable, transposed)), grad in zip(named.items(), grads):
        if not variable.trainable:
            continue
        if isinstance(grad, tf.IndexedSlices):
            grad = tf.convert_to_tensor(grad)
        result[name] = None if grad is None else (grad.numpy().T if transposed else grad.numpy())
    return result


class TFSeq2SeqModelTesterMixin:
    model_class: ClassVar[type]
    hf_model_class: ClassVar[type]
    pt_model_class: ClassVar[str | None] = None  # dotted path of the PyTorch twin
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
    def pt_model_class_object(cls):
        # Every family has both twins: a missing one is a failure, never a skip.
        assert cls.pt_model_class, f"{cls.__name__} names no PyTorch twin (pt_model_class)"
        module_name, _, name = cls.pt_model_class.rpartition(".")
        return getattr(importlib.import_module(module_name), name)

    @pytest.fixture(scope="class")
    @classmethod
    def batch(cls, model) -> dict[str, torch.Tensor]:
        return batch_for(model.config)

    @pytest.fixture(scope="class")
    @classmethod
    def tf_batch(cls, batch) -> dict[str, tf.Tensor]:
        return to_tf(batch)

    @pytest.fixture(scope="class")
    @classmethod
    def hf_outputs(cls, hf_model, batch):
        with torch.no_grad():
            return hf_model(**{n: batch[n] for n in MODEL_INPUTS}, output_attentions=True, output_hidden_states=True)

    @staticmethod
    def model_inputs(batch, *names):
        return {name: batch[name] for name in names or MODEL_INPUTS}

    # ---- HF -> Westron TF -----------------------------------------------------------------------------------

    def test_hf_checkpoint_gives_hf_outputs(self, hf_outputs, model, tf_batch):
        """Logits and every optional output field equal HF's on a padded batch."""
        actual = model(**self.model_inputs(tf_batch), output_attentions=True, output_hidden_states=True)
        assert actual.encoder_attentions is not None and len(actual.encoder_attentions) > 0
        assert_outputs_close(hf_outputs, actual)

    def test_optional_outputs_follow_arguments_and_config(self, model, tf_batch):
        plain = model(**self.model_inputs(tf_batch))
        for field in OUTPUT_FIELDS[1:]:
            assert getattr(plain, field) is None, field
        assert plain.loss is None and plain.encoder_last_hidden_state is not None
        config = model.config
        config.output_attentions, config.output_hidden_states = True, True
        try:
            from_config = model(**self.model_inputs(tf_batch))
            overridden = model(**self.model_inputs(tf_batch), output_attentions=False)
        finally:
            config.output_attentions, config.output_hidden_states = False, False
        for field in OUTPUT_FIELDS[1:]:
            assert getattr(from_config, field) is not None, field
        assert overridden.encoder_attentions is None and overridden.cross_attentions is None
        assert overridden.decoder_hidden_states is not None

    def test_encoder_outputs_can_be_passed_in(self, model, tf_batch):
        full = model(**self.model_inputs(tf_batch))
        encoded = model.encode(tf_batch["input_ids"], tf_batch["attention_mask"])
        again = model(
            attention_mask=tf_batch["attention_mask"],
            decoder_input_ids=tf_batch["decoder_input_ids"],
            decoder_attention_mask=tf_batch["decoder_attention_mask"],
            encoder_outputs=encoded,
        )
        assert_float32_close(again.logits.numpy(), full.logits.numpy(), CACHE_TOL)

    def test_loss_matches_hf(self, hf_model, model, batch, tf_batch):
        """labels -> decoder inputs shifted right and the mean cross-entropy over labels != -100."""
        names = ("input_ids", "attention_mask", "labels")
        assert (batch["labels"] == -100).any()
        with torch.no_grad():
            expected = hf_model(**self.model_inputs(batch, *names))
        actual = model(**self.model_inputs(tf_batch, *names))
        assert_float32_close(actual.logits.numpy(), to_numpy(expected.logits), LOGITS_TOL)
        assert_float32_close(float(actual.loss), expected.loss.item(), CACHE_TOL)

    def test_gradients_match_hf(self, hf_folder, model, batch, tf_batch):
        """The training path (training=True, a GradientTape): HF's gradient on every parameter."""
        assert all(getattr(model.config, key) == 0 for key in self.dropout_config_keys)  # no RNG in the comparison
        hf_model = self.hf_model_class.from_pretrained(hf_folder, attn_implementation="eager").train()
        names = ("input_ids", "attention_mask", "labels")
        hf_model(**self.model_inputs(batch, *names)).loss.backward()
        ours = tf_gradients(model, self.model_inputs(tf_batch, *names))
        computed = [re.compile(p) for p in self.model_class.checkpoint_keys_to_ignore]
        theirs = {n: p for n, p in hf_model.named_parameters() if not any(c.search(n) for c in computed)}
        assert sorted(ours) == sorted(theirs)
        for name, parameter in theirs.items():
            if parameter.grad is None:
                assert ours[name] is None, f"{name} has a gradient, HF's has none"
                continue
            assert ours[name] is not None, f"{name} has no gradient"
            assert_float32_close(ours[name], to_numpy(parameter.grad), CACHE_TOL, msg=name)

    def test_dropout_active_only_when_training(self, hf_folder, model, tf_batch):
        rates = dict.fromkeys(self.dropout_config_keys, 0.3)
        noisy = self.model_class.from_pretrained(hf_folder, **rates)
        inputs = self.model_inputs(tf_batch)
        reference = model(**inputs).logits.numpy()
        np.testing.assert_array_equal(noisy(**inputs).logits.numpy(), reference)  # training=False: no dropout
        np.testing.assert_array_equal(noisy(**inputs, training=False).logits.numpy(), reference)
        first = noisy(**inputs, training=True).logits.numpy()
        second = noisy(**inputs, training=True).logits.numpy()
        assert not np.allclose(first, second)
        assert not np.allclose(first, reference)

    # ---- eager, tf.function, XLA ----------------------------------------------------------------------

    def test_eager_function_and_xla_agree(self, model, tf_batch):
        inputs = self.model_inputs(tf_batch)

        def forward(**kwargs):
            out = model(**kwargs, output_attentions=True, output_hidden_states=True)
            return out.logits, out.encoder_attentions, out.decoder_hidden_states, out.cross_attentions

        eager = forward(**inputs)
        graph = tf.function(forward)(**inputs)
        xla = tf.function(forward, jit_compile=True)(**inputs)
        for mode, result in (("tf.function", graph), ("xla", xla)):
            for want, got in zip(tf.nest.flatten(eager), tf.nest.flatten(result)):
                want = want.numpy()
                assert_float32_close(got.numpy(), want, CACHE_TOL, msg=mode)

    # ---- saving -------------------------------------------------------------------------------------------

    def test_westron_save_loads_in_hf(self, model, hf_folder, batch, tf_batch, tmp_path):
        """Our save holds exactly the tensors HF saved, and HF loads it with nothing missing or left over."""
        model.save_pretrained(tmp_path)
        ours = read_safetensors_folder(tmp_path)
        theirs = read_safetensors_folder(hf_folder)
        assert sorted(ours) == sorted(theirs)
        for name in theirs:
            torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0, msg=name)
        hf_model, info = self.hf_model_class.from_pretrained(tmp_path, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        expected = model(**self.model_inputs(tf_batch)).logits.numpy()
        with torch.no_grad():
            actual = to_numpy(hf_model.eval()(**self.model_inputs(batch)).logits)
        assert_float32_close(actual, expected, LOGITS_TOL)

    def test_save_load_round_trip(self, model, tf_batch, tmp_path):
        model.save_pretrained(tmp_path)
        reloaded = self.model_class.from_pretrained(tmp_path)
        assert reloaded.config.to_dict() == model.config.to_dict()
        ours, theirs = model.checkpoint_variables(), reloaded.checkpoint_variables()
        assert sorted(ours) == sorted(theirs)
        for name, (variable, _) in ours.items():
            np.testing.assert_array_equal(theirs[name][0].numpy(), variable.numpy(), err_msg=name)
        np.testing.assert_array_equal(
            reloaded(**self.model_inputs(tf_batch)).logits.numpy(), model(**self.model_inputs(tf_batch)).logits.numpy()
        )

    # ---- the PyTorch twin ------------------------------------------------------------------------------

    def test_checkpoint_names_and_shapes_equal_pt_twin(self, model, pt_model_class_object):
        pt_model = pt_model_class_object(model.config)
        assert model.tied_weights() == pt_model.tied_weights()
        tied = pt_model.tied_weights()
        pt_shapes = {name: tuple(t.shape) for name, t in pt_model.state_dict().items() if name not in tied}
        assert model.checkpoint_shapes() == pt_shapes

    def test_westron_save_loads_in_pt_twin(self, model, pt_model_class_object, batch, tf_batch, tmp_path):
        model.save_pretrained(tmp_path)
        pt_model = pt_model_class_object.from_pretrained(tmp_path)
        with torch.no_grad():
            pt_outputs = pt_model(**self.model_inputs(batch), output_attentions=True, output_hidden_states=True)
        tf_outputs = model(**self.model_inputs(tf_batch), output_attentions=True, output_hidden_states=True)
        assert_outputs_close(pt_outputs, tf_outputs)

    # ---- tying --------------------------------------------------------------------------------------------

    def test_tied_weights_match_hf(self, hf_model, model):
        """tied_weights() names what HF ties; on the TF side only the source names are variables."""
        assert model.tied_weights() == dict(hf_model.all_tied_weights_keys)
        named = model.checkpoint_variables()
        for tied, source in model.tied_weights().items():
            assert tied not in named and source in named, (tied, source)
        # one variable per name: nothing is duplicated where HF ties
        assert len({id(variable) for variable, _ in named.values()}) == len(named) == len(model.weights)
        hf_sources = {n for n, _ in hf_model.named_parameters()} | {n for n, _ in hf_model.named_buffers()}
        computed = [re.compile(p) for p in self.model_class.checkpoint_keys_to_ignore]
        hf_sources = {n for n in hf_sources if not any(c.search(n) for c in computed)}
        assert set(named) == hf_sources

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

    def test_cache_layout(self, model, tf_batch):
        encoded = model.encode(tf_batch["input_ids"], tf_batch["attention_mask"])
        cache = model.init_cache(encoded.last_hidden_state, max_length=9)
        batch_size, source_len = tf_batch["input_ids"].shape
        assert isinstance(cache, tuple) and len(cache) == getattr(model.config, self.decoder_layers_config_key)
        for self_k, self_v, cross_k, cross_v in cache:
            assert (self_k.shape[0], self_k.shape[2]) == (batch_size, 9) and self_k.shape == self_v.shape
            assert not np.any(self_k.numpy()) and not np.any(self_v.numpy())
            assert (cross_k.shape[0], cross_k.shape[2]) == (batch_size, source_len) and cross_k.shape == cross_v.shape
            assert self_k.shape[1] == cross_k.shape[1] and self_k.shape[3] == cross_k.shape[3]

    @pytest.mark.parametrize("position_type", [int, tf.constant])
    def test_cached_decode_equals_full_pass(self, model, tf_batch, position_type):
        """decode() over chunks of 2, 1, 1, 1 tokens gives the full pass's logits, attentions and hidden states."""
        input_ids, attention_mask = tf_batch["input_ids"], tf_batch["attention_mask"]
        decoder_input_ids = tf_batch["decoder_input_ids"]
        length = decoder_input_ids.shape[1]
        full = model(input_ids, attention_mask, decoder_input_ids, output_attentions=True, output_hidden_states=True)
        encoded = model.encode(input_ids, attention_mask)
        assert_float32_close(encoded.last_hidden_state.numpy(), full.encoder_last_hidden_state.numpy(), CACHE_TOL)
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
            assert_float32_close(logits.numpy(), full.logits[:, start:end].numpy(), CACHE_TOL)
            cross_attentions = step_outputs.cross_attentions
            assert len(cross_attentions) == len(full.cross_attentions)
            for step, whole in zip(cross_attentions, full.cross_attentions):
                assert_float32_close(step.numpy(), whole[:, :, start:end].numpy(), CACHE_TOL)
            # self-attention over the cache (an int position: the keys so far; a tensor: the whole buffer, 0 past them)
            for step, whole in zip(step_outputs.attentions, full.decoder_attentions):
                assert_float32_close(step[..., :end].numpy(), whole[:, :, start:end, :end].numpy(), CACHE_TOL)
                assert not np.any(step[..., end:].numpy())
            assert len(step_outputs.hidden_states) == len(full.decoder_hidden_states)
            for step, whole in zip(step_outputs.hidden_states, full.decoder_hidden_states):
                assert_float32_close(step.numpy(), whole[:, start:end].numpy(), CACHE_TOL)
        _, _, no_attentions = model.decode(
            decoder_input_ids[:, :1], encoded.last_hidden_state, attention_mask, cache, position_type(0)
        )
        assert no_attentions.cross_attentions is None and no_attentions.attentions is None

    def test_compiled_decoding_loop_equals_full_pass(self, model, tf_batch):
        """encode + init_cache + a tf.while_loop of one-token decode steps, as ONE XLA function,
        gives the full pass's logits (a scalar int tensor cache_position; static cache shapes)."""
        input_ids, attention_mask = tf_batch["input_ids"], tf_batch["attention_mask"]
        decoder_input_ids = tf_batch["decoder_input_ids"]
        length = decoder_input_ids.shape[1]
        full = model(input_ids, attention_mask, decoder_input_ids).logits

        @tf.function(jit_compile=True)
        def decode_all(input_ids, attention_mask, decoder_input_ids):
            encoded = model.encode(input_ids, attention_mask).last_hidden_state
            cache = model.init_cache(encoded, max_length=length + 2)
            steps = tf.TensorArray(full.dtype, size=length)
            for position in tf.range(length):
                token = tf.gather(decoder_input_ids, [position], axis=1)  # (B, 1)
                logits, cache, _ = model.decode(token, encoded, attention_mask, cache, position)
                steps = steps.write(position, logits[:, 0])
            return tf.transpose(steps.stack(), (1, 0, 2))  # (B, length, V)

        compiled = decode_all(input_ids, attention_mask, decoder_input_ids)
        assert_float32_close(compiled.numpy(), full.numpy(), CACHE_TOL)

    def test_reorder_cache_follows_beams(self, model, tf_batch):
        """After reorder_cache(beams) decoding continues each row from the history of the row it picked."""
        source = tf.repeat(tf_batch["input_ids"][:1], 3, axis=0)  # beams of one sentence
        source_mask = tf.repeat(tf_batch["attention_mask"][:1], 3, axis=0)
        targets = tf_batch["decoder_input_ids"].numpy().copy()
        targets[:, 0] = model.config.decoder_start_token_id
        targets = tf.constant(targets)
        beams = tf.constant([2, 0, 0])
        encoded = model.encode(source, source_mask).last_hidden_state
        cache = model.init_cache(encoded, max_length=targets.shape[1])
        _, cache, _ = model.decode(targets[:, :3], encoded, source_mask, cache, 0)
        cache = model.reorder_cache(cache, beams)
        logits, _, _ = model.decode(tf.gather(targets, beams)[:, 3:], encoded, source_mask, cache, 3)
        expected = model(source, source_mask, tf.gather(targets, beams)).logits[:, 3:]
        assert_float32_close(logits.numpy(), expected.numpy(), CACHE_TOL)
