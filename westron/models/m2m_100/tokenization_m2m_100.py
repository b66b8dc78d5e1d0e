"""M2M100Tokenizer: the tokenizer of the facebook/m2m100 and wmt21 checkpoints, ids equal to Hugging Face's.

An M2M100 folder holds a SentencePiece BPE model (sentencepiece.bpe.model) and a fairseq
vocabulary, vocab.json (<s> = 0, <pad> = 1, </s> = 2, <unk> = 3, then the pieces in fairseq's
order, not SentencePiece's): a piece that vocab.json lacks is <unk>. The language tokens
(`__en__`, `__fr__`, ... for `language_codes="m2m100"`; 8 for "wmt21") take the ids right after
vocab.json, in fairseq's order.

A source is `__src__ pieces </s>` and a target `__tgt__ pieces </s>`; generation starts from
</s> and is forced to emit the target language token first: `get_lang_id(tgt_lang)` is that
forced BOS id (NllbTokenizer has the same method).

Hugging Face behaviours kept on purpose, because ids must match:
- the language tokens are special (matched whole in text, skipped by skip_special_tokens) only
  when the folder lists them in additional_special_tokens, as the Hub checkpoints do; a folder
  that does not list them still frames sequences with them and decodes their ids to `__xx__`;
- decoding joins pieces with SentencePiece, special tokens verbatim with no blank around them.
Not kept: for a folder that lists only some language tokens, or a special token new to
vocab.json, Hugging Face 5 numbers them right after vocab.json, over the language ids (`__he__`
in text would read as `__af__`); here a language token is always its language id and a new token
comes after the language tokens.
An unknown language is a WestronError that names the close matches (Hugging Face: a KeyError).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable
from typing import Any

from westron.errors import CheckpointError, WestronError
from westron.file_utils import write_json
from westron.sentencepiece_utils import (
    decode_pieces_around_special_tokens,
    load_spm,
    load_vocab,
    save_spm_model,
)
from westron.tokenization_utils import PreTrainedTokenizer
from westron.tokenization_utils_base import token_text

FAIRSEQ_LANGUAGE_CODES = {
    "m2m100": """
        af am ar ast az ba be bg bn br bs ca ceb cs cy da de el en es et fa ff fi fr fy ga gd gl gu ha
        he hi hr ht hu hy id ig ilo is it ja jv ka kk km kn ko lb lg ln lo lt lv mg mk ml mn mr ms my ne
        nl no ns oc or pa pl ps pt ro ru sd si sk sl so sq sr ss su sv sw ta th tl tn tr uk ur uz vi wo
        xh yi yo zh zu
    """.split(),
    "wmt21": "en ha is ja cs ru zh de".split(),
}


def unknown_language_error(lang: Any, known: Iterable[str]) -> WestronError:
    """The error for a language the tokenizer lacks, naming the close matches (any casing):
    `unknown language 'eng_latn'; did you mean: eng_Latn?`."""
    known = list(known)
    lowered = {code.lower(): code for code in reversed(known)}
    text = str(lang).lower()
    # Only the casing wrong: that one. Otherwise the codes of the same language ("zho" -> zho_Hans,
    # zho_Hant; "__en__" or "en-GB" -> en) and the closest few ("_Latn" makes many codes alike).
    matches = [code for code in known if code.lower() == text]
    if not matches:
        language = re.split(r"[_\-]", text.strip("_"))[0]
        matches = [code for code in known if code.lower().split("_")[0] == language]
        matches += [lowered[code] for code in difflib.get_close_matches(text, lowered, n=3, cutoff=0.75)]
        matches = list(dict.fromkeys(matches))
    if matches:
        hint = f"did you mean: {', '.join(matches)}?"
    else:
        shown = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        hint = f"this tokenizer knows {len(known)} languages ({shown})"
    return WestronError(f"unknown language {lang!r}; {hint}")


class LanguageCodesMixin:
    """src_lang / tgt_lang and language ids for a many-to-many tokenizer (M2M100, NLLB).

    The tokenizer provides `lang_code_to_id`; `get_lang_id(tgt_lang)` is generation's forced BOS id.
    """

    def _check_lang(self, lang: str) -> str:
        codes = self.lang_code_to_id
        if lang not in codes:
            raise unknown_language_error(lang, codes)
        return lang

    @property
    def src_lang(self) -> str:
        return self._src_lang

    @src_lang.setter
    def src_lang(self, lang: str) -> None:
        self._src_lang = self._check_lang(lang)

    @property
    def tgt_lang(self) -> str | None:
        return self._tgt_lang

    @tgt_lang.setter
    def tgt_lang(self, lang: str | None) -> None:
        self._tgt_lang = None if lang is None else self._check_lang(lang)

    def get_lang_id(self, lang: str) -> int:
        """The id of a language's token (`get_lang_id(tgt_lang)` is generation's forced BOS id)."""
        return self.lang_code_to_id[self._check_lang(lang)]


class M2M100Tokenizer(LanguageCodesMixin, PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "vocab.json", "spm_file": "sentencepiece.bpe.model"}
    skips_special_added_tokens = False  # HF's tokenizer is SentencePiece-only (no fast one)

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        spm_file: str | os.PathLike,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        bos_token: str = "<s>",
        eos_token: str = "</s>",
        sep_token: str = "</s>",
        pad_token: str = "<pad>",
        unk_token: str = "<unk>",
        language_codes: str = "m2m100",
        sp_model_kwargs: dict[str, Any] | None = None,
        num_madeup_words: int = 8,
        **kwargs: Any,
    ):
        if language_codes not in FAIRSEQ_LANGUAGE_CODES:
            known = sorted(FAIRSEQ_LANGUAGE_CODES)
            raise CheckpointError(f"language_codes must be one of {known}, not {language_codes!r}")
        self.language_codes = language_codes
        self.num_madeup_words = num_madeup_words
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.vocab_file, self.spm_file = os.fspath(vocab_file), os.fspath(spm_file)
        self.sp_model = load_spm(spm_file, self.sp_model_kwargs)
        self.encoder = load_vocab(vocab_file)
        if token_text(unk_token) not in self.encoder:
            raise CheckpointError(f"{vocab_file} has no {token_text(unk_token)} token")
        self.decoder = {index: token for token, index in self.encoder.items()}

        # The language tokens follow vocab.json, in fairseq's order.
        codes = FAIRSEQ_LANGUAGE_CODES[language_codes]
        self.lang_code_to_id = {code: len(self.encoder) + i for i, code in enumerate(codes)}
        self.lang_token_to_id = {self.get_lang_token(code): index for code, index in self.lang_code_to_id.items()}
        self.id_to_lang_token = {index: token for token, index in self.lang_token_to_id.items()}

        self._src_lang = self._check_lang(src_lang if src_lang is not None else "en")
        self._tgt_lang = self._check_lang(tgt_lang) if tgt_lang is not None else None
        # While the base class numbers the special tokens, the language ids are taken: a listed
        # language token keeps its language id, and a token new to the vocabulary comes after them.
        self._numbering_special_tokens = True
        super().__init__(
            bos_token=bos_token,
            eos_token=eos_token,
            sep_token=sep_token,
            pad_token=pad_token,
            unk_token=unk_token,
            **kwargs,
        )
        self._numbering_special_tokens = False

    # ---- languages --------------------------------------------------------------------------------

    def get_lang_token(self, lang: str) -> str:
        return f"__{lang}__"

    # ---- hooks ------------------------------------------------------------------------------------

    def base_vocab(self) -> dict[str, int]:
        return self.encoder

    def get_vocab(self) -> dict[str, int]:
        vocab = super().get_vocab()
        if getattr(self, "_numbering_special_tokens", False):
            vocab = {**self.lang_token_to_id, **vocab}
        return vocab

    def _tokenize(self, text: str, target: bool = False) -> list[str]:
        return self.sp_model.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str, target: bool = False) -> int:
        index = self.lang_token_to_id.get(token)
        if index is None:
            index = self.encoder.get(token)
        return index if index is not None else self.encoder[self.unk_token]

    def _convert_id_to_token(self, index: int, **decode_options: Any) -> str:
        token = self.id_to_lang_token.get(index)
        if token is None:
            token = self.decoder.get(index, self.unk_token)
        return token

    def convert_tokens_to_string(self, tokens: list[str], **decode_options: Any) -> str:
        return decode_pieces_around_special_tokens(self.sp_model, tokens, self.all_special_tokens).strip()

    def build_inputs_with_special_tokens(self, token_ids: list[int], target: bool = False) -> list[int]:
        """`__src__ ids </s>`, or `__tgt__ ids </s>` for a target."""
        if target:
            if self._tgt_lang is None:
                raise WestronError("text_target needs the target language: set tokenizer.tgt_lang first")
            lang_id = self.lang_code_to_id[self._tgt_lang]
        else:
            lang_id = self.lang_code_to_id[self._src_lang]
        return [lang_id] + token_ids + [self.eos_token_id]

    def num_special_tokens_to_add(self, target: bool = False) -> int:
        return 2

    # ---- files ------------------------------------------------------------------------------------

    def tokenizer_config(self) -> dict[str, Any]:
        config = super().tokenizer_config()
        config.update(
            src_lang=self._src_lang,
            tgt_lang=self._tgt_lang,
            language_codes=self.language_codes,
            num_madeup_words=self.num_madeup_words,
            sp_model_kwargs=self.sp_model_kwargs,
        )
        return config

    def save_vocabulary(self, save_directory: str) -> list[str]:
        vocab_path = os.path.join(save_directory, "vocab.json")
        write_json(vocab_path, self.encoder)
        spm_path = os.path.join(save_directory, "sentencepiece.bpe.model")
        return [vocab_path, save_spm_model(self.sp_model, self.spm_file, spm_path)]
