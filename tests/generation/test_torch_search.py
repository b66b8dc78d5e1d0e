"""Westron's PyTorch search against Hugging Face transformers' generate (the oracle).

Tiny random HF Marian checkpoints (tests/hf_oracle.py) are loaded by both libraries; every search
setting must give the same ids. A random tiny model mostly repeats one token, so the checkpoints
here get a larger init_std and a random final_logits_bias with a boost on eos: sentences then end at
different lengths and beam search differs from greedy, which the tests check before relying on it.
"""

from __future__ import annotations

import collections
import json
import os

import pytest
import torch
import transformers
from transformers import MarianMTModel as HFMarianMTModel

from tests.hf_oracle import MARIAN_VARIANTS, random_batch, save_tiny_marian
from westron.errors import WestronError
from westron.generation import torch_search
from westron.generation.configuration_utils import GenerationConfig
from westron.generation.torch_search import (
    apply_temperature,
    ban_bad_words,
    ban_eos_before_min_length,
    ban_repeated_ngrams,
    force_tokens_at,
    keep_top_k,
    keep_top_p,
    penalize_repetitions,
)
from westron.generation.utils import prepare_bad_words
from westron.models.marian.modeling_marian import MarianMTModel

transformers.logging.set_verbosity_error()
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # HF's advice about max_length defaults

EOS = 0
LIVELY = "lively"  # shared-untied-gelu with settings picked for varied sentence lengths
# name -> (save_tiny_marian overrides, seed, eos bias)
CHECKPOINTS = {
    **{name: (dict(variant, init_std=0.15), 0, 2.0) for name, variant in MARIAN_VARIANTS.items()},
    LIVELY: (dict(MARIAN_VARIANTS["shared-untied-gelu"], init_std=0.15), 2, 2.5),
}


class Pair:
    """The same checkpoint in HF and in Westron, and a padded batch for it."""

    def __init__(self, folder: str):
        self.folder = folder
        self.hf = HFMarianMTModel.from_pretrained(folder).eval()
        self.westron = MarianMTModel.from_pretrained(folder)
        config = self.hf.config
        self.pad = config.pad_token_id
        # Source ids below pad, so padding is only at the end.
        self.ids, self.mask = random_batch(min(config.vocab_size, self.pad), self.pad, EOS, batch=6, length=9, seed=1)

    def both(self, ids=None, mask="default", **kwargs):
        ids = self.ids if ids is None else ids
        mask = self.mask if isinstance(mask, str) else mask
        expected = self.hf.generate(ids, attention_mask=mask, **kwargs)
        actual = self.westron.generate(ids, attention_mask=mask, **kwargs)
        return expected, actual

    def check(self, **kwargs) -> torch.Tensor:
        expected, actual = self.both(**kwargs)
        assert actual.dtype == torch.long
        assert actual.tolist() == expected.tolist(), kwargs
        return actual


def save_checkpoint(folder, name: str) -> str:
    overrides, seed, eos_bias = CHECKPOINTS[name]
    save_tiny_marian(folder, seed=seed, **overrides)
    model = HFMarianMTModel.from_pretrained(folder)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        model.final_logits_bias.copy_(torch.randn(model.final_logits_bias.shape, generator=generator) * 0.2)
        model.final_logits_bias[0, EOS] += eos_bias
    model.save_pretrained(folder)
    return os.fspath(folder)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    cache = {}

    def get(name: str) -> Pair:
        if name not in cache:
            cache[name] = Pair(save_checkpoint(tmp_path_factory.mktemp(name), name))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def lively(pairs) -> Pair:
    return pairs(LIVELY)


def lengths(ids: torch.Tensor, pad: int) -> list[int]:
    """Tokens per row, the decoder start token (= pad in Marian) included."""
    return [1 + int((row[1:] != pad).sum()) for row in ids]


# ---- the fixture itself is interesting enough ------------------------------------------------------


def test_lively_checkpoint_varies(lively):
    greedy = lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=12)
    beam = lively.westron.generate(
        lively.ids, attention_mask=lively.mask, max_new_tokens=12, num_beams=4, num_return_sequences=4
    )
    greedy_lengths = lengths(greedy, lively.pad)
    assert min(greedy_lengths) < 13 and max(greedy_lengths) == 13  # some rows stop early, some run to the end
    assert len(set(lengths(beam, lively.pad))) > 1
    assert len(set(greedy[:, 1:].flatten().tolist())) > 3
    assert greedy.shape != beam[::4].shape or not torch.equal(greedy, beam[::4])


# ---- greedy and beam --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*MARIAN_VARIANTS, LIVELY])
def test_greedy_matches_hf(pairs, name):
    pair = pairs(name)
    pair.check(max_new_tokens=12)
    pair.check()  # HF's default: 20 new tokens


@pytest.mark.parametrize("name", ["shared-tied-swish", "separate-vocab-untied"])
def test_beam_matches_hf_on_variants(pairs, name):
    pairs(name).check(num_beams=4, max_new_tokens=12, num_return_sequences=2)


BEAM_SETTINGS = [
    dict(num_beams=4),
    dict(num_beams=3, length_penalty=0.5),
    dict(num_beams=4, length_penalty=2.0, num_return_sequences=4),
    dict(num_beams=4, length_penalty=-1.0, num_return_sequences=2),
    dict(num_beams=3, early_stopping=True),
    dict(num_beams=4, early_stopping=True, length_penalty=2.0, num_return_sequences=3),
    dict(num_beams=3, early_stopping="never"),
    dict(num_beams=4, early_stopping="never", length_penalty=0.0, num_return_sequences=4),
    dict(num_beams=4, early_stopping="never", length_penalty=-0.5),
    # With two beams a sentence's pool fills while others still run: the early-stopping bound
    # then decides which later hypotheses may still join (each of these fails if it is wrong).
    dict(num_beams=2),
    dict(num_beams=2, early_stopping="never"),
]


@pytest.mark.parametrize("settings", BEAM_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_beam_matches_hf(lively, settings):
    lively.check(max_new_tokens=12, **settings)


def test_beam_settings_matter(lively):
    """The beam settings above lead to different outputs, so comparing them with HF tests each one."""
    outputs = {}
    for settings in BEAM_SETTINGS[:3] + BEAM_SETTINGS[6:7]:
        output = lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=12, **settings)
        outputs[str(settings)] = output[:: settings.get("num_return_sequences", 1)].tolist()
    assert len({json.dumps(v) for v in outputs.values()}) == len(outputs)


# ---- lengths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize(
    "settings",
    [
        dict(max_new_tokens=5),
        dict(max_length=7),
        dict(max_length=9, max_new_tokens=4),  # max_new_tokens wins
        dict(min_length=11, max_new_tokens=14),
        dict(min_new_tokens=9, max_new_tokens=12),
        dict(min_length=4, min_new_tokens=10, max_new_tokens=12),  # min_new_tokens wins
    ],
    ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()),
)
def test_lengths_match_hf(lively, settings, num_beams):
    output = lively.check(num_beams=num_beams, **settings)
    max_length = settings["max_new_tokens"] + 1 if "max_new_tokens" in settings else settings["max_length"]
    assert output.shape[1] <= max_length
    min_length = settings["min_new_tokens"] + 1 if "min_new_tokens" in settings else settings.get("min_length", 0)
    assert min(lengths(output, lively.pad)) >= min_length
    assert not (output[:, 1 : max(min_length - 1, 1)] == EOS).any()


def test_min_length_changes_output(lively):
    plain = lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=14)
    assert min(lengths(plain, lively.pad)) < 11  # so min_length=11 has something to do
    longer = lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=14, min_length=11)
    assert min(lengths(longer, lively.pad)) >= 11


@pytest.mark.parametrize("num_beams", [1, 3])
def test_cache_grows_past_its_first_chunk(lively, num_beams):
    new = torch_search.CACHE_CHUNK + 10
    lively.check(num_beams=num_beams, max_new_tokens=new, min_new_tokens=new)


def test_decoder_runs_once_per_generated_position_and_stops_when_all_rows_are_done(lively, monkeypatch):
    calls = []
    decode = lively.westron.decode

    def counting_decode(*args, **kwargs):
        calls.append(kwargs.get("cache_position"))
        return decode(*args, **kwargs)

    monkeypatch.setattr(lively.westron, "decode", counting_decode)
    output = lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=40)
    assert output.shape[1] < 41  # every row ended before max_length
    assert calls == list(range(output.shape[1] - 1))


# ---- vocabulary-wide top-k and argmax through blocks ------------------------------------------------


def _scores_with_ties_and_banned_tokens(shape, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randn(shape, generator=generator)
    scores[..., 100:300] = float("-inf")  # banned tokens (bad words, min length) across block edges
    flat = scores.view(-1, shape[-1])
    flat[0, 7] = flat[0, 2000] = flat[0].max() + 1.0  # the best token twice, in different blocks
    flat[-1, :] = float("-inf")  # a row without a possible token (forced tokens ban all but one)
    flat[-1, shape[-1] - 1] = 0.0  # ... the one allowed sits in the tail
    return scores


@pytest.mark.parametrize("shape", [(6, 58101), (3, 4, 32128), (3, 4096)], ids=str)
@pytest.mark.parametrize("k", [1, 2, 8])
def test_block_top_k_equals_torch_topk(shape, k):
    scores = _scores_with_ties_and_banned_tokens(shape, seed=k)
    values, indices = torch_search._top_k(scores, k)
    expected_values, expected_indices = torch.topk(scores, k)
    assert torch.equal(values, expected_values)
    assert torch.equal(scores.gather(-1, indices), values)  # every index points at its value
    assert bool((indices < shape[-1]).all())
    assert all(len(set(row)) == k for row in indices.view(-1, k).tolist())  # no token twice
    # Which of equal scores comes first is torch.topk's own choice (not the lowest index, on the
    # CPU); the rows without ties give the same tokens.
    ahead = torch.topk(scores, k + 1)[0]  # a tie with the next best counts too
    untied = (ahead[..., :, None] != ahead[..., None, :]).sum((-1, -2)) == (k + 1) * k
    assert bool(untied.any())
    assert torch.equal(indices[untied], expected_indices[untied])


@pytest.mark.parametrize("shape", [(6, 58101), (3, 4, 32128), (2, 512), (5, 511)], ids=str)
def test_block_argmax_equals_torch_argmax_first_maximum_included(shape):
    scores = _scores_with_ties_and_banned_tokens(shape, seed=3) if shape[-1] > 2000 else torch.randn(shape)
    assert torch.equal(torch_search._argmax(scores), scores.argmax(dim=-1))
    if shape[-1] > 2000:
        assert int(torch_search._argmax(scores).view(-1)[0]) == 7  # the first of the two maxima


def test_block_top_k_and_argmax_pass_a_nan_on():
    scores = torch.randn(3, 58101)
    scores[1, 40000] = float("nan")
    assert int(torch_search._argmax(scores)[1]) == 40000
    assert bool(torch_search._top_k(scores, 4)[0][1].isnan().any())


@pytest.mark.parametrize("num_beams", [1, 4])
def test_search_through_small_vocabulary_blocks_matches_hf(lively, monkeypatch, num_beams):
    """The tiny vocabulary (99) takes the block route with 4-token blocks: greedy and beam ids as HF's."""
    monkeypatch.setattr(torch_search, "VOCAB_BLOCK", 4)
    calls = []
    block_positions = torch_search._block_positions
    monkeypatch.setattr(
        torch_search, "_block_positions", lambda *args: calls.append(1) or block_positions(*args)
    )
    lively.check(num_beams=num_beams, max_new_tokens=12, num_return_sequences=min(num_beams, 2))
    assert calls  # the block route ran


# ---- logits processors, end to end ------------------------------------------------------------------


def _most_common_token(output: torch.Tensor, pad: int) -> int:
    counts = collections.Counter(t for t in output[:, 1:].flatten().tolist() if t not in (pad, EOS))
    return counts.most_common(1)[0][0]


def _some_bigram(output: torch.Tensor, pad: int) -> list[int]:
    for row in output.tolist():
        for a, b in zip(row[1:], row[2:]):
            if a not in (pad, EOS) and b not in (pad, EOS):
                return [a, b]
    raise AssertionError("no bigram in the output")


def _contains(row: list[int], sequence: list[int]) -> bool:
    return any(row[i : i + len(sequence)] == sequence for i in range(len(row) - len(sequence) + 1))


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize(
    "settings",
    [
        dict(no_repeat_ngram_size=1),
        dict(no_repeat_ngram_size=2),
        dict(no_repeat_ngram_size=3),
        dict(repetition_penalty=1.8),
        dict(repetition_penalty=0.6),
        dict(forced_bos_token_id=5),
        dict(forced_eos_token_id=EOS, min_new_tokens=12),
        dict(forced_eos_token_id=[EOS, 7], forced_bos_token_id=9),
    ],
    ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()),
)
def test_processors_match_hf_and_change_the_output(lively, settings, num_beams):
    common = dict(num_beams=num_beams, max_new_tokens=14, min_new_tokens=settings.get("min_new_tokens"))
    plain = lively.westron.generate(lively.ids, attention_mask=lively.mask, **common)
    output = lively.check(**common, **{k: v for k, v in settings.items() if k != "min_new_tokens"})
    assert output.shape != plain.shape or not torch.equal(output, plain)


def test_renormalize_logits_matches_hf_and_matters_to_beam_search(lively):
    """opus-mt configs set renormalize_logits: after a ban, beam scores are log-probabilities again."""
    common = dict(num_beams=3, max_new_tokens=14, bad_words_ids=[[94]])
    output = lively.check(renormalize_logits=True, **common)
    plain = lively.westron.generate(lively.ids, attention_mask=lively.mask, **common)
    assert output.shape != plain.shape or not torch.equal(output, plain)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_bad_words_match_hf(lively, num_beams):
    common = dict(num_beams=num_beams, max_new_tokens=10)
    plain = lively.westron.generate(lively.ids, attention_mask=lively.mask, **common)
    token = _most_common_token(plain, lively.pad)
    bigram = _some_bigram(plain, lively.pad)
    single = lively.check(bad_words_ids=[[token]], **common)
    assert token not in single.flatten().tolist()
    multi = lively.check(bad_words_ids=[bigram, [EOS]], **common)  # a lone eos is ignored, as in HF
    assert not any(_contains(row, bigram) for row in multi.tolist())
    assert not torch.equal(multi, plain) and not torch.equal(single, plain)


def test_default_bad_words_of_marian_configs_ban_pad(tmp_path):
    """opus-mt configs carry bad_words_ids=[[pad]]; here pad is made likely, so the ban matters."""
    folder = save_checkpoint(tmp_path, LIVELY)
    model = HFMarianMTModel.from_pretrained(folder)
    pad = model.config.pad_token_id
    with torch.no_grad():
        model.final_logits_bias[0, pad] += 1.2
    model.generation_config.bad_words_ids = [[pad]]
    model.save_pretrained(folder)
    with open(os.path.join(folder, "generation_config.json"), encoding="utf-8") as handle:
        assert json.load(handle)["bad_words_ids"] == [[pad]]
    pair = Pair(folder)
    assert pair.westron.generation_config.bad_words_ids == [[pad]]
    for num_beams in (1, 3):
        unbanned = pair.westron.generate(pair.ids, attention_mask=pair.mask, num_beams=num_beams, bad_words_ids=None)
        assert any(pad in row[1 : row.index(EOS) if EOS in row else None] for row in unbanned.tolist())
        output = pair.check(num_beams=num_beams, max_new_tokens=12)
        for row in output.tolist():
            assert pad not in row[1 : row.index(EOS) if EOS in row else None]


def test_generation_config_argument(lively):
    config = GenerationConfig.from_dict(
        lively.westron.generation_config.to_dict(), num_beams=3, max_new_tokens=8, no_repeat_ngram_size=2
    )
    expected = lively.hf.generate(
        lively.ids, attention_mask=lively.mask, num_beams=3, max_new_tokens=8, no_repeat_ngram_size=2
    )
    actual = lively.westron.generate(lively.ids, attention_mask=lively.mask, generation_config=config)
    assert actual.tolist() == expected.tolist()
    # kwargs override the generation_config
    actual = lively.westron.generate(lively.ids, attention_mask=lively.mask, generation_config=config, num_beams=1)
    expected = lively.hf.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=8, no_repeat_ngram_size=2)
    assert actual.tolist() == expected.tolist()


# ---- padding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("num_beams", [1, 3])
def test_attention_mask_defaults_to_non_pad_positions(lively, num_beams):
    assert (lively.ids == lively.pad).any()
    expected = lively.hf.generate(lively.ids, attention_mask=lively.mask, num_beams=num_beams, max_new_tokens=12)
    derived = lively.westron.generate(lively.ids, num_beams=num_beams, max_new_tokens=12)
    assert derived.tolist() == expected.tolist()
    unmasked = lively.westron.generate(
        lively.ids, attention_mask=torch.ones_like(lively.mask), num_beams=num_beams, max_new_tokens=12
    )
    assert not torch.equal(unmasked, derived)  # the padding does matter here


def test_single_sentence_and_numpy_input(lively):
    ids = lively.ids[:1, :8].numpy()
    expected = lively.hf.generate(torch.as_tensor(ids), max_new_tokens=12)
    assert lively.westron.generate(ids, max_new_tokens=12).tolist() == expected.tolist()


def test_output_is_an_ordinary_tensor(lively):
    output = lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=4)
    assert not output.is_inference()
    output[:, 0] = 1  # an inference tensor would refuse this outside inference mode


# ---- sampling ---------------------------------------------------------------------------------------

SAMPLING = [
    dict(do_sample=True),
    dict(do_sample=True, temperature=0.7, top_k=5, top_p=0.8, num_return_sequences=2),
    dict(do_sample=True, top_k=0, top_p=0.5, repetition_penalty=1.3),
    dict(do_sample=True, num_beams=3, num_return_sequences=2, temperature=1.5),
]


@pytest.mark.parametrize("settings", SAMPLING, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_seeded_sampling_is_reproducible_and_follows_torch_rng(lively, settings):
    run = lambda seed: lively.westron.generate(  # noqa: E731
        lively.ids, attention_mask=lively.mask, max_new_tokens=12, seed=seed, **settings
    )
    first, again, other = run(3), run(3), run(4)
    assert torch.equal(first, again)
    assert first.shape != other.shape or not torch.equal(first, other)
    # The generator draws as torch's global one does, so HF seeded with torch.manual_seed agrees.
    torch.manual_seed(3)
    expected = lively.hf.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=12, **settings)
    assert first.tolist() == expected.tolist()


def test_torch_manual_seed_reproduces_sampling_without_seed_argument(lively):
    """Without seed=, sampling draws from torch's global RNG: torch.manual_seed(n) before generate reproduces it."""
    def run(seed):
        torch.manual_seed(seed)
        return lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=12, do_sample=True)

    first, again, other = run(5), run(5), run(6)
    assert torch.equal(first, again)
    assert first.shape != other.shape or not torch.equal(first, other)


def test_top_k_1_sampling_is_greedy(lively):
    greedy = lively.westron.generate(lively.ids, attention_mask=lively.mask, max_new_tokens=12)
    for seed in (0, 1):
        sampled = lively.westron.generate(
            lively.ids, attention_mask=lively.mask, max_new_tokens=12, do_sample=True, top_k=1, seed=seed
        )
        assert torch.equal(sampled, greedy)


@pytest.fixture(scope="module")
def fixed_distribution(lively):
    """A model whose next-token distribution is the same at every step (lm_head zeroed, logits =
    final_logits_bias): tokens 10, 11, 12, 13 have probabilities .4, .3, .2, .05, the other
    non-eos tokens share .05, and eos never comes."""
    model = MarianMTModel.from_pretrained(lively.folder)
    vocab = model.final_logits_bias.shape[1]
    probs = torch.full((vocab,), 0.05 / (vocab - 5))
    probs[[10, 11, 12, 13]] = torch.tensor([0.4, 0.3, 0.2, 0.05])
    with torch.no_grad():
        model.lm_head.weight.zero_()
        logits = probs.log()
        logits[EOS] = -1e4
        model.final_logits_bias.copy_(logits[None])
    return model


@pytest.mark.parametrize(
    "settings, allowed",
    [
        (dict(top_k=3), {10, 11, 12}),
        (dict(top_k=2, temperature=0.5), {10, 11}),
        (dict(top_k=0, top_p=0.75), {10, 11, 12}),  # .4 + .3 < .75: the nucleus needs 12 too
        (dict(top_k=0, top_p=0.6), {10, 11}),
        (dict(top_k=0, top_p=0.3), {10}),
        (dict(top_k=4, top_p=0.95), {10, 11, 12, 13}),
    ],
)
def test_sampling_draws_only_allowed_tokens(lively, fixed_distribution, settings, allowed):
    output = fixed_distribution.generate(
        lively.ids, attention_mask=lively.mask, do_sample=True, max_new_tokens=40, seed=0, **settings
    )
    drawn = collections.Counter(output[:, 1:].flatten().tolist())
    assert set(drawn) == allowed  # only those, and each of them shows up in 240 draws
    if allowed == {10, 11, 12}:
        assert drawn[10] > drawn[12]


def test_sampling_without_filters_draws_the_tail_too(lively, fixed_distribution):
    output = fixed_distribution.generate(
        lively.ids, attention_mask=lively.mask, do_sample=True, top_k=0, max_new_tokens=40, seed=0
    )
    assert len(set(output[:, 1:].flatten().tolist())) > 4


# ---- invalid arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_beams=3, num_return_sequences=5), r"num_return_sequences \(5\) must be <= num_beams \(3\)"),
        (dict(num_return_sequences=2), r"num_return_sequences=2 needs beam search"),
        (dict(max_new_tokens=-1), r"max_new_tokens must be an integer >= 1, got -1"),
        (dict(max_new_tokens=0), r"max_new_tokens must be an integer >= 1, got 0"),
        (dict(max_length=1), r"max_length \(1\) must exceed"),
        (dict(max_new_tokens=200), r"max_position_embeddings=64"),
        (dict(num_beamz=4), r"unknown generation argument\(s\): num_beamz"),
        (dict(typical_p=0.5), r"not supported by Westron: typical_p"),
        (dict(early_stopping="sometimes"), r'early_stopping must be True, False or "never"'),
        (dict(num_beams=0), r"num_beams must be an integer >= 1"),
        (dict(do_sample=True, temperature=0.0), r"temperature must be a number > 0"),
        (dict(do_sample=True, top_p=1.5), r"top_p must be in \[0, 1\]"),
        (dict(repetition_penalty=0), r"repetition_penalty must be a number > 0"),
        (dict(bad_words_ids=[[]]), r"bad_words_ids must be a list of non-empty lists"),
        (dict(bad_words_ids=[[5, 1000]]), r"outside the vocabulary"),
        (dict(forced_bos_token_id=500), r"forced_bos_token_id \[500\] lies outside the decoder vocabulary"),
    ],
)
def test_invalid_arguments_raise_westron_error(lively, kwargs, message):
    with pytest.raises(WestronError, match=message):
        lively.westron.generate(lively.ids, attention_mask=lively.mask, **kwargs)


def test_invalid_inputs_raise_westron_error(lively):
    with pytest.raises(WestronError, match=r"input_ids must be a non-empty \(batch, length\) tensor"):
        lively.westron.generate(lively.ids[0])
    with pytest.raises(WestronError, match="input_ids must hold integers"):
        lively.westron.generate(lively.ids.float())
    with pytest.raises(WestronError, match="attention_mask has shape"):
        lively.westron.generate(lively.ids, attention_mask=lively.mask[:, :3])


def test_unsupported_option_in_a_config_file_raises(lively):
    config = GenerationConfig.from_dict({**lively.westron.generation_config.to_dict(), "num_beam_groups": 2})
    with pytest.raises(WestronError, match="num_beam_groups=2"):
        lively.westron.generate(lively.ids, generation_config=config)
    neutral = GenerationConfig.from_dict({**lively.westron.generation_config.to_dict(), "num_beam_groups": 1})
    lively.westron.generate(lively.ids, generation_config=neutral, max_new_tokens=2)


# ---- logits processors, one by one against HF's ---------------------------------------------------------


def _random_case(rows=6, length=7, vocab=20, seed=0):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, 6, (rows, length), generator=generator)  # small range: repeats and n-grams
    scores = torch.randn(rows, vocab, generator=generator) * 3
    scores[0, :3] = scores[0, 3]  # ties
    return input_ids, scores


def _same(ours, theirs, input_ids, scores):
    expected = theirs(input_ids, scores.clone())
    actual = ours(input_ids, scores.clone())
    assert torch.equal(actual, expected)
    return actual


@pytest.mark.parametrize("seed", [0, 1])
def test_processors_equal_hf_processors(seed):
    import transformers as hf  # the processors are public top-level names

    input_ids, scores = _random_case(seed=seed)
    # Ours as HF's processor(input_ids, scores): the tokens so far are all of input_ids (cur_len = its length).
    for penalty in (1.3, 0.7):
        ours = lambda ids, sc: penalize_repetitions(sc, ids, ids.shape[1], penalty)  # noqa: E731
        _same(ours, hf.RepetitionPenaltyLogitsProcessor(penalty), input_ids, scores)
    for n in (1, 2, 3, 7, 8):
        ours = lambda ids, sc: ban_repeated_ngrams(sc, ids, ids.shape[1], n)  # noqa: E731
        _same(ours, hf.NoRepeatNGramLogitsProcessor(n), input_ids, scores)
    bad = [[3], [1, 2], [4, 4], [2, 5, 1], [0], [19]]
    bad_words = prepare_bad_words(bad, (0,), 20)
    ours = lambda ids, sc: ban_bad_words(sc, ids, ids.shape[1], bad_words)  # noqa: E731
    banned = _same(ours, hf.NoBadWordsLogitsProcessor(bad, eos_token_id=0), input_ids, scores)
    assert torch.isinf(banned[:, 3]).all() and not torch.isinf(banned[:, 0]).any()
    for min_length in (7, 8):
        ours = lambda ids, sc: ban_eos_before_min_length(sc, ids.shape[1], min_length, [0, 2])  # noqa: E731
        _same(ours, hf.MinLengthLogitsProcessor(min_length, [0, 2]), input_ids, scores)
    force = lambda length, token_ids: lambda ids, sc: force_tokens_at(sc, ids.shape[1], length, token_ids)  # noqa: E731
    _same(force(1, [5]), hf.ForcedBOSTokenLogitsProcessor(5), input_ids, scores)  # not at length 7
    _same(force(1, [5]), hf.ForcedBOSTokenLogitsProcessor(5), input_ids[:, :1], scores)
    _same(force(7, [3, 4]), hf.ForcedEOSTokenLogitsProcessor(8, [3, 4]), input_ids, scores)
    _same(force(8, [3, 4]), hf.ForcedEOSTokenLogitsProcessor(9, [3, 4]), input_ids, scores)  # not yet
    _same(lambda ids, sc: apply_temperature(sc, 0.7), hf.TemperatureLogitsWarper(0.7), input_ids, scores)
    for k, keep in ((1, 1), (3, 1), (3, 5), (25, 1)):
        ours = lambda ids, sc: keep_top_k(sc, k, keep)  # noqa: E731
        _same(ours, hf.TopKLogitsWarper(k, min_tokens_to_keep=keep), input_ids, scores)
    for p, keep in ((0.0, 1), (0.3, 1), (0.9, 1), (0.3, 4), (1.0, 1)):
        ours = lambda ids, sc: keep_top_p(sc, p, keep)  # noqa: E731
        _same(ours, hf.TopPLogitsWarper(p, min_tokens_to_keep=keep), input_ids, scores)


def test_processors_on_a_hand_made_case():
    input_ids = torch.tensor([[9, 1, 2, 3, 1, 2]])
    scores = torch.zeros(1, 10)
    assert torch.isinf(ban_repeated_ngrams(scores.clone(), input_ids, 6, 3)[0, 3])  # 1 2 -> 3 was seen
    assert torch.isinf(ban_repeated_ngrams(scores.clone(), input_ids, 6, 3)).sum() == 1
    assert torch.isinf(ban_repeated_ngrams(scores.clone(), input_ids, 6, 2)).nonzero()[:, 1].tolist() == [3]
    # Only the first cur_len tokens count: a buffer's later places are ignored.
    assert not torch.isinf(ban_repeated_ngrams(scores.clone(), input_ids, 5, 3)).any()
    penalised = penalize_repetitions(torch.tensor([[1.0, 1.0, -1.0, 0, 0, 0, 0, 0, 0, 0]]), input_ids, 6, 2.0)
    assert penalised[0, :3].tolist() == [1.0, 0.5, -2.0]
    probs = torch.tensor([[0.05, 0.4, 0.3, 0.2, 0.05]]).log()
    assert torch.isfinite(keep_top_p(probs.clone(), 0.75)).nonzero()[:, 1].tolist() == [1, 2, 3]
    assert torch.isfinite(keep_top_k(probs.clone(), 2)).nonzero()[:, 1].tolist() == [1, 2]
    # Exactly 1 - top_p of probability in the tail: that tail goes (HF's <=).
    uniform = torch.zeros(1, 4)
    assert torch.isfinite(keep_top_p(uniform.clone(), 0.75)).sum() == 3
    from transformers import TopPLogitsWarper

    assert torch.isfinite(TopPLogitsWarper(0.75)(None, uniform.clone())).sum() == 3


# ---- other model families use the same search --------------------------------------------------------------


@pytest.mark.parametrize("family", ["t5", "m2m_100"])
def test_other_families_match_hf(tmp_path, family):
    from tests import hf_oracle

    if family == "t5":
        from transformers import T5ForConditionalGeneration as HFModel

        from westron.models.t5.modeling_t5 import T5ForConditionalGeneration as Model

        folder = hf_oracle.save_tiny_t5(tmp_path)
    else:
        from transformers import M2M100ForConditionalGeneration as HFModel

        from westron.models.m2m_100.modeling_m2m_100 import M2M100ForConditionalGeneration as Model

        folder = hf_oracle.save_tiny_m2m100(tmp_path)
    hf, model = HFModel.from_pretrained(folder).eval(), Model.from_pretrained(folder)
    config = hf.config
    ids, mask = random_batch(config.vocab_size, config.pad_token_id, config.eos_token_id, batch=4, length=8)
    for settings in (dict(max_new_tokens=10), dict(num_beams=3, max_new_tokens=10, num_return_sequences=2)):
        expected = hf.generate(ids, attention_mask=mask, **settings)
        assert model.generate(ids, attention_mask=mask, **settings).tolist() == expected.tolist()
