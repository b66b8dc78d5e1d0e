"""int8 inference for TensorFlow models: `from_pretrained(..., quantization="int8")`.

Keras 3's own int8 quantization (`Model.quantize("int8")`) on every Dense layer: the kernel is
quantized once, per output channel (symmetric, abs-max, 8 bits); each call quantizes its input per
token (abs-max over the features), multiplies int8 by int8 into int32 and rescales to float32.
Embeddings, layer norms, attention scores and softmax stay float32, as in the PyTorch twin
(`torch_quantization.py`). A tied LM head is the embedding matrix transposed, with no layer of its
own; it gets one here (an int8 Dense `lm_head` holding that matrix), so the head is int8 in both
frameworks while the lookups keep the float matrix.

Both twins set `model.quantization` to the method, which `save_pretrained` refuses.
"""

from __future__ import annotations

import contextlib
import gc

import keras

from westron.errors import WestronError
from westron.modeling_tf_utils import COMPILED_SEARCHES_ATTRIBUTE


def quantize_model(model: keras.Model, method: str) -> keras.Model:
    """Quantizes `model` in place for inference (`method`: "int8") and returns it.

    Example:

        >>> from westron import TFAutoModelForSeq2SeqLM
        >>> model = TFAutoModelForSeq2SeqLM.from_pretrained(checkpoint, quantization="int8")
        >>> model.quantization, model.lm_head.quantization_mode, model.lm_head.kernel.dtype
        ('int8', 'int8', 'int8')
    """
    if method != "int8":
        raise WestronError(f"quantization={method!r} is not supported in TensorFlow (use 'int8')")
    if getattr(model, "quantization", None) is not None:
        raise WestronError(f"this model is already quantized ({model.quantization})")
    if model.dtype_policy.name != "float32":
        raise WestronError(f"quantization='int8' quantizes a float32 model, not a {model.dtype_policy.name} one (leave dtype= out)")
    model.build_weights()
    if "lm_head.weight" in model.tied_weights():
        _give_tied_head_a_layer(model)
    # Dense layers only: a quantized Embedding would hand its int8 matrix to the lookups.
    with one_garbage_collection():
        model.quantize(method, filters=lambda layer: type(layer) is keras.layers.Dense)
    vars(model).pop(COMPILED_SEARCHES_ATTRIBUTE, None)  # compiled searches hold the float variables
    model.quantization = method
    return model


def _give_tied_head_a_layer(model: keras.Model) -> None:
    """Gives model.lm_head a float Dense layer holding the tied embedding matrix transposed (D, V),
    the layer an untied model has; lm_head_logits uses it from then on. T5 keeps an unbuilt
    `lm_head` while tied (built here); Marian and M2M100 keep None (a new layer is set)."""
    embeddings = model.get_output_embeddings().embeddings  # (V, D)
    vocab, d_model = embeddings.shape
    head = model.lm_head
    if head is None:
        head = keras.layers.Dense(vocab, use_bias=False, name="lm_head")
        locked = model._tracker.locked
        model._tracker.unlock()
        model.lm_head = head
        if locked:
            model._tracker.lock()
    with keras.name_scope(model.name, deduplicate=False):  # the path an untied head has: <model>/lm_head/kernel
        head.build((None, d_model))
    head.kernel.assign(keras.ops.transpose(embeddings))


@contextlib.contextmanager
def one_garbage_collection():
    """Runs gc.collect() once at the end instead of at every call inside.

    Keras's Layer.__delattr__ collects garbage after each variable it drops (to free device memory
    at once); quantizing drops every Dense kernel, and with TensorFlow loaded one collection takes
    about half a second: 20 s for a tiny 2+2-layer model, 1 s with this.
    """
    collect = gc.collect
    gc.collect = lambda generation=2: 0
    try:
        yield
    finally:
        gc.collect = collect
        gc.collect()
