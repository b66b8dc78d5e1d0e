"""SentencePiece files and pieces: the helpers every family's tokenizer shares.

Loading a model file (a file that is no model is a `CheckpointError`, not sentencepiece's
RuntimeError), the model's character normaliser alone, Hugging Face's Metaspace decoder, decoding
runs of pieces around special tokens, and saving the model file back into a tokenizer folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from westron.configuration_utils import JsonConfig
from westron.errors import CheckpointError
from westron.file_utils import atomic_write, copy_file_atomically

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



def decode_pieces_around_special_tokens(
    processor, tokens: list[str], special_tokens: Iterable[str], after_special: str = ""
) -> str:
    """Runs of pieces through SentencePiece's decoder, special tokens verbatim between them."""
    special = set(special_tokens)
    parts, run = [], []
    for token in tokens:
        if token in special:
            parts.append(processor.decode_pieces(run) + token + after_special)
            run = []
        else:
            run.append(token)
    parts.append(processor.decode_pieces(run))
    return "".join(parts)


def save_spm_model(processor, source: str, path: str) -> str:
    """Copies the loaded SentencePiece model file to `path` (or writes the model it holds if the file is gone)."""
    if os.path.isfile(source):
        copy_file_atomically(source, path)
    else:  # a temporary download that is gone
        with atomic_write(path, "wb") as handle:
            handle.write(processor.serialized_model_proto())
    return path
