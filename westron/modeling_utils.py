"""PyTorch base model: from_pretrained / save_pretrained / tying / device / dtype / generate.

A model's parameter paths are Hugging Face's checkpoint names, so loading is a name-for-name copy.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

import torch
from torch import nn

from westron.checkpoint import check_names_and_shapes, load_state_dict, match_base_model_prefix, save_model_folder
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


class PreTrainedModel(nn.Module):
    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    # Regexes for checkpoint tensors the model does not need (e.g. HF's saved sinusoidal tables).
    checkpoint_keys_to_ignore: ClassVar[list[str]] = []
    # Where the LM class keeps its base model ("model" in Marian and M2M100, none in T5), and the
    # checkpoint names of its head: a base model loads an LM checkpoint and the other way round.
    base_model_prefix: ClassVar[str] = ""
    head_checkpoint_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.config = config
        self.generation_config = GenerationConfig.from_model_config(config)
        # model.config's generation settings now: HF 4.x's generate applies later edits to them (deprecated there)
        self.config_generation_snapshot = config_generation_snapshot(config)
        self.quantization: str | None = None  # "int8" once torch_quantization.quantize_model ran
        self.name_or_path = ""  # HF 4.x's: the folder or Hub id from_pretrained read (a pipeline finds the tokenizer there)

    def __call__(self, *args: Any, return_dict: bool | None = None, **kwargs: Any):
        """HF 4.x's return_dict: False gives the output's set fields as a tuple; None and True the output object."""
        output = super().__call__(*args, **kwargs)
        return output.to_tuple() if return_dict is False else output

    # ---- tying ----------------------------------------------------------------------------------

    def tied_weights(self) -> dict[str, str]:
        """Tied parameters under this config: {tied name: source name}. Subclasses override."""
        return {}

    def tie_weights(self) -> None:
        """Makes every tied parameter the same nn.Parameter object as its source."""
        for target, source in self.tied_weights().items():
            module_path, _, attribute = target.rpartition(".")
            setattr(self.get_submodule(module_path), attribute, self.get_parameter(source))

    def get_encoder(self) -> nn.Module:
        """HF 4.x's accessor: the encoder stack; `get_encoder()(input_ids=ids, attention_mask=mask)` gives
        the EncoderOutput that `model(encoder_outputs=..., ...)` takes."""
        base = getattr(self, self.base_model_prefix, self) if self.base_model_prefix else self
        return base.encoder

    # ---- embeddings (Hugging Face's accessors, used by fine-tuning scripts) ---------------------------

    def get_input_embeddings(self) -> nn.Embedding:
        """The nn.Embedding the encoder reads its input ids through."""
        raise NotImplementedError(f"{type(self).__name__} does not name its input embeddings")

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not name its input embeddings")

    def get_output_embeddings(self) -> nn.Linear | None:
        """The LM head (its weight is the input embeddings' when tied); None for a base model."""
        return None

    def vocab_parameters(self) -> list[str]:
        """Parameters with one row per token of the input vocabulary: what resize_token_embeddings resizes."""
        return []

    def resize_token_embeddings(
        self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None, mean_resizing: bool = True
    ) -> nn.Embedding:
        """Gives the input vocabulary new_num_tokens rows (rounded up to pad_to_multiple_of), as Hugging Face does.

        Kept rows are copied; added rows are the mean of the old rows (HF samples them within 1e-9 of
        the covariance around that mean) or, with mean_resizing=False, normal(0, the init std). Every
        parameter indexed by that vocabulary (vocab_parameters: embeddings, an untied LM head) is
        resized; tied weights stay tied. Returns the input embeddings.

        Example (after adding tokens to the tokenizer):

            >>> from westron import AutoModelForSeq2SeqLM, AutoTokenizer
            >>> model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
            >>> embeddings = model.resize_token_embeddings(model.config.vocab_size + 3)
            >>> embeddings.num_embeddings == model.config.vocab_size
            True
        """
        embeddings = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings
        new_num_tokens = resized_vocab_size(
            embeddings.num_embeddings, new_num_tokens, pad_to_multiple_of, self.config.pad_token_id
        )
        tied = self.tied_weights()
        with torch.no_grad():
            for name in self.vocab_parameters():
                if name in tied:
                    continue  # re-tied below, to its resized source
                module_path, _, attribute = name.rpartition(".")
                module = self.get_submodule(module_path)
                old = getattr(module, attribute)
                new = resized_rows(old, new_num_tokens, mean_resizing, self._embedding_init_std())
                setattr(module, attribute, nn.Parameter(new, requires_grad=old.requires_grad))
        self._vocab_resized(new_num_tokens)
        self.tie_weights()
        for name in self.vocab_parameters():  # the sizes modules report, tied ones too
            module = self.get_submodule(name.rpartition(".")[0])
            if isinstance(module, nn.Embedding):
                module.num_embeddings = new_num_tokens
                if module.padding_idx is not None and module.padding_idx >= new_num_tokens:
                    module.padding_idx = None
            else:
                module.out_features = new_num_tokens
        return self.get_input_embeddings()

    def _vocab_resized(self, new_num_tokens: int) -> None:
        """Updates the config (and any buffer sized by the vocabulary) after resize_token_embeddings."""
        self.config.vocab_size = new_num_tokens

    def _embedding_init_std(self) -> float:
        return getattr(self.config, "init_std", None) or getattr(self.config, "initializer_factor", 1.0)

    # ---- device / dtype ---------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """The parameters' count, tied ones once, as HF 4.x counts (its keywords: requires_grad ones only;
        without every nn.Embedding's weight). Marian's fixed sinusoidal position tables are buffers
        here, parameters in HF: HF's count is that much higher unless exclude_embeddings=True."""
        embeddings = {f"{name}.weight" for name, module in self.named_modules() if isinstance(module, nn.Embedding)}
        return sum(
            parameter.numel()
            for name, parameter in self.named_parameters()
            if (parameter.requires_grad or not only_trainable) and not (exclude_embeddings and name in embeddings)
        )

    # ---- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike | None, **kwargs: Any) -> "PreTrainedModel":
        """Loads config.json, generation_config.json and the weights of a folder or Hub repo.

        Takes Hugging Face 4.x's keywords (`torch_dtype` or `dtype`, `device_map`, `token`,
        `attn_implementation`, ...); each works as in HF, is a documented no-op, or is refused
        with one line (`westron.loading`, docs/hf_compatibility.md). Westron's own: `device=`,
        `allow_pickle=True` to read a pytorch_model.bin, and `quantization="int8"` for int8
        inference on the CPU (`westron.torch_quantization`).

        Example (`checkpoint`: a folder or Hub id such as "Helsinki-NLP/opus-mt-en-de"):

            >>> from westron import MarianMTModel
            >>> model = MarianMTModel.from_pretrained(checkpoint)
            >>> model.save_pretrained("my-opus-mt")  # config.json, generation_config.json, model.safetensors
            >>> MarianMTModel.from_pretrained("my-opus-mt").config.d_model == model.config.d_model
            True
        """
        options = take_loading_kwargs(kwargs, framework="pt")
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
            state_dict = load_state_dict(path_or_repo_id, framework="pt", allow_pickle=options.allow_pickle, **hub_kwargs)
        state_dict = apply_key_mapping(state_dict, options.key_mapping)
        dtype = resolve_torch_dtype(options.dtype, config, state_dict)
        model = cls(config)
        model.load_checkpoint(state_dict, source=os.fspath(path_or_repo_id or "state_dict"))
        if path_or_repo_id is not None:
            model.generation_config = GenerationConfig.for_model(path_or_repo_id, config, **hub_kwargs)
            model.name_or_path = os.fspath(path_or_repo_id)
        model.generation_config.update(**generation_overrides(options.config_overrides))  # HF 4.x: both configs
        model.eval()  # as in HF: dropout is off until the caller trains
        model.set_attn_implementation(options.attn_implementation or "sdpa")
        if dtype is not None:
            model.to(dtype)
        if options.device is not None:
            model.to(resolve_device(options.device))
        if options.quantization is not None:
            from westron.torch_quantization import quantize_model

            quantize_model(model, options.quantization)
        if options.output_loading_info:  # loading is strict: anything missing or extra was an error
            return model, {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
        return model

    def set_attn_implementation(self, name: str) -> None:
        """"sdpa" (fused, the default) or "eager" (scores, softmax and matmul written out), as HF names them."""
        if name not in ("eager", "sdpa"):
            raise WestronError(f"attn_implementation={name!r} is not available in Westron's PyTorch models (use 'eager' or 'sdpa')")
        for module in self.modules():
            if hasattr(module, "attn_implementation"):
                module.attn_implementation = name
        self.config._attn_implementation = name

    def load_checkpoint(self, state_dict: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Copies a checkpoint's tensors into the model after checking every name and shape."""
        tied = self.tied_weights()
        model_state = self.state_dict()
        state_dict, head_lacking = match_base_model_prefix(
            state_dict, model_state, self.base_model_prefix, self.head_checkpoint_names
        )
        buffers = dict(self.named_buffers())  # a head buffer a base checkpoint lacks keeps its initial zeros, as in HF
        check_names_and_shapes(
            {name: tuple(t.shape) for name, t in model_state.items()},
            {name: tuple(t.shape) for name, t in state_dict.items()},
            source,
            optional=set(tied) | {name for name in head_lacking if name in buffers},
            ignored=self.checkpoint_keys_to_ignore + [re.escape(name) + "$" for name in tied],
        )
        with torch.no_grad():
            for name, tensor in state_dict.items():
                if name in model_state and name not in tied:
                    model_state[name].copy_(tensor)
        self.tie_weights()

    # ---- saving -----------------------------------------------------------------------------------

    def save_pretrained(self, save_directory: str | os.PathLike, max_shard_size: int | str = "5GB", **kwargs: Any) -> None:
        """Writes config.json, generation_config.json and model.safetensors (or shards) as one atomic folder swap.

        Tied parameters are saved once, under their source name, as Hugging Face does. Other files
        in the folder (a tokenizer's) are kept. HF 4.x's keywords (`safe_serialization=True`,
        `state_dict=`, ...) are taken as docs/hf_compatibility.md says.
        """
        tied = self.tied_weights()
        state_dict = take_save_kwargs(kwargs, framework="pt")
        if self.quantization is not None and state_dict is None:
            raise WestronError(
                f"this model was quantized ({self.quantization}) for inference and cannot be saved: save the float "
                f"model and load it with quantization={self.quantization!r} where it runs"
            )
        if state_dict is None:
            state_dict = self.state_dict()
        for name, value in state_dict.items():  # a quantized model's own state_dict holds packed params and dtypes
            if not isinstance(value, torch.Tensor) or value.is_quantized:
                raise WestronError(
                    f"state_dict[{name!r}] is not a plain tensor ({type(value).__name__}): a checkpoint holds float "
                    "tensors (a quantized model's state_dict cannot be saved; save the float model)"
                )
        state_dict = {name: t.detach().cpu() for name, t in state_dict.items() if name not in tied}
        record_dtype(self.config, str(self.dtype).removeprefix("torch."))
        save_model_folder(save_directory, self.config, self.generation_config, state_dict, max_shard_size)

    # ---- generation -------------------------------------------------------------------------------

    def generate(self, inputs: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs: Any):
        """Translates a batch: returns generated ids (batch * num_return_sequences, length).

        The source ids come as in HF 4.x: `generate(ids)`, `generate(inputs=ids)` or
        `generate(input_ids=ids)`; a `generation_config=` argument takes the special tokens it
        leaves unset from the model's.

        Example:

            >>> from westron import AutoModelForSeq2SeqLM, AutoTokenizer
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
            >>> batch = tokenizer(["Speak, friend, and enter."], return_tensors="pt")
            >>> ids = model.generate(**batch, num_beams=2, max_new_tokens=8)
            >>> tuple(ids.shape[:1]), ids.dtype
            ((1,), torch.int64)
            >>> tokenizer.batch_decode(ids, skip_special_tokens=True)
            ['...']
        """
        from westron.generation.torch_search import generate

        return generate(self, inputs, attention_mask=attention_mask, **kwargs)

    def compute_transition_scores(self, sequences, scores, beam_indices=None, normalize_logits: bool = False):
        """Each generated token's score at the step that chose it, (N, steps) float32, as in HF 4.x.

        Example:

            >>> from westron import AutoModelForSeq2SeqLM, AutoTokenizer
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> model = AutoModelForSeq2SeqLM.from_pretrained(checkpoint)
            >>> batch = tokenizer(["Speak, friend, and enter."], return_tensors="pt")
            >>> out = model.generate(**batch, num_beams=2, max_new_tokens=8, return_dict_in_generate=True, output_scores=True)
            >>> scores = model.compute_transition_scores(out.sequences, out.scores, out.beam_indices)
            >>> tuple(scores.shape) == (1, out.sequences.shape[1] - 1)
            True
        """
        from westron.generation.torch_search import compute_transition_scores

        return compute_transition_scores(sequences, scores, beam_indices=beam_indices, normalize_logits=normalize_logits)


def resolve_torch_dtype(dtype: Any, config: PretrainedConfig, state_dict: dict[str, torch.Tensor]) -> torch.dtype | None:
    """A floating torch.dtype from HF's forms: a torch.dtype, its name ("float16"), or "auto".

    "auto" is config.json's dtype (HF 5) or torch_dtype (HF 4.x), else the checkpoint's own.
    """
    if dtype is None:
        return None
    given = dtype
    if dtype == "auto":
        dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
        if dtype is None:
            dtype = next((t.dtype for t in state_dict.values() if t.is_floating_point()), torch.float32)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise WestronError(f"dtype={given!r} is not a floating torch dtype (use torch.float16, 'bfloat16', 'auto', ...)")
    return dtype


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch.device that exists on this machine, or a WestronError naming what is there."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise WestronError(f"{device!r} is not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise WestronError(f"device {device} requested but no CUDA GPU is available")
        if device.index is not None and device.index >= count:
            raise WestronError(f"device {device} requested but only {count} CUDA GPU(s) are available")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise WestronError(f"device {device} requested but this machine has no Apple GPU (MPS)")
    elif device.type != "cpu":
        raise WestronError(f"device type {device.type!r} is not supported (use cpu or cuda)")
    return device


def resized_rows(old: torch.Tensor, new_num_tokens: int, mean_resizing: bool, std: float) -> torch.Tensor:
    """old (V, D) -> (new_num_tokens, D): the first rows kept, added rows the old rows' mean or normal(0, std)."""
    kept = old[:new_num_tokens]
    added = new_num_tokens - kept.shape[0]
    if added <= 0:
        return kept.clone()
    if mean_resizing:
        rows = old.float().mean(dim=0, keepdim=True).expand(added, -1).to(old.dtype)
    else:
        rows = torch.empty(added, old.shape[1], dtype=old.dtype, device=old.device).normal_(0.0, std)
    return torch.cat([kept, rows], dim=0)
