"""Token batches: layout, token budget, determinism, exact resume, shards, and tokenizing pairs."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from westron.data.batching import TokenBatcher, TokenIds, encode_pairs, make_batch
from westron.data.records import Pair
from westron.errors import WestronError

PAD, START = 0, 5


def random_rows(n: int, seed: int, low: int = 1, high: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(6, 100, size=int(length), dtype=np.int32) for length in rng.integers(low, high, size=n)]


@pytest.fixture(scope="module")
def data():
    return random_rows(500, seed=1), random_rows(500, seed=2)


def batcher(data, **options) -> TokenBatcher:
    options = {"pad_token_id": PAD, "decoder_start_token_id": START, "max_tokens": 256, **options}
    return TokenBatcher(*data, **options)


def take(batcher: TokenBatcher, count: int) -> list[dict]:
    return list(itertools.islice(batcher, count))


def as_bytes(batches: list[dict]) -> list[bytes]:
    return [b"".join(batch[key].tobytes() + str(batch[key].shape).encode() for key in sorted(batch)) for batch in batches]


def test_make_batch_layout():
    batch = make_batch(
        [np.array([7, 8, 9]), np.array([7])], [np.array([11, 12, 2]), np.array([13, 2])], PAD, START, pad_to_multiple_of=4
    )
    np.testing.assert_array_equal(batch["input_ids"], [[7, 8, 9, PAD], [7, PAD, PAD, PAD]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(batch["decoder_input_ids"], [[START, 11, 12, PAD], [START, 13, PAD, PAD]])
    np.testing.assert_array_equal(batch["labels"], [[11, 12, 2, -100], [13, 2, -100, -100]])
    assert all(array.dtype == np.int32 for array in batch.values())


@pytest.mark.parametrize("options", [dict(max_tokens=256), dict(max_tokens=300, pad_to_multiple_of=8), dict(max_tokens=None, batch_size=16), dict(max_tokens=200, batch_size=4)])
def test_budget_respected_and_every_example_once_an_epoch(data, options):
    b = batcher(data, **options)
    batches = take(b, len(b))
    assert b.epoch == 1 and b.position == 0
    seen = np.concatenate(b.epoch_batches(0))
    assert sorted(seen.tolist()) == list(range(500))
    for batch in batches:
        size, source_length = batch["input_ids"].shape
        target_length = batch["labels"].shape[1]
        if options.get("max_tokens"):
            assert size * max(source_length, target_length) <= options["max_tokens"]
        if options.get("batch_size"):
            assert size <= options["batch_size"]
        if options.get("pad_to_multiple_of"):
            assert source_length % 8 == 0 and target_length % 8 == 0
    if options.get("max_tokens") and not options.get("batch_size"):
        # Buckets fill the budget: on average well over half of it is used.
        used = np.mean([b["input_ids"].shape[0] * max(b["input_ids"].shape[1], b["labels"].shape[1]) for b in batches])
        assert used > 0.6 * options["max_tokens"]


def test_batches_hold_the_examples_rows(data):
    b = batcher(data)
    indices = b.epoch_batches(0)[0]
    batch = next(iter(b))
    for row, i in enumerate(indices):
        source, target = data[0][i], data[1][i]
        np.testing.assert_array_equal(batch["input_ids"][row, : len(source)], source)
        np.testing.assert_array_equal(batch["labels"][row, : len(target)], target)


def test_same_seed_same_bytes_other_seed_other_batches(data):
    count = 2 * len(batcher(data)) + 3  # into the third epoch
    first, second = as_bytes(take(batcher(data, seed=7), count)), as_bytes(take(batcher(data, seed=7), count))
    assert first == second
    assert as_bytes(take(batcher(data, seed=8), count)) != first
    # Epochs differ from each other (tie order and batch order are reshuffled).
    per_epoch = len(batcher(data))
    assert first[:per_epoch] != first[per_epoch : 2 * per_epoch]
    b = batcher(data, seed=7)
    assert {tuple(sorted(x)) for x in b.epoch_batches(0)} != {tuple(sorted(x)) for x in b.epoch_batches(1)}


def test_no_shuffle_is_sorted_by_length_and_fixed(data):
    b = batcher(data, shuffle=False)
    assert [x.tolist() for x in b.epoch_batches(0)] == [x.tolist() for x in b.epoch_batches(3)]
    sizes = [max(len(data[0][i]), len(data[1][i])) for i in np.concatenate(b.epoch_batches(0))]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize("stop", [1, 17, "epoch_end", "epoch_end+2"])
def test_resume_equals_uninterrupted(data, stop):
    per_epoch = len(batcher(data))
    stop = {"epoch_end": per_epoch, "epoch_end+2": per_epoch + 2}.get(stop, stop)
    uninterrupted = as_bytes(take(batcher(data, seed=3), stop + per_epoch))
    interrupted = batcher(data, seed=3)
    take(interrupted, stop)
    state = json.loads(json.dumps(interrupted.state_dict()))  # a checkpoint stores it as JSON
    resumed = batcher(data, seed=3)
    resumed.load_state_dict(state)
    assert as_bytes(take(resumed, per_epoch)) == uninterrupted[stop:]


def test_load_state_dict_refuses_another_plan(data):
    state = batcher(data, seed=3).state_dict()
    with pytest.raises(WestronError, match="seed=3, this batcher 4"):
        batcher(data, seed=4).load_state_dict(state)
    with pytest.raises(WestronError, match="outside an epoch"):
        batcher(data, seed=3).load_state_dict({**state, "position": 10_000})


@pytest.mark.parametrize("setting", [{"max_tokens": 64}, {"batch_size": 3}, {"pad_to_multiple_of": 8}, {"shuffle": False}])
def test_load_state_dict_refuses_other_batch_settings(data, setting):
    """A position is a batch index into one plan: under other batch settings it would silently skip or
    repeat examples."""
    state = json.loads(json.dumps(batcher(data, seed=3).state_dict()))
    with pytest.raises(WestronError, match=f"{next(iter(setting))}=.*not the same data plan"):
        batcher(data, seed=3, **setting).load_state_dict(state)
    old_state = {key: state[key] for key in ("epoch", "position", "seed", "num_examples", "num_shards", "shard_index")}
    batcher(data, seed=3, **setting).load_state_dict(old_state)  # a state saved before these were kept still loads


@pytest.mark.parametrize("num_shards", [2, 3])
def test_shards_are_disjoint_per_step_and_cover_an_epoch(data, num_shards):
    shards = [batcher(data, num_shards=num_shards, shard_index=k) for k in range(num_shards)]
    assert shards[0].num_global_batches % 3 != 0  # 3 shards exercise the padding of the last step
    plans = [shard.epoch_batches(1) for shard in shards]
    assert {len(plan) for plan in plans} == {len(shards[0])}  # every worker takes the same number of steps
    for step in zip(*plans):
        together = np.concatenate(step)
        assert len(np.unique(together)) == len(together)  # disjoint within a global batch
    covered = np.unique(np.concatenate([np.concatenate(plan) for plan in plans]))
    assert covered.tolist() == list(range(500))
    # The shards' batches are the single-worker plan's batches, dealt out in turn.
    global_plan = shards[0].global_batches(1)
    assert [x.tolist() for x in plans[1]] == [x.tolist() for x in global_plan[1::num_shards]]
    # Each shard iterates its own part.
    first = next(iter(shards[1]))
    np.testing.assert_array_equal(first["input_ids"][:, 0], [data[0][i][0] for i in shards[1].epoch_batches(0)[0]])


def test_token_ids_is_a_compact_sequence(data):
    ids = TokenIds.from_rows(data[0])
    assert len(ids) == 500 and ids.flat.dtype == np.int32
    np.testing.assert_array_equal(ids[-1], data[0][-1])
    np.testing.assert_array_equal(ids.lengths, [len(row) for row in data[0]])
    from_lists = as_bytes(take(batcher(data), 10))
    from_ids = as_bytes(take(batcher((ids, TokenIds.from_rows(data[1]))), 10))
    assert from_lists == from_ids


def test_bad_arguments(data):
    with pytest.raises(WestronError, match="longer than max_tokens=20"):
        batcher(data, max_tokens=20)
    with pytest.raises(WestronError, match="give max_tokens, batch_size or both"):
        batcher(data, max_tokens=None)
    with pytest.raises(WestronError, match="shard_index"):
        batcher(data, num_shards=2, shard_index=2)
    with pytest.raises(WestronError, match="batches an epoch for 3 shards"):
        TokenBatcher(data[0][:2], data[1][:2], pad_token_id=PAD, decoder_start_token_id=START, batch_size=2, num_shards=3)


# ---- tokenizing pairs ------------------------------------------------------------------------------

PAIRS = [Pair("The quick brown fox jumps over the lazy dog.", "¿Dónde está la biblioteca?"), Pair("Where is the train station?", "Москва — столица России.")] * 3


def test_encode_pairs_uses_the_target_side(tmp_path):
    from tests.spm_fixtures import write_marian_folder
    from westron.models.marian.tokenization_marian import MarianTokenizer

    tokenizer = MarianTokenizer.from_pretrained(write_marian_folder(tmp_path / "tok", separate_vocabs=True))
    source_ids, target_ids = encode_pairs(tokenizer, iter(PAIRS), None, None)
    assert [row.tolist() for row in source_ids] == tokenizer([p.source for p in PAIRS])["input_ids"]
    assert [row.tolist() for row in target_ids] == tokenizer(text_target=[p.target for p in PAIRS])["input_ids"]
    assert target_ids[0].tolist() != tokenizer(PAIRS[0].target)["input_ids"]  # the target vocabulary is another one
    short_source, short_target = encode_pairs(tokenizer, PAIRS, 5, 4)
    assert set(short_source.lengths.tolist()) == {5} and set(short_target.lengths.tolist()) == {4}
    assert all(row[-1] == tokenizer.eos_token_id for row in list(short_source) + list(short_target))


def test_encode_pairs_source_prefix(tmp_path):
    from tests.spm_fixtures import write_t5_folder
    from westron.models.t5.tokenization_t5 import T5Tokenizer

    tokenizer = T5Tokenizer.from_pretrained(write_t5_folder(tmp_path / "tok"))
    prefix = "translate English to German: "
    source_ids, _ = encode_pairs(tokenizer, PAIRS[:2], 64, 64, source_prefix=prefix)
    assert [row.tolist() for row in source_ids] == tokenizer([prefix + p.source for p in PAIRS[:2]])["input_ids"]



def test_a_shard_resumes_from_another_shards_state(data):
    """A data-parallel checkpoint keeps rank 0's batcher state; rank 1 resumes its own shard from it."""
    first, second = batcher(data, num_shards=2, shard_index=0), batcher(data, num_shards=2, shard_index=1)
    take(first, 3)
    resumed = batcher(data, num_shards=2, shard_index=1)
    resumed.load_state_dict(first.state_dict())
    take(second, 3)
    assert as_bytes(take(resumed, 2)) == as_bytes(take(second, 2))
    with pytest.raises(WestronError, match="num_shards=2, this batcher 1"):
        batcher(data).load_state_dict(first.state_dict())
