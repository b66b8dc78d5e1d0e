"""PyTorch search: greedy, sampling and beam search over the model's encode / init_cache / decode.

`generate(model, input_ids, ...)` gives the ids Hugging Face transformers' `model.generate(...)`
gives for the same settings (see docs/internals.md for the model interface). The encoder runs once;
the decoder runs one token per step against the model's static key/value cache, which starts small
and grows in chunks so that neither attention nor the beam reordering pays for max_length (512 in
opus-mt configs) when sentences are short. All per-step work is batched tensor ops: the only host
sync per step is the "is everything finished?" check that lets the loop stop early.

Logits processors are small callables `processor(input_ids, scores) -> scores` (input_ids: the
sequences so far, (rows, cur_len); scores: (rows, vocab) float32, owned by the search, so a
processor may change it in place), applied in Hugging Face's order by `build_logits_processors`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from westron.errors import WestronError
from westron.generation.outputs import GenerateBeamEncoderDecoderOutput, GenerateEncoderDecoderOutput
from westron.generation.utils import (
    BadWords,
    NAN_LOGITS_MESSAGE,
    GenerationSettings,
    best_hypothetical_length,
    can_infer_attention_mask,
    check_source,
    length_penalty_divisor,
    resolve_generation_settings,
)

# The self-attention cache grows by this many positions at a time (up to max_length).
CACHE_CHUNK = 32
# Hugging Face's "minus infinity but finite" for beam bookkeeping; same value, same arithmetic.
BEAM_NEG = -1.0e9

LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---- logits processors ------------------------------------------------------------------------------


class RepetitionPenalty:
    """Divides positive scores (multiplies negative ones) of every token already in the sequence."""

    def __init__(self, penalty: float):
        self.penalty = penalty

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        ids = input_ids.clamp(max=scores.shape[-1] - 1)  # ids past the output vocab cannot recur
        seen = scores.gather(1, ids)
        seen = torch.where(seen < 0, seen * self.penalty, seen / self.penalty)
        return scores.scatter_(1, ids, seen)


class NoRepeatNGram:
    """Bans every token that would complete an n-gram the sequence already contains."""

    def __init__(self, ngram_size: int):
        self.n = ngram_size

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        n, length = self.n, input_ids.shape[1]
        if length < n:
            return scores
        prefix = input_ids[:, length - n + 1 :]  # (rows, n-1): the n-gram the next token would end
        windows = input_ids.unfold(1, n, 1)  # (rows, windows, n): every n-gram so far
        matches = (windows[..., :-1] == prefix[:, None, :]).all(-1)  # (rows, windows)
        vocab = scores.shape[-1]
        # Non-matching windows point at a spare column past the vocabulary.
        banned = torch.where(matches, windows[..., -1].clamp(max=vocab), vocab)
        mask = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool, device=scores.device)
        mask.scatter_(1, banned, True)
        return scores.masked_fill_(mask[:, :vocab], -math.inf)


class NoBadWords:
    """Bans single tokens always, and the last token of a multi-token sequence after its prefix."""

    def __init__(self, bad_words: BadWords, device: torch.device):
        self.single = torch.tensor(bad_words.single, dtype=torch.long, device=device)
        self.multi = [
            (
                torch.tensor(prefixes, dtype=torch.long, device=device),  # (n, k)
                torch.tensor(last, dtype=torch.long, device=device),  # (n,)
            )
            for prefixes, last in bad_words.multi
        ]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.single.numel():
            scores[:, self.single] = -math.inf
        for prefixes, last in self.multi:
            k = prefixes.shape[1]
            if k > input_ids.shape[1]:
                continue
            matches = (input_ids[:, None, -k:] == prefixes[None]).all(-1)  # (rows, n)
            vocab = scores.shape[-1]
            banned = torch.where(matches, last[None, :], vocab)
            mask = torch.zeros(scores.shape[0], vocab + 1, dtype=torch.bool, device=scores.device)
            mask.scatter_(1, banned, True)
            scores.masked_fill_(mask[:, :vocab], -math.inf)
        return scores


class MinLength:
    """No eos while the sequence (decoder start token included) is shorter than min_length."""

    def __init__(self, min_length: int, eos_token_ids: Sequence[int]):
        self.min_length = min_length
        self.eos = list(eos_token_ids)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] < self.min_length:
            scores[:, self.eos] = -math.inf
        return scores


class ForceTokenAt:
    """At one sequence length, every token but the forced one(s) gets -inf and they get 0.

    ForceTokenAt(1, [bos]) is forced_bos_token_id (the first generated token);
    ForceTokenAt(max_length - 1, eos) is forced_eos_token_id (the last one).
    """

    def __init__(self, length: int, token_ids: Sequence[int]):
        self.length = length
        self.token_ids = list(token_ids)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] == self.length:
            scores.fill_(-math.inf)
            scores[:, self.token_ids] = 0
        return scores


class Temperature:
    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.div_(self.temperature)


class TopK:
    """Keeps the k best tokens (ties with the k-th included)."""

    def __init__(self, top_k: int, min_tokens_to_keep: int = 1):
        self.top_k = max(top_k, min_tokens_to_keep)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        k = min(self.top_k, scores.shape[-1])
        kth_best = torch.topk(scores, k)[0][..., -1:]
        return scores.masked_fill_(scores < kth_best, -math.inf)


class TopP:
    """Nucleus filtering: keeps the smallest set of best tokens whose probability reaches top_p."""

    def __init__(self, top_p: float, min_tokens_to_keep: int = 1):
        self.top_p = top_p
        self.min_tokens_to_keep = min_tokens_to_keep

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        sorted_scores, order = torch.sort(scores, descending=False)
        cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - self.top_p)  # the low tail holding at most 1 - top_p
        remove_sorted[..., -self.min_tokens_to_keep :] = False
        remove = remove_sorted.scatter(1, order, remove_sorted)
        return scores.masked_fill_(remove, -math.inf)


class LogSoftmax:
    """renormalize_logits: the processed scores become log-probabilities again."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        return scores.log_softmax(dim=-1)


def build_logits_processors(settings: GenerationSettings, device: torch.device) -> list[LogitsProcessor]:
    """The processors `settings` asks for, in Hugging Face's order (sampling warpers last)."""
    s = settings
    processors: list[LogitsProcessor] = []
    if s.repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(s.repetition_penalty))
    if s.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGram(s.no_repeat_ngram_size))
    if s.bad_words is not None:
        processors.append(NoBadWords(s.bad_words, device))
    if s.min_length > 0 and s.eos_token_ids:
        processors.append(MinLength(s.min_length, s.eos_token_ids))
    if s.forced_bos_token_id is not None:
        processors.append(ForceTokenAt(1, [s.forced_bos_token_id]))
    if s.forced_eos_token_ids is not None:
        processors.append(ForceTokenAt(s.max_length - 1, s.forced_eos_token_ids))
    if s.do_sample:
        if s.temperature != 1.0:
            processors.append(Temperature(s.temperature))
        if s.top_k:
            processors.append(TopK(s.top_k, s.min_tokens_to_keep))
        if s.top_p < 1.0:
            processors.append(TopP(s.top_p, s.min_tokens_to_keep))
    if s.renormalize_logits:
        processors.append(LogSoftmax())
    return processors


def apply_processors(processors: Sequence[LogitsProcessor], input_ids: torch.Tensor, scores: torch.Tensor):
    for processor in processors:
        scores = processor(input_ids, scores)
    return scores


# ---- the cache ---------------------------------------------------------------------------------------
# docs/internals.md: per decoder layer (self_k, self_v, cross_k, cross_v), batch first; the self
# buffers are (B, heads, max_length, head_dim).


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
        self.nan_seen |= logits[:, -1].isnan().any()
        return logits[:, -1]

    def reorder(self, rows: torch.Tensor) -> None:
        self.cache = self.model.reorder_cache(self.cache, rows)


# ---- generate ----------------------------------------------------------------------------------------


def generate(
    model,
    input_ids,
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
    config = model.config
    vocab_size = getattr(config, "decoder_vocab_size", None) or getattr(config, "vocab_size", None)
    settings = resolve_generation_settings(
        generation_config if generation_config is not None else getattr(model, "generation_config", None),
        kwargs,
        seed=seed,
        vocab_size=vocab_size,
        max_position_embeddings=getattr(config, "max_position_embeddings", None),
    )
    device = model.device
    input_ids = _as_ids(input_ids, "input_ids").to(device)
    if attention_mask is not None:
        attention_mask = _as_ids(attention_mask, "attention_mask").to(device)
        if attention_mask.shape != input_ids.shape:
            raise WestronError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but input_ids {tuple(input_ids.shape)}"
            )
    if attention_mask is None and can_infer_attention_mask(settings.pad_token_id, settings.eos_token_ids):
        padded = input_ids.eq(settings.pad_token_id)
        if bool(padded.any()):
            attention_mask = (~padded).long()
    check_source(
        int(input_ids.min()),
        int(input_ids.max()),
        input_ids.shape[1],
        [] if attention_mask is None else attention_mask.sum(dim=1).eq(0).nonzero()[:, 0].tolist(),
        getattr(config, "vocab_size", None),
        getattr(config, "max_position_embeddings", None),
    )
    # Returned scores and attentions are normal tensors (inference tensors refuse later in-place edits).
    with torch.no_grad() if settings.return_dict_in_generate else torch.inference_mode():
        output, outputs, nan_seen = _generate(model, input_ids, attention_mask, settings)
        if bool(nan_seen):
            raise WestronError(NAN_LOGITS_MESSAGE)
    if settings.return_dict_in_generate:
        output_class = GenerateBeamEncoderDecoderOutput if settings.num_beams > 1 else GenerateEncoderDecoderOutput
        return output_class(sequences=output, **outputs)
    return output.clone()  # a normal tensor: inference tensors refuse later in-place edits


def _as_ids(value, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(value)
    if tensor.dim() != 2 or tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise WestronError(f"{name} must be a non-empty (batch, length) tensor, got shape {tuple(tensor.shape)}")
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex:
        raise WestronError(f"{name} must hold integers, got {tensor.dtype}")
    return tensor.long()


def _generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, s: GenerationSettings):
    device = input_ids.device
    encoded = model.encode(
        input_ids, attention_mask, output_attentions=s.output_attentions, output_hidden_states=s.output_hidden_states
    )
    encoder_states = encoded.last_hidden_state  # (B, S, D)
    capacity = min(s.max_length, CACHE_CHUNK)
    cache = model.init_cache(encoder_states, capacity)  # cross keys/values once per sentence
    expand = s.expand_size
    if expand > 1:
        encoder_states = encoder_states.repeat_interleave(expand, dim=0)
        if attention_mask is not None:
            attention_mask = attention_mask.repeat_interleave(expand, dim=0)
        cache = _expand_cache(cache, expand)
    decoder = _Decoder(model, encoder_states, attention_mask, cache, capacity, s)
    processors = build_logits_processors(s, device)
    generator = None
    if s.do_sample and s.seed is not None:
        generator = torch.Generator(device=device).manual_seed(s.seed)

    records = _new_records(s)
    if s.num_beams > 1:
        sequences, outputs = _beam_search(decoder, s, input_ids.shape[0], processors, generator, device, records)
    else:
        sequences, outputs = _greedy_or_sample(decoder, s, input_ids.shape[0] * expand, processors, generator, device, records)
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


def _record_step(records: dict, scores: torch.Tensor, logits: torch.Tensor, decoder: _Decoder, position: int) -> None:
    """Appends one step: scores, logits (rows, vocab) float32; the decoder's per-layer outputs."""
    if "scores" in records:
        records["scores"].append(scores.float())
    if "logits" in records:
        records["logits"].append(logits)
    if "decoder_attentions" in records:  # self-attention over the keys so far: (rows, heads, 1, position + 1)
        records["decoder_attentions"].append(tuple(a[..., : position + 1] for a in decoder.outputs.attentions))
        records["cross_attentions"].append(decoder.outputs.cross_attentions)
    if "decoder_hidden_states" in records:
        records["decoder_hidden_states"].append(decoder.outputs.hidden_states)


# ---- the searches ----------------------------------------------------------------------------------------


def _greedy_or_sample(decoder: _Decoder, s: GenerationSettings, rows: int, processors, generator, device, records):
    sequences = torch.full((rows, s.max_length), s.decoder_start_token_id, dtype=torch.long, device=device)
    eos = torch.tensor(s.eos_token_ids, dtype=torch.long, device=device) if s.eos_token_ids else None
    unfinished = torch.ones(rows, dtype=torch.bool, device=device)
    cur_len = 1  # tokens in `sequences` so far
    while cur_len < s.max_length:
        scores = decoder.step(sequences[:, cur_len - 1 : cur_len], cur_len - 1)  # (rows, vocab)
        logits = scores.float().clone() if "logits" in records else None  # processors edit scores in place
        if processors:
            scores = apply_processors(processors, sequences[:, :cur_len], scores.float())
        if records:
            _record_step(records, scores, logits, decoder, cur_len - 1)
        if s.do_sample:
            probs = F.softmax(scores.float(), dim=-1)
            next_tokens = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
        else:
            next_tokens = scores.argmax(dim=-1)
        if eos is not None:  # finished rows continue with padding
            next_tokens = torch.where(unfinished, next_tokens, s.pad_token_id)
        sequences[:, cur_len] = next_tokens
        cur_len += 1
        if eos is not None:
            unfinished &= ~torch.isin(next_tokens, eos)
            if not bool(unfinished.any()):
                break
    return sequences[:, :cur_len], {}


def _beam_search(decoder: _Decoder, s: GenerationSettings, batch: int, processors, generator, device, records):
    """Hugging Face's vectorised beam search (same candidates, scores, tie-breaks and stopping rule).

    Per sentence: `num_beams` running hypotheses, and the best `num_beams` finished ones with their
    length-penalised scores. Each step keeps the best 2 * num_beams continuations (so num_beams
    stay alive even if the best ones all end in eos); the finished ones among the best num_beams
    join the finished pool. With return_dict_in_generate it also tracks, per hypothesis, the
    beam_indices: which row of each step's scores its tokens came from (-1 after the end).
    """
    beams, keep, max_length = s.num_beams, s.beams_to_keep, s.max_length
    early_stopping, length_penalty = s.early_stopping, s.length_penalty
    eos = torch.tensor(s.eos_token_ids, dtype=torch.long, device=device) if s.eos_token_ids else None

    running = torch.full((batch, beams, max_length), s.beam_fill_token_id, dtype=torch.long, device=device)
    running[:, :, 0] = s.decoder_start_token_id
    finished = running.clone()  # the finished pool (B, beams, max_length)
    running_scores = torch.zeros(batch, beams, device=device)
    running_scores[:, 1:] = BEAM_NEG  # all beams start equal: only the first may expand
    finished_scores = torch.full((batch, beams), BEAM_NEG, device=device)
    is_finished = torch.zeros(batch, beams, dtype=torch.bool, device=device)
    finished_lengths = torch.zeros(batch, beams, dtype=torch.long, device=device)  # new tokens, eos included
    may_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)  # early-stopping heuristic
    in_top_beams = torch.arange(keep, device=device) < beams  # (keep,)
    row_offset = torch.arange(batch, device=device)[:, None] * beams
    track = s.return_dict_in_generate
    if track:  # (B, beams, max_length - 1): the row of scores each token came from
        running_indices = torch.full((batch, beams, max_length - 1), -1, dtype=torch.int32, device=device)
        finished_indices = running_indices.clone()

    cur_len = 1
    while True:
        tokens = running[:, :, cur_len - 1].reshape(batch * beams, 1)
        logits = decoder.step(tokens, cur_len - 1)
        log_probs = F.log_softmax(logits.float(), dim=-1)  # (B * beams, V)
        if processors:
            log_probs = apply_processors(processors, running[:, :, :cur_len].reshape(batch * beams, cur_len), log_probs)
        if records:
            _record_step(records, log_probs, logits.float(), decoder, cur_len - 1)
        vocab = log_probs.shape[-1]
        log_probs = (log_probs.view(batch, beams, vocab) + running_scores[:, :, None]).view(batch, beams * vocab)

        # Best `keep` continuations over all beams of a sentence (sampled without replacement).
        if s.do_sample:
            candidates = torch.multinomial(F.softmax(log_probs, dim=-1), num_samples=keep, generator=generator)
            candidate_scores = log_probs.gather(1, candidates)
            # Best first, as HF 4.x and HF >= 5.24 order them: only the first `beams` may finish.
            candidate_scores, order = candidate_scores.sort(dim=-1, descending=True)
            candidates = candidates.gather(1, order)
        else:
            candidate_scores, candidates = torch.topk(log_probs, keep)
        source_beam = candidates // vocab  # (B, keep)
        candidate_seqs = running.take_along_dim(source_beam[:, :, None], dim=1)  # (B, keep, max_length)
        candidate_seqs[:, :, cur_len] = candidates % vocab
        if track:
            candidate_indices = running_indices.take_along_dim(source_beam[:, :, None], dim=1)  # (B, keep, max_length - 1)
            candidate_indices[:, :, cur_len - 1] = (source_beam + row_offset).int()
        if cur_len + 1 >= max_length:
            ends = torch.ones(batch, keep, dtype=torch.bool, device=device)
        elif eos is not None:
            ends = torch.isin(candidates % vocab, eos)
        else:
            ends = torch.zeros(batch, keep, dtype=torch.bool, device=device)

        # The best `beams` unfinished continuations run on.
        alive_scores = candidate_scores + ends.float() * BEAM_NEG
        next_beams = torch.topk(alive_scores, beams)[1]  # (B, beams)
        running = candidate_seqs.take_along_dim(next_beams[:, :, None], dim=1)
        running_scores = alive_scores.take_along_dim(next_beams, dim=1)
        if track:
            running_indices = candidate_indices.take_along_dim(next_beams[:, :, None], dim=1)
        cache_rows = (source_beam.take_along_dim(next_beams, dim=1) + row_offset).view(-1)

        # Finished continuations among the best `beams` join the pool, length-penalised.
        just_finished = ends & in_top_beams[None, :]
        scores = candidate_scores / length_penalty_divisor(cur_len, length_penalty)
        pool_full = is_finished.all(dim=-1, keepdim=True) & (early_stopping is True)
        scores = scores + pool_full.float() * BEAM_NEG
        scores = scores + (~may_improve).float() * BEAM_NEG
        scores = scores + (~just_finished) * BEAM_NEG
        merged = torch.topk(torch.cat([finished_scores, scores], dim=1), beams)[1]
        finished = torch.cat([finished, candidate_seqs], dim=1).take_along_dim(merged[:, :, None], dim=1)
        finished_scores = torch.cat([finished_scores, scores], dim=1).take_along_dim(merged, dim=1)
        is_finished = torch.cat([is_finished, just_finished], dim=1).take_along_dim(merged, dim=1)
        new_lengths = torch.full_like(just_finished, cur_len, dtype=torch.long)
        finished_lengths = torch.cat([finished_lengths, new_lengths], dim=1).take_along_dim(merged, dim=1)
        if track:
            finished_indices = torch.cat([finished_indices, candidate_indices], dim=1).take_along_dim(merged[:, :, None], dim=1)

        cur_len += 1
        # Can the best running beam still beat the worst finished hypothesis?
        best_length = best_hypothetical_length(cur_len, max_length, early_stopping, length_penalty)
        best_running = running_scores[:, :1] / length_penalty_divisor(best_length, length_penalty)
        worst_finished = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True)[0], BEAM_NEG)
        may_improve = may_improve & (best_running > worst_finished).any(dim=-1, keepdim=True)
        go_on = may_improve.any() & ~(is_finished.all() & (early_stopping is True)) & ~ends.all()
        if not bool(go_on):
            break
        decoder.reorder(cache_rows)

    n = s.num_return_sequences
    output_length = 1 + int(finished_lengths[:, :n].max())
    outputs = {}
    if track:
        outputs["beam_indices"] = finished_indices[:, :n, : output_length - 1].reshape(batch * n, output_length - 1)
    if s.output_scores:
        outputs["sequences_scores"] = finished_scores[:, :n].reshape(batch * n)
    return finished[:, :n, :output_length].reshape(batch * n, output_length), outputs


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
