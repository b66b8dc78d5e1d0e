"""Slow: random checkpoints at real size (opus-mt-en-de, t5-small), checked against HF in both frameworks.

The tiny configs of the per-family tests cover every code path; these catch what only shows at
size: float32 error growing with depth and width, a 58k-token vocabulary, 512 positions.
Run with `RUN_SLOW=1 .venv/bin/python -m pytest -q -m slow` (11 minutes on a busy 2-core machine).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.hf_oracle import random_batch, tiny_marian_config
from tests.test_modeling_common import LOGITS_TOL, assert_float32_close

pytestmark = pytest.mark.slow

OPUS_MT_EN_DE = dict(  # Helsinki-NLP/opus-mt-en-de's config.json, weights random
    vocab_size=58101,
    decoder_vocab_size=58101,
    d_model=512,
    encoder_layers=6,
    decoder_layers=6,
    encoder_attention_heads=8,
    decoder_attention_heads=8,
    encoder_ffn_dim=2048,
    decoder_ffn_dim=2048,
    max_position_embeddings=512,
    pad_token_id=58100,
    decoder_start_token_id=58100,
    activation_function="swish",
    scale_embedding=True,
)
T5_SMALL = dict(  # t5-small's config.json, weights random
    vocab_size=32128,
    d_model=512,
    d_kv=64,
    d_ff=2048,
    num_layers=6,
    num_heads=8,
    relative_attention_num_buckets=32,
    feed_forward_proj="relu",
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
    dropout_rate=0.0,
)


@pytest.fixture(scope="module")
def opus_mt_folder(tmp_path_factory):
    from transformers import MarianMTModel

    torch.manual_seed(0)
    model = MarianMTModel(tiny_marian_config(**OPUS_MT_EN_DE)).eval()
    folder = tmp_path_factory.mktemp("opus-mt-en-de-random")
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope="module")
def t5_small_folder(tmp_path_factory):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(**T5_SMALL)).eval()
    folder = tmp_path_factory.mktemp("t5-small-random")
    model.save_pretrained(folder)
    return model, folder


def _batch(config):
    ids, mask = random_batch(config.vocab_size, config.pad_token_id, config.eos_token_id, batch=4, length=24)
    decoder_ids, _ = random_batch(
        config.vocab_size, config.pad_token_id, config.eos_token_id, batch=4, length=16, seed=1
    )
    return ids, mask, decoder_ids


def _check(hf_model, folder, pt_class, tf_class):
    ids, mask, decoder_ids = _batch(hf_model.config)
    with torch.no_grad():
        expected = hf_model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
        generated = hf_model.generate(ids, attention_mask=mask, max_new_tokens=16, num_beams=4, do_sample=False)

    model = pt_class.from_pretrained(folder)
    with torch.no_grad():
        assert_float32_close(
            model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits, expected, LOGITS_TOL
        )
    assert model.generate(ids, attention_mask=mask, max_new_tokens=16, num_beams=4).tolist() == generated.tolist()

    import tensorflow as tf

    tf_model = tf_class.from_pretrained(folder)
    tf_inputs = dict(
        input_ids=tf.constant(ids.numpy()),
        attention_mask=tf.constant(mask.numpy()),
        decoder_input_ids=tf.constant(decoder_ids.numpy()),
    )
    assert_float32_close(tf_model(**tf_inputs).logits, expected, LOGITS_TOL)
    tf_generated = tf_model.generate(
        tf_inputs["input_ids"], attention_mask=tf_inputs["attention_mask"], max_new_tokens=16, num_beams=4
    )
    assert np.asarray(tf_generated).tolist() == generated.tolist()


def test_opus_mt_size_marian_equals_hf(opus_mt_folder):
    from westron.models.marian.modeling_marian import MarianMTModel
    from westron.models.marian.modeling_tf_marian import TFMarianMTModel

    _check(*opus_mt_folder, MarianMTModel, TFMarianMTModel)


def test_t5_small_size_equals_hf(t5_small_folder):
    from westron.models.t5.modeling_t5 import T5ForConditionalGeneration
    from westron.models.t5.modeling_tf_t5 import TFT5ForConditionalGeneration

    _check(*t5_small_folder, T5ForConditionalGeneration, TFT5ForConditionalGeneration)
