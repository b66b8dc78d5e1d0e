"""Named model shapes for training from scratch (`westron train --config marian-small`).

A preset fixes the architecture; the vocabulary size and the special-token ids come from the
tokenizer the model is trained with, so the two always agree.
"""

from __future__ import annotations

import json
import os
from typing import Any

from westron.errors import WestronError

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    # A few minutes on a laptop CPU: tests, smoke runs.
    "marian-tiny": (
        "marian",
        dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
             encoder_ffn_dim=256, decoder_ffn_dim=256, max_position_embeddings=256),
    ),
    # The quickstart's shape: what learns most in ten minutes on one CPU core (docs/quickstart.md).
    "marian-mini": (
        "marian",
        dict(d_model=128, encoder_layers=3, decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4,
             encoder_ffn_dim=512, decoder_ffn_dim=512, max_position_embeddings=512),
    ),
    # The small from-scratch shape measured on 2 cores (../docs/training.md): d_model 256, 3+3 layers.
    "marian-small": (
        "marian",
        dict(d_model=256, encoder_layers=3, decoder_layers=3, encoder_attention_heads=4, decoder_attention_heads=4,
             encoder_ffn_dim=1024, decoder_ffn_dim=1024, max_position_embeddings=512),
    ),
    # Helsinki-NLP opus-mt's shape (74 M parameters with a 58k vocabulary).
    "marian-base": (
        "marian",
        dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
             encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512),
    ),
    "t5-tiny": ("t5", dict(d_model=64, d_kv=16, d_ff=256, num_layers=2, num_heads=4)),
    "t5-small": ("t5", dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8)),
}  # fmt: skip

# Shared by every from-scratch Marian: opus-mt's choices.
MARIAN_DEFAULTS = dict(
    activation_function="swish", scale_embedding=True, share_encoder_decoder_embeddings=True,
    dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, forced_eos_token_id=None,
)  # fmt: skip
T5_DEFAULTS = dict(feed_forward_proj="relu", dropout_rate=0.1, relative_attention_num_buckets=32)


def build_config(name_or_path: str, tokenizer):
    """A model config from a preset name or a config.json file, sized to `tokenizer`."""
    from westron.models.auto import AutoConfig

    if name_or_path in PRESETS:
        model_type, shape = PRESETS[name_or_path]
        settings = {**(MARIAN_DEFAULTS if model_type == "marian" else T5_DEFAULTS), **shape}
    elif os.path.isfile(name_or_path):
        try:
            with open(name_or_path, encoding="utf-8") as handle:
                settings = json.load(handle)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise WestronError(f"--config {name_or_path}: cannot read it as JSON ({error})") from None
        if not isinstance(settings, dict) or "model_type" not in settings:
            raise WestronError(f"--config {name_or_path}: a config.json needs a model_type (marian, t5, ...)")
        model_type = settings.pop("model_type")
    else:
        raise WestronError(f"--config {name_or_path!r} is neither a file nor a preset ({', '.join(PRESETS)})")
    settings.update(token_settings(model_type, tokenizer))
    return AutoConfig.for_model(model_type, **settings)


def token_settings(model_type: str, tokenizer) -> dict[str, int]:
    """Vocabulary size and special ids as the model family expects them from this tokenizer."""
    vocab_size = len(tokenizer)
    if model_type == "marian":
        separate = bool(getattr(tokenizer, "separate_vocabs", False))  # target_vocab.json of its own
        return dict(
            vocab_size=vocab_size,
            decoder_vocab_size=len(tokenizer.target_encoder) if separate else vocab_size,
            share_encoder_decoder_embeddings=not separate,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    if model_type in ("t5", "mt5"):
        return dict(vocab_size=vocab_size, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                    decoder_start_token_id=tokenizer.pad_token_id)  # fmt: skip
    raise WestronError(f"training {model_type} from scratch is not supported: fine-tune a checkpoint with --model")
