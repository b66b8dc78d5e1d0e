"""T5Config and MT5Config: the config.json of T5, T5 v1.1 / flan-t5 and mT5 checkpoints, HF's keys and defaults.

The head and its scaling are two settings, as in Hugging Face transformers 5:

- `tie_word_embeddings`: the LM head is the `shared` embedding matrix (lm_head.weight not saved).
- `scale_decoder_outputs`: the decoder output is multiplied by d_model**-0.5 before the head
  (original T5 does this; T5 v1.1, flan-t5 and mT5 do not). When config.json does not say (every
  checkpoint saved before transformers 5), it follows `tie_word_embeddings`, as HF decides it.

HF 5 also ties the head whenever a checkpoint holds no separate lm_head.weight, and unties it when
the checkpoint's lm_head.weight differs from shared.weight, whatever the config says; the models'
`load_checkpoint` does the same and records the outcome in `tie_word_embeddings`.
"""

from __future__ import annotations

from typing import Any

from westron.configuration_utils import InvalidConfigError, PretrainedConfig


class T5Config(PretrainedConfig):
    model_type = "t5"
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "num_heads",
        "num_hidden_layers": "num_layers",
        "head_dim": "d_kv",
    }
    positive_ints = (
        "vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
        "relative_attention_num_buckets", "relative_attention_max_distance",
    )  # fmt: skip
    probabilities = ("dropout_rate",)
    booleans = PretrainedConfig.booleans + ("is_gated_act", "scale_decoder_outputs")

    def __init__(
        self,
        vocab_size: int = 32128,
        d_model: int = 512,
        d_kv: int = 64,
        d_ff: int = 2048,
        num_layers: int = 6,
        num_decoder_layers: int | None = None,
        num_heads: int = 8,
        relative_attention_num_buckets: int = 32,
        relative_attention_max_distance: int = 128,
        dropout_rate: float = 0.1,
        layer_norm_epsilon: float = 1e-6,
        initializer_factor: float = 1.0,
        feed_forward_proj: str = "relu",
        dense_act_fn: str | None = None,
        is_gated_act: bool | None = None,
        tie_word_embeddings: bool = True,
        scale_decoder_outputs: bool | None = None,
        pad_token_id: int = 0,
        eos_token_id: int = 1,
        decoder_start_token_id: int = 0,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.d_kv = d_kv
        self.d_ff = d_ff
        self.num_layers = num_layers
        self.num_decoder_layers = num_layers if num_decoder_layers is None else num_decoder_layers
        self.num_heads = num_heads
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_factor = initializer_factor
        self.feed_forward_proj = feed_forward_proj
        # "relu" -> relu; "gated-gelu" -> gelu_new (HF's backward compatibility); "gated-silu" -> silu, ...
        # dense_act_fn / is_gated_act, when config.json has them, win as in HF (they normally agree).
        if not isinstance(feed_forward_proj, str):
            raise InvalidConfigError("feed_forward_proj", feed_forward_proj, "a string like 'relu' or 'gated-gelu'")
        parts = feed_forward_proj.split("-")
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
            raise InvalidConfigError("feed_forward_proj", feed_forward_proj, "of the form 'ACT' or 'gated-ACT' (e.g. 'relu', 'gated-gelu')")
        if dense_act_fn is None:
            dense_act_fn = "gelu_new" if feed_forward_proj == "gated-gelu" else parts[-1]
        self.dense_act_fn = dense_act_fn
        self.is_gated_act = parts[0] == "gated" if is_gated_act is None else is_gated_act
        if scale_decoder_outputs is None:
            scale_decoder_outputs = tie_word_embeddings is not False
        self.scale_decoder_outputs = scale_decoder_outputs
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **overrides: Any) -> "T5Config":
        # An mT5 config.json read through T5Config (T5ForConditionalGeneration.from_pretrained on an
        # mT5 folder): the same architecture, so it becomes an MT5Config rather than an error.
        if cls is T5Config and config_dict.get("model_type") == MT5Config.model_type:
            return MT5Config.from_dict(config_dict, **overrides)
        return super().from_dict(config_dict, **overrides)


class MT5Config(T5Config):
    """mT5: T5 v1.1's architecture with its own defaults; the head is never rescaled (HF's MT5 has no
    `scale_decoder_outputs`), so the models here run mT5 checkpoints with the T5 classes."""

    model_type = "mt5"

    def __init__(
        self,
        vocab_size: int = 250112,
        d_ff: int = 1024,
        num_layers: int = 8,
        num_heads: int = 6,
        feed_forward_proj: str = "gated-gelu",
        **kwargs: Any,
    ):
        kwargs["scale_decoder_outputs"] = False
        super().__init__(
            vocab_size=vocab_size,
            d_ff=d_ff,
            num_layers=num_layers,
            num_heads=num_heads,
            feed_forward_proj=feed_forward_proj,
            **kwargs,
        )
