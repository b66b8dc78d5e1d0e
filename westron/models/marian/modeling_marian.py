"""PyTorch Marian: the architecture of Hugging Face's MarianMTModel (the Helsinki-NLP opus-mt checkpoints).

A post-LayerNorm encoder-decoder Transformer with static sinusoidal positions. Parameter paths equal
Hugging Face's checkpoint names (`model.encoder.layers.0.self_attn.q_proj.weight`), so a HF
model.safetensors loads name for name. The TensorFlow twin is modeling_tf_marian.py: same classes,
same names, same order of operations.

Decoding (greedy, beam, sampling) is not here: the model offers `encode`, `init_cache`, `decode` and
`reorder_cache`, and westron/generation/ does the search.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from westron.errors import WestronError
from westron.modeling_outputs import DecoderOutput, EncoderOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from westron.modeling_utils import PreTrainedModel
from westron.torch_onednn import linear  # layer(x), on oneDNN with packed weights when decoding on the CPU
from westron.models.marian.configuration_marian import MarianConfig

# ---- activations: Hugging Face's ACT2FN names, the same numerics -------------------------------------


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    # HF's NewGELUActivation, written out (torch's approximate="tanh" differs in the last bits).
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


def gelu_pytorch_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def linear_activation(x: torch.Tensor) -> torch.Tensor:
    return x


ACT2FN = {
    "gelu": F.gelu,  # exact (erf)
    "gelu_new": gelu_new,
    "gelu_fast": gelu_fast,
    "gelu_pytorch_tanh": gelu_pytorch_tanh,
    "quick_gelu": quick_gelu,
    "relu": F.relu,
    "relu6": F.relu6,
    "leaky_relu": F.leaky_relu,  # slope 0.01, as nn.LeakyReLU()
    "silu": F.silu,
    "swish": F.silu,  # the older name of silu
    "mish": F.mish,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "linear": linear_activation,
}


def get_activation(name: str):
    if name not in ACT2FN:
        raise WestronError(f"activation_function {name!r} is not supported (known: {', '.join(sorted(ACT2FN))})")
    return ACT2FN[name]


# ---- helpers -----------------------------------------------------------------------------------------


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: the start token, then labels[:-1], with -100 replaced by pad."""
    if pad_token_id is None or decoder_start_token_id is None:
        raise ValueError("config.pad_token_id and config.decoder_start_token_id must be set to shift labels")
    shifted = labels.new_empty(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean "may attend" mask -> 0 where allowed, the dtype's minimum where not (added to the scores)."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )


def sinusoidal_table(num_positions: int, dim: int) -> np.ndarray:
    """Marian's position table (num_positions, dim), float32: sines in the first half, cosines after.

    Computed in float64 as Hugging Face does (features not interleaved; odd dims give sin one more).
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    rates = np.power(10000.0, 2 * (np.arange(dim) // 2) / dim)
    angles = positions / rates[None, :]  # (num_positions, dim)
    half = dim // 2 + dim % 2
    table = np.empty((num_positions, dim), dtype=np.float32)
    table[:, :half] = np.sin(angles[:, 0::2])
    table[:, half:] = np.cos(angles[:, 1::2])
    return table


# ---- layers --------------------------------------------------------------------------------------------


class MarianSinusoidalPositionalEmbedding(nn.Module):
    """Static sinusoidal positions: computed at construction, never trained, loaded or saved."""

    def __init__(self, num_positions: int, embedding_dim: int):
        super().__init__()
        self.register_buffer(
            "weight", torch.from_numpy(sinusoidal_table(num_positions, embedding_dim)), persistent=False
        )

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        # positions: (t,) int64 -> (t, dim)
        return self.weight[positions]


class MarianAttention(nn.Module):
    """Multi-head attention (self or cross), with an optional key/value cache."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = dropout
        self.attn_implementation = "sdpa"  # or "eager": the explicit form always (from_pretrained sets it)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, L, D) -> (B, heads, L, head_dim)
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def project_key_value(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split_heads(linear(self.k_proj, states)), self.split_heads(linear(self.v_proj, states))

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache_position: int | torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
        """Returns (output (B, t, D), weights (B, heads, t, keys) or None, the key/value cache or None).

        hidden_states: (B, t, D), the queries. attention_mask: additive, broadcastable to (B, heads, t, keys).
        Self-attention (key_value_states None): keys and values come from hidden_states; with a
        `past_key_value` of static buffers (B, heads, max_length, head_dim) they are written there at
        positions cache_position .. cache_position+t-1 and the queries attend over the buffers
        (the first cache_position+t keys when cache_position is an int, else all max_length: the
        mask hides the rest). Cross-attention: keys and values come from key_value_states (B, S, D),
        or from `past_key_value` when they were computed once already (init_cache).
        """
        query = self.split_heads(linear(self.q_proj, hidden_states))  # (B, heads, t, head_dim)
        if key_value_states is None:  # self-attention
            key, value = self.project_key_value(hidden_states)
            if past_key_value is not None:
                t = hidden_states.shape[1]
                positions = cache_position + torch.arange(t, device=hidden_states.device)
                key_cache = _write_cache(past_key_value[0], positions, key)
                value_cache = _write_cache(past_key_value[1], positions, value)
                past_key_value = (key_cache, value_cache)
                if isinstance(cache_position, int):  # eager decoding: skip the empty tail of the buffer
                    key, value = key_cache[:, :, : cache_position + t], value_cache[:, :, : cache_position + t]
                else:
                    key, value = key_cache, value_cache
        elif past_key_value is not None:  # cross-attention, keys/values cached
            key, value = past_key_value
        else:
            key, value = self.project_key_value(key_value_states)

        dropout = self.dropout if self.training else 0.0
        if output_attentions or self.attn_implementation == "eager":
            # The explicit form, because the weights are asked for (or eager attention was chosen).
            scores = torch.matmul(query, key.transpose(2, 3)) * self.scaling  # (B, heads, t, keys)
            if attention_mask is not None:
                scores = scores + attention_mask
            weights = F.softmax(scores, dim=-1)
            output = torch.matmul(F.dropout(weights, p=dropout, training=self.training), value)
        else:
            # Same numerics as above within float rounding, fused (less memory when training).
            output = F.scaled_dot_product_attention(
                query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=self.scaling
            )
            weights = None
        batch, _, t, _ = output.shape
        output = output.transpose(1, 2).reshape(batch, t, self.embed_dim)  # (B, t, D)
        return linear(self.out_proj, output), weights, past_key_value


def _write_cache(buffer: torch.Tensor, positions: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Writes new (B, heads, t, head_dim) into buffer (B, heads, max_length, head_dim) at positions (t,).

    In place (no reallocation per step) unless autograd is recording through the new values.
    """
    if torch.is_grad_enabled() and (new.requires_grad or buffer.requires_grad):
        return buffer.index_copy(2, positions, new)
    return buffer.index_copy_(2, positions, new)


def clamp_overflow_fp16(hidden: torch.Tensor) -> torch.Tensor:
    """As HF's Marian: once a float16 activation is not finite, clamp them all into range (max - 1000)."""
    if hidden.dtype != torch.float16 or torch.isfinite(hidden).all():
        return hidden
    clamp = torch.finfo(torch.float16).max - 1000
    return hidden.clamp(min=-clamp, max=clamp)


class MarianEncoderLayer(nn.Module):
    def __init__(self, config: MarianConfig):
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = MarianAttention(
            self.embed_dim, config.encoder_attention_heads, dropout=config.attention_dropout
        )
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.dropout = config.dropout
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = config.activation_dropout
        self.fc1 = nn.Linear(self.embed_dim, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # hidden: (B, S, D); Marian is post-LN: add the residual, then normalise.
        attended, weights, _ = self.self_attn(
            hidden, attention_mask=attention_mask, output_attentions=output_attentions
        )
        hidden = self.self_attn_layer_norm(hidden + self._dropout(attended))
        hidden = self.final_layer_norm(hidden + self._dropout(self._feed_forward(hidden)))
        hidden = clamp_overflow_fp16(hidden)
        return hidden, weights

    def _feed_forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.activation_fn(linear(self.fc1, hidden))  # (B, L, ffn_dim)
        return linear(self.fc2, F.dropout(hidden, p=self.activation_dropout, training=self.training))

    def _dropout(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.dropout(hidden, p=self.dropout, training=self.training)


class MarianDecoderLayer(nn.Module):
    def __init__(self, config: MarianConfig):
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = MarianAttention(
            self.embed_dim, config.decoder_attention_heads, dropout=config.attention_dropout
        )
        self.dropout = config.dropout
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = config.activation_dropout
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.encoder_attn = MarianAttention(
            self.embed_dim, config.decoder_attention_heads, dropout=config.attention_dropout
        )
        self.encoder_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.fc1 = nn.Linear(self.embed_dim, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        layer_cache: tuple[torch.Tensor, ...] | None = None,
        cache_position: int | torch.Tensor | None = None,
        output_attentions: bool = False,
    ):
        """Returns (hidden (B, t, D), layer_cache, self-attention weights, cross-attention weights).

        layer_cache: (self_k, self_v, cross_k, cross_v) or None (a full teacher-forced pass).
        """
        self_kv = cross_kv = None
        if layer_cache is not None:
            self_kv, cross_kv = layer_cache[:2], layer_cache[2:]
        attended, self_weights, self_kv = self.self_attn(
            hidden,
            attention_mask=attention_mask,
            past_key_value=self_kv,
            cache_position=cache_position,
            output_attentions=output_attentions,
        )
        hidden = self.self_attn_layer_norm(hidden + self._dropout(attended))
        attended, cross_weights, _ = self.encoder_attn(
            hidden,
            key_value_states=encoder_hidden_states,
            attention_mask=encoder_attention_mask,
            past_key_value=cross_kv,
            output_attentions=output_attentions,
        )
        hidden = self.encoder_attn_layer_norm(hidden + self._dropout(attended))
        hidden = self.final_layer_norm(hidden + self._dropout(self._feed_forward(hidden)))
        if layer_cache is not None:
            layer_cache = (*self_kv, *cross_kv)
        return hidden, layer_cache, self_weights, cross_weights

    # Copied from westron.models.marian.modeling_marian.MarianEncoderLayer._feed_forward
    def _feed_forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.activation_fn(linear(self.fc1, hidden))  # (B, L, ffn_dim)
        return linear(self.fc2, F.dropout(hidden, p=self.activation_dropout, training=self.training))

    # Copied from westron.models.marian.modeling_marian.MarianEncoderLayer._dropout
    def _dropout(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.dropout(hidden, p=self.dropout, training=self.training)


# ---- stacks ---------------------------------------------------------------------------------------------


def _layer_drop(layer_output: torch.Tensor, layer_input: torch.Tensor, layerdrop: float, training: bool):
    """LayerDrop (https://arxiv.org/abs/1909.11556) while training: keep the input instead of the layer's
    output with probability `layerdrop`. The twin of the TensorFlow select: the layer has run, so
    hidden_states and attentions hold one entry per layer in both frameworks; the dropped layer's
    output gets no gradient."""
    if not training or layerdrop <= 0.0:
        return layer_output
    return layer_input if torch.rand([]) < layerdrop else layer_output


class MarianEncoder(nn.Module):
    def __init__(self, config: MarianConfig, embed_tokens: nn.Embedding):
        super().__init__()
        self.dropout = config.dropout
        self.layerdrop = config.encoder_layerdrop
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = MarianSinusoidalPositionalEmbedding(config.max_position_embeddings, config.d_model)
        self.layers = nn.ModuleList([MarianEncoderLayer(config) for _ in range(config.encoder_layers)])

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        # input_ids, attention_mask: (B, S); attention_mask 1 for tokens, 0 for padding.
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = self.embed_tokens(input_ids) * self.embed_scale + self.embed_positions(positions)  # (B, S, D)
        hidden = F.dropout(hidden, p=self.dropout, training=self.training)
        mask = None
        if attention_mask is not None:  # (B, 1, 1, S): padding is hidden from every query
            mask = additive_mask(attention_mask[:, None, None, :].bool(), hidden.dtype)

        all_hidden = (hidden,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            layer_hidden, weights = layer(hidden, mask, output_attentions=output_attentions)
            hidden = _layer_drop(layer_hidden, hidden, self.layerdrop, self.training)
            if output_hidden_states:
                all_hidden += (hidden,)
            if output_attentions:
                all_attentions += (weights,)
        return EncoderOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)


class MarianDecoder(nn.Module):
    def __init__(self, config: MarianConfig, embed_tokens: nn.Embedding):
        super().__init__()
        self.dropout = config.dropout
        self.layerdrop = config.decoder_layerdrop
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = MarianSinusoidalPositionalEmbedding(config.max_position_embeddings, config.d_model)
        self.layers = nn.ModuleList([MarianDecoderLayer(config) for _ in range(config.decoder_layers)])

    def init_cache(self, encoder_hidden_states: torch.Tensor, max_length: int) -> tuple:
        """Per layer (self_k, self_v, cross_k, cross_v); self buffers zeros (B, heads, max_length, head_dim),
        cross keys/values projected once from encoder_hidden_states (B, S, D) -> (B, heads, S, head_dim)."""
        batch = encoder_hidden_states.shape[0]
        cache = []
        for layer in self.layers:
            attention = layer.self_attn
            shape = (batch, attention.num_heads, max_length, attention.head_dim)
            self_k = encoder_hidden_states.new_zeros(shape)
            self_v = encoder_hidden_states.new_zeros(shape)
            cache.append((self_k, self_v, *layer.encoder_attn.project_key_value(encoder_hidden_states)))
        return tuple(cache)

    def forward(
        self,
        input_ids: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: tuple | None = None,
        cache_position: int | torch.Tensor = 0,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> DecoderOutput:
        """input_ids (B, t): the tokens at positions cache_position .. cache_position+t-1.

        Without a cache (teacher forcing) cache_position is 0 and the queries attend to each other
        causally; attention_mask (B, t) hides padded target positions as keys. With a cache, the
        queries attend to every cached position up to their own (masked by position only).
        encoder_hidden_states is always given: with a cache, the cross keys/values come from the
        cache, but the tensor still tells self- from cross-attention.
        """
        t = input_ids.shape[1]
        query_positions = cache_position + torch.arange(t, device=input_ids.device)  # (t,)
        hidden = self.embed_tokens(input_ids) * self.embed_scale + self.embed_positions(query_positions)
        hidden = F.dropout(hidden, p=self.dropout, training=self.training)  # (B, t, D)

        if cache is None:
            num_keys = t
        elif isinstance(cache_position, int):
            num_keys = cache_position + t
            if num_keys > cache[0][0].shape[2]:
                raise ValueError(f"the cache holds {cache[0][0].shape[2]} positions; decoding past it ({num_keys})")
        else:
            num_keys = cache[0][0].shape[2]  # static: all of the buffer, masked by position
        allowed = torch.arange(num_keys, device=input_ids.device)[None, :] <= query_positions[:, None]  # (t, keys)
        allowed = allowed[None, None]  # (1, 1, t, keys)
        if attention_mask is not None:  # (B, keys)
            allowed = allowed & attention_mask[:, None, None, :].bool()
        self_mask = additive_mask(allowed, hidden.dtype)
        cross_mask = None
        if encoder_attention_mask is not None:  # (B, 1, 1, S)
            cross_mask = additive_mask(encoder_attention_mask[:, None, None, :].bool(), hidden.dtype)

        all_hidden = (hidden,) if output_hidden_states else None
        all_self = () if output_attentions else None
        all_cross = () if output_attentions else None
        new_cache = [] if cache is not None else None
        for index, layer in enumerate(self.layers):
            layer_hidden, layer_cache, self_weights, cross_weights = layer(
                hidden,
                self_mask,
                encoder_hidden_states,
                cross_mask,
                layer_cache=cache[index] if cache is not None else None,
                cache_position=cache_position,
                output_attentions=output_attentions,
            )
            # LayerDrop while training only (never with a cache)
            hidden = _layer_drop(layer_hidden, hidden, self.layerdrop, self.training and cache is None)
            if cache is not None:
                new_cache.append(layer_cache)
            if output_hidden_states:
                all_hidden += (hidden,)
            if output_attentions:
                all_self += (self_weights,)
                all_cross += (cross_weights,)
        return DecoderOutput(
            last_hidden_state=hidden,
            cache=tuple(new_cache) if cache is not None else None,
            hidden_states=all_hidden,
            attentions=all_self,
            cross_attentions=all_cross,
        )


# ---- models ---------------------------------------------------------------------------------------------


class MarianPreTrainedModel(PreTrainedModel):
    config_class = MarianConfig
    # HF checkpoints before transformers 5 saved the sinusoidal tables; they are computed here.
    checkpoint_keys_to_ignore = [r"(^|\.)embed_positions\.weight$"]
    base_model_prefix = "model"
    head_checkpoint_names = ("lm_head.weight", "final_logits_bias")

    def _init_weights(self, module: nn.Module) -> None:
        """HF's initialisation, for training from scratch (from_pretrained overwrites it)."""
        std = self.config.init_std
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _embedding(config: MarianConfig, vocab_size: int) -> nn.Embedding:
    padding_idx = config.pad_token_id if config.pad_token_id is not None and config.pad_token_id < vocab_size else None
    return nn.Embedding(vocab_size, config.d_model, padding_idx)


class MarianModel(MarianPreTrainedModel):
    """The encoder and decoder; `shared` holds the one vocabulary's embeddings when it is shared.

    Tying follows Hugging Face transformers 5: with a shared vocabulary and tie_word_embeddings the
    encoder's and decoder's embeddings are `shared` itself; with tie_word_embeddings=False all three
    are separate tensors (HF 5 saves and loads each one, and `shared` is then unused).
    """

    def __init__(self, config: MarianConfig):
        super().__init__(config)
        if config.share_encoder_decoder_embeddings:
            self.shared = _embedding(config, config.vocab_size)
            if config.tie_word_embeddings:
                encoder_embeddings = decoder_embeddings = self.shared
            else:
                encoder_embeddings = _embedding(config, config.vocab_size)
                decoder_embeddings = _embedding(config, config.vocab_size)
        else:
            encoder_embeddings = _embedding(config, config.vocab_size)
            decoder_embeddings = _embedding(config, config.decoder_vocab_size)
        self.encoder = MarianEncoder(config, encoder_embeddings)
        self.decoder = MarianDecoder(config, decoder_embeddings)
        self.apply(self._init_weights)
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        if self.config.share_encoder_decoder_embeddings and self.config.tie_word_embeddings:
            return {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}
        return {}

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """The encoder's embeddings; with one tied vocabulary also `shared` and the decoder's (as in HF)."""
        if self.config.share_encoder_decoder_embeddings and self.config.tie_word_embeddings:
            self.shared = value
            self.decoder.embed_tokens = value
        self.encoder.embed_tokens = value

    def vocab_parameters(self) -> list[str]:
        if self.config.share_encoder_decoder_embeddings:
            return ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]
        return ["encoder.embed_tokens.weight"]  # the decoder's vocabulary is another one

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: EncoderOutput | tuple | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> Seq2SeqModelOutput:
        if output_attentions is None:
            output_attentions = self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        if encoder_outputs is None:
            if input_ids is None:
                raise ValueError("pass input_ids or encoder_outputs")
            encoder_outputs = self.encoder(
                input_ids,
                attention_mask,
                output_attentions=output_attentions,
                output_hidden_states=output_hidden_states,
            )
        elif not isinstance(encoder_outputs, EncoderOutput):  # HF style: a tuple, hidden states first
            encoder_outputs = EncoderOutput(*encoder_outputs)
        if decoder_input_ids is None:
            raise ValueError("pass decoder_input_ids (or labels to the MarianMTModel)")
        decoder_outputs = self.decoder(
            decoder_input_ids,
            encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            attention_mask=decoder_attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return Seq2SeqModelOutput(
            last_hidden_state=decoder_outputs.last_hidden_state,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_hidden_states=encoder_outputs.hidden_states,
            encoder_attentions=encoder_outputs.attentions,
        )


class MarianMTModel(MarianPreTrainedModel):
    """MarianModel with the language-model head: logits = lm_head(decoder states) + final_logits_bias."""

    def __init__(self, config: MarianConfig):
        super().__init__(config)
        self.model = MarianModel(config)
        target_vocab_size = config.vocab_size if config.share_encoder_decoder_embeddings else config.decoder_vocab_size
        # A saved, untrained buffer (as in HF and in the opus-mt checkpoints), not a parameter.
        self.register_buffer("final_logits_bias", torch.zeros(1, target_vocab_size))
        self.lm_head = nn.Linear(config.d_model, target_vocab_size, bias=False)
        self._init_weights(self.lm_head)
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        if not self.config.tie_word_embeddings:
            return {}
        tied = {f"model.{name}": f"model.{source}" for name, source in self.model.tied_weights().items()}
        if self.config.share_encoder_decoder_embeddings:
            tied["lm_head.weight"] = "model.shared.weight"
        else:
            tied["lm_head.weight"] = "model.decoder.embed_tokens.weight"
        return tied

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.set_input_embeddings(value)
        self.tie_weights()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def vocab_parameters(self) -> list[str]:
        names = [f"model.{name}" for name in self.model.vocab_parameters()]
        if self.config.share_encoder_decoder_embeddings:  # else the head predicts the decoder's vocabulary
            names.append("lm_head.weight")
        return names

    def _vocab_resized(self, new_num_tokens: int) -> None:
        self.config.vocab_size = new_num_tokens
        if self.config.share_encoder_decoder_embeddings:
            self.config.decoder_vocab_size = new_num_tokens
            bias = self.final_logits_bias[:, :new_num_tokens]  # (1, V): kept values, zeros for added tokens
            added = bias.new_zeros(1, new_num_tokens - bias.shape[1])
            self.final_logits_bias = torch.cat([bias, added], dim=1)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing decoder inputs from labels (what DataCollatorForSeq2Seq calls)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def lm_head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, t, D) -> (B, t, V): the head (own or tied) plus final_logits_bias."""
        return linear(self.lm_head, hidden, extra_bias=self.final_logits_bias)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: EncoderOutput | tuple | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
    ) -> Seq2SeqLMOutput:
        """A full teacher-forced pass. labels (B, t), -100 where ignored -> loss (mean cross-entropy)."""
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
        outputs = self.model(
            input_ids,
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            encoder_outputs=encoder_outputs,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.lm_head_logits(outputs.last_hidden_state)  # (B, t, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return Seq2SeqLMOutput(
            logits=logits,
            loss=loss,
            encoder_last_hidden_state=outputs.encoder_last_hidden_state,
            decoder_hidden_states=outputs.decoder_hidden_states,
            decoder_attentions=outputs.decoder_attentions,
            cross_attentions=outputs.cross_attentions,
            encoder_hidden_states=outputs.encoder_hidden_states,
            encoder_attentions=outputs.encoder_attentions,
        )

    # ---- what generation needs (docs/internals.md) ------------------------------------------------------

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        return self.model.encoder(
            input_ids,
            attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )

    def init_cache(self, encoder_hidden_states: torch.Tensor, max_length: int) -> tuple:
        return self.model.decoder.init_cache(encoder_hidden_states, max_length)

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None,
        encoder_attention_mask: torch.Tensor | None,
        cache: tuple,
        cache_position: int | torch.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[torch.Tensor, tuple, DecoderOutput]:
        """One decoder step over t new tokens: (logits (B, t, V), cache, the decoder's outputs).

        The DecoderOutput holds the per-layer attentions, cross-attentions and hidden states when
        output_attentions / output_hidden_states ask for them (None otherwise).

        The self-attention buffers of `cache` are updated in place (when autograd is not recording)
        and the same cache is returned; run generation under torch.no_grad().
        """
        outputs = self.model.decoder(
            decoder_input_ids,
            encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            cache=cache,
            cache_position=cache_position,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.lm_head_logits(outputs.last_hidden_state)
        return logits, outputs.cache, outputs

    @staticmethod
    def reorder_cache(cache: tuple, beam_indices: torch.Tensor) -> tuple:
        """Picks the batch rows beam_indices (B,) of the self-attention keys/values; the cross
        keys/values are the same for every beam of a sentence and stay as they are."""
        return tuple(
            (self_k.index_select(0, beam_indices), self_v.index_select(0, beam_indices), cross_k, cross_v)
            for self_k, self_v, cross_k, cross_v in cache
        )
