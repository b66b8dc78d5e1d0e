"""Trainer state and the checkpoint folder, shared by both trainers (framework-free).

A training checkpoint is an ordinary model folder plus what it takes to continue exactly:

    output_dir/
      checkpoint-{step}/
        config.json  generation_config.json  model.safetensors   the model (loads anywhere)
        tokenizer files                                          when a tokenizer was given
        optimizer.safetensors   AdamW moments under the model's checkpoint names:
                                `exp_avg.<name>`, `exp_avg_sq.<name>` (PT orientation), so either
                                framework can continue from either framework's checkpoint
        rng_state.json          the dropout and sampling random states (framework-specific part)
        trainer_state.json      step, epoch, data position, best metric, tokens seen, log history
      final/                    the last model (and tokenizer), written when training ends
      log.jsonl                 one JSON object of metrics per logging step and per evaluation

Each checkpoint folder is written through `atomic_directory`: a crash leaves the previous one whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from westron.errors import WestronError
from westron.file_utils import atomic_path, atomic_write

TRAINER_STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.safetensors"
RNG_STATE_NAME = "rng_state.json"
CONFIG_NAME = "config.json"
CHECKPOINT_PATTERN = re.compile(r"checkpoint-(\d+)$")
FINAL_MODEL_DIR = "final"
LOG_NAME = "log.jsonl"


@dataclass
class TrainerState:
    global_step: int = 0  # optimizer updates made
    epoch: float = 0.0  # passes over the training data (from the batcher when it counts them)
    tokens_seen: int = 0  # target tokens (labels != -100) trained on
    train_time: float = 0.0  # seconds spent in training steps, over every resumed run
    elapsed_time: float = 0.0  # wall-clock seconds of training (evaluations included) over every resumed run: what max_time bounds
    data_state: dict[str, Any] | None = None  # the batcher's state_dict() (or the batches consumed)
    best_metric: float | None = None
    best_checkpoint: str | None = None
    evaluations_without_improvement: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    framework: str = ""  # "pt" or "tf": who wrote this state
    model_type: str = ""

    def save(self, folder: str) -> None:
        with atomic_write(os.path.join(folder, TRAINER_STATE_NAME)) as handle:
            json.dump(asdict(self), handle, indent=2)
            handle.write("\n")

    @classmethod
    def load(cls, folder: str) -> "TrainerState":
        path = os.path.join(folder, TRAINER_STATE_NAME)
        if not os.path.isfile(path):
            raise WestronError(f"{folder} is not a training checkpoint (no {TRAINER_STATE_NAME})")
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            return cls(**data)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
            raise WestronError(f"{path} is not a valid trainer state ({error})") from None


# ---- the checkpoint folders of a run -----------------------------------------------------------------


def checkpoint_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"checkpoint-{step}")


def list_checkpoints(output_dir: str) -> list[str]:
    """The complete checkpoint folders of a run, oldest (lowest step) first."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = CHECKPOINT_PATTERN.match(name)
        path = os.path.join(output_dir, name)
        if match and os.path.isfile(os.path.join(path, TRAINER_STATE_NAME)):
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def last_checkpoint(output_dir: str) -> str | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def rotate_checkpoints(output_dir: str, keep: int | None, best: str | None = None) -> list[str]:
    """Removes the oldest checkpoints beyond `keep`, never the best one; returns the removed folders."""
    if keep is None:
        return []
    checkpoints = list_checkpoints(output_dir)
    kept = {os.path.abspath(path) for path in checkpoints[-keep:]}
    if best:
        kept.add(os.path.abspath(best))
    removed = [path for path in checkpoints if os.path.abspath(path) not in kept]
    for path in removed:
        shutil.rmtree(path)
    return removed


def resolve_resume_folder(resume_from: str | bool, output_dir: str) -> str | None:
    """True: the last checkpoint of output_dir (None when there is none); a path: that checkpoint."""
    if resume_from is True:
        return last_checkpoint(output_dir)
    folder = os.fspath(resume_from)
    if not os.path.isdir(folder):
        raise WestronError(f"resume checkpoint {folder!r} is not a folder")
    if not os.path.isfile(os.path.join(folder, TRAINER_STATE_NAME)):
        last = last_checkpoint(folder)  # an output_dir was given: take its last checkpoint
        if last is None:
            raise WestronError(f"{folder} is not a training checkpoint (no {TRAINER_STATE_NAME}) and holds none")
        folder = last
    return folder


def check_same_model(folder: str, model_type: str, model_shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuses, in one line, a checkpoint written for another model than the one being trained."""
    from westron.checkpoint import resolve_weight_files

    try:
        with open(os.path.join(folder, CONFIG_NAME), encoding="utf-8") as handle:
            saved_type = json.load(handle).get("model_type", "")
    except (OSError, json.JSONDecodeError) as error:
        raise WestronError(f"{folder} has no readable {CONFIG_NAME} ({error})") from None
    if saved_type != model_type:
        raise WestronError(f"cannot resume from {folder}: it holds a {saved_type!r} model, this run trains a {model_type!r}")
    saved_shapes = {}
    for path in resolve_weight_files(folder)[0]:
        saved_shapes.update(_safetensors_shapes(path))
    missing = sorted(set(model_shapes) - set(saved_shapes))
    differing = sorted(n for n in model_shapes if n in saved_shapes and tuple(saved_shapes[n]) != tuple(model_shapes[n]))
    if missing or differing:
        example = (missing + differing)[0]
        raise WestronError(
            f"cannot resume from {folder}: it was saved from another {model_type} model "
            f"({len(missing)} weights missing, {len(differing)} of other shapes, e.g. {example})"
        )


def _safetensors_shapes(path: str) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(path, framework="np") as handle:
        return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}


# ---- optimizer state: AdamW moments under checkpoint names --------------------------------------------


def save_optimizer_state(folder: str, moments: dict[str, np.ndarray], step: int) -> None:
    """moments: {"exp_avg.<name>": array, "exp_avg_sq.<name>": array}, in the checkpoint orientation."""
    from safetensors.numpy import save_file

    with atomic_path(os.path.join(folder, OPTIMIZER_NAME)) as tmp_path:
        arrays = {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in moments.items()}
        save_file(arrays, tmp_path, metadata={"optimizer": "adamw", "step": str(step)})


def load_optimizer_state(folder: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = os.path.join(folder, OPTIMIZER_NAME)
    if not os.path.isfile(path):
        raise WestronError(f"{folder} has no optimizer state ({OPTIMIZER_NAME})")
    return load_file(path)


def save_rng_state(folder: str, rng: dict[str, Any]) -> None:
    with atomic_write(os.path.join(folder, RNG_STATE_NAME)) as handle:
        json.dump(rng, handle)
        handle.write("\n")


def load_rng_state(folder: str) -> dict[str, Any]:
    path = os.path.join(folder, RNG_STATE_NAME)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


# ---- random states both frameworks share (Python and numpy) -------------------------------------------


def python_rng_state() -> dict[str, Any]:
    import random

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def restore_python_rng_state(rng: dict[str, Any]) -> None:
    import random

    if "python" in rng:
        version, internal, gauss = rng["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in rng:
        kind, keys, pos, has_gauss, cached = rng["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def truncate_log(output_dir: str, step: int) -> None:
    """Keeps the records of output_dir/log.jsonl up to `step` (a resumed run logs the later steps again,
    and a run killed mid-append leaves a partial line); rewritten atomically, only when something goes."""
    path = os.path.join(output_dir, LOG_NAME)
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.readlines()
    kept = [line for line in lines if _logged_step(line) <= step]
    if len(kept) != len(lines):
        with atomic_write(path) as handle:
            handle.writelines(kept)


def _logged_step(line: str) -> float:
    try:
        return float(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return float("inf")  # not a whole record


def append_log(output_dir: str, record: dict[str, Any]) -> None:
    """Appends one JSON line to output_dir/log.jsonl (a log grows; it is not replaced)."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, LOG_NAME), "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
