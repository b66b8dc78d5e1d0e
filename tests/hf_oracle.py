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


# ---- T5 ------------------------------------------------------------------------------------------------

# Tiny T5 shapes covering the checkpoints in use. "head" says how the LM head is saved:
#   "tied"     shared.weight only (t5 v1.0; also what HF 5 makes of T5Config(tie_word_embeddings=False):
#              a tied head without the d_model**-0.5 rescaling);
#   "untied"   a separate lm_head.weight (t5 v1.1 / flan-t5 / mT5 on the Hub), HF 5's config.json;
#   "legacy"   the same weights with config.json as transformers 4 wrote it (tie_word_embeddings false,
#              no scale_decoder_outputs), as the Hub's flan-t5 and mT5 configs are.
T5_VARIANTS = {
    "t5-v1.0-relu-tied": dict(feed_forward_proj="relu", head="tied"),
    "t5-v1.1-gated-gelu-untied": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False, head="untied"),
    "flan-legacy-config-deep-encoder": dict(
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, num_layers=3, num_decoder_layers=1, head="legacy"
    ),
    "tied-unscaled-gated-silu-deep-decoder": dict(
        feed_forward_proj="gated-silu", tie_word_embeddings=False, num_layers=1, num_decoder_layers=3, head="tied"
    ),
}

# mT5 (model_type "mt5", HF's MT5ForConditionalGeneration): the T5 v1.1 architecture, never rescaled.
MT5_VARIANTS = {
    "mt5-untied": dict(head="untied"),
}


def tiny_t5_config(**overrides):
    """A tiny HF T5Config; relative_attention_max_distance small so a 7-token batch reaches the log buckets."""
    from transformers import T5Config

    return T5Config(**_tiny_t5_settings(overrides))


def _tiny_t5_settings(overrides):
    settings = dict(
        vocab_size=99,
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=6,
        dropout_rate=0.0,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,  # HF 5's T5Config has no default for it; T5 checkpoints all say 0
    )
    settings.update(overrides)
    return settings


def save_tiny_t5(
    folder: str | os.PathLike, seed: int = 0, head: str = "tied", model_type: str = "t5", **overrides
) -> str:
    """Saves a random tiny HF T5ForConditionalGeneration (or MT5ForConditionalGeneration) and returns the folder.

    head: "tied", "untied" or "legacy" (see T5_VARIANTS). HF 5 ties a fresh model's head whatever
    tie_word_embeddings says, so "untied" gives lm_head a parameter of its own before saving.
    """
    import json

    import transformers

    if model_type == "mt5":
        config = transformers.MT5Config(**_tiny_t5_settings(overrides))
        model_class = transformers.MT5ForConditionalGeneration
    else:
        config = tiny_t5_config(**overrides)
        model_class = transformers.T5ForConditionalGeneration
    torch.manual_seed(seed)
    model = model_class(config).eval()
    if head in ("untied", "legacy"):
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    elif head != "tied":
        raise ValueError(f"head {head!r} is not tied, untied or legacy")
    with torch.no_grad():  # the layer norms start at ones: random values make the tests see them
        for name, parameter in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                parameter.uniform_(0.5, 1.5)
    model.save_pretrained(folder)
    if head == "legacy":
        path = os.path.join(folder, "config.json")
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
        saved["tie_word_embeddings"] = False
        saved.pop("scale_decoder_outputs", None)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(saved, handle, indent=2)
    return os.fspath(folder)


def save_tiny_mt5(folder: str | os.PathLike, seed: int = 0, **overrides) -> str:
    return save_tiny_t5(folder, seed=seed, model_type="mt5", **overrides)


# ---- M2M100 (NLLB-200 is an M2M100 checkpoint) -----------------------------------------------------------

# Tiny M2M100 shapes. pad stays outside random_batch's id range, so its padding is at the end only.
M2M100_VARIANTS = {
    "scaled-tied-relu": dict(activation_function="relu", scale_embedding=True),
    "unscaled-untied-gelu": dict(activation_function="gelu", scale_embedding=False, tie_word_embeddings=False),
    # A far padding index moves every position (padding_idx + 1 + i: HF then grows its table, whose
    # first max_position_embeddings + 2 rows must hold the padding row); odd d_model adds a zero column.
    "pad98-odd-dim-deep-decoder": dict(
        activation_function="gelu_new",
        pad_token_id=98,
        max_position_embeddings=100,
        d_model=33,
        encoder_attention_heads=3,
        decoder_attention_heads=3,
        encoder_layers=1,
        decoder_layers=3,
    ),
}


def tiny_m2m100_config(**overrides):
    from transformers import M2M100Config

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
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        encoder_layerdrop=0.0,  # HF's default is 0.05: random layers would be skipped while training
        decoder_layerdrop=0.0,
    )
    settings.update(overrides)
    return M2M100Config(**settings)


def save_tiny_m2m100(folder: str | os.PathLike, seed: int = 0, **overrides) -> str:
    """Saves a random tiny HF M2M100ForConditionalGeneration and returns the folder.

    The layer norms (every layer's and each stack's final one) start at ones and zeros: random
    values make the tests see them.
    """
    from transformers import M2M100ForConditionalGeneration

    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(tiny_m2m100_config(**overrides)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                parameter.uniform_(0.5, 1.5)
            elif name.endswith("layer_norm.bias"):
                parameter.uniform_(-0.5, 0.5)
    model.save_pretrained(folder)
    return os.fspath(folder)
