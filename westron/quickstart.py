"""`westron quickstart`: the main job. One translation model, trained in PyTorch and in TensorFlow.

On a machine with no network it builds an English->X corpus from the gettext catalogs installed on
the machine (whole catalogs held out for the test set: the score says how well the model translates
software it never saw), trains a SentencePiece vocabulary, then trains the same small Marian from
the same initial weights on the same batches for the same time in both frameworks, scores both on
the held-out catalogs, translates a few sample sentences with both, and writes everything under one
folder:

    westron-quickstart/
      corpus/      train/validation/test.jsonl + summary.json   (westron data gettext)
      tokenizer/   source.spm, target.spm, vocab.json, ...        (westron tokenizer train)
      pt/  tf/     normal checkpoint folders (westron translate, HF transformers and the other framework load them)
      training/    each framework's training log, TensorBoard events and checkpoints
      quickstart.json   every number, for the report
      report/      the comparison report (westron compare)

With several pairs (`--pairs en-es,en-he`), each pair gets its own folder (`westron-quickstart/en-he/...`).
A rerun reuses the corpus and the vocabulary unless --fresh.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import importlib.util
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
import warnings
from typing import Any

from westron.errors import WestronError

DEFAULT_PAIRS = ("en-es",)
FRAMEWORK_NAMES = {"pt": "PyTorch", "tf": "TensorFlow"}
FRAMEWORK_MODULES = {"pt": "torch", "tf": "tensorflow"}
REPORT_SENTENCES = 50  # test sentences the report's equivalence and quality sections translate
# Training time per framework (side by side on a CPU). Quality is steep in steps at this budget: on
# 2 cores 10 minutes gave 895-1,015 steps and BLEU 17-19, 9 minutes on a day the machine ran 20%
# slower gave 680-730 steps and BLEU 10-11. Scoring (~2 min) and the report (~2.5) fill the rest of 15.
DEFAULT_BUDGET_MINUTES = 10.0
# A smoke run's: TensorFlow's first step (tracing and compiling) takes ~10 s of it on 2 cores, and
# 12 s left it one update; half a minute gives each framework a training curve.
SMOKE_BUDGET_MINUTES = 0.5
SAMPLE_SENTENCES = (
    "Save file",
    "Open a new window",
    "The file could not be found.",
    "Delete the selected items?",
    "Print the current page",
    "Show hidden files",
)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What the quickstart trains and how; docs/quickstart.md says what each choice bought."""

    preset: str = "marian-mini"  # d_model 128, 3+3 layers: a larger model learns less in ten CPU minutes
    vocab_size: int = 4000
    max_tokens: int = 2048  # per batch (B * max(S, T)): more updates per minute than 4096
    learning_rate: float = 2e-3  # 3e-3 diverged (post-LN Marian)
    warmup_steps: int = 200  # 100 left one TensorFlow run stuck ignoring the source (loss 3.9); 200 reached BLEU 18.4
    scheduler: str = "linear"  # with a time budget: decays to zero as the budget ends (schedules.py)
    dropout: float = 0.0  # a few epochs at most: nothing to regularise yet, and dropout slows learning
    label_smoothing: float = 0.0  # 0.1 (the field's habit at convergence) cost 1.2 BLEU at this budget
    num_beams: int = 4
    max_length: int = 128  # source and target tokens
    seed: int = 0
    test_sentences: int | None = None  # None: the whole held-out test split
    quick_report: bool = False  # the report's smoke size: a few sentences, no compiled modes


SMOKE_RECIPE = Recipe(
    preset="marian-tiny", vocab_size=200, max_tokens=512, warmup_steps=5, num_beams=2, max_length=32, test_sentences=50,
    quick_report=True,
)


def add_quickstart_command(commands) -> None:
    quickstart = commands.add_parser(
        "quickstart",
        help="build a corpus from this machine's gettext catalogs, train one model in PyTorch and TensorFlow, compare them",
    )
    quickstart.add_argument("--output-dir", default="westron-quickstart")
    quickstart.add_argument("--pairs", default=",".join(DEFAULT_PAIRS), help="language pairs, e.g. en-es,en-he,en-ja,en-ka")
    quickstart.add_argument("--budget-minutes", type=float, default=None, help=f"training time per framework (default {DEFAULT_BUDGET_MINUTES:g})")
    quickstart.add_argument("--frameworks", default="pt,tf", help="pt,tf (default), pt or tf")
    quickstart.add_argument("--device", default=None, help="cuda or cuda:N to train on a GPU (TensorFlow also takes gpu, gpu:N; default: the CPU)")
    quickstart.add_argument("--fresh", action="store_true", help="rebuild the corpus and the vocabulary")
    quickstart.add_argument("--catalogs", action="append", default=[], metavar="PATH", help="extra .po/.mo files or folders")
    quickstart.add_argument("--smoke", action="store_true", help="a tiny model and a short budget: checks the machinery in about 3 minutes")
    quickstart.add_argument("--no-report", action="store_true", help="skip the comparison report")
    quickstart.set_defaults(run=run_quickstart_command)


def run_quickstart_command(args) -> None:
    pairs = parse_pairs(args.pairs)
    frameworks = parse_frameworks(args.frameworks)
    for framework in frameworks:
        if not installed(framework):
            raise WestronError(
                f"--frameworks {args.frameworks}: {FRAMEWORK_NAMES[framework]} ({FRAMEWORK_MODULES[framework]}) is not installed"
            )
    if args.device:
        check_device(frameworks, args.device)
    recipe = SMOKE_RECIPE if args.smoke else Recipe()
    budget = args.budget_minutes if args.budget_minutes is not None else (SMOKE_BUDGET_MINUTES if args.smoke else DEFAULT_BUDGET_MINUTES)
    if not 0 < budget < math.inf:  # nan too: it would train for "nan min"
        raise WestronError(f"--budget-minutes must be positive and finite, not {budget:g}")
    run_quickstart(
        args.output_dir, pairs, frameworks, budget_minutes=budget, recipe=recipe, device=args.device,
        fresh=args.fresh, catalogs=args.catalogs, report=not args.no_report,
    )  # fmt: skip


def parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        source, _, target = item.partition("-")
        if not source or not target or "-" in target:
            raise WestronError(f"--pairs: {item!r} is not a language pair like en-es")
        if source != "en":
            raise WestronError(f"--pairs: {item}: gettext catalogs translate from English; use en-{target}")
        if target == source:
            raise WestronError(f"--pairs: {item}: the source is English already; name another target language")
        pairs.append((source, target))
    if not pairs:
        raise WestronError("--pairs names no language pair")
    return pairs


def parse_frameworks(text: str) -> list[str]:
    frameworks = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in frameworks if name not in ("pt", "tf")]
    if unknown or not frameworks:
        raise WestronError(f"--frameworks: choose pt, tf or pt,tf (not {text!r})")
    return list(dict.fromkeys(frameworks))


def check_device(frameworks: list[str], device: str) -> None:
    """A --device this machine lacks (for any of the frameworks) is one line before the corpus is built."""
    from westron.training.cli import device_placement

    for framework in frameworks:
        if framework == "tf":
            from westron.cli import import_tensorflow_quietly

            import_tensorflow_quietly()
        device_placement(framework, device)


def installed(framework: str) -> bool:
    return importlib.util.find_spec(FRAMEWORK_MODULES[framework]) is not None


def say(message: str) -> None:
    print(f"westron quickstart: {message}", file=sys.stderr, flush=True)


# ---- the run -------------------------------------------------------------------------------------------


def run_quickstart(
    output_dir: str,
    pairs: list[tuple[str, str]],
    frameworks: list[str],
    *,
    budget_minutes: float,
    recipe: Recipe = Recipe(),
    device: str | None = None,
    fresh: bool = False,
    catalogs: list[str] = (),
    report: bool = True,
) -> dict[str, Any]:
    check_output_dir(output_dir)
    for source_lang, target_lang in pairs:
        check_reusable_corpus(os.path.join(pair_folder(output_dir, pairs, source_lang, target_lang), "corpus"), source_lang, target_lang, fresh, catalogs)
    names = FRAMEWORK_NAMES
    missing = [name for name in FRAMEWORK_NAMES if not installed(name)]
    skipped_report = report and bool(missing)
    report = report and not missing  # the report runs each checkpoint in both frameworks
    rounds = 1 if side_by_side(frameworks, device) else len(frameworks)
    # Scoring takes ~2 min a round and the report ~2.5 at the default recipe; a smoke run's ~0.5 and ~1.5 (2 cores).
    scoring, report_minutes = (0.5, 1.5) if recipe.quick_report else (2, 2.5)
    total = len(pairs) * (rounds * (budget_minutes + scoring) + 0.5) + (report_minutes if report else 0)
    say(
        f"{', '.join(f'{s}-{t}' for s, t in pairs)}: a corpus from this machine's gettext catalogs, a {recipe.vocab_size}-piece "
        f"vocabulary, a {recipe.preset} model trained {budget_minutes:g} min in {' and '.join(names[f] for f in frameworks)}"
        f"{' side by side' if rounds == 1 and len(frameworks) > 1 else ''}, "
        f"scored on held-out catalogs{', then a comparison report' if report else ''}; about {total:.0f} minutes in all. "
        f"Output: {output_dir}/"
    )
    if skipped_report:
        say(
            f"no comparison report: it runs the checkpoints in PyTorch and in TensorFlow, and "
            f"{' and '.join(f'{names[m]} ({FRAMEWORK_MODULES[m]})' for m in missing)} is not installed"
        )
    results: dict[str, Any] = {"recipe": dataclasses.asdict(recipe), "budget_minutes": budget_minutes, "pairs": {}}
    for source_lang, target_lang in pairs:
        folder = pair_folder(output_dir, pairs, source_lang, target_lang)
        results["pairs"][f"{source_lang}-{target_lang}"] = run_pair(
            folder, source_lang, target_lang, frameworks, budget_minutes, recipe, device, fresh, catalogs
        )
    from westron.file_utils import atomic_write

    with atomic_write(os.path.join(output_dir, "quickstart.json")) as handle:
        json.dump(results, handle, indent=2, ensure_ascii=False)
    print_summary(results)
    if report:
        write_report(output_dir, pairs, frameworks, results, recipe)
    return results


def pair_folder(output_dir: str, pairs, source_lang: str, target_lang: str) -> str:
    """Where one pair's corpus, vocabulary and models go: the output folder itself for one pair."""
    return output_dir if len(pairs) == 1 else os.path.join(output_dir, f"{source_lang}-{target_lang}")


def check_reusable_corpus(folder: str, source_lang: str, target_lang: str, fresh: bool, catalogs) -> None:
    """An earlier run's corpus is reused without --fresh: refuse it when it is another pair's, or when
    --catalogs asks for a corpus it was not built from (they would be ignored)."""
    if fresh:
        return
    try:
        with open(os.path.join(folder, "summary.json"), encoding="utf-8") as handle:
            summary = json.load(handle)
        built = (summary["source_lang"], summary["target_lang"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # no corpus yet (or not one this tool wrote): it is built afresh
    if built != (source_lang, target_lang):
        raise WestronError(
            f"{folder} holds the {'-'.join(built)} corpus of an earlier run, not {source_lang}-{target_lang}: "
            "choose another --output-dir, or add --fresh to replace it"
        )
    if catalogs:
        raise WestronError(f"--catalogs: the corpus in {folder} would be reused as it was built, without them: add --fresh to rebuild it")


def check_output_dir(output_dir: str) -> None:
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise WestronError(f"cannot create --output-dir {output_dir}: {error.strerror}") from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise WestronError(f"cannot write into --output-dir {output_dir}")


def run_pair(folder, source_lang, target_lang, frameworks, budget_minutes, recipe, device, fresh, catalogs) -> dict:
    corpus = ensure_corpus(os.path.join(folder, "corpus"), source_lang, target_lang, fresh, catalogs)
    tokenizer_dir = ensure_tokenizer(os.path.join(folder, "tokenizer"), corpus, source_lang, target_lang, recipe, fresh)
    initial = initial_weights(os.path.join(folder, "training", "initial"), tokenizer_dir, recipe, frameworks)
    result: dict[str, Any] = {"corpus": corpus_counts(corpus), "frameworks": {}}
    jobs = {f: (folder, f, initial, corpus, source_lang, target_lang, budget_minutes, recipe, device) for f in frameworks}
    if side_by_side(frameworks, device):
        threads = max(1, (os.cpu_count() or 1) // len(frameworks))
        say(f"training in {' and '.join(FRAMEWORK_NAMES[f] for f in frameworks)} side by side, {threads} thread(s) each")
        context = multiprocessing.get_context("spawn")  # a fresh process: its thread settings come before torch/TF start
        with concurrent.futures.ProcessPoolExecutor(len(frameworks), mp_context=context) as pool:
            futures = {f: pool.submit(train_and_score_in_worker, *job, threads=threads) for f, job in jobs.items()}
            result["frameworks"] = {f: future.result() for f, future in futures.items()}
    else:
        result["frameworks"] = {f: train_and_score(*job) for f, job in jobs.items()}
    return result


def side_by_side(frameworks: list[str], device: str | None) -> bool:
    """Whether the frameworks train at once, each in its own process on its share of the CPU cores.

    On 2 cores a small model keeps one thread busier than two (one thread gives 0.6-0.8x the
    tokens/s of two), so two frameworks side by side for 10 minutes each learn more than one after
    the other for 5 (docs/quickstart.md). On a GPU they run one after the other.
    """
    return len(frameworks) > 1 and not device and (os.cpu_count() or 1) >= len(frameworks)


def ensure_corpus(folder: str, source_lang: str, target_lang: str, fresh: bool, catalogs) -> str:
    if not fresh and os.path.exists(os.path.join(folder, "summary.json")):
        say(f"reusing the corpus in {folder} (--fresh rebuilds it)")
        return folder
    from westron.data.gettext import build_gettext_corpus

    started = time.monotonic()
    say(f"building the {source_lang}-{target_lang} corpus from the gettext catalogs ...")
    if fresh and os.path.isdir(folder):
        shutil.rmtree(folder)
    build_gettext_corpus(source_lang, target_lang, folder, catalogs=list(catalogs), split="by-catalog")
    counts = corpus_counts(folder)
    say(f"corpus: {counts['train']} training, {counts['validation']} validation, {counts['test']} test pairs ({time.monotonic() - started:.0f} s)")
    return folder


def corpus_counts(folder: str) -> dict[str, int]:
    counts = {}
    for split in ("train", "validation", "test"):
        with open(os.path.join(folder, f"{split}.jsonl"), "rb") as handle:
            counts[split] = sum(1 for _ in handle)
    return counts


def ensure_tokenizer(folder: str, corpus: str, source_lang: str, target_lang: str, recipe: Recipe, fresh: bool) -> str:
    if not fresh and os.path.exists(os.path.join(folder, "tokenizer_config.json")):
        size = saved_vocabulary_size(folder)
        if size == recipe.vocab_size:
            say(f"reusing the vocabulary in {folder}")
            return folder
        say(f"the vocabulary in {folder} was trained for {size} pieces, the recipe asks {recipe.vocab_size}: training a new one")
    from westron.data.tokenizer_training import train_tokenizer

    started = time.monotonic()
    say(f"training a {recipe.vocab_size}-piece SentencePiece vocabulary ...")
    train_tokenizer("marian", [os.path.join(corpus, "train.jsonl")], source_lang, target_lang, folder, vocab_size=recipe.vocab_size)
    from westron.file_utils import write_json

    write_json(os.path.join(folder, VOCABULARY_RECORD), {"vocab_size": recipe.vocab_size})
    say(f"vocabulary: {folder} ({time.monotonic() - started:.0f} s)")
    return folder


VOCABULARY_RECORD = "quickstart_vocabulary.json"  # the size the quickstart asked for (a small corpus gives fewer pieces)


def saved_vocabulary_size(folder: str) -> int | None:
    """The vocabulary size a saved tokenizer was trained for: the quickstart's record of the size it
    asked for, else the size of vocab.json; None if neither is readable."""
    for name, size_of in ((VOCABULARY_RECORD, lambda data: data["vocab_size"]), ("vocab.json", len)):
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                return int(size_of(json.load(handle)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def initial_weights(folder: str, tokenizer_dir: str, recipe: Recipe, frameworks: list[str]) -> str:
    """One random initialisation, saved, so every framework starts from the same weights.

    Drawn by PyTorch when it is one of `frameworks`, else by TensorFlow: a TensorFlow-only run
    (`--frameworks tf`) must not need torch installed.
    """
    from westron.models.auto import AutoModelForSeq2SeqLM, AutoTokenizer, TFAutoModelForSeq2SeqLM
    from westron.training.presets import build_config

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = build_config(recipe.preset, tokenizer)
    config.dropout = recipe.dropout
    if "pt" in frameworks:
        import torch

        torch.manual_seed(recipe.seed)
        model = AutoModelForSeq2SeqLM.from_config(config)
    else:
        import keras

        keras.utils.set_random_seed(recipe.seed)
        model = TFAutoModelForSeq2SeqLM.from_config(config)
        model.build_weights()
    # The trained checkpoints inherit these: `westron translate` on them decodes as the scores were made
    # (beam search, up to the training length; an unset max_length would stop at 20 tokens), as opus-mt's do.
    model.generation_config.num_beams = recipe.num_beams
    model.generation_config.max_length = recipe.max_length + 1  # the decoder start token counts
    from westron.file_utils import atomic_directory

    with atomic_directory(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder


def train_and_score_in_worker(*job, threads: int) -> dict:
    """train_and_score in a side-by-side worker process, whose warnings are one `westron: warning:` line
    each as in the CLI's own process (a spawned process starts with Python's plain warning format)."""
    from westron.cli import one_line_warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = one_line_warnings()
        return train_and_score(*job, threads=threads)


def train_and_score(
    folder, framework, initial, corpus, source_lang, target_lang, budget_minutes, recipe, device, threads: int | None = None
) -> dict:
    """Trains one framework's model from `initial` for the budget, saves it, scores it on the test split.

    threads: compute threads for this framework (side by side); also shows progress as lines, not a bar.
    device: PyTorch moves the model there; TensorFlow builds, trains and scores it inside tf.device.
    """
    from westron.training.cli import device_placement

    if framework == "tf":
        from westron.cli import import_tensorflow_quietly

        import_tensorflow_quietly()
        if threads:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    elif threads:
        import torch

        torch.set_num_threads(threads)
    with device_placement(framework, device):
        return train_and_score_here(folder, framework, initial, corpus, source_lang, target_lang, budget_minutes, recipe, device, threads)


def train_and_score_here(folder, framework, initial, corpus, source_lang, target_lang, budget_minutes, recipe, device, threads) -> dict:
    """train_and_score's work, inside the framework's device placement."""
    from westron.data.batching import TokenBatcher, encode_pairs
    from westron.data.readers import read_pairs
    from westron.evaluation import evaluate_model
    from westron.models.auto import AutoModelForSeq2SeqLM, AutoTokenizer, TFAutoModelForSeq2SeqLM
    from westron.training.arguments import TrainingArguments
    from westron.training.tracking import make_tracker

    name = FRAMEWORK_NAMES[framework]
    tokenizer = AutoTokenizer.from_pretrained(initial)
    model = (AutoModelForSeq2SeqLM if framework == "pt" else TFAutoModelForSeq2SeqLM).from_pretrained(initial)
    if framework == "pt" and device:
        from westron.modeling_utils import resolve_device

        model.to(resolve_device(device))
    pairs = list(read_pairs(os.path.join(corpus, "train.jsonl"), source_lang, target_lang))
    source_ids, target_ids = encode_pairs(tokenizer, pairs, recipe.max_length, recipe.max_length)
    batcher = TokenBatcher(
        source_ids, target_ids, pad_token_id=model.config.pad_token_id,
        decoder_start_token_id=model.config.decoder_start_token_id, max_tokens=recipe.max_tokens, seed=recipe.seed,
    )  # fmt: skip
    run_dir = os.path.join(folder, "training", framework)
    args = TrainingArguments(
        output_dir=run_dir, learning_rate=recipe.learning_rate, warmup_steps=recipe.warmup_steps,
        scheduler=recipe.scheduler, label_smoothing=recipe.label_smoothing, max_time=budget_minutes * 60, seed=recipe.seed, save_steps=None,
        keep_checkpoints=1, logging_steps=10, device=device if framework == "pt" else None,
        progress_bar=False if threads else None,
    )  # fmt: skip
    if framework == "pt":
        from westron.training.torch_trainer import Trainer as trainer_class
    else:
        from westron.training.tf_trainer import TFTrainer as trainer_class
    tracker = make_tracker("tensorboard", run_dir, run_name=framework)
    callbacks = [progress_lines(name)] if threads else []
    trainer = trainer_class(model, args, batcher, tokenizer=tokenizer, tracker=tracker, callbacks=callbacks)
    say(f"training in {name} for {budget_minutes:g} min ({len(pairs)} pairs, {batcher.num_batches_per_epoch()} batches an epoch) ...")
    state = trainer.train()
    final = os.path.join(folder, framework)
    from westron.file_utils import atomic_directory

    with atomic_directory(final) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    say(f"{name}: {state.global_step} steps, {state.tokens_seen / max(state.train_time, 1e-9):.0f} target tokens/s -> {final}")

    test = list(read_pairs(os.path.join(corpus, "test.jsonl"), source_lang, target_lang))[: recipe.test_sentences]
    started = time.monotonic()
    generation = dict(num_beams=recipe.num_beams, max_new_tokens=recipe.max_length)
    scores, hypotheses = evaluate_model(
        model, tokenizer, [p.source for p in test], [p.target for p in test], target_lang=target_lang, **generation
    )
    say(f"{name}: BLEU {scores.bleu:.1f}, chrF {scores.chrf:.1f} on {len(test)} held-out sentences ({time.monotonic() - started:.0f} s)")
    from westron.file_utils import atomic_write

    with atomic_write(os.path.join(run_dir, "test_hypotheses.txt")) as handle:
        handle.writelines(text + "\n" for text in hypotheses)
    _, samples = evaluate_model(model, tokenizer, list(SAMPLE_SENTENCES), list(SAMPLE_SENTENCES), **generation)
    return {
        "checkpoint": final,
        "steps": state.global_step,
        "train_seconds": state.train_time,
        "target_tokens_per_second": state.tokens_seen / max(state.train_time, 1e-9),
        "test": scores.to_dict(),
        "samples": dict(zip(SAMPLE_SENTENCES, samples)),
    }


def progress_lines(name: str, every_seconds: float = 60.0):
    """A trainer callback printing one progress line a minute (two progress bars at once garble a terminal)."""
    last_line = time.monotonic()

    def callback(trainer, logs: dict) -> None:
        nonlocal last_line
        if time.monotonic() - last_line >= every_seconds:
            last_line = time.monotonic()
            state = trainer.state
            say(
                f"{name}: step {state.global_step}, loss {logs['loss']:.2f}, "
                f"{state.tokens_seen / max(state.train_time, 1e-9):.0f} target tokens/s, epoch {state.epoch:.2f}"
            )

    return callback


def print_summary(results: dict) -> None:
    for pair, result in results["pairs"].items():
        for framework, numbers in result["frameworks"].items():
            say(f"{pair} {framework}: BLEU {numbers['test']['bleu']:.1f}, chrF {numbers['test']['chrf']:.1f}, {numbers['steps']} steps")
        frameworks = list(result["frameworks"])
        for sentence in SAMPLE_SENTENCES:
            outputs = " | ".join(f"{framework}: {result['frameworks'][framework]['samples'][sentence]}" for framework in frameworks)
            say(f"  {sentence!r} -> {outputs}")


def write_report(output_dir: str, pairs, frameworks, results, recipe: Recipe) -> None:
    """The comparison report (westron compare) over the trained checkpoints of the first pair, with a
    BLEU-by-language table over every pair, into output_dir/report/."""
    from westron.compare.cli import compare_and_report
    from westron.compare.measure import CompareSettings

    source_lang, target_lang = pairs[0]
    folder = pair_folder(output_dir, pairs, source_lang, target_lang)
    settings = CompareSettings(
        models=[(f"trained in {FRAMEWORK_NAMES[f]}", os.path.join(folder, f)) for f in frameworks],
        test_file=os.path.join(folder, "corpus", "test.jsonl"),
        source_langs=[source_lang],
        target_langs=[target_lang],
        output_dir=os.path.join(output_dir, "report"),
        training_logs=[f"{f}={os.path.join(folder, 'training', f, 'log.jsonl')}" for f in frameworks],
        num_beams=recipe.num_beams,
        max_new_tokens=recipe.max_length,
        # The BLEU table has every test sentence already; equivalence and the report's quality
        # section on a sample keep the whole run within its budget.
        max_sentences=min(recipe.test_sentences or REPORT_SENTENCES, REPORT_SENTENCES),
        # PyTorch eager and TensorFlow tf.function, one timed pass per row: with every mode but
        # torch.compile the report alone ran past 5 minutes on 2 cores (TensorFlow eager decodes a
        # few tokens a second; XLA compiles per shape). `westron compare` measures every mode.
        modes=["pt_eager", "tf_function"],
        runs=1,
        batch1_sentences=4,
        # tf.function, not XLA, for the equivalence outputs: XLA compiles each batch shape anew
        # (44 s of a 3.8-minute report on 2 cores); the speed section measures tf.function too.
        equivalence_tf_mode="function",
    )
    if recipe.quick_report:
        settings.make_quick()
        settings.modes = ["pt_eager", "tf_function"]  # the compiled modes' first compile alone outlasts a smoke run
    say("measuring both frameworks for the report (equivalence, quality, speed, memory) ...")
    _, paths = compare_and_report(settings, log=say, extra_section_providers=[bleu_by_language(results)])
    say(f"report: {paths['html']} (and {os.path.basename(paths['markdown'])}, {os.path.basename(paths['results'])})")


def bleu_by_language(results: dict):
    """A report section: each pair's held-out BLEU and chrF per framework, from quickstart.json."""

    def section(context) -> dict:
        rows = ["| pair | framework | BLEU | chrF | steps | target tokens/s |", "|---|---|---:|---:|---:|---:|"]
        for pair, result in results["pairs"].items():
            for framework, numbers in result["frameworks"].items():
                test = numbers["test"]
                rows.append(
                    f"| {pair} | {framework} | {test['bleu']:.1f} | {test['chrf']:.1f} | {numbers['steps']} | "
                    f"{numbers['target_tokens_per_second']:.0f} |"
                )
        text = (
            f"Each model trained {results['budget_minutes']:g} minutes from the same initial weights on the same "
            "batches, scored on whole catalogs it never saw (sacrebleu, 13a unless the language needs its own tokenizer).\n\n"
        )
        return {"id": "quickstart", "title": "Quickstart: BLEU by language pair", "markdown": text + "\n".join(rows)}

    return section
