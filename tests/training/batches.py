"""Synthetic training batches for the trainer tests: random token strings, byte-identical for both frameworks."""

from __future__ import annotations

import numpy as np


def make_batch(sources, targets, pad_token_id, decoder_start_token_id):
    """Pads lists of id lists into the batch layout the trainers take (int32 numpy arrays)."""
    batch = len(sources)
    source_length = max(len(s) for s in sources)
    target_length = max(len(t) for t in targets)
    input_ids = np.full((batch, source_length), pad_token_id, np.int32)
    attention_mask = np.zeros((batch, source_length), np.int32)
    decoder_input_ids = np.full((batch, target_length), pad_token_id, np.int32)
    labels = np.full((batch, target_length), -100, np.int32)
    for row, (source, target) in enumerate(zip(sources, targets)):
        input_ids[row, : len(source)] = source
        attention_mask[row, : len(source)] = 1
        decoder_input_ids[row, : len(target)] = [decoder_start_token_id] + list(target[:-1])
        labels[row, : len(target)] = target
    return {"input_ids": input_ids, "attention_mask": attention_mask, "decoder_input_ids": decoder_input_ids, "labels": labels}


def copy_task_batches(
    count, *, vocab_low, vocab_high, eos, pad, start, batch_size=8, min_length=2, max_length=6, reverse=False, seed=0
):
    """`count` batches of random strings whose target is the source (or its reversal), each ending in eos."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        sources, targets = [], []
        for _ in range(batch_size):
            tokens = rng.integers(vocab_low, vocab_high, rng.integers(min_length, max_length + 1)).tolist()
            sources.append(tokens + [eos])
            targets.append((tokens[::-1] if reverse else tokens) + [eos])
        batches.append(make_batch(sources, targets, pad, start))
    return batches


class ListBatches:
    """An endless, resumable stream over a list of batches: what the trainers need from a batcher."""

    def __init__(self, batches):
        self.batches = batches
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = self.batches[self.position % len(self.batches)]
        self.position += 1
        return batch

    @property
    def epoch(self):
        return self.position // len(self.batches)

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]
