"""PyTorch search: greedy search, sampling and beam search over a model's encode / init_cache / decode / reorder_cache.

The twin of tf_search.py: the same sections in the same order, the same function, state and
constant names, the same steps in the same order, so the two files diff line by line and a fix in
one shows where it goes in the other. What only PyTorch has (a key/value cache that grows) sits in
its own section, where tf_search.py keeps what only TensorFlow has (buckets, compiled functions).

`generate(model, input_ids, ...)` gives the ids Hugging Face transformers' `model.generate(...)`
gives for the same settings (see docs/internals.md for the model interface). The encoder runs once;
the decoder runs one token per step against the model's static key/value cache, which starts small
and grows in chunks so that neither attention nor the beam reordering pays for max_length (512 in
opus-mt configs) when sentences are short. All per-step work is batched tensor ops: the only host
sync per step is the "is everything finished?" check that lets the loop stop early.

Logits processors are functions over tensors, applied in Hugging Face's order by `process_scores`
(scores: (rows, vocab) float32, owned by the search, so a processor may change it in place).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from westron.errors import WestronError
from westron.generation.outputs import GenerateBeamEncoderDecoderOutput, GenerateEncoderDecoderOutput
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
from westron.torch_onednn import decoding

NEG_INF = float("-inf")
# Hugging Face's beam search marks impossible beams with -1e9 (not -inf, so sums stay ordered).
BEAM_MASK = -1.0e9
# Vocabulary-wide top-k and argmax look at blocks of this many tokens first (_top_k, _argmax).
VOCAB_BLOCK = 32
# PyTorch only: the self-attention cache grows by this many positions at a time (up to max_length).
CACHE_CHUNK = 32


# ---- entry point ---------------------------------------------------------------------------------------


def generate(
    model,
    inputs=None,
    attention_mask=None,
    generation_config=None,
    seed: int | None = None,
    **kwargs: Any,
) -> torch.LongTensor | GenerateEncoderDecoderOutput | GenerateBeamEncoderDecoderOutput:
    """Translates a batch: ids (batch * num_return_sequences, length).

    Each row starts with the decoder start token; rows that finished early are padded with
    pad_token_id; the result is as long as the longest row. Settings come from
    `generation_config` (default: the model's), overridden by `kwargs` (GenerationConfig fields:
    num_beams, max_new_tokens, do_sample, top_p, ...). `seed` seeds sampling (a torch.Generator);
    without it sampling draws from torch's global generator, as Hugging Face does.
    Without an attention_mask, padding is found from pad_token_id (when pad is no eos token).
    With return_dict_in_generate=True the result is HF 4.x's output object instead (ids in
    `sequences`, plus what output_scores / output_logits / output_attentions /
    output_hidden_states ask for; westron/generation/outputs.py).
    """
    input_ids = take_source_ids(inputs, kwargs)
    config = model.config
    vocab_size = getattr(config, "decoder_vocab_size", None) or getattr(config, "vocab_size", None)
    settings = resolve_generation_settings(
        base_generation_config(generation_config, model),
        kwargs,
        seed=seed,
        vocab_size=vocab_size,
        max_position_embeddings=getattr(config, "max_position_embeddings", None),
    )
    input_ids, attention_mask = _prepare_inputs(input_ids, attention_mask, settings, model.device)
    check_source(
        int(input_ids.min()),
        int(input_ids.max()),
        input_ids.shape[1],
        [] if attention_mask is None else attention_mask.sum(dim=1).eq(0).nonzero()[:, 0].tolist(),
        getattr(config, "vocab_size", None),
        getattr(config, "max_position_embeddings", None),
    )
    # Returned scores and attentions are normal tensors (inference tensors refuse later in-place edits).
    # decoding(): the Linear layers on oneDNN with packed weights, on the CPU (westron/torch_onednn.py).
    with torch.no_grad() if settings.return_dict_in_generate else torch.inference_mode(), decoding(model):
        sequences, outputs, nan_seen = run_search(model, settings, input_ids, attention_mask)
        if bool(nan_seen):
            raise WestronError(NAN_LOGITS_MESSAGE)
    if settings.return_dict_in_generate:
        output_class = GenerateBeamEncoderDecoderOutput if settings.num_beams > 1 else GenerateEncoderDecoderOutput
        return output_class(sequences=sequences, **outputs)
    return sequences.clone()  # a normal tensor: inference tensors refuse later in-place edits


def _prepare_inputs(
    input_ids, attention_mask, settings: GenerationSettings, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    input_ids = _as_ids(input_ids, "input_ids").to(device)
    if attention_mask is not None:
        attention_mask = _as_ids(attention_mask, "attention_mask").to(device)
        if attention_mask.shape != input_ids.shape:
            raise WestronError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids {tuple(input_ids.shape)}"
            )
    if attention_mask is None and can_infer_attention_mask(settings.pad_token_id, settings.eos_token_ids):
        # padding is found from pad_token_id, as in the TensorFlow search (None: no padding, all ones)
        padded = input_ids.eq(settings.pad_token_id)
        if bool(padded.any()):
            attention_mask = (~padded).long()
    return input_ids, attention_mask


def _as_ids(value, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    if tensor.dim() != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise WestronError(f"{name} must be a non-empty (batch, length) tensor, got shape {tuple(tensor.shape)}")
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex:
        raise WestronError(f"{name} must hold integers, got {tensor.dtype}")
    return tensor.long()


# ---- the search ----------------------------------------------------------------------------------------


def run_search(model, settings: GenerationSettings, input_ids: torch.Tensor, attention_mask: torch.Tensor | None):
    """Encodes once, then greedy search, sampling or beam search.

    input_ids, attention_mask (or None): (B, S) int64. Returns (sequences (B * num_return_sequences,
    length), the outputs asked for: {} unless return_dict_in_generate, whether the scores held a NaN).
    """
    s = settings
    device = input_ids.device
    encoded = model.encode(
        input_ids, attention_mask, output_attentions=s.output_attentions, output_hidden_states=s.output_hidden_states
    )
    encoder_states = encoded.last_hidden_state  # (B, S, D)
    # Self-attention positions 0 .. capacity - 1, grown by CACHE_CHUNK when needed (_Decoder).
    capacity = min(s.max_length, CACHE_CHUNK)
    cache = model.init_cache(encoder_states, capacity)  # cross keys/values once per sentence
    if s.expand_size > 1:  # the beams / samples of a sentence share its encoder states
        encoder_states = encoder_states.repeat_interleave(s.expand_size, dim=0)
        if attention_mask is not None:
            attention_mask = attention_mask.repeat_interleave(s.expand_size, dim=0)
        cache = _expand_cache(cache, s.expand_size)
    decoder = _Decoder(model, encoder_states, attention_mask, cache, capacity, s)
    generator = None
    if s.do_sample and s.seed is not None:
        generator = torch.Generator(device=device).manual_seed(s.seed)
    records = _new_records(s)
    if s.num_beams > 1:
        sequences, outputs = _beam_search(decoder, s, input_ids.shape[0], generator, device, records)
    else:
        rows = input_ids.shape[0] * s.expand_size
        sequences, outputs = _greedy_or_sample(decoder, s, rows, generator, device, records)
    outputs.update({name: tuple(steps) for name, steps in records.items()})
    if s.output_attentions:
        outputs["encoder_attentions"] = encoded.attentions
    if s.output_hidden_states:
        outputs["encoder_hidden_states"] = encoded.hidden_states
    return sequences, outputs, decoder.nan_seen


# ---- outputs asked for (return_dict_in_generate) ------------------------------------------------------


def _new_records(s: GenerationSettings) -> dict[str, list]:
    """Empty per-step lists for the outputs asked for; none at all when none was (the fast path)."""
    names = []
    if s.output_scores:
        names.append("scores")
    if s.output_logits:
        names.append("logits")
    if s.output_attentions:
        names += ["decoder_attentions", "cross_attentions"]
    if s.output_hidden_states:
        names.append("decoder_hidden_states")
    return {name: [] for name in names}


def _record_step(records: dict, scores: torch.Tensor, logits: torch.Tensor, decoder_outputs, step: int) -> dict:
    """Appends one step: scores, logits (rows, vocab) float32; the decoder's per-layer outputs.

    The self-attention weights are cut to the keys so far: (rows, heads, 1, step + 1).
    """
    if "scores" in records:
        records["scores"].append(scores.float())
    if "logits" in records:
        records["logits"].append(logits)
    if "decoder_attentions" in records:
        records["decoder_attentions"].append(tuple(a[..., : step + 1] for a in decoder_outputs.attentions))
        records["cross_attentions"].append(decoder_outputs.cross_attentions)
    if "decoder_hidden_states" in records:
        records["decoder_hidden_states"].append(decoder_outputs.hidden_states)
    return records


# ---- logits processors (in place on the search's own float32 scores; an int cur_len) --------------------


def process_scores(
    scores: torch.Tensor, sequences: torch.Tensor, cur_len: int, settings: GenerationSettings
) -> torch.Tensor:
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
        scores = scores.log_softmax(dim=-1)
    return scores


def penalize_repetitions(scores: torch.Tensor, sequences: torch.Tensor, cur_len: int, penalty: float) -> torch.Tensor:
    """Divides positive scores (multiplies negative ones) of every token already in the sequence."""
    ids = sequences[:, :cur_len].clamp(max=scores.shape[-1] - 1)  # ids past the output vocab cannot recur
    seen = scores.gather(1, ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter_(1, ids, seen)


def ban_repeated_ngrams(scores: torch.Tensor, sequences: torch.Tensor, cur_len: int, ngram_size: int) -> torch.Tensor:
    """Bans every token that would complete an n-gram the sequence already contains (HF's NoRepeatNGram)."""
    n, input_ids = ngram_size, sequences[:, :cur_len]
    if cur_len < n:
        return scores
    prefix = input_ids[:, cur_len - n + 1 :]  # (N, n-1): the n-gram the next token would end
    windows = input_ids.unfold(1, n, 1)  # (N, windows, n): every n-gram so far
    matches = (windows[..., :-1] == prefix[:, None, :]).all(-1)  # (N, windows)
    vocab_size = scores.shape[-1]
    # Non-matching windows point at a spare column past the vocabulary.
    banned = torch.where(matches, windows[..., -1].clamp(max=vocab_size), vocab_size)
    mask = torch.zeros(scores.shape[0], vocab_size + 1, dtype=torch.bool, device=scores.device)
    mask.scatter_(1, banned, True)
    return scores.masked_fill_(mask[:, :vocab_size], NEG_INF)


def ban_bad_words(scores: torch.Tensor, sequences: torch.Tensor, cur_len: int, bad_words: BadWords) -> torch.Tensor:
    """Bans single tokens always, and the last token of a multi-token bad word after its prefix."""
    input_ids = sequences[:, :cur_len]
    single, multi = _bad_words_tensors(bad_words, scores.device)
    if single.numel():
        scores[:, single] = NEG_INF
    for prefixes, last in multi:
        k = prefixes.shape[1]
        if k > cur_len:
            continue
        matches = (input_ids[:, None, -k:] == prefixes[None]).all(-1)  # (N, W)
        vocab_size = scores.shape[-1]
        banned = torch.where(matches, last[None, :], vocab_size)
        mask = torch.zeros(scores.shape[0], vocab_size + 1, dtype=torch.bool, device=scores.device)
        mask.scatter_(1, banned, True)
        scores.masked_fill_(mask[:, :vocab_size], NEG_INF)
    return scores


def ban_eos_before_min_length(
    scores: torch.Tensor, cur_len: int, min_length: int, eos_token_ids: Sequence[int]
) -> torch.Tensor:
    """No eos while the sequence (decoder start token included) is shorter than min_length."""
    if cur_len < min_length:
        scores[:, list(eos_token_ids)] = NEG_INF
    return scores


def force_tokens_at(scores: torch.Tensor, cur_len: int, length: int, token_ids: Sequence[int]) -> torch.Tensor:
    """At one sequence length, every token but the forced one(s) gets -inf and they get 0.

    force_tokens_at(scores, cur_len, 1, [bos]) is forced_bos_token_id (the first generated token);
    force_tokens_at(scores, cur_len, max_length - 1, eos) is forced_eos_token_id (the last one).
    """
    if cur_len == length:
        scores.fill_(NEG_INF)
        scores[:, list(token_ids)] = 0
    return scores


def apply_temperature(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divides the scores by the temperature (above 1 flattens the distribution, below 1 sharpens it)."""
    return scores.div_(temperature)


def keep_top_k(scores: torch.Tensor, top_k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keeps the k best tokens (ties with the k-th included)."""
    k = min(max(top_k, min_tokens_to_keep), scores.shape[-1])
    kth_best = torch.topk(scores, k)[0][..., -1:]
    return scores.masked_fill_(scores < kth_best, NEG_INF)


def keep_top_p(scores: torch.Tensor, top_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filtering as HF does it: drop the tokens whose ascending cumulative probability is <= 1 - top_p."""
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative <= (1 - top_p)  # the low tail holding at most 1 - top_p
    remove_sorted[..., -min_tokens_to_keep:] = False
    remove = remove_sorted.scatter(1, order, remove_sorted)  # back to vocabulary order
    return scores.masked_fill_(remove, NEG_INF)


@functools.lru_cache(maxsize=8)
def _bad_words_tensors(bad_words: BadWords, device: torch.device) -> tuple[torch.Tensor, list]:
    """bad_words as tensors on `device`: single (n,), and per prefix length (prefixes (n, k), last (n,))."""
    single = torch.tensor(bad_words.single, dtype=torch.long, device=device)
    multi = [
        (torch.tensor(prefixes, dtype=torch.long, device=device), torch.tensor(last, dtype=torch.long, device=device))
        for prefixes, last in bad_words.multi
    ]
    return single, multi


# ---- greedy search and sampling ------------------------------------------------------------------------


def _greedy_or_sample(decoder: _Decoder, s: GenerationSettings, rows: int, generator, device, records):
    """Greedy search or multinomial sampling: one token per row and step until every row has ended."""
    sequences = torch.full((rows, s.max_length), s.decoder_start_token_id, dtype=torch.long, device=device)
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    cur_len = 1  # tokens in `sequences` so far
    while cur_len < s.max_length:
        logits = decoder.step(sequences[:, cur_len - 1 : cur_len], cur_len - 1)  # (rows, vocab)
        scores = logits
        if "logits" in records:
            logits = logits.float().clone()  # the processors edit scores in place
        if s.uses_processors:
            scores = process_scores(scores.float(), sequences, cur_len, s)
        if records:
            records = _record_step(records, scores, logits, decoder.outputs, cur_len - 1)
        if s.do_sample:
            tokens = torch.multinomial(F.softmax(scores.float(), dim=-1), num_samples=1, generator=generator).squeeze(1)
        else:
            tokens = _argmax(scores)
        if s.eos_token_ids:  # a finished row gets padding; a row finishes on any eos token
            tokens = torch.where(unfinished, tokens, s.pad_token_id)
            unfinished &= ~_is_eos(tokens, s.eos_token_ids)
        sequences[:, cur_len] = tokens
        cur_len += 1
        if s.eos_token_ids and not bool(unfinished.any()):  # without eos every row runs to max_length
            break
    return sequences[:, :cur_len], {}


# ---- beam search ---------------------------------------------------------------------------------------


def _beam_search(decoder: _Decoder, s: GenerationSettings, batch: int, generator, device, records):
    """HF's vectorised beam search (and beam sampling): same candidates, scores, tie-breaks and stopping rule.

    Per sentence: `num_beams` running hypotheses, and the best `num_beams` finished ones with their
    length-penalised scores. Each step keeps the best 2 * num_beams continuations (so num_beams
    stay alive even if the best ones all end in eos); the finished ones among the best num_beams
    join the finished pool. With return_dict_in_generate it also tracks, per hypothesis, the
    beam_indices: which row of each step's scores its tokens came from (-1 after the end).
    """
    num_beams, max_length, keep = s.num_beams, s.max_length, s.beams_to_keep
    top_beams = torch.arange(keep, device=device) < num_beams  # only the best num_beams candidates may finish
    row_offset = torch.arange(batch, device=device)[:, None] * num_beams  # (batch, 1): a sentence's first row

    running = torch.full((batch, num_beams, max_length), s.beam_fill_token_id, dtype=torch.long, device=device)
    running[:, :, 0] = s.decoder_start_token_id
    # Only the first beam starts alive, so the first step does not pick the same token num_beams times.
    running_scores = torch.zeros(batch, num_beams, device=device)
    running_scores[:, 1:] = BEAM_MASK
    finished = running.clone()  # finished hypotheses, best first
    finished_scores = torch.full((batch, num_beams), BEAM_MASK, device=device)
    is_finished = torch.zeros(batch, num_beams, dtype=torch.bool, device=device)
    finished_lengths = torch.zeros(batch, num_beams, dtype=torch.long, device=device)  # generated tokens, eos included
    may_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)  # HF's is_early_stop_heuristic_unsatisfied
    track = s.return_dict_in_generate
    if track:  # (batch, beams, max_length - 1): the row of scores each token came from, -1 after the end
        running_indices = torch.full((batch, num_beams, max_length - 1), -1, dtype=torch.int32, device=device)
        finished_indices = running_indices.clone()

    cur_len = 1
    while True:
        tokens = running[:, :, cur_len - 1].reshape(batch * num_beams, 1)  # each beam's last token
        logits = decoder.step(tokens, cur_len - 1)
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (batch * beams, vocab)
        vocab_size = log_probs.shape[-1]
        if s.uses_processors:
            log_probs = process_scores(log_probs, running.view(batch * num_beams, max_length), cur_len, s)
        if records:
            records = _record_step(records, log_probs, logits.float(), decoder.outputs, cur_len - 1)
        log_probs = log_probs.view(batch, num_beams, vocab_size)

        # The best `keep` continuations over all beams of a sentence (or `keep` samples without replacement).
        if s.do_sample:
            log_probs = (log_probs + running_scores[:, :, None]).view(batch, num_beams * vocab_size)
            candidates = torch.multinomial(F.softmax(log_probs, dim=-1), num_samples=keep, generator=generator)
            candidate_scores = log_probs.gather(1, candidates)
            # Best first, as HF 4.x and HF >= 5.24 order them: only the first num_beams may finish.
            candidate_scores, order = candidate_scores.sort(dim=-1, descending=True)
            candidates = candidates.gather(1, order)
        else:
            candidate_scores, candidates = _best_continuations(log_probs, running_scores, keep)
        source_beam, candidate_tokens = candidates // vocab_size, candidates % vocab_size  # (batch, keep)
        candidate_sequences = running.take_along_dim(source_beam[:, :, None], dim=1)  # (batch, keep, max_length)
        candidate_sequences[:, :, cur_len] = candidate_tokens
        ended = _is_eos(candidate_tokens, s.eos_token_ids) | (cur_len + 1 >= max_length)
        if track:
            candidate_indices = running_indices.take_along_dim(source_beam[:, :, None], dim=1)  # (batch, keep, max_length - 1)
            source_row = source_beam + row_offset
            candidate_indices[:, :, cur_len - 1] = source_row.int()

        # The best candidates that did not end keep running.
        alive_scores = candidate_scores + ended.float() * BEAM_MASK
        next_beams = torch.topk(alive_scores, num_beams)[1]  # (batch, beams)
        running = candidate_sequences.take_along_dim(next_beams[:, :, None], dim=1)
        running_scores = alive_scores.take_along_dim(next_beams, dim=1)
        cache_rows = (source_beam.take_along_dim(next_beams, dim=1) + row_offset).view(-1)
        if track:
            running_indices = candidate_indices.take_along_dim(next_beams[:, :, None], dim=1)

        # Candidates among the top num_beams that ended join the finished hypotheses if they score better
        # (each +BEAM_MASK term below rules a candidate out, in HF's order of float additions).
        just_finished = ended & top_beams[None, :]
        penalized_scores = candidate_scores / length_penalty_divisor(cur_len, s.length_penalty)
        if s.early_stopping is True:
            pool_full = is_finished.all(dim=-1, keepdim=True)
            penalized_scores = penalized_scores + pool_full.float() * BEAM_MASK
        penalized_scores = penalized_scores + (~may_improve).float() * BEAM_MASK
        penalized_scores = penalized_scores + (~just_finished).float() * BEAM_MASK
        merged = torch.topk(torch.cat([finished_scores, penalized_scores], dim=1), num_beams)[1]
        finished = torch.cat([finished, candidate_sequences], dim=1).take_along_dim(merged[:, :, None], dim=1)
        finished_scores = torch.cat([finished_scores, penalized_scores], dim=1).take_along_dim(merged, dim=1)
        is_finished = torch.cat([is_finished, just_finished], dim=1).take_along_dim(merged, dim=1)
        new_lengths = torch.full_like(just_finished, cur_len, dtype=torch.long)
        finished_lengths = torch.cat([finished_lengths, new_lengths], dim=1).take_along_dim(merged, dim=1)
        if track:
            finished_indices = torch.cat([finished_indices, candidate_indices], dim=1).take_along_dim(merged[:, :, None], dim=1)

        cur_len += 1

        # Can the best running beam still beat the worst finished hypothesis? (HF's early-stopping heuristic.)
        best_length = best_hypothetical_length(cur_len, max_length, s.early_stopping, s.length_penalty)
        best_running = running_scores[:, :1] / length_penalty_divisor(best_length, s.length_penalty)
        worst_finished = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True)[0], BEAM_MASK)
        may_improve = may_improve & (best_running > worst_finished).any(dim=-1, keepdim=True)
        keep_going = may_improve.any() & ~ended.all()
        if s.early_stopping is True:  # stop once every sentence has num_beams finished hypotheses
            keep_going = keep_going & ~is_finished.all()
        if not bool(keep_going):
            break
        decoder.reorder(cache_rows)

    n = s.num_return_sequences
    length = 1 + int(finished_lengths[:, :n].max())
    outputs = {}
    if track:
        outputs["beam_indices"] = finished_indices[:, :n, : length - 1].reshape(batch * n, length - 1)
    if s.output_scores:
        outputs["sequences_scores"] = finished_scores[:, :n].reshape(batch * n)
    return finished[:, :n, :length].reshape(batch * n, length), outputs


# ---- step helpers --------------------------------------------------------------------------------------


def _best_continuations(log_probs: torch.Tensor, running_scores: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The `keep` best running score + log-prob over all beams x vocabulary of each sentence, best first.

    log_probs (batch, beams, vocab), running_scores (batch, beams) -> scores (batch, keep) and flat
    indices beam * vocab + token (batch, keep): the top-k of HF's (batch, beams * vocab) sums, taken
    from each beam's own top `keep` (the sentence's best `keep` are among them), so the full sum is
    never written: one pass over the vocabulary fewer per step.
    """
    batch, num_beams, vocab_size = log_probs.shape
    beam_scores, beam_tokens = _top_k(log_probs, keep)  # (batch, beams, keep)
    sums = (beam_scores + running_scores[:, :, None]).view(batch, num_beams * keep)
    candidate_scores, picked = torch.topk(sums, keep)  # (batch, keep)
    candidates = picked.div(keep, rounding_mode="floor") * vocab_size + beam_tokens.view(batch, -1).gather(1, picked)
    return candidate_scores, candidates


def _top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.topk(scores, k) over the vocabulary: (..., vocab) -> values, indices (..., k), best first.

    Why not torch.topk itself: over a whole row it is a scalar loop on the CPU (8 ms for 32 x 4
    rows of 58k logits; 2.5 ms this way). The k best tokens lie in the k blocks of VOCAB_BLOCK
    tokens with the highest maxima (any other block has k better tokens ahead of its best), and
    block maxima are one vectorised pass; the top-k is then taken over those k blocks only.
    """
    vocab_size = scores.shape[-1]
    if scores.device.type != "cpu" or vocab_size < 2 * k * VOCAB_BLOCK:
        return torch.topk(scores, k)
    maxima, head = _vocab_blocks(scores)
    positions = _block_positions(torch.topk(maxima, k)[1], head, vocab_size)  # (..., k * VOCAB_BLOCK + tail)
    values, picked = torch.topk(scores.gather(-1, positions), k)
    return values, positions.gather(-1, picked)


def _argmax(scores: torch.Tensor) -> torch.Tensor:
    """scores.argmax(dim=-1), the first best token on ties: (..., vocab) -> (...).

    Through the best block as _top_k (2.2 ms -> 0.5 ms for 32 rows of 58k logits on the CPU); the
    first block holding the maximum, then the first position in it, is the first maximum overall.
    """
    vocab_size = scores.shape[-1]
    if scores.device.type != "cpu" or vocab_size < 2 * VOCAB_BLOCK:
        return scores.argmax(dim=-1)
    maxima, head = _vocab_blocks(scores)
    positions = _block_positions(maxima.argmax(dim=-1, keepdim=True), head, vocab_size)
    return positions.gather(-1, scores.gather(-1, positions).argmax(dim=-1, keepdim=True)).squeeze(-1)


def _vocab_blocks(scores: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The maxima of the whole blocks of VOCAB_BLOCK tokens (..., blocks) and how many tokens they
    cover (the head); the tokens after the head (fewer than a block) are the tail."""
    blocks = scores.shape[-1] // VOCAB_BLOCK
    head = blocks * VOCAB_BLOCK
    return scores[..., :head].unflatten(-1, (blocks, VOCAB_BLOCK)).amax(dim=-1), head


def _block_positions(blocks: torch.Tensor, head: int, vocab_size: int) -> torch.Tensor:
    """Token positions (..., n * VOCAB_BLOCK + tail) of blocks (..., n), ascending within a block,
    followed by the tail's, which every search looks at."""
    offsets = torch.arange(VOCAB_BLOCK, device=blocks.device)
    positions = (blocks[..., None] * VOCAB_BLOCK + offsets).flatten(-2)
    tail = torch.arange(head, vocab_size, device=blocks.device).expand(*positions.shape[:-1], vocab_size - head)
    return torch.cat([positions, tail], dim=-1)


def _is_eos(tokens: torch.Tensor, eos_token_ids: tuple[int, ...]) -> torch.Tensor:
    hit = torch.zeros_like(tokens, dtype=torch.bool)
    for token in eos_token_ids:
        hit |= tokens == token
    return hit


# ---- the cache (PyTorch only: it grows) ----------------------------------------------------------------
# docs/internals.md: per decoder layer (self_k, self_v, cross_k, cross_v), batch first; the self
# buffers are (B, heads, capacity, head_dim).


def _expand_cache(cache: tuple, times: int) -> tuple:
    """Each sentence's cache rows repeated `times` (beams / samples), as repeat_interleave does."""
    return tuple(tuple(t.repeat_interleave(times, dim=0) for t in layer) for layer in cache)


def _grow_cache(cache: tuple, capacity: int) -> tuple:
    """Self-attention buffers padded with zeros to `capacity` positions."""
    grown = []
    for self_k, self_v, *rest in cache:
        extra = capacity - self_k.shape[2]
        pad = lambda t: torch.cat([t, t.new_zeros(t.shape[0], t.shape[1], extra, t.shape[3])], dim=2)  # noqa: E731
        grown.append((pad(self_k), pad(self_v), *rest))
    return tuple(grown)


class _Decoder:
    """One decoder step at a time, growing the cache when the next position does not fit."""

    def __init__(self, model, encoder_states, encoder_mask, cache, capacity: int, s: GenerationSettings):
        self.model = model
        self.encoder_states = encoder_states
        self.encoder_mask = encoder_mask
        self.cache = cache
        self.capacity = capacity
        self.max_length = s.max_length
        self.output_attentions, self.output_hidden_states = s.output_attentions, s.output_hidden_states
        self.outputs = None  # the last step's DecoderOutput (attentions, hidden states when asked for)
        self.nan_seen = torch.zeros((), dtype=torch.bool, device=encoder_states.device)  # read once, at the end

    def step(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """tokens (rows, 1) at `position` -> next-token logits (rows, vocab)."""
        if position >= self.capacity:
            self.capacity = min(self.max_length, self.capacity + CACHE_CHUNK)
            self.cache = _grow_cache(self.cache, self.capacity)
        logits, self.cache, self.outputs = self.model.decode(
            tokens,
            self.encoder_states,
            self.encoder_mask,
            self.cache,
            cache_position=position,
            output_attentions=self.output_attentions,
            output_hidden_states=self.output_hidden_states,
        )
        # amax carries a NaN through (one vectorised pass; isnan().any() takes 20x longer on the CPU)
        self.nan_seen |= logits[:, -1].amax().isnan()
        return logits[:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache = self.model.reorder_cache(self.cache, rows)


# ---- compute_transition_scores -------------------------------------------------------------------------


def compute_transition_scores(sequences, scores, beam_indices=None, normalize_logits: bool = False) -> torch.Tensor:
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
    stacked = torch.stack(tuple(scores))  # (steps, rows, vocab)
    if normalize_logits:
        stacked = stacked.float().log_softmax(dim=-1)
    steps, rows, _ = stacked.shape
    if beam_indices is None:
        if sequences.shape[0] != rows:
            raise WestronError(
                f"sequences has {sequences.shape[0]} rows but the scores {rows}: pass the beam_indices of beam search"
            )
        beam_indices = torch.arange(rows, device=stacked.device)[:, None].expand(rows, steps)
    beam_indices = beam_indices.long()
    ended = beam_indices < 0  # (N, steps')
    length = int((~ended).sum(dim=-1).max())
    ended, beam_indices = ended[:, :length], beam_indices[:, :length].clamp(min=0)
    tokens = sequences[:, sequences.shape[1] - length :].long()  # (N, length): the generated tokens
    step_index = torch.arange(length, device=stacked.device)[None, :].expand_as(tokens)
    chosen = stacked[step_index, beam_indices, tokens]  # (N, length)
    return chosen.masked_fill(ended, 0.0)
