"""MarianConfig: the config.json of opus-mt checkpoints, Hugging Face's keys and defaults."""

from __future__ import annotations

from typing import Any

from westron.configuration_utils import PretrainedConfig


class MarianConfig(PretrainedConfig):
    model_type = "marian"
    attribute_map = {"num_attention_heads": "encoder_attention_heads", "hidden_size": "d_model"}
    positive_ints = (
        "vocab_size", "decoder_vocab_size", "max_position_embeddings", "d_model", "encoder_layers", "decoder_layers",
        "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim",
    )  # fmt: skip
    probabilities = ("dropout", "attention_dropout", "activation_dropout", "encoder_layerdrop", "decoder_layerdrop")
    booleans = PretrainedConfig.booleans + ("scale_embedding", "share_encoder_decoder_embeddings")
    head_splits = (("d_model", "encoder_attention_heads"), ("d_model", "decoder_attention_heads"))

    def __init__(
        self,
        vocab_size: int = 58101,
        decoder_vocab_size: int | None = None,
        max_position_embeddings: int = 1024,
        encoder_layers: int = 12,
        encoder_ffn_dim: int = 4096,
        encoder_attention_heads: int = 16,
        decoder_layers: int = 12,
        decoder_ffn_dim: int = 4096,
        decoder_attention_heads: int = 16,
        encoder_layerdrop: float = 0.0,
        decoder_layerdrop: float = 0.0,
        activation_function: str = "gelu",
        d_model: int = 1024,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        init_std: float = 0.02,
        scale_embedding: bool = False,
        share_encoder_decoder_embeddings: bool = True,
        pad_token_id: int = 58100,
        eos_token_id: int = 0,
        decoder_start_token_id: int = 58100,
        forced_eos_token_id: int | None = 0,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.decoder_vocab_size = decoder_vocab_size or vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.d_model = d_model
        self.encoder_ffn_dim = encoder_ffn_dim
        self.encoder_layers = encoder_layers
        self.encoder_attention_heads = encoder_attention_heads
        self.decoder_ffn_dim = decoder_ffn_dim
        self.decoder_layers = decoder_layers
        self.decoder_attention_heads = decoder_attention_heads
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.activation_function = activation_function
        self.init_std = init_std
        self.encoder_layerdrop = encoder_layerdrop
        self.decoder_layerdrop = decoder_layerdrop
        self.scale_embedding = scale_embedding
        self.share_encoder_decoder_embeddings = share_encoder_decoder_embeddings
        self.forced_eos_token_id = forced_eos_token_id
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            **kwargs,
        )

    @property
    def num_hidden_layers(self) -> int:
        return self.encoder_layers
