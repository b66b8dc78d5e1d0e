"""PyTorch M2M100: the architecture of Hugging Face's M2M100ForConditionalGeneration (m2m100_418M / 1.2B
and NLLB-200, which is an M2M100 checkpoint with its own tokenizer).

A pre-LayerNorm encoder-decoder Transformer: each sublayer normalises its input and adds its output
to the residual stream, and each stack ends with a LayerNorm. Positions are static sinusoids offset
by padding_idx + 1 and counted over non-padding tokens only (fairseq's convention), and the word
embeddings are scaled by sqrt(d_model). Parameter paths equal Hugging Face's checkpoint names
(`model.encoder.layers.0.self_attn.q_proj.weight`, `model.encoder.layer_norm.weight`), so a HF
model.safetensors loads name for name. The TensorFlow twin is modeling_tf_m2m_100.py.

What is the same as Marian (attention, cache, activations, layer internals) is copied from
westron/models/marian/modeling_marian.py with `# Copied from` markers; `make check-copies` keeps it so.
Decoding (greedy, beam, sampling) is not here: the model offers `encode`, `init_cache`, `decode` and
`reorder_cache`, and westron/generation/ does the search.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from westron.errors import WestronError
from westron.modeling_outputs import DecoderOutput, EncoderOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from westron.modeling_utils import PreTrainedModel
from westron.torch_onednn import linear  # layer(x), on oneDNN with packed weights when decoding on the CPU
from westron.models.m2m_100.configuration_m2m_100 import M2M100Config

# ---- activations: Hugging Face's ACT2FN names, the same numerics -------------------------------------


# Copied from westron.models.marian.modeling_marian.gelu_new
def gelu_new(x: torch.Tensor) -> torch.Tensor:
    # HF's NewGELUActivation, written out (torch's approximate="tanh" differs in the last bits).
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


# Copied from westron.models.marian.modeling_marian.gelu_fast
def gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


# Copied from westron.models.marian.modeling_marian.quick_gelu
def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


# Copied from westron.models.marian.modeling_marian.gelu_pytorch_tanh
def gelu_pytorch_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


# Copied from westron.models.marian.modeling_marian.linear_activation
def linear_activation(x: torch.Tensor) -> torch.Tensor:
    return x


# Copied from westron.models.marian.modeling_marian.ACT2FN
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


# Copied from westron.models.marian.modeling_marian.get_activation
def get_activation(name: str):
    if name not in ACT2FN:
        raise WestronError(f"activation_function {name!r} is not supported (known: {', '.join(sorted(ACT2FN))})")
    return ACT2FN[name]


# ---- helpers -----------------------------------------------------------------------------------------


# Copied from westron.models.marian.modeling_marian.shift_tokens_right
def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int) -> torch.Tensor:
    """Decoder inputs for teacher forcing: the start token, then labels[:-1], with -100 replaced by pad."""
    if pad_token_id is None or decoder_start_token_id is None:
        raise ValueError("config.pad_token_id and config.decoder_start_token_id must be set to shift labels")
    shifted = labels.new_empty(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == -100, pad_token_id)


# Copied from westron.models.marian.modeling_marian.additive_mask
def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean "may attend" mask -> 0 where allowed, the dtype's minimum where not (added to the scores)."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )


def sinusoidal_table(num_positions: int, dim: int, padding_idx: int) -> torch.Tensor:
    """M2M100's (fairseq's) position table (num_positions, dim), float32.

    Sines in the first half, cosines in the second (not interleaved), a zero column when dim is odd,
    and the padding row zero. Computed with the same float32 torch operations as Hugging Face, so the
    table equals its table bit for bit (sines of large float32 angles differ between libraries in
    the last bits, and that matters at position 1000).
    """
    half = dim // 2
    rate = math.log(10000) / (half - 1)
    frequencies = torch.exp(torch.arange(half, dtype=torch.int64).float() * -rate)  # (half,)
    angles = torch.arange(num_positions, dtype=torch.int64).float()[:, None] * frequencies[None, :]
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)  # (num_positions, 2 * half)
    if dim % 2:
        table = torch.cat([table, torch.zeros(num_positions, 1)], dim=1)
    table[padding_idx] = 0
    return table.float()


# ---- layers --------------------------------------------------------------------------------------------


class M2M100SinusoidalPositionalEmbedding(nn.Module):
    """Static sinusoidal positions, counted over non-padding tokens: computed, never trained, loaded or saved.

    As Hugging Face's create_position_ids_from_input_ids (fairseq's make_positions): a token at
    sequence index i of a row has position padding_idx + 1 + past_length + (the number of non-padding
    tokens among the row's new tokens up to i); a padding token has position padding_idx, whose row
    is zero. So a right-padded row gets the same positions whether it is embedded whole or a chunk at
    a time with past_length = the chunk's start (decoding with a cache); left padding shifts nothing.
    """

    def __init__(self, num_positions: int, embedding_dim: int, padding_idx: int):
        super().__init__()
        self.num_positions = num_positions
        self.padding_idx = padding_idx
        # HF grows its table on demand; a row depends only on its index, so one table holding every
        # position that num_positions tokens can reach is the same table, and static (XLA-friendly).
        table = sinusoidal_table(num_positions + padding_idx + 1, embedding_dim, padding_idx)
        self.register_buffer("weights", table, persistent=False)

    def forward(self, input_ids: torch.Tensor, past_length: int | torch.Tensor = 0) -> torch.Tensor:
        # input_ids: (B, t), the tokens at sequence indices past_length .. past_length+t-1 -> (B, t, dim)
        if isinstance(past_length, int) and past_length + input_ids.shape[1] > self.num_positions:
            raise ValueError(
                f"{past_length + input_ids.shape[1]} positions exceed max_position_embeddings ({self.num_positions})"
            )
        not_pad = input_ids.ne(self.padding_idx).int()
        positions = (torch.cumsum(not_pad, dim=1).type_as(not_pad) + past_length) * not_pad + self.padding_idx
        return self.weights[positions.long()]


# Copied from westron.models.marian.modeling_marian.MarianAttention with Marian->M2M100
class M2M100Attention(nn.Module):
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


# Copied from westron.models.marian.modeling_marian._write_cache
def _write_cache(buffer: torch.Tensor, positions: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Writes new (B, heads, t, head_dim) into buffer (B, heads, max_length, head_dim) at positions (t,).

    In place (no reallocation per step) unless autograd is recording through the new values.
    """
    if torch.is_grad_enabled() and (new.requires_grad or buffer.requires_grad):
        return buffer.index_copy(2, positions, new)
    return buffer.index_copy_(2, positions, new)


# Copied from westron.models.marian.modeling_marian.MarianEncoderLayer with Marian->M2M100
class M2M100EncoderLayer(nn.Module):
    def __init__(self, config: M2M100Config):
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = M2M100Attention(
            self.embed_dim, config.encoder_attention_heads, dropout=config.attention_dropout
        )
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.dropout = config.dropout
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = config.activation_dropout
        self.fc1 = nn.Linear(self.embed_dim, config.encoder_ffn_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim)

    # Ignore copy
    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, output_attentions: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # hidden: (B, S, D); M2M100 is pre-LN: normalise, transform, add to the residual stream.
        attended, weights, _ = self.self_attn(
            self.self_attn_layer_norm(hidden), attention_mask=attention_mask, output_attentions=output_attentions
        )
        hidden = hidden + self._dropout(attended)
        hidden = hidden + self._dropout(self._feed_forward(self.final_layer_norm(hidden)))
        if hidden.dtype == torch.float16:
            # As HF's M2M100 (its Marian clamps only non-finite values): float16 is always clamped.
            clamp = torch.finfo(hidden.dtype).max - 1000
            hidden = hidden.clamp(min=-clamp, max=clamp)
        return hidden, weights

    def _feed_forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.activation_fn(linear(self.fc1, hidden))  # (B, L, ffn_dim)
        return linear(self.fc2, F.dropout(hidden, p=self.activation_dropout, training=self.training))

    def _dropout(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.dropout(hidden, p=self.dropout, training=self.training)


# Copied from westron.models.marian.modeling_marian.MarianDecoderLayer with Marian->M2M100, marian->m2m_100
class M2M100DecoderLayer(nn.Module):
    def __init__(self, config: M2M100Config):
        super().__init__()
        self.embed_dim = config.d_model
        self.self_attn = M2M100Attention(
            self.embed_dim, config.decoder_attention_heads, dropout=config.attention_dropout
        )
        self.dropout = config.dropout
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = config.activation_dropout
        self.self_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.encoder_attn = M2M100Attention(
            self.embed_dim, config.decoder_attention_heads, dropout=config.attention_dropout
        )
        self.encoder_attn_layer_norm = nn.LayerNorm(self.embed_dim)
        self.fc1 = nn.Linear(self.embed_dim, config.decoder_ffn_dim)
        self.fc2 = nn.Linear(config.decoder_ffn_dim, self.embed_dim)
        self.final_layer_norm = nn.LayerNorm(self.embed_dim)

    # Ignore copy
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
        Pre-LN: every sublayer reads the normalised stream and adds its output to it.
        """
        self_kv = cross_kv = None
        if layer_cache is not None:
            self_kv, cross_kv = layer_cache[:2], layer_cache[2:]
        attended, self_weights, self_kv = self.self_attn(
            self.self_attn_layer_norm(hidden),
            attention_mask=attention_mask,
            past_key_value=self_kv,
            cache_position=cache_position,
            output_attentions=output_attentions,
        )
        hidden = hidden + self._dropout(attended)
        attended, cross_weights, _ = self.encoder_attn(
            self.encoder_attn_layer_norm(hidden),
            key_value_states=encoder_hidden_states,
            attention_mask=encoder_attention_mask,
            past_key_value=cross_kv,
            output_attentions=output_attentions,
        )
        hidden = hidden + self._dropout(attended)
        hidden = hidden + self._dropout(self._feed_forward(self.final_layer_norm(hidden)))
        if layer_cache is not None:
            layer_cache = (*self_kv, *cross_kv)
        return hidden, layer_cache, self_weights, cross_weights

    # Copied from westron.models.m2m_100.modeling_m2m_100.M2M100EncoderLayer._feed_forward
    def _feed_forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.activation_fn(linear(self.fc1, hidden))  # (B, L, ffn_dim)
        return linear(self.fc2, F.dropout(hidden, p=self.activation_dropout, training=self.training))

    # Copied from westron.models.m2m_100.modeling_m2m_100.M2M100EncoderLayer._dropout
    def _dropout(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.dropout(hidden, p=self.dropout, training=self.training)


# ---- stacks ---------------------------------------------------------------------------------------------


# Copied from westron.models.marian.modeling_marian._layer_drop
def _layer_drop(layer_output: torch.Tensor, layer_input: torch.Tensor, layerdrop: float, training: bool):
    """LayerDrop (https://arxiv.org/abs/1909.11556) while training: keep the input instead of the layer's
    output with probability `layerdrop`. The twin of the TensorFlow select: the layer has run, so
    hidden_states and attentions hold one entry per layer in both frameworks; the dropped layer's
    output gets no gradient."""
    if not training or layerdrop <= 0.0:
        return layer_output
    return layer_input if torch.rand([]) < layerdrop else layer_output


class M2M100Encoder(nn.Module):
    def __init__(self, config: M2M100Config, embed_tokens: nn.Embedding):
        super().__init__()
        self.dropout = config.dropout
        self.layerdrop = config.encoder_layerdrop
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = M2M100SinusoidalPositionalEmbedding(
            config.max_position_embeddings, config.d_model, config.pad_token_id
        )
        self.layers = nn.ModuleList([M2M100EncoderLayer(config) for _ in range(config.encoder_layers)])
        self.layer_norm = nn.LayerNorm(config.d_model)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        """hidden_states, when asked for: the embeddings, each layer's output but the last, and the
        final LayerNorm's output (Hugging Face's tuple)."""
        # input_ids, attention_mask: (B, S); attention_mask 1 for tokens, 0 for padding.
        hidden = self.embed_tokens(input_ids) * self.embed_scale + self.embed_positions(input_ids)  # (B, S, D)
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
        hidden = self.layer_norm(hidden)
        if output_hidden_states:
            all_hidden = all_hidden[:-1] + (hidden,)
        return EncoderOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)


class M2M100Decoder(nn.Module):
    def __init__(self, config: M2M100Config, embed_tokens: nn.Embedding):
        super().__init__()
        self.dropout = config.dropout
        self.layerdrop = config.decoder_layerdrop
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = M2M100SinusoidalPositionalEmbedding(
            config.max_position_embeddings, config.d_model, config.pad_token_id
        )
        self.layers = nn.ModuleList([M2M100DecoderLayer(config) for _ in range(config.decoder_layers)])
        self.layer_norm = nn.LayerNorm(config.d_model)

    # Copied from westron.models.marian.modeling_marian.MarianDecoder.init_cache
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
        """input_ids (B, t): the tokens at sequence indices cache_position .. cache_position+t-1.

        Without a cache (teacher forcing) cache_position is 0 and the queries attend to each other
        causally; attention_mask (B, t) hides padded target positions as keys. With a cache, the
        queries attend to every cached position up to their own (masked by position only).
        encoder_hidden_states is always given: with a cache, the cross keys/values come from the
        cache, but the tensor still tells self- from cross-attention.
        hidden_states, when asked for, end with the final LayerNorm's output, as Hugging Face's.
        """
        t = input_ids.shape[1]
        query_positions = cache_position + torch.arange(t, device=input_ids.device)  # (t,) for the causal mask
        # The embedded positions skip padding tokens (see M2M100SinusoidalPositionalEmbedding).
        hidden = self.embed_tokens(input_ids) * self.embed_scale + self.embed_positions(input_ids, cache_position)
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
        hidden = self.layer_norm(hidden)
        if output_hidden_states:
            all_hidden = all_hidden[:-1] + (hidden,)
        return DecoderOutput(
            last_hidden_state=hidden,
            cache=tuple(new_cache) if cache is not None else None,
            hidden_states=all_hidden,
            attentions=all_self,
            cross_attentions=all_cross,
        )


# ---- models ---------------------------------------------------------------------------------------------


class M2M100PreTrainedModel(PreTrainedModel):
    config_class = M2M100Config
    # Checkpoints of transformers 4 may hold the sinusoidal tables (`...embed_positions.weights`);
    # they are computed here.
    checkpoint_keys_to_ignore = [r"(^|\.)embed_positions\.weights?$"]
    base_model_prefix = "model"
    head_checkpoint_names = ("lm_head.weight",)  # no final_logits_bias

    # Copied from westron.models.marian.modeling_marian.MarianPreTrainedModel._init_weights
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


# Copied from westron.models.marian.modeling_marian._embedding with Marian->M2M100
def _embedding(config: M2M100Config, vocab_size: int) -> nn.Embedding:
    padding_idx = config.pad_token_id if config.pad_token_id is not None and config.pad_token_id < vocab_size else None
    return nn.Embedding(vocab_size, config.d_model, padding_idx)


class M2M100Model(M2M100PreTrainedModel):
    """The encoder and decoder over one shared vocabulary; `shared` holds its embeddings.

    Tying follows Hugging Face transformers 5: with tie_word_embeddings the encoder's and decoder's
    embeddings are `shared` itself; with tie_word_embeddings=False all three are separate tensors
    (HF 5 saves and loads each one, and `shared` is then unused).
    """

    def __init__(self, config: M2M100Config):
        super().__init__(config)
        self.shared = _embedding(config, config.vocab_size)
        if config.tie_word_embeddings:
            encoder_embeddings = decoder_embeddings = self.shared
        else:
            encoder_embeddings = _embedding(config, config.vocab_size)
            decoder_embeddings = _embedding(config, config.vocab_size)
        self.encoder = M2M100Encoder(config, encoder_embeddings)
        self.decoder = M2M100Decoder(config, decoder_embeddings)
        self.apply(self._init_weights)
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        if self.config.tie_word_embeddings:
            return {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}
        return {}

    # Copied from westron.models.marian.modeling_marian.MarianModel.get_input_embeddings
    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """The encoder's embeddings; when tied also `shared` and the decoder's (as in HF)."""
        if self.config.tie_word_embeddings:
            self.shared = value
            self.decoder.embed_tokens = value
        self.encoder.embed_tokens = value

    def vocab_parameters(self) -> list[str]:
        return ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]

    # Copied from westron.models.marian.modeling_marian.MarianModel.forward with Marian->M2M100, M2M100MTModel->M2M100ForConditionalGeneration
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
            raise ValueError("pass decoder_input_ids (or labels to the M2M100ForConditionalGeneration)")
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


class M2M100ForConditionalGeneration(M2M100PreTrainedModel):
    """M2M100Model with the language-model head: logits = lm_head(decoder states), no bias."""

    def __init__(self, config: M2M100Config):
        super().__init__(config)
        self.model = M2M100Model(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._init_weights(self.lm_head)
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        if not self.config.tie_word_embeddings:
            return {}
        tied = {f"model.{name}": f"model.{source}" for name, source in self.model.tied_weights().items()}
        tied["lm_head.weight"] = "model.shared.weight"
        return tied

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.get_input_embeddings
    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.set_input_embeddings
    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.set_input_embeddings(value)
        self.tie_weights()

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.get_output_embeddings
    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.set_output_embeddings
    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def vocab_parameters(self) -> list[str]:
        return [f"model.{name}" for name in self.model.vocab_parameters()] + ["lm_head.weight"]

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.prepare_decoder_input_ids_from_labels
    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing decoder inputs from labels (what DataCollatorForSeq2Seq calls)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def lm_head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, t, D) -> (B, t, V): the head, own or tied."""
        return linear(self.lm_head, hidden)

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.forward with Marian->M2M100
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

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.encode
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

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.init_cache
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
        and the same cache is returned; run generation under torch.no_grad(). Positions count the
        non-padding tokens of the step on from cache_position, as the full pass does for right padding.
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

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.reorder_cache
    @staticmethod
    def reorder_cache(cache: tuple, beam_indices: torch.Tensor) -> tuple:
        """Picks the batch rows beam_indices (B,) of the self-attention keys/values; the cross
        keys/values are the same for every beam of a sentence and stay as they are."""
        return tuple(
            (self_k.index_select(0, beam_indices), self_v.index_select(0, beam_indices), cross_k, cross_v)
            for self_k, self_v, cross_k, cross_v in cache
        )
