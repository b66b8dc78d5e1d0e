"""Hugging Face 4.x's from_pretrained keywords, and what Westron does with each.

HF's `from_pretrained` documents some forty keywords. Each has one outcome here, the same for every
model class: it works as in HF (`LoadOptions` carries it to the loader), it is a documented no-op
(`NO_OPS`: a hint that changes nothing Westron does; never stored on the config, so never written
to config.json), or it raises a WestronError naming it (`UNSUPPORTED`; HF's own default value is
accepted, since it asks for nothing). A keyword HF does not know must name a key of the config
(an override, as in HF); anything else is an error. docs/hf_compatibility.md has the table.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from westron.configuration_utils import pop_hub_kwargs
from westron.errors import WestronError
from westron.generation.configuration_utils import DEFAULTS as GENERATION_DEFAULTS

# Hints that change nothing in Westron: {keyword: why}.
NO_OPS: dict[str, str] = {
    "low_cpu_mem_usage": "Westron builds the model once and copies the weights in; there is no other path to pick",
    "_fast_init": "the weights are copied over the freshly built model either way",
    "offload_state_dict": "a memory hint for accelerate's offloading, which Westron does not use",
    "resume_download": "deprecated by HF 4.x; huggingface_hub always resumes",
    "mirror": "deprecated and ignored by HF 4.x",
    "trust_remote_code": "Westron never runs code from a checkpoint; its model families are built in",
    "code_revision": "only used for remote code, which Westron never runs",
}

# Refused unless given HF's default: {keyword: (allowed values, what the user sees)}.
UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "from_tf": ((False,), "Westron reads safetensors folders; convert a tf_model.h5 with transformers first"),
    "from_flax": ((False,), "Westron reads safetensors folders; convert a flax_model.msgpack with transformers first"),
    "ignore_mismatched_sizes": ((False,), "every checkpoint tensor must fit the model; change config.json instead"),
    "weights_only": ((True,), "Westron never unpickles arbitrary objects"),
    "variant": ((None,), "weight-file variants (model.<variant>.safetensors) are not supported"),
    "max_memory": ((None,), "Westron places the whole model on one device (device_map='auto', 'cpu', 'cuda:N')"),
    "offload_folder": ((None,), "Westron does not offload weights to disk"),
    "load_in_8bit": ((False,), "bitsandbytes quantization is not supported (Westron's own: quantization='int8')"),
    "load_in_4bit": ((False,), "bitsandbytes quantization is not supported (Westron's own: quantization='int8')"),
    "quantization_config": ((None,), "bitsandbytes quantization is not supported (Westron's own: quantization='int8')"),
    "adapter_kwargs": ((None,), "PEFT adapters are not supported"),
    "adapter_name": ((None, "default"), "PEFT adapters are not supported"),
    "proxies": ((None,), "huggingface_hub takes proxies from the HTTP_PROXY / HTTPS_PROXY environment variables"),
    "gguf_file": ((None,), "GGUF files are not supported"),
    "tp_plan": ((None,), "tensor parallelism is not supported"),
}

# Keywords that work, with the framework(s) they work in. Hub keywords are listed in configuration_utils.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "config": ("pt", "tf"),
    "state_dict": ("pt", "tf"),
    "output_loading_info": ("pt", "tf"),
    "key_mapping": ("pt", "tf"),
    "use_safetensors": ("pt", "tf"),
    "dtype": ("pt", "tf"),
    "torch_dtype": ("pt",),
    "device_map": ("pt",),
    "attn_implementation": ("pt", "tf"),
    "allow_pickle": ("pt", "tf"),  # Westron's own: opt in to pytorch_model.bin
    "device": ("pt", "tf"),  # Westron's own: where the model goes
    "quantization": ("pt", "tf"),  # Westron's own: "int8" (westron/torch_quantization.py, tf_quantization.py)
    "from_pt": ("tf",),  # HF 4.x TF: read the PyTorch weights, which is all Westron's TF models ever read
}

ATTN_IMPLEMENTATIONS = {"pt": ("eager", "sdpa"), "tf": ("eager",)}

# What from_pretrained(quantization=...) and the CLI's --quantize take. "int8": every matrix product
# with a weight (nn.Linear / keras Dense) in int8, weights per output channel, activations quantized
# on the fly; float32 everywhere else. Inference only: a quantized model cannot be saved or trained.
QUANTIZATION_METHODS = ("int8",)


@dataclasses.dataclass
class LoadOptions:
    """What a from_pretrained call asked for, checked; `config_overrides` are the keywords left over."""

    hub_kwargs: dict[str, Any]
    config_overrides: dict[str, Any]
    config: Any = None
    state_dict: Any = None
    output_loading_info: bool = False
    key_mapping: dict[str, str] | None = None
    allow_pickle: bool = False
    dtype: Any = None  # as given: resolved by the framework's loader
    device: Any = None  # PyTorch: device or device_map; TensorFlow: device
    attn_implementation: str | None = None
    quantization: str | None = None


def take_loading_kwargs(kwargs: dict[str, Any], framework: str) -> LoadOptions:
    """Splits from_pretrained's keywords into LoadOptions; raises a WestronError for one it cannot honour."""
    kwargs = dict(kwargs)
    hub_kwargs = pop_hub_kwargs(kwargs)
    for name in NO_OPS:
        kwargs.pop(name, None)
    for name, (allowed, why) in UNSUPPORTED.items():
        if name in kwargs:
            value = kwargs.pop(name)
            if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
                raise WestronError(f"from_pretrained({name}={value!r}) is not supported: {why}")
    for name, frameworks in SUPPORTED.items():
        if name in kwargs and framework not in frameworks:
            raise WestronError(_not_in_framework(name, framework))
    options = LoadOptions(hub_kwargs=hub_kwargs, config_overrides={})
    kwargs.pop("from_pt", None)  # True or False, the TF loader reads the PyTorch-named safetensors (or .bin)
    options.config = kwargs.pop("config", None)
    options.state_dict = kwargs.pop("state_dict", None)
    options.output_loading_info = bool(kwargs.pop("output_loading_info", False))
    options.allow_pickle = bool(kwargs.pop("allow_pickle", False))
    use_safetensors = kwargs.pop("use_safetensors", None)
    if use_safetensors is False and not options.allow_pickle:
        raise WestronError(
            "from_pretrained(use_safetensors=False) reads pytorch_model.bin, a pickle: opt in with allow_pickle=True"
        )
    if use_safetensors is True:
        options.allow_pickle = False  # safetensors or nothing, as in HF
    options.key_mapping = kwargs.pop("key_mapping", None)
    if options.key_mapping is not None and not isinstance(options.key_mapping, dict):
        raise WestronError("key_mapping must be a dict {regex: replacement} applied to the checkpoint's names")
    if "dtype" in kwargs and "torch_dtype" in kwargs:
        raise WestronError("give dtype= or its HF 4.x name torch_dtype=, not both")
    options.dtype = kwargs.pop("dtype", kwargs.pop("torch_dtype", None))
    if "device" in kwargs and "device_map" in kwargs:
        raise WestronError("give device= or device_map=, not both")
    options.device = kwargs.pop("device", None)
    if "device_map" in kwargs:
        options.device = device_from_map(kwargs.pop("device_map"))
    attn = kwargs.pop("attn_implementation", None)
    if attn is not None and attn not in ATTN_IMPLEMENTATIONS[framework]:
        known = " or ".join(repr(a) for a in ATTN_IMPLEMENTATIONS[framework])
        where = "PyTorch" if framework == "pt" else "TensorFlow"
        raise WestronError(f"attn_implementation={attn!r} is not available in Westron's {where} models (use {known})")
    options.attn_implementation = attn
    options.quantization = check_quantization(kwargs.pop("quantization", None))
    if options.config is not None and kwargs:
        raise WestronError(f"unexpected from_pretrained argument(s) with config=: {', '.join(sorted(kwargs))}")
    options.config_overrides = kwargs
    return options


def check_quantization(method: Any) -> str | None:
    """`method` if it names a quantization Westron runs (QUANTIZATION_METHODS), None for None; else a WestronError."""
    if method is None or method in QUANTIZATION_METHODS:
        return method
    known = ", ".join(repr(m) for m in QUANTIZATION_METHODS)
    raise WestronError(f"quantization={method!r} is not supported (use {known}, or None for float weights)")


def _not_in_framework(name: str, framework: str) -> str:
    if framework == "tf" and name == "torch_dtype":
        return "TensorFlow models take dtype= (a Keras dtype policy such as 'bfloat16' or 'mixed_float16'), not torch_dtype="
    if framework == "tf" and name == "device_map":
        return "TensorFlow models take device= ('cpu', 'gpu:0'), not device_map="
    return f"from_pretrained({name}=...) is not available for {framework} models"


def device_from_map(device_map: Any) -> Any:
    """HF's device_map for a whole model: 'auto' (the first GPU, else the CPU), a device, or {'': device}."""
    if isinstance(device_map, dict):
        if set(device_map) != {""}:
            raise WestronError(
                "device_map with per-module devices is not supported: Westron places the whole model on one device "
                "(device_map='auto', 'cpu', 'cuda:N' or {'': device})"
            )
        device_map = device_map[""]
    if device_map == "auto":
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device_map in ("balanced", "balanced_low_0", "sequential"):
        raise WestronError(f"device_map={device_map!r} splits a model over devices, which Westron does not (use 'auto')")
    if isinstance(device_map, int) and not isinstance(device_map, bool):
        return f"cuda:{device_map}"
    return device_map


def apply_key_mapping(state_dict: dict[str, Any], key_mapping: dict[str, str] | None) -> dict[str, Any]:
    """Renames checkpoint tensors as HF's key_mapping does: each regex substituted in turn; the first that matches wins."""
    if not key_mapping:
        return state_dict
    renamed = {}
    for name, tensor in state_dict.items():
        for pattern, replacement in key_mapping.items():
            new_name, count = re.subn(pattern, replacement, name)
            if count:
                name = new_name
                break
        renamed[name] = tensor
    return renamed


def check_config_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """The config with `overrides` applied; a keyword the config does not have is an error, as in HF,
    unless it is a generation setting (`generation_overrides`: those go to the generation config)."""
    if not overrides:
        return config
    unknown = sorted(key for key in overrides if not hasattr(config, key) and key not in GENERATION_DEFAULTS)
    if unknown:
        raise WestronError(
            f"unexpected from_pretrained argument(s): {', '.join(unknown)} "
            f"(neither a loading option nor a key of {type(config).__name__})"
        )
    return type(config).from_dict(config.to_dict(), **{k: v for k, v in overrides.items() if hasattr(config, k)})


def generation_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """The generation settings among from_pretrained's keywords: HF 4.x gave them to the generation config
    too, so `from_pretrained(path, num_beams=2)` makes generate() use 2 beams (config.json keeps them as well
    where it has the key, as opus-mt's does)."""
    return {key: value for key, value in overrides.items() if key in GENERATION_DEFAULTS}


# save_pretrained's HF 4.x keywords (PyTorch's and TensorFlow's), the same three outcomes.
SAVE_NO_OPS: dict[str, str] = {
    "token": "only used by push_to_hub",
    "create_pr": "only used by push_to_hub",
    "save_peft_format": "Westron has no PEFT adapters",
    "version": "only used by saved_model",
    "signatures": "only used by saved_model",
}
SAVE_UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "safe_serialization": ((True,), "Westron writes safetensors only"),
    "is_main_process": ((True,), "call save_pretrained from one process only"),
    "push_to_hub": ((False,), "push the saved folder with huggingface_hub.upload_folder"),
    "save_function": ((None,), "Westron writes its files itself, atomically"),
    "variant": ((None,), "weight-file variants (model.<variant>.safetensors) are not supported"),
    "saved_model": ((False,), "SavedModel export is not supported yet"),
}


def take_save_kwargs(kwargs: dict[str, Any], framework: str) -> Any:
    """Checks save_pretrained's HF keywords; returns the `state_dict=` to save instead of the model's, or None."""
    kwargs = dict(kwargs)
    for name in SAVE_NO_OPS:
        kwargs.pop(name, None)
    for name, (allowed, why) in SAVE_UNSUPPORTED.items():
        if name in kwargs:
            value = kwargs.pop(name)
            if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
                raise WestronError(f"save_pretrained({name}={value!r}) is not supported: {why}")
    state_dict = kwargs.pop("state_dict", None)
    if state_dict is not None and framework != "pt":
        raise WestronError("save_pretrained(state_dict=...) is a PyTorch argument")
    if kwargs:
        raise WestronError(f"unexpected save_pretrained argument(s): {', '.join(sorted(kwargs))}")
    return state_dict
