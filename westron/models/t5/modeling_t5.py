"""PyTorch T5: the architecture of Hugging Face's T5ForConditionalGeneration (t5, t5 v1.1, flan-t5, mT5).

A pre-LayerNorm encoder-decoder Transformer without position embeddings: each stack's first layer
holds a learned bias per head and per bucket of relative distance (key - query), added to every
layer's attention scores. RMS layer norms without bias, no biases anywhere, no 1/sqrt(d) scaling of
the scores (it is folded into the initialisation). Parameter paths equal Hugging Face's checkpoint
names (`encoder.block.0.layer.0.SelfAttention.q.weight`), so a HF model.safetensors loads name for
name. The TensorFlow twin is modeling_tf_t5.py: same classes, same names, same order of operations.

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
from westron.models.t5.configuration_t5 import T5Config

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


# T5 uses relu (t5), gelu_new (t5 v1.1 / flan-t5 / mT5: "gated-gelu"), silu, gelu_pytorch_tanh.

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


def relative_position_bucket(
    relative_position: torch.Tensor, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> torch.Tensor:
    """Buckets of relative positions (key - query), int64, in [0, num_buckets), as Mesh TensorFlow's T5.

    Bidirectional (encoder): half the buckets for keys before the query, half for keys after.
    Unidirectional (decoder): keys after the query all fall in bucket 0 (they are masked anyway).
    Within each half, the first half of the buckets are exact distances 0, 1, ...; the rest grow
    logarithmically up to max_distance, and everything farther shares the last bucket.
    """
    buckets = torch.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (relative_position > 0).long() * num_buckets
        distance = relative_position.abs()
    else:
        distance = -torch.clamp(relative_position, max=0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # The logarithmic buckets, only used where distance >= max_exact (clamped so log never sees 0).
    # Float32 and this order of operations, as HF, so the boundaries fall where they do there.
    large = max_exact + (
        torch.log(distance.clamp(min=max_exact).float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).long()
    large = torch.clamp(large, max=num_buckets - 1)
    return buckets + torch.where(is_small, distance, large)


# Copied from westron.models.marian.modeling_marian._write_cache
def _write_cache(buffer: torch.Tensor, positions: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Writes new (B, heads, t, head_dim) into buffer (B, heads, max_length, head_dim) at positions (t,).

    In place (no reallocation per step) unless autograd is recording through the new values.
    """
    if torch.is_grad_enabled() and (new.requires_grad or buffer.requires_grad):
        return buffer.index_copy(2, positions, new)
    return buffer.index_copy_(2, positions, new)


def clamp_inf_fp16(hidden: torch.Tensor) -> torch.Tensor:
    """As HF: in float16, once anything overflowed, clamp the activations back into range (T5's
    residual stream grows large; fp16 training would otherwise turn into inf and nan)."""
    if hidden.dtype != torch.float16:
        return hidden
    largest = torch.finfo(torch.float16).max
    bound = torch.where(torch.isinf(hidden).any(), largest - 1000, largest)
    return torch.clamp(hidden, min=-bound, max=bound)


# ---- layers --------------------------------------------------------------------------------------------


class T5LayerNorm(nn.Module):
    """RMS norm: no mean subtraction, no bias; the mean square in float32 even for half inputs."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        variance = hidden.to(torch.float32).pow(2).mean(-1, keepdim=True)  # (..., 1)
        hidden = hidden * torch.rsqrt(variance + self.variance_epsilon)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            hidden = hidden.to(self.weight.dtype)
        return self.weight * hidden


def to_input_dtype(hidden: torch.Tensor, linear: nn.Module) -> torch.Tensor:
    """hidden in the dtype of linear's weight: wo may be kept in float32 while the rest runs in half
    precision (as HF does for flan-t5). An int8 Linear (westron/torch_quantization.py) takes float32."""
    weight = linear.weight
    return hidden.to(weight.dtype) if isinstance(weight, torch.Tensor) else hidden


class T5DenseActDense(nn.Module):
    """t5's feed-forward: wo(act(wi(x)))."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(self.act(linear(self.wi, hidden)))  # (B, L, d_ff)
        return linear(self.wo, to_input_dtype(hidden, self.wo))


class T5DenseGatedActDense(nn.Module):
    """t5 v1.1's gated feed-forward: wo(act(wi_0(x)) * wi_1(x))."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(self.act(linear(self.wi_0, hidden)) * linear(self.wi_1, hidden))  # (B, L, d_ff)
        return linear(self.wo, to_input_dtype(hidden, self.wo))


class T5LayerFF(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        if config.is_gated_act:
            self.DenseReluDense = T5DenseGatedActDense(config)
        else:
            self.DenseReluDense = T5DenseActDense(config)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.dropout(self.DenseReluDense(self.layer_norm(hidden)))


class T5Attention(nn.Module):
    """Multi-head attention (self or cross) without score scaling, with an optional key/value cache.

    The layer with `has_relative_attention_bias` (the first of each stack) owns the table
    (num_buckets, heads) from which `compute_bias` builds the position bias every layer of its
    stack adds to its scores.
    """

    def __init__(
        self,
        config: T5Config,
        is_decoder: bool = False,
        has_relative_attention_bias: bool = False,
        is_cross_attention: bool = False,
    ):
        super().__init__()
        self.is_decoder = is_decoder
        self.is_cross_attention = is_cross_attention
        self.has_relative_attention_bias = has_relative_attention_bias
        self.relative_attention_num_buckets = config.relative_attention_num_buckets
        self.relative_attention_max_distance = config.relative_attention_max_distance
        self.n_heads = config.num_heads
        self.key_value_proj_dim = config.d_kv
        self.inner_dim = self.n_heads * self.key_value_proj_dim
        self.dropout = config.dropout_rate
        self.attn_implementation = "sdpa"  # or "eager": the explicit form always (from_pretrained sets it)
        self.q = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.k = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.v = nn.Linear(config.d_model, self.inner_dim, bias=False)
        self.o = nn.Linear(self.inner_dim, config.d_model, bias=False)
        if has_relative_attention_bias:
            self.relative_attention_bias = nn.Embedding(self.relative_attention_num_buckets, self.n_heads)

    def compute_bias(self, query_positions: torch.Tensor, num_keys: int) -> torch.Tensor:
        """Position bias (1, heads, t, num_keys) for queries at query_positions (t,) and keys 0 .. num_keys-1."""
        key_positions = torch.arange(num_keys, device=query_positions.device)
        relative_position = key_positions[None, :] - query_positions[:, None]  # (t, keys)
        buckets = relative_position_bucket(
            relative_position,
            bidirectional=not self.is_decoder,
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance,
        )
        values = self.relative_attention_bias(buckets)  # (t, keys, heads)
        return values.permute(2, 0, 1).unsqueeze(0)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        # (B, L, heads * d_kv) -> (B, heads, L, d_kv)
        batch, length, _ = x.shape
        return x.view(batch, length, self.n_heads, self.key_value_proj_dim).transpose(1, 2)

    def project_key_value(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split_heads(linear(self.k, states)), self.split_heads(linear(self.v, states))

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        position_bias: torch.Tensor | None = None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache_position: int | torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
        """Returns (output (B, t, D), weights (B, heads, t, keys) or None, the key/value cache or None).

        hidden_states: (B, t, D), the queries. position_bias: the relative position bias plus the
        additive mask, broadcastable to (B, heads, t, keys) (cross-attention: the mask only).
        Self-attention: keys and values come from hidden_states; with a
        `past_key_value` of static buffers (B, heads, max_length, d_kv) they are written there at
        positions cache_position .. cache_position+t-1 and the queries attend over the buffers
        (the first cache_position+t keys when cache_position is an int, else all max_length: the
        mask hides the rest). Cross-attention: keys and values come from key_value_states (B, S, D),
        or from `past_key_value` when they were computed once already (init_cache).
        """
        query = self.split_heads(linear(self.q, hidden_states))  # (B, heads, t, d_kv)
        if not self.is_cross_attention:
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
            # The explicit form, because the weights are asked for (or eager attention was chosen). No 1/sqrt(d_kv): T5 has none.
            scores = torch.matmul(query, key.transpose(2, 3))  # (B, heads, t, keys)
            if position_bias is not None:
                scores = scores + position_bias
            weights = F.softmax(scores.float(), dim=-1).type_as(scores)
            output = torch.matmul(F.dropout(weights, p=dropout, training=self.training), value)
        else:
            # Same numerics as above within float rounding, fused (less memory when training).
            output = F.scaled_dot_product_attention(
                query, key, value, attn_mask=position_bias, dropout_p=dropout, scale=1.0
            )
            weights = None
        batch, _, t, _ = output.shape
        output = output.transpose(1, 2).reshape(batch, t, self.inner_dim)  # (B, t, heads * d_kv)
        return linear(self.o, output), weights, past_key_value


class T5LayerSelfAttention(nn.Module):
    def __init__(self, config: T5Config, is_decoder: bool = False, has_relative_attention_bias: bool = False):
        super().__init__()
        self.SelfAttention = T5Attention(
            config, is_decoder=is_decoder, has_relative_attention_bias=has_relative_attention_bias
        )
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(
        self,
        hidden: torch.Tensor,
        position_bias: torch.Tensor | None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        cache_position: int | torch.Tensor | None = None,
        output_attentions: bool = False,
    ):
        attended, weights, past_key_value = self.SelfAttention(
            self.layer_norm(hidden),
            position_bias=position_bias,
            past_key_value=past_key_value,
            cache_position=cache_position,
            output_attentions=output_attentions,
        )
        return hidden + self.dropout(attended), weights, past_key_value


class T5LayerCrossAttention(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        self.EncDecAttention = T5Attention(config, is_decoder=True, is_cross_attention=True)
        self.layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(
        self,
        hidden: torch.Tensor,
        key_value_states: torch.Tensor | None,
        position_bias: torch.Tensor | None,
        past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        output_attentions: bool = False,
    ):
        attended, weights, _ = self.EncDecAttention(
            self.layer_norm(hidden),
            key_value_states=key_value_states,
            position_bias=position_bias,
            past_key_value=past_key_value,
            output_attentions=output_attentions,
        )
        return hidden + self.dropout(attended), weights


class T5Block(nn.Module):
    """layer[0]: self-attention; decoder: layer[1] cross-attention; layer[-1]: feed-forward. Each
    is pre-norm with its own residual: hidden = hidden + sublayer(layer_norm(hidden))."""

    def __init__(self, config: T5Config, is_decoder: bool = False, has_relative_attention_bias: bool = False):
        super().__init__()
        self.is_decoder = is_decoder
        self_attention = T5LayerSelfAttention(
            config, is_decoder=is_decoder, has_relative_attention_bias=has_relative_attention_bias
        )
        self.layer = nn.ModuleList([self_attention])
        if is_decoder:
            self.layer.append(T5LayerCrossAttention(config))
        self.layer.append(T5LayerFF(config))

    def forward(
        self,
        hidden: torch.Tensor,
        position_bias: torch.Tensor | None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_position_bias: torch.Tensor | None = None,
        layer_cache: tuple[torch.Tensor, ...] | None = None,
        cache_position: int | torch.Tensor | None = None,
        output_attentions: bool = False,
    ):
        """Returns (hidden (B, t, D), layer_cache, self-attention weights, cross-attention weights).

        layer_cache (decoder): (self_k, self_v, cross_k, cross_v) or None (a full teacher-forced pass).
        """
        self_kv = cross_kv = None
        if layer_cache is not None:
            self_kv, cross_kv = layer_cache[:2], layer_cache[2:]
        hidden, self_weights, self_kv = self.layer[0](
            hidden,
            position_bias,
            past_key_value=self_kv,
            cache_position=cache_position,
            output_attentions=output_attentions,
        )
        hidden = clamp_inf_fp16(hidden)
        cross_weights = None
        if self.is_decoder and (encoder_hidden_states is not None or cross_kv is not None):
            hidden, cross_weights = self.layer[1](
                hidden,
                encoder_hidden_states,
                encoder_position_bias,
                past_key_value=cross_kv,
                output_attentions=output_attentions,
            )
            hidden = clamp_inf_fp16(hidden)
        hidden = clamp_inf_fp16(self.layer[-1](hidden))
        if layer_cache is not None:
            layer_cache = (*self_kv, *cross_kv)
        return hidden, layer_cache, self_weights, cross_weights


# ---- stacks ---------------------------------------------------------------------------------------------


class T5Stack(nn.Module):
    """The encoder (is_decoder=False, num_layers blocks) or the decoder (num_decoder_layers blocks)."""

    def __init__(self, config: T5Config, embed_tokens: nn.Embedding, is_decoder: bool = False):
        super().__init__()
        self.is_decoder = is_decoder
        self.embed_tokens = embed_tokens
        num_layers = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList(
            [T5Block(config, is_decoder=is_decoder, has_relative_attention_bias=i == 0) for i in range(num_layers)]
        )
        self.final_layer_norm = T5LayerNorm(config.d_model, eps=config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def init_cache(self, encoder_hidden_states: torch.Tensor, max_length: int) -> tuple:
        """Per layer (self_k, self_v, cross_k, cross_v); self buffers zeros (B, heads, max_length, d_kv),
        cross keys/values projected once from encoder_hidden_states (B, S, D) -> (B, heads, S, d_kv)."""
        if not self.is_decoder:
            raise ValueError("init_cache is for the decoder stack")
        batch = encoder_hidden_states.shape[0]
        cache = []
        for block in self.block:
            attention = block.layer[0].SelfAttention
            shape = (batch, attention.n_heads, max_length, attention.key_value_proj_dim)
            self_k = encoder_hidden_states.new_zeros(shape)
            self_v = encoder_hidden_states.new_zeros(shape)
            cache.append((self_k, self_v, *block.layer[1].EncDecAttention.project_key_value(encoder_hidden_states)))
        return tuple(cache)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        cache: tuple | None = None,
        cache_position: int | torch.Tensor = 0,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput | DecoderOutput:
        """input_ids (B, t): the tokens at positions cache_position .. cache_position+t-1.

        Encoder: attention_mask (B, S) hides padding; returns an EncoderOutput. Decoder: without a
        cache (teacher forcing) the queries attend to each other causally and attention_mask (B, t)
        hides padded target positions as keys; with a cache they attend to every cached position up
        to their own (masked by position only); encoder_hidden_states may be None when the cache
        holds the cross keys/values. Returns a DecoderOutput.
        """
        t = input_ids.shape[1]
        device = input_ids.device
        hidden = self.dropout(self.embed_tokens(input_ids))  # (B, t, D)

        query_positions = cache_position + torch.arange(t, device=device)  # (t,)
        if cache is None:
            num_keys = t
        elif isinstance(cache_position, int):
            num_keys = cache_position + t
            if num_keys > cache[0][0].shape[2]:
                raise ValueError(f"the cache holds {cache[0][0].shape[2]} positions; decoding past it ({num_keys})")
        else:
            num_keys = cache[0][0].shape[2]  # static: all of the buffer, masked by position
        # The first block's table gives the bias every block adds: (1, heads, t, keys) ...
        position_bias = self.block[0].layer[0].SelfAttention.compute_bias(query_positions, num_keys)
        # ... plus the mask, once for all blocks: (B or 1, heads, t, keys).
        allowed = None
        if self.is_decoder:  # causal: key position <= query position
            allowed = torch.arange(num_keys, device=device)[None, :] <= query_positions[:, None]  # (t, keys)
            allowed = allowed[None, None]  # (1, 1, t, keys)
        if attention_mask is not None:  # (B, keys)
            padding = attention_mask[:, None, None, :].bool()
            allowed = padding if allowed is None else allowed & padding
        if allowed is not None:
            position_bias = position_bias + additive_mask(allowed, position_bias.dtype)
        encoder_position_bias = None
        if self.is_decoder and encoder_attention_mask is not None:  # (B, 1, 1, S)
            encoder_position_bias = additive_mask(encoder_attention_mask[:, None, None, :].bool(), hidden.dtype)

        all_hidden = () if output_hidden_states else None
        all_self = () if output_attentions else None
        all_cross = () if output_attentions and self.is_decoder else None
        new_cache = [] if cache is not None else None
        for index, block in enumerate(self.block):
            if output_hidden_states:
                all_hidden += (hidden,)
            hidden, layer_cache, self_weights, cross_weights = block(
                hidden,
                position_bias,
                encoder_hidden_states,
                encoder_position_bias,
                layer_cache=cache[index] if cache is not None else None,
                cache_position=cache_position,
                output_attentions=output_attentions,
            )
            if cache is not None:
                new_cache.append(layer_cache)
            if output_attentions:
                all_self += (self_weights,)
                if self.is_decoder:
                    all_cross += (cross_weights,)
        hidden = self.dropout(self.final_layer_norm(hidden))
        if output_hidden_states:  # as HF: the last entry is the normalised output, not the last block's
            all_hidden += (hidden,)
        if not self.is_decoder:
            return EncoderOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_self)
        return DecoderOutput(
            last_hidden_state=hidden,
            cache=tuple(new_cache) if cache is not None else None,
            hidden_states=all_hidden,
            attentions=all_self,
            cross_attentions=all_cross,
        )


# ---- models ---------------------------------------------------------------------------------------------


class T5PreTrainedModel(PreTrainedModel):
    """Shared by the models with `shared`, `encoder` and `decoder`: the one embedding matrix is always
    both stacks' embed_tokens (as in HF, whatever tie_word_embeddings says)."""

    config_class = T5Config
    # Some old HF checkpoints hold a relative bias table in the decoder's first cross-attention,
    # which T5 never uses (HF ignores it on load too).
    checkpoint_keys_to_ignore = [r"^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$"]
    head_checkpoint_names = ("lm_head.weight",)  # the base model has the same names, no prefix

    def _init_weights(self, module: nn.Module) -> None:
        """HF's initialisation, for training from scratch (from_pretrained overwrites it)."""
        factor = self.config.initializer_factor
        d_model, d_kv, d_ff, heads = self.config.d_model, self.config.d_kv, self.config.d_ff, self.config.num_heads
        if isinstance(module, T5LayerNorm):
            nn.init.constant_(module.weight, factor)
        elif isinstance(module, T5DenseActDense):
            nn.init.normal_(module.wi.weight, mean=0.0, std=factor * d_model**-0.5)
            nn.init.normal_(module.wo.weight, mean=0.0, std=factor * d_ff**-0.5)
        elif isinstance(module, T5DenseGatedActDense):
            nn.init.normal_(module.wi_0.weight, mean=0.0, std=factor * d_model**-0.5)
            nn.init.normal_(module.wi_1.weight, mean=0.0, std=factor * d_model**-0.5)
            nn.init.normal_(module.wo.weight, mean=0.0, std=factor * d_ff**-0.5)
        elif isinstance(module, T5Attention):
            nn.init.normal_(module.q.weight, mean=0.0, std=factor * (d_model * d_kv) ** -0.5)
            nn.init.normal_(module.k.weight, mean=0.0, std=factor * d_model**-0.5)
            nn.init.normal_(module.v.weight, mean=0.0, std=factor * d_model**-0.5)
            nn.init.normal_(module.o.weight, mean=0.0, std=factor * (heads * d_kv) ** -0.5)
            if module.has_relative_attention_bias:
                nn.init.normal_(module.relative_attention_bias.weight, mean=0.0, std=factor * d_model**-0.5)
        elif module is self.shared:
            nn.init.normal_(module.weight, mean=0.0, std=factor * 1.0)

    def tied_weights(self) -> dict[str, str]:
        return {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        """`shared`, which is always both stacks' embeddings."""
        self.shared = self.encoder.embed_tokens = self.decoder.embed_tokens = value

    def vocab_parameters(self) -> list[str]:
        return ["shared.weight"]

    def _encode_decode(
        self,
        input_ids: torch.Tensor | None,
        attention_mask: torch.Tensor | None,
        decoder_input_ids: torch.Tensor | None,
        decoder_attention_mask: torch.Tensor | None,
        encoder_outputs: EncoderOutput | tuple | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
    ) -> Seq2SeqModelOutput:
        """The teacher-forced pass of both stacks (T5Model and T5ForConditionalGeneration)."""
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
            raise ValueError("pass decoder_input_ids (or labels to T5ForConditionalGeneration)")
        decoder_outputs = self.decoder(
            decoder_input_ids,
            decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
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


class T5Model(T5PreTrainedModel):
    """The bare encoder-decoder: `shared`, `encoder`, `decoder` (HF's names, no prefix)."""

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.apply(self._init_weights)
        self.tie_weights()

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
        return self._encode_decode(
            input_ids,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs,
            output_attentions,
            output_hidden_states,
        )


def checkpoint_ties_head(state_dict: dict[str, torch.Tensor]) -> bool:
    """Whether a checkpoint's LM head is `shared`, decided as Hugging Face 5 does for T5 whatever the
    config says: tied unless it holds an lm_head.weight that differs from shared.weight."""
    head, shared = state_dict.get("lm_head.weight"), state_dict.get("shared.weight")
    if head is None or shared is None:
        return True
    return head.shape == shared.shape and torch.equal(head, shared)


class T5ForConditionalGeneration(T5PreTrainedModel):
    """T5 with the language-model head: logits = lm_head(decoder output, times d_model**-0.5 when
    config.scale_decoder_outputs). The head is `shared` when config.tie_word_embeddings."""

    def __init__(self, config: T5Config):
        super().__init__(config)
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, self.shared, is_decoder=False)
        self.decoder = T5Stack(config, self.shared, is_decoder=True)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.apply(self._init_weights)
        if not config.tie_word_embeddings:
            nn.init.normal_(self.lm_head.weight, mean=0.0, std=config.initializer_factor * 1.0)
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        tied = super().tied_weights()
        if self.config.tie_word_embeddings:
            tied["lm_head.weight"] = "shared.weight"
        return tied

    def load_checkpoint(self, state_dict: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Ties or unties the head as the checkpoint says (see checkpoint_ties_head), records it in
        config.tie_word_embeddings (so saving writes what was loaded), then loads."""
        tie = checkpoint_ties_head(state_dict)
        if tie != self.config.tie_word_embeddings:
            self.config.tie_word_embeddings = tie
            if not tie:  # a parameter of its own, filled from the checkpoint next
                self.lm_head.weight = nn.Parameter(self.lm_head.weight.detach().clone())
        super().load_checkpoint(state_dict, source)

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        super().set_input_embeddings(value)
        self.tie_weights()

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.get_output_embeddings
    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.set_output_embeddings
    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def vocab_parameters(self) -> list[str]:
        return ["shared.weight", "lm_head.weight"]

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.prepare_decoder_input_ids_from_labels
    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing decoder inputs from labels (what DataCollatorForSeq2Seq calls)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

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
        outputs = self._encode_decode(
            input_ids,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs,
            output_attentions,
            output_hidden_states,
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

    def lm_head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        # Original T5 rescales before its tied head (the embeddings are large, std 1).
        if self.config.scale_decoder_outputs:
            hidden = hidden * self.config.d_model**-0.5
        return linear(self.lm_head, hidden)

    # ---- what generation needs (docs/internals.md) ------------------------------------------------------

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        return self.encoder(
            input_ids,
            attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )

    def init_cache(self, encoder_hidden_states: torch.Tensor, max_length: int) -> tuple:
        return self.decoder.init_cache(encoder_hidden_states, max_length)

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

        The position bias is that of queries cache_position .. cache_position+t-1 against keys
        0 .. (cache_position+t-1, or max_length-1 when cache_position is a tensor), masked beyond each
        query's own position. The self-attention buffers of `cache` are updated in place (when
        autograd is not recording) and the same cache is returned; run generation under torch.no_grad().
        """
        outputs = self.decoder(
            decoder_input_ids,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            cache=cache,
            cache_position=cache_position,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        return self.lm_head_logits(outputs.last_hidden_state), outputs.cache, outputs

    # Copied from westron.models.marian.modeling_marian.MarianMTModel.reorder_cache
    @staticmethod
    def reorder_cache(cache: tuple, beam_indices: torch.Tensor) -> tuple:
        """Picks the batch rows beam_indices (B,) of the self-attention keys/values; the cross
        keys/values are the same for every beam of a sentence and stay as they are."""
        return tuple(
            (self_k.index_select(0, beam_indices), self_v.index_select(0, beam_indices), cross_k, cross_v)
            for self_k, self_v, cross_k, cross_v in cache
        )
