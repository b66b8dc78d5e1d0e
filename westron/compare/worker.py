"""One (framework, mode) measurement in a process of its own: generation speed, a training step, memory.

    python -m westron.compare.worker spec.json result.json

The parent (`measure.py`) starts one worker per mode, one after another, so that each process
holds one framework only: its peak resident memory is that framework's and mode's own, and no
other framework's OpenMP threads compete for the cores while it is timed. The spec and the
result are JSON; a part that fails (torch.compile without a compiler, XLA out of memory) is
recorded as {"error": "<one line>"} and the worker goes on with the next part.

How each number is taken (the report repeats it):
- generation: the sentences are tokenized first (outside the clock); one warm-up pass over all
  of them (its time, minus the steady state, is the compile/trace cost), then `runs` timed passes;
  the median pass gives sentences/s and generated tokens/s (tokens up to and including </s>).
- training step: forward, backward and AdamW on one fixed batch; `train_warmup` steps first
  (the first one's time minus the median is compile/trace), then the median of `train_runs` steps.
- memory: the process's peak resident set (VmHWM) after everything above; on a GPU, each
  framework's own peak counters.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import time
import traceback
from typing import Any

import numpy as np

from westron.file_utils import atomic_write

FRAMEWORK_MODULES = {"pt": "westron.compare.torch_modes", "tf": "westron.compare.tf_modes"}


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def resident_memory_mib() -> dict[str, float]:
    """This process's resident memory now and at its peak (Linux /proc; elsewhere ru_maxrss)."""
    values = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024  # kB -> MiB
    except OSError:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        values["VmHWM"] = peak / (2**20 if sys.platform == "darwin" else 1024)  # bytes on macOS, kB on Linux
    return {"rss_mib": values.get("VmRSS"), "peak_rss_mib": values.get("VmHWM")}


def generated_tokens(ids: np.ndarray, pad_token_id: int) -> int:
    """Tokens generated: every position after the start token that is not padding."""
    return int((ids[:, 1:] != pad_token_id).sum())


def timed(function) -> tuple[float, Any]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def measure_generation(fw, model, batches, mode, device, decoding_kwargs, runs, pad_token_id) -> dict[str, Any]:
    """Warm-up pass + `runs` timed passes over the pre-tokenized batches."""

    def one_pass() -> int:
        tokens = 0
        for input_ids, attention_mask in batches:
            tokens += generated_tokens(fw.generate_ids(model, input_ids, attention_mask, mode, **decoding_kwargs), pad_token_id)
        fw.synchronize(device)
        return tokens

    first_seconds, tokens = timed(one_pass)
    seconds = [timed(one_pass)[0] for _ in range(runs)]
    median = statistics.median(seconds)
    sentences = sum(len(ids) for ids, _ in batches)
    return {
        "sentences": sentences,
        "generated_tokens": tokens,
        "first_pass_seconds": first_seconds,
        "pass_seconds": seconds,
        "median_seconds": median,
        "sentences_per_second": sentences / median,
        "tokens_per_second": tokens / median,
        "compile_seconds": max(0.0, first_seconds - median),
    }


def measure_training_step(fw, model, batch, mode, device, warmup, runs) -> dict[str, Any]:
    step = fw.make_training_step(model, batch, mode)
    warmup_seconds = [timed(step)[0] for _ in range(warmup)]
    seconds = [timed(step)[0] for _ in range(runs)]
    median = statistics.median(seconds)
    target_tokens = int((batch["labels"] != -100).sum())
    first = warmup_seconds[0] if warmup_seconds else seconds[0]
    return {
        "batch_size": int(batch["labels"].shape[0]),
        "target_tokens": target_tokens,
        "first_step_seconds": first,
        "warmup_step_seconds": warmup_seconds,
        "step_seconds": seconds,
        "median_seconds": median,
        "target_tokens_per_second": target_tokens / median,
        "compile_seconds": max(0.0, first - median),
    }


def batches_of(translator, sources: list[str], batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sources in consecutive batches, tokenized (with the source prefix) before any timing."""
    prefix = translator.source_prefix or ""
    batches = []
    for start in range(0, len(sources), batch_size):
        ids, mask = translator.encode([prefix + text for text in sources[start : start + batch_size]])
        batches.append((ids.astype(np.int64), mask.astype(np.int64)))
    return batches


def training_batch(tokenizer, sources: list[str], targets: list[str], prefix: str) -> dict[str, np.ndarray]:
    encoded = tokenizer([prefix + text for text in sources], text_target=targets, padding=True, truncation=True, return_tensors="np")
    labels = np.where(encoded["labels"] == tokenizer.pad_token_id, -100, encoded["labels"])
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"], "labels": labels.astype(np.int64)}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Every measurement of one (framework, mode); parts that fail are recorded, not raised."""
    fw = importlib.import_module(FRAMEWORK_MODULES[spec["framework"]])
    mode = spec["mode"]
    result: dict[str, Any] = {"framework": spec["framework"], "mode": mode}
    device = fw.setup(spec["device"])
    result["device"] = device
    result["devices"] = fw.devices()
    result["threads"] = fw.threads()
    fw.reset_memory_peak(device)
    with fw.device_scope(device):
        measure(fw, spec, device, result)
    result["memory"] = {**resident_memory_mib(), "gpu": fw.memory_peak(device)}
    return result


def measure(fw, spec: dict[str, Any], device: str, result: dict[str, Any]) -> None:
    """Loads the model and fills result with the generation and training-step measurements."""
    from westron.models.auto import AutoTokenizer
    from westron.pipelines import TranslationPipeline

    mode = spec["mode"]
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])
    result["load_seconds"], model = timed(lambda: fw.load_model(spec["model"], device))
    result["memory_after_load"] = resident_memory_mib()
    translator = TranslationPipeline(
        model, tokenizer, framework=spec["framework"], src_lang=spec.get("src_lang"), tgt_lang=spec.get("tgt_lang"),
        source_prefix=spec.get("source_prefix"),
    )
    model = fw.prepare_generation(model, mode)
    base_kwargs = dict(translator.generate_kwargs)
    if spec.get("max_new_tokens"):
        base_kwargs["max_new_tokens"] = spec["max_new_tokens"]
    pad = model.config.pad_token_id

    generation = {}
    for batch_size in spec["batch_sizes"]:
        count = spec["batch1_sentences"] if batch_size == 1 else spec["sentences"]
        batches = batches_of(translator, spec["sources"][:count], batch_size)
        for decoding, num_beams in spec["decodings"].items():
            key = f"batch{batch_size}_{decoding}"
            try:
                kwargs = {**base_kwargs, "num_beams": num_beams, "do_sample": False}
                generation[key] = measure_generation(fw, model, batches, mode, device, kwargs, spec["runs"], pad)
                generation[key].update(batch_size=batch_size, num_beams=num_beams)
            except Exception as error:  # one failing cell must not cost the others
                generation[key] = {"error": one_line(error), "batch_size": batch_size, "num_beams": num_beams}
    result["generation"] = generation

    if spec.get("train_batch_size"):
        try:
            n = spec["train_batch_size"]
            batch = training_batch(tokenizer, spec["sources"][:n], spec["targets"][:n], translator.source_prefix or "")
            result["training_step"] = measure_training_step(
                fw, model, batch, mode, device, spec["train_warmup"], spec["train_runs"]
            )
        except Exception as error:
            result["training_step"] = {"error": one_line(error)}


def main(argv: list[str]) -> int:
    spec_path, result_path = argv
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    try:
        result = run(spec)
    except Exception as error:  # the whole mode failed (e.g. the model does not load): the parent reports it
        traceback.print_exc(file=sys.stderr)
        result = {"framework": spec["framework"], "mode": spec["mode"], "error": one_line(error)}
    with atomic_write(result_path) as handle:
        json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main(sys.argv[1:]))
