"""Model outputs: small dataclasses, the same fields in both frameworks.

Optional fields are None unless asked for (`output_attentions=True`, `output_hidden_states=True`).
Tuples hold one tensor per layer (hidden states: the embeddings first, then each layer's output).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class EncoderOutput:
    last_hidden_state: Any  # (batch, source_len, d_model)
    hidden_states: tuple | None = None
    attentions: tuple | None = None  # each (batch, heads, source_len, source_len)


@dataclass
class DecoderOutput:
    last_hidden_state: Any  # (batch, target_len, d_model)
    cache: tuple | None = None  # see the models' init_cache
    hidden_states: tuple | None = None
    attentions: tuple | None = None  # each (batch, heads, target_len, key_len)
    cross_attentions: tuple | None = None  # each (batch, heads, target_len, source_len)


@dataclass
class Seq2SeqModelOutput:
    last_hidden_state: Any  # the decoder's, (batch, target_len, d_model)
    encoder_last_hidden_state: Any
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None


@dataclass
class Seq2SeqLMOutput:
    logits: Any  # (batch, target_len, vocab)
    loss: Any = None  # mean cross-entropy over labels != -100, when labels are given
    encoder_last_hidden_state: Any = None
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None
