"""westron.generation.tf_search: ids equal to Hugging Face transformers' generate (PyTorch), eager and compiled.

One tiny random HF Marian checkpoint, loaded into the Westron TF model. XLA compiles are slow on
a small CPU (seconds each), so every compiled test uses the same batch shape (one bucket) and the
model fixture is module-scoped; each distinct setting is one compile.

The checkpoint is random but not degenerate (see `save_diverse_marian`), and most tests use
token 39 as eos, which this model emits after ~10 steps in some rows and never in others: rows
end at different steps, so padding, trimming and beam bookkeeping are exercised (and beams swap
parents, so a search that forgot to reorder the cache would differ).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

from tests.hf_oracle import random_batch, tiny_marian_config
from westron.errors import WestronError
from westron.generation import tf_search
from westron.generation.utils import resolve_generation_settings

PAD, VOCAB = 98, 99
EOS = 39  # an eos this model reaches after ~10 steps in some rows only
SOURCE_IDS, SOURCE_MASK = (t.numpy() for t in random_batch(VOCAB, PAD, 0, batch=4, length=11))  # rows of 11, 9, 7, 5


def save_diverse_marian(folder) -> str:
    """A tiny random HF Marian whose outputs vary by row and position.

    HF's default initialisation (std 0.02) makes the output the argmax of final_logits_bias at every
    step; larger weights and an untied, larger LM head give varied sequences (and beams that differ).
    """
    from transformers import MarianMTModel

    torch.manual_seed(0)
    model = MarianMTModel(tiny_marian_config(init_std=0.1, tie_word_embeddings=False)).eval()
    with torch.no_grad():
        model.lm_head.weight.normal_(0, 0.3)
        model.final_logits_bias.normal_(0, 0.5)
    model.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from transformers import MarianMTModel

    from westron.models.marian.modeling_tf_marian import TFMarianMTModel

    folder = save_diverse_marian(tmp_path_factory.mktemp("tf_search") / "marian")
    return MarianMTModel.from_pretrained(folder).eval(), TFMarianMTModel.from_pretrained(folder)


def hf_generate(hf_model, ids=SOURCE_IDS, mask=SOURCE_MASK, **kwargs) -> np.ndarray:
    with torch.no_grad():
        return hf_model.generate(torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), **kwargs).numpy()


def westron_generate(tf_model, ids=SOURCE_IDS, mask=SOURCE_MASK, **kwargs) -> np.ndarray:
    out = tf_model.generate(ids, attention_mask=mask, **kwargs)
    assert isinstance(out, tf.Tensor) and out.dtype == tf.int32
    return out.numpy()


def assert_same_ids(ours: np.ndarray, expected: np.ndarray) -> None:
    assert ours.shape == expected.shape, f"shape {ours.shape} != HF's {expected.shape}\n{ours}\n{expected}"
    np.testing.assert_array_equal(ours, expected)


def row_lengths(ids: np.ndarray, pad: int = PAD) -> list[int]:
    return [int(np.sum(row[1:] != pad)) + 1 for row in ids]


# ---- greedy and beam search -------------------------------------------------------------------------

GREEDY = dict(eos_token_id=EOS, max_new_tokens=20)
BEAM = dict(num_beams=3, eos_token_id=EOS, max_new_tokens=20)


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "compiled"])
def test_greedy_matches_hf_on_a_padded_batch(models, eager):
    hf_model, tf_model = models
    expected = hf_generate(hf_model, **GREEDY)
    assert len(set(row_lengths(expected))) > 1  # rows end at different steps
    assert_same_ids(westron_generate(tf_model, eager=eager, **GREEDY), expected)


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "compiled"])
def test_beam_search_matches_hf_on_a_padded_batch(models, eager):
    hf_model, tf_model = models
    expected = hf_generate(hf_model, **BEAM)
    assert not np.array_equal(expected, hf_generate(hf_model, **GREEDY)[:, : expected.shape[1]])
    assert_same_ids(westron_generate(tf_model, eager=eager, **BEAM), expected)


def test_without_attention_mask_padding_is_found_from_pad_token(models):
    hf_model, tf_model = models
    expected = hf_generate(hf_model, **GREEDY)  # with the mask
    assert_same_ids(westron_generate(tf_model, mask=None, **GREEDY), expected)


def test_plain_tf_function_without_xla_matches_hf(models):
    hf_model, tf_model = models
    assert_same_ids(westron_generate(tf_model, jit_compile=False, **BEAM), hf_generate(hf_model, **BEAM))


def test_beam_search_test_sees_the_cache_reordering(models, monkeypatch):
    """The beam tests above would catch a search that skips reorder_cache."""
    hf_model, tf_model = models
    monkeypatch.setattr(tf_model, "reorder_cache", lambda cache, beam_indices: cache)
    ours = westron_generate(tf_model, eager=True, **BEAM)
    expected = hf_generate(hf_model, **BEAM)
    assert ours.shape != expected.shape or not np.array_equal(ours, expected)


BEAM_VARIANTS = {
    "return-2-of-4-early-stopping-length-penalty-2": dict(
        num_beams=4, num_return_sequences=2, early_stopping=True, length_penalty=2.0, eos_token_id=EOS,
        max_new_tokens=16,
    ),
    "never-stop-early-length-penalty-0.5-two-eos": dict(
        num_beams=3, early_stopping="never", length_penalty=0.5, eos_token_id=[EOS, 36], max_new_tokens=16
    ),
    "defaults-max-length": dict(num_beams=2),  # eos 0, HF's default of 20 new tokens
}


@pytest.mark.parametrize("settings", list(BEAM_VARIANTS.values()), ids=list(BEAM_VARIANTS))
def test_beam_search_variants_match_hf(models, settings):
    hf_model, tf_model = models
    expected = hf_generate(hf_model, **settings)
    assert expected.shape[0] == SOURCE_IDS.shape[0] * settings.get("num_return_sequences", 1)
    assert_same_ids(westron_generate(tf_model, **settings), expected)


# ---- vocabulary-wide top-k and argmax through blocks ------------------------------------------------


def _scores_with_ties_and_banned_tokens(shape, seed: int) -> np.ndarray:
    scores = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    scores[..., 100:300] = -np.inf  # banned tokens (bad words, min length) across block edges
    flat = scores.reshape(-1, shape[-1])
    flat[0, 7] = flat[0, 2000] = flat[0].max() + 1.0  # the best token twice, in different blocks
    flat[-1, :] = -np.inf  # a row without a possible token (forced tokens ban all but one)
    flat[-1, shape[-1] - 1] = 0.0  # ... the one allowed sits in the tail
    return scores


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("shape", [(6, 58101), (3, 4, 32128), (3, 4096)], ids=str)
@pytest.mark.parametrize("k", [1, 2, 8])
def test_block_top_k_equals_tf_top_k(shape, k, compiled):
    scores = _scores_with_ties_and_banned_tokens(shape, seed=k)
    top_k = tf.function(tf_search._top_k, jit_compile=True) if compiled else tf_search._top_k
    values, indices = (t.numpy() for t in top_k(tf.constant(scores), k))
    expected_values, expected_indices = (t.numpy() for t in tf.math.top_k(scores, k=k))
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(np.take_along_axis(scores, indices, -1), values)  # every index points at its value
    assert (indices < shape[-1]).all()
    assert all(len(set(row)) == k for row in indices.reshape(-1, k).tolist())  # no token twice
    # Which of equal scores comes first is top_k's own choice; the rows without ties give the same tokens.
    ahead = tf.math.top_k(scores, k=k + 1).values.numpy()  # a tie with the next best counts too
    untied = (ahead[..., :, None] != ahead[..., None, :]).sum((-1, -2)) == (k + 1) * k
    assert untied.any()
    np.testing.assert_array_equal(indices[untied], expected_indices[untied])


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
@pytest.mark.parametrize("shape", [(6, 58101), (3, 4, 32128), (2, 512), (5, 511)], ids=str)
def test_block_argmax_equals_tf_argmax_first_maximum_included(shape, compiled):
    if shape[-1] > 2000:
        scores = _scores_with_ties_and_banned_tokens(shape, seed=3)
    else:
        scores = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    argmax = tf.function(tf_search._argmax, jit_compile=True) if compiled else tf_search._argmax
    tokens = argmax(tf.constant(scores)).numpy()
    np.testing.assert_array_equal(tokens, np.argmax(scores, axis=-1))  # numpy: the first maximum
    assert tokens.dtype == np.int32


@pytest.mark.parametrize("settings", [GREEDY, BEAM], ids=["greedy", "beam"])
def test_search_through_small_vocabulary_blocks_matches_hf(models, monkeypatch, settings):
    """The tiny vocabulary (99) takes the block route with 4-token blocks (eager: no compiled function
    keeps the patched block size): greedy and beam ids as HF's."""
    hf_model, tf_model = models
    monkeypatch.setattr(tf_search, "VOCAB_BLOCK", 4)
    calls = []
    block_positions = tf_search._block_positions
    monkeypatch.setattr(tf_search, "_block_positions", lambda *args: calls.append(1) or block_positions(*args))
    assert_same_ids(westron_generate(tf_model, eager=True, **settings), hf_generate(hf_model, **settings))
    assert calls  # the block route ran


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla"])
def test_any_nan_is_exact_on_real_rows(compiled):
    any_nan = tf.function(tf_search._any_nan, jit_compile=True) if compiled else tf_search._any_nan
    scores = np.random.default_rng(0).standard_normal((4, 3000)).astype(np.float32)
    scores[1, :10] = -np.inf  # banned tokens
    scores[2, 5], scores[2, 6] = np.inf, -np.inf  # a sum of NaN without a NaN: the exact test decides
    active = tf.constant([True, True, True, False])
    assert not bool(any_nan(tf.constant(scores), active))
    padded_row = scores.copy()
    padded_row[3, 7] = np.nan  # a row that pads the bucket does not count
    assert not bool(any_nan(tf.constant(padded_row), active))
    real_row = scores.copy()
    real_row[0, 2999] = np.nan
    assert bool(any_nan(tf.constant(real_row), active))


# ---- lengths and logits processors ------------------------------------------------------------------

# name -> (settings, the settings they change: the output must differ, so the test sees the option)
PROCESSORS = {
    "max_new_tokens": (dict(max_new_tokens=5), dict(max_new_tokens=20)),
    "min_length-beam": (dict(BEAM, min_length=12), BEAM),
    "min_new_tokens": (dict(GREEDY, min_new_tokens=12), GREEDY),
    "no_repeat_ngram_size-beam": (dict(BEAM, no_repeat_ngram_size=2), BEAM),
    "no_repeat_ngram_size-3": (dict(GREEDY, no_repeat_ngram_size=3), GREEDY),
    "repetition_penalty": (dict(GREEDY, repetition_penalty=1.8), GREEDY),
    "bad_words_ids-beam": (dict(BEAM, bad_words_ids=[[44, 44], [36], [14, 14, 97]]), BEAM),
    "forced_bos_token_id": (dict(GREEDY, forced_bos_token_id=7), GREEDY),
    "forced_eos_token_id-beam": (
        dict(num_beams=3, forced_eos_token_id=5, max_new_tokens=8),
        dict(num_beams=3, max_new_tokens=8),
    ),
    "renormalize_logits-bad_words-beam": (  # opus-mt's setting: renormalising after a ban changes beam scores
        dict(num_beams=3, max_new_tokens=12, bad_words_ids=[[36], [44, 44]], renormalize_logits=True),
        dict(num_beams=3, max_new_tokens=12, bad_words_ids=[[36], [44, 44]]),
    ),
}


@pytest.mark.parametrize("name", list(PROCESSORS))
def test_lengths_and_processors_match_hf_compiled(models, name):
    hf_model, tf_model = models
    settings, baseline = PROCESSORS[name]
    expected = hf_generate(hf_model, **settings)
    assert not np.array_equal(expected, hf_generate(hf_model, **baseline))
    assert_same_ids(westron_generate(tf_model, **settings), expected)


@pytest.mark.parametrize("name", ["no_repeat_ngram_size-beam", "bad_words_ids-beam", "forced_bos_token_id"])
def test_processors_match_hf_eager(models, name):
    hf_model, tf_model = models
    settings, _ = PROCESSORS[name]
    assert_same_ids(westron_generate(tf_model, eager=True, **settings), hf_generate(hf_model, **settings))


# ---- sampling -----------------------------------------------------------------------------------------

SAMPLE = dict(do_sample=True, num_return_sequences=3, max_new_tokens=12, top_k=20, top_p=0.9, temperature=1.5)


def test_seeded_sampling_is_reproducible(models):
    _, tf_model = models
    first = westron_generate(tf_model, seed=7, **SAMPLE)
    assert first.shape[0] == SOURCE_IDS.shape[0] * 3
    assert np.all(first[:, 0] == PAD) and np.all((first >= 0) & (first < VOCAB))
    assert_same_ids(westron_generate(tf_model, seed=7, **SAMPLE), first)
    assert not np.array_equal(westron_generate(tf_model, seed=8, **SAMPLE), first)
    assert len({tuple(row) for row in first[:3]}) > 1  # a sentence's samples differ


@pytest.mark.parametrize("eager", [True, False])
def test_tf_random_set_seed_reproduces_sampling_without_seed_argument(models, eager):
    """Without seed=, sampling draws its seed from TF's global RNG, so tf.random.set_seed(n) reproduces it."""
    _, tf_model = models

    def run(seed):
        tf.random.set_seed(seed)
        return westron_generate(tf_model, eager=eager, **SAMPLE)

    first = run(21)
    assert_same_ids(run(21), first)
    assert not np.array_equal(run(22), first)


def test_greedy_search_leaves_tf_global_rng_alone(models):
    _, tf_model = models
    tf.random.set_seed(4)
    expected = tf.random.uniform((3,)).numpy()
    tf.random.set_seed(4)
    westron_generate(tf_model, eager=True, **GREEDY)
    np.testing.assert_array_equal(tf.random.uniform((3,)).numpy(), expected)


def test_hf4_tf_seed_pair(models):
    """HF 4.x's TF generate took seed=[a, b]; [a, 0] is the seed a, and a bad pair is one clear line."""
    _, tf_model = models
    first = westron_generate(tf_model, seed=7, **SAMPLE)
    assert_same_ids(westron_generate(tf_model, seed=[7, 0], **SAMPLE), first)
    assert not np.array_equal(westron_generate(tf_model, seed=[7, 1], **SAMPLE), first)
    with pytest.raises(WestronError, match="pair of integers"):
        westron_generate(tf_model, seed=[7, -1], **SAMPLE)


def test_seeded_sampling_eager_equals_compiled(models):
    _, tf_model = models
    settings = dict(do_sample=True, max_new_tokens=6, top_k=0)
    compiled = westron_generate(tf_model, seed=3, **settings)
    assert_same_ids(westron_generate(tf_model, seed=3, eager=True, **settings), compiled)


def test_sampling_top_k_1_is_greedy(models):
    hf_model, tf_model = models
    ours = westron_generate(tf_model, do_sample=True, top_k=1, temperature=0.7, seed=1, **GREEDY)
    assert_same_ids(ours, hf_generate(hf_model, **GREEDY))


def test_beam_sampling_is_reproducible(models):
    _, tf_model = models
    settings = dict(do_sample=True, num_beams=2, max_new_tokens=8, eos_token_id=EOS)
    first = westron_generate(tf_model, seed=5, **settings)
    assert first.shape[0] == SOURCE_IDS.shape[0]
    assert_same_ids(westron_generate(tf_model, seed=5, **settings), first)


# ---- buckets and the compiled-function cache --------------------------------------------------------


def test_batches_in_one_bucket_share_one_compiled_function(models):
    hf_model, tf_model = models
    settings = dict(eos_token_id=EOS, max_new_tokens=9)
    functions = tf_search.compiled_functions(tf_model)
    before = set(functions)
    small = tuple(t.numpy() for t in random_batch(VOCAB, PAD, 0, batch=3, length=9, seed=1))  # bucket (4, 16)
    for ids, mask in [small, (SOURCE_IDS, SOURCE_MASK)]:
        assert_same_ids(westron_generate(tf_model, ids, mask, **settings), hf_generate(hf_model, ids, mask, **settings))
    new = set(functions) - before
    assert len(new) == 1
    (key,) = new
    assert key[:2] == (4, 16)
    assert functions[key].experimental_get_tracing_count() == 1
    # A batch of 5 falls in the next bucket: a second function.
    ids, mask = (t.numpy() for t in random_batch(VOCAB, PAD, 0, batch=5, length=7, seed=2))
    assert_same_ids(westron_generate(tf_model, ids, mask, **settings), hf_generate(hf_model, ids, mask, **settings))
    assert len(set(functions) - before) == 2


def test_seed_does_not_recompile(models):
    _, tf_model = models
    settings = dict(do_sample=True, max_new_tokens=6, top_k=0)
    for seed in (11, 12):
        westron_generate(tf_model, seed=seed, **settings)
    keys = [key for key in tf_search.compiled_functions(tf_model) if key[2].do_sample and key[2].max_length == 7]
    assert len(keys) == 1


@pytest.mark.parametrize(
    "length, bucket", [(1, 16), (16, 16), (17, 32), (33, 48), (49, 64), (65, 96), (100, 128), (129, 192), (300, 384)]
)
def test_bucket_length(length, bucket):
    assert tf_search.bucket_length(length) == bucket


def test_bucket_length_is_capped_by_the_position_table():
    assert tf_search.bucket_length(40, max_length=42) == 42
    assert tf_search.bucket_length(50, max_length=64) == 64


@pytest.mark.parametrize("batch, bucket", [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (17, 32), (32, 32), (33, 64)])
def test_bucket_batch_size(batch, bucket):
    assert tf_search.bucket_batch_size(batch) == bucket


# ---- the loop stops when every row has ended -----------------------------------------------------------


class CountingModel:
    """Delegates to a model and counts decode calls (eager mode only)."""

    def __init__(self, model):
        self.model, self.config, self.generation_config, self.calls = model, model.config, model.generation_config, 0

    def encode(self, *args, **kwargs):
        return self.model.encode(*args, **kwargs)

    def init_cache(self, *args):
        return self.model.init_cache(*args)

    def reorder_cache(self, *args):
        return self.model.reorder_cache(*args)

    def decode(self, *args, **kwargs):
        self.calls += 1
        return self.model.decode(*args, **kwargs)


@pytest.mark.parametrize(
    "settings", [dict(eos_token_id=44, max_new_tokens=20), dict(BEAM, eos_token_id=44)], ids=["greedy", "beam"]
)
def test_search_stops_once_every_row_has_ended(models, settings):
    hf_model, tf_model = models
    expected = hf_generate(hf_model, **settings)
    assert expected.shape[1] < 21  # every row ends early
    counting = CountingModel(tf_model)
    out = tf_search.generate(counting, SOURCE_IDS, SOURCE_MASK, eager=True, **settings).numpy()
    assert_same_ids(out, expected)
    if settings.get("num_beams", 1) == 1:
        assert counting.calls == expected.shape[1] - 1  # one step per generated token
    assert counting.calls < settings["max_new_tokens"]


# ---- invalid arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, ids",
    [
        (dict(num_beems=2), SOURCE_IDS),
        (dict(num_beams=2, num_return_sequences=3), SOURCE_IDS),
        (dict(num_return_sequences=2), SOURCE_IDS),
        (dict(max_new_tokens=0), SOURCE_IDS),
        (dict(max_new_tokens=100), SOURCE_IDS),  # past max_position_embeddings (64)
        (dict(bad_words_ids=[[VOCAB]]), SOURCE_IDS),
        (dict(do_sample=True, temperature=0.0), SOURCE_IDS),
        (dict(early_stopping="sometimes", num_beams=2), SOURCE_IDS),
        (dict(seed=-1), SOURCE_IDS),
        ({}, SOURCE_IDS[0]),  # one sentence must still be a batch
        ({}, SOURCE_IDS.astype(np.float32)),
        ({}, np.zeros((0, 5), np.int32)),
        ({}, np.full((2, 65), 5)),  # longer than max_position_embeddings
        ({}, np.full((2, 5), VOCAB)),  # not a token id
    ],
)
def test_invalid_arguments_raise_westron_error(models, kwargs, ids):
    _, tf_model = models
    with pytest.raises(WestronError):
        tf_model.generate(ids, **kwargs)


def test_attention_mask_must_match_input_ids(models):
    _, tf_model = models
    with pytest.raises(WestronError, match="attention_mask"):
        tf_model.generate(SOURCE_IDS, attention_mask=SOURCE_MASK[:, :5])


# ---- logits processors alone, against HF's classes (no model, eager) ---------------------------------


def _hf_processors(name: str, max_length: int):
    import transformers as lp  # the processors are public top-level names

    return {
        "repetition_penalty": [lp.RepetitionPenaltyLogitsProcessor(1.7)],
        "no_repeat_ngram_size": [lp.NoRepeatNGramLogitsProcessor(2)],
        "no_repeat_ngram_size_1": [lp.NoRepeatNGramLogitsProcessor(1)],
        "bad_words": [lp.NoBadWordsLogitsProcessor([[3], [4, 5], [6, 7, 8], [1]], eos_token_id=1)],
        "min_length": [lp.MinLengthLogitsProcessor(9, [1, 2])],
        "forced_eos": [lp.ForcedEOSTokenLogitsProcessor(max_length, [1])],
        "warpers": [lp.TemperatureLogitsWarper(0.6), lp.TopKLogitsWarper(7), lp.TopPLogitsWarper(0.8)],
        "beam_warpers": [lp.TopKLogitsWarper(1, min_tokens_to_keep=2), lp.TopPLogitsWarper(0.3, min_tokens_to_keep=2)],
        "renormalize": [lp.TopPLogitsWarper(0.5), lp.LogitNormalization()],
    }[name]


def _westron_settings(name: str, max_length: int):
    kwargs = {
        "repetition_penalty": dict(repetition_penalty=1.7),
        "no_repeat_ngram_size": dict(no_repeat_ngram_size=2),
        "no_repeat_ngram_size_1": dict(no_repeat_ngram_size=1),
        "bad_words": dict(bad_words_ids=[[3], [4, 5], [6, 7, 8], [1]]),
        "min_length": dict(min_length=9, eos_token_id=[1, 2]),
        "forced_eos": dict(forced_eos_token_id=1),
        "warpers": dict(do_sample=True, temperature=0.6, top_k=7, top_p=0.8),
        "beam_warpers": dict(do_sample=True, num_beams=2, top_k=1, top_p=0.3),
        "renormalize": dict(do_sample=True, top_k=0, top_p=0.5, renormalize_logits=True),
    }[name]
    base = dict(eos_token_id=1, pad_token_id=0, decoder_start_token_id=0, max_length=max_length)
    return resolve_generation_settings(None, {**base, **kwargs}, vocab_size=40)


@pytest.mark.parametrize(
    "name",
    [
        "repetition_penalty",
        "no_repeat_ngram_size",
        "no_repeat_ngram_size_1",
        "bad_words",
        "min_length",
        "forced_eos",
        "warpers",
        "beam_warpers",
        "renormalize",
    ],
)
@pytest.mark.parametrize("cur_len", [1, 2, 8, 11])
def test_process_scores_equals_hf_processors(name, cur_len):
    max_length, rows, vocab = 12, 6, 40
    rng = np.random.default_rng(cur_len)
    # Few distinct tokens, so n-grams and bad words repeat; places from cur_len on hold junk.
    sequences = rng.integers(3, 9, size=(rows, max_length)).astype(np.int32)
    sequences[:2, 1:cur_len] = 5  # a row of repeated tokens
    scores = (rng.standard_normal((rows, vocab)) * 3).astype(np.float32)
    expected = torch.as_tensor(scores)
    for processor in _hf_processors(name, max_length):
        expected = processor(torch.as_tensor(sequences[:, :cur_len], dtype=torch.long), expected)
    settings = _westron_settings(name, max_length)
    ours = tf_search.process_scores(tf.constant(scores), tf.constant(sequences), tf.constant(cur_len), settings)
    np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    # The junk past cur_len must not matter.
    sequences[:, cur_len:] = rng.integers(3, 9, size=(rows, max_length - cur_len))
    again = tf_search.process_scores(tf.constant(scores), tf.constant(sequences), tf.constant(cur_len), settings)
    np.testing.assert_array_equal(again.numpy(), ours.numpy())


def test_process_scores_changes_scores_for_each_processor():
    """The processor comparisons above are not vacuous: at cur_len 8 each one changes something."""
    rng = np.random.default_rng(8)
    sequences = rng.integers(3, 9, size=(6, 12)).astype(np.int32)
    sequences[:2, 1:8] = 5
    scores = tf.constant((rng.standard_normal((6, 40)) * 3).astype(np.float32))
    for name in ["repetition_penalty", "no_repeat_ngram_size", "bad_words", "min_length", "warpers", "renormalize"]:
        settings = _westron_settings(name, 12)
        processed = tf_search.process_scores(scores, tf.constant(sequences), tf.constant(8), settings)
        assert not np.array_equal(processed.numpy(), scores.numpy()), name
