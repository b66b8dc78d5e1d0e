"""Checkpoint files: safetensors in and out (sharded too), pickles on request, and the PT<->TF name rule.

One checkpoint feeds every reader. Tensor names are Hugging Face's PyTorch names
(`model.encoder.layers.0.self_attn.q_proj.weight`); PyTorch modules carry those names as their
attribute paths, and TensorFlow variables map onto them by `tf_to_checkpoint_name`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from westron.errors import CheckpointError
from westron.file_utils import atomic_directory, atomic_path, atomic_write
from westron.hub import cached_file

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PICKLE_WEIGHTS_NAME = "pytorch_model.bin"
PICKLE_WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"

# ---- the PT<->TF naming rule -------------------------------------------------------------------
# A Keras variable's path is its layers' names joined by "/" (each sublayer is created with
# name= its PyTorch attribute name), then the variable's own name. The first component is the
# top-level Keras model's name, which has no PyTorch counterpart.
_TF_SUFFIX_TO_PT = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias"}


def tf_to_checkpoint_name(variable_path: str) -> tuple[str, bool]:
    """Maps a Keras variable path to (checkpoint name, whether the array is stored transposed)."""
    parts = variable_path.split("/")[1:]
    if not parts:
        raise ValueError(f"variable path {variable_path!r} has no layer component")
    suffix = parts[-1].split(":")[0]
    parts[-1] = _TF_SUFFIX_TO_PT.get(suffix, suffix)
    # Dense kernels are (in, out); torch.nn.Linear weights are (out, in).
    return ".".join(parts), suffix == "kernel"


# ---- reading -------------------------------------------------------------------------------------


def _ensure_numpy_bfloat16() -> None:
    # ml_dtypes registers bfloat16 with numpy, so bf16 safetensors load as numpy arrays.
    try:
        import ml_dtypes  # noqa: F401  (ships with TensorFlow and JAX)
    except ImportError:
        pass


def resolve_weight_files(
    path_or_repo_id: str | os.PathLike, allow_pickle: bool = False, **hub_kwargs: Any
) -> tuple[list[str], bool]:
    """Finds a checkpoint's weight files; returns (paths, whether they are pickles)."""
    single = cached_file(path_or_repo_id, SAFE_WEIGHTS_NAME, required=False, **hub_kwargs)
    if single:
        return [single], False
    index = cached_file(path_or_repo_id, SAFE_WEIGHTS_INDEX_NAME, required=False, **hub_kwargs)
    if index:
        return _shards_from_index(path_or_repo_id, index, hub_kwargs), False
    pickle_file = cached_file(path_or_repo_id, PICKLE_WEIGHTS_NAME, required=False, **hub_kwargs)
    pickle_index = None if pickle_file else cached_file(
        path_or_repo_id, PICKLE_WEIGHTS_INDEX_NAME, required=False, **hub_kwargs
    )
    if pickle_file or pickle_index:
        if not allow_pickle:
            raise CheckpointError(
                f"{path_or_repo_id!r} only has PyTorch pickle weights ({PICKLE_WEIGHTS_NAME}); loading a pickle "
                "can run arbitrary code, so pass allow_pickle=True (CLI: --allow-pickle) if you trust its source"
            )
        if pickle_file:
            return [pickle_file], True
        return _shards_from_index(path_or_repo_id, pickle_index, hub_kwargs), True
    raise CheckpointError(f"{path_or_repo_id!r} has no weights ({SAFE_WEIGHTS_NAME} or {SAFE_WEIGHTS_INDEX_NAME})")


def _shards_from_index(path_or_repo_id, index_path: str, hub_kwargs) -> list[str]:
    try:
        with open(index_path, encoding="utf-8") as handle:
            weight_map = json.load(handle)["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{index_path} is not a valid checkpoint index ({error})") from None
    shard_names = sorted(set(weight_map.values()))
    return [cached_file(path_or_repo_id, name, **hub_kwargs) for name in shard_names]


def load_state_dict(
    path_or_repo_id: str | os.PathLike, framework: str = "np", allow_pickle: bool = False, **hub_kwargs: Any
) -> dict[str, Any]:
    """Reads every tensor of a checkpoint: numpy arrays (framework="np") or torch tensors ("pt")."""
    files, is_pickle = resolve_weight_files(path_or_repo_id, allow_pickle=allow_pickle, **hub_kwargs)
    state_dict: dict[str, Any] = {}
    for path in files:
        state_dict.update(_load_pickle(path, framework) if is_pickle else _load_safetensors(path, framework))
    check_finite(state_dict, os.fspath(path_or_repo_id))
    return state_dict


def check_finite(state_dict: Mapping[str, Any], source: str) -> None:
    """A NaN or infinite weight (a diverged or corrupt checkpoint) is an error at load, not empty output later.

    One pass over the weights as they are loaded (well under a second for a 300M-parameter model).
    """
    bad = [name for name, tensor in state_dict.items() if not _all_finite(tensor)]
    if bad:
        shown = ", ".join(bad[:5]) + (f", ... ({len(bad) - 5} more)" if len(bad) > 5 else "")
        raise CheckpointError(f"checkpoint {source} holds NaN or infinite weights in {shown} (corrupt or diverged)")


def _all_finite(tensor) -> bool:
    if isinstance(tensor, np.ndarray):
        if tensor.dtype.kind in "iub":
            return True
        return bool(np.isfinite(tensor).all())  # (bfloat16 too, through ml_dtypes)
    if not tensor.is_floating_point():
        return True
    return bool(tensor.isfinite().all())


def _load_safetensors(path: str, framework: str) -> dict[str, Any]:
    from safetensors import SafetensorError

    try:
        if framework == "pt":
            from safetensors.torch import load_file

            return load_file(path)
        _ensure_numpy_bfloat16()
        from safetensors.numpy import load_file

        return load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} is not a valid safetensors file ({error})") from None


def _load_pickle(path: str, framework: str) -> dict[str, Any]:
    import torch  # pickled checkpoints are torch's format: reading one needs torch

    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad pickle
        raise CheckpointError(f"{path} is not a loadable PyTorch checkpoint ({error})") from None
    if framework == "pt":
        return state_dict
    return {name: _torch_to_numpy(tensor) for name, tensor in state_dict.items()}


def _torch_to_numpy(tensor) -> np.ndarray:
    import torch

    if tensor.dtype == torch.bfloat16:
        _ensure_numpy_bfloat16()
        return tensor.view(torch.int16).numpy().view("bfloat16")
    return tensor.numpy()


# ---- writing -------------------------------------------------------------------------------------

_SIZE_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]I?B)\s*", size.upper())
    if not match:
        raise ValueError(f"size {size!r} is not like '5GB' or '500MiB'")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def save_state_dict(
    state_dict: Mapping[str, Any],
    save_directory: str | os.PathLike,
    max_shard_size: int | str = "5GB",
    metadata: Mapping[str, str] | None = None,
) -> list[str]:
    """Writes tensors as model.safetensors, or as shards plus an index past `max_shard_size`.

    Each file is written to a temporary name and renamed into place. Values may be numpy arrays
    or torch tensors (not both in one call). Returns the written file names.
    """
    os.makedirs(save_directory, exist_ok=True)
    metadata = {"format": "pt", **(metadata or {})}
    shards = _split_into_shards(state_dict, parse_size(max_shard_size))
    if len(shards) == 1:
        _write_safetensors(shards[0], os.path.join(save_directory, SAFE_WEIGHTS_NAME), metadata)
        _remove_stale(save_directory, keep={SAFE_WEIGHTS_NAME})
        return [SAFE_WEIGHTS_NAME]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards):
        _write_safetensors(shard, os.path.join(save_directory, name), metadata)
        weight_map.update(dict.fromkeys(shard, name))
    index = {"metadata": {"total_size": sum(_nbytes(t) for t in state_dict.values())}, "weight_map": weight_map}
    with atomic_write(os.path.join(save_directory, SAFE_WEIGHTS_INDEX_NAME)) as handle:
        json.dump(index, handle, indent=2, sort_keys=True)
        handle.write("\n")
    _remove_stale(save_directory, keep=set(names) | {SAFE_WEIGHTS_INDEX_NAME})
    return names + [SAFE_WEIGHTS_INDEX_NAME]


def save_model_folder(
    save_directory: str | os.PathLike, config, generation_config, state_dict: Mapping[str, Any], max_shard_size: int | str
) -> None:
    """A model's save_pretrained (both frameworks): config.json, generation_config.json and weights as ONE atomic step.

    The folder is rebuilt beside the old one and swapped in whole (`atomic_directory`), so a save
    killed at any moment leaves the old checkpoint or the new one, never the new config beside the
    old weights. Files the model does not own (a tokenizer saved into the same folder, a trainer's
    state) are carried over; weight files of an earlier save (stale shards) are not.
    """
    from westron.configuration_utils import CONFIG_NAME
    from westron.generation.configuration_utils import GENERATION_CONFIG_NAME

    owned = {CONFIG_NAME, GENERATION_CONFIG_NAME}
    with atomic_directory(save_directory, keep=lambda name: name not in owned and not is_weight_file(name)) as folder:
        config.to_json_file(os.path.join(folder, CONFIG_NAME))
        generation_config.to_json_file(os.path.join(folder, GENERATION_CONFIG_NAME))
        save_state_dict(state_dict, folder, max_shard_size=max_shard_size)


def is_weight_file(name: str) -> bool:
    """model.safetensors, its index, or one of its shards."""
    return name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME) or bool(_SHARD_NAME.fullmatch(name))


_SHARD_NAME = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")


def _nbytes(tensor) -> int:
    if isinstance(tensor, np.ndarray):
        return tensor.nbytes
    return tensor.numel() * tensor.element_size()


def _split_into_shards(state_dict: Mapping[str, Any], max_bytes: int) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = [{}]
    size = 0
    for name, tensor in state_dict.items():
        nbytes = _nbytes(tensor)
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    return shards


def _write_safetensors(tensors: Mapping[str, Any], path: str, metadata: Mapping[str, str]) -> None:
    first = next(iter(tensors.values()), None)
    with atomic_path(path) as tmp_path:
        if first is None or isinstance(first, np.ndarray):
            from safetensors.numpy import save_file

            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp_path, metadata=dict(metadata))
        else:
            from safetensors.torch import save_file

            save_file({k: v.detach().contiguous() for k, v in tensors.items()}, tmp_path, metadata=dict(metadata))


def _remove_stale(save_directory, keep: set[str]) -> None:
    """Removes weight files of an earlier save (a sharded one over a single one, or the reverse)."""
    for name in os.listdir(save_directory):
        if name not in keep and is_weight_file(name):
            os.remove(os.path.join(save_directory, name))


# ---- matching a checkpoint to a model --------------------------------------------------------------


def match_base_model_prefix(
    state_dict: Mapping[str, Any], model_names: Iterable[str], prefix: str, head_names: Iterable[str]
) -> tuple[dict[str, Any], set[str]]:
    """Hugging Face's rule between a seq2seq LM checkpoint and its base model, in either direction.

    An LM keeps its base model under `prefix` (Marian's and M2M100's `model.`; T5 has none) next to
    its head (`head_names`: lm_head.weight, final_logits_bias). A base model loading an LM checkpoint
    takes the prefixed tensors without the prefix and leaves the head out; an LM loading a base
    checkpoint adds the prefix. Returns (the renamed tensors, the head names a base checkpoint lacks:
    empty for any other checkpoint, so an LM checkpoint missing part of its head is still reported).
    """
    model_names = set(model_names)
    head_names = set(head_names)
    head_lacking: set[str] = set()
    if prefix:
        dotted = prefix + "."
        model_prefixed = any(name.startswith(dotted) for name in model_names)
        checkpoint_prefixed = any(name.startswith(dotted) for name in state_dict)
        if checkpoint_prefixed and not model_prefixed:  # an LM checkpoint into the base model
            state_dict = {
                name.removeprefix(dotted): tensor for name, tensor in state_dict.items() if name not in head_names
            }
        elif model_prefixed and not checkpoint_prefixed:  # a base checkpoint into the LM
            state_dict = {dotted + name: tensor for name, tensor in state_dict.items()}
            head_lacking = {name for name in head_names & model_names if name not in state_dict}
    if not head_names & model_names:  # a base model: no head to load
        state_dict = {name: tensor for name, tensor in state_dict.items() if name not in head_names}
    return dict(state_dict), head_lacking


def check_names_and_shapes(
    model_shapes: Mapping[str, tuple[int, ...]],
    checkpoint_shapes: Mapping[str, tuple[int, ...]],
    source: str,
    optional: Iterable[str] = (),
    ignored: Iterable[str] = (),
) -> None:
    """Raises one CheckpointError listing missing and unexpected names and shape conflicts.

    `optional` names the model may lack in the checkpoint (tied weights, computed tables);
    `ignored` are regexes for checkpoint names a model does not use (HF saves a few of those).
    """
    optional = set(optional)
    ignored_patterns = [re.compile(p) for p in ignored]
    missing = sorted(n for n in model_shapes if n not in checkpoint_shapes and n not in optional)
    unexpected = sorted(
        n for n in checkpoint_shapes if n not in model_shapes and not any(p.search(n) for p in ignored_patterns)
    )
    conflicts = sorted(
        f"{n} (checkpoint {tuple(checkpoint_shapes[n])}, model {tuple(model_shapes[n])})"
        for n in model_shapes
        if n in checkpoint_shapes and tuple(checkpoint_shapes[n]) != tuple(model_shapes[n])
    )
    problems = []
    for label, names in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", conflicts)):
        if names:
            shown = ", ".join(names[:10]) + (f", ... ({len(names) - 10} more)" if len(names) > 10 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise CheckpointError(f"checkpoint {source} does not fit the model: " + "; ".join(problems))
