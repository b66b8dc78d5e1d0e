"""T5Tokenizer: the tokenizer of T5 and mT5 checkpoints (spiece.model), ids equal to Hugging Face's.

A T5 folder holds one SentencePiece unigram model, spiece.model, whose ids are the model's ids:
<pad> = 0, </s> = 1, <unk> = 2. After them come `extra_ids` sentinels (100 by default) used by
span-corruption pre-training, in reverse order: <extra_id_0> is the LAST id of the vocabulary and
<extra_id_99> the first after the SentencePiece pieces. Every sequence ends with </s>; there is no
<s> (decoding starts from <pad>, the decoder_start_token_id). mT5 folders set extra_ids to 0.

Hugging Face 5 tokenizes T5 with its `tokenizers` library, not with SentencePiece itself, and the
ids here follow that pipeline: the model's character normalisation (its precompiled charsmap),
splitting at whitespace, "▁" before each word, the unigram model per word. SentencePiece's own
encoder gives the same pieces for a word, so it does the last step. Decoding follows Hugging
Face's Metaspace decoder: "▁" becomes a blank and the first token loses its "▁" (special tokens
are kept verbatim, with no blank added).

Known to differ on unusual text only: Hugging Face's charsmap normaliser replaces a short
grapheme by the normalisation of its longest known prefix (a letter with two stacked accents
loses the second one); SentencePiece's, used here, keeps the rest.

Not kept from Hugging Face 5: a folder whose additional_special_tokens lists no <extra_id_N>
while extra_ids > 0 gets the sentinels appended as special tokens (Hugging Face 5's loader leaves
them plain vocabulary pieces there, though its T5Tokenizer means to append them as here). And
folders that Hugging Face 5's `save_pretrained` writes for T5 hold tokenizer.json but no
spiece.model: load the original folder (or any with spiece.model) instead.
"""

from __future__ import annotations

import os
import re
from typing import Any

from westron.errors import CheckpointError
from westron.sentencepiece_utils import (
    load_charsmap_normalizer,
    load_spm,
    metaspace_decode,
    save_spm_model,
)
from westron.tokenization_utils import PreTrainedTokenizer
from westron.tokenization_utils_base import token_text

SENTINEL_PATTERN = re.compile(r"<extra_id_(\d+)>")


class T5Tokenizer(PreTrainedTokenizer):
    vocab_files_names = {"vocab_file": "spiece.model"}

    def __init__(
        self,
        vocab_file: str | os.PathLike,
        eos_token: str = "</s>",
        unk_token: str = "<unk>",
        pad_token: str = "<pad>",
        extra_ids: int = 100,
        additional_special_tokens: list | None = None,
        extra_special_tokens: list | None = None,
        **kwargs: Any,
    ):
        self.vocab_file = os.fspath(vocab_file)
        self.sp_model = load_spm(vocab_file, {})
        self._normalizer = load_charsmap_normalizer(self.sp_model)
        self.extra_ids = int(extra_ids)

        size = self.sp_model.get_piece_size()
        self.encoder = {self.sp_model.id_to_piece(index): index for index in range(size)}
        # The sentinels follow the pieces in reverse order: <extra_id_0> is the last id.
        for i in range(self.extra_ids):
            self.encoder[f"<extra_id_{i}>"] = size + self.extra_ids - 1 - i
        self.decoder = {index: token for token, index in self.encoder.items()}
        self._unk_id = self.encoder.get(token_text(unk_token), self.sp_model.unk_id())

        # As Hugging Face: the listed extra special tokens must hold the sentinels, or get them appended.
        extras = extra_special_tokens if extra_special_tokens is not None else additional_special_tokens
        extras = [token_text(token) for token in extras] if extras is not None else None
        if extras is None:
            extras = [f"<extra_id_{i}>" for i in range(self.extra_ids)]
        else:
            sentinels = [token for token in extras if "<extra_id_" in token]
            if not sentinels:
                extras += [f"<extra_id_{i}>" for i in range(self.extra_ids)]
            elif self.extra_ids > 0 and self.extra_ids != len(sentinels):
                raise CheckpointError(
                    f"extra_ids is {self.extra_ids} but additional_special_tokens holds {len(sentinels)} "
                    "<extra_id_N> sentinels; they must agree"
                )

        super().__init__(
            eos_token=eos_token,
            unk_token=unk_token,
            pad_token=pad_token,
            extra_special_tokens=extras,
            **kwargs,
        )

    # ---- hooks ------------------------------------------------------------------------------------

    def base_vocab(self) -> dict[str, int]:
        return self.encoder

    def _tokenize(self, text: str, target: bool = False) -> list[str]:
        # Normalise, split at whitespace, then each word through the unigram model ("▁word").
        # SentencePiece splits words at the blanks itself, so the words go in joined by one blank.
        words = self._normalizer.normalize(text).split()
        return self.sp_model.encode(" ".join(words), out_type=str) if words else []

    def _convert_token_to_id(self, token: str, target: bool = False) -> int:
        index = self.encoder.get(token)
        return index if index is not None else self._unk_id

    def _convert_id_to_token(self, index: int, **decode_options: Any) -> str:
        token = self.decoder.get(index)
        if token is None:
            raise IndexError(f"token id {index} is outside the vocabulary ({len(self)} ids)")
        return token

    def convert_tokens_to_string(self, tokens: list[str], **decode_options: Any) -> str:
        return metaspace_decode(tokens)

    def _decode(self, ids, skip_special_tokens, clean_up_tokenization_spaces, decode_options) -> str:
        # Hugging Face's tokenizers library drops ids it has no token for.
        ids = [ids] if isinstance(ids, int) else ids
        known = [index for index in ids if index in self.decoder or index in self._added_tokens]
        return super()._decode(known, skip_special_tokens, clean_up_tokenization_spaces, decode_options)

    # ---- sentinels --------------------------------------------------------------------------------

    def get_sentinel_tokens(self) -> list[str]:
        """The <extra_id_N> tokens, <extra_id_0> first."""
        tokens = [token for token in self.all_special_tokens if SENTINEL_PATTERN.fullmatch(token)]
        return sorted(tokens, key=lambda token: int(SENTINEL_PATTERN.fullmatch(token).group(1)))

    def get_sentinel_token_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.get_sentinel_tokens())

    # ---- files ------------------------------------------------------------------------------------

    def tokenizer_config(self) -> dict[str, Any]:
        config = super().tokenizer_config()
        config["extra_ids"] = self.extra_ids
        return config

    def save_vocabulary(self, save_directory: str) -> list[str]:
        return [save_spm_model(self.sp_model, self.vocab_file, os.path.join(save_directory, "spiece.model"))]
