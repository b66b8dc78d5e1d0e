"""PyTorch base model: from_pretrained / save_pretrained / tying / device / dtype / generate.

A model's parameter paths are Hugging Face's checkpoint names, so loading is a name-for-name copy.
"""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

import torch
from torch import nn

from westron.checkpoint import check_names_and_shapes, load_state_dict, save_model_folder
from westron.configuration_utils import PretrainedConfig, record_dtype
from westron.errors import WestronError
from westron.file_utils import recover_directory
from westron.generation.configuration_utils import GenerationConfig
from westron.loading import apply_key_mapping, check_config_overrides, take_loading_kwargs, take_save_kwargs


class PreTrainedModel(nn.Module):
    config_class: ClassVar[type[PretrainedConfig]] = PretrainedConfig
    # Regexes for checkpoint tensors the model does not need (e.g. HF's saved sinusoidal tables).
    checkpoint_keys_to_ignore: ClassVar[list[str]] = []

    def __init__(self, config: PretrainedConfig):
        super().__init__()
        self.config = config
        self.generation_config = GenerationConfig.from_model_config(config)

    # ---- tying ----------------------------------------------------------------------------------

    def tied_weights(self) -> dict[str, str]:
        """Tied parameters under this config: {tied name: source name}. Subclasses override."""
        return {}

    def tie_weights(self) -> None:
        """Makes every tied parameter the same nn.Parameter object as its source."""
        for target, source in self.tied_weights().items():
            module_path, _, attribute = target.rpartition(".")
            setattr(self.get_submodule(module_path), attribute, self.get_parameter(source))

    # ---- device / dtype ---------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike | None, **kwargs: Any) -> "PreTrainedModel":
        """Loads config.json, generation_config.json and the weights of a folder or Hub repo.

        Takes Hugging Face 4.x's keywords (`torch_dtype` or `dtype`, `device_map`, `token`,
        `attn_implementation`, ...); each works as in HF, is a documented no-op, or is refused
        with one line (`westron.loading`, docs/hf_compatibility.md). Westron's own: `device=`,
        and `allow_pickle=True` to read a pytorch_model.bin.

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
        model.eval()  # as in HF: dropout is off until the caller trains
        model.set_attn_implementation(options.attn_implementation or "sdpa")
        if dtype is not None:
            model.to(dtype)
        if options.device is not None:
            model.to(resolve_device(options.device))
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
        check_names_and_shapes(
            {name: tuple(t.shape) for name, t in model_state.items()},
            {name: tuple(t.shape) for name, t in state_dict.items()},
            source,
            optional=tied,
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
        if state_dict is None:
            state_dict = self.state_dict()
        state_dict = {name: t.detach().cpu() for name, t in state_dict.items() if name not in tied}
        record_dtype(self.config, str(self.dtype).removeprefix("torch."))
        save_model_folder(save_directory, self.config, self.generation_config, state_dict, max_shard_size)

    # ---- generation -------------------------------------------------------------------------------

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any):
        """Translates a batch: returns generated ids (batch * num_return_sequences, length).

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

        return generate(self, input_ids, attention_mask=attention_mask, **kwargs)


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
