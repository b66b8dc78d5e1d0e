"""Framework-free generation logic shared by the PyTorch and TensorFlow searches.

Everything here is plain Python: it turns a GenerationConfig plus `generate(**kwargs)` into one
validated, resolved `GenerationSettings` (with Hugging Face's semantics: max_new_tokens over
max_length, min_new_tokens over min_length, pad defaulting to eos, ...), prepares bad_words_ids
for vectorised matching, and holds the small formulas of beam search (the length penalty and the
early-stopping bound). `torch_search.py` and `tf_search.py` import it so both frameworks make the
same decisions and raise the same `WestronError` messages.

Length convention (Hugging Face's): `max_length` and `min_length` count the whole decoder
sequence, decoder_start_token_id included, so an encoder-decoder model has a prompt of length 1
and `max_new_tokens=n` means `max_length=n + 1`.
"""

from __future__ import annotations

import json
import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from westron.errors import WestronError
from westron.generation.configuration_utils import DEFAULTS, GenerationConfig, config_generation_snapshot

# Decoder prompt length of an encoder-decoder model: the decoder_start_token_id.
DECODER_PROMPT_LENGTH = 1

# What generate() can return besides the ids (HF 4.x's flags; each is collected only when asked for).
OUTPUT_FLAGS = ("output_scores", "output_logits", "output_attentions", "output_hidden_states")
# Keys generate() accepts besides DEFAULTS'. renormalize_logits: opus-mt checkpoints set it.
EXTRA_KEYS = ("renormalize_logits", "return_dict_in_generate", *OUTPUT_FLAGS)
SUPPORTED_KEYS = frozenset(DEFAULTS) | frozenset(EXTRA_KEYS)

# Hugging Face generation options Westron does not implement, with the values at which they do
# nothing. A config file holding one of them at a neutral value is fine; any other value would
# silently change the output, so it is an error (from a config file or from kwargs).
UNSUPPORTED_NEUTRAL: dict[str, tuple] = {
    "num_beam_groups": (None, 1),
    "diversity_penalty": (None, 0.0),
    "penalty_alpha": (None, 0.0),
    "typical_p": (None, 1.0),
    "min_p": (None,),
    "top_h": (None,),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "encoder_repetition_penalty": (None, 1.0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "exponential_decay_length_penalty": (None,),
    "suppress_tokens": (None, []),
    "begin_suppress_tokens": (None, []),
    "sequence_bias": (None,),
    "constraints": (None,),
    "force_words_ids": (None,),
    "guidance_scale": (None, 1.0),
    "remove_invalid_values": (None, False),
    "max_time": (None,),
    "stop_strings": (None,),
    "prompt_lookup_num_tokens": (None,),
    "watermarking_config": (None,),
    "token_healing": (None, False),
    "low_memory": (None, False),
}


@dataclass(frozen=True)
class BadWords:
    """bad_words_ids ready for vectorised matching.

    single: token ids banned at every step.
    multi: one entry per prefix length k: (prefixes (n, k), last tokens (n,)); the last token of a
      sequence is banned for a row whose last k tokens equal the prefix.
    """

    single: tuple[int, ...]
    multi: tuple[tuple[tuple[tuple[int, ...], ...], tuple[int, ...]], ...]


@dataclass(frozen=True)
class GenerationSettings:
    """Everything a search loop needs, validated and resolved. Lengths count the decoder start token."""

    mode: str  # "greedy" | "sample" | "beam" | "beam_sample"
    num_beams: int
    num_return_sequences: int
    do_sample: bool
    max_length: int
    min_length: int
    decoder_start_token_id: int
    pad_token_id: int | None
    eos_token_ids: tuple[int, ...]  # empty: no eos, every row runs to max_length
    # logits processors, applied in this order (Hugging Face's)
    repetition_penalty: float  # 1.0: off
    no_repeat_ngram_size: int  # 0: off
    bad_words: BadWords | None
    forced_bos_token_id: int | None
    forced_eos_token_ids: tuple[int, ...] | None
    # sampling warpers (only when do_sample)
    temperature: float  # 1.0: off
    top_k: int  # 0: off
    top_p: float  # 1.0: off
    min_tokens_to_keep: int
    renormalize_logits: bool
    # beam search
    length_penalty: float
    early_stopping: bool | str
    seed: int | None
    # what generate returns: ids only, or an output object holding what the flags ask for
    return_dict_in_generate: bool = False
    output_scores: bool = False
    output_logits: bool = False
    output_attentions: bool = False
    output_hidden_states: bool = False

    @property
    def expand_size(self) -> int:
        """Rows per source sentence during the search: beams, or samples per sentence."""
        return max(self.num_beams, self.num_return_sequences)

    @property
    def beams_to_keep(self) -> int:
        """Candidates kept per sentence each beam step: enough that num_beams survive even if all
        the best ones end in an eos token."""
        return max(2, 1 + len(self.eos_token_ids)) * self.num_beams

    @property
    def beam_fill_token_id(self) -> int:
        """The id beam search pads hypotheses with (Hugging Face: `pad or eos[0]`, -1 without eos)."""
        if not self.eos_token_ids:
            return -1
        return self.pad_token_id if self.pad_token_id else self.eos_token_ids[0]

    @property
    def uses_processors(self) -> bool:
        return bool(
            self.repetition_penalty != 1.0
            or self.no_repeat_ngram_size
            or self.bad_words is not None
            or (self.min_length > DECODER_PROMPT_LENGTH and self.eos_token_ids)
            or self.forced_bos_token_id is not None
            or self.forced_eos_token_ids is not None
            or self.renormalize_logits
            or (self.do_sample and (self.temperature != 1.0 or self.top_k or self.top_p < 1.0))
        )


# ---- small formulas -------------------------------------------------------------------------------


def length_penalty_divisor(generated_length: int, length_penalty: float) -> float:
    """A finished beam hypothesis scores sum(log p) / generated_length ** length_penalty.

    generated_length counts the new tokens, the final eos included (not the decoder start token).
    """
    return generated_length**length_penalty


def best_hypothetical_length(
    cur_len: int, max_length: int, early_stopping: bool | str, length_penalty: float, prompt_length: int = 1
) -> int:
    """The generated length to assume for the best running beam when deciding whether it can still
    beat the worst finished hypothesis (Hugging Face's early-stopping heuristic).

    cur_len: the running sequences' length (decoder start token included). With
    early_stopping="never" and a positive length penalty, longer is better, so the bound assumes
    max_length; otherwise it assumes the current length.
    """
    if early_stopping == "never" and length_penalty > 0.0:
        return max_length - prompt_length
    return cur_len - prompt_length


def can_infer_attention_mask(pad_token_id: int | None, eos_token_ids: Sequence[int]) -> bool:
    """Whether `input_ids != pad_token_id` may serve as the attention mask (pad exists and is no eos).

    The caller also checks that pad occurs in the batch; otherwise the mask is all ones.
    """
    return pad_token_id is not None and pad_token_id not in eos_token_ids


# ---- checking inputs (both searches) ------------------------------------------------------------------


# Hugging Face's generate() arguments that would replace what Westron computes itself, with the
# values at which they change nothing. Any other value is refused by name, never ignored.
UNSUPPORTED_ARGUMENTS: dict[str, tuple] = {
    "logits_processor": (None, []),
    "stopping_criteria": (None, []),
    "prefix_allowed_tokens_fn": (None,),
    "synced_gpus": (None, False),
    "assistant_model": (None,),
    "streamer": (None,),
    "negative_prompt_ids": (None,),
    "negative_prompt_attention_mask": (None,),
    "decoder_input_ids": (None,),
    "decoder_attention_mask": (None,),
}
MISSING_SOURCE_MESSAGE = (
    "generate() needs the source token ids: model.generate(**tokenizer(texts, return_tensors=...)), "
    "model.generate(input_ids) or model.generate(inputs=input_ids)"
)


def take_source_ids(inputs: Any, kwargs: dict[str, Any]) -> Any:
    """The source ids from HF 4.x's three spellings (`generate(ids)`, `generate(inputs=ids)`,
    `generate(input_ids=ids)`), popped from kwargs; one WestronError for anything else.

    Westron's generate runs the encoder itself, so `inputs_embeds` and `encoder_outputs` (which HF
    accepts instead of ids) are refused by name rather than failing as a missing argument.
    """
    input_ids = kwargs.pop("input_ids", None)
    if inputs is not None and input_ids is not None:
        raise WestronError("the source ids were given twice: pass generate(input_ids) or generate(input_ids=...), not both")
    for name in ("inputs_embeds", "encoder_outputs"):
        if kwargs.pop(name, None) is not None:
            raise WestronError(
                f"generate({name}=...) is not supported: generate runs the encoder itself, on input_ids (with attention_mask)"
            )
    unsupported = sorted(k for k in kwargs if k in UNSUPPORTED_ARGUMENTS and not _is_neutral(kwargs[k], UNSUPPORTED_ARGUMENTS[k]))
    if unsupported:
        raise WestronError(f"generate() argument(s) not supported by Westron: {', '.join(unsupported)}")
    for name in UNSUPPORTED_ARGUMENTS:  # the neutral ones ask for nothing
        kwargs.pop(name, None)
    source = inputs if inputs is not None else input_ids
    if source is None:
        raise WestronError(MISSING_SOURCE_MESSAGE)
    if isinstance(source, Mapping):  # generate(tokenizer(texts)) rather than generate(**tokenizer(texts))
        raise WestronError("generate() was given the whole tokenizer output as its ids: unpack it, generate(**batch)")
    return source


def _is_neutral(value: Any, neutral_values: tuple) -> bool:
    """Whether value is one of neutral_values (compared by type first: an array is never `== None`)."""
    return any(value is v or (type(value) is type(v) and value == v) for v in neutral_values)


def base_generation_config(generation_config: GenerationConfig | Mapping[str, Any] | None, model) -> GenerationConfig | Mapping[str, Any] | None:
    """What generate starts from: the generation_config argument, else the model's.

    As in HF 4.x, special tokens a GenerationConfig argument leaves unset (GenerationConfig(num_beams=4)
    knows no decoder start or eos) come from the model's generation config; its other settings do not.
    Without the argument, generation settings edited on model.config since the model was loaded
    (`model.config.num_beams = 4`, HF 4.x's deprecated way) apply, with HF 4.x's FutureWarning.
    """
    model_generation_config = getattr(model, "generation_config", None)
    if generation_config is None:
        edits = _model_config_edits(model)
        if not edits or model_generation_config is None:
            return model_generation_config
        warnings.warn(
            f"generation settings set on model.config ({', '.join(f'{k}={v!r}' for k, v in edits.items())}) are applied, as in "
            "transformers 4.x, which deprecated this: set them on model.generation_config or pass them to generate()",
            FutureWarning,
            stacklevel=4,
        )
        return GenerationConfig.from_dict(model_generation_config.to_dict(), **edits)
    if not isinstance(generation_config, GenerationConfig) or model_generation_config is None:
        return generation_config
    fallback = {
        key: getattr(model_generation_config, key, None)
        for key in SPECIAL_TOKEN_KEYS
        if getattr(generation_config, key, None) is None
    }
    return GenerationConfig.from_dict(generation_config.to_dict(), **fallback)


def _model_config_edits(model) -> dict[str, Any]:
    """Generation settings of model.config that differ from when the model was made (its snapshot)."""
    snapshot = getattr(model, "config_generation_snapshot", None)
    if snapshot is None:
        return {}
    before = json.loads(snapshot)
    now = json.loads(config_generation_snapshot(model.config))  # JSON both: a tuple and a list compare equal
    # use_cache: training scripts switch it off on model.config; Westron's search always caches.
    return {key: value for key, value in now.items() if before.get(key) != value and key != "use_cache"}


# The special tokens a generation_config argument takes from the model's when unset (HF 4.x's list).
SPECIAL_TOKEN_KEYS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


def check_source(
    lowest_id: int,
    highest_id: int,
    source_length: int,
    empty_rows: Sequence[int],
    vocab_size: int | None,
    max_positions: int | None,
) -> None:
    """The same WestronError in both frameworks for ids the model cannot read.

    Without it PyTorch fails deep inside an embedding lookup (IndexError) and XLA clamps the id
    silently. An all-zero attention_mask row gives the encoder nothing to attend to (NaN).
    """
    if max_positions is not None and source_length > max_positions:
        raise WestronError(f"input_ids hold {source_length} tokens but the model reads at most {max_positions}")
    if lowest_id < 0 or (vocab_size is not None and highest_id >= vocab_size):
        raise WestronError(f"input_ids must be token ids in [0, {vocab_size}), got {lowest_id} .. {highest_id}")
    if len(empty_rows):
        raise WestronError(
            f"attention_mask row {int(empty_rows[0])} is all zeros: every source needs at least one token"
        )


NAN_LOGITS_MESSAGE = (
    "the model produced NaN scores while generating (corrupt or diverged weights, or an overflow in "
    "half precision): no output is written"
)


# ---- resolving settings -----------------------------------------------------------------------------


def _as_id_tuple(name: str, value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, numbers.Integral) else value
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values
    ):
        raise WestronError(f"{name} must be a token id or a list of token ids, got {value!r}")
    if any(v < 0 for v in values):
        raise WestronError(f"{name} must hold non-negative token ids, got {value!r}")
    return tuple(int(v) for v in values)


def _int(name: str, value: Any, minimum: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise WestronError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _float(name: str, value: Any, check, requirement: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or math.isnan(value) or not check(value):
        raise WestronError(f"{name} must be {requirement}, got {value!r}")
    return float(value)


def prepare_bad_words(
    bad_words_ids: Any, eos_token_ids: Sequence[int], vocab_size: int | None = None
) -> BadWords | None:
    """Validates bad_words_ids (a list of lists of token ids) and groups it for matching.

    As in Hugging Face, a single-token entry equal to an eos token is dropped (banning eos would
    make sentences endless) and duplicates count once.
    """
    if bad_words_ids is None:
        return None
    if not isinstance(bad_words_ids, (list, tuple)) or not bad_words_ids:
        raise WestronError(f"bad_words_ids must be a non-empty list of lists of token ids, got {bad_words_ids!r}")
    sequences: dict[tuple[int, ...], None] = {}
    for entry in bad_words_ids:
        if (
            not isinstance(entry, (list, tuple))
            or not entry
            or not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 0 for t in entry)
        ):
            raise WestronError(
                f"bad_words_ids must be a list of non-empty lists of non-negative token ids, got {bad_words_ids!r}"
            )
        if vocab_size is not None and any(t >= vocab_size for t in entry):
            raise WestronError(f"bad_words_ids entry {list(entry)} holds a token id outside the vocabulary ({vocab_size})")
        sequences[tuple(int(t) for t in entry)] = None
    single: list[int] = []
    multi: dict[int, tuple[list, list]] = {}
    for sequence in sequences:
        if len(sequence) == 1:
            if sequence[0] not in eos_token_ids:
                single.append(sequence[0])
        else:
            prefixes, last = multi.setdefault(len(sequence) - 1, ([], []))
            prefixes.append(sequence[:-1])
            last.append(sequence[-1])
    if not single and not multi:
        return None
    return BadWords(
        single=tuple(single),
        multi=tuple((tuple(prefixes), tuple(last)) for prefixes, last in multi.values()),
    )


def check_generation_kwargs(kwargs: Mapping[str, Any]) -> None:
    """Rejects unknown keys (a typo would otherwise be ignored) and unsupported HF options."""
    unsupported = sorted(k for k in kwargs if k in UNSUPPORTED_NEUTRAL and kwargs[k] not in UNSUPPORTED_NEUTRAL[k])
    if unsupported:
        raise WestronError(f"generation option(s) not supported by Westron: {', '.join(unsupported)}")
    unknown = sorted(k for k in kwargs if k not in SUPPORTED_KEYS and k not in UNSUPPORTED_NEUTRAL)
    if "labels" in unknown:  # HF 4.x drops them: generate(**tokenizer(src, text_target=tgt)) runs there
        raise WestronError(
            "labels: generate() takes no labels (HF drops them silently); tokenize the sources without text_target, "
            "or leave batch['labels'] out"
        )
    if unknown:
        raise WestronError(
            f"unknown generation argument(s): {', '.join(unknown)} (known: {', '.join(sorted(SUPPORTED_KEYS))}, seed)"
        )


Getter = Callable[[str], Any]  # a setting's value by GenerationConfig field name, HF's default when unset


def resolve_generation_settings(
    base_config: GenerationConfig | Mapping[str, Any] | None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    vocab_size: int | None = None,
    max_position_embeddings: int | None = None,
    require_decoder_start: bool = True,
) -> GenerationSettings:
    """GenerationConfig + generate(**kwargs) -> validated GenerationSettings.

    base_config: the `generation_config` passed to generate, else the model's. kwargs override it.
    vocab_size: the decoder's output vocabulary, to check token ids. max_position_embeddings: caps
    the default max_length as Hugging Face does, and bounds any max_length. require_decoder_start:
    False only to check a config file, which may leave the start token to generate()'s arguments.
    Each section below validates in turn, so the first invalid setting, in this order, is reported.
    """
    kwargs = dict(kwargs or {})
    check_generation_kwargs(kwargs)
    config = _config_dict(base_config)
    # Hugging Face treats an unset max_length as "20 new tokens"; Westron's GenerationConfig holds
    # HF's default 20 when unset, so that value (or None) not passed explicitly means the same.
    max_length_is_default = kwargs.get("max_length") is None and config.get("max_length") in (None, DEFAULTS["max_length"])
    config.update(kwargs)

    def get(key: str) -> Any:  # None means "unset": Hugging Face's default applies
        value = config.get(key)
        return DEFAULTS.get(key) if value is None else value

    tokens = _resolve_special_tokens(get, vocab_size, require_decoder_start)
    strategy = _resolve_strategy(get)
    lengths = _resolve_lengths(get, max_length_is_default, max_position_embeddings)
    processors = _resolve_processors(get, tokens["eos_token_ids"], vocab_size)
    sampling = _resolve_sampling(get, strategy["do_sample"], strategy["num_beams"], tokens["eos_token_ids"])
    sampling["seed"] = _resolve_seed(seed)
    outputs = _resolve_outputs(get)
    return GenerationSettings(**tokens, **strategy, **lengths, **processors, **sampling, **outputs)


def _config_dict(base_config: GenerationConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """The base settings as a dict over DEFAULTS; a HF option Westron lacks must sit at a neutral value."""
    if base_config is None:
        config: dict[str, Any] = dict(DEFAULTS)
    elif isinstance(base_config, GenerationConfig):
        config = base_config.to_dict()
    elif isinstance(base_config, Mapping):
        config = {**DEFAULTS, **base_config}
    else:
        kind = f"{type(base_config).__module__}.{type(base_config).__name__}"
        raise WestronError(f"generation_config must be a westron.GenerationConfig, got {kind}")
    for key, value in config.items():  # a config file may carry HF options Westron lacks
        if key in UNSUPPORTED_NEUTRAL and value not in UNSUPPORTED_NEUTRAL[key]:
            raise WestronError(f"generation_config sets {key}={value!r}, which Westron does not support")
    return config


def _resolve_special_tokens(get: Getter, vocab_size: int | None, require_decoder_start: bool) -> dict[str, Any]:
    """eos (a tuple), pad (defaults to the first eos), the decoder start, forced bos / eos."""
    eos_token_ids = _as_id_tuple("eos_token_id", get("eos_token_id")) or ()
    pad_token_id = _int("pad_token_id", get("pad_token_id"), -(2**63), allow_none=True)
    if pad_token_id is None and eos_token_ids:
        pad_token_id = eos_token_ids[0]
    decoder_start = get("decoder_start_token_id")
    if decoder_start is None:
        decoder_start = get("bos_token_id")
    if decoder_start is None and require_decoder_start:
        raise WestronError("decoder_start_token_id (or bos_token_id) must be set to generate with an encoder-decoder model")
    decoder_start = _int("decoder_start_token_id", decoder_start, 0, allow_none=not require_decoder_start)
    forced_bos = _int("forced_bos_token_id", get("forced_bos_token_id"), 0, allow_none=True)
    forced_eos = _as_id_tuple("forced_eos_token_id", get("forced_eos_token_id"))
    if vocab_size is not None:
        for name, ids in (
            ("eos_token_id", eos_token_ids),
            ("forced_bos_token_id", () if forced_bos is None else (forced_bos,)),
            ("forced_eos_token_id", forced_eos or ()),
        ):
            if any(i >= vocab_size for i in ids):
                raise WestronError(f"{name} {list(ids)} lies outside the decoder vocabulary ({vocab_size} tokens)")
    return dict(
        decoder_start_token_id=decoder_start,
        pad_token_id=pad_token_id,
        eos_token_ids=eos_token_ids,
        forced_bos_token_id=forced_bos,
        forced_eos_token_ids=forced_eos,
    )


def _resolve_strategy(get: Getter) -> dict[str, Any]:
    """Greedy, sampling, beam search or beam sampling; how many sequences; the beam stopping rules."""
    num_beams = _int("num_beams", get("num_beams"), 1)
    num_return_sequences = _int("num_return_sequences", get("num_return_sequences"), 1)
    do_sample = get("do_sample")
    if not isinstance(do_sample, bool):
        raise WestronError(f"do_sample must be True or False, got {do_sample!r}")
    if num_return_sequences > 1:
        if num_beams == 1 and not do_sample:
            raise WestronError(
                f"num_return_sequences={num_return_sequences} needs beam search (num_beams >= it) or do_sample=True; "
                "greedy search returns one sequence per input"
            )
        if num_beams > 1 and num_return_sequences > num_beams:
            raise WestronError(
                f"num_return_sequences ({num_return_sequences}) must be <= num_beams ({num_beams}): "
                "beam search returns its best num_beams hypotheses at most"
            )
    mode = ("beam_sample" if do_sample else "beam") if num_beams > 1 else ("sample" if do_sample else "greedy")
    early_stopping = get("early_stopping")
    if early_stopping not in (True, False, "never"):
        raise WestronError(f'early_stopping must be True, False or "never", got {early_stopping!r}')
    length_penalty = _float("length_penalty", get("length_penalty"), math.isfinite, "a finite number")
    return dict(
        mode=mode,
        num_beams=num_beams,
        num_return_sequences=num_return_sequences,
        do_sample=do_sample,
        length_penalty=length_penalty,
        early_stopping=early_stopping,
    )


def _resolve_lengths(get: Getter, max_length_is_default: bool, max_position_embeddings: int | None) -> dict[str, int]:
    """max_length and min_length, decoder start token included (max/min_new_tokens take precedence)."""
    prompt = DECODER_PROMPT_LENGTH
    max_new_tokens = _int("max_new_tokens", get("max_new_tokens"), 1, allow_none=True)
    if max_new_tokens is not None:
        max_length = max_new_tokens + prompt
    else:
        max_length = _int("max_length", get("max_length"), 1, allow_none=True)
        if max_length is None or max_length_is_default:
            max_length = DEFAULTS["max_length"] + prompt
            if max_position_embeddings is not None:
                max_length = min(max_length, max_position_embeddings)
        if max_length <= prompt:
            raise WestronError(
                f"max_length ({max_length}) must exceed the decoder prompt length ({prompt}); "
                "set max_new_tokens to the number of tokens to generate"
            )
    if max_position_embeddings is not None and max_length - 1 > max_position_embeddings:
        raise WestronError(
            f"max_length {max_length} needs {max_length - 1} decoder positions but the model has "
            f"max_position_embeddings={max_position_embeddings}; lower max_new_tokens / max_length"
        )
    min_new_tokens = _int("min_new_tokens", get("min_new_tokens"), 0, allow_none=True)
    if min_new_tokens is not None:
        min_length = min_new_tokens + prompt
    else:
        min_length = _int("min_length", get("min_length"), 0)
    return dict(max_length=max_length, min_length=min_length)


def _resolve_processors(get: Getter, eos_token_ids: tuple[int, ...], vocab_size: int | None) -> dict[str, Any]:
    """The logits processors' settings (the forced tokens are special tokens, resolved with them)."""
    repetition_penalty = _float("repetition_penalty", get("repetition_penalty"), lambda v: v > 0, "a number > 0")
    no_repeat_ngram_size = _int("no_repeat_ngram_size", get("no_repeat_ngram_size"), 0)
    bad_words = prepare_bad_words(get("bad_words_ids"), eos_token_ids, vocab_size)
    renormalize = bool(get("renormalize_logits"))
    return dict(
        repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
        bad_words=bad_words,
        renormalize_logits=renormalize,
    )


def _resolve_sampling(get: Getter, do_sample: bool, num_beams: int, eos_token_ids: tuple[int, ...]) -> dict[str, Any]:
    """The sampling warpers' settings: read only when sampling, neutral otherwise (as in Hugging Face)."""
    temperature, top_k, top_p = 1.0, 0, 1.0  # ignored without sampling, as in Hugging Face
    if do_sample:
        temperature = _float(
            "temperature", get("temperature"), lambda v: v > 0, "a number > 0 (for greedy search use do_sample=False)"
        )
        top_k = _int("top_k", get("top_k"), 0)
        top_p = _float("top_p", get("top_p"), lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
    min_tokens_to_keep = max(2, len(eos_token_ids) + 1) if num_beams > 1 else 1
    return dict(temperature=temperature, top_k=top_k, top_p=top_p, min_tokens_to_keep=min_tokens_to_keep)


def _resolve_seed(seed: Any) -> int | None:
    """An integer >= 0, or HF 4.x TF's stateless seed (two ints), kept as one (tf_search splits it again)."""
    if isinstance(seed, (list, tuple)):
        in_range = [isinstance(p, numbers.Integral) and not isinstance(p, bool) and 0 <= p < 2**31 for p in seed]
        if len(seed) != 2 or not all(in_range):
            raise WestronError(f"seed must be an integer >= 0 or a pair of integers in [0, 2**31), got {seed!r}")
        seed = seed[0] + seed[1] * 2**31
    if seed is not None:
        seed = _int("seed", seed, 0)
    return seed


def _resolve_outputs(get: Getter) -> dict[str, bool]:
    """return_dict_in_generate and the output flags (which need it)."""
    flags = {}
    for name in ("return_dict_in_generate", *OUTPUT_FLAGS):
        value = get(name)
        if value is None:
            value = False
        if not isinstance(value, bool):
            raise WestronError(f"{name} must be True or False, got {value!r}")
        flags[name] = value
    asked = [name for name in OUTPUT_FLAGS if flags[name]]
    if asked and not flags["return_dict_in_generate"]:
        raise WestronError(
            f"{', '.join(n + '=True' for n in asked)} needs return_dict_in_generate=True: "
            "without it generate returns the ids only"
        )
    return flags
