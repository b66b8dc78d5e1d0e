"""TensorFlow trainer: a GradientTape step inside tf.function (XLA optional). Twin of torch_trainer.py.

One update: for each micro-batch, one compiled gradient function (forward with training=True, the
label-smoothed loss summed over target tokens and divided by the target tokens of the whole
accumulated batch, gradients; for bf16, traced under Keras' mixed_bfloat16 policy); then one
compiled function that sums the replicas' gradients and takes their global norm, a check that the
loss and the norm are finite (before any update, as in PyTorch), the step's learning rate, and one
compiled apply function (global-norm clipping, Keras AdamW).

Under a tf.distribute strategy (MirroredStrategy over a machine's devices, MultiWorkerMirroredStrategy
over the TF_CONFIG cluster) the model and optimizer variables live in strategy.scope(); each
micro-step gives every replica one batch of the global batch (strategy.run), and the gradients of
the replicas are summed (all_reduce) before the norm and clipping, the loss being divided by the target
tokens of the whole global batch, so the update equals the single-device update of that batch.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from westron.checkpoint import load_state_dict, tf_to_checkpoint_name
from westron.errors import WestronError
from westron.training.base import (
    Batch,
    BaseTrainer,
    StepOutput,
    as_batch_list,
    check_master_weights,
    count_target_tokens,
    no_weight_decay,
)

MODEL_INPUTS = ("input_ids", "attention_mask", "decoder_input_ids")
_BATCH_SPEC = tf.TensorSpec([None, None], tf.int32)  # any batch shape traces once (XLA still compiles per shape)


def label_smoothed_loss_sum(logits: tf.Tensor, labels: tf.Tensor, smoothing: float) -> tf.Tensor:
    """Sum over target tokens (labels != -100) of (1 - smoothing) * NLL + smoothing * mean_k(-log p_k).

    logits (B, T, V) of any float dtype, computed in float32; labels (B, T). A 0-d float32 tensor.
    """
    logits = tf.cast(logits, tf.float32)
    keep = labels != -100
    safe_labels = tf.where(keep, labels, tf.zeros_like(labels))
    per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)  # (B, T)
    if smoothing:
        uniform = -tf.reduce_mean(tf.nn.log_softmax(logits), axis=-1)  # (B, T)
        per_token = (1.0 - smoothing) * per_token + smoothing * uniform
    return tf.reduce_sum(tf.where(keep, per_token, tf.zeros_like(per_token)))


class TFTrainer(BaseTrainer):
    framework = "tf"

    def __init__(self, model, args, train_batches, *, strategy=None, **kwargs):
        """strategy: a tf.distribute strategy whose scope() the model was built or loaded in (default: none)."""
        if args.mixed_precision == "fp16":
            raise WestronError("mixed_precision fp16 is PyTorch-only (CUDA loss scaling); the TensorFlow trainer trains in fp32 or bf16")
        if args.device is not None:
            raise WestronError("TrainingArguments.device is for PyTorch; a TensorFlow model trains where it was built (tf.device)")
        if args.compile:
            raise WestronError("TrainingArguments.compile is for PyTorch (torch.compile); the TensorFlow trainer compiles with xla=True")
        self.strategy = self.join_strategy(model, strategy)
        check_master_weights(args.mixed_precision, (v.dtype for v in model.trainable_variables))
        super().__init__(model, args, train_batches, **kwargs)

    def join_strategy(self, model, strategy):
        """Builds the model under the strategy and reads its layout: replicas here, workers, this worker's index."""
        self.distributed = strategy is not None
        if strategy is None:
            model.build_weights()
            return tf.distribute.get_strategy()  # the default: one replica, the same calls
        with strategy.scope():
            model.build_weights()
        if not all(strategy.extended.variable_created_in_scope(v.value) for v in model.variables):  # the tf.Variables
            raise WestronError("the model's variables were made outside strategy.scope(): load or build the model inside `with strategy.scope():`")
        if dropout_seed_states(model):  # Keras' seed generators cannot advance inside strategy.run (an all-replica update)
            raise WestronError("dropout under a tf.distribute strategy is not supported yet: set the config's dropout rates to 0, or train with PyTorch DDP")
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            resolver = strategy.cluster_resolver
            self.num_processes, self.process_index = worker_layout(resolver.cluster_spec().as_dict(), resolver.task_type, resolver.task_id)
        self.replicas_per_process = strategy.num_replicas_in_sync // self.num_processes
        return strategy

    # ---- framework parts, in BaseTrainer's order ------------------------------------------------------

    def seed(self, seed: int) -> None:
        """Python, numpy and every dropout layer's seed generator, from the one seed."""
        super().seed(seed)
        tf.random.set_seed(seed)
        for index, variable in enumerate(dropout_seed_states(self.model)):
            variable.assign(np.array([seed * 1000 + index + 1, 0], dtype=variable.dtype))

    def create_optimizer(self) -> None:
        """Keras AdamW, decoupled weight decay except on biases and LayerNorm weights; the learning rate is
        set before every update from schedules.learning_rate_at. Under a strategy, its variables are mirrored."""
        with self.strategy.scope():
            self._create_optimizer()

    def _create_optimizer(self) -> None:
        self.variables = list(self.model.trainable_variables)
        self.variable_names = [tf_to_checkpoint_name(v.path) for v in self.variables]  # [(name, transposed)]
        args = self.args
        self.optimizer = keras.optimizers.AdamW(
            learning_rate=args.learning_rate,
            weight_decay=args.weight_decay,
            beta_1=args.adam_beta1,
            beta_2=args.adam_beta2,
            epsilon=args.adam_epsilon,
        )
        self.optimizer.exclude_from_weight_decay(
            var_list=[
                v for v, (name, transposed) in zip(self.variables, self.variable_names)
                if no_weight_decay(name, _checkpoint_shape(v, transposed))
            ]
        )
        self.optimizer.build(self.variables)
        self.used = None  # which variables get gradients: found when the gradient function is traced
        # One replica: a signature of any batch shape traces once. Several: strategy.run traces the
        # function for all replicas at once, with per-replica inputs a fixed signature cannot describe,
        # so the shapes are relaxed after the first retrace instead.
        shapes = {"reduce_retracing": True} if self.distributed else {"input_signature": [_BATCH_SPEC] * 4 + [tf.TensorSpec([], tf.float32)]}
        self.compute_gradients = tf.function(self._compute_gradients, jit_compile=args.xla, **shapes)
        self.sum_gradients = tf.function(self._sum_gradients, jit_compile=args.xla)
        self.apply_gradients = tf.function(self._apply_gradients, jit_compile=args.xla)
        self.forward_loss = tf.function(self._forward_loss, input_signature=[_BATCH_SPEC] * 4, jit_compile=args.xla)

    def autocast(self):
        """The twin of torch.autocast around the PT forward, entered while a step function is traced: under
        bf16 every layer computes in bfloat16 (float32 variables cast as the layers read them), the loss
        in float32 (label_smoothed_loss_sum casts the logits)."""
        if self.args.mixed_precision is None:
            return contextlib.nullcontext()
        return layer_dtype_policies(self.model, "mixed_bfloat16")

    def _compute_gradients(self, input_ids, attention_mask, decoder_input_ids, labels, num_tokens):
        with tf.GradientTape() as tape, self.autocast():
            logits = self.model(
                input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, training=True
            ).logits  # (B, T, V)
            loss_sum = label_smoothed_loss_sum(logits, labels, self.args.label_smoothing)
            loss = loss_sum / num_tokens
        gradients = tape.gradient(loss, self.variables)
        # Variables the loss does not reach (an unused embedding) get no update, as torch's AdamW skips them.
        self.used = [g is not None for g in gradients]
        return loss_sum, [tf.convert_to_tensor(g) for g in gradients if g is not None]

    def train_step(self, batches: Batch | Iterable[Batch]) -> StepOutput:
        """One optimizer update over one batch or the micro-batches of an accumulated batch (under a
        strategy: micro-steps of one batch per local replica, in the order next_batches() gives them)."""
        batches = as_batch_list(batches)
        replicas = self.replicas_per_process
        if len(batches) % replicas:
            raise WestronError(f"{len(batches)} batches do not split over {replicas} replicas: give a multiple")
        num_tokens = self.sum_over_processes(sum(count_target_tokens(batch) for batch in batches))
        learning_rate = self.learning_rate(self.state.global_step + 1)
        loss_sum, gradients = 0.0, None  # gradients: per local replica, the list of its summed micro-step gradients
        for start in range(0, len(batches), replicas):
            inputs = self.per_replica(
                [[tf.convert_to_tensor(np.asarray(batch[name]), tf.int32) for name in (*MODEL_INPUTS, "labels")] for batch in batches[start : start + replicas]]
            )
            batch_loss, batch_gradients = self.strategy.run(self.compute_gradients, args=(*inputs, tf.constant(num_tokens, tf.float32)))
            loss_sum += float(self.strategy.reduce(tf.distribute.ReduceOp.SUM, batch_loss, axis=None))
            local = [self.strategy.experimental_local_results(g) for g in batch_gradients]  # [variable][replica]
            by_replica = [[g[r] for g in local] for r in range(replicas)]
            gradients = by_replica if gradients is None else [[a + b for a, b in zip(mine, new)] for mine, new in zip(gradients, by_replica)]
        loss = loss_sum / num_tokens
        gradients, norm = self.strategy.run(self.sum_gradients, args=(self.per_replica(gradients),))
        grad_norm = float(self.strategy.experimental_local_results(norm)[0])
        self.check_finite(loss, grad_norm)
        self.optimizer.learning_rate.assign(learning_rate)
        self.strategy.run(self.apply_gradients, args=(gradients, norm))
        return StepOutput(loss=loss, grad_norm=grad_norm, learning_rate=learning_rate, num_tokens=num_tokens)

    def per_replica(self, values: list):
        """values[r] for local replica r -> one distributed value (the value itself without a strategy)."""
        return self.strategy.experimental_distribute_values_from_function(
            lambda context: values[context.replica_id_in_sync_group % self.replicas_per_process]
        )

    def sum_over_processes(self, count: int) -> int:
        """A count summed over every worker (itself in a single process)."""
        if self.num_processes == 1:
            return count
        first = self.per_replica([tf.constant(float(count), tf.float64)] + [tf.constant(0.0, tf.float64)] * (self.replicas_per_process - 1))
        return int(self.strategy.reduce(tf.distribute.ReduceOp.SUM, first, axis=None))

    def _sum_gradients(self, gradients):
        """The replicas' gradients summed, and their global norm (checked before the update)."""
        if self.strategy.num_replicas_in_sync > 1:  # one replica's sum is its own (and a one-device
            # MirroredStrategy's all_reduce fails: "destinations can not be empty")
            gradients = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        return gradients, tf.linalg.global_norm(gradients)

    def _apply_gradients(self, gradients, grad_norm):
        """Clips to a global norm exactly as torch.nn.utils.clip_grad_norm_, then AdamW."""
        if self.args.max_grad_norm is not None:
            scale = tf.minimum(1.0, self.args.max_grad_norm / (grad_norm + 1e-6))
            gradients = [g * scale for g in gradients]
        used_variables = [v for v, used in zip(self.variables, self.used) if used]
        self.optimizer.apply(gradients, used_variables)

    def _forward_loss(self, input_ids, attention_mask, decoder_input_ids, labels):
        with self.autocast():
            logits = self.model(
                input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids, training=False
            ).logits
        return label_smoothed_loss_sum(logits, labels, 0.0)

    def evaluation_loss(self, batch: Batch) -> tuple[float, int]:
        inputs = [tf.convert_to_tensor(np.asarray(batch[name]), tf.int32) for name in (*MODEL_INPUTS, "labels")]
        return float(self.forward_loss(*inputs)), count_target_tokens(batch)

    def model_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.model.checkpoint_shapes()

    def load_model_weights(self, folder: str) -> None:
        self.model.load_checkpoint(load_state_dict(folder, framework="np"), source=folder)

    def optimizer_moments(self) -> dict[str, np.ndarray]:
        if int(self.optimizer.iterations.numpy()) == 0:
            return {}
        moments = {}
        used_flags = self.used if self.used is not None else [True] * len(self.variables)  # resumed, no update yet
        for variable, (name, transposed), used in zip(self.variables, self.variable_names, used_flags):
            if not used:
                continue
            index = self.optimizer._get_variable_index(variable)  # Keras keeps moments in build order
            for key, slots in (("exp_avg", self.optimizer._momentums), ("exp_avg_sq", self.optimizer._velocities)):
                array = slots[index].numpy()
                moments[f"{key}.{name}"] = array.T if transposed else array
        return moments

    def load_optimizer_moments(self, moments: Mapping[str, np.ndarray], step: int) -> None:
        for variable, (name, transposed) in zip(self.variables, self.variable_names):
            if f"exp_avg.{name}" not in moments:
                continue
            index = self.optimizer._get_variable_index(variable)
            for key, slots in (("exp_avg", self.optimizer._momentums), ("exp_avg_sq", self.optimizer._velocities)):
                array = moments[f"{key}.{name}"]
                slots[index].assign(np.asarray(array.T if transposed else array, dtype=np.float32))
        self.optimizer.iterations.assign(step)

    def framework_rng_state(self) -> dict[str, Any]:
        return {"framework": self.framework, "dropout_seeds": [v.numpy().tolist() for v in dropout_seed_states(self.model)]}

    def restore_framework_rng_state(self, rng: Mapping[str, Any]) -> None:
        states = dropout_seed_states(self.model)
        if len(states) != len(rng.get("dropout_seeds", [])):
            raise WestronError("the checkpoint's dropout random state does not fit this model's dropout layers")
        for variable, value in zip(states, rng["dropout_seeds"]):
            variable.assign(np.array(value, dtype=variable.dtype))

    def barrier(self) -> None:
        if self.num_processes > 1:  # a tiny all-reduce every worker must join
            self.sum_over_processes(0)


def worker_layout(cluster: Mapping[str, Any], task_type: str, task_id: int) -> tuple[int, int]:
    """(number of workers, this worker's index) in a TF cluster; the chief (or worker 0) is index 0."""
    chiefs = len(cluster.get("chief", []))
    workers = chiefs + len(cluster.get("worker", []))
    if task_type not in ("chief", "worker"):
        raise WestronError(f"TF_CONFIG: this task is a {task_type!r}; training runs on the chief and the workers")
    return workers, (0 if task_type == "chief" else chiefs + int(task_id))


def tf_config_layout(text: str) -> tuple[int, int]:
    """worker_layout() of a TF_CONFIG value, or one WestronError saying what is wrong with it."""
    try:
        config = json.loads(text)
        return worker_layout(config["cluster"], config["task"]["type"], int(config["task"]["index"]))
    except (ValueError, KeyError, TypeError) as error:
        raise WestronError(f"TF_CONFIG is not a cluster description ({error}): see docs/training.md") from None


@contextlib.contextmanager
def layer_dtype_policies(model, policy: str):
    """Every layer of the model under the Keras dtype policy `policy`, then each its own again.

    Entered while a tf.function is traced, it decides the dtypes of that traced program only: the model
    keeps its policy everywhere else (generate, save_pretrained, compute_metrics), and its variables keep
    their dtype (a policy picks a variable's dtype when the variable is made, and these exist already).
    """
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    previous = [layer.dtype_policy for layer in layers]
    for layer in layers:
        layer.dtype_policy = policy
    try:
        yield
    finally:
        for layer, own in zip(layers, previous):
            layer.dtype_policy = own


def dropout_seed_states(model) -> list:
    """The state variables of the model's seed generators (one per dropout layer with a rate), in a fixed order."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _checkpoint_shape(variable, transposed: bool) -> tuple[int, ...]:
    shape = tuple(variable.shape)
    return shape[::-1] if transposed else shape
