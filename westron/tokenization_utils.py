"""SentencePiece-backed tokenizers with Hugging Face's call signature and folder layout.

`SentencePieceTokenizer` holds everything a model family's tokenizer shares: special and added
tokens, splitting the text around them, padding, truncation, tensors ("np", "pt" or "tf", the
framework imported only when asked for), decoding, and `save_pretrained` / `from_pretrained` with
`tokenizer_config.json` and `special_tokens_map.json`. A family's tokenizer (Marian, T5, M2M100,
NLLB) supplies its vocabulary files and a few hooks:

    _tokenize(text, target)            one piece of text with no added token in it -> pieces
    _convert_token_to_id(token, target) / _convert_id_to_token(index, **decode_options)
    build_inputs_with_special_tokens(ids, target)    e.g. append </s>, or prefix a language code
    base_vocab()                       the model vocabulary, without added tokens
    convert_tokens_to_string(tokens, **decode_options)
    save_vocabulary(directory)         writes the vocabulary files, returns their paths

`target=True` means the text is a translation target (`text_target=`): a family may read it with
another SentencePiece model or vocabulary, or frame it with other special tokens. Hugging Face
switches the tokenizer between modes; here the side is an argument, so a tokenizer has no mode.

Behaviour follows Hugging Face transformers' Python tokenizers, since the ids must be the same:
special tokens get the ids the vocabulary gives them (or new ids after it), `skip_special_tokens`
skips `<unk>` too, a text longer than the model accepts is kept whole unless truncation is asked
for (with one `SequenceTooLongWarning` when `truncation` is left unset), and `max_length` alone
turns truncation on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from westron.configuration_utils import JsonConfig, pop_hub_kwargs
from westron.errors import CheckpointError, WestronError
from westron.file_utils import atomic_write
from westron.hub import cached_file

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
ADDED_TOKENS_FILE = "added_tokens.json"  # legacy: read, never written

# The named special tokens, in Hugging Face's order (it decides the ids of tokens new to the vocab).
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

# Hugging Face's stand-in for "no length limit" (model_max_length of checkpoints without one).
VERY_LARGE_INTEGER = int(1e30)
_LARGE_INTEGER = int(1e20)

# tokenizer_config.json keys that describe a Hugging Face session, not the tokenizer: not kept.
_SESSION_KEYS = frozenset(
    {
        "tokenizer_class",
        "name_or_path",
        "is_local",
        "local_files_only",
        "backend",
        "files_loaded",
        "special_tokens_map_file",
        "tokenizer_file",
        "tokenizer_config_file",
        "init_inputs",
        "auto_map",
    }
)

# The accepted `padding=` and `truncation=` values (Hugging Face's names) -> what they mean here.
_PADDING = {True: "longest", "longest": "longest", "max_length": "max_length"}
_PADDING.update({False: None, None: None, "do_not_pad": None})
_TRUNCATION = {True: True, "longest_first": True, "only_first": True}
_TRUNCATION.update({False: False, None: False, "do_not_truncate": False})


class SequenceTooLongWarning(UserWarning):
    """Some text gives more tokens than the model accepts, and the call left `truncation` unset.

    Issued once per call (Hugging Face logs it once per tokenizer). Not issued with an explicit
    `truncation=False`, nor with `verbose=False`: that caller checks the lengths itself. Callers
    that want an error instead turn it into one with
    `warnings.simplefilter("error", SequenceTooLongWarning)` inside `warnings.catch_warnings()`.
    """


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
    """Python ints / lists from a list, NumPy array, PyTorch or TensorFlow tensor, without importing them."""
    if hasattr(token_ids, "numpy") and not hasattr(token_ids, "tolist"):  # tf.Tensor
        token_ids = token_ids.numpy()
    if hasattr(token_ids, "detach"):  # torch.Tensor (maybe on a GPU)
        token_ids = token_ids.detach().cpu()
    if hasattr(token_ids, "tolist"):
        return token_ids.tolist()
    if isinstance(token_ids, (list, tuple)):
        return [to_id_lists(item) for item in token_ids]
    return int(token_ids)


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


def _special_token_property(name: str):
    def token(self) -> str | None:
        return self._special_tokens.get(name)

    def set_token(self, value) -> None:
        self._special_tokens[name] = None if value is None else str(value)

    def token_id(self) -> int | None:
        value = self._special_tokens.get(name)
        return None if value is None else self.convert_tokens_to_ids(value)

    return property(token, set_token), property(token_id)


class SentencePieceTokenizer:
    """Base of the SentencePiece tokenizers: see the module docstring for what a subclass supplies."""

    # __init__ argument -> file name in a tokenizer folder; the optional ones may be absent.
    vocab_files_names: ClassVar[dict[str, str]] = {}
    optional_vocab_files: ClassVar[frozenset[str]] = frozenset()
    model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]
    padding_side: str = "right"
    truncation_side: str = "right"

    # bos_token, eos_token, ... and bos_token_id, eos_token_id, ...: properties set after the class.

    def __init__(
        self,
        *,
        model_max_length: int | None = None,
        padding_side: str | None = None,
        truncation_side: str | None = None,
        clean_up_tokenization_spaces: bool = False,
        additional_special_tokens: Sequence | None = None,
        extra_special_tokens: Sequence | Mapping | None = None,
        added_tokens_decoder: Mapping | None = None,
        name_or_path: str | os.PathLike = "",
        **kwargs: Any,
    ):
        """Subclasses load their vocabulary first: registering the special tokens looks ids up in it.

        Keyword arguments named like the special tokens (`eos_token="</s>"`) set them; other unknown
        keys (from a tokenizer_config.json written by a newer library) are kept and saved back.
        """
        self.name_or_path = os.fspath(name_or_path)
        self.model_max_length = VERY_LARGE_INTEGER if model_max_length is None else int(model_max_length)
        self.padding_side = padding_side or type(self).padding_side
        self.truncation_side = truncation_side or type(self).truncation_side
        for side in (self.padding_side, self.truncation_side):
            if side not in ("left", "right"):
                raise ValueError(f"padding_side and truncation_side must be 'left' or 'right', not {side!r}")
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)

        # Named special tokens first (HF's order), then the unnamed extras. Any other `*_token`
        # argument, or a dict of extras (transformers 4.x), adds a named one, as in Hugging Face.
        self._special_tokens: dict[str, str | None] = {name: None for name in SPECIAL_TOKEN_NAMES}
        for name in SPECIAL_TOKEN_NAMES:
            value = kwargs.pop(name, None)
            if value is not None:
                self._special_tokens[name] = token_text(value)
        for name in [key for key, value in kwargs.items() if key.endswith("_token")]:
            if isinstance(kwargs[name], (str, AddedToken)):
                self._special_tokens[name] = token_text(kwargs.pop(name))
        if extra_special_tokens is None or (not extra_special_tokens and additional_special_tokens):
            extra_special_tokens = additional_special_tokens
        if isinstance(extra_special_tokens, Mapping):
            for name, value in extra_special_tokens.items():
                self._special_tokens[name] = token_text(value)
            extra_special_tokens = ()
        self._extra_special_tokens: list[str] = list(dict.fromkeys(token_text(t) for t in extra_special_tokens or ()))
        self._extra_config = {key: value for key, value in kwargs.items() if key not in _SESSION_KEYS}

        # Added tokens: matched whole in the text. The saved ones keep their ids; special tokens
        # not yet among them get their vocabulary id, or a new id after the vocabulary.
        self._added_tokens: dict[int, AddedToken] = {}
        for index, token in (added_tokens_decoder or {}).items():
            self._added_tokens[int(index)] = AddedToken.from_json(token)
        self._added_ids = {token.content: index for index, token in self._added_tokens.items()}
        vocab = self.get_vocab()
        next_id = len(vocab)
        for token in self.all_special_tokens:
            if token in self._added_ids:
                continue
            index = vocab.get(token)
            if index is None:
                index, next_id = next_id, next_id + 1
            self._added_tokens[index] = AddedToken(token, special=True)
            self._added_ids[token] = index
        self._compile_added_tokens()

    # ---- hooks for a model family ---------------------------------------------------------------

    def base_vocab(self) -> dict[str, int]:
        """The vocabulary of the model's input side, without added tokens."""
        raise NotImplementedError

    def _tokenize(self, text: str, target: bool = False) -> list[str]:
        """Pieces of `text`, which holds no added token."""
        raise NotImplementedError

    def _convert_token_to_id(self, token: str, target: bool = False) -> int:
        raise NotImplementedError

    def _convert_id_to_token(self, index: int, **decode_options: Any) -> str:
        raise NotImplementedError

    def convert_tokens_to_string(self, tokens: list[str], **decode_options: Any) -> str:
        raise NotImplementedError

    def build_inputs_with_special_tokens(self, token_ids: list[int], target: bool = False) -> list[int]:
        """The model input for one sequence of ids; by default `token_ids </s>`."""
        return token_ids + [self.eos_token_id]

    def save_vocabulary(self, save_directory: str) -> list[str]:
        """Writes the vocabulary files into `save_directory`; returns their paths."""
        raise NotImplementedError

    def tokenizer_config(self) -> dict[str, Any]:
        """The tokenizer_config.json contents. Subclasses add their own __init__ arguments."""
        config = dict(self._extra_config)
        config.update(
            {
                "model_max_length": self.model_max_length,
                "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
                "tokenizer_class": type(self).__name__,
                "added_tokens_decoder": {
                    str(index): self._added_tokens[index].to_dict() for index in sorted(self._added_tokens)
                },
            }
        )
        config.update(self.special_tokens_map)
        if self._extra_special_tokens:
            # transformers 4.x and 5.x both read this name (5.x renames it extra_special_tokens).
            config["additional_special_tokens"] = list(self._extra_special_tokens)
        if self.padding_side != type(self).padding_side:
            config["padding_side"] = self.padding_side
        if self.truncation_side != type(self).truncation_side:
            config["truncation_side"] = self.truncation_side
        return config

    # ---- vocabulary and special tokens ------------------------------------------------------------

    def get_vocab(self) -> dict[str, int]:
        return {**self.base_vocab(), **getattr(self, "_added_ids", {})}

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens."""
        return len(self.base_vocab())

    def __len__(self) -> int:
        """Size of the vocabulary with the added tokens."""
        return len(self.get_vocab())

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {name: token for name, token in self._special_tokens.items() if token is not None}

    @property
    def additional_special_tokens(self) -> list[str]:
        return list(self._extra_special_tokens)

    @property
    def all_special_tokens(self) -> list[str]:
        tokens = [token for token in self._special_tokens.values() if token is not None]
        return list(dict.fromkeys(tokens + self._extra_special_tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        return dict(sorted(self._added_tokens.items()))

    def _compile_added_tokens(self) -> None:
        # Longest first: at each position the regex takes the first alternative that matches, so
        # "<extra_id_10>" wins over "<extra_id_1>" (Hugging Face's trie does the same).
        contents = sorted(self._added_ids, key=len, reverse=True)
        self._added_pattern = re.compile("(" + "|".join(map(re.escape, contents)) + ")") if contents else None

    # ---- text -> tokens -> ids --------------------------------------------------------------------

    def tokenize(self, text: str, *, target: bool = False) -> list[str]:
        """The tokens of `text`: added tokens whole, the text between them through SentencePiece."""
        chunks = self._added_pattern.split(text) if self._added_pattern else [text]
        chunks = [chunk for chunk in chunks if chunk]
        # An added token may eat the blanks beside it, or (single_word) only match a whole word.
        for i, chunk in enumerate(chunks):
            index = self._added_ids.get(chunk)
            if index is None:
                continue
            token = self._added_tokens[index]
            left = chunks[i - 1] if i > 0 else None
            right = chunks[i + 1] if i + 1 < len(chunks) else None
            if token.rstrip and right:
                chunks[i + 1] = right.lstrip()
            if token.lstrip and left:
                chunks[i - 1] = left.rstrip()
            if token.single_word:
                if left and left[-1] != " ":
                    chunks[i - 1] += chunk
                    chunks[i] = ""
                elif right and right[0] != " ":
                    chunks[i + 1] = chunk + chunks[i + 1]
                    chunks[i] = ""
        special = set(self.all_special_tokens)
        tokens = []
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in self._added_ids or chunk in special:
                tokens.append(chunk)
            else:
                tokens.extend(self._tokenize(chunk, target=target))
        return tokens

    def convert_tokens_to_ids(self, tokens: str | Sequence[str], *, target: bool = False) -> int | list[int]:
        if isinstance(tokens, str):
            index = self._added_ids.get(tokens)
            return index if index is not None else self._convert_token_to_id(tokens, target=target)
        return [self.convert_tokens_to_ids(token, target=target) for token in tokens]

    def convert_ids_to_tokens(
        self, ids: int | Sequence[int], skip_special_tokens: bool = False, **decode_options: Any
    ) -> str | list[str]:
        ids = to_id_lists(ids)
        if isinstance(ids, int):
            return self._id_to_token(ids, decode_options)
        skip = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(index, decode_options) for index in ids if index not in skip]

    def _id_to_token(self, index: int, decode_options: dict[str, Any]) -> str:
        added = self._added_tokens.get(index)
        return added.content if added is not None else self._convert_id_to_token(index, **decode_options)

    def num_special_tokens_to_add(self, target: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], target=target))

    def encode(
        self,
        text: str,
        *,
        target: bool = False,
        add_special_tokens: bool = True,
        truncation: bool | str | None = None,
        max_length: int | None = None,
    ) -> list[int]:
        """The ids of one text (`__call__(text)["input_ids"]`, or its labels with `target=True`)."""
        options = dict(add_special_tokens=add_special_tokens, truncation=truncation, max_length=max_length)
        encoding = self(text_target=text, **options) if target else self(text, **options)
        return encoding["input_ids"]

    # ---- __call__: texts -> padded ids ------------------------------------------------------------

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        text_target: str | Sequence[str] | None = None,
        *,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        max_target_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        add_special_tokens: bool = True,
        verbose: bool = True,
    ) -> BatchEncoding:
        """Tokenizes one text or a batch: input_ids, attention_mask, and labels when text_target is given.

        padding: False (none), True / "longest" (to the longest row), "max_length" (to max_length,
        else model_max_length). truncation: True cuts to max_length, else model_max_length; None
        (the default) keeps long texts whole with one SequenceTooLongWarning per call; False keeps
        them whole silently (the caller checks). max_length alone implies truncation=True.
        With only text_target, the targets come back as input_ids and attention_mask.
        """
        if text is None and text_target is None:
            raise ValueError("give text, text_target or both")
        if padding_side not in (None, "left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', not {padding_side!r}")
        # Warn about long texts only when the caller said nothing about truncation.
        warn_if_too_long = verbose and truncation is None
        pad, truncate, max_length = self._resolve_padding_truncation(
            padding, truncation, max_length, pad_to_multiple_of, verbose
        )
        options = dict(
            pad=pad,
            truncate=truncate,
            pad_to_multiple_of=pad_to_multiple_of,
            padding_side=padding_side or self.padding_side,
            return_tensors=return_tensors,
            return_attention_mask=(
                "attention_mask" in self.model_input_names if return_attention_mask is None else return_attention_mask
            ),
            add_special_tokens=add_special_tokens,
            warn_if_too_long=warn_if_too_long,
        )
        if text_target is not None:
            target_max_length = max_target_length if max_target_length is not None else max_length
            targets = self._encode_texts(text_target, target=True, max_length=target_max_length, **options)
            if text is None:
                return targets
        encoding = self._encode_texts(text, target=False, max_length=max_length, **options)
        if text_target is not None:
            encoding["labels"] = targets["input_ids"]
        return encoding

    def _resolve_padding_truncation(self, padding, truncation, max_length, pad_to_multiple_of, verbose):
        """(pad: None|"longest"|"max_length", truncate: bool, max_length), as Hugging Face decides them."""
        if max_length is not None and padding is False and truncation is None:
            truncation = True  # Hugging Face's rule: max_length alone truncates
        try:
            pad = _PADDING[padding]
        except (KeyError, TypeError):
            raise ValueError(f"padding must be True, False, 'longest' or 'max_length', not {padding!r}") from None
        try:
            truncate = _TRUNCATION[truncation]
        except (KeyError, TypeError):
            raise ValueError(f"truncation must be True, False or None, not {truncation!r}") from None
        if padding is True and max_length is not None and not truncate and verbose:
            warnings.warn(
                "max_length is ignored when padding=True and truncation is off; "
                "to pad to max_length use padding='max_length'",
                stacklevel=3,
            )
        if max_length is None:
            unlimited = self.model_max_length > _LARGE_INTEGER
            if pad == "max_length":
                if unlimited:
                    pad = None
                else:
                    max_length = self.model_max_length
            if truncate:
                if unlimited:
                    truncate = False
                else:
                    max_length = self.model_max_length
        if pad is not None and self.pad_token is None:
            raise ValueError("padding needs a pad token, and this tokenizer has none")
        if truncate and pad is not None and pad_to_multiple_of and max_length is not None:
            if max_length % pad_to_multiple_of:
                raise ValueError(
                    f"truncation length {max_length} is not a multiple of pad_to_multiple_of={pad_to_multiple_of}"
                )
        return pad, truncate, max_length

    def _encode_texts(
        self,
        texts,
        *,
        target,
        max_length,
        pad,
        truncate,
        pad_to_multiple_of,
        padding_side,
        return_tensors,
        return_attention_mask,
        add_special_tokens,
        warn_if_too_long,
    ) -> BatchEncoding:
        single = isinstance(texts, str)
        if single:
            texts = [texts]
        elif not isinstance(texts, (list, tuple)) or not all(isinstance(text, str) for text in texts):
            raise TypeError("text and text_target must be a string or a list of strings")
        rows = [self._encode_one(text, target, add_special_tokens, truncate, max_length) for text in texts]
        if warn_if_too_long and not truncate:
            self._warn_if_too_long(rows, max_length)
        rows, masks = self.pad_rows(rows, pad, max_length, pad_to_multiple_of, padding_side)
        encoding = BatchEncoding(input_ids=rows)
        if return_attention_mask:
            encoding["attention_mask"] = masks
        for key, value in encoding.items():
            encoding[key] = value[0] if single and return_tensors is None else as_tensor(value, return_tensors)
        return encoding

    def _encode_one(self, text, target, add_special_tokens, truncate, max_length) -> list[int]:
        ids = self.convert_tokens_to_ids(self.tokenize(text, target=target), target=target)
        num_special = self.num_special_tokens_to_add(target) if add_special_tokens else 0
        excess = len(ids) + num_special - max_length if truncate and max_length else 0
        if excess > 0:
            ids = ids[:-excess] if self.truncation_side == "right" else ids[excess:]
        return self.build_inputs_with_special_tokens(ids, target=target) if add_special_tokens else ids

    def _warn_if_too_long(self, rows: list[list[int]], max_length: int | None) -> None:
        limit = max_length if max_length is not None else self.model_max_length
        if not limit or limit > _LARGE_INTEGER:
            return
        too_long = [len(row) for row in rows if len(row) > limit]
        if too_long:
            warnings.warn(
                f"{len(too_long)} of {len(rows)} sequences are longer than the model's maximum of {limit} tokens "
                f"(longest: {max(too_long)}); pass truncation=True to cut them",
                SequenceTooLongWarning,
                stacklevel=4,
            )

    def pad_rows(
        self,
        rows: list[list[int]],
        pad: str | None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
    ) -> tuple[list[list[int]], list[list[int]]]:
        """Pads id rows with pad_token_id: (rows, attention masks). pad: None, "longest" or "max_length"."""
        masks = [[1] * len(row) for row in rows]
        if pad is None:
            return rows, masks
        length = max((len(row) for row in rows), default=0) if pad == "longest" else max_length
        if length is None:
            raise ValueError("padding='max_length' needs max_length")
        if pad_to_multiple_of and length % pad_to_multiple_of:
            length += pad_to_multiple_of - length % pad_to_multiple_of
        left = (padding_side or self.padding_side) == "left"
        padded_rows, padded_masks = [], []
        for row, mask in zip(rows, masks):
            missing = max(length - len(row), 0)
            fill, zeros = [self.pad_token_id] * missing, [0] * missing
            padded_rows.append(fill + row if left else row + fill)
            padded_masks.append(zeros + mask if left else mask + zeros)
        return padded_rows, padded_masks

    def pad(
        self,
        encoded_inputs: Mapping[str, Sequence] | Sequence[Mapping[str, Sequence]],
        padding: bool | str = True,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
    ) -> BatchEncoding:
        """Pads already tokenized rows (a dict of lists, or a list of dicts: a data collator's input).

        input_ids get pad_token_id and attention_mask zeros; other keys of the same length (labels)
        get pad_token_id too. Padding labels for a loss (-100) is the collator's business.
        """
        if isinstance(encoded_inputs, Sequence) and encoded_inputs and isinstance(encoded_inputs[0], Mapping):
            encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
        if "input_ids" not in encoded_inputs:
            raise ValueError(f"pad() needs input_ids, got {sorted(encoded_inputs)}")
        pad, _, max_length = self._resolve_padding_truncation(padding, False, max_length, pad_to_multiple_of, True)
        result = BatchEncoding()
        for key, value in encoded_inputs.items():
            if key == "attention_mask":
                continue
            result[key], masks = self.pad_rows(to_id_lists(value), pad, max_length, pad_to_multiple_of)
            if key == "input_ids" and (return_attention_mask or return_attention_mask is None):
                result["attention_mask"] = masks
        return BatchEncoding({key: as_tensor(value, return_tensors) for key, value in result.items()})

    # ---- ids -> text ------------------------------------------------------------------------------

    def decode(
        self,
        token_ids,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **decode_options: Any,
    ) -> str | list[str]:
        """The text of one id sequence, or a list of texts for a batch (list of lists, 2-D tensor)."""
        token_ids = to_id_lists(token_ids)
        if isinstance(token_ids, list) and token_ids and isinstance(token_ids[0], list):
            return [
                self._decode(ids, skip_special_tokens, clean_up_tokenization_spaces, decode_options)
                for ids in token_ids
            ]
        return self._decode(token_ids, skip_special_tokens, clean_up_tokenization_spaces, decode_options)

    def batch_decode(
        self,
        sequences,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **decode_options: Any,
    ) -> list[str]:
        texts = self.decode(sequences, skip_special_tokens, clean_up_tokenization_spaces, **decode_options)
        return [texts] if isinstance(texts, str) else texts

    def _decode(self, ids, skip_special_tokens, clean_up_tokenization_spaces, decode_options) -> str:
        tokens = self.convert_ids_to_tokens(ids, skip_special_tokens=skip_special_tokens, **decode_options)
        if isinstance(tokens, str):
            tokens = [tokens]
        text = self.convert_tokens_to_string(tokens, **decode_options)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def decode_pieces_around_special_tokens(self, processor, tokens: list[str], after_special: str = "") -> str:
        """Runs of pieces through SentencePiece's decoder, special tokens verbatim between them."""
        special = set(self.all_special_tokens)
        parts, run = [], []
        for token in tokens:
            if token in special:
                parts.append(processor.decode_pieces(run) + token + after_special)
                run = []
            else:
                run.append(token)
        parts.append(processor.decode_pieces(run))
        return "".join(parts)

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        """Hugging Face's English clean-up (" ." -> "."), used when clean_up_tokenization_spaces is set."""
        for before, after in (
            (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
            (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
        ):  # fmt: skip
            text = text.replace(before, after)
        return text

    # ---- folders ----------------------------------------------------------------------------------

    def save_pretrained(self, save_directory: str | os.PathLike) -> list[str]:
        """Writes tokenizer_config.json, special_tokens_map.json and the vocabulary files (atomically)."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise WestronError(f"{save_directory!r} is a file; a tokenizer is saved into a folder")
        os.makedirs(save_directory, exist_ok=True)
        special_tokens_map = self.special_tokens_map
        if self._extra_special_tokens:
            special_tokens_map["additional_special_tokens"] = list(self._extra_special_tokens)
        written = []
        files = ((TOKENIZER_CONFIG_FILE, self.tokenizer_config()), (SPECIAL_TOKENS_MAP_FILE, special_tokens_map))
        for name, data in files:
            path = os.path.join(save_directory, name)
            write_json(path, data, sort_keys=True)
            written.append(path)
        return written + self.save_vocabulary(save_directory)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any):
        """Loads a tokenizer folder or Hub repo (revision=, cache_dir=, local_files_only=, token=).

        Other keyword arguments override tokenizer_config.json (`model_max_length=128`).
        """
        hub_kwargs = pop_hub_kwargs(kwargs)

        def resolve(filename, required=True):
            return cached_file(path_or_repo_id, filename, required=required, **hub_kwargs)

        config_path = resolve(TOKENIZER_CONFIG_FILE, required=False)
        config = JsonConfig.read_json(config_path) if config_path else {}
        config = {key: value for key, value in config.items() if key not in cls.vocab_files_names}
        if "added_tokens_decoder" not in config:
            # Older folders: special tokens in special_tokens_map.json, added ones in added_tokens.json.
            map_path = resolve(SPECIAL_TOKENS_MAP_FILE, required=False)
            for key, value in (JsonConfig.read_json(map_path) if map_path else {}).items():
                if kwargs.get(key):
                    continue
                if key in ("additional_special_tokens", "extra_special_tokens") and isinstance(value, list):
                    # As Hugging Face: extra_special_tokens add to the config's list, while
                    # additional_special_tokens only count when the config has none.
                    existing = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
                    if isinstance(existing, Mapping) or (existing and key == "additional_special_tokens"):
                        continue
                    existing = [token_text(token) for token in existing]
                    config.pop("additional_special_tokens", None)
                    config["extra_special_tokens"] = existing + [
                        token for token in map(token_text, value) if token not in existing
                    ]
                    continue
                config[key] = value
            added_path = resolve(ADDED_TOKENS_FILE, required=False)
            if added_path:
                special = {token_text(config[name]) for name in SPECIAL_TOKEN_NAMES if config.get(name)}
                special.update(token_text(t) for t in config.get("additional_special_tokens") or ())
                config["added_tokens_decoder"] = {
                    index: AddedToken(token, special=token in special)
                    for token, index in JsonConfig.read_json(added_path).items()
                }
        files = {}
        for argument, filename in cls.vocab_files_names.items():
            if kwargs.get(argument) is None:
                files[argument] = resolve(filename, required=argument not in cls.optional_vocab_files)
        return cls(**{**config, **kwargs, **files, "name_or_path": os.fspath(path_or_repo_id)})

    def __repr__(self):
        return (
            f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
            f"model_max_length={self.model_max_length}, special_tokens={self.special_tokens_map})"
        )


for _name in SPECIAL_TOKEN_NAMES:
    _token, _token_id = _special_token_property(_name)
    setattr(SentencePieceTokenizer, _name, _token)
    setattr(SentencePieceTokenizer, f"{_name}_id", _token_id)
del _name, _token, _token_id


def write_json(path: str, data: Any, sort_keys: bool = False) -> None:
    with atomic_write(path) as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n")


def copy_file_atomically(source: str, destination: str) -> None:
    """Copies `source` over `destination` so that a reader never sees half a file."""
    if os.path.exists(destination) and os.path.samefile(source, destination):
        return
    with open(source, "rb") as reader, atomic_write(destination, "wb") as writer:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)


# ---- SentencePiece files: shared by every tokenizer --------------------------------------------------

SPIECE_UNDERLINE = "▁"


def load_spm(path: str, sp_model_kwargs: dict[str, Any]):
    """A SentencePieceProcessor for a model file; a file that is no model is a CheckpointError."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(**sp_model_kwargs)
    try:
        processor.Load(os.fspath(path))
    except (OSError, RuntimeError) as error:
        raise CheckpointError(f"{path} is not a SentencePiece model ({error})") from None
    return processor


def load_vocab(path: str) -> dict[str, int]:
    """A vocab.json: token -> integer id."""
    vocab = JsonConfig.read_json(os.fspath(path))
    if not all(isinstance(index, int) for index in vocab.values()):
        raise CheckpointError(f"{path} must map tokens to integer ids")
    return vocab


def load_charsmap_normalizer(processor):
    """The model's character normalisation alone (Hugging Face's `Precompiled` normalizer): no
    blank is added, removed or escaped, so whitespace is left for the pre-tokenizer to handle."""
    import sentencepiece

    return sentencepiece.SentencePieceNormalizer(
        model_proto=processor.serialized_model_proto(),
        add_dummy_prefix=False,
        escape_whitespaces=False,
        remove_extra_whitespaces=False,
    )


def metaspace_decode(tokens: list[str]) -> str:
    """Hugging Face's Metaspace decoder: "▁" is a blank, except in the first token, which loses every "▁"."""
    return "".join(token.replace(SPIECE_UNDERLINE, " " if i else "") for i, token in enumerate(tokens))


def save_spm_model(processor, source: str, path: str) -> str:
    """Copies the loaded SentencePiece model file to `path` (or writes the model it holds if the file is gone)."""
    if os.path.isfile(source):
        copy_file_atomically(source, path)
    else:  # a temporary download that is gone
        with atomic_write(path, "wb") as handle:
            handle.write(processor.serialized_model_proto())
    return path
