"""The tokenizer's data types: what goes in and comes out, with no tokenizer logic.

`AddedToken` (a token matched whole in the text), `BatchEncoding` (the output dict), the
conversions between id lists and NumPy / PyTorch / TensorFlow tensors (each framework imported
only when asked for), the accepted `padding=` and `truncation=` values, and the names of the
files in a tokenizer folder. The tokenizer itself is `westron.tokenization_utils.PreTrainedTokenizer`.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Mapping
from typing import Any

from westron.errors import CheckpointError, WestronError

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"  # legacy: read, never written

# The named special tokens, in Hugging Face's order (it decides the ids of tokens new to the vocab).
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# Hugging Face's stand-in for "no length limit" (model_max_length of checkpoints without one).
VERY_LARGE_INTEGER = int(1e30)
# Above this, a model_max_length means "no limit" (some configs hold 1e30 rounded through floats).
LARGE_INTEGER = int(1e20)

# The accepted `padding=` and `truncation=` values (Hugging Face's names) -> what they mean here:
# padding None (none), "longest" or "max_length"; truncation on or off.
PADDING_STRATEGIES = {True: "longest", "longest": "longest", "max_length": "max_length"}
PADDING_STRATEGIES.update({False: None, None: None, "do_not_pad": None})
TRUNCATION_STRATEGIES = {True: True, "longest_first": True, "only_first": True}
TRUNCATION_STRATEGIES.update({False: False, None: False, "do_not_truncate": False})


class SequenceTooLongWarning(UserWarning):
    """Some text gives more tokens than the model accepts, and the call left `truncation` unset.

    Issued once per call (Hugging Face logs it once per tokenizer). Not issued with an explicit
    `truncation=False`, nor with `verbose=False`: that caller checks the lengths itself. Callers
    that want an error instead turn it into one with
    `warnings.simplefilter("error", SequenceTooLongWarning)` inside `warnings.catch_warnings()`.
    """


class TokenizerInputError(WestronError, ValueError):
    """Text or settings the tokenizer cannot take. A ValueError, as Hugging Face raises, and a
    WestronError, so the CLI reports it on one line."""


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def check_no_lone_surrogate(text: str) -> None:
    """Refuses text holding a lone surrogate (U+D800..U+DFFF), which a Python string can hold.

    Such characters are not text: they are bytes a reader could not decode (`errors="surrogateescape"`),
    and SentencePiece cannot take them. An error rather than <unk>, because the fix belongs to the
    reader (the right encoding), and a translation of a silently damaged input looks like a good one.
    """
    match = _LONE_SURROGATE.search(text)
    if match:
        raise TokenizerInputError(
            f"the text holds a lone surrogate U+{ord(match.group()):04X} at character {match.start()}: "
            "undecodable bytes, not text; read the input with its right encoding"
        )


def check_positive_length(name: str, value: Any) -> None:
    """max_length and its kin are None or a positive int (as Hugging Face requires); -1 or 0 is an error."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise TokenizerInputError(f"{name} must be a positive integer, not {value!r}")


@dataclasses.dataclass
class AddedToken:
    """A token matched as a whole in the text before SentencePiece sees it (Hugging Face's fields)."""

    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    special: bool = False
    normalized: bool | None = None

    def __post_init__(self):
        if self.normalized is None:
            self.normalized = not self.special

    def __str__(self):
        return self.content

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> "AddedToken":
        if isinstance(value, AddedToken):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping) and isinstance(value.get("content"), str):
            fields = {field.name for field in dataclasses.fields(cls)}
            return cls(**{key: item for key, item in value.items() if key in fields})
        raise CheckpointError(f"not a token: {value!r}")


def token_text(value: Any) -> str:
    """A special token as written in a config: a string or an AddedToken-like {"content": ...}."""
    if isinstance(value, (str, AddedToken)):
        return str(value)
    if isinstance(value, Mapping) and isinstance(value.get("content"), str):
        return value["content"]
    raise CheckpointError(f"not a token: {value!r}")


# HF 4.x's __call__ options Westron's tokenizers do not implement, with the values at which they
# change nothing (translation models read no token_type_ids, offsets or overflowing windows).
UNSUPPORTED_CALL_OPTIONS: dict[str, tuple] = {
    "text_pair_target": (None,),
    "stride": (0,),
    "is_split_into_words": (False,),
    "return_token_type_ids": (None, False),
    "return_overflowing_tokens": (False,),
    "return_special_tokens_mask": (False,),
    "return_offsets_mapping": (False,),
    "return_length": (False,),
}


def check_call_options(options: dict[str, Any]) -> None:
    """HF options at their neutral value pass; any other value, or an unknown keyword, is one WestronError."""
    unknown = sorted(name for name in options if name not in UNSUPPORTED_CALL_OPTIONS)
    if unknown:
        raise WestronError(f"unexpected tokenizer argument(s): {', '.join(unknown)}")
    asked = [
        f"{name}={value!r}"
        for name, value in options.items()
        if not any(value is v or (type(value) is type(v) and value == v) for v in UNSUPPORTED_CALL_OPTIONS[name])
    ]
    if asked:
        raise WestronError(f"tokenizer option(s) not supported by Westron: {', '.join(asked)}")


class BatchEncoding(dict):
    """The tokenizer's output: a dict (`model(**batch)` works) whose keys are also attributes."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no {key!r}; it holds {sorted(self)}") from None

    def to(self, device) -> "BatchEncoding":
        """Moves PyTorch tensors to `device` (other values are left as they are)."""
        return BatchEncoding({key: value.to(device) if hasattr(value, "to") else value for key, value in self.items()})


def to_id_lists(token_ids: Any) -> Any:
    """Python ints / lists from a list, NumPy array, PyTorch or TensorFlow tensor, without importing them.

    Anything that is not an integer (1.5, "12", None) is a TypeError: rounding it would decode
    some token silently.
    """
    if hasattr(token_ids, "numpy") and not hasattr(token_ids, "tolist"):  # tf.Tensor
        token_ids = token_ids.numpy()
    if hasattr(token_ids, "detach"):  # torch.Tensor (maybe on a GPU)
        token_ids = token_ids.detach().cpu()
    if hasattr(token_ids, "tolist"):
        token_ids = token_ids.tolist()
    if isinstance(token_ids, (list, tuple)):
        return [to_id_lists(item) for item in token_ids]
    try:
        return operator.index(token_ids)  # ints, NumPy integers; not floats, strings or None
    except TypeError:
        raise TypeError(f"token ids must be integers, not {type(token_ids).__name__} ({token_ids!r})") from None


def as_tensor(rows: list[list[int]], return_tensors: str | None):
    """Rows of equal length as a (batch, length) tensor of the asked framework; None keeps lists."""
    if return_tensors is None:
        return rows
    shape = (len(rows), len(rows[0]) if rows else 0)
    if len({len(row) for row in rows}) > 1:
        raise ValueError(
            "sequences of different lengths cannot make one tensor: pass padding=True (and truncation=True "
            "if they may be longer than the model accepts)"
        )
    if return_tensors == "np":
        import numpy as np

        return np.asarray(rows, dtype=np.int64).reshape(shape)
    if return_tensors == "pt":
        import torch

        return torch.tensor(rows, dtype=torch.long).reshape(shape)
    if return_tensors == "tf":
        import tensorflow as tf

        return tf.reshape(tf.constant(rows, dtype=tf.int32), shape)
    raise ValueError(f"return_tensors must be None, 'np', 'pt' or 'tf', not {return_tensors!r}")
