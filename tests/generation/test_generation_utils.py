"""westron.generation.utils: the framework-free settings both searches share (no model needed)."""

from __future__ import annotations

import pytest

from westron.errors import WestronError
from westron.generation.configuration_utils import GenerationConfig
from westron.generation.utils import (
    BadWords,
    best_hypothetical_length,
    can_infer_attention_mask,
    check_generation_kwargs,
    length_penalty_divisor,
    prepare_bad_words,
    resolve_generation_settings,
)

MARIAN = GenerationConfig(pad_token_id=98, eos_token_id=0, decoder_start_token_id=98)


def resolve(config=MARIAN, **kwargs):
    return resolve_generation_settings(config, kwargs, vocab_size=99, max_position_embeddings=64)


def test_default_length_is_20_new_tokens_capped_by_positions():
    assert resolve().max_length == 21
    assert resolve_generation_settings(MARIAN, {}, max_position_embeddings=10).max_length == 10
    assert resolve(max_length=20).max_length == 20  # passed explicitly: a total length


def test_max_new_tokens_wins_over_max_length():
    assert resolve(max_new_tokens=5).max_length == 6
    assert resolve(max_new_tokens=5, max_length=50).max_length == 6
    config = GenerationConfig.from_dict(MARIAN.to_dict(), max_length=512)  # an opus-mt generation_config.json
    assert resolve_generation_settings(config, {}).max_length == 512
    assert resolve_generation_settings(config, {"max_new_tokens": 3}).max_length == 4


def test_min_new_tokens_wins_over_min_length():
    assert resolve().min_length == 0
    assert resolve(min_length=7).min_length == 7
    assert resolve(min_length=7, min_new_tokens=3).min_length == 4


def test_special_tokens():
    settings = resolve()
    assert (settings.pad_token_id, settings.eos_token_ids, settings.decoder_start_token_id) == (98, (0,), 98)
    no_pad = resolve(GenerationConfig(eos_token_id=[2, 3], bos_token_id=5))
    assert no_pad.pad_token_id == 2 and no_pad.eos_token_ids == (2, 3) and no_pad.decoder_start_token_id == 5
    assert no_pad.beams_to_keep == 3 * no_pad.num_beams
    with pytest.raises(WestronError, match="decoder_start_token_id"):
        resolve(GenerationConfig(eos_token_id=0))
    assert resolve(forced_eos_token_id=0).forced_eos_token_ids == (0,)
    assert resolve(forced_eos_token_id=[0, 1]).forced_eos_token_ids == (0, 1)


def test_modes_and_beam_fill():
    assert resolve().mode == "greedy"
    assert resolve(do_sample=True).mode == "sample"
    assert resolve(num_beams=3).mode == "beam"
    assert resolve(num_beams=3, do_sample=True).mode == "beam_sample"
    assert resolve(num_beams=3).beam_fill_token_id == 98
    # Hugging Face fills with `pad or eos[0]`: a pad id of 0 gives eos
    assert resolve(GenerationConfig(pad_token_id=0, eos_token_id=2, decoder_start_token_id=0)).beam_fill_token_id == 2
    assert resolve(GenerationConfig(pad_token_id=5, decoder_start_token_id=0)).beam_fill_token_id == -1
    assert resolve(num_beams=4, num_return_sequences=2).expand_size == 4
    assert resolve(do_sample=True, num_return_sequences=3).expand_size == 3
    assert resolve(num_beams=3, do_sample=True).min_tokens_to_keep == 2
    assert resolve(do_sample=True).min_tokens_to_keep == 1


def test_sampling_settings_are_ignored_without_sampling():
    settings = resolve(temperature=0.0, top_k=3, top_p=0.5)
    assert (settings.temperature, settings.top_k, settings.top_p) == (1.0, 0, 1.0)
    settings = resolve(do_sample=True, temperature=0.5, top_k=3, top_p=0.5)
    assert (settings.temperature, settings.top_k, settings.top_p) == (0.5, 3, 0.5)
    assert resolve(do_sample=True).top_k == 50  # HF's default


def test_bad_words_preparation():
    prepared = prepare_bad_words([[5], [0], [1, 2], [3, 4], [1, 2], [6, 7, 8]], eos_token_ids=(0,), vocab_size=10)
    assert prepared == BadWords(single=(5,), multi=((((1,), (3,)), (2, 4)), (((6, 7),), (8,))))
    assert prepare_bad_words(None, (0,)) is None
    assert prepare_bad_words([[0]], (0,)) is None  # banning eos alone is dropped
    for bad in ([], [5], [[]], [[-1]], [["a"]], "x"):
        with pytest.raises(WestronError, match="bad_words_ids must be"):
            prepare_bad_words(bad, (0,))
    with pytest.raises(WestronError, match="outside the vocabulary"):
        prepare_bad_words([[3, 10]], (0,), vocab_size=10)


def test_beam_formulas():
    assert length_penalty_divisor(4, 1.0) == 4.0
    assert length_penalty_divisor(4, 0.5) == 2.0
    assert length_penalty_divisor(4, 0.0) == 1.0
    assert best_hypothetical_length(5, 21, False, 1.0) == 4
    assert best_hypothetical_length(5, 21, True, 1.0) == 4
    assert best_hypothetical_length(5, 21, "never", 1.0) == 20
    assert best_hypothetical_length(5, 21, "never", -1.0) == 4


def test_attention_mask_inference_needs_a_pad_that_is_no_eos():
    assert can_infer_attention_mask(98, (0,))
    assert not can_infer_attention_mask(0, (0,))
    assert not can_infer_attention_mask(None, (0,))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_beamz": 2}, r"unknown generation argument\(s\): num_beamz"),
        ({"labels": [[5, 0]]}, r"labels: generate\(\) takes no labels .* without text_target"),
        ({"diversity_penalty": 0.5}, r"not supported by Westron: diversity_penalty"),
        ({"length_penalty": float("nan")}, r"length_penalty must be a finite number"),
        ({"num_return_sequences": 0}, r"num_return_sequences must be an integer >= 1"),
        ({"do_sample": "yes"}, r"do_sample must be True or False"),
        ({"do_sample": True, "top_k": -1}, r"top_k must be an integer >= 0"),
        ({"min_new_tokens": -2}, r"min_new_tokens must be an integer >= 0"),
        ({"no_repeat_ngram_size": 1.5}, r"no_repeat_ngram_size must be an integer >= 0"),
        ({"eos_token_id": "x"}, r"eos_token_id must be a token id or a list of token ids"),
        ({"forced_eos_token_id": 99}, r"forced_eos_token_id \[99\] lies outside"),
    ],
)
def test_invalid_settings(kwargs, message):
    with pytest.raises(WestronError, match=message):
        resolve(**kwargs)


def test_neutral_values_of_unsupported_options_are_accepted():
    check_generation_kwargs({"num_beam_groups": 1, "typical_p": 1.0, "output_scores": False})
    resolve(GenerationConfig.from_dict({**MARIAN.to_dict(), "renormalize_logits": True, "diversity_penalty": 0.0}))
    with pytest.raises(WestronError, match="seed must be an integer >= 0"):
        resolve_generation_settings(MARIAN, {}, seed=-1)
