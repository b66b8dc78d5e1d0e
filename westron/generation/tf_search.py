"""TensorFlow search: greedy search, sampling and beam search over a model's encode / init_cache / decode / reorder_cache.

The twin of torch_search.py: the same sections in the same order, the same function, state and
constant names, the same steps in the same order, so the two files diff line by line and a fix in
one shows where it goes in the other. What only TensorFlow has (buckets, compiled functions) sits
in its own section, where torch_search.py keeps what only PyTorch has (a key/value cache that grows).

One implementation serves both modes. `generate(..., eager=True)` runs it step by step in Python
(tf.while_loop executes eagerly), for debugging; the default runs the very same code as ONE
`tf.function(jit_compile=True)`: the encoder, a tf.while_loop over decoding steps with fixed-size
buffers (static shapes, no Python work per step) and the final selection. The loop stops as soon as
every row is finished. Batch size and source length are padded up to a few buckets and the compiled
functions are kept on the model per (bucket shapes, settings), so translating a file compiles a
handful of functions, not one per batch.

The ids are those of Hugging Face transformers' `generate` for the same settings: the same logits
processors in the same order (repetition penalty, no-repeat n-grams, bad words, min length, forced
BOS / EOS, then temperature, top-k, top-p when sampling), and beam search as HF 4.5x+ vectorised it
(2 * num_beams candidates per step, length penalty on finished hypotheses, the `early_stopping`
heuristics, -1e9 for impossible beams). Sampling uses stateless random ops (the Gumbel-max trick),
so a seed reproduces a result in eager and compiled mode alike, but not PyTorch's random stream.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from westron.errors import WestronError
from westron.generation.outputs import GenerateBeamEncoderDecoderOutput, GenerateEncoderDecoderOutput, split_steps
from westron.generation.utils import (
    DECODER_PROMPT_LENGTH,
    NAN_LOGITS_MESSAGE,
    BadWords,
    GenerationSettings,
    base_generation_config,
    best_hypothetical_length,
    can_infer_attention_mask,
    check_source,
    length_penalty_divisor,
    resolve_generation_settings,
    take_source_ids,
)
from westron.modeling_tf_utils import COMPILED_SEARCHES_ATTRIBUTE

NEG_INF = float("-inf")
# Hugging Face's beam search marks impossible beams with -1e9 (not -inf, so sums stay ordered).
BEAM_MASK = -1.0e9
# Vocabulary-wide top-k and argmax look at blocks of this many tokens first (_top_k, _argmax).
VOCAB_BLOCK = 32
# TensorFlow only: where the compiled searches are kept on a model.
_FUNCTIONS_ATTRIBUTE = COMPILED_SEARCHES_ATTRIBUTE


# ---- entry point ---------------------------------------------------------------------------------------


def generate(
    model,
    inputs=None,
    attention_mask=None,
    generation_config=None,
    seed: int | None = None,
    eager: bool = False,
    jit_compile: bool = True,
    **kwargs: Any,
) -> tf.Tensor:
    """Generated ids (batch * num_return_sequences, length) as an int32 tf.Tensor.

    Each row starts with decoder_start_token_id; finished rows are padded with pad_token_id; the
    batch is cut to its longest row. kwargs are GenerationConfig fields and override
    `generation_config` (default: the model's). `seed` makes sampling reproducible. `eager=True`
    runs the search step by step in Python; otherwise one compiled tf.function runs it
    (`jit_compile=False`: a plain TF graph instead of XLA).
    """
    input_ids = take_source_ids(inputs, kwargs)
    config = model.config
    settings = resolve_generation_settings(
        base_generation_config(generation_config, model),
        kwargs,
        seed=seed,
        vocab_size=getattr(config, "decoder_vocab_size", None) or getattr(config, "vocab_size", None),
        max_position_embeddings=getattr(config, "max_position_embeddings", None),
    )
    ids, mask = _prepare_inputs(input_ids, attention_mask, settings)
    batch, source_length = ids.shape
    max_positions = getattr(config, "max_position_embeddings", None)
    empty_rows = np.flatnonzero(mask.sum(axis=1) == 0)
    check_source(int(ids.min()), int(ids.max()), source_length, empty_rows, getattr(config, "vocab_size", None), max_positions)
    seed_pair = _seed_pair(settings.seed, settings.do_sample)
    settings = dataclasses.replace(settings, seed=None)  # the seed is an input, not part of the compiled program
    if eager:
        ids, mask, num_rows = tf.constant(ids), tf.constant(mask), tf.constant(batch)
        sequences, length, nan_seen, outputs = run_search(model, settings, ids, mask, num_rows, seed_pair)
    else:
        bucket_batch = bucket_batch_size(batch)
        bucket_source = bucket_length(source_length, max_positions)
        # Padding rows repeat the first sentence (a valid input); they start finished and are dropped.
        ids = np.concatenate([ids, np.repeat(ids[:1], bucket_batch - batch, axis=0)])
        mask = np.concatenate([mask, np.repeat(mask[:1], bucket_batch - batch, axis=0)])
        pad = settings.pad_token_id if settings.pad_token_id is not None and settings.pad_token_id >= 0 else 0
        ids = np.pad(ids, ((0, 0), (0, bucket_source - source_length)), constant_values=pad)
        mask = np.pad(mask, ((0, 0), (0, bucket_source - source_length)))
        function = compiled_search(model, settings, bucket_batch, bucket_source, jit_compile=jit_compile)
        sequences, length, nan_seen, outputs = function(
            tf.constant(ids), tf.constant(mask), tf.constant(batch, tf.int32), seed_pair
        )
    if bool(nan_seen):
        raise WestronError(NAN_LOGITS_MESSAGE)
    sequences = sequences[: batch * settings.num_return_sequences, : int(length)]
    if settings.return_dict_in_generate:
        return _output_object(settings, sequences, outputs, batch, source_length)
    return sequences


def _prepare_inputs(input_ids, attention_mask, settings: GenerationSettings) -> tuple[np.ndarray, np.ndarray]:
    ids = _to_numpy(input_ids, "input_ids")
    if ids.ndim != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise WestronError(f"input_ids must be a non-empty (batch, length) array, got shape {ids.shape}")
    if attention_mask is None:  # padding is found from pad_token_id, as in the PyTorch search (else all ones)
        if can_infer_attention_mask(settings.pad_token_id, settings.eos_token_ids):
            mask = (ids != settings.pad_token_id).astype(np.int32)
        else:
            mask = np.ones_like(ids)
    else:
        mask = _to_numpy(attention_mask, "attention_mask")
        if mask.shape != ids.shape:
            raise WestronError(f"attention_mask has shape {mask.shape} but input_ids {ids.shape}")
    return ids.astype(np.int32), mask.astype(np.int32)


def _to_numpy(value, name: str) -> np.ndarray:
    if isinstance(value, tf.Tensor):
        value = value.numpy()
    elif hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except ValueError:  # ragged lists
        raise WestronError(f"{name} must be a rectangular (batch, length) array of token ids") from None
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise WestronError(f"{name} must hold integers, got {array.dtype}")
    return array


def _seed_pair(seed: int | None, do_sample: bool) -> tf.Tensor:
    """A stateless RNG seed (2,) int32, an input of the compiled search (no recompilation per seed).

    Without `seed=`, sampling draws one from TensorFlow's global RNG, so `tf.random.set_seed(n)`
    (or keras.utils.set_random_seed) before generate reproduces it, as users of HF's TF models
    expect; greedy and beam search draw nothing, leaving the global RNG where it was.
    """
    if seed is None:
        if not do_sample:
            return tf.zeros((2,), tf.int32)
        return tf.random.uniform((2,), maxval=2**31 - 1, dtype=tf.int32)
    return tf.constant([seed % 2**31, seed // 2**31 % 2**31], tf.int32)


def _output_object(s: GenerationSettings, sequences: tf.Tensor, outputs: dict, batch: int, source_length: int):
    """HF 4.x's output object from the search's stacked outputs, cut to the real rows, source
    positions, steps and keys (the compiled search pads batch and source to buckets)."""
    rows = batch * s.expand_size  # rows of the per-step outputs
    steps = int(outputs.pop("steps"))
    fields = {}
    if "beam_indices" in outputs:
        fields["beam_indices"] = outputs.pop("beam_indices")[: batch * s.num_return_sequences, : sequences.shape[1] - 1]
    if "sequences_scores" in outputs:
        fields["sequences_scores"] = outputs.pop("sequences_scores")[: batch * s.num_return_sequences]
    if "encoder_attentions" in outputs:
        cut = lambda a: a[:batch, :, :source_length, :source_length]  # noqa: E731
        fields["encoder_attentions"] = tuple(cut(a) for a in outputs.pop("encoder_attentions"))
    if "encoder_hidden_states" in outputs:
        fields["encoder_hidden_states"] = tuple(h[:batch, :source_length] for h in outputs.pop("encoder_hidden_states"))
    per_step = split_steps(outputs, steps)  # what remains is per step: (max_length - 1, rows, ...)
    for name in ("scores", "logits"):
        if name in per_step:
            fields[name] = tuple(t[:rows] for t in per_step[name])
    if "decoder_attentions" in per_step:  # keys 0 .. step (the buffer holds max_length - 1 positions)
        fields["decoder_attentions"] = tuple(
            tuple(a[:rows, :, :, : step + 1] for a in layers) for step, layers in enumerate(per_step["decoder_attentions"])
        )
        fields["cross_attentions"] = tuple(
            tuple(a[:rows, :, :, :source_length] for a in layers) for layers in per_step["cross_attentions"]
        )
    if "decoder_hidden_states" in per_step:
        fields["decoder_hidden_states"] = tuple(tuple(h[:rows] for h in layers) for layers in per_step["decoder_hidden_states"])
    output_class = GenerateBeamEncoderDecoderOutput if s.num_beams > 1 else GenerateEncoderDecoderOutput
    return output_class(sequences=sequences, **fields)



# ---- the search ----------------------------------------------------------------------------------------


def run_search(model, settings: GenerationSettings, input_ids, attention_mask, num_rows, seed):
    """Encodes once, then greedy search, sampling or beam search. Runs eagerly and inside tf.function.

    input_ids, attention_mask: (B, S) int32; num_rows: how many rows are real (the others pad a
    bucket: they start finished and never keep the loop going); seed: (2,) int32. Returns
    (sequences (B * num_return_sequences, max_length), the length to trim them to, whether a real
    row's scores held a NaN, the outputs asked for: {} unless return_dict_in_generate; per-step
    outputs stacked over max_length - 1 steps, of which the first `steps` ran).
    """
    s = settings
    encoded = model.encode(
        input_ids, attention_mask, output_attentions=s.output_attentions, output_hidden_states=s.output_hidden_states
    )
    encoder_states = encoded.last_hidden_state  # (B, S, D)
    item_active = tf.range(tf.shape(input_ids)[0]) < num_rows
    # Self-attention positions 0 .. max_length - 2: the last token is never fed back.
    cache = model.init_cache(encoder_states, s.max_length - 1)
    if s.expand_size > 1:  # the beams / samples of a sentence share its encoder states
        repeat = lambda tensor: tf.repeat(tensor, s.expand_size, axis=0)  # noqa: E731
        encoder_states, attention_mask = repeat(encoder_states), repeat(attention_mask)
        cache = tf.nest.map_structure(repeat, cache)
    records = _new_records(s, num_layers=len(cache))
    if s.num_beams > 1:
        sequences, length, nan_seen, records, outputs = _beam_search(
            model, s, encoder_states, attention_mask, cache, item_active, seed, records
        )
    else:
        row_active = tf.repeat(item_active, s.expand_size) if s.expand_size > 1 else item_active
        sequences, length, nan_seen, records, outputs = _greedy_or_sample(
            model, s, encoder_states, attention_mask, cache, row_active, seed, records
        )
    outputs.update(_stack_records(records))
    if s.output_attentions:
        outputs["encoder_attentions"] = encoded.attentions
    if s.output_hidden_states:
        outputs["encoder_hidden_states"] = encoded.hidden_states
    return sequences, length, nan_seen, outputs


# ---- outputs asked for (return_dict_in_generate) ------------------------------------------------------


def _new_records(s: GenerationSettings, num_layers: int) -> dict:
    """Empty per-step TensorArrays (max_length - 1 steps) for the outputs asked for; none when none was."""
    new = lambda: tf.TensorArray(tf.float32, size=s.max_length - 1)  # noqa: E731
    records = {}
    if s.output_scores:
        records["scores"] = new()
    if s.output_logits:
        records["logits"] = new()
    if s.output_attentions:
        records["decoder_attentions"] = tuple(new() for _ in range(num_layers))
        records["cross_attentions"] = tuple(new() for _ in range(num_layers))
    if s.output_hidden_states:
        records["decoder_hidden_states"] = tuple(new() for _ in range(num_layers + 1))
    return records


def _record_step(records: dict, scores: tf.Tensor, logits: tf.Tensor, decoder_outputs, step: tf.Tensor) -> dict:
    """Writes one step: scores, logits (rows, vocab) float32; the decoder's per-layer outputs.

    The self-attention weights cover the whole cache buffer (rows, heads, 1, max_length - 1): keys
    past `step` hold 0 and are cut off after the search.
    """
    records = dict(records)
    write = lambda arrays, values: tuple(a.write(step, tf.cast(v, tf.float32)) for a, v in zip(arrays, values))  # noqa: E731
    if "scores" in records:
        records["scores"] = records["scores"].write(step, scores)
    if "logits" in records:
        records["logits"] = records["logits"].write(step, logits)
    if "decoder_attentions" in records:
        records["decoder_attentions"] = write(records["decoder_attentions"], decoder_outputs.attentions)
        records["cross_attentions"] = write(records["cross_attentions"], decoder_outputs.cross_attentions)
    if "decoder_hidden_states" in records:
        records["decoder_hidden_states"] = write(records["decoder_hidden_states"], decoder_outputs.hidden_states)
    return records


def _stack_records(records: dict) -> dict:
    """TensorArrays -> tensors (max_length - 1 steps, ...): what a tf.function can return."""
    return {name: tf.nest.map_structure(lambda array: array.stack(), value) for name, value in records.items()}



# ---- logits processors (graph code: static settings, a tensor cur_len) -------------------------------


def process_scores(
    scores: tf.Tensor, sequences: tf.Tensor, cur_len: tf.Tensor, settings: GenerationSettings
) -> tf.Tensor:
    """HF's logits processors, then its warpers when sampling, in HF's order; only the enabled ones.

    scores (N, vocab) float32: logits for greedy search and sampling, log-probabilities for beam
    search. sequences (N, max_length): the tokens so far, of which only the first cur_len count.
    """
    s = settings
    if s.repetition_penalty != 1.0:
        scores = penalize_repetitions(scores, sequences, cur_len, s.repetition_penalty)
    if s.no_repeat_ngram_size:
        scores = ban_repeated_ngrams(scores, sequences, cur_len, s.no_repeat_ngram_size)
    if s.bad_words is not None:
        scores = ban_bad_words(scores, sequences, cur_len, s.bad_words)
    if s.min_length > DECODER_PROMPT_LENGTH and s.eos_token_ids:  # cur_len >= 1 always: min_length 1 bans nothing
        scores = ban_eos_before_min_length(scores, cur_len, s.min_length, s.eos_token_ids)
    if s.forced_bos_token_id is not None:  # the first generated token
        scores = force_tokens_at(scores, cur_len, 1, [s.forced_bos_token_id])
    if s.forced_eos_token_ids is not None:  # the last one
        scores = force_tokens_at(scores, cur_len, s.max_length - 1, s.forced_eos_token_ids)
    if s.do_sample:
        if s.temperature != 1.0:
            scores = apply_temperature(scores, s.temperature)
        if s.top_k:
            scores = keep_top_k(scores, s.top_k, s.min_tokens_to_keep)
        if s.top_p < 1.0:
            scores = keep_top_p(scores, s.top_p, s.min_tokens_to_keep)
    if s.renormalize_logits:  # the processed scores become log-probabilities again
        scores = tf.nn.log_softmax(scores, axis=-1)
    return scores


def penalize_repetitions(scores: tf.Tensor, sequences: tf.Tensor, cur_len: tf.Tensor, penalty: float) -> tf.Tensor:
    """Divides positive scores (multiplies negative ones) of every token already in the sequence."""
    seen = _token_presence(sequences, tf.range(sequences.shape[1])[None, :] < cur_len, scores.shape[-1])
    penalized = tf.where(scores < 0, scores * penalty, scores / penalty)
    return tf.where(seen, penalized, scores)


def ban_repeated_ngrams(scores: tf.Tensor, sequences: tf.Tensor, cur_len: tf.Tensor, ngram_size: int) -> tf.Tensor:
    """Bans every token that would complete an n-gram the sequence already contains (HF's NoRepeatNGram)."""
    n, windows = ngram_size, sequences.shape[1] - ngram_size + 1  # static: every n-gram start in the buffer
    if windows <= 0:
        return scores
    # The window starting at j is complete iff j + n <= cur_len; it bans its last token when its
    # first n - 1 tokens equal the last n - 1 tokens so far.
    matches = (tf.range(windows) + n <= cur_len)[None, :]
    for k in range(n - 1):
        prefix_k = tf.gather(sequences, tf.maximum(cur_len - (n - 1) + k, 0), axis=1)  # (N,)
        matches = tf.logical_and(matches, tf.equal(sequences[:, k : k + windows], prefix_k[:, None]))
    banned = _token_presence(sequences[:, n - 1 : n - 1 + windows], matches, scores.shape[-1])
    return tf.where(banned, NEG_INF, scores)


def ban_bad_words(scores: tf.Tensor, sequences: tf.Tensor, cur_len: tf.Tensor, bad_words: BadWords) -> tf.Tensor:
    """Bans single tokens always, and the last token of a multi-token bad word after its prefix."""
    vocab_size = scores.shape[-1]
    single = np.zeros((1, vocab_size), dtype=bool)
    single[0, list(bad_words.single)] = True
    banned = tf.constant(single)
    for prefixes, last in bad_words.multi:
        k = len(prefixes[0])
        tail = tf.gather(sequences, tf.maximum(cur_len - k + tf.range(k), 0), axis=1)  # (N, k)
        matches = tf.reduce_all(tf.equal(tail[:, None, :], tf.constant(prefixes, tf.int32)[None]), axis=-1)  # (N, W)
        matches = tf.logical_and(matches, cur_len >= k)
        last_tokens = tf.one_hot(last, vocab_size, dtype=tf.float32)  # (W, vocab)
        banned = tf.logical_or(banned, tf.matmul(tf.cast(matches, tf.float32), last_tokens) > 0)
    return tf.where(banned, NEG_INF, scores)


def ban_eos_before_min_length(
    scores: tf.Tensor, cur_len: tf.Tensor, min_length: int, eos_token_ids: Sequence[int]
) -> tf.Tensor:
    """No eos while the sequence (decoder start token included) is shorter than min_length."""
    eos = _one_hot_row(eos_token_ids, scores.shape[-1], True, False)
    return tf.where(tf.logical_and(cur_len < min_length, eos), NEG_INF, scores)


def force_tokens_at(scores: tf.Tensor, cur_len: tf.Tensor, length: int, token_ids: Sequence[int]) -> tf.Tensor:
    """At one sequence length, every token but the forced one(s) gets -inf and they get 0.

    force_tokens_at(scores, cur_len, 1, [bos]) is forced_bos_token_id (the first generated token);
    force_tokens_at(scores, cur_len, max_length - 1, eos) is forced_eos_token_id (the last one).
    """
    forced = _one_hot_row(token_ids, scores.shape[-1], 0.0, NEG_INF).astype(np.float32)
    return tf.where(cur_len == length, forced, scores)


def apply_temperature(scores: tf.Tensor, temperature: float) -> tf.Tensor:
    """Divides the scores by the temperature (above 1 flattens the distribution, below 1 sharpens it)."""
    return scores / temperature


def keep_top_k(scores: tf.Tensor, top_k: int, min_tokens_to_keep: int = 1) -> tf.Tensor:
    """Keeps the k best tokens (ties with the k-th included)."""
    k = min(max(top_k, min_tokens_to_keep), scores.shape[-1])
    kth_best = tf.math.top_k(scores, k=k).values[:, -1:]
    return tf.where(scores < kth_best, NEG_INF, scores)


def keep_top_p(scores: tf.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> tf.Tensor:
    """Nucleus filtering as HF does it: drop the tokens whose ascending cumulative probability is <= 1 - top_p."""
    vocab_size = scores.shape[-1]
    order = tf.argsort(scores, axis=-1, direction="ASCENDING", stable=True)
    cumulative = tf.cumsum(tf.nn.softmax(tf.gather(scores, order, batch_dims=1), axis=-1), axis=-1)
    remove_sorted = tf.logical_and(cumulative <= 1 - top_p, tf.range(vocab_size) < vocab_size - min_tokens_to_keep)
    remove = tf.gather(remove_sorted, tf.argsort(order, axis=-1), batch_dims=1)  # back to vocabulary order
    return tf.where(remove, NEG_INF, scores)


def _token_presence(tokens: tf.Tensor, valid: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """(N, W) tokens and a broadcastable validity mask -> (N, vocab) bool: token v occurs at a valid place.

    Invalid places (and ids past the vocabulary) go to a spare column that is cut off at the end.
    """
    valid = tf.broadcast_to(valid, tf.shape(tokens))
    ids = tf.where(valid, tf.minimum(tokens, vocab_size), vocab_size)
    rows = tf.broadcast_to(tf.range(tf.shape(tokens)[0])[:, None], tf.shape(tokens))
    indices = tf.reshape(tf.stack([rows, ids], axis=-1), (-1, 2))
    counts = tf.scatter_nd(indices, tf.ones(tf.shape(indices)[:1], tf.int32), (tf.shape(tokens)[0], vocab_size + 1))
    return counts[:, :vocab_size] > 0


def _one_hot_row(token_ids, vocab_size: int, on, off) -> np.ndarray:
    row = np.full((1, vocab_size), off)
    row[0, [t for t in token_ids if t < vocab_size]] = on
    return row


# ---- greedy search and sampling ------------------------------------------------------------------------


def _greedy_or_sample(model, s: GenerationSettings, encoder_states, attention_mask, cache, row_active, seed, records):
    """Greedy search or multinomial sampling: one token per row and step until every row has ended."""
    rows = tf.shape(encoder_states)[0]
    positions = tf.range(s.max_length)[None, :]
    start = tf.fill([rows], s.decoder_start_token_id)
    # Places past the end are never returned (the output is cut at the final length).
    sequences = tf.where(positions == 0, start[:, None], s.pad_token_id or 0)

    def keep_going(cur_len, tokens, sequences, unfinished, cache, nan_seen, records):
        return tf.logical_and(cur_len < s.max_length, tf.reduce_any(unfinished))

    def step(cur_len, tokens, sequences, unfinished, cache, nan_seen, records):
        logits, cache, decoder_outputs = model.decode(
            tokens[:, None],
            encoder_states,
            attention_mask,
            cache,
            cur_len - 1,
            output_attentions=s.output_attentions,
            output_hidden_states=s.output_hidden_states,
        )
        logits = tf.cast(logits[:, -1, :], tf.float32)  # (rows, vocab)
        scores = logits
        nan_seen = tf.logical_or(nan_seen, _any_nan(scores, row_active))
        if s.uses_processors:
            scores = process_scores(scores, sequences, cur_len, s)
        if records:
            records = _record_step(records, scores, logits, decoder_outputs, cur_len - 1)
        if s.do_sample:  # argmax(scores + Gumbel noise) samples softmax(scores)
            tokens = tf.argmax(scores + _gumbel(tf.shape(scores), seed, cur_len), axis=-1, output_type=tf.int32)
        else:
            tokens = _argmax(scores)
        if s.eos_token_ids:  # a finished row gets padding; a row finishes on any eos token
            tokens = tf.where(unfinished, tokens, s.pad_token_id)
            unfinished = tf.logical_and(unfinished, tf.logical_not(_is_eos(tokens, s.eos_token_ids)))
        sequences = tf.where(positions == cur_len, tokens[:, None], sequences)
        cur_len = cur_len + 1
        return cur_len, tokens, sequences, unfinished, cache, nan_seen, records

    cur_len, _, sequences, _, _, nan_seen, records = tf.while_loop(
        keep_going,
        step,
        (tf.constant(1), start, sequences, row_active, cache, tf.constant(False), records),
        maximum_iterations=s.max_length - 1,
    )
    return sequences, cur_len, nan_seen, records, {"steps": cur_len - 1} if s.return_dict_in_generate else {}


# ---- beam search ---------------------------------------------------------------------------------------


def _beam_search(model, s: GenerationSettings, encoder_states, attention_mask, cache, item_active, seed, records):
    """HF's vectorised beam search (and beam sampling): same candidates, scores, tie-breaks and stopping rule.

    Per sentence: `num_beams` running hypotheses, and the best `num_beams` finished ones with their
    length-penalised scores. Each step keeps the best 2 * num_beams continuations (so num_beams
    stay alive even if the best ones all end in eos); the finished ones among the best num_beams
    join the finished pool. With return_dict_in_generate it also tracks, per hypothesis, the
    beam_indices: which row of each step's scores its tokens came from (-1 after the end).
    Rows that pad a bucket (not `item_active`) start settled and never keep the loop going.
    """
    num_beams, max_length, keep = s.num_beams, s.max_length, s.beams_to_keep
    top_beams = tf.range(keep) < num_beams  # only the best num_beams candidates may finish
    batch = tf.shape(item_active)[0]
    row_offset = tf.range(batch)[:, None] * num_beams  # (batch, 1): a sentence's first row
    active = item_active[:, None]
    positions = tf.range(max_length)[None, None, :]
    # Divisors computed in Python doubles and rounded once, like HF's `tensor / length ** penalty`.
    divisor = tf.constant(
        [1.0] + [length_penalty_divisor(n, s.length_penalty) for n in range(1, max_length + 1)], tf.float32
    )
    best_length = tf.constant(  # the length the early-stopping bound assumes, by cur_len
        [
            max(1, best_hypothetical_length(n, max_length, s.early_stopping, s.length_penalty))
            for n in range(max_length + 1)
        ]
    )

    running = tf.where(
        positions == 0, s.decoder_start_token_id, tf.fill([batch, num_beams, max_length], s.beam_fill_token_id)
    )
    state = dict(
        cur_len=tf.constant(1),
        tokens=tf.fill([batch * num_beams], s.decoder_start_token_id),  # each beam's last token
        running=running,
        # Only the first beam starts alive, so the first step does not pick the same token num_beams times.
        running_scores=tf.concat([tf.zeros([batch, 1]), tf.fill([batch, num_beams - 1], BEAM_MASK)], axis=1),
        finished=running,  # finished hypotheses, best first
        finished_scores=tf.fill([batch, num_beams], BEAM_MASK),
        is_finished=tf.zeros([batch, num_beams], tf.bool),
        finished_lengths=tf.zeros([batch, num_beams], tf.int32),  # generated tokens, eos included
        may_improve=active,  # HF's is_early_stop_heuristic_unsatisfied; padding rows start settled
        keep_going=tf.constant(True),
        nan_seen=tf.constant(False),
        cache=cache,
        records=records,
    )
    track = s.return_dict_in_generate
    if track:  # (batch, beams, max_length - 1): the row of scores each token came from, -1 after the end
        state["running_indices"] = tf.fill([batch, num_beams, max_length - 1], -1)
        state["finished_indices"] = state["running_indices"]

    def keep_going(state):
        return state["keep_going"]

    def step(state):
        cur_len, tokens, cache, records = state["cur_len"], state["tokens"], state["cache"], state["records"]
        running, running_scores, may_improve = state["running"], state["running_scores"], state["may_improve"]
        finished, finished_scores = state["finished"], state["finished_scores"]
        is_finished, finished_lengths = state["is_finished"], state["finished_lengths"]
        logits, cache, decoder_outputs = model.decode(
            tokens[:, None],
            encoder_states,
            attention_mask,
            cache,
            cur_len - 1,
            output_attentions=s.output_attentions,
            output_hidden_states=s.output_hidden_states,
        )
        logits = logits[:, -1, :]
        nan_seen = tf.logical_or(state["nan_seen"], _any_nan(logits, tf.repeat(item_active, num_beams)))
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)  # (batch * beams, vocab)
        vocab_size = log_probs.shape[-1]
        if s.uses_processors:
            log_probs = process_scores(log_probs, tf.reshape(running, [-1, max_length]), cur_len, s)
        if records:
            records = _record_step(records, log_probs, tf.cast(logits, tf.float32), decoder_outputs, cur_len - 1)
        log_probs = tf.reshape(log_probs, [batch, num_beams, vocab_size])

        # The best `keep` continuations over all beams of a sentence (or `keep` samples without replacement).
        if s.do_sample:  # argmax(scores + Gumbel noise) samples softmax(scores); top-k of it, without replacement
            log_probs = tf.reshape(log_probs + running_scores[:, :, None], [batch, num_beams * vocab_size])
            candidates = tf.math.top_k(log_probs + _gumbel(tf.shape(log_probs), seed, cur_len), k=keep).indices
            candidate_scores = tf.gather(log_probs, candidates, batch_dims=1)
            # Best first, as HF 4.x and HF >= 5.24 order them: only the first num_beams may finish.
            order = tf.argsort(candidate_scores, axis=-1, direction="DESCENDING", stable=True)
            candidate_scores = tf.gather(candidate_scores, order, batch_dims=1)
            candidates = tf.gather(candidates, order, batch_dims=1)
        else:
            candidate_scores, candidates = _best_continuations(log_probs, running_scores, keep)
        source_beam, candidate_tokens = candidates // vocab_size, candidates % vocab_size  # (batch, keep)
        candidate_sequences = tf.gather(running, source_beam, batch_dims=1)  # (batch, keep, max_length)
        candidate_sequences = tf.where(positions == cur_len, candidate_tokens[:, :, None], candidate_sequences)
        ended = tf.logical_or(_is_eos(candidate_tokens, s.eos_token_ids), cur_len + 1 >= max_length)
        if track:
            candidate_indices = tf.gather(state["running_indices"], source_beam, batch_dims=1)  # (batch, keep, max_length - 1)
            source_row = source_beam + row_offset
            source_row.set_shape(source_beam.shape)  # a batch of 1 would lose its static size (a loop variable's)
            candidate_indices = tf.where(positions[:, :, :-1] == cur_len - 1, source_row[:, :, None], candidate_indices)

        # The best candidates that did not end keep running.
        alive_scores = candidate_scores + tf.cast(ended, tf.float32) * BEAM_MASK
        next_beams = tf.math.top_k(alive_scores, k=num_beams).indices  # (batch, beams)
        running = tf.gather(candidate_sequences, next_beams, batch_dims=1)
        running_scores = tf.gather(alive_scores, next_beams, batch_dims=1)
        cache_rows = tf.reshape(tf.gather(source_beam, next_beams, batch_dims=1) + row_offset, [-1])
        tokens = tf.reshape(tf.gather(candidate_tokens, next_beams, batch_dims=1), [-1])  # TF only: the loop state
        if track:
            running_indices = tf.gather(candidate_indices, next_beams, batch_dims=1)

        # Candidates among the top num_beams that ended join the finished hypotheses if they score better
        # (each +BEAM_MASK term below rules a candidate out, in HF's order of float additions).
        just_finished = tf.logical_and(ended, top_beams[None, :])
        penalized_scores = candidate_scores / divisor[cur_len]
        if s.early_stopping is True:
            pool_full = tf.reduce_all(is_finished, axis=-1, keepdims=True)
            penalized_scores = penalized_scores + tf.cast(pool_full, tf.float32) * BEAM_MASK
        penalized_scores = penalized_scores + tf.cast(tf.logical_not(may_improve), tf.float32) * BEAM_MASK
        penalized_scores = penalized_scores + tf.cast(tf.logical_not(just_finished), tf.float32) * BEAM_MASK
        merged = tf.math.top_k(tf.concat([finished_scores, penalized_scores], axis=1), k=num_beams).indices
        pick = lambda old, new: tf.gather(tf.concat([old, new], axis=1), merged, batch_dims=1)  # noqa: E731
        finished = pick(finished, candidate_sequences)
        finished_scores = pick(finished_scores, penalized_scores)
        is_finished = pick(is_finished, just_finished)
        new_lengths = tf.fill(tf.shape(candidate_tokens), cur_len)
        finished_lengths = pick(finished_lengths, new_lengths)
        if track:
            finished_indices = pick(state["finished_indices"], candidate_indices)

        cur_len = cur_len + 1

        # Can the best running beam still beat the worst finished hypothesis? (HF's early-stopping heuristic.)
        best_running = running_scores[:, :1] / divisor[best_length[cur_len]]
        worst_finished = tf.where(is_finished, tf.reduce_min(finished_scores, axis=1, keepdims=True), BEAM_MASK)
        may_improve = tf.logical_and(may_improve, tf.reduce_any(best_running > worst_finished, axis=-1, keepdims=True))
        keep_going = tf.logical_and(tf.reduce_any(may_improve), tf.logical_not(_all_real(ended, active)))
        if s.early_stopping is True:  # stop once every sentence has num_beams finished hypotheses
            keep_going = tf.logical_and(keep_going, tf.logical_not(_all_real(is_finished, active)))
        cache = model.reorder_cache(cache, cache_rows)

        new_state = dict(
            cur_len=cur_len,
            tokens=tokens,
            running=running,
            running_scores=running_scores,
            finished=finished,
            finished_scores=finished_scores,
            is_finished=is_finished,
            finished_lengths=finished_lengths,
            may_improve=may_improve,
            keep_going=keep_going,
            nan_seen=nan_seen,
            cache=cache,
            records=records,
        )
        if track:
            new_state.update(running_indices=running_indices, finished_indices=finished_indices)
        return (new_state,)

    (state,) = tf.while_loop(keep_going, step, (state,), maximum_iterations=max_length - 1)
    n = s.num_return_sequences
    length = 1 + tf.reduce_max(tf.where(active, state["finished_lengths"][:, :n], 0))
    outputs = {}
    if track:
        outputs["steps"] = state["cur_len"] - 1
        outputs["beam_indices"] = tf.reshape(state["finished_indices"][:, :n], [-1, max_length - 1])
    if s.output_scores:
        outputs["sequences_scores"] = tf.reshape(state["finished_scores"][:, :n], [-1])
    return tf.reshape(state["finished"][:, :n], [-1, max_length]), length, state["nan_seen"], state["records"], outputs


# ---- step helpers --------------------------------------------------------------------------------------


def _best_continuations(log_probs: tf.Tensor, running_scores: tf.Tensor, keep: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The `keep` best running score + log-prob over all beams x vocabulary of each sentence, best first.

    log_probs (batch, beams, vocab), running_scores (batch, beams) -> scores (batch, keep) and flat
    indices beam * vocab + token (batch, keep): the top-k of HF's (batch, beams * vocab) sums, taken
    from each beam's own top `keep` (the sentence's best `keep` are among them), so the full sum is
    never written: one pass over the vocabulary fewer per step.
    """
    batch, num_beams, vocab_size = tf.shape(log_probs)[0], log_probs.shape[1], log_probs.shape[2]
    beam_scores, beam_tokens = _top_k(log_probs, keep)  # (batch, beams, keep)
    sums = tf.reshape(beam_scores + running_scores[:, :, None], [batch, num_beams * keep])
    candidate_scores, picked = tf.math.top_k(sums, k=keep)  # (batch, keep)
    candidates = picked // keep * vocab_size + tf.gather(tf.reshape(beam_tokens, [batch, -1]), picked, batch_dims=1)
    return candidate_scores, candidates


def _top_k(scores: tf.Tensor, k: int) -> tuple[tf.Tensor, tf.Tensor]:
    """tf.math.top_k(scores, k) over the vocabulary: (..., vocab) -> values, indices (..., k), best first.

    Why not tf.math.top_k itself: over a whole row XLA runs it as a scalar loop on the CPU (21 ms for
    32 x 4 rows of 58k logits; 4.9 ms this way). The k best tokens lie in the k blocks of
    VOCAB_BLOCK tokens with the highest maxima (any other block has k better tokens ahead of its
    best), and block maxima are one vectorised pass; the top-k is then taken over those k blocks only.
    """
    vocab_size = scores.shape[-1]
    if vocab_size < 2 * k * VOCAB_BLOCK:
        return tf.math.top_k(scores, k=k)
    maxima, head = _vocab_blocks(scores)
    positions = _block_positions(tf.math.top_k(maxima, k=k).indices, head, vocab_size)  # (..., k * VOCAB_BLOCK + tail)
    batch_dims = len(scores.shape) - 1
    values, picked = tf.math.top_k(tf.gather(scores, positions, batch_dims=batch_dims), k=k)
    return values, tf.gather(positions, picked, batch_dims=batch_dims)


def _argmax(scores: tf.Tensor) -> tf.Tensor:
    """tf.argmax(scores, axis=-1), the first best token on ties: (..., vocab) -> (...) int32.

    Through the best block as _top_k (2.0 ms -> 1.0 ms for 32 rows of 58k logits under XLA on the
    CPU); the first block holding the maximum, then the first position in it, is the first maximum overall.
    """
    vocab_size = scores.shape[-1]
    if vocab_size < 2 * VOCAB_BLOCK:
        return tf.argmax(scores, axis=-1, output_type=tf.int32)
    maxima, head = _vocab_blocks(scores)
    positions = _block_positions(tf.argmax(maxima, axis=-1, output_type=tf.int32)[..., None], head, vocab_size)
    batch_dims = len(scores.shape) - 1
    best = tf.argmax(tf.gather(scores, positions, batch_dims=batch_dims), axis=-1, output_type=tf.int32)
    return tf.gather(positions, best[..., None], batch_dims=batch_dims)[..., 0]


def _vocab_blocks(scores: tf.Tensor) -> tuple[tf.Tensor, int]:
    """The maxima of the whole blocks of VOCAB_BLOCK tokens (..., blocks) and how many tokens they
    cover (the head); the tokens after the head (fewer than a block) are the tail."""
    blocks = scores.shape[-1] // VOCAB_BLOCK
    head = blocks * VOCAB_BLOCK
    leading = tf.shape(scores)[:-1]
    return tf.reduce_max(tf.reshape(scores[..., :head], tf.concat([leading, [blocks, VOCAB_BLOCK]], 0)), axis=-1), head


def _block_positions(blocks: tf.Tensor, head: int, vocab_size: int) -> tf.Tensor:
    """Token positions (..., n * VOCAB_BLOCK + tail) of blocks (..., n), ascending within a block,
    followed by the tail's, which every search looks at."""
    offsets = tf.range(VOCAB_BLOCK, dtype=blocks.dtype)
    leading = tf.shape(blocks)[:-1]
    positions = tf.reshape(blocks[..., None] * VOCAB_BLOCK + offsets, tf.concat([leading, [-1]], 0))
    tail = tf.broadcast_to(tf.range(head, vocab_size, dtype=blocks.dtype), tf.concat([leading, [vocab_size - head]], 0))
    return tf.concat([positions, tail], axis=-1)


def _is_eos(tokens: tf.Tensor, eos_token_ids: tuple[int, ...]) -> tf.Tensor:
    hit = tf.zeros_like(tokens, tf.bool)
    for token in eos_token_ids:
        hit = tf.logical_or(hit, tf.equal(tokens, token))
    return hit


def _all_real(flags: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
    """Whether `flags` holds for every real sentence's (batch, ...) entries (rows that pad a bucket do not count)."""
    return tf.reduce_all(tf.logical_or(flags, tf.logical_not(active)))


def _any_nan(scores: tf.Tensor, row_active: tf.Tensor) -> tf.Tensor:
    """Whether a real row's (N, vocab) scores hold a NaN (rows that pad a bucket do not count).

    A row's sum is NaN when the row holds a NaN (or both infinities): that vectorised pass comes
    first, the exact test (4x slower under XLA on the CPU, 4.6 ms for 128 rows of 58k) only when it
    fires. (PyTorch's amax carries a NaN through; XLA's max drops it.)
    """
    suspect = tf.reduce_any(tf.logical_and(tf.math.is_nan(tf.reduce_sum(scores, axis=-1)), row_active))
    return tf.cond(
        suspect,
        lambda: tf.reduce_any(tf.logical_and(tf.reduce_any(tf.math.is_nan(scores), axis=-1), row_active)),
        lambda: tf.constant(False),
    )


def _gumbel(shape, seed: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
    """Gumbel(0, 1) noise from a stateless generator: argmax(scores + noise) samples softmax(scores)."""
    step_seed = tf.stack([seed[0], seed[1] + tf.cast(step, seed.dtype)])
    # Random bits are the same from TF's kernels and from XLA (stateless floats are not), so eager and
    # compiled runs sample alike. 23 bits -> (k + 0.5) / 2**23: exact, strictly inside (0, 1).
    bits = tf.random.stateless_uniform(shape, seed=step_seed, minval=None, maxval=None, dtype=tf.int32, alg="philox")
    uniform = (tf.cast(tf.bitwise.right_shift(bits, 9) & 0x7FFFFF, tf.float32) + 0.5) * 2.0**-23
    return -tf.math.log(-tf.math.log(uniform))



# ---- buckets and compiled functions (TensorFlow only) ------------------------------------------------


def bucket_batch_size(batch_size: int) -> int:
    """Batch sizes are padded to the next power of two (padded rows are dropped from the output)."""
    return 1 << max(0, int(batch_size) - 1).bit_length()


def bucket_length(length: int, max_length: int | None = None) -> int:
    """Source lengths are padded to 16, 32, 48, 64, 96, 128, 192, 256, ... (at most 1.5x, few shapes).

    `max_length` (the model's max_position_embeddings) caps the bucket, never below `length` itself.
    """
    length = int(length)
    bucket, power = 16, 32
    while bucket < length:  # 32, 48, 64, 96, 128, 192, ...: each power of two p, then 1.5 p
        bucket, power = (power, power) if bucket < power else (power * 3 // 2, power * 2)
    if max_length is not None and length <= max_length < bucket:
        bucket = max_length
    return bucket


def compiled_search(model, settings: GenerationSettings, batch: int, source_length: int, jit_compile: bool = True):
    """The tf.function for one bucket shape and settings: created once, kept on the model, traced once."""
    functions = compiled_functions(model)
    key = (batch, source_length, settings, bool(jit_compile))
    function = functions.get(key)
    if function is None:

        def search(input_ids, attention_mask, num_rows, seed):
            return run_search(model, settings, input_ids, attention_mask, num_rows, seed)

        signature = [
            tf.TensorSpec((batch, source_length), tf.int32, name="input_ids"),
            tf.TensorSpec((batch, source_length), tf.int32, name="attention_mask"),
            tf.TensorSpec((), tf.int32, name="num_rows"),
            tf.TensorSpec((2,), tf.int32, name="seed"),
        ]
        # No autograph: the search has no Python control flow on tensors, and the model code stays as written.
        function = tf.function(search, input_signature=signature, jit_compile=bool(jit_compile), autograph=False)
        functions[key] = function
    return function


def compiled_functions(model) -> dict:
    """{(batch bucket, source bucket, settings, jit_compile): tf.function}, cached on the model."""
    # Straight into __dict__: Keras would otherwise track the dict and its functions as model state.
    return vars(model).setdefault(_FUNCTIONS_ATTRIBUTE, {})



# ---- compute_transition_scores -------------------------------------------------------------------------


def compute_transition_scores(sequences, scores, beam_indices=None, normalize_logits: bool = False) -> tf.Tensor:
    """Each generated token's score at the step that chose it, as HF 4.x's compute_transition_scores.

    sequences (N, length) and scores (steps of (rows, vocab)) from generate(...,
    return_dict_in_generate=True, output_scores=True); beam_indices (N, steps') from beam search,
    -1 after a hypothesis ended (without it, row n of every step belongs to sequence n).
    normalize_logits: log-softmax each step's scores first (for greedy search and sampling, whose
    scores are processed logits). Returns (N, steps'') float32: the scores of the last steps''
    tokens of each sequence, where steps'' is the longest hypothesis; 0 where a hypothesis ended.
    Summed over a row of beam search, they give sequences_scores times the length penalty divisor.
    """
    if not scores:
        raise WestronError("compute_transition_scores needs the per-step scores: generate(..., output_scores=True)")
    stacked = tf.stack([tf.convert_to_tensor(step) for step in scores])  # (steps, rows, vocab)
    if normalize_logits:
        stacked = tf.nn.log_softmax(tf.cast(stacked, tf.float32), axis=-1)
    steps, rows = stacked.shape[0], stacked.shape[1]
    sequences = tf.cast(tf.convert_to_tensor(sequences), tf.int32)
    if beam_indices is None:
        if sequences.shape[0] != rows:
            raise WestronError(
                f"sequences has {sequences.shape[0]} rows but the scores {rows}: pass the beam_indices of beam search"
            )
        beam_indices = tf.broadcast_to(tf.range(rows)[:, None], (rows, steps))
    beam_indices = tf.cast(tf.convert_to_tensor(beam_indices), tf.int32)
    ended = beam_indices < 0  # (N, steps')
    length = int(tf.reduce_max(tf.reduce_sum(tf.cast(~ended, tf.int32), axis=-1)))
    ended, beam_indices = ended[:, :length], tf.maximum(beam_indices[:, :length], 0)
    tokens = sequences[:, sequences.shape[1] - length :]  # (N, length): the generated tokens
    step_index = tf.broadcast_to(tf.range(length)[None, :], tf.shape(tokens))
    chosen = tf.gather_nd(stacked, tf.stack([step_index, beam_indices, tokens], axis=-1))  # (N, length)
    return tf.where(ended, tf.zeros_like(chosen), chosen)
