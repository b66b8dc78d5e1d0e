"""Training logs for the report: loss, validation BLEU and tokens/s over the steps, per framework.

A log is JSON lines, one object per logging step or evaluation, as `westron train` writes it to
`<output_dir>/log.jsonl`. The fields read (all optional except "step"; others are ignored):

    step               int    optimizer updates so far (the x axis)
    loss               float  training loss (mean over the logging window)
    learning_rate      float
    tokens_per_second  float  target tokens per second of training time over the window
    elapsed            float  seconds since training started (shown when present)
    eval_loss          float  validation loss
    eval_bleu          float  validation BLEU (sacrebleu, 0-100)
    eval_chrf          float  validation chrF
    framework          str    "pt" or "tf"

The framework comes from the records' "framework" field, else from trainer_state.json beside the
log (or in its checkpoint folders), else from the label the user gave (`pt=DIR`).
"""

from __future__ import annotations

import glob
import json
import math
import os
from typing import Any

from westron.errors import WestronError

LOG_NAME = "log.jsonl"
NUMERIC_FIELDS = ("loss", "learning_rate", "tokens_per_second", "elapsed", "eval_loss", "eval_bleu", "eval_chrf")
FRAMEWORK_NAMES = {"pt": "pt", "torch": "pt", "pytorch": "pt", "tf": "tf", "tensorflow": "tf"}


def find_log(path: str) -> str | None:
    """The log file of a path: the file itself, DIR/log.jsonl, or (for DIR/final, DIR/checkpoint-N) the parent's."""
    if os.path.isfile(path):
        return path
    for folder in (path, os.path.dirname(os.path.abspath(path))):
        candidate = os.path.join(folder, LOG_NAME)
        if os.path.isfile(candidate):
            return candidate
    return None


def framework_from_state(log_path: str) -> str | None:
    folder = os.path.dirname(os.path.abspath(log_path))
    candidates = [os.path.join(folder, "trainer_state.json"), os.path.join(folder, "final", "trainer_state.json")]
    candidates += sorted(glob.glob(os.path.join(folder, "checkpoint-*", "trainer_state.json")))
    for candidate in candidates:
        try:
            with open(candidate, encoding="utf-8") as handle:
                framework = json.load(handle).get("framework")
        except (OSError, ValueError, AttributeError):
            continue
        if framework in FRAMEWORK_NAMES:
            return FRAMEWORK_NAMES[framework]
    return None


def read_log(path: str, label: str | None = None) -> dict[str, Any]:
    """The records of one log (step-sorted, numeric fields only) and its framework."""
    records, frameworks = [], set()
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise WestronError(f"cannot read training log {path}: {error.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                step = int(record["step"])
            except (ValueError, KeyError, TypeError):
                raise WestronError(f"{path}: line {number} is not a JSON object with a \"step\"") from None
            if record.get("framework") in FRAMEWORK_NAMES:
                frameworks.add(FRAMEWORK_NAMES[record["framework"]])
            kept = {"step": step}
            for name in NUMERIC_FIELDS:
                value = record.get(name)
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    kept[name] = float(value)
            if len(kept) > 1:
                records.append(kept)
    records.sort(key=lambda record: record["step"])
    framework = next(iter(frameworks)) if len(frameworks) == 1 else None
    framework = framework or framework_from_state(path) or FRAMEWORK_NAMES.get((label or "").lower())
    return {"label": label or framework or os.path.basename(os.path.dirname(os.path.abspath(path))),
            "framework": framework, "path": path, "records": records}


def collect_logs(explicit: list[str], model_paths: list[str]) -> list[dict[str, Any]]:
    """Logs named with --training-log ([LABEL=]PATH), else the ones found beside the models."""
    logs = []
    if explicit:
        for item in explicit:
            label, _, path = item.rpartition("=") if "=" in item and not os.path.exists(item) else ("", "", item)
            found = find_log(path)
            if found is None:
                raise WestronError(f"no training log at {path} (expected a JSON-lines file or a folder with {LOG_NAME})")
            logs.append(read_log(found, label or None))
        return logs
    seen = set()
    for model_path in model_paths:
        found = find_log(model_path) if os.path.isdir(model_path) else None
        if found and os.path.abspath(found) not in seen:
            seen.add(os.path.abspath(found))
            logs.append(read_log(found))
    return logs
