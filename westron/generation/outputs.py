"""What `generate(..., return_dict_in_generate=True)` returns: Hugging Face 4.x's output objects.

Field names, order and nesting are HF 4.x's `GenerateEncoderDecoderOutput` (greedy search,
sampling) and `GenerateBeamEncoderDecoderOutput` (beam search, beam sampling); the same classes
serve both frameworks (torch tensors from the PyTorch search, tf.Tensors from the TensorFlow one).
A field is None unless its flag asked for it. Per-step fields are tuples with one entry per
decoding step that ran (beam search may run more steps than the returned sequences are long):

- scores, logits: (rows, vocab) float32 each; rows = batch * num_beams for beam search, else
  batch * num_return_sequences. `scores` are processed (log-probabilities after the logits
  processors for beam search; processed logits for greedy search and sampling), `logits` raw.
- decoder_attentions: per step, per layer (rows, heads, 1, step + 1);
  cross_attentions: per step, per layer (rows, heads, 1, source_len);
  decoder_hidden_states: per step, the embeddings then each layer (rows, 1, d_model).
- encoder_attentions: per layer (batch, heads, source_len, source_len); encoder_hidden_states: the
  embeddings then each layer (batch, source_len, d_model): once per sentence, not per beam.
- beam search: sequences_scores (batch * num_return_sequences,) the length-penalised scores;
  beam_indices (batch * num_return_sequences, length - 1) int32, the row of `scores` each token
  was chosen from, -1 after the end.

Not returned: HF's `past_key_values` (Westron's cache is its own static layout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from westron.modeling_outputs import ModelOutput


@dataclass
class GenerateEncoderDecoderOutput(ModelOutput):
    """Greedy search and sampling (see the module docstring for shapes)."""

    sequences: Any  # (batch * num_return_sequences, length)
    scores: tuple | None = None
    logits: tuple | None = None
    encoder_attentions: tuple | None = None
    encoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    decoder_hidden_states: tuple | None = None


@dataclass
class GenerateBeamEncoderDecoderOutput(ModelOutput):
    """Beam search and beam sampling (see the module docstring for shapes)."""

    sequences: Any  # (batch * num_return_sequences, length)
    sequences_scores: Any = None  # (batch * num_return_sequences,), with output_scores
    scores: tuple | None = None
    logits: tuple | None = None
    beam_indices: Any = None  # (batch * num_return_sequences, length - 1), always
    encoder_attentions: tuple | None = None
    encoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    decoder_hidden_states: tuple | None = None


def split_steps(stacked: dict, steps: int) -> dict:
    """{name: a per-step stack (max_steps, ...) or a tuple of them (one per layer)} -> per-step tuples.

    `decoder_attentions` etc. become (step 0: (layer 0, layer 1, ...), step 1: ...), HF's nesting;
    `scores`/`logits` become (step 0, step 1, ...). Only the first `steps` entries are kept.
    """
    result = {}
    for name, value in stacked.items():
        if isinstance(value, (tuple, list)):
            result[name] = tuple(tuple(layer[step] for layer in value) for step in range(steps))
        else:
            result[name] = tuple(value[step] for step in range(steps))
    return result
