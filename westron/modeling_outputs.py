"""Model outputs: small dataclasses, the same fields in both frameworks.

Optional fields are None unless asked for (`output_attentions=True`, `output_hidden_states=True`).
Tuples hold one tensor per layer (hidden states: the embeddings first, then each layer's output).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class ModelOutput:
    """HF 4.x ModelOutput access on a dataclass: `output["logits"]`, `output[0]`, `keys()`, `to_tuple()`.

    As in HF, only the fields that are set (not None) count, in field order: `loss, logits = output[:2]`
    when labels were given, `output[0]` is the logits otherwise.
    """

    def keys(self) -> list[str]:
        return [field.name for field in dataclasses.fields(self) if getattr(self, field.name) is not None]

    def values(self) -> list[Any]:
        return [getattr(self, key) for key in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(key, getattr(self, key)) for key in self.keys()]

    def to_tuple(self) -> tuple:
        return tuple(self.values())

    def __getitem__(self, key: str | int | slice) -> Any:
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        if not isinstance(key, str) or key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())


@dataclass
class EncoderOutput(ModelOutput):
    last_hidden_state: Any  # (batch, source_len, d_model)
    hidden_states: tuple | None = None
    attentions: tuple | None = None  # each (batch, heads, source_len, source_len)


@dataclass
class DecoderOutput(ModelOutput):
    last_hidden_state: Any  # (batch, target_len, d_model)
    cache: tuple | None = None  # see the models' init_cache
    hidden_states: tuple | None = None
    attentions: tuple | None = None  # each (batch, heads, target_len, key_len)
    cross_attentions: tuple | None = None  # each (batch, heads, target_len, source_len)


# The seq2seq outputs hold their fields in HF 4.x's order, so `output[0]` is the loss when labels
# were given, else the logits (HF's past_key_values is never returned).


@dataclass
class Seq2SeqModelOutput(ModelOutput):
    last_hidden_state: Any = None  # the decoder's, (batch, target_len, d_model)
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: Any = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None


@dataclass
class Seq2SeqLMOutput(ModelOutput):
    loss: Any = None  # mean cross-entropy over labels != -100, when labels are given
    logits: Any = None  # (batch, target_len, vocab)
    decoder_hidden_states: tuple | None = None
    decoder_attentions: tuple | None = None
    cross_attentions: tuple | None = None
    encoder_last_hidden_state: Any = None
    encoder_hidden_states: tuple | None = None
    encoder_attentions: tuple | None = None
