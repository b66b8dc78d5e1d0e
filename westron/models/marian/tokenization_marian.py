"""MarianTokenizer: the tokenizer of the Helsinki-NLP opus-mt checkpoints, ids equal to Hugging Face's.

An opus-mt folder holds two SentencePiece models, source.spm for the input language and target.spm
for the output language, and a Marian vocabulary, vocab.json, that maps their pieces to the
model's ids (its order is not SentencePiece's: </s> = 0, <unk> = 1, <pad> last). A piece that
SentencePiece produces but vocab.json lacks is <unk>. Checkpoints with `separate_vocabs` give the
target side its own target_vocab.json.

Multilingual-target models read a language code before the text (`>>fra<< Bonjour`): the code is
taken off before SentencePiece and looked up in vocab.json as one token. Every sequence ends with
</s>; there is no <s> (decoding starts from the model's decoder_start_token_id, which is <pad>).

Hugging Face behaviours kept on purpose, because ids must match:
- special tokens (</s>, <unk>, <pad>) always get their input-side ids, also in target text and as
  the label padding, even with separate vocabularies;
- decoding uses source.spm to join pieces unless `separate_vocabs` (`use_source_tokenizer=` picks);
- the Moses punctuation normaliser Hugging Face sets up is not applied to text there, so not here.
"""

from __future__ import annotations

import os
from typing import Any

from westron.errors import CheckpointError
from westron.file_utils import write_json
from westron.sentencepiece_utils import (
    SPIECE_UNDERLINE,
    decode_pieces_around_special_tokens,
    load_spm,
    load_vocab,
    save_spm_model,
)
from westron.tokenization_utils import PreTrainedTokenizer
from westron.tokenization_utils_base import token_text



class MarianTokenizer(PreTrainedTokenizer):
    vocab_files_names = {
        "source_spm": "source.spm",
        "target_spm": "target.spm",
        "vocab": "vocab.json",
        "target_vocab_file": "target_vocab.json",
    }
    optional_vocab_files = frozenset({"target_vocab_file"})
    skips_special_added_tokens = False  # HF's tokenizer is SentencePiece-only (no fast one)

    def __init__(
        self,
        source_spm: str | os.PathLike,
        target_spm: str | os.PathLike,
        vocab: str | os.PathLike,
        target_vocab_file: str | os.PathLike | None = None,
        source_lang: str | None = None,
        target_lang: str | None = None,
        unk_token: str = "<unk>",
        eos_token: str = "</s>",
        pad_token: str = "<pad>",
        model_max_length: int = 512,
        sp_model_kwargs: dict[str, Any] | None = None,
        separate_vocabs: bool = False,
        **kwargs: Any,
    ):
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.source_lang = source_lang
        self.target_lang = target_lang
        self.separate_vocabs = bool(separate_vocabs)
        self.spm_files = [os.fspath(source_spm), os.fspath(target_spm)]
        self.spm_source = load_spm(source_spm, self.sp_model_kwargs)
        self.spm_target = load_spm(target_spm, self.sp_model_kwargs)

        self.encoder = load_vocab(vocab)
        unk = token_text(unk_token)
        if unk not in self.encoder:
            raise CheckpointError(f"{vocab} has no {unk} token")
        if self.separate_vocabs:
            if target_vocab_file is None:
                raise CheckpointError("separate_vocabs is set but there is no target_vocab.json")
            self.target_encoder = load_vocab(target_vocab_file)
            if unk not in self.target_encoder:
                raise CheckpointError(f"{target_vocab_file} has no {unk} token")
            self.decoder = {index: token for token, index in self.target_encoder.items()}
            self.supported_language_codes: list[str] = []
        else:
            self.target_encoder = self.encoder
            self.decoder = {index: token for token, index in self.encoder.items()}
            self.supported_language_codes = [t for t in self.encoder if t.startswith(">>") and t.endswith("<<")]

        super().__init__(
            unk_token=unk_token,
            eos_token=eos_token,
            pad_token=pad_token,
            model_max_length=model_max_length,
            **kwargs,
        )

    # ---- hooks ------------------------------------------------------------------------------------

    def base_vocab(self) -> dict[str, int]:
        return self.encoder

    @staticmethod
    def split_language_code(text: str) -> tuple[list[str], str]:
        """(">>fra<<",), " Bonjour" from ">>fra<< Bonjour": a leading >>...<< is one token."""
        if text.startswith(">>"):
            end = text.find("<<")
            if end != -1:
                return [text[: end + 2]], text[end + 2 :]
        return [], text

    def _tokenize(self, text: str, target: bool = False) -> list[str]:
        code, text = self.split_language_code(text)
        processor = self.spm_target if target else self.spm_source
        return code + processor.encode(text, out_type=str)

    def _convert_token_to_id(self, token: str, target: bool = False) -> int:
        encoder = self.target_encoder if target else self.encoder
        index = encoder.get(token)
        # vocab.json is not in SentencePiece's order, so a piece it lacks is unknown (not spm's id).
        return index if index is not None else encoder[self.unk_token]

    def _use_source(self, use_source_tokenizer: bool | None) -> bool:
        return not self.separate_vocabs if use_source_tokenizer is None else use_source_tokenizer

    def _convert_id_to_token(self, index: int, use_source_tokenizer: bool | None = None) -> str:
        token = self.decoder.get(index)
        if token is not None:
            return token
        # An id past vocab.json: Hugging Face asks the SentencePiece model for its piece.
        processor = self.spm_source if self._use_source(use_source_tokenizer) else self.spm_target
        try:
            return processor.id_to_piece(index) or self.unk_token
        except IndexError:
            raise IndexError(f"token id {index} is outside the vocabulary ({len(self.decoder)} ids)") from None

    def convert_tokens_to_string(self, tokens: list[str], use_source_tokenizer: bool | None = None) -> str:
        """Pieces joined by SentencePiece; special tokens verbatim, each followed by a blank."""
        processor = self.spm_source if self._use_source(use_source_tokenizer) else self.spm_target
        text = decode_pieces_around_special_tokens(processor, tokens, self.all_special_tokens, after_special=" ")
        return text.replace(SPIECE_UNDERLINE, " ").strip()

    def decode(
        self,
        token_ids,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        use_source_tokenizer: bool | None = None,
    ) -> str | list[str]:
        """Text of target ids (model output). use_source_tokenizer: join with source.spm (the default
        unless separate_vocabs) or target.spm."""
        return super().decode(
            token_ids,
            skip_special_tokens,
            clean_up_tokenization_spaces,
            use_source_tokenizer=use_source_tokenizer,
        )

    # ---- files ------------------------------------------------------------------------------------

    def tokenizer_config(self) -> dict[str, Any]:
        config = super().tokenizer_config()
        config.update(
            source_lang=self.source_lang,
            target_lang=self.target_lang,
            separate_vocabs=self.separate_vocabs,
            sp_model_kwargs=self.sp_model_kwargs,
        )
        return config

    def save_vocabulary(self, save_directory: str) -> list[str]:
        written = []
        vocabs = [("vocab.json", self.encoder)]
        if self.separate_vocabs:
            vocabs.append(("target_vocab.json", self.target_encoder))
        for name, vocab in vocabs:
            path = os.path.join(save_directory, name)
            write_json(path, vocab)
            written.append(path)
        for name, source, processor in zip(
            ("source.spm", "target.spm"), self.spm_files, (self.spm_source, self.spm_target)
        ):
            written.append(save_spm_model(processor, source, os.path.join(save_directory, name)))
        return written

    def get_src_vocab(self) -> dict[str, int]:
        return self.get_vocab()

    def get_tgt_vocab(self) -> dict[str, int]:
        return {**self.target_encoder, **{token.content: i for i, token in self._added_tokens.items()}}
