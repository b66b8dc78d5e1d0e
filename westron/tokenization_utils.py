"""The base tokenizer: Hugging Face's call signature and folder layout over a family's subword model.

`PreTrainedTokenizer` holds everything a model family's tokenizer shares: special and added
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

The base class never calls SentencePiece itself: every family happens to use it, through
`westron.sentencepiece_utils`. The data types (`AddedToken`, `BatchEncoding`, tensors) live in
`westron.tokenization_utils_base`, reading older tokenizer folders in `westron.tokenization_legacy`.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from collections.abc import Iterator
from typing import Any, ClassVar

from westron.configuration_utils import JsonConfig, pop_hub_kwargs
from westron.errors import WestronError
from westron.file_utils import atomic_directory, write_json
from westron.hub import cached_file
from westron.tokenization_legacy import complete_legacy_config
# AddedToken, BatchEncoding, SequenceTooLongWarning and TokenizerInputError are importable from here too.
from westron.tokenization_utils_base import (  # noqa: F401
    LARGE_INTEGER,
    PADDING_STRATEGIES,
    SPECIAL_TOKEN_NAMES,
    SPECIAL_TOKENS_MAP_FILE,
    TOKENIZER_CONFIG_FILE,
    TRUNCATION_STRATEGIES,
    VERY_LARGE_INTEGER,
    AddedToken,
    BatchEncoding,
    SequenceTooLongWarning,
    TokenizerInputError,
    as_tensor,
    check_call_options,
    check_no_lone_surrogate,
    check_positive_length,
    to_id_lists,
    token_text,
)

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


class PreTrainedTokenizer:
    """Base of the tokenizers: see the module docstring for what a subclass supplies."""

    # __init__ argument -> file name in a tokenizer folder; the optional ones may be absent.
    vocab_files_names: ClassVar[dict[str, str]] = {}
    optional_vocab_files: ClassVar[frozenset[str]] = frozenset()
    model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]
    # decode(skip_special_tokens=True) also skips every added token marked special, as HF's fast
    # (Rust) tokenizers do; HF's SentencePiece-only ones (Marian, M2M100) skip the named and
    # additional special tokens only.
    skips_special_added_tokens: ClassVar[bool] = True
    padding_side: str = "right"
    truncation_side: str = "right"

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

    # The named special tokens (None when the tokenizer has none) and their ids: one property each,
    # written out so that grep and IDEs find them.

    def _special_token(self, name: str) -> str | None:
        return self._special_tokens.get(name)

    def _set_special_token(self, name: str, value: str | AddedToken | None) -> None:
        self._special_tokens[name] = None if value is None else str(value)

    def _special_token_id(self, name: str) -> int | None:
        token = self._special_tokens.get(name)
        return None if token is None else self.convert_tokens_to_ids(token)

    @property
    def bos_token(self) -> str | None:
        return self._special_token("bos_token")

    @bos_token.setter
    def bos_token(self, value: str | AddedToken | None) -> None:
        self._set_special_token("bos_token", value)

    @property
    def eos_token(self) -> str | None:
        return self._special_token("eos_token")

    @eos_token.setter
    def eos_token(self, value: str | AddedToken | None) -> None:
        self._set_special_token("eos_token", value)

    @property
    def unk_token(self) -> str | None:
        return self._special_token("unk_token")

    @unk_token.setter
    def unk_token(self, value: str | AddedToken | None) -> None:
        self._set_special_token("unk_token", value)

    @property
    def sep_token(self) -> str | None:
        return self._special_token("sep_token")

    @sep_token.setter
    def sep_token(self, value: str | AddedToken | None) -> None:
        self._set_special_token("sep_token", value)

    @property
    def pad_token(self) -> str | None:
        return self._special_token("pad_token")

    @pad_token.setter
    def pad_token(self, value: str | AddedToken | None) -> None:
        self._set_special_token("pad_token", value)

    @property
    def cls_token(self) -> str | None:
        return self._special_token("cls_token")

    @cls_token.setter
    def cls_token(self, value: str | AddedToken | None) -> None:
        self._set_special_token("cls_token", value)

    @property
    def mask_token(self) -> str | None:
        return self._special_token("mask_token")

    @mask_token.setter
    def mask_token(self, value: str | AddedToken | None) -> None:
        self._set_special_token("mask_token", value)

    @property
    def bos_token_id(self) -> int | None:
        return self._special_token_id("bos_token")

    @property
    def eos_token_id(self) -> int | None:
        return self._special_token_id("eos_token")

    @property
    def unk_token_id(self) -> int | None:
        return self._special_token_id("unk_token")

    @property
    def sep_token_id(self) -> int | None:
        return self._special_token_id("sep_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._special_token_id("pad_token")

    @property
    def cls_token_id(self) -> int | None:
        return self._special_token_id("cls_token")

    @property
    def mask_token_id(self) -> int | None:
        return self._special_token_id("mask_token")

    def add_tokens(self, new_tokens: str | AddedToken | Sequence[str | AddedToken], special_tokens: bool = False) -> int:
        """HF 4.x's: tokens matched whole in the text, with ids after the vocabulary; returns how many
        ids are new (a token already in the vocabulary keeps its id). Give the model rows for them:
        `model.resize_token_embeddings(len(tokenizer))`."""
        if isinstance(new_tokens, (str, AddedToken)):
            new_tokens = [new_tokens]
        added = 0
        for token in new_tokens:
            if isinstance(token, str):
                token = AddedToken(token, special=special_tokens)
            if not isinstance(token, AddedToken) or not token.content:
                raise WestronError(f"add_tokens takes non-empty strings or AddedTokens, got {token!r}")
            if token.content in self._added_ids:
                continue
            vocab = self.get_vocab()
            index = vocab.get(token.content)
            if index is None:
                index, added = len(vocab), added + 1
            self._added_tokens[index] = token
            self._added_ids[token.content] = index
        self._compile_added_tokens()
        return added

    def add_special_tokens(self, special_tokens_dict: Mapping[str, Any], replace_additional_special_tokens: bool = True) -> int:
        """HF 4.x's: named special tokens (`{"pad_token": "<pad>"}`) and `additional_special_tokens`
        (a list), added as tokens where new; returns how many ids are new. Decoding with
        skip_special_tokens=True leaves them out."""
        extra = special_tokens_dict.get("additional_special_tokens")
        unknown = sorted(k for k in special_tokens_dict if k != "additional_special_tokens" and k not in SPECIAL_TOKEN_NAMES)
        if unknown:
            raise WestronError(f"add_special_tokens: unknown key(s) {', '.join(unknown)} (known: {', '.join(SPECIAL_TOKEN_NAMES)}, additional_special_tokens)")
        if extra is not None and (isinstance(extra, (str, AddedToken)) or not isinstance(extra, (list, tuple))):
            raise WestronError(f"additional_special_tokens must be a list of tokens, got {extra!r}")
        tokens = []
        for name, value in special_tokens_dict.items():
            if name != "additional_special_tokens":
                tokens.append(value if isinstance(value, AddedToken) else AddedToken(token_text(value), special=True))
                self._special_tokens[name] = token_text(value)
        extra_tokens = [t if isinstance(t, AddedToken) else AddedToken(token_text(t), special=True) for t in extra or ()]
        if extra is not None:
            kept = [] if replace_additional_special_tokens else self._extra_special_tokens
            self._extra_special_tokens = list(dict.fromkeys(kept + [t.content for t in extra_tokens]))
        return self.add_tokens(tokens + extra_tokens)

    def _compile_added_tokens(self) -> None:
        # Longest first: at each position the regex takes the first alternative that matches, so
        # "<extra_id_10>" wins over "<extra_id_1>" (Hugging Face's trie does the same).
        contents = sorted(self._added_ids, key=len, reverse=True)
        self._added_pattern = re.compile("(" + "|".join(map(re.escape, contents)) + ")") if contents else None

    # ---- text -> tokens -> ids --------------------------------------------------------------------

    def tokenize(self, text: str, *, target: bool = False) -> list[str]:
        """The tokens of `text`: added tokens whole, the text between them through SentencePiece."""
        check_no_lone_surrogate(text)
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
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        if skip_special_tokens and self.skips_special_added_tokens:
            skip.update(index for index, token in self._added_tokens.items() if token.special)
        return [self._id_to_token(index, decode_options) for index in ids if index not in skip]

    def _id_to_token(self, index: int, decode_options: dict[str, Any]) -> str:
        added = self._added_tokens.get(index)
        return added.content if added is not None else self._convert_id_to_token(index, **decode_options)

    def num_special_tokens_to_add(self, target: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], target=target))

    def encode(
        self,
        text: str,
        text_pair: str | None = None,
        *,
        target: bool = False,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        **options: Any,
    ) -> list[int] | Any:
        """The ids of one text (`__call__(text)["input_ids"]`, or its labels with `target=True`).

        As in HF 4.x, `return_tensors="pt"` (or "tf", "np") gives a (1, length) tensor, ready for
        `model.generate(tokenizer.encode(text, return_tensors="pt"))`.
        """
        call_options = dict(
            add_special_tokens=add_special_tokens,
            padding=padding,
            truncation=truncation,
            max_length=max_length,
            padding_side=padding_side,
            return_tensors=return_tensors,
            **options,
        )
        if target:
            encoding = self(text_target=text, text_pair=text_pair, **call_options)
        else:
            encoding = self(text, text_pair, **call_options)
        return encoding["input_ids"]

    def encode_plus(self, text: str, *args: Any, **kwargs: Any) -> BatchEncoding:
        """HF 4.x's name for tokenizing one text: `__call__` with a string (HF 5 dropped it)."""
        if not isinstance(text, str):
            raise WestronError(f"encode_plus takes one text (a string), got {type(text).__name__}: use batch_encode_plus for a list")
        return self(text, *args, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs: Sequence[str], *args: Any, **kwargs: Any) -> BatchEncoding:
        """HF 4.x's name for tokenizing a batch: `__call__` with a list of texts (HF 5 dropped it)."""
        if isinstance(batch_text_or_text_pairs, str) or not all(isinstance(t, str) for t in batch_text_or_text_pairs):
            raise WestronError("batch_encode_plus takes a list of texts (text pairs are not supported)")
        return self(list(batch_text_or_text_pairs), *args, **kwargs)

    def prepare_seq2seq_batch(
        self,
        src_texts: Sequence[str],
        tgt_texts: Sequence[str] | None = None,
        max_length: int | None = None,
        max_target_length: int | None = None,
        padding: bool | str = "longest",
        return_tensors: str | None = None,
        truncation: bool = True,
        **kwargs: Any,
    ) -> BatchEncoding:
        """HF 4.x's deprecated batch maker (old Marian docs use it): `__call__(src_texts, text_target=tgt_texts, ...)`."""
        warnings.warn(
            "prepare_seq2seq_batch() is deprecated (as in transformers 4.x): call tokenizer(src_texts, text_target=tgt_texts) instead",
            FutureWarning,
            stacklevel=2,
        )
        return self(
            src_texts,
            text_target=tgt_texts,
            max_length=max_length,
            max_target_length=max_target_length,
            padding=padding,
            truncation=truncation,
            return_tensors=return_tensors,
            **kwargs,
        )

    @contextlib.contextmanager
    def as_target_tokenizer(self) -> Iterator["PreTrainedTokenizer"]:
        """Transformers 4.x's old way to tokenize labels: inside, `tokenizer(texts)` means `text_target=texts`.

        Deprecated there and here (a FutureWarning), and kept because many fine-tuning scripts use it.
        """
        warnings.warn(
            "as_target_tokenizer() is deprecated: tokenize labels with tokenizer(text_target=...) instead",
            FutureWarning,
            stacklevel=3,
        )
        self._target_mode = True
        try:
            yield self
        finally:
            self._target_mode = False

    # ---- __call__: texts -> padded ids ------------------------------------------------------------

    def __call__(
        self,
        text: str | Sequence[str] | None = None,
        text_pair: str | Sequence[str] | None = None,
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
        **hf_options: Any,
    ) -> BatchEncoding:
        """Tokenizes one text or a batch: input_ids, attention_mask, and labels when text_target is given.

        padding: False (none), True / "longest" (to the longest row), "max_length" (to max_length,
        else model_max_length). truncation: True cuts to max_length, else model_max_length; None
        (the default) keeps long texts whole with one SequenceTooLongWarning per call; False keeps
        them whole silently (the caller checks). max_length alone implies truncation=True.
        With only text_target, the targets come back as input_ids and attention_mask. HF's other
        options (`return_token_type_ids`, `return_length`, `stride`, ...) are accepted at their
        neutral value (False, 0, None) and refused otherwise.

        Example:

            >>> from westron import AutoTokenizer
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> batch = tokenizer(["Speak, friend, and enter.", "The road"], padding=True, return_tensors="np")
            >>> sorted(batch)
            ['attention_mask', 'input_ids']
            >>> batch["attention_mask"][1].tolist()  # the shorter row is padded
            [1, 1, ..., 1, 0, ..., 0]
            >>> tokenizer("The road", text_target="goes ever on")["labels"][-1] == tokenizer.eos_token_id
            True
        """
        check_call_options(hf_options)
        if text_pair is not None:  # HF 4.x's second argument: tokenizer(src, tgt) would silently be a pair there
            raise WestronError(
                "text pairs (the second argument, text_pair) are not supported: translation targets go in text_target="
            )
        if vars(self).get("_target_mode") and text is not None:
            if text_target is not None:
                raise ValueError("inside as_target_tokenizer() text is the target: pass text_target outside it")
            text, text_target = None, text
        if text is None and text_target is None:
            raise ValueError("give text, text_target or both")
        if padding_side not in (None, "left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', not {padding_side!r}")
        check_positive_length("max_target_length", max_target_length)
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
        check_positive_length("max_length", max_length)
        if max_length is not None and padding is False and truncation is None:
            truncation = True  # Hugging Face's rule: max_length alone truncates
        try:
            pad = PADDING_STRATEGIES[padding]
        except (KeyError, TypeError):
            raise ValueError(f"padding must be True, False, 'longest' or 'max_length', not {padding!r}") from None
        try:
            truncate = TRUNCATION_STRATEGIES[truncation]
        except (KeyError, TypeError):
            raise ValueError(f"truncation must be True, False or None, not {truncation!r}") from None
        if padding is True and max_length is not None and not truncate and verbose:
            warnings.warn(
                "max_length is ignored when padding=True and truncation is off; "
                "to pad to max_length use padding='max_length'",
                stacklevel=3,
            )
        if max_length is None:
            unlimited = self.model_max_length > LARGE_INTEGER
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
        if not limit or limit > LARGE_INTEGER:
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
        """The texts of a batch of id sequences (a list of lists, a 2-D array or tensor).

        Example:

            >>> from westron import AutoTokenizer
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> ids = tokenizer(["Speak, friend, and enter.", "The road goes ever on."], padding=True)["input_ids"]
            >>> tokenizer.batch_decode(ids, skip_special_tokens=True)
            ['Speak, friend, and enter.', 'The road goes ever on.']
        """
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
        """Writes tokenizer_config.json, special_tokens_map.json and the vocabulary files (atomically).

        Example:

            >>> import os
            >>> from westron import AutoTokenizer
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> [os.path.basename(path) for path in tokenizer.save_pretrained("my-tokenizer")]
            ['tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'source.spm', 'target.spm']
        """
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise WestronError(f"{save_directory!r} is a file; a tokenizer is saved into a folder")
        special_tokens_map = self.special_tokens_map
        if self._extra_special_tokens:
            special_tokens_map["additional_special_tokens"] = list(self._extra_special_tokens)
        # One atomic folder swap, as a model's save: the files a model saved there are kept, this
        # tokenizer's own (including vocabulary files of an earlier save) are replaced.
        owned = {TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, *self.vocab_files_names.values()}
        names = []
        with atomic_directory(save_directory, keep=lambda name: name not in owned) as folder:
            files = ((TOKENIZER_CONFIG_FILE, self.tokenizer_config()), (SPECIAL_TOKENS_MAP_FILE, special_tokens_map))
            for name, data in files:
                write_json(os.path.join(folder, name), data, sort_keys=True)
                names.append(name)
            names += [os.path.basename(path) for path in self.save_vocabulary(folder)]
        return [os.path.join(save_directory, name) for name in names]

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any):
        """Loads a tokenizer folder or Hub repo (revision=, cache_dir=, local_files_only=, token=).

        Other keyword arguments override tokenizer_config.json (`model_max_length=128`).

        Example:

            >>> from westron import MarianTokenizer
            >>> tokenizer = MarianTokenizer.from_pretrained(checkpoint, model_max_length=128)
            >>> tokenizer.model_max_length
            128
        """
        hub_kwargs = pop_hub_kwargs(kwargs)

        def resolve(filename, required=True):
            return cached_file(path_or_repo_id, filename, required=required, **hub_kwargs)

        config_path = resolve(TOKENIZER_CONFIG_FILE, required=False)
        config = JsonConfig.read_json(config_path) if config_path else {}
        config = {key: value for key, value in config.items() if key not in cls.vocab_files_names}
        config = complete_legacy_config(config, resolve, kwargs)
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
