"""Hugging Face transformers as the test oracle: tiny random HF models saved to folders.

Every equivalence test builds one of these, saves it with HF's save_pretrained, and loads the
folder in Westron. Nothing here touches the network.
"""

from __future__ import annotations

import os

import torch

# Tiny Marian shapes covering what opus-mt checkpoints use.
MARIAN_VARIANTS = {
    "shared-tied-swish": dict(activation_function="swish", scale_embedding=True),
    "shared-untied-gelu": dict(activation_function="gelu", tie_word_embeddings=False),
    # With two vocabularies, pad (= decoder start) must lie inside the smaller target vocabulary.
    "separate-vocab-relu": dict(
        activation_function="relu",
        share_encoder_decoder_embeddings=False,
        decoder_vocab_size=89,
        pad_token_id=88,
        decoder_start_token_id=88,
    ),
    "separate-vocab-untied": dict(
        share_encoder_decoder_embeddings=False,
        decoder_vocab_size=89,
        tie_word_embeddings=False,
        pad_token_id=88,
        decoder_start_token_id=88,
    ),
}


def tiny_marian_config(**overrides):
    from transformers import MarianConfig

    settings = dict(
        vocab_size=99,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        max_position_embeddings=64,
        pad_token_id=98,
        eos_token_id=0,
        decoder_start_token_id=98,
        forced_eos_token_id=None,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    settings.update(overrides)
    return MarianConfig(**settings)


def save_tiny_marian(folder: str | os.PathLike, seed: int = 0, **overrides) -> str:
    """Saves a random tiny HF MarianMTModel (with non-zero final_logits_bias) and returns the folder."""
    from transformers import MarianMTModel

    torch.manual_seed(seed)
    model = MarianMTModel(tiny_marian_config(**overrides)).eval()
    with torch.no_grad():  # HF initialises it to zeros; random values make the test see it
        model.final_logits_bias.normal_(0, 0.5)
    model.save_pretrained(folder)
    return os.fspath(folder)


def random_batch(vocab_size: int, pad_token_id: int, eos_token_id: int, batch=3, length=7, seed=0):
    """A padded batch: rows of different lengths ending in eos, right-padded, and its attention mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab_size - 2, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(batch):
        row_length = length - row * 2 if length - row * 2 > 1 else 2
        ids[row, row_length - 1] = eos_token_id
        ids[row, row_length:] = pad_token_id
        mask[row, row_length:] = 0
    return ids, mask
