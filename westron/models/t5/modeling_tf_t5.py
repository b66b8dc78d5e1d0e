"""TensorFlow T5 (Keras 3, TF backend): the twin of modeling_t5.py (t5, t5 v1.1, flan-t5, mT5).

A pre-LayerNorm encoder-decoder Transformer without position embeddings: each stack's first layer
holds a learned bias per head and per bucket of relative distance (key - query), added to every
layer's attention scores. RMS layer norms without bias, no biases anywhere, no 1/sqrt(d) scaling of
the scores. Same classes in the same order as the PyTorch file, prefixed TF. Every Keras sublayer
is named after its PyTorch attribute, so the variable
`tf_t5_for_conditional_generation/encoder/block.0/layer.0/SelfAttention/q/kernel` is the checkpoint
tensor `encoder.block.0.layer.0.SelfAttention.q.weight` (transposed) by the one rule of
`westron.checkpoint.tf_to_checkpoint_name`. T5 has no `model.` level: `shared`, `encoder`,
`decoder` and `lm_head` hang off the top model, whose own name the rule drops.

Runs eagerly, inside `tf.function` and under XLA (`jit_compile=True`). The decoder's self-attention
cache has a static size (B, heads, max_length, d_kv) and is written with dynamic_update_slice, so a
whole decoding loop compiles. Decoding (greedy, beam, sampling) is not here: the model offers
`encode`, `init_cache`, `decode` and `reorder_cache`, and westron/generation/tf_search.py searches.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from westron.errors import CheckpointError, WestronError
from westron.modeling_outputs import DecoderOutput, EncoderOutput, Seq2SeqLMOutput, Seq2SeqModelOutput
from westron.modeling_tf_utils import TFPreTrainedModel
from westron.models.t5.configuration_t5 import T5Config

# ---- activations: Hugging Face's ACT2FN names, the same numerics -------------------------------------


# Copied from westron.models.marian.modeling_tf_marian.gelu
def gelu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=False)  # exact (erf), HF's "gelu"


# Copied from westron.models.marian.modeling_tf_marian.gelu_new
def gelu_new(x: tf.Tensor) -> tf.Tensor:
    # HF's NewGELUActivation, written out as the PyTorch twin does.
    return 0.5 * x * (1.0 + tf.math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3.0))))


# Copied from westron.models.marian.modeling_tf_marian.gelu_fast
def gelu_fast(x: tf.Tensor) -> tf.Tensor:
    return 0.5 * x * (1.0 + tf.math.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


# Copied from westron.models.marian.modeling_tf_marian.quick_gelu
def quick_gelu(x: tf.Tensor) -> tf.Tensor:
    return x * tf.math.sigmoid(1.702 * x)


# Copied from westron.models.marian.modeling_tf_marian.gelu_pytorch_tanh
def gelu_pytorch_tanh(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.gelu(x, approximate=True)


# Copied from westron.models.marian.modeling_tf_marian.leaky_relu
def leaky_relu(x: tf.Tensor) -> tf.Tensor:
    return tf.nn.leaky_relu(x, alpha=0.01)  # as nn.LeakyReLU()


# Copied from westron.models.marian.modeling_tf_marian.mish
def mish(x: tf.Tensor) -> tf.Tensor:
    return x * tf.math.tanh(tf.math.softplus(x))


# Copied from westron.models.marian.modeling_tf_marian.linear_activation
def linear_activation(x: tf.Tensor) -> tf.Tensor:
    return x


# Copied from westron.models.marian.modeling_tf_marian.ACT2FN
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


# Copied from westron.models.marian.modeling_tf_marian.get_activation
def get_activation(name: str):
    if name not in ACT2FN:
        raise WestronError(f"activation_function {name!r} is not supported (known: {', '.join(sorted(ACT2FN))})")
    return ACT2FN[name]


# ---- helpers -----------------------------------------------------------------------------------------


# Copied from westron.models.marian.modeling_tf_marian.shift_tokens_right
def shift_tokens_right(labels: tf.Tensor, pad_token_id: int, decoder_start_token_id: int) -> tf.Tensor:
    """Decoder inputs for teacher forcing: the start token, then labels[:-1], with -100 replaced by pad."""
    if pad_token_id is None or decoder_start_token_id is None:
        raise ValueError("config.pad_token_id and config.decoder_start_token_id must be set to shift labels")
    labels = tf.convert_to_tensor(labels)
    start = tf.fill((tf.shape(labels)[0], 1), tf.constant(decoder_start_token_id, labels.dtype))
    shifted = tf.concat([start, labels[:, :-1]], axis=1)
    return tf.where(shifted == -100, tf.constant(pad_token_id, labels.dtype), shifted)


# Copied from westron.models.marian.modeling_tf_marian.additive_mask
def additive_mask(allowed: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """Boolean "may attend" mask -> 0 where allowed, the dtype's minimum where not (added to the scores)."""
    return tf.where(allowed, tf.zeros((), dtype), tf.constant(dtype.min, dtype))


def relative_position_bucket(
    relative_position: tf.Tensor, bidirectional: bool = True, num_buckets: int = 32, max_distance: int = 128
) -> tf.Tensor:
    """Buckets of relative positions (key - query), int32, in [0, num_buckets), as Mesh TensorFlow's T5.

    Bidirectional (encoder): half the buckets for keys before the query, half for keys after.
    Unidirectional (decoder): keys after the query all fall in bucket 0 (they are masked anyway).
    Within each half, the first half of the buckets are exact distances 0, 1, ...; the rest grow
    logarithmically up to max_distance, and everything farther shares the last bucket.
    """
    buckets = tf.zeros_like(relative_position)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + tf.cast(relative_position > 0, relative_position.dtype) * num_buckets
        distance = tf.abs(relative_position)
    else:
        distance = -tf.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # The logarithmic buckets, only used where distance >= max_exact (clamped so log never sees 0).
    # Float32 and this order of operations, as HF, so the boundaries fall where they do there.
    large = max_exact + tf.cast(
        tf.math.log(tf.cast(tf.maximum(distance, max_exact), tf.float32) / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact),
        relative_position.dtype,
    )
    large = tf.minimum(large, num_buckets - 1)
    return buckets + tf.where(is_small, distance, large)


def clamp_inf_fp16(hidden: tf.Tensor) -> tf.Tensor:
    """As HF: in float16, once anything overflowed, clamp the activations back into range (T5's
    residual stream grows large; fp16 training would otherwise turn into inf and nan)."""
    if hidden.dtype != tf.float16:
        return hidden
    largest = tf.constant(tf.float16.max, tf.float16)
    bound = tf.where(tf.reduce_any(tf.math.is_inf(hidden)), largest - 1000, largest)
    return tf.clip_by_value(hidden, -bound, bound)


# Copied from westron.models.marian.modeling_tf_marian.masked_cross_entropy
def masked_cross_entropy(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the labels that are not -100 (torch's cross_entropy default), in float32."""
    keep = labels != -100
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.where(keep, labels, tf.zeros_like(labels)), logits=tf.cast(logits, tf.float32)
    )
    keep = tf.cast(keep, tf.float32)
    return tf.reduce_sum(losses * keep) / tf.reduce_sum(keep)


def _normal(stddev: float) -> keras.initializers.Initializer:
    # HF's T5 initialisation, for training from scratch (from_pretrained overwrites it). It matters
    # more than usual: without the 1/sqrt(d_kv) in the forward pass, q's smaller std stands in for it.
    return keras.initializers.RandomNormal(mean=0.0, stddev=stddev)


def _dense(units: int, stddev: float, name: str) -> keras.layers.Dense:
    """A Dense layer without bias (T5 has none), initialised normal(0, stddev) as HF initialises it."""
    return keras.layers.Dense(units, use_bias=False, kernel_initializer=_normal(stddev), name=name)


def _shared_embedding(config: T5Config) -> keras.layers.Embedding:
    initializer = _normal(config.initializer_factor * 1.0)
    return keras.layers.Embedding(config.vocab_size, config.d_model, embeddings_initializer=initializer, name="shared")


# ---- layers --------------------------------------------------------------------------------------------


# Copied from westron.models.marian.modeling_tf_marian._Block
class _Block(keras.layers.Layer):
    """A layer made of sublayers. Its build() creates nothing: each sublayer builds itself on its first
    call, inside this layer's name scope, so variable paths follow the attribute names. (Without a
    build(), Keras would first trace call() symbolically to build the sublayers: several times slower.)"""

    def build(self, input_shape=None):
        pass


class TFT5LayerNorm(keras.layers.Layer):
    """RMS norm: no mean subtraction, no bias; the mean square in float32 even for half inputs."""

    def __init__(self, hidden_size: int, eps: float = 1e-6, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.variance_epsilon = eps

    def build(self, input_shape=None):
        # Named `weight` (not gamma): the checkpoint name is `...layer_norm.weight` as it stands.
        self.weight = self.add_weight(name="weight", shape=(self.hidden_size,), initializer="ones")
        self.built = True

    def call(self, hidden: tf.Tensor) -> tf.Tensor:
        hidden_32 = tf.cast(hidden, tf.float32)
        variance = tf.reduce_mean(tf.square(hidden_32), axis=-1, keepdims=True)  # (..., 1)
        hidden_32 = hidden_32 * tf.math.rsqrt(variance + self.variance_epsilon)
        return tf.cast(self.weight, hidden.dtype) * tf.cast(hidden_32, hidden.dtype)


class TFT5DenseActDense(_Block):
    """t5's feed-forward: wo(act(wi(x)))."""

    def __init__(self, config: T5Config, **kwargs):
        super().__init__(**kwargs)
        factor = config.initializer_factor
        self.wi = _dense(config.d_ff, factor * config.d_model**-0.5, "wi")
        self.wo = _dense(config.d_model, factor * config.d_ff**-0.5, "wo")
        self.dropout = keras.layers.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def call(self, hidden: tf.Tensor, training: bool = False) -> tf.Tensor:
        hidden = self.dropout(self.act(self.wi(hidden)), training=training)  # (B, L, d_ff)
        return self.wo(hidden)


class TFT5DenseGatedActDense(_Block):
    """t5 v1.1's gated feed-forward: wo(act(wi_0(x)) * wi_1(x))."""

    def __init__(self, config: T5Config, **kwargs):
        super().__init__(**kwargs)
        factor = config.initializer_factor
        self.wi_0 = _dense(config.d_ff, factor * config.d_model**-0.5, "wi_0")
        self.wi_1 = _dense(config.d_ff, factor * config.d_model**-0.5, "wi_1")
        self.wo = _dense(config.d_model, factor * config.d_ff**-0.5, "wo")
        self.dropout = keras.layers.Dropout(config.dropout_rate)
        self.act = get_activation(config.dense_act_fn)

    def call(self, hidden: tf.Tensor, training: bool = False) -> tf.Tensor:
        hidden = self.dropout(self.act(self.wi_0(hidden)) * self.wi_1(hidden), training=training)  # (B, L, d_ff)
        return self.wo(hidden)


class TFT5LayerFF(_Block):
    def __init__(self, config: T5Config, **kwargs):
        super().__init__(**kwargs)
        # HF's attribute name, whichever activation it holds.
        if config.is_gated_act:
            self.DenseReluDense = TFT5DenseGatedActDense(config, name="DenseReluDense")
        else:
            self.DenseReluDense = TFT5DenseActDense(config, name="DenseReluDense")
        self.layer_norm = TFT5LayerNorm(config.d_model, eps=config.layer_norm_epsilon, name="layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def call(self, hidden: tf.Tensor, training: bool = False) -> tf.Tensor:
        forwarded = self.DenseReluDense(self.layer_norm(hidden), training=training)
        return hidden + self.dropout(forwarded, training=training)


class TFT5Attention(_Block):
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.is_decoder = is_decoder
        self.is_cross_attention = is_cross_attention
        self.has_relative_attention_bias = has_relative_attention_bias
        self.relative_attention_num_buckets = config.relative_attention_num_buckets
        self.relative_attention_max_distance = config.relative_attention_max_distance
        self.n_heads = config.num_heads
        self.key_value_proj_dim = config.d_kv
        self.inner_dim = self.n_heads * self.key_value_proj_dim
        self.dropout = keras.layers.Dropout(config.dropout_rate)
        factor, d_model = config.initializer_factor, config.d_model
        self.q = _dense(self.inner_dim, factor * (d_model * self.key_value_proj_dim) ** -0.5, "q")
        self.k = _dense(self.inner_dim, factor * d_model**-0.5, "k")
        self.v = _dense(self.inner_dim, factor * d_model**-0.5, "v")
        self.o = _dense(d_model, factor * self.inner_dim**-0.5, "o")
        if has_relative_attention_bias:
            self.relative_attention_bias = keras.layers.Embedding(
                self.relative_attention_num_buckets,
                self.n_heads,
                embeddings_initializer=_normal(factor * d_model**-0.5),
                name="relative_attention_bias",
            )

    def compute_bias(self, query_positions: tf.Tensor, num_keys) -> tf.Tensor:
        """Position bias (1, heads, t, num_keys) for queries at query_positions (t,) and keys 0 .. num_keys-1."""
        relative_position = tf.range(num_keys)[None, :] - query_positions[:, None]  # (t, keys)
        buckets = relative_position_bucket(
            relative_position,
            bidirectional=not self.is_decoder,
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance,
        )
        values = self.relative_attention_bias(buckets)  # (t, keys, heads)
        return tf.transpose(values, (2, 0, 1))[None]

    def split_heads(self, x: tf.Tensor) -> tf.Tensor:
        # (B, L, heads * d_kv) -> (B, heads, L, d_kv)
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(x, (batch, length, self.n_heads, self.key_value_proj_dim)), (0, 2, 1, 3))

    def project_key_value(self, states: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.split_heads(self.k(states)), self.split_heads(self.v(states))

    def call(
        self,
        hidden_states: tf.Tensor,
        key_value_states: tf.Tensor | None = None,
        position_bias: tf.Tensor | None = None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        cache_position: int | tf.Tensor | None = None,
        output_attentions: bool = False,
        training: bool = False,
    ) -> tuple[tf.Tensor, tf.Tensor | None, tuple[tf.Tensor, tf.Tensor] | None]:
        """Returns (output (B, t, D), weights (B, heads, t, keys) or None, the key/value cache or None).

        hidden_states: (B, t, D), the queries. position_bias: the relative position bias plus the
        additive mask, broadcastable to (B, heads, t, keys) (cross-attention: the mask only).
        Self-attention: keys and values come from hidden_states; with a
        `past_key_value` of static buffers (B, heads, max_length, d_kv) they are written there at
        positions cache_position .. cache_position+t-1 (dynamic_update_slice: XLA updates the buffer
        in place) and the queries attend over the buffers (the first cache_position+t keys when
        cache_position is an int, else all max_length: the mask hides the rest). Cross-attention:
        keys and values come from key_value_states (B, S, D), or from `past_key_value` when they
        were computed once already (init_cache).
        """
        query = self.split_heads(self.q(hidden_states))  # (B, heads, t, d_kv)
        if not self.is_cross_attention:
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

        scores = tf.matmul(query, key, transpose_b=True)  # (B, heads, t, keys); no 1/sqrt(d_kv): T5 has none
        if position_bias is not None:
            scores = scores + position_bias
        weights = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), scores.dtype)
        output = tf.matmul(self.dropout(weights, training=training), value)  # (B, heads, t, d_kv)
        batch, t = tf.shape(output)[0], tf.shape(output)[2]
        output = tf.reshape(tf.transpose(output, (0, 2, 1, 3)), (batch, t, self.inner_dim))  # (B, t, heads * d_kv)
        return self.o(output), weights if output_attentions else None, past_key_value


class TFT5LayerSelfAttention(_Block):
    def __init__(self, config: T5Config, is_decoder: bool = False, has_relative_attention_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.SelfAttention = TFT5Attention(
            config, is_decoder=is_decoder, has_relative_attention_bias=has_relative_attention_bias, name="SelfAttention"
        )
        self.layer_norm = TFT5LayerNorm(config.d_model, eps=config.layer_norm_epsilon, name="layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def call(
        self,
        hidden: tf.Tensor,
        position_bias: tf.Tensor | None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        cache_position: int | tf.Tensor | None = None,
        output_attentions: bool = False,
        training: bool = False,
    ):
        attended, weights, past_key_value = self.SelfAttention(
            self.layer_norm(hidden),
            position_bias=position_bias,
            past_key_value=past_key_value,
            cache_position=cache_position,
            output_attentions=output_attentions,
            training=training,
        )
        return hidden + self.dropout(attended, training=training), weights, past_key_value


class TFT5LayerCrossAttention(_Block):
    def __init__(self, config: T5Config, **kwargs):
        super().__init__(**kwargs)
        self.EncDecAttention = TFT5Attention(config, is_decoder=True, is_cross_attention=True, name="EncDecAttention")
        self.layer_norm = TFT5LayerNorm(config.d_model, eps=config.layer_norm_epsilon, name="layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def call(
        self,
        hidden: tf.Tensor,
        key_value_states: tf.Tensor | None,
        position_bias: tf.Tensor | None,
        past_key_value: tuple[tf.Tensor, tf.Tensor] | None = None,
        output_attentions: bool = False,
        training: bool = False,
    ):
        attended, weights, _ = self.EncDecAttention(
            self.layer_norm(hidden),
            key_value_states=key_value_states,
            position_bias=position_bias,
            past_key_value=past_key_value,
            output_attentions=output_attentions,
            training=training,
        )
        return hidden + self.dropout(attended, training=training), weights


class TFT5Block(_Block):
    """layer[0]: self-attention; decoder: layer[1] cross-attention; layer[-1]: feed-forward. Each
    is pre-norm with its own residual: hidden = hidden + sublayer(layer_norm(hidden))."""

    def __init__(self, config: T5Config, is_decoder: bool = False, has_relative_attention_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.is_decoder = is_decoder
        self.layer = [
            TFT5LayerSelfAttention(
                config, is_decoder=is_decoder, has_relative_attention_bias=has_relative_attention_bias, name="layer.0"
            )
        ]
        if is_decoder:
            self.layer.append(TFT5LayerCrossAttention(config, name="layer.1"))
        self.layer.append(TFT5LayerFF(config, name=f"layer.{len(self.layer)}"))

    def call(
        self,
        hidden: tf.Tensor,
        position_bias: tf.Tensor | None,
        encoder_hidden_states: tf.Tensor | None = None,
        encoder_position_bias: tf.Tensor | None = None,
        layer_cache: tuple[tf.Tensor, ...] | None = None,
        cache_position: int | tf.Tensor | None = None,
        output_attentions: bool = False,
        training: bool = False,
    ):
        """Returns (hidden (B, t, D), layer_cache, self-attention weights, cross-attention weights).

        layer_cache (decoder): (self_k, self_v, cross_k, cross_v) or None (a full teacher-forced pass).
        """
        self_kv = cross_kv = None
        if layer_cache is not None:
            self_kv, cross_kv = tuple(layer_cache[:2]), tuple(layer_cache[2:])
        hidden, self_weights, self_kv = self.layer[0](
            hidden,
            position_bias,
            past_key_value=self_kv,
            cache_position=cache_position,
            output_attentions=output_attentions,
            training=training,
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
                training=training,
            )
            hidden = clamp_inf_fp16(hidden)
        hidden = clamp_inf_fp16(self.layer[-1](hidden, training=training))
        if layer_cache is not None:
            layer_cache = (*self_kv, *cross_kv)
        return hidden, layer_cache, self_weights, cross_weights


# ---- stacks ---------------------------------------------------------------------------------------------


class TFT5Stack(_Block):
    """The encoder (is_decoder=False, num_layers blocks) or the decoder (num_decoder_layers blocks)."""

    def __init__(self, config: T5Config, embed_tokens: keras.layers.Embedding, is_decoder: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.is_decoder = is_decoder
        self.embed_tokens = embed_tokens
        num_layers = config.num_decoder_layers if is_decoder else config.num_layers
        self.block = [
            TFT5Block(config, is_decoder=is_decoder, has_relative_attention_bias=i == 0, name=f"block.{i}")
            for i in range(num_layers)
        ]
        self.final_layer_norm = TFT5LayerNorm(config.d_model, eps=config.layer_norm_epsilon, name="final_layer_norm")
        self.dropout = keras.layers.Dropout(config.dropout_rate)

    def build(self, input_shape=None):
        # The stack looks the bias table up (compute_bias) before block 0 runs: build it here inside the
        # scopes of its owners, so its variable is `.../block.0/layer.0/SelfAttention/relative_attention_bias/
        # embeddings` (-> ...SelfAttention.relative_attention_bias.weight), not one directly under the stack.
        block = self.block[0]
        attention = block.layer[0].SelfAttention
        with keras.name_scope(block.name), keras.name_scope(block.layer[0].name), keras.name_scope(attention.name):
            attention.relative_attention_bias.build(None)
        self.built = True

    def init_cache(self, encoder_hidden_states: tf.Tensor, max_length: int) -> tuple:
        """Per layer (self_k, self_v, cross_k, cross_v); self buffers zeros (B, heads, max_length, d_kv),
        cross keys/values projected once from encoder_hidden_states (B, S, D) -> (B, heads, S, d_kv)."""
        if not self.is_decoder:
            raise ValueError("init_cache is for the decoder stack")
        batch = tf.shape(encoder_hidden_states)[0]
        cache = []
        for block in self.block:
            attention = block.layer[0].SelfAttention
            shape = (batch, attention.n_heads, max_length, attention.key_value_proj_dim)
            zeros = tf.zeros(shape, encoder_hidden_states.dtype)
            cache.append((zeros, zeros, *block.layer[1].EncDecAttention.project_key_value(encoder_hidden_states)))
        return tuple(cache)

    def call(
        self,
        input_ids: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        encoder_hidden_states: tf.Tensor | None = None,
        encoder_attention_mask: tf.Tensor | None = None,
        cache: tuple | None = None,
        cache_position: int | tf.Tensor = 0,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        training: bool = False,
    ) -> EncoderOutput | DecoderOutput:
        """input_ids (B, t): the tokens at positions cache_position .. cache_position+t-1.

        Encoder: attention_mask (B, S) hides padding; returns an EncoderOutput. Decoder: without a
        cache (teacher forcing) the queries attend to each other causally and attention_mask (B, t)
        hides padded target positions as keys; with a cache they attend to every cached position up
        to their own (masked by position only); encoder_hidden_states may be None when the cache
        holds the cross keys/values. Returns a DecoderOutput.
        """
        t = tf.shape(input_ids)[1]
        hidden = self.dropout(self.embed_tokens(input_ids), training=training)  # (B, t, D); T5 does not scale

        if not isinstance(cache_position, int):
            cache_position = tf.cast(cache_position, tf.int32)
        query_positions = cache_position + tf.range(t)  # (t,)
        if cache is None:
            num_keys = t
        elif isinstance(cache_position, int):
            num_keys = cache_position + input_ids.shape[1]
            if num_keys > cache[0][0].shape[2]:
                raise ValueError(f"the cache holds {cache[0][0].shape[2]} positions; decoding past it ({num_keys})")
        else:
            num_keys = tf.shape(cache[0][0])[2]  # static: all of the buffer, masked by position
        # The first block's table gives the bias every block adds: (1, heads, t, keys) ...
        position_bias = self.block[0].layer[0].SelfAttention.compute_bias(query_positions, num_keys)
        position_bias = tf.cast(position_bias, hidden.dtype)
        # ... plus the mask, once for all blocks: (B or 1, heads, t, keys).
        allowed = None
        if self.is_decoder:  # causal: key position <= query position
            allowed = (tf.range(num_keys)[None, :] <= query_positions[:, None])[None, None]  # (1, 1, t, keys)
        if attention_mask is not None:  # (B, keys)
            padding = tf.cast(attention_mask, tf.bool)[:, None, None, :]
            allowed = padding if allowed is None else tf.logical_and(allowed, padding)
        if allowed is not None:
            position_bias = position_bias + additive_mask(allowed, position_bias.dtype)
        encoder_position_bias = None
        if self.is_decoder and encoder_attention_mask is not None:  # (B, 1, 1, S)
            encoder_position_bias = additive_mask(
                tf.cast(encoder_attention_mask, tf.bool)[:, None, None, :], hidden.dtype
            )

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
                training=training,
            )
            if cache is not None:
                new_cache.append(layer_cache)
            if output_attentions:
                all_self += (self_weights,)
                if self.is_decoder:
                    all_cross += (cross_weights,)
        hidden = self.dropout(self.final_layer_norm(hidden), training=training)
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


class TFT5PreTrainedModel(TFPreTrainedModel):
    """Shared by the models with `shared`, `encoder` and `decoder`: the one embedding matrix is always
    both stacks' embed_tokens (as in HF, whatever tie_word_embeddings says)."""

    config_class = T5Config
    # Some old HF checkpoints hold a relative bias table in the decoder's first cross-attention,
    # which T5 never uses (HF ignores it on load too).
    checkpoint_keys_to_ignore = [r"^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.weight$"]
    head_checkpoint_names = ("lm_head.weight",)  # the base model has the same names, no prefix

    def _build_shared(self) -> None:
        # `shared` is built in this model's name scope, so its one variable is `<model>/shared/embeddings`
        # (-> shared.weight) and not under the encoder, its first user.
        if not self.shared.built:
            self.shared.build(None)

    def tied_weights(self) -> dict[str, str]:
        return {"encoder.embed_tokens.weight": "shared.weight", "decoder.embed_tokens.weight": "shared.weight"}

    def get_input_embeddings(self) -> keras.layers.Embedding:
        return self.shared

    def vocab_parameters(self) -> list[str]:
        return ["shared.weight"]

    def _encode_decode(
        self,
        input_ids: tf.Tensor | None,
        attention_mask: tf.Tensor | None,
        decoder_input_ids: tf.Tensor | None,
        decoder_attention_mask: tf.Tensor | None,
        encoder_outputs: EncoderOutput | tuple | None,
        output_attentions: bool | None,
        output_hidden_states: bool | None,
        training: bool = False,
    ) -> Seq2SeqModelOutput:
        """The teacher-forced pass of both stacks (TFT5Model and TFT5ForConditionalGeneration)."""
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
            raise ValueError(f"pass decoder_input_ids (or labels to the {TFT5ForConditionalGeneration.__name__})")
        decoder_outputs = self.decoder(
            decoder_input_ids,
            decoder_attention_mask,
            encoder_hidden_states=encoder_outputs.last_hidden_state,
            encoder_attention_mask=attention_mask,
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


class TFT5Model(TFT5PreTrainedModel):
    """The bare encoder-decoder: `shared`, `encoder`, `decoder` (HF's names, no prefix)."""

    def __init__(self, config: T5Config, **kwargs):
        kwargs.setdefault("name", "tf_t5_model")
        super().__init__(config, **kwargs)
        self.shared = _shared_embedding(config)
        self.encoder = TFT5Stack(config, self.shared, is_decoder=False, name="encoder")
        self.decoder = TFT5Stack(config, self.shared, is_decoder=True, name="decoder")

    def build(self, input_shape=None):
        self._build_shared()
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
        return self._encode_decode(
            input_ids,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs,
            output_attentions,
            output_hidden_states,
            training=training,
        )


def checkpoint_ties_head(state_dict: dict[str, np.ndarray]) -> bool:
    """Whether a checkpoint's LM head is `shared`, decided as Hugging Face 5 does for T5 whatever the
    config says: tied unless it holds an lm_head.weight that differs from shared.weight."""
    head, shared = state_dict.get("lm_head.weight"), state_dict.get("shared.weight")
    if head is None or shared is None:
        return True
    return head.shape == shared.shape and np.array_equal(head, shared)


class TFT5ForConditionalGeneration(TFT5PreTrainedModel):
    """T5 with the language-model head: logits = lm_head(decoder output, times d_model**-0.5 when
    config.scale_decoder_outputs). Tied (config.tie_word_embeddings), the head is the `shared` matrix
    transposed, no variable of its own; untied, a Dense layer `lm_head` without bias."""

    def __init__(self, config: T5Config, **kwargs):
        kwargs.setdefault("name", "tf_t5_for_conditional_generation")
        super().__init__(config, **kwargs)
        self.shared = _shared_embedding(config)
        self.encoder = TFT5Stack(config, self.shared, is_decoder=False, name="encoder")
        self.decoder = TFT5Stack(config, self.shared, is_decoder=True, name="decoder")
        # Always created, built (given its variable) only when untied: loading a checkpoint may
        # untie the head before the model is built (see load_checkpoint).
        self.lm_head = _dense(config.vocab_size, config.initializer_factor * 1.0, "lm_head")

    def build(self, input_shape=None):
        self._build_shared()
        if not self.config.tie_word_embeddings and not self.lm_head.built:
            self.lm_head.build((None, self.config.d_model))
        self.built = True

    def tied_weights(self) -> dict[str, str]:
        tied = super().tied_weights()
        if self.config.tie_word_embeddings:
            tied["lm_head.weight"] = "shared.weight"
        return tied

    def load_checkpoint(self, state_dict: dict[str, np.ndarray], source: str = "state dict") -> None:
        """Ties or unties the head as the checkpoint says (see checkpoint_ties_head), records it in
        config.tie_word_embeddings (so saving writes what was loaded), then loads."""
        tie = checkpoint_ties_head(state_dict)
        if tie != self.config.tie_word_embeddings:
            if self.built and tie:  # the untied head's variable exists and Keras cannot drop it
                raise CheckpointError(
                    f"checkpoint {source} ties lm_head.weight to shared.weight, but this model was built with a "
                    "head of its own: load it with from_pretrained"
                )
            self.config.tie_word_embeddings = tie
            if self.built:  # untie a built model: the head's variable, in this model's name scope
                with keras.name_scope(self.name):
                    self.lm_head.build((None, self.config.d_model))
        super().load_checkpoint(state_dict, source)

    def get_output_embeddings(self) -> keras.layers.Layer:
        return self.shared if self.config.tie_word_embeddings else self.lm_head

    def vocab_parameters(self) -> list[str]:
        return ["shared.weight", "lm_head.weight"]

    # Copied from westron.models.marian.modeling_tf_marian.TFMarianMTModel.prepare_decoder_input_ids_from_labels
    def prepare_decoder_input_ids_from_labels(self, labels: tf.Tensor) -> tf.Tensor:
        """Teacher-forcing decoder inputs from labels (what DataCollatorForSeq2Seq calls)."""
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

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
        outputs = self._encode_decode(
            input_ids,
            attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            encoder_outputs,
            output_attentions,
            output_hidden_states,
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

    def lm_head_logits(self, hidden: tf.Tensor) -> tf.Tensor:
        # Original T5 rescales before its tied head (the embeddings are large, std 1).
        if self.config.scale_decoder_outputs:
            hidden = hidden * self.config.d_model**-0.5
        if not self.config.tie_word_embeddings or self.quantization is not None:
            return self.lm_head(hidden)  # untied, or tied and given an int8 copy (westron/tf_quantization.py)
        # As a 2-D matmul with transpose_b: no copy of the (V, D) matrix per call.
        batch, t = tf.shape(hidden)[0], tf.shape(hidden)[1]
        flat = tf.reshape(hidden, (-1, hidden.shape[-1]))
        logits = tf.matmul(flat, tf.cast(self.shared.embeddings, hidden.dtype), transpose_b=True)
        return tf.reshape(logits, (batch, t, -1))

    # ---- what generation needs (docs/internals.md) ------------------------------------------------------

    def encode(
        self,
        input_ids: tf.Tensor,
        attention_mask: tf.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> EncoderOutput:
        self.build_weights()
        return self.encoder(
            input_ids,
            attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )

    def init_cache(self, encoder_hidden_states: tf.Tensor, max_length: int) -> tuple:
        self.build_weights()
        return self.decoder.init_cache(encoder_hidden_states, max_length)

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

        The position bias is that of queries cache_position .. cache_position+t-1 against keys
        0 .. (cache_position+t-1, or max_length-1 when cache_position is a tensor), masked beyond each
        query's own position. TensorFlow tensors are immutable: the returned cache holds the updated
        self-attention buffers (under XLA, dynamic_update_slice in a loop updates them in place).
        cache_position: a Python int (eager) or a scalar int tensor (tf.function / XLA: one shape
        for every step).
        """
        self.build_weights()
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

    # Copied from westron.models.marian.modeling_tf_marian.TFMarianMTModel.reorder_cache
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
