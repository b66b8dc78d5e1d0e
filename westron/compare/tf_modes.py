"""TensorFlow's side of `westron compare`: devices, loading, generation, logits, a training step, memory.

Twin of `torch_modes.py` (same functions, same order). The modes are how TensorFlow runs the
model: "eager" (op by op in Python), "function" (`tf.function` graphs without XLA) and "xla"
(`tf.function(jit_compile=True)`). Memory growth is switched on before anything touches a GPU:
by default TensorFlow reserves (nearly) the whole GPU at start-up, which would make its memory
peak meaningless and starve any other process on the card.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

FRAMEWORK = "tf"
MODES = ("eager", "function", "xla")
PLACEMENT = "everything (variables, inputs, steps) inside `with tf.device('/GPU:0' or '/CPU:0')`"


def setup(device: str) -> str:
    """Turns memory growth on, then chooses the device ("auto": the first GPU if any, else the CPU)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    if device == "auto":
        return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    from westron.modeling_tf_utils import resolve_tf_device

    return resolve_tf_device(device)


def devices() -> dict[str, Any]:
    """What TensorFlow sees: the CPU, GPUs (name), and how Westron places work on them."""
    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        gpus.append({"name": details.get("device_name", gpu.name), "memory_growth": True})
    build = tf.sysconfig.get_build_info()
    return {
        "cpu": platform.processor() or platform.machine(),
        "gpus": gpus,
        "cuda_version": build.get("cuda_version"),
        "placement": PLACEMENT,
    }


def threads() -> dict[str, Any]:
    # 0 means "TensorFlow's default": as many threads as the process may use cores.
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def device_scope(device: str):
    """`with tf.device(device)`: variables and ops created inside go there."""
    return tf.device(device)


def load_model(folder: str, device: str):
    from westron.models.auto import TFAutoModelForSeq2SeqLM

    with tf.device(device):
        return TFAutoModelForSeq2SeqLM.from_pretrained(folder)


def prepare_generation(model, mode: str):
    """Returns the model ready for generation in this mode (TF picks the mode per generate call)."""
    return model


def generate_ids(model, input_ids: np.ndarray, attention_mask: np.ndarray, mode: str, **kwargs) -> np.ndarray:
    """Generated ids (B * returned sequences, L) as numpy; the search is the same in every mode."""
    if mode == "eager":
        kwargs["eager"] = True
    elif mode == "function":
        kwargs["jit_compile"] = False
    return model.generate(input_ids, attention_mask=attention_mask, **kwargs).numpy()


def teacher_forced_logits(model, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask) -> np.ndarray:
    """Logits (B, T, V) of one full forward pass, as float32 numpy."""
    output = model(
        input_ids=tf.constant(input_ids),
        attention_mask=tf.constant(attention_mask),
        decoder_input_ids=tf.constant(decoder_input_ids),
        decoder_attention_mask=tf.constant(decoder_attention_mask),
    )
    return tf.cast(output.logits, tf.float32).numpy()


def perturb_weights(model, scale: float, seed: int = 0) -> None:
    """Adds noise of relative size `scale` to every weight (how a test breaks one twin on purpose)."""
    generator = tf.random.Generator.from_seed(seed)
    for variable in model.trainable_variables:
        noise = generator.normal(variable.shape, dtype=variable.dtype)
        variable.assign_add(noise * scale * tf.reduce_mean(tf.abs(variable)))


def make_training_step(model, batch: dict[str, np.ndarray], mode: str) -> Callable[[], float]:
    """One optimizer update (forward, backward, AdamW) on a fixed batch; returns the loss.

    A plain GradientTape step written here rather than westron.training's TFTrainer.train_step,
    which this branch does not have yet: swap it in here (one place) when it lands.
    """
    import keras

    tensors = {name: tf.constant(array) for name, array in batch.items()}
    optimizer = keras.optimizers.AdamW(learning_rate=1e-5)
    optimizer.build(model.trainable_variables)

    def update():
        with tf.GradientTape() as tape:
            loss = model(**tensors, training=True).loss
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    if mode != "eager":
        update = tf.function(update, jit_compile=mode == "xla")

    def step() -> float:
        return float(update())  # reading the value waits for the device, so the step's time is all in

    return step


def synchronize(device: str) -> None:
    """Nothing to wait for: every measured call ends by reading its result back to numpy."""


def reset_memory_peak(device: str) -> None:
    if "GPU" in device:
        tf.config.experimental.reset_memory_stats(device.strip("/"))


def memory_peak(device: str) -> dict[str, Any]:
    """The GPU's peak memory since reset_memory_peak, in MiB (empty on the CPU)."""
    if "GPU" not in device:
        return {}
    info = tf.config.experimental.get_memory_info(device.strip("/"))
    return {
        "peak_mib": info["peak"] / 2**20,
        "current_mib": info["current"] / 2**20,
        "source": "tf.config.experimental.get_memory_info(...)['peak'], memory growth on",
    }
