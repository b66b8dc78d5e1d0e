"""Token batches for training, the same NumPy arrays for the PyTorch and the TensorFlow trainer.

    source_ids, target_ids = encode_pairs(tokenizer, read_pairs("train.jsonl", "en", "es"), 128, 128)
    batcher = TokenBatcher(source_ids, target_ids, pad_token_id=..., decoder_start_token_id=..., max_tokens=4096)
    for batch in batcher:          # endless: epoch after epoch
        ...                        # batch["input_ids"] (B, S), ["labels"] (B, T), ...

How batches are made (`TokenBatcher.epoch_batches`): every example has a size, the longer of its
source and target. In each epoch the examples are sorted by size, ties in a random order, cut
greedily into batches whose padded size B * max(S, T) stays within `max_tokens` (fairseq's
count) and whose B stays within `batch_size`, and the batches are shuffled. Sorting keeps
sentences of similar length together (little padding); the per-epoch tie order and batch order
come from `np.random.default_rng((seed, epoch))`, so the same seed gives byte-identical batches
in any process, and the number of batches is the same in every epoch.

Data parallelism: N workers each build a `TokenBatcher` on the same data with the same seed and
`num_shards=N`, and worker k `shard_index=k`. At step t the epoch's batches t*N ... t*N+N-1 form
one global batch and worker k takes the k-th, so the workers' batches at a step are disjoint and
an epoch covers every example. When the batches do not divide by N, the last step is completed
with the epoch's first batches (as torch's DistributedSampler pads), so every worker takes the
same number of steps. `max_tokens` and `batch_size` are per worker.

Resuming: `state_dict()` is a small JSON-able dict (epoch, position); after
`load_state_dict(state)` iteration continues exactly where the saved batcher stood.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from westron.data.records import Pair
from westron.errors import WestronError

LABEL_PAD = -100  # ignored by the loss in both frameworks (Hugging Face's convention)
ENCODE_CHUNK = 1000  # texts tokenized per tokenizer call


def round_up(length: int, multiple: int | None) -> int:
    return length if not multiple else -(-length // multiple) * multiple


def make_batch(
    source_rows: Sequence[np.ndarray],
    target_rows: Sequence[np.ndarray],
    pad_token_id: int,
    decoder_start_token_id: int,
    pad_to_multiple_of: int | None = None,
) -> dict[str, np.ndarray]:
    """One padded batch from id rows (targets already end with EOS). All arrays int32.

    input_ids (B, S) padded with pad_token_id, attention_mask (B, S) 1 on real tokens,
    decoder_input_ids (B, T) = [decoder_start_token_id] + target[:-1] padded with pad_token_id,
    labels (B, T) = target padded with -100 (no loss there).
    """
    if len(source_rows) != len(target_rows):
        raise ValueError(f"{len(source_rows)} source rows but {len(target_rows)} target rows")
    batch_size = len(source_rows)
    source_length = round_up(max((len(row) for row in source_rows), default=0), pad_to_multiple_of)
    target_length = round_up(max((len(row) for row in target_rows), default=0), pad_to_multiple_of)
    input_ids = np.full((batch_size, source_length), pad_token_id, dtype=np.int32)
    attention_mask = np.zeros((batch_size, source_length), dtype=np.int32)
    decoder_input_ids = np.full((batch_size, target_length), pad_token_id, dtype=np.int32)
    labels = np.full((batch_size, target_length), LABEL_PAD, dtype=np.int32)
    for i, (source, target) in enumerate(zip(source_rows, target_rows)):
        input_ids[i, : len(source)] = source
        attention_mask[i, : len(source)] = 1
        labels[i, : len(target)] = target
        if len(target):
            decoder_input_ids[i, 0] = decoder_start_token_id
            decoder_input_ids[i, 1 : len(target)] = target[:-1]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "decoder_input_ids": decoder_input_ids,
        "labels": labels,
    }


class TokenIds(Sequence):
    """Many id rows in one flat int32 array plus offsets: 4 bytes a token instead of a Python object a row.

    A `Sequence[np.ndarray]`: `ids[i]` is row i (a view), `ids.lengths` all row lengths.
    """

    def __init__(self, flat: np.ndarray, offsets: np.ndarray):
        self.flat = np.asarray(flat, dtype=np.int32)  # (total_tokens,)
        self.offsets = np.asarray(offsets, dtype=np.int64)  # (num_rows + 1,), offsets[0] == 0

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[int]]) -> "TokenIds":
        arrays = [np.asarray(row, dtype=np.int32) for row in rows]
        lengths = np.array([len(row) for row in arrays], dtype=np.int64)
        flat = np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
        return cls(flat, np.concatenate([[0], np.cumsum(lengths)]))

    @classmethod
    def concatenate(cls, parts: Sequence["TokenIds"]) -> "TokenIds":
        lengths = np.concatenate([part.lengths for part in parts]) if parts else np.zeros(0, np.int64)
        flat = np.concatenate([part.flat for part in parts]) if parts else np.zeros(0, np.int32)
        return cls(flat, np.concatenate([[0], np.cumsum(lengths)]))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # negative indices, IndexError
        return self.flat[self.offsets[index] : self.offsets[index + 1]]


def encode_pairs(
    tokenizer,
    pairs: Iterable[Pair],
    max_source_length: int | None,
    max_target_length: int | None,
    *,
    source_prefix: str = "",
) -> tuple[TokenIds, TokenIds]:
    """Tokenizes pairs into (source ids, target ids), targets in the tokenizer's target mode.

    Rows longer than the limits are truncated (the end-of-sentence token is kept); None keeps
    them whole. `source_prefix` goes before every source (T5: "translate English to German: ").
    Multilingual tokenizers (M2M100, NLLB) need `src_lang` and `tgt_lang` set beforehand.
    """
    source_parts, target_parts = [], []
    chunk: list[Pair] = []

    def flush():
        sources = [source_prefix + pair.source for pair in chunk]
        targets = [pair.target for pair in chunk]
        source_rows = tokenizer(sources, truncation=max_source_length is not None, max_length=max_source_length)["input_ids"]
        target_rows = tokenizer(
            text_target=targets, truncation=max_target_length is not None, max_length=max_target_length
        )["input_ids"]
        source_parts.append(TokenIds.from_rows(source_rows))
        target_parts.append(TokenIds.from_rows(target_rows))
        chunk.clear()

    for pair in pairs:
        chunk.append(pair)
        if len(chunk) == ENCODE_CHUNK:
            flush()
    if chunk:
        flush()
    return TokenIds.concatenate(source_parts), TokenIds.concatenate(target_parts)


def row_lengths(rows: Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(rows, TokenIds):
        return rows.lengths
    return np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))


class TokenBatcher:
    """Endless, seeded, resumable, length-bucketed batches of `make_batch` dicts (module docstring)."""

    def __init__(
        self,
        source_ids: Sequence[np.ndarray],
        target_ids: Sequence[np.ndarray],
        *,
        pad_token_id: int,
        decoder_start_token_id: int,
        max_tokens: int | None = None,
        batch_size: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        num_shards: int = 1,
        shard_index: int = 0,
        pad_to_multiple_of: int | None = None,
    ):
        if len(source_ids) != len(target_ids):
            raise WestronError(f"{len(source_ids)} sources but {len(target_ids)} targets")
        if len(source_ids) == 0:
            raise WestronError("no examples to batch")
        if max_tokens is None and batch_size is None:
            raise WestronError("give max_tokens, batch_size or both")
        for name, value in (("max_tokens", max_tokens), ("batch_size", batch_size), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and value < 1:
                raise WestronError(f"{name} must be at least 1, not {value}")
        if num_shards < 1 or not 0 <= shard_index < num_shards:
            raise WestronError(f"shard_index must be in [0, num_shards), not {shard_index} of {num_shards}")
        self.source_ids, self.target_ids = source_ids, target_ids
        self.pad_token_id, self.decoder_start_token_id = pad_token_id, decoder_start_token_id
        self.max_tokens, self.batch_size, self.pad_to_multiple_of = max_tokens, batch_size, pad_to_multiple_of
        self.seed, self.shuffle = seed, shuffle
        self.num_shards, self.shard_index = num_shards, shard_index
        # An example's padded size in a batch: the longer side, rounded up as the batch will be.
        sizes = np.maximum(row_lengths(source_ids), row_lengths(target_ids))
        self.sizes = (-(-sizes // pad_to_multiple_of) * pad_to_multiple_of if pad_to_multiple_of else sizes).astype(np.int64)
        if max_tokens is not None and self.sizes.max() > max_tokens:
            too_long = int((self.sizes > max_tokens).sum())
            raise WestronError(
                f"{too_long} examples are longer than max_tokens={max_tokens} (the longest has {self.sizes.max()} "
                "tokens): raise max_tokens or truncate (max_source_length / max_target_length)"
            )
        self.num_global_batches = len(self._cut(np.sort(self.sizes, kind="stable")))
        if self.num_global_batches < num_shards:
            raise WestronError(f"only {self.num_global_batches} batches an epoch for {num_shards} shards: use smaller batches")
        self.epoch, self.position = 0, 0
        self._plan: tuple[int, list[np.ndarray]] | None = None

    # ---- the plan of an epoch ----------------------------------------------------------------------

    def _cut(self, sorted_sizes: np.ndarray) -> list[int]:
        """Greedy batch ends over sizes in ascending order: each batch within max_tokens and batch_size."""
        ends, start = [], 0
        for i, size in enumerate(sorted_sizes.tolist()):
            count = i - start + 1  # the batch if example i joins it; `size` is its largest
            if count > 1 and (
                (self.max_tokens is not None and count * size > self.max_tokens)
                or (self.batch_size is not None and count > self.batch_size)
            ):
                ends.append(i)
                start = i
        ends.append(len(sorted_sizes))
        return ends

    def global_batches(self, epoch: int) -> list[np.ndarray]:
        """Example indices of every batch of `epoch`, in the order all shards together consume them."""
        if self.shuffle:
            rng = np.random.default_rng((self.seed, epoch))
            ties = rng.permutation(len(self.sizes))  # a random order among examples of equal size
            order = ties[np.argsort(self.sizes[ties], kind="stable")]
        else:
            rng, order = None, np.argsort(self.sizes, kind="stable")
        ends = self._cut(self.sizes[order])
        batches = np.split(order, ends[:-1])
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        padding = -len(batches) % self.num_shards
        return batches + batches[:padding]

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """Example indices of this shard's batches in `epoch`, in order."""
        return self.global_batches(epoch)[self.shard_index :: self.num_shards]

    def num_batches_per_epoch(self) -> int:
        """Batches this shard takes in one epoch (the same in every epoch)."""
        return -(-self.num_global_batches // self.num_shards)

    def __len__(self) -> int:
        return self.num_batches_per_epoch()

    @property
    def epochs_done(self) -> float:
        """Epochs given out, fractional: the epoch plus the share of its batches already taken."""
        return self.epoch + self.position / self.num_batches_per_epoch()

    # ---- iteration and resume ----------------------------------------------------------------------

    def batch(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return make_batch(
            [self.source_ids[i] for i in indices],
            [self.target_ids[i] for i in indices],
            self.pad_token_id,
            self.decoder_start_token_id,
            self.pad_to_multiple_of,
        )

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """Batches from the current position on, forever. The batcher is its own cursor: two
        iterators over one batcher share the position."""
        while True:
            if self._plan is None or self._plan[0] != self.epoch:
                self._plan = (self.epoch, self.epoch_batches(self.epoch))
            indices = self._plan[1][self.position]
            # Advance before yielding: state_dict() taken after receiving a batch points past it.
            self.position += 1
            if self.position == len(self._plan[1]):
                self.epoch, self.position = self.epoch + 1, 0
            yield self.batch(indices)

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "seed": self.seed,
            "num_examples": len(self.sizes),
            "num_shards": self.num_shards,
            "shard_index": self.shard_index,
            **self._plan_settings(),
        }

    def _plan_settings(self) -> dict:
        """What cuts and orders the batches besides the data and seed: a position means nothing under others."""
        return {
            "max_tokens": self.max_tokens,
            "batch_size": self.batch_size,
            "pad_to_multiple_of": self.pad_to_multiple_of,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continues from a saved position; the data, seed and number of shards must be those it was saved
        with. The shard index may differ: every shard stands at the same position (they step together), so
        the one state a data-parallel checkpoint keeps (rank 0's) resumes every rank."""
        mine = {"seed": self.seed, "num_examples": len(self.sizes), "num_shards": self.num_shards, **self._plan_settings()}
        for key, value in mine.items():
            if key in state and state[key] != value:  # (states saved before a key existed lack it)
                raise WestronError(
                    f"the saved batcher state has {key}={state[key]}, this batcher {value}: not the same data plan "
                    "(resume with the data and batch settings the run was started with)"
                )
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position < self.num_batches_per_epoch():
            raise WestronError(f"the saved batcher position (epoch {epoch}, batch {position}) is outside an epoch")
        self.epoch, self.position = epoch, position
