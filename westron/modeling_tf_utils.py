"""TensorFlow base model (Keras 3 on the TF backend): from_pretrained / save_pretrained / generate.

Every Keras sublayer is created with name= its PyTorch attribute name, so a variable's path maps
onto the checkpoint name by one rule (`westron.checkpoint.tf_to_checkpoint_name`). Tied weights
are one Keras variable used in several places: only the source name exists on the TF side.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from westron.checkpoint import (
    check_names_and_shapes,
    load_state_dict,
    match_base_model_prefix,
    save_model_folder,
    tf_to_checkpoint_name,
)
from westron.configuration_utils import PretrainedConfig, record_dtype, resized_vocab_size
from westron.errors import WestronError
from westron.file_utils import recover_directory
from westron.generation.configuration_utils import GenerationConfig, config_generation_snapshot
from westron.loading import (
    apply_key_mapping,
    check_config_overrides,
    generation_overrides,
    take_loading_kwargs,
    take_save_kwargs,
)


# Where generation/tf_search.py caches its compiled searches on a model.
COMPILED_SEARCHES_ATTRIBUTE = "_westron_tf_search_functions"


class TFPreTrainedModel(keras.Model):
    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    checkpoint_keys_to_ignore: ClassVar[list[str]] = []
    # As in the PyTorch twin: where the LM keeps its base model, and its head's checkpoint names.
    base_model_prefix: ClassVar[str] = ""
    head_checkpoint_names: ClassVar[tuple[str, ...]] = ()
    # Checkpoint names of variables the PyTorch twin holds as buffers (not counted by num_parameters).
    buffer_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PretrainedConfig, **kwargs: Any):
        super().__init__(**kwargs)
        self.config = config
        self.generation_config = GenerationConfig.from_model_config(config)
        # model.config's generation settings now: HF 4.x's generate applies later edits to them (deprecated there)
        self.config_generation_snapshot = config_generation_snapshot(config)
        self.quantization: str | None = None  # "int8" once tf_quantization.quantize_model ran
        self.name_or_path = ""  # HF 4.x's: the folder or Hub id from_pretrained read (a pipeline finds the tokenizer there)

    def __call__(self, *args: Any, return_dict: bool | None = None, **kwargs: Any):
        """HF 4.x's return_dict: False gives the output's set fields as a tuple; None and True the output object.

        As HF 4.x's TF models (and Keras' fit, which calls model(x) with x a dict), a dict as the only
        positional argument gives its entries as keywords: `model(tokenizer(texts, return_tensors="tf"))`.
        """
        if len(args) == 1 and isinstance(args[0], dict) and not args[0].keys() & kwargs.keys():
            args, kwargs = (), {**args[0], **kwargs}
        output = super().__call__(*args, **kwargs)
        return output.to_tuple() if return_dict is False else output

    # ---- Keras fit: HF 4.x's TF models trained on their own loss ------------------------------------

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """`compile()` without a loss makes `fit()` / `evaluate()` use the model's own loss (its output's
        `loss`, from the labels in the inputs), as HF 4.x's TF models did; a loss given to compile() is Keras'."""
        loss = getattr(y_pred, "loss", None)
        if self.loss is None and loss is not None:
            return loss
        return super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    def train_step(self, data):
        return super().train_step(self._labels_into_inputs(data))

    def test_step(self, data):
        return super().test_step(self._labels_into_inputs(data))

    def prepare_tf_dataset(self, *args: Any, **kwargs: Any):
        """HF 4.x's helper over a `datasets.Dataset`: not provided, refused with what to do instead."""
        raise WestronError(
            "prepare_tf_dataset is not supported: make a tf.data.Dataset of batches from "
            "DataCollatorForSeq2Seq(tokenizer, model=model, return_tensors='tf') (or datasets' to_tf_dataset)"
        )

    def _labels_into_inputs(self, data):
        """(features, labels) -> (features with "labels",): HF 4.x's rule, so a dataset that keeps the labels
        apart (`to_tf_dataset(label_cols=["labels"])`) trains on the model's own loss too."""
        if self.loss is not None or not isinstance(data, tuple) or len(data) < 2 or not isinstance(data[0], dict):
            return data
        if len(data) > 2 and data[2] is not None:
            raise WestronError("sample weights are not supported with the model's own loss (compile() without loss=)")
        features, labels = data[0], data[1]
        if labels is None or "labels" in features:
            return data
        return ({**features, "labels": labels},)

    def tied_weights(self) -> dict[str, str]:
        """Tied parameters under this config: {tied name: source name}, the same as the PyTorch twin's."""
        return {}

    @property
    def dummy_inputs(self) -> dict[str, tf.Tensor]:
        # Valid for any config that passes validation: ids inside the vocabulary, within the position table.
        length = min(4, getattr(self.config, "max_position_embeddings", None) or 4)
        ids = tf.constant([[3, 4, 5, 2][:length]], dtype=tf.int32) % self.config.vocab_size
        return {"input_ids": ids, "decoder_input_ids": ids}

    def build_weights(self) -> None:
        """Creates every variable by running the model once on a tiny input."""
        if not self.built or not self.weights:
            self(**self.dummy_inputs)

    def get_encoder(self) -> keras.layers.Layer:
        """HF 4.x's accessor: the encoder stack; `get_encoder()(input_ids=ids, attention_mask=mask)` gives
        the EncoderOutput that `model(encoder_outputs=..., ...)` takes."""
        base = getattr(self, self.base_model_prefix, self) if self.base_model_prefix else self
        return base.encoder

    # ---- embeddings (Hugging Face's accessors, used by fine-tuning scripts) ---------------------------

    def get_input_embeddings(self) -> keras.layers.Embedding:
        """The Embedding layer the encoder reads its input ids through."""
        raise NotImplementedError(f"{type(self).__name__} does not name its input embeddings")

    def set_input_embeddings(self, value) -> None:
        """Copies a (vocab, d_model) matrix (an array, variable or Embedding layer) into the input embeddings.

        Unlike PyTorch's, the layer is kept, not swapped: its variable's path is its checkpoint name.
        The vocabulary size must not change here (resize_token_embeddings changes it).
        """
        layer = self.get_input_embeddings()
        self.build_weights()
        matrix = value.embeddings if isinstance(value, keras.layers.Embedding) else value
        matrix = np.asarray(keras.ops.convert_to_numpy(matrix))
        if matrix.shape != tuple(layer.embeddings.shape):
            raise WestronError(
                f"set_input_embeddings: shape {matrix.shape} does not fit the embeddings "
                f"{tuple(layer.embeddings.shape)} (change the vocabulary size with resize_token_embeddings)"
            )
        layer.embeddings.assign(matrix.astype(layer.embeddings.dtype))

    def get_output_embeddings(self) -> keras.layers.Layer | None:
        """The LM head: a Dense layer, or the tied Embedding whose matrix it uses; None for a base model."""
        return None

    def vocab_parameters(self) -> list[str]:
        """Checkpoint names with one row per token of the input vocabulary, the same list as the PyTorch twin's."""
        return []

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> keras.layers.Embedding:
        """Gives the input vocabulary new_num_tokens rows, as the PyTorch twin does (see its docstring).

        Each resized variable is replaced by a new one at the same path (Keras variables cannot
        change shape); tied weights have no variable of their own and follow their source.
        """
        embeddings = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings
        self.build_weights()
        new_num_tokens = resized_vocab_size(
            embeddings.input_dim, new_num_tokens, pad_to_multiple_of, self.config.pad_token_id
        )
        variables = self.checkpoint_variables()
        for name in self.vocab_parameters():
            if name not in variables:
                continue  # tied: no variable on the TensorFlow side
            variable, transposed = variables[name]
            rows = variable.numpy().T if transposed else variable.numpy()  # (V, D)
            rows = resized_rows(rows, new_num_tokens, mean_resizing, self._embedding_init_std())
            layer = replace_variable(self, variable, rows.T if transposed else rows)
            if isinstance(layer, keras.layers.Embedding):
                layer.input_dim = new_num_tokens
                if getattr(layer, "padding_idx", None) is not None and layer.padding_idx >= new_num_tokens:
                    layer.padding_idx = None
            elif isinstance(layer, keras.layers.Dense):
                layer.units = new_num_tokens
        self._vocab_resized(new_num_tokens)
        vars(self).pop(COMPILED_SEARCHES_ATTRIBUTE, None)  # compiled searches hold the old variables
        return self.get_input_embeddings()

    def _vocab_resized(self, new_num_tokens: int) -> None:
        """Updates the config (and any variable sized by the vocabulary) after resize_token_embeddings."""
        self.config.vocab_size = new_num_tokens

    def _embedding_init_std(self) -> float:
        return getattr(self.config, "init_std", None) or getattr(self.config, "initializer_factor", 1.0)

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """The PyTorch twin's count: every weight but buffers (`buffer_names`), tied ones once;
        only_trainable leaves out frozen layers' weights, exclude_embeddings every Embedding's matrix."""
        self.build_weights()
        trainable = {id(variable) for variable in self.trainable_variables}
        embeddings = {
            id(layer.embeddings)
            for layer in self._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.Embedding) and layer.built
        }
        return sum(
            int(np.prod(variable.shape))
            for name, (variable, _) in self.checkpoint_variables().items()
            if name not in self.buffer_names
            and (id(variable) in trainable or not only_trainable)
            and not (exclude_embeddings and id(variable) in embeddings)
        )

    # ---- the checkpoint view of the variables --------------------------------------------------------

    def checkpoint_variables(self) -> dict[str, tuple[tf.Variable, bool]]:
        """{checkpoint name: (variable, stored transposed)} for every variable of the model."""
        self.build_weights()
        named: dict[str, tuple[tf.Variable, bool]] = {}
        for variable in self.weights:
            name, transposed = tf_to_checkpoint_name(variable.path)
            if name in named:
                raise RuntimeError(f"two variables map to checkpoint name {name!r}: {variable.path}")
            named[name] = (variable, transposed)
        return named

    def checkpoint_shapes(self) -> dict[str, tuple[int, ...]]:
        return {
            name: tuple(variable.shape)[::-1] if transposed else tuple(variable.shape)
            for name, (variable, transposed) in self.checkpoint_variables().items()
        }

    # ---- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike | None, **kwargs: Any) -> "TFPreTrainedModel":
        """Loads config.json, generation_config.json and the (PyTorch-named) weights of a folder or Hub repo.

        Takes Hugging Face 4.x's keywords as the PyTorch twin does (docs/hf_compatibility.md);
        `dtype=` is a Keras dtype policy ("float32", "bfloat16", "mixed_bfloat16", "mixed_float16")
        for every layer, `device=` ("cpu", "gpu:0") where the variables live, and
        `quantization="int8"` Keras's int8 Dense layers (`westron.tf_quantization`).

        Example (the same folder PyTorch reads):

            >>> from westron import TFMarianMTModel
            >>> model = TFMarianMTModel.from_pretrained(checkpoint)
            >>> model.save_pretrained("my-tf-opus-mt")  # PyTorch-named model.safetensors
            >>> TFMarianMTModel.from_pretrained("my-tf-opus-mt").config.d_model == model.config.d_model
            True
        """
        options = take_loading_kwargs(kwargs, framework="tf")
        hub_kwargs = options.hub_kwargs
        if path_or_repo_id is None and (options.config is None or options.state_dict is None):
            raise WestronError("from_pretrained(None) needs both config= and state_dict=")
        if path_or_repo_id is not None:
            recover_directory(path_or_repo_id)  # the leftovers of a save that was killed, if any
        config = options.config
        if config is None:
            config = cls.config_class.from_pretrained(path_or_repo_id, **hub_kwargs)
            config = check_config_overrides(config, options.config_overrides)
        state_dict = options.state_dict
        if state_dict is None:
            state_dict = load_state_dict(path_or_repo_id, framework="np", allow_pickle=options.allow_pickle, **hub_kwargs)
        state_dict = apply_key_mapping(state_dict, options.key_mapping)
        policy = resolve_dtype_policy(options.dtype, config)
        with tf_device_scope(options.device), dtype_policy_scope(policy):
            model = cls(config)
            model.load_checkpoint(state_dict, source=os.fspath(path_or_repo_id or "state_dict"))
            if options.quantization is not None:
                from westron.tf_quantization import quantize_model

                quantize_model(model, options.quantization)
        if path_or_repo_id is not None:
            model.generation_config = GenerationConfig.for_model(path_or_repo_id, config, **hub_kwargs)
            model.name_or_path = os.fspath(path_or_repo_id)
        model.generation_config.update(**generation_overrides(options.config_overrides))  # HF 4.x: both configs
        config._attn_implementation = "eager"  # TensorFlow's only path: scores, softmax, matmul
        if options.output_loading_info:  # loading is strict: anything missing or extra was an error
            return model, {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
        return model

    def load_checkpoint(self, state_dict: dict[str, np.ndarray], source: str = "state dict") -> None:
        """Assigns a checkpoint's arrays to the variables after checking every name and shape."""
        tied = self.tied_weights()
        variables = self.checkpoint_variables()
        state_dict, head_lacking = match_base_model_prefix(
            state_dict, variables, self.base_model_prefix, self.head_checkpoint_names
        )
        check_names_and_shapes(
            self.checkpoint_shapes(),
            {name: tuple(array.shape) for name, array in state_dict.items()},
            source,
            # a head variable a base checkpoint lacks keeps its initial zeros if untrained, as in HF
            optional={name for name in head_lacking if not variables[name][0].trainable},
            ignored=self.checkpoint_keys_to_ignore + [re.escape(name) + "$" for name in tied],
        )
        for name, (variable, transposed) in variables.items():
            if name not in state_dict:
                continue  # optional, above
            array = state_dict[name]
            if transposed:
                array = array.T
            variable.assign(tf.cast(np.asarray(array), variable.dtype))

    # ---- saving -----------------------------------------------------------------------------------

    def save_pretrained(self, save_directory: str | os.PathLike, max_shard_size: int | str = "5GB", **kwargs: Any) -> None:
        """Writes config.json, generation_config.json and a PyTorch-named model.safetensors as one atomic folder swap.

        Other files in the folder (a tokenizer's) are kept. HF 4.x's keywords are taken as the
        PyTorch twin takes them (docs/hf_compatibility.md).
        """
        take_save_kwargs(kwargs, framework="tf")
        if self.quantization is not None:
            raise WestronError(
                f"this model was quantized ({self.quantization}) for inference and cannot be saved: save the float "
                f"model and load it with quantization={self.quantization!r} where it runs"
            )
        state_dict = {
            name: np.ascontiguousarray(variable.numpy().T if transposed else variable.numpy())
            for name, (variable, transposed) in self.checkpoint_variables().items()
        }
        record_dtype(self.config, self.dtype_policy.variable_dtype)
        save_model_folder(save_directory, self.config, self.generation_config, state_dict, max_shard_size)

    # ---- generation -------------------------------------------------------------------------------

    def generate(self, inputs=None, attention_mask=None, **kwargs: Any) -> tf.Tensor:
        """Translates a batch: returns generated ids (batch * num_return_sequences, length) as a tf.Tensor.

        Runs as one compiled tf.function by default (`jit_compile=True`, shapes padded to buckets);
        `eager=True` runs the same search step by step in Python, for debugging. The source ids
        come as in HF 4.x: `generate(ids)`, `generate(inputs=ids)` or `generate(input_ids=ids)`;
        a `generation_config=` argument takes the special tokens it leaves unset from the model's.

        Example:

            >>> from westron import AutoTokenizer, TFAutoModelForSeq2SeqLM
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> model = TFAutoModelForSeq2SeqLM.from_pretrained(checkpoint)
            >>> batch = tokenizer(["Speak, friend, and enter."], return_tensors="tf")
            >>> ids = model.generate(**batch, max_new_tokens=8)
            >>> tokenizer.batch_decode(ids, skip_special_tokens=True)
            ['...']
        """
        from westron.generation.tf_search import generate

        return generate(self, inputs, attention_mask=attention_mask, **kwargs)

    def compute_transition_scores(self, sequences, scores, beam_indices=None, normalize_logits: bool = False) -> tf.Tensor:
        """Each generated token's score at the step that chose it, (N, steps) float32, as in HF 4.x.

        Example:

            >>> from westron import AutoTokenizer, TFAutoModelForSeq2SeqLM
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> model = TFAutoModelForSeq2SeqLM.from_pretrained(checkpoint)
            >>> batch = tokenizer(["Speak, friend, and enter."], return_tensors="tf")
            >>> out = model.generate(**batch, num_beams=2, max_new_tokens=8, return_dict_in_generate=True, output_scores=True)
            >>> scores = model.compute_transition_scores(out.sequences, out.scores, out.beam_indices)
            >>> tuple(scores.shape) == (1, out.sequences.shape[1] - 1)
            True
        """
        from westron.generation.tf_search import compute_transition_scores

        return compute_transition_scores(sequences, scores, beam_indices=beam_indices, normalize_logits=normalize_logits)


DTYPE_POLICIES = ("float32", "bfloat16", "float16", "mixed_bfloat16", "mixed_float16")


def resolve_dtype_policy(dtype: Any, config: PretrainedConfig) -> str | None:
    """A Keras dtype policy name from "float32", "bfloat16", "mixed_float16", ..., a tf.DType, a
    keras.DTypePolicy, or "auto" (config.json's dtype / torch_dtype, as in PyTorch)."""
    if dtype is None:
        return None
    given = dtype
    if dtype == "auto":
        dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32"
    if isinstance(dtype, keras.DTypePolicy):
        dtype = dtype.name
    elif isinstance(dtype, tf.DType):
        dtype = dtype.name
    if isinstance(dtype, str):
        dtype = dtype.removeprefix("torch.")
    if dtype not in DTYPE_POLICIES:
        raise WestronError(f"dtype={given!r} is not a Keras dtype policy Westron supports ({', '.join(DTYPE_POLICIES)})")
    return dtype


@contextlib.contextmanager
def dtype_policy_scope(policy: str | None):
    """Keras's global dtype policy set to `policy` while a model is built (every sublayer takes it), then restored."""
    if policy is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def resolve_tf_device(device: str) -> str:
    """Maps cpu, gpu, gpu:N, cuda, cuda:N to a TF device string that exists, or raises a WestronError."""
    spec = device.strip().lower()
    match = re.fullmatch(r"(cpu|gpu|cuda)(?::(\d+))?", spec)
    if not match:
        raise WestronError(f"{device!r} is not a device (use cpu, gpu, gpu:N, cuda or cuda:N)")
    kind, index = match.group(1), int(match.group(2) or 0)
    if kind == "cpu":
        return "/CPU:0"
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise WestronError(f"device {device} requested but TensorFlow sees no GPU")
    if index >= len(gpus):
        raise WestronError(f"device {device} requested but TensorFlow sees only {len(gpus)} GPU(s)")
    return f"/GPU:{index}"


def tf_device_scope(device: str | None):
    """`with tf.device(...)` for a user's device string; a no-op for None."""
    if device is None:
        return contextlib.nullcontext()
    return tf.device(resolve_tf_device(device))


def resized_rows(old: np.ndarray, new_num_tokens: int, mean_resizing: bool, std: float) -> np.ndarray:
    """old (V, D) -> (new_num_tokens, D): the first rows kept, added rows the old rows' mean or normal(0, std)."""
    kept = old[:new_num_tokens]
    added = new_num_tokens - kept.shape[0]
    if added <= 0:
        return kept.copy()
    if mean_resizing:
        rows = np.repeat(old.astype(np.float32).mean(axis=0, keepdims=True), added, axis=0)
    else:
        rows = np.random.default_rng().normal(0.0, std, (added, old.shape[1]))
    return np.concatenate([kept, rows.astype(old.dtype)], axis=0)


def replace_variable(model: keras.Model, variable, value: np.ndarray) -> keras.layers.Layer:
    """Swaps `variable` for a new one holding `value` (any shape) at the same path; returns its layer.

    Keras locks a built layer's state, and a variable's shape is fixed: so the old variable is
    untracked and the new one, created under the same name scopes, set in its attribute.
    """
    for layer in model._flatten_layers(include_self=True, recursive=True):
        attribute = next((key for key, held in vars(layer).items() if held is variable), None)
        if attribute is not None:
            break
    else:
        raise RuntimeError(f"no layer holds variable {variable.path}")
    *scopes, name = variable.path.split("/")
    with contextlib.ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(keras.name_scope(scope, deduplicate=False))
        new = keras.Variable(value, dtype=variable.dtype, trainable=variable.trainable, name=name)
    layer._untrack_variable(variable)
    locked = layer._tracker.locked
    layer._tracker.unlock()
    setattr(layer, attribute, new)
    if locked:
        layer._tracker.lock()
    return layer
