"""TensorFlow Marian (Keras 3, TF backend): the twin of modeling_marian.py.

A post-LayerNorm encoder-decoder Transformer with static sinusoidal positions, the architecture of
the Helsinki-NLP opus-mt checkpoints. Same classes in the same order as the PyTorch file, prefixed
TF. Every Keras sublayer is named after its PyTorch attribute, so the variable
`tf_marian_mt_model/model/encoder/layers.0/self_attn/q_proj/kernel` is the checkpoint tensor
`model.encoder.layers.0.self_attn.q_proj.weight` (transposed) by the one rule of
`westron.checkpoint.tf_to_checkpoint_name`.

Runs eagerly, inside `tf.function` and under XLA (`jit_compile=True`). The decoder's self-attention
cache has a static size (B, heads, max_length, head_dim) and is written with dynamic_update_slice,
so a whole decoding loop compiles. Decoding (greedy, beam, sampling) is not here: the model offers
`encode`, `init_cache`, `decode` and `reorder_cache`, and westron/generation/tf_search.py searches.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from westron.errors import WestronError
from westron.modeling_outputs import DecoderOutput, EncoderOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from westron.modeling_tf_utils import TFPreTrainedModel, replace_variable
from westron.models.marian.configuration_marian import MarianConfig

# ---- activations: Hugging Face's ACT2FN names, the same numerics -------------------------------------


def gelu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=False)  # exact (erf), HF's "gelu"


def gelu_new(x: tf.Tensor) -> tf.Tensor:
    # HF's NewGELUActivation, written out as the PyTorch twin does.
    return 0.5 * x * (1.0 + tf.math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3.0))))


def gelu_fast(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * x * (1.0 + tf.math.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def quick_gelu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.math.sigmoid(1.702 * x)


def gelu_pytorch_tanh(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=True)


def leaky_relu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.leaky_relu(x, alpha=0.01)  # as nn.LeakyReLU()


def mish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.math.tanh(tf.math.softplus(x))


def linear_activation(x: tf.Tensor) -> tf.Tensor:
    return x


ACT2FN = {
    "gelu": gelu,
    "gelu_new": gelu_new,
    "gelu_fast": gelu_fast,
    "gelu_pytorch_tanh": gelu_pytorch_tanh,
    "quick_gelu": quick_gelu,
    "relu": tf.nn.relu,
    "relu6": tf.nn.relu6,
    "leaky_relu": leaky_relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,  # the older name of silu
    "mish": mish,
    "sigmoid": tf.math.sigmoid,
    "tanh": tf.math.tanh,
    "linear": linear_activation,
}


def get_activation(name: str):
    if name not in ACT2FN:
        raise WestronError(f"activation_function {name!r} is not supported (known: {', '.join(sorted(ACT2FN))})")
    return ACT2FN[name]


# ---- helpers -----------------------------------------------------------------------------------------


def shift_tokens_right(labels: tf.Tensor, pad_token_id: int, decoder_start_token_id: int) -> tf.Tensor:
    """Decoder inputs for teacher forcing: the start token, then labels[:-1], with -100 replaced by pad."""
    if pad_token_id is None or decoder_start_token_id is None:
        raise ValueError("config.pad_token_id and config.decoder_start_token_id must be set to shift labels")
    labels = tf.convert_to_tensor(labels)
    start = tf.fill((tf.shape(labels)[0], 1), tf.constant(decoder_start_token_id, labels.dtype))
    shifted = tf.concat([start, labels[:, :-1]], axis=1)
    return tf.where(shifted == -100, tf.constant(pad_token_id, labels.dtype), shifted)


def additive_mask(allowed: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Boolean "may attend" mask -> 0 where allowed, the dtype's minimum where not (added to the scores)."""
    return tf.where(allowed, tf.zeros((), dtype), tf.constant(dtype.min, dtype))


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


def masked_cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the labels that are not -100 (torch's cross_entropy default), in float32."""
    keep = labels != -100
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(keep, labels, tf.zeros_like(labels)), logits=tf.cast(logits, tf.float32)
    )
    keep = tf.cast(keep, tf.float32)
    return tf.reduce_sum(losses * keep) / tf.reduce_sum(keep)


def _layer_norm(name: str) -> keras.layers.LayerNormalization:
    return keras.layers.LayerNormalization(epsilon=1e-5, name=name)  # torch's default epsilon, not Keras' 1e-3


# ---- layers --------------------------------------------------------------------------------------------


class _Block(keras.layers.Layer):
    """A layer made of sublayers. Its build() creates nothing: each sublayer builds itself on its first
    call, inside this layer's name scope, so variable paths follow the attribute names. (Without a
    build(), Keras would first trace call() symbolically to build the sublayers: several times slower.)"""

    def build(self, input_shape=None):
        pass


class TFMarianSinusoidalPositionalEmbedding(_Block):
    """Static sinusoidal positions: a constant computed at construction, never a variable, loaded or saved."""

    def __init__(self, num_positions: int, embedding_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.weight = tf.constant(sinusoidal_table(num_positions, embedding_dim))

    def call(self, positions: tf.Tensor) -> tf.Tensor:
        # positions: (t,) int -> (t, dim), in the layer's compute dtype (bfloat16 under a bfloat16 policy)
        return tf.cast(tf.gather(self.weight, positions), self.compute_dtype)


class TFMarianAttention(_Block):
    """Multi-head attention (self or cross), with an optional key/value cache."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.dropout = keras.layers.Dropout(dropout)
        self.k_proj = keras.layers.Dense(embed_dim, use_bias=bias, name="k_proj")
        self.v_proj = keras.layers.Dense(embed_dim, use_bias=bias, name="v_proj")
        self.q_proj = keras.layers.Dense(embed_dim, use_bias=bias, name="q_proj")
        self.out_proj = keras.layers.Dense(embed_dim, use_bias=bias, name="out_proj")

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        # (B, L, D) -> (B, heads, L, head_dim)
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(x, (batch, length, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def project_key_value(self, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.split_heads(self.k_proj(states)), self.split_heads(self.v_proj(states))

    def call(
        self,
        hidden_states: tf.Tensor,
        key_value_states: tf.Tensor | None = None,
        attention_mask: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        cache_position: int | tf.Tensor | None = None,
        output_attentions: bool = False,
        training: bool = False,
    ) -> tuple[tf.Tensor, tf.Tensor | None, tuple[tf.Tensor, tf.Tensor] | None]:
        """Returns (output (B, t, D), weights (B, heads, t, keys) or None, the key/value cache or None).

        hidden_states: (B, t, D), the queries. attention_mask: additive, broadcastable to (B, heads, t, keys).
        Self-attention (key_value_states None): keys and values come from hidden_states; with a
        `past_key_value` of static buffers (B, heads, max_length, head_dim) they are written there at
        positions cache_position .. cache_position+t-1 (dynamic_update_slice: XLA updates the buffer
        in place) and the queries attend over the buffers (the first cache_position+t keys when
        cache_position is an int, else all max_length: the mask hides the rest). Cross-attention:
        keys and values come from key_value_states (B, S, D), or from `past_key_value` when they were
        computed once already (init_cache).
        """
        query = self.split_heads(self.q_proj(hidden_states))  # (B, heads, t, head_dim)
        if key_value_states is None:  # self-attention
            key, value = self.project_key_value(hidden_states)
            if past_key_value is not None:
                start = tf.stack([0, 0, tf.cast(cache_position, tf.int32), 0])
                key_cache = dynamic_update_slice(past_key_value[0], key, start)
                value_cache = dynamic_update_slice(past_key_value[1], value, start)
                past_key_value = (key_cache, value_cache)
                if isinstance(cache_position, int):  # eager decoding: skip the empty tail of the buffer
                    end = cache_position + hidden_states.shape[1]
                    key, value = key_cache[:, :, :end], value_cache[:, :, :end]
                else:
                    key, value = key_cache, value_cache
        elif past_key_value is not None:  # cross-attention, keys/values cached
            key, value = past_key_value
        else:
            key, value = self.project_key_value(key_value_states)

        scores = tf.matmul(query, key, transpose_b=True) * self.scaling  # (B, heads, t, keys)
        if attention_mask is not None:
            scores = scores + attention_mask
        weights = tf.nn.softmax(scores, axis=-1)
        output = tf.matmul(self.dropout(weights, training=training), value)  # (B, heads, t, head_dim)
        batch, t = tf.shape(output)[0], tf.shape(output)[2]
        output = tf.reshape(tf.transpose(output, (0, 2, 1, 3)), (batch, t, self.embed_dim))  # (B, t, D)
        return self.out_proj(output), weights if output_attentions else None, past_key_value


def clamp_overflow_fp16(hidden: tf.Tensor) -> tf.Tensor:
    """As HF's Marian: once a float16 activation is not finite, clamp them all into range (max - 1000).
    A select rather than a Python branch, so it traces into one graph."""
    if hidden.dtype != tf.float16:
        return hidden
    clamp = np.finfo(np.float16).max - 1000
    return tf.where(tf.reduce_all(tf.math.is_finite(hidden)), hidden, tf.clip_by_value(hidden, -clamp, clamp))


class TFMarianEncoderLayer(_Block):
    def __init__(self, config: MarianConfig, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = config.d_model
        self.self_attn = TFMarianAttention(
            self.embed_dim, config.encoder_attention_heads, dropout=config.attention_dropout, name="self_attn"
        )
        self.self_attn_layer_norm = _layer_norm("self_attn_layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = keras.layers.Dropout(config.activation_dropout)
        self.fc1 = keras.layers.Dense(config.encoder_ffn_dim, name="fc1")
        self.fc2 = keras.layers.Dense(self.embed_dim, name="fc2")
        self.final_layer_norm = _layer_norm("final_layer_norm")

    def call(
        self,
        hidden: tf.Tensor,
        attention_mask: tf.Tensor | None,
        output_attentions: bool = False,
        training: bool = False,
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        # hidden: (B, S, D); Marian is post-LN: add the residual, then normalise.
        attended, weights, _ = self.self_attn(
            hidden, attention_mask=attention_mask, output_attentions=output_attentions, training=training
        )
        hidden = self.self_attn_layer_norm(hidden + self._dropout(attended, training))
        hidden = self.final_layer_norm(hidden + self._dropout(self._feed_forward(hidden, training), training))
        hidden = clamp_overflow_fp16(hidden)
        return hidden, weights

    def _feed_forward(self, hidden: tf.Tensor, training: bool) -> tf.Tensor:
        hidden = self.activation_fn(self.fc1(hidden))  # (B, L, ffn_dim)
        return self.fc2(self.activation_dropout(hidden, training=training))

    def _dropout(self, hidden: tf.Tensor, training: bool) -> tf.Tensor:
        return self.dropout(hidden, training=training)


class TFMarianDecoderLayer(_Block):
    def __init__(self, config: MarianConfig, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = config.d_model
        self.self_attn = TFMarianAttention(
            self.embed_dim,
            config.decoder_attention_heads,
            dropout=config.attention_dropout,
            name="self_attn",
        )
        self.dropout = keras.layers.Dropout(config.dropout)
        self.activation_fn = get_activation(config.activation_function)
        self.activation_dropout = keras.layers.Dropout(config.activation_dropout)
        self.self_attn_layer_norm = _layer_norm("self_attn_layer_norm")
        self.encoder_attn = TFMarianAttention(
            self.embed_dim,
            config.decoder_attention_heads,
            dropout=config.attention_dropout,
            name="encoder_attn",
        )
        self.encoder_attn_layer_norm = _layer_norm("encoder_attn_layer_norm")
        self.fc1 = keras.layers.Dense(config.decoder_ffn_dim, name="fc1")
        self.fc2 = keras.layers.Dense(self.embed_dim, name="fc2")
        self.final_layer_norm = _layer_norm("final_layer_norm")

    def call(
        self,
        hidden: tf.Tensor,
        attention_mask: tf.Tensor | None,
        encoder_hidden_states: tf.Tensor | None,
        encoder_attention_mask: tf.Tensor | None,
        layer_cache: tuple[tf.Tensor, ...] | None = None,
        cache_position: int | tf.Tensor | None = None,
        output_attentions: bool = False,
        training: bool = False,
    ):
        """Returns (hidden (B, t, D), layer_cache, self-attention weights, cross-attention weights).

        layer_cache: (self_k, self_v, cross_k, cross_v) or None (a full teacher-forced pass).
        """
        self_kv = cross_kv = None
        if layer_cache is not None:
            self_kv, cross_kv = tuple(layer_cache[:2]), tuple(layer_cache[2:])
        attended, self_weights, self_kv = self.self_attn(
            hidden,
            attention_mask=attention_mask,
            past_key_value=self_kv,
            cache_position=cache_position,
            output_attentions=output_attentions,
            training=training,
        )
        hidden = self.self_attn_layer_norm(hidden + self._dropout(attended, training))
        attended, cross_weights, _ = self.encoder_attn(
            hidden,
            key_value_states=encoder_hidden_states,
            attention_mask=encoder_attention_mask,
            past_key_value=cross_kv,
            output_attentions=output_attentions,
            training=training,
        )
        hidden = self.encoder_attn_layer_norm(hidden + self._dropout(attended, training))
        hidden = self.final_layer_norm(hidden + self._dropout(self._feed_forward(hidden, training), training))
        if layer_cache is not None:
            layer_cache = (*self_kv, *cross_kv)
        return hidden, layer_cache, self_weights, cross_weights

    # Copied from westron.models.marian.modeling_tf_marian.TFMarianEncoderLayer._feed_forward
    def _feed_forward(self, hidden: tf.Tensor, training: bool) -> tf.Tensor:
        hidden = self.activation_fn(self.fc1(hidden))  # (B, L, ffn_dim)
        return self.fc2(self.activation_dropout(hidden, training=training))

    # Copied from westron.models.marian.modeling_tf_marian.TFMarianEncoderLayer._dropout
    def _dropout(self, hidden: tf.Tensor, training: bool) -> tf.Tensor:
        return self.dropout(hidden, training=training)


# ---- stacks ---------------------------------------------------------------------------------------------


def _layer_drop(layer_output, layer_input, layerdrop: float, training: bool):
    """LayerDrop (https://arxiv.org/abs/1909.11556) while training: keep the input instead of the layer's
    output with probability `layerdrop`. A select rather than a Python branch, so the graph (and XLA)
    has one shape and every layer's variables exist; the dropped layer's output gets no gradient.
    The PyTorch twin does the same, so hidden_states and attentions hold one entry per layer in both."""
    if not training or layerdrop <= 0.0:
        return layer_output
    return tf.where(tf.random.uniform([]) < layerdrop, layer_input, layer_output)


class TFMarianEncoder(_Block):
    def __init__(self, config: MarianConfig, embed_tokens: keras.layers.Embedding, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.layerdrop = config.encoder_layerdrop
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = TFMarianSinusoidalPositionalEmbedding(
            config.max_position_embeddings, config.d_model, name="embed_positions"
        )
        self.layers = [TFMarianEncoderLayer(config, name=f"layers.{i}") for i in range(config.encoder_layers)]

    def call(
        self,
        input_ids: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        training: bool = False,
    ) -> EncoderOutput:
        # input_ids, attention_mask: (B, S); attention_mask 1 for tokens, 0 for padding.
        positions = tf.range(tf.shape(input_ids)[1])
        hidden = self.embed_tokens(input_ids) * self.embed_scale + self.embed_positions(positions)  # (B, S, D)
        hidden = self.dropout(hidden, training=training)
        mask = None
        if attention_mask is not None:  # (B, 1, 1, S): padding is hidden from every query
            mask = additive_mask(tf.cast(attention_mask, tf.bool)[:, None, None, :], hidden.dtype)

        all_hidden = (hidden,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.layers:
            layer_hidden, weights = layer(hidden, mask, output_attentions=output_attentions, training=training)
            hidden = _layer_drop(layer_hidden, hidden, self.layerdrop, training)
            if output_hidden_states:
                all_hidden += (hidden,)
            if output_attentions:
                all_attentions += (weights,)
        return EncoderOutput(last_hidden_state=hidden, hidden_states=all_hidden, attentions=all_attentions)


class TFMarianDecoder(_Block):
    def __init__(self, config: MarianConfig, embed_tokens: keras.layers.Embedding, **kwargs):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(config.dropout)
        self.layerdrop = config.decoder_layerdrop
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens
        self.embed_positions = TFMarianSinusoidalPositionalEmbedding(
            config.max_position_embeddings, config.d_model, name="embed_positions"
        )
        self.layers = [TFMarianDecoderLayer(config, name=f"layers.{i}") for i in range(config.decoder_layers)]

    def init_cache(self, encoder_hidden_states: tf.Tensor, max_length: int) -> tuple:
        """Per layer (self_k, self_v, cross_k, cross_v); self buffers zeros (B, heads, max_length, head_dim),
        cross keys/values projected once from encoder_hidden_states (B, S, D) -> (B, heads, S, head_dim)."""
        batch = tf.shape(encoder_hidden_states)[0]
        cache = []
        for layer in self.layers:
            attention = layer.self_attn
            zeros = tf.zeros((batch, attention.num_heads, max_length, attention.head_dim), encoder_hidden_states.dtype)
            cache.append((zeros, zeros, *layer.encoder_attn.project_key_value(encoder_hidden_states)))
        return tuple(cache)

    def call(
        self,
        input_ids: tf.Tensor,
        encoder_hidden_states: tf.Tensor | None,
        encoder_attention_mask: tf.Tensor | None = None,
        attention_mask: tf.Tensor | None = None,
        cache: tuple | None = None,
        cache_position: int | tf.Tensor = 0,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        training: bool = False,
    ) -> DecoderOutput:
        """input_ids (B, t): the tokens at positions cache_position .. cache_position+t-1.

        Without a cache (teacher forcing) cache_position is 0 and the queries attend to each other
        causally; attention_mask (B, t) hides padded target positions as keys. With a cache, the
        queries attend to every cached position up to their own (masked by position only).
        """
        t = tf.shape(input_ids)[1]
        if not isinstance(cache_position, int):
            cache_position = tf.cast(cache_position, tf.int32)
        query_positions = cache_position + tf.range(t)  # (t,)
        hidden = self.embed_tokens(input_ids) * self.embed_scale + self.embed_positions(query_positions)
        hidden = self.dropout(hidden, training=training)  # (B, t, D)

        if cache is None:
            num_keys = t
        elif isinstance(cache_position, int):
            num_keys = cache_position + input_ids.shape[1]
            if num_keys > cache[0][0].shape[2]:
                raise ValueError(f"the cache holds {cache[0][0].shape[2]} positions; decoding past it ({num_keys})")
        else:
            num_keys = tf.shape(cache[0][0])[2]  # static: all of the buffer, masked by position
        allowed = tf.range(num_keys)[None, :] <= query_positions[:, None]  # (t, keys)
        allowed = allowed[None, None]  # (1, 1, t, keys)
        if attention_mask is not None:  # (B, keys)
            allowed = tf.logical_and(allowed, tf.cast(attention_mask, tf.bool)[:, None, None, :])
        self_mask = additive_mask(allowed, hidden.dtype)
        cross_mask = None
        if encoder_attention_mask is not None:  # (B, 1, 1, S)
            cross_mask = additive_mask(tf.cast(encoder_attention_mask, tf.bool)[:, None, None, :], hidden.dtype)

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
                training=training,
            )
            # LayerDrop while training only (never with a cache)
            hidden = _layer_drop(layer_hidden, hidden, self.layerdrop, training and cache is None)
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


class TFMarianPreTrainedModel(TFPreTrainedModel):
    config_class = MarianConfig
    # HF checkpoints before transformers 5 saved the sinusoidal tables; they are computed here.
    checkpoint_keys_to_ignore = [r"(^|\.)embed_positions\.weight$"]
    base_model_prefix = "model"
    head_checkpoint_names = ("lm_head.weight", "final_logits_bias")

    def _init_weights(self, layer: keras.layers.Layer) -> None:
        """HF's initialisation, for training from scratch (from_pretrained overwrites it). Keras variables
        do not exist yet: this sets the initializers each sublayer builds its variables with."""
        std = self.config.init_std
        if isinstance(layer, keras.layers.Dense):
            layer.kernel_initializer = keras.initializers.RandomNormal(stddev=std)  # bias: zeros, Keras' default
        elif isinstance(layer, _PaddingIdxEmbedding):
            layer.embeddings_initializer = _PaddingRowZero(std, layer.padding_idx)
        # LayerNormalization: ones and zeros, Keras' default.

    def init_weights(self) -> None:
        for layer in self._flatten_layers(include_self=False, recursive=True):
            self._init_weights(layer)


class _PaddingRowZero(keras.initializers.Initializer):
    """normal(0, stddev) with the padding row zeroed, as torch initialises nn.Embedding(padding_idx)."""

    def __init__(self, stddev: float, padding_idx: int | None):
        self.stddev = stddev
        self.padding_idx = padding_idx

    def __call__(self, shape, dtype=None):
        values = keras.random.normal(shape, stddev=self.stddev, dtype=dtype)
        if self.padding_idx is None:
            return values
        keep = tf.range(shape[0])[:, None] != self.padding_idx
        return tf.where(keep, values, tf.zeros_like(values))

    def get_config(self):
        return {"stddev": self.stddev, "padding_idx": self.padding_idx}


class _PaddingIdxEmbedding(keras.layers.Embedding):
    """keras Embedding with torch's nn.Embedding(padding_idx) semantics: the padding row starts at zero
    and a lookup of the padding id sends no gradient to it (the tied LM head still trains it, as in torch)."""

    def __init__(self, input_dim: int, output_dim: int, padding_idx: int | None, **kwargs):
        super().__init__(input_dim, output_dim, embeddings_initializer=_PaddingRowZero(1.0, padding_idx), **kwargs)
        self.padding_idx = padding_idx

    def call(self, inputs):
        embeds = super().call(inputs)
        if self.padding_idx is None:
            return embeds
        is_padding = tf.equal(inputs, tf.cast(self.padding_idx, inputs.dtype))[..., None]
        return tf.where(is_padding, tf.stop_gradient(embeds), embeds)


def _embedding(config: MarianConfig, vocab_size: int, name: str) -> keras.layers.Embedding:
    padding_idx = config.pad_token_id if config.pad_token_id is not None and config.pad_token_id < vocab_size else None
    return _PaddingIdxEmbedding(vocab_size, config.d_model, padding_idx, name=name)


class TFMarianModel(TFMarianPreTrainedModel):
    """The encoder and decoder; `shared` holds the one vocabulary's embeddings when it is shared.

    Tying follows Hugging Face transformers 5: with a shared vocabulary and tie_word_embeddings the
    encoder's and decoder's embeddings are `shared` itself (one variable); with
    tie_word_embeddings=False all three are separate variables (HF 5 saves and loads each one, and
    `shared` is then unused).
    """

    def __init__(self, config: MarianConfig, **kwargs):
        kwargs.setdefault("name", "tf_marian_model")
        super().__init__(config, **kwargs)
        self.shared = None
        if config.share_encoder_decoder_embeddings:
            self.shared = _embedding(config, config.vocab_size, "shared")
            if config.tie_word_embeddings:
                encoder_embeddings = decoder_embeddings = self.shared
            else:
                encoder_embeddings = _embedding(config, config.vocab_size, "embed_tokens")
                decoder_embeddings = _embedding(config, config.vocab_size, "embed_tokens")
        else:
            encoder_embeddings = _embedding(config, config.vocab_size, "embed_tokens")
            decoder_embeddings = _embedding(config, config.decoder_vocab_size, "embed_tokens")
        self.encoder = TFMarianEncoder(config, encoder_embeddings, name="encoder")
        self.decoder = TFMarianDecoder(config, decoder_embeddings, name="decoder")
        self.init_weights()

    def tied_weights(self) -> dict[str, str]:
        if self.config.share_encoder_decoder_embeddings and self.config.tie_word_embeddings:
            return {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}
        return {}

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.encoder.embed_tokens

    def vocab_parameters(self) -> list[str]:
        if self.config.share_encoder_decoder_embeddings:
            return ["shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]
        return ["encoder.embed_tokens.weight"]  # the decoder's vocabulary is another one

    def build(self, input_shape=None):
        # `shared` is built here, in this model's name scope, so its one variable is
        # `<...>/model/shared/embeddings` (-> model.shared.weight) and not under the encoder, its first user.
        if self.shared is not None and not self.shared.built:
            self.shared.build(None)
        self.built = True

    def call(
        self,
        input_ids: tf.Tensor | None = None,
        attention_mask: tf.Tensor | None = None,
        decoder_input_ids: tf.Tensor | None = None,
        decoder_attention_mask: tf.Tensor | None = None,
        encoder_outputs: EncoderOutput | tuple | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        training: bool = False,
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
                training=training,
            )
        elif not isinstance(encoder_outputs, EncoderOutput):  # HF style: a tuple, hidden states first
            encoder_outputs = EncoderOutput(*encoder_outputs)
        if decoder_input_ids is None:
            raise ValueError("pass decoder_input_ids (or labels to the TFMarianMTModel)")
        decoder_outputs = self.decoder(
            decoder_input_ids,
            encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
            attention_mask=decoder_attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            training=training,
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


class TFMarianMTModel(TFMarianPreTrainedModel):
    """TFMarianModel with the language-model head: logits = lm_head(decoder states) + final_logits_bias.

    Tied, the head is the decoder's embedding matrix transposed (no variable of its own); untied, a
    Dense layer `lm_head` without bias.
    """

    buffer_names = ("final_logits_bias",)  # a buffer in PyTorch

    def __init__(self, config: MarianConfig, **kwargs):
        kwargs.setdefault("name", "tf_marian_mt_model")
        super().__init__(config, **kwargs)
        self.model = TFMarianModel(config, name="model")
        self.target_vocab_size = (
            config.vocab_size if config.share_encoder_decoder_embeddings else config.decoder_vocab_size
        )
        self.lm_head = None
        if not config.tie_word_embeddings:
            self.lm_head = keras.layers.Dense(self.target_vocab_size, use_bias=False, name="lm_head")
        self.init_weights()

    def build(self, input_shape=None):
        # A saved, untrained buffer in PyTorch (as in HF and in the opus-mt checkpoints): not trainable here.
        self.final_logits_bias = self.add_weight(
            name="final_logits_bias", shape=(1, self.target_vocab_size), initializer="zeros", trainable=False
        )
        self.built = True

    def tied_weights(self) -> dict[str, str]:
        if not self.config.tie_word_embeddings:
            return {}
        tied = {f"model.{name}": f"model.{source}" for name, source in self.model.tied_weights().items()}
        if self.config.share_encoder_decoder_embeddings:
            tied["lm_head.weight"] = "model.shared.weight"
        else:
            tied["lm_head.weight"] = "model.decoder.embed_tokens.weight"
        return tied

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.model.get_input_embeddings()

    def get_output_embeddings(self) -> keras.layers.Layer:
        return self.lm_head if self.lm_head is not None else self.model.decoder.embed_tokens

    def vocab_parameters(self) -> list[str]:
        names = [f"model.{name}" for name in self.model.vocab_parameters()]
        if self.config.share_encoder_decoder_embeddings:  # else the head predicts the decoder's vocabulary
            names.append("lm_head.weight")
        return names

    def _vocab_resized(self, new_num_tokens: int) -> None:
        self.config.vocab_size = new_num_tokens
        if self.config.share_encoder_decoder_embeddings:
            self.config.decoder_vocab_size = new_num_tokens
            self.target_vocab_size = new_num_tokens
            bias = self.final_logits_bias.numpy()[:, :new_num_tokens]  # (1, V): kept values, zeros for added tokens
            added = np.zeros((1, new_num_tokens - bias.shape[1]), bias.dtype)
            replace_variable(self, self.final_logits_bias, np.concatenate([bias, added], axis=1))

    def prepare_decoder_input_ids_from_labels(self, labels: tf.Tensor) -> tf.Tensor:
        """Teacher-forcing decoder inputs from labels (what DataCollatorForSeq2Seq calls)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    def lm_head_logits(self, hidden: tf.Tensor) -> tf.Tensor:
        """(B, t, D) -> (B, t, V): the head (own or tied) plus final_logits_bias."""
        if self.lm_head is not None:
            logits = self.lm_head(hidden)
        else:
            # As a 2-D matmul with transpose_b: no copy of the (V, D) matrix per call.
            batch, t = tf.shape(hidden)[0], tf.shape(hidden)[1]
            embeddings = self.model.decoder.embed_tokens.embeddings  # (V, D)
            flat = tf.reshape(hidden, (-1, hidden.shape[-1]))
            logits = tf.matmul(flat, tf.cast(embeddings, hidden.dtype), transpose_b=True)
            logits = tf.reshape(logits, (batch, t, -1))
        return logits + tf.cast(self.final_logits_bias, logits.dtype)

    def call(
        self,
        input_ids: tf.Tensor | None = None,
        attention_mask: tf.Tensor | None = None,
        decoder_input_ids: tf.Tensor | None = None,
        decoder_attention_mask: tf.Tensor | None = None,
        encoder_outputs: EncoderOutput | tuple | None = None,
        labels: tf.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        training: bool = False,
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
            training=training,
        )
        logits = self.lm_head_logits(outputs.last_hidden_state)  # (B, t, V)
        loss = None
        if labels is not None:
            loss = masked_cross_entropy(logits, labels)
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
        input_ids: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        self.build_weights()
        return self.model.encoder(
            input_ids,
            attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )

    def init_cache(self, encoder_hidden_states: tf.Tensor, max_length: int) -> tuple:
        self.build_weights()
        return self.model.decoder.init_cache(encoder_hidden_states, max_length)

    def decode(
        self,
        decoder_input_ids: tf.Tensor,
        encoder_hidden_states: tf.Tensor | None,
        encoder_attention_mask: tf.Tensor | None,
        cache: tuple,
        cache_position: int | tf.Tensor,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> tuple[tf.Tensor, tuple, DecoderOutput]:
        """One decoder step over t new tokens: (logits (B, t, V), cache, the decoder's outputs).

        The DecoderOutput holds the per-layer attentions, cross-attentions and hidden states when
        output_attentions / output_hidden_states ask for them (None otherwise).

        TensorFlow tensors are immutable: the returned cache holds the updated self-attention
        buffers (under XLA, dynamic_update_slice in a loop updates them in place).
        cache_position: a Python int (eager: attends only to the filled part of the buffers) or a
        scalar int tensor (inside tf.function / XLA: one shape for every step). cache_position + t
        must not pass max_length: an int is checked; a tensor is not (XLA clamps the write).
        """
        self.build_weights()
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
    def reorder_cache(cache: tuple, beam_indices: tf.Tensor) -> tuple:
        """Picks the batch rows beam_indices (B,) of the self-attention keys/values; the cross
        keys/values are the same for every beam of a sentence and stay as they are.

        The cache keeps its static shapes (B is the cache's batch size), so it can be a
        tf.while_loop variable even when beam_indices has a dynamic length.
        """
        return tuple(
            (
                tf.ensure_shape(tf.gather(self_k, beam_indices), self_k.shape),
                tf.ensure_shape(tf.gather(self_v, beam_indices), self_v.shape),
                cross_k,
                cross_v,
            )
            for self_k, self_v, cross_k, cross_v in cache
        )
