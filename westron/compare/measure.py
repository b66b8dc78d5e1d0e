"""`westron compare`'s measurements: every number goes into one JSON-able dict (results.json).

Order of work: check the inputs (a bad path fails in a second, not after an hour), then the speed
and memory workers (one subprocess per framework and mode, while this process holds no framework),
then equivalence and quality (both frameworks in this process), then training logs. `report.py`
draws the Markdown and HTML from the dict alone.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from westron.compare.equivalence import LanguagePair
from westron.errors import WestronError

SCHEMA = "westron-compare/1"
MODES = ("pt_eager", "pt_compile", "tf_eager", "tf_function", "tf_xla")
MODE_TITLES = {
    "pt_eager": "PyTorch eager",
    "pt_compile": "PyTorch torch.compile",
    "tf_eager": "TensorFlow eager",
    "tf_function": "TensorFlow tf.function",
    "tf_xla": "TensorFlow XLA",
}


@dataclass
class CompareSettings:
    """What to measure and how much; `make_quick()` sets the smoke-test sizes."""

    models: list[tuple[str, str]]  # (label, path)
    test_file: str
    source_langs: list[str]
    target_langs: list[str]
    output_dir: str
    src_lang: str | None = None
    tgt_lang: str | None = None
    source_prefix: str | None = None
    device: str = "auto"
    modes: list[str] = field(default_factory=lambda: list(MODES))
    num_beams: int = 4
    max_sentences: int | None = None  # equivalence and quality (None: the whole test file)
    speed_sentences: int = 32  # batch 32 passes
    batch1_sentences: int = 8  # batch 1 passes (one sentence at a time is slow: fewer of them)
    runs: int = 3  # timed passes / steps after the warm-up; the median is reported
    train_batch_size: int = 32
    train_warmup: int = 2  # PyTorch's first steps after start-up are slow (PERFORMANCE-NOTES)
    max_new_tokens: int | None = None
    batch_size: int = 32  # equivalence and quality batches
    equivalence_tf_mode: str = "xla"  # how TensorFlow generates for equivalence and quality
    mode_timeout: float = 1800.0
    training_logs: list[str] = field(default_factory=list)
    bleu_tokenize: str | None = None
    on_error: str = "fail"
    source_column: str | None = None  # TSV/CSV columns by name or 0-based index (a file without a header)
    target_column: str | None = None
    quick: bool = False

    def make_quick(self) -> None:
        self.quick = True
        self.max_sentences = min(self.max_sentences or 16, 16)
        self.speed_sentences, self.batch1_sentences, self.runs = 4, 2, 1
        self.train_batch_size, self.train_warmup = 4, 1


# ---- checks before any work ---------------------------------------------------------------------------


def check_model(path: str) -> dict[str, Any]:
    """The model's config (framework-free); a missing or unreadable checkpoint is one line."""
    from westron.models.auto import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except WestronError:
        raise
    except Exception as error:  # the Hub, a broken config.json: say which model and why, in one line
        raise WestronError(f"cannot load model {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    return {"model_type": config.model_type, "d_model": getattr(config, "d_model", None),
            "vocab_size": getattr(config, "vocab_size", None)}


def check_output_dir(path: str) -> None:
    """Creates the output folder and proves it writable, so a run does not fail after measuring."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise WestronError(f"cannot write to output folder {path}: {error.strerror or error}") from None


def language_pairs(settings: CompareSettings) -> list[LanguagePair]:
    """The test file's pairs, one LanguagePair per direction (--source-lang/--target-lang lists)."""
    from westron.data.readers import ReadStats, read_pairs

    sources, targets = settings.source_langs, settings.target_langs
    if len(sources) == 1 and len(targets) > 1:
        sources = sources * len(targets)
    if len(sources) != len(targets):
        raise WestronError(f"{len(sources)} source languages for {len(targets)} target languages: give one each, or one source")
    several = len(targets) > 1
    if several and (settings.src_lang or settings.tgt_lang):
        raise WestronError("--src-lang/--tgt-lang name one direction: with several language pairs the test file's keys are used")
    columns = {"source_column": settings.source_column, "target_column": settings.target_column}
    columns = {name: value for name, value in columns.items() if value is not None}  # other formats refuse them
    if several and columns:
        raise WestronError("--source-column/--target-column name one pair's columns: with several pairs the header names them")
    pairs = []
    for source_lang, target_lang in zip(sources, targets):
        stats = ReadStats()
        texts = list(read_pairs(settings.test_file, source_lang, target_lang, on_error=settings.on_error, stats=stats, **columns))
        if not texts:
            raise WestronError(f"{settings.test_file} holds no {source_lang}-{target_lang} sentence pairs")
        if stats.num_skipped:  # --on-error skip: the scores cover fewer sentences than the file holds; say so
            warnings.warn(f"{source_lang}-{target_lang}: skipped {stats.skipped_summary()} of the test file, e.g. {stats.examples[0]}", stacklevel=2)
        if settings.max_sentences:
            texts = texts[: settings.max_sentences]
        pairs.append(
            LanguagePair(source_lang, target_lang, [p.source for p in texts], [p.target for p in texts],
                         src_code=settings.src_lang or (source_lang if several else None),
                         tgt_code=settings.tgt_lang or (target_lang if several else None),
                         source_prefix=settings.source_prefix)
        )
    return pairs


def model_language_codes(pairs: list[LanguagePair], model_path: str) -> None:
    """Multilingual tokenizers need language codes: default them to the test file's keys."""
    from westron.models.auto import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if hasattr(tokenizer, "get_lang_id"):
        for pair in pairs:
            pair.src_code = pair.src_code or pair.source_lang
            pair.tgt_code = pair.tgt_code or pair.target_lang
            for code, flag in ((pair.src_code, "--src-lang"), (pair.tgt_code, "--tgt-lang")):
                try:  # before any measuring, and before the output folder is made
                    tokenizer.get_lang_id(code)
                except WestronError as error:
                    hint = "" if len(pairs) > 1 else f": give the model's code with {flag}"
                    raise WestronError(f"{error} (the code for the test file's language {code!r}{hint})") from None


# ---- speed and memory: one worker process per mode ------------------------------------------------------


def worker_spec(settings: CompareSettings, mode: str, model_path: str, pair: LanguagePair) -> dict[str, Any]:
    framework, _, framework_mode = mode.partition("_")
    count = max(settings.speed_sentences, settings.batch1_sentences, settings.train_batch_size)
    texts = pair.sources[:count]
    return {
        "framework": framework,
        "mode": framework_mode,
        "model": model_path,
        "device": settings.device,
        "sources": texts,
        "targets": pair.references[:count],
        "src_lang": pair.src_code,
        "tgt_lang": pair.tgt_code,
        "source_prefix": pair.source_prefix,
        "batch_sizes": [1, 32],
        "sentences": settings.speed_sentences,
        "batch1_sentences": settings.batch1_sentences,
        "decodings": {"greedy": 1, "beam": settings.num_beams},
        "runs": settings.runs,
        "train_batch_size": settings.train_batch_size,
        "train_warmup": settings.train_warmup,
        "train_runs": settings.runs,
        "max_new_tokens": settings.max_new_tokens,
    }


def run_worker(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Runs one worker process; a crash or time-out becomes {"error": "<one line>"}."""
    with tempfile.TemporaryDirectory(prefix="westron-compare-") as scratch:
        spec_path, result_path = os.path.join(scratch, "spec.json"), os.path.join(scratch, "result.json")
        with open(spec_path, "w", encoding="utf-8") as handle:
            json.dump(spec, handle)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        started = time.perf_counter()
        try:
            process = subprocess.run(
                [sys.executable, "-m", "westron.compare.worker", spec_path, result_path],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace", timeout=timeout, env=env,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:g} s (--mode-timeout)"}
        wall = time.perf_counter() - started
        if os.path.exists(result_path):
            with open(result_path, encoding="utf-8") as handle:
                result = json.load(handle)
            result["process_seconds"] = wall
            return result
        lines = [line for line in process.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {process.returncode}"
        return {"error": f"worker process died: {reason}"}


def measure_speed(settings: CompareSettings, model_label: str, model_path: str, pair: LanguagePair, log) -> dict[str, Any]:
    modes = {}
    for mode in settings.modes:
        log(f"speed and memory: {MODE_TITLES[mode]} ...")
        modes[mode] = run_worker(worker_spec(settings, mode, model_path, pair), settings.mode_timeout)
        if "error" in modes[mode]:
            log(f"  {MODE_TITLES[mode]} failed: {modes[mode]['error']}")
    return {
        "model": model_label,
        "pair": pair.name,
        "device_requested": settings.device,
        "modes": modes,
        "method": {
            "process": "one fresh process per framework and mode, run one after another (no other framework loaded)",
            "generation": (
                f"sources tokenized before timing; one warm-up pass over them, then {settings.runs} timed pass(es); "
                "the median pass gives sentences/s and generated tokens/s (tokens after the start token up to and "
                "including </s>); compile/trace = first pass - median"
            ),
            "batch_sizes": {"1": settings.batch1_sentences, "32": settings.speed_sentences},
            "num_beams": {"greedy": 1, "beam": settings.num_beams},
            "runs": settings.runs,
            "warmup_passes": 1,
            "statistic": "median",
            "training_step": (
                f"forward + backward + AdamW on one fixed batch of {settings.train_batch_size} sentences; "
                f"{settings.train_warmup} warm-up step(s), then the median of {settings.runs}; compile/trace = first "
                "step - median; a plain step (torch.optim.AdamW / keras AdamW), not the trainers' train_step"
            ),
            "memory": (
                "peak resident set size (VmHWM) of the worker process: loading, generation and the training step; "
                "GPU: torch.cuda.max_memory_allocated/reserved, TensorFlow get_memory_info peak with memory growth on"
            ),
        },
    }


# ---- equivalence and quality: both frameworks in this process -------------------------------------------


def measure_model(settings: CompareSettings, label: str, path: str, pairs: list[LanguagePair], log) -> dict[str, Any]:
    from westron.cli import native_stderr_silenced

    with native_stderr_silenced():
        import tensorflow  # noqa: F401  (imported here only to keep its start-up notices off the terminal)
    from westron.compare import tf_modes, torch_modes
    from westron.compare.equivalence import TF_MODE_NAMES, compare_frameworks
    from westron.compare.quality import score_quality
    from westron.models.auto import AutoTokenizer

    log(f"equivalence and quality: {label} ...")
    pt_device, tf_device = torch_modes.setup(settings.device), tf_modes.setup(settings.device)
    tokenizer = AutoTokenizer.from_pretrained(path)
    pt_model = torch_modes.load_model(path, pt_device)
    tf_model = tf_modes.load_model(path, tf_device)
    with tf_modes.device_scope(tf_device):
        equivalence, translations = compare_frameworks(
            pt_model, tf_model, tokenizer, pairs, num_beams=settings.num_beams, batch_size=settings.batch_size,
            max_new_tokens=settings.max_new_tokens, tf_mode=settings.equivalence_tf_mode,
        )
    equivalence["devices"] = {"pt": pt_device, "tf": tf_device}
    quality = score_quality(translations, pairs, settings.bleu_tokenize)
    tf_name = TF_MODE_NAMES[settings.equivalence_tf_mode]
    return {
        "label": label,
        "path": path,
        "parameters": pt_model.num_parameters(),
        "equivalence": equivalence,
        "quality": quality,
        "quality_method": (
            "sacrebleu corpus BLEU, chrF2 and TER (signatures beside each score) of the translations made for the "
            f"equivalence check: PyTorch eager and TensorFlow {tf_name}, greedy and beam"
        ),
        "_loaded": (pt_model, tf_model, tokenizer),  # for extra sections; dropped before writing JSON
    }


# ---- the whole run ---------------------------------------------------------------------------------------


def run_compare(settings: CompareSettings, log=print, extra_section_providers=None) -> dict[str, Any]:
    """Measures everything and returns the results dict (the caller writes and renders it)."""
    from westron.compare.environment import environment
    from westron.compare.sections import collect_extra_sections
    from westron.compare.training_logs import collect_logs

    for mode in settings.modes:
        if mode not in MODES:
            raise WestronError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
    configs = [check_model(path) for _, path in settings.models]
    pairs = language_pairs(settings)
    logs = collect_logs(settings.training_logs, [path for _, path in settings.models])
    model_language_codes(pairs, settings.models[0][1])
    if settings.src_lang or settings.tgt_lang:  # codes the model cannot use: an error before minutes of measuring
        from westron.cli import refuse_ignored_languages
        from westron.pipelines import TranslationPipeline

        pair = pairs[0]
        translator = TranslationPipeline(
            settings.models[0][1], framework="pt", src_lang=pair.src_code, tgt_lang=pair.tgt_code, source_prefix=pair.source_prefix
        )
        refuse_ignored_languages(translator, settings.src_lang, settings.tgt_lang)
    check_output_dir(settings.output_dir)  # after the checks of the input: a mistake leaves no empty folder behind

    started = time.time()
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "models": [{"label": label, "path": path, **config} for (label, path), config in zip(settings.models, configs)],
            "test_file": settings.test_file,
            "pairs": [pair.name for pair in pairs],
            "sentences": {pair.name: len(pair.sources) for pair in pairs},
            "device": settings.device,
            "modes": settings.modes,
            "quick": settings.quick,
            "num_beams": settings.num_beams,
            "max_new_tokens": settings.max_new_tokens,
        },
        "environment": environment(),
    }
    if settings.modes:
        label, path = settings.models[0]
        results["speed"] = measure_speed(settings, label, path, pairs[0], log)
        results["devices"] = devices_from_workers(results["speed"]["modes"])
    models = [measure_model(settings, label, path, pairs, log) for label, path in settings.models]
    results["models"] = models
    results["training"] = {"logs": logs}
    loaded = {model["label"]: model.pop("_loaded") for model in models}
    context = {"settings": settings, "pairs": pairs, "results": results, "loaded": loaded}
    results["extra_sections"] = collect_extra_sections(context, extra_section_providers)
    results["seconds"] = time.time() - started
    return results


def devices_from_workers(modes: dict[str, Any]) -> dict[str, Any]:
    """Per framework: what it saw and how work was placed, from its first worker that started."""
    seen = {}
    for mode, result in modes.items():
        framework = mode.split("_")[0]
        if framework not in seen and "devices" in result:
            seen[framework] = {**result["devices"], "device_used": result["device"], "threads": result.get("threads")}
    return seen
