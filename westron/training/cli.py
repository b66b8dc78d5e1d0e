"""`westron train`: fine-tune a checkpoint or train one from scratch, in PyTorch or TensorFlow.

    westron train --model Helsinki-NLP/opus-mt-en-de --train-file train.jsonl --validation-file dev.jsonl \
        --source-lang en --target-lang de --framework tf --max-time 600 --output-dir runs/en-de
    westron train --config marian-small --tokenizer tok/ --train-file train.jsonl ... --framework pt

The flags follow Hugging Face's run_translation.py where one exists. Everything a user can get
wrong (files, languages, flag combinations, a resume folder of another model) is checked before
the model is built or any data is tokenized; the run then reads, tokenizes and batches the corpus
(westron.data), trains (westron.training), evaluates on --test-file and writes the final model.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

import numpy as np

from westron.errors import WestronError

DEFAULT_MAX_TOKENS = 4096  # target tokens (padded) per batch: the small-CPU recipe (docs/training.md)
DEFAULT_EVAL_SAMPLES = 500  # validation sentences translated for BLEU at each evaluation


def add_train_command(commands) -> None:
    from westron.cli import positive_int
    from westron.training.arguments import SCHEDULERS
    from westron.training.presets import PRESETS

    train = commands.add_parser("train", help="fine-tune a checkpoint or train a model from scratch (PyTorch or TensorFlow)")
    model = train.add_argument_group("model")
    model.add_argument("--model", help="checkpoint folder or Hub repo id to fine-tune")
    model.add_argument("--config", help=f"train from scratch: a config.json, or a preset ({', '.join(PRESETS)}); needs --tokenizer")
    model.add_argument("--tokenizer", help="tokenizer folder (westron tokenizer train); default: the --model's own")
    model.add_argument("--framework", choices=("pt", "tf"), default=None, help="default: pt if installed, else tf")
    model.add_argument("--allow-pickle", action="store_true", help="load pytorch_model.bin pickles (trusted sources only)")

    data = train.add_argument_group("data")
    data.add_argument("--train-file", help="training pairs (JSON lines, TSV/CSV, Moses, a save_to_disk folder)")
    data.add_argument("--validation-file", help="validation pairs: loss and BLEU during training")
    data.add_argument("--test-file", help="test pairs: scored once at the end")
    data.add_argument("--dataset", help="a Hugging Face datasets name or folder instead of the files (splits train/validation/test)")
    data.add_argument("--dataset-config", help="the dataset's config name (opus100: en-es)")
    data.add_argument("--source-lang", required=True)
    data.add_argument("--target-lang", required=True)
    data.add_argument("--source-prefix", default="", help='text before every source (T5: "translate English to German: ")')
    data.add_argument("--forced-bos-lang", help="M2M100/NLLB: the target language code the decoder is forced to start with")
    data.add_argument("--src-lang", help="M2M100/NLLB: the source language code (eng_Latn)")
    data.add_argument("--max-source-length", type=positive_int, default=128)
    data.add_argument("--max-target-length", type=positive_int, default=128)
    data.add_argument("--batch-size", type=positive_int, help="sentences per batch (with or instead of --max-tokens)")
    data.add_argument("--max-tokens", type=positive_int, help=f"padded tokens per batch, length-bucketed (default {DEFAULT_MAX_TOKENS})")
    data.add_argument("--on-error", choices=("fail", "skip"), default="fail", help="malformed records: stop, or skip and count them")

    recipe = train.add_argument_group("recipe (defaults learn fast on a small CPU budget; docs/training.md)")
    recipe.add_argument("--epochs", type=float)
    recipe.add_argument("--max-steps", type=positive_int)
    recipe.add_argument("--max-time", type=float, help="seconds of training")
    recipe.add_argument("--learning-rate", type=float, default=1e-3)
    recipe.add_argument("--warmup-steps", type=int, default=150)
    recipe.add_argument("--scheduler", choices=SCHEDULERS, default="inverse-sqrt")
    recipe.add_argument("--weight-decay", type=float, default=0.01)
    recipe.add_argument("--label-smoothing", type=float, default=0.1)
    recipe.add_argument("--dropout", type=float, help="the model's dropout (default: its config's; 0.1 for the presets)")
    recipe.add_argument("--gradient-accumulation", type=positive_int, default=1)
    recipe.add_argument("--max-grad-norm", type=float, default=1.0, help="0 turns clipping off")
    recipe.add_argument(
        "--mixed-precision", choices=("bf16", "fp16"), default=None,
        help="bf16: float32 weights, bfloat16 compute (both frameworks; slower on a CPU without AVX512_BF16); fp16: PyTorch on CUDA",
    )  # fmt: skip
    recipe.add_argument("--seed", type=int, default=42, help="initial weights (--config), dropout and data order")
    recipe.add_argument("--compile", action="store_true", help="PyTorch: torch.compile the forward pass")
    recipe.add_argument("--xla", action="store_true", help="TensorFlow: jit_compile the training step")

    run = train.add_argument_group("evaluation, checkpoints, tracking")
    run.add_argument("--output-dir", required=True)
    run.add_argument("--eval-steps", type=positive_int)
    run.add_argument("--eval-samples", type=positive_int, default=DEFAULT_EVAL_SAMPLES, help="validation sentences translated for BLEU")
    run.add_argument("--num-beams", type=positive_int, default=4, help="beam size for BLEU during and after training")
    run.add_argument("--logging-steps", type=positive_int, default=50, help="steps between logged training loss, learning rate, tokens/s")
    run.add_argument("--save-steps", type=positive_int, default=500)
    run.add_argument("--keep-checkpoints", type=positive_int, default=2)
    run.add_argument("--early-stopping-patience", type=positive_int)
    run.add_argument("--resume", nargs="?", const=True, default=None, help="continue from the last checkpoint in --output-dir, or from FOLDER")
    run.add_argument("--report-to", default="tensorboard", help="tensorboard, mlflow, wandb, none (comma-separated for several)")
    run.add_argument("--device", help="PyTorch: cpu, cuda, cuda:N; TensorFlow: cpu, gpu, gpu:N")
    run.add_argument(
        "--tf-strategy", choices=("mirrored", "multi-worker"),
        help="TensorFlow data parallelism: mirrored (every local GPU), multi-worker (the cluster in TF_CONFIG; "
        "the default when TF_CONFIG is set). PyTorch: launch with torchrun (docs/training.md)",
    )  # fmt: skip
    run.add_argument("--push-to-hub", action="store_true", help="upload the final model with a model card")
    run.add_argument("--hub-model-id", help="the repo for --push-to-hub (default: the output folder's name)")
    train.set_defaults(run=run_train)


# ---- checks before any work -------------------------------------------------------------------------


def check_arguments(args: argparse.Namespace) -> None:
    """Every mistake a user can make on the command line, as one WestronError, before any work."""
    if bool(args.model) == bool(args.config):
        raise WestronError("give --model (to fine-tune) or --config (to train from scratch), not both" if args.model else "give --model (to fine-tune) or --config with --tokenizer (to train from scratch)")
    if args.config and not args.tokenizer:
        raise WestronError("--config trains from scratch and needs --tokenizer DIR (westron tokenizer train makes one)")
    if bool(args.train_file) == bool(args.dataset):
        raise WestronError("give --train-file or --dataset" if not args.train_file else "give --train-file or --dataset, not both")
    if args.dataset and os.path.isfile(os.path.join(args.dataset, "state.json")):  # save_to_disk of one Dataset
        raise WestronError(
            f"--dataset {args.dataset} holds one dataset, not train/validation/test splits: give it as --train-file {args.dataset}"
        )
    if args.dataset:
        for flag in ("validation_file", "test_file"):
            if getattr(args, flag) is not None:
                raise WestronError(f"--{flag.replace('_', '-')}: --dataset brings its own validation and test splits; give files with --train-file")
    elif args.dataset_config is not None:
        raise WestronError("--dataset-config applies to a --dataset, not to --train-file")
    if args.hub_model_id is not None and not args.push_to_hub:
        raise WestronError("--hub-model-id names the repo of --push-to-hub: add --push-to-hub or drop it")
    if args.max_steps is None and args.epochs is None and args.max_time is None:
        raise WestronError("say how long to train: --max-time SECONDS, --max-steps N or --epochs N")
    if args.max_tokens is None and args.batch_size is None:
        args.max_tokens = DEFAULT_MAX_TOKENS
    for flag in ("train_file", "validation_file", "test_file"):
        path = getattr(args, flag)
        if path is not None and not os.path.exists(path) and not _is_moses_prefix(path, args):
            raise WestronError(f"--{flag.replace('_', '-')} {path}: no such file")
    existing = os.path.abspath(args.output_dir)
    while not os.path.exists(existing):  # the nearest part of the path that is there must be a folder
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise WestronError(f"--output-dir {args.output_dir}: {existing} is a file, not a folder")
    if args.model and os.path.sep in args.model and not os.path.isdir(args.model) and os.path.exists(args.model):
        raise WestronError(f"--model {args.model} is a file: give the checkpoint folder")
    if args.xla or args.compile:  # without --framework the run takes the default one, which must be the flag's
        from westron.pipelines import default_framework

        framework = args.framework or default_framework()
        if framework == "pt" and args.xla:
            raise WestronError("--xla applies to TensorFlow (--framework tf); PyTorch has --compile")
        if framework == "tf" and args.compile:
            raise WestronError("--compile applies to PyTorch (--framework pt); TensorFlow has --xla")
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        raise WestronError(f"--dropout {args.dropout:g} must be at least 0 and below 1")
    if not (args.validation_file or args.dataset):
        for flag in ("eval_steps", "early_stopping_patience"):
            if getattr(args, flag) is not None:
                raise WestronError(f"--{flag.replace('_', '-')} evaluates on validation pairs: add --validation-file")
    from westron.training.tracking import parse_report_to

    parse_report_to(args.report_to)
    if args.resume not in (None, True) and not os.path.isdir(args.resume):
        raise WestronError(f"--resume {args.resume}: no such checkpoint folder")
    check_distributed_arguments(args)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def check_distributed_arguments(args: argparse.Namespace) -> None:
    """torchrun belongs to PyTorch, --tf-strategy and TF_CONFIG to TensorFlow; each combination in one line."""
    if launched_by_torchrun() and (args.framework == "tf" or args.tf_strategy):
        raise WestronError("torchrun launches PyTorch data parallelism: drop --framework tf / --tf-strategy (TensorFlow uses --tf-strategy, no launcher)")
    if args.tf_strategy and args.framework != "tf":
        raise WestronError("--tf-strategy applies to TensorFlow: add --framework tf (PyTorch runs data-parallel under torchrun)")
    if args.tf_strategy == "multi-worker" and not os.environ.get("TF_CONFIG"):
        raise WestronError("--tf-strategy multi-worker needs TF_CONFIG (the cluster and this worker's task) in the environment")
    if args.tf_strategy == "mirrored" and os.environ.get("TF_CONFIG"):
        raise WestronError("TF_CONFIG describes a cluster but --tf-strategy mirrored trains on one machine: use multi-worker or unset TF_CONFIG")
    if (args.tf_strategy or (args.framework == "tf" and os.environ.get("TF_CONFIG"))) and args.device:
        raise WestronError("--device picks one device; a --tf-strategy run uses every GPU of the machine (limit them with CUDA_VISIBLE_DEVICES)")


def process_layout(framework: str) -> tuple[int, int]:
    """(number of training processes, this one's index): torchrun's WORLD_SIZE and RANK, TF_CONFIG's workers."""
    if framework == "pt" and launched_by_torchrun():
        return int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    if framework == "tf" and os.environ.get("TF_CONFIG"):
        from westron.training.tf_trainer import tf_config_layout

        return tf_config_layout(os.environ["TF_CONFIG"])
    return 1, 0


def _is_moses_prefix(path: str, args) -> bool:
    return os.path.exists(f"{path}.{args.source_lang}") and os.path.exists(f"{path}.{args.target_lang}")


def split_sources(args: argparse.Namespace) -> dict[str, tuple[str, dict]]:
    """{split: (path or dataset name, read_pairs options)} for the splits this run has."""
    if args.dataset:
        options = dict(format="hf", hf_config=args.dataset_config, on_error=args.on_error)
        return {split: (args.dataset, dict(options, split=split)) for split in ("train", "validation", "test")}
    options = dict(on_error=args.on_error)
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    return {split: (path, options) for split, path in files.items() if path}


def read_split(args, source: tuple[str, dict], *, required: bool = True):
    """All pairs of one split (a WestronError names a missing language or a malformed record)."""
    from westron.data.readers import ReadStats, read_pairs

    name, options = source
    stats = ReadStats()
    try:
        pairs = list(read_pairs(name, args.source_lang, args.target_lang, stats=stats, **options))
    except WestronError as error:
        if not required and "split" in options and "split" in str(error):
            return []  # a dataset without this split
        raise
    if not pairs and required:
        raise WestronError(f"{name} holds no {args.source_lang}-{args.target_lang} pairs")
    if stats.num_skipped:  # --on-error skip: say how many records the run leaves out, and why
        log(f"warning: {name}: skipped {stats.skipped_summary()}, e.g. {stats.examples[0]}")
    return pairs


# ---- the run ------------------------------------------------------------------------------------------


def run_train(args: argparse.Namespace) -> None:
    check_arguments(args)
    from westron.pipelines import default_framework

    framework = args.framework or default_framework()
    if framework == "tf":
        from westron.cli import import_tensorflow_quietly

        import_tensorflow_quietly()
    placement = device_placement(framework, args.device)  # a device this machine lacks fails here, before any work

    sources = split_sources(args)
    # Peek at every file first: a missing language, an unreadable file or one without a single pair
    # (a --validation-file that would be ignored) fails before any work.
    from westron.data.readers import read_pairs

    for split, source in sources.items():
        if not args.dataset:
            if next(iter(read_pairs(source[0], args.source_lang, args.target_lang, **source[1])), None) is None:
                raise WestronError(f"--{split}-file {source[0]} holds no {args.source_lang}-{args.target_lang} pairs")
        elif split == "train":  # loads the dataset (from the cache) and checks its columns: a missing one fails here
            read_pairs(source[0], args.source_lang, args.target_lang, **source[1])

    with placement:
        train_and_test(args, framework, sources)


def device_placement(framework: str, device: str | None):
    """Checks --device against this machine (one WestronError line if it lacks it) and returns the context
    the run goes in: TensorFlow places variables and ops by tf.device, so model building, training and
    the test scores all run inside it; PyTorch moves the model itself (.to, the Trainer's device)."""
    import contextlib

    if device is None:
        return contextlib.nullcontext()
    if framework == "tf":
        import tensorflow as tf

        from westron.modeling_tf_utils import resolve_tf_device

        return tf.device(resolve_tf_device(device))
    from westron.modeling_utils import resolve_device

    resolve_device(device)
    return contextlib.nullcontext()


def train_and_test(args: argparse.Namespace, framework: str, sources: dict[str, tuple[str, dict]]) -> None:
    """Builds the model, trains it, scores it on the test split and writes the final folder and results."""
    num_processes, process_index = process_layout(framework)
    main_process = process_index == 0
    global _LOG_TO_STDERR
    _LOG_TO_STDERR = main_process  # one voice: the other processes train silently
    strategy = make_tf_strategy(args) if framework == "tf" else None
    tokenizer, model = load_tokenizer_and_model(args, framework, strategy)
    training_args = make_training_arguments(args, framework)
    if args.resume:
        from westron.training.state import check_same_model, resolve_resume_folder

        folder = resolve_resume_folder(args.resume, args.output_dir)
        if folder is not None:
            check_same_model(folder, model.config.model_type, _model_shapes(model, framework))

    log(f"reading and tokenizing {', '.join(sources)} ...")
    train_pairs = read_split(args, sources["train"])
    validation_pairs = read_split(args, sources["validation"], required=False) if "validation" in sources else []
    test_pairs = read_split(args, sources["test"], required=False) if "test" in sources else []
    batcher = make_batcher(args, tokenizer, model.config, train_pairs, num_shards=num_processes, shard_index=process_index)
    eval_batches = make_eval_batches(args, tokenizer, model.config, validation_pairs) if validation_pairs else None
    log(
        f"{len(train_pairs)} training pairs in {batcher.num_batches_per_epoch()} batches an epoch; "
        f"{len(validation_pairs)} validation and {len(test_pairs)} test pairs; {framework}, "
        f"{sum(int(np.prod(shape)) for shape in _model_shapes(model, framework).values())} parameters"
    )

    from westron.training.tracking import make_tracker

    params = {name: value for name, value in vars(args).items() if name not in ("run", "argv")}
    tracker = make_tracker(args.report_to, args.output_dir, params={**params, "framework": framework}) if main_process else None
    trainer_class = _trainer_class(framework)
    trainer = trainer_class(
        model,
        training_args,
        batcher,
        eval_batches=eval_batches,
        tokenizer=tokenizer,
        compute_metrics=bleu_metric(args, tokenizer, validation_pairs) if validation_pairs else None,
        tracker=tracker,
        **({"strategy": strategy} if strategy is not None else {}),
    )
    state = trainer.train(resume_from=args.resume)
    final = os.path.join(args.output_dir, "final")
    log(f"trained {state.global_step} steps ({state.tokens_seen} target tokens); the model is in {final}")
    if not main_process:
        return  # the test scores, results and the upload are the main process's

    results = {"framework": framework, "global_step": state.global_step, "command": command_line(args)}
    if test_pairs:
        from westron.evaluation import evaluate_model

        scores, hypotheses = evaluate_model(
            model, tokenizer, [p.source for p in test_pairs], [p.target for p in test_pairs],
            target_lang=args.target_lang, num_beams=args.num_beams, **_translation_kwargs(args, model, tokenizer),
        )  # fmt: skip
        log(f"test: {scores.format() if hasattr(scores, 'format') else scores}")
        results["test"] = scores.to_dict()
        from westron.cli import as_one_line
        from westron.file_utils import atomic_write

        with atomic_write(os.path.join(args.output_dir, "test_hypotheses.txt")) as handle:
            handle.writelines(as_one_line(text) + "\n" for text in hypotheses)  # one line per test pair
    from westron.file_utils import atomic_write

    with atomic_write(os.path.join(args.output_dir, "results.json")) as handle:
        json.dump(results, handle, indent=2, ensure_ascii=False)
    write_model_card(final, args, results)
    if args.push_to_hub:
        push_to_hub(final, args)


def make_tf_strategy(args):
    """The tf.distribute strategy --tf-strategy (or TF_CONFIG) asks for, or None: one device."""
    kind = args.tf_strategy or ("multi-worker" if os.environ.get("TF_CONFIG") else None)
    if kind is None:
        return None
    import tensorflow as tf

    if kind == "multi-worker":  # before any other TF work: it starts this worker's server
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def seed_initialisation(framework: str, seed: int) -> None:
    """--seed fixes a model's random initial weights too (as HF's run_translation.py calls set_seed
    before it makes the model): the trainer seeds again for dropout and data order."""
    if framework == "pt":
        import torch

        torch.manual_seed(seed)
    else:
        import keras

        keras.utils.set_random_seed(seed)  # Python, numpy and TensorFlow, which Keras' initialisers draw from


def load_tokenizer_and_model(args, framework: str, strategy=None):
    """The tokenizer and the model; a TF model under a strategy has its variables made in strategy.scope()."""
    if strategy is not None:
        with strategy.scope():
            tokenizer, model = load_tokenizer_and_model(args, framework)
            model.build_weights()  # a model from a config makes its variables on first build: here, mirrored
        return tokenizer, model
    from westron.models.auto import AutoModelForSeq2SeqLM, AutoTokenizer, TFAutoModelForSeq2SeqLM

    auto_model = AutoModelForSeq2SeqLM if framework == "pt" else TFAutoModelForSeq2SeqLM
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    set_languages(tokenizer, args)
    if args.config:
        from westron.training.presets import build_config

        config = build_config(args.config, tokenizer)
        if args.dropout is not None:
            setattr(config, dropout_field(config.model_type), args.dropout)
        seed_initialisation(framework, args.seed)
        model = auto_model.from_config(config)
    else:
        from westron.models.auto import AutoConfig

        config = AutoConfig.from_pretrained(args.model)
        if args.tokenizer and len(tokenizer) > config.vocab_size:  # its ids past the embeddings would fail mid-step
            raise WestronError(
                f"--tokenizer {args.tokenizer} has {len(tokenizer)} tokens but {args.model} embeds {config.vocab_size}: "
                "fine-tune with the model's own tokenizer (or resize its embeddings first)"
            )
        kwargs = {"allow_pickle": True} if args.allow_pickle else {}
        if args.dropout is not None:
            kwargs[dropout_field(config.model_type)] = args.dropout
        model = auto_model.from_pretrained(args.model, **kwargs)
    if args.source_prefix:
        record_source_prefix(model.config, args)
    from westron.generation.configuration_utils import DEFAULTS

    if model.generation_config.max_length in (None, DEFAULTS["max_length"]):  # unset: the saved model would stop at 20 tokens
        model.generation_config.max_length = max_new_tokens(args, model) + 1  # the decoder start token counts
    if hasattr(tokenizer, "tgt_lang"):  # --forced-bos-lang, or the language the tokenizer was saved with
        model.generation_config.forced_bos_token_id = tokenizer.get_lang_id(tokenizer.tgt_lang)
    if framework == "pt" and args.device:
        from westron.modeling_utils import resolve_device

        model.to(resolve_device(args.device))
    return tokenizer, model


def set_languages(tokenizer, args) -> None:
    """A multilingual tokenizer (M2M100, NLLB) frames sources with src_lang and targets with tgt_lang, the
    forced BOS of the BLEU runs. Each is its flag (--src-lang, --forced-bos-lang), else the data's key
    when it is one of the model's codes (M2M100's "de", as HF's run_translation.py takes it), else what
    the tokenizer was saved with (a model westron train fine-tuned)."""
    if not hasattr(tokenizer, "tgt_lang"):
        if args.forced_bos_lang or args.src_lang:
            raise WestronError("--src-lang / --forced-bos-lang apply to multilingual (M2M100/NLLB) models")
        return
    codes = tokenizer.lang_code_to_id
    tokenizer.src_lang = args.src_lang or (args.source_lang if args.source_lang in codes else tokenizer.src_lang)
    tokenizer.tgt_lang = args.forced_bos_lang or (args.target_lang if args.target_lang in codes else tokenizer.tgt_lang)
    if tokenizer.tgt_lang is None:  # the labels and the BLEU runs need it
        raise WestronError(
            f"--target-lang {args.target_lang} is no language code of this model: give its code with --forced-bos-lang "
            "(and the source's with --src-lang)"
        )


def record_source_prefix(config, args) -> None:
    """Saves --source-prefix in the config as Hugging Face's task_specific_params entry for this direction
    (first, so it is the default), so the trained model translates with it (westron translate, evaluate,
    HF 4.x's pipeline) without being told again."""
    task = f"translation_{args.source_lang}_to_{args.target_lang}"
    known = dict(getattr(config, "task_specific_params", None) or {})
    entry = {**known.pop(task, {}), "prefix": args.source_prefix}
    config.task_specific_params = {task: entry, **known}


def dropout_field(model_type: str) -> str:
    """The config field of a model family's dropout rate (T5 names it dropout_rate)."""
    return "dropout_rate" if model_type in ("t5", "mt5") else "dropout"


def _model_shapes(model, framework: str) -> dict[str, tuple[int, ...]]:
    """Checkpoint names and shapes, as the trainers' model_shapes() give them (tied names left out)."""
    if framework == "tf":
        return model.checkpoint_shapes()
    tied = model.tied_weights()
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items() if name not in tied}


def _trainer_class(framework: str):
    if framework == "pt":
        from westron.training.torch_trainer import Trainer

        return Trainer
    from westron.training.tf_trainer import TFTrainer

    return TFTrainer


def make_training_arguments(args, framework: str):
    """TrainingArguments from the flags. --device goes to the PyTorch Trainer; a TensorFlow run is placed by
    tf.device (device_placement) instead, as the TF trainer trains where its model was built."""
    from westron.training.arguments import TrainingArguments

    return TrainingArguments(
        output_dir=args.output_dir,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        scheduler=args.scheduler,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        gradient_accumulation=args.gradient_accumulation,
        max_grad_norm=args.max_grad_norm or None,
        mixed_precision=args.mixed_precision,
        seed=args.seed,
        max_steps=args.max_steps,
        epochs=args.epochs,
        max_time=args.max_time,
        eval_steps=args.eval_steps,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        keep_checkpoints=args.keep_checkpoints,
        early_stopping_patience=args.early_stopping_patience,
        metric_for_best_model="eval_bleu" if args.validation_file or args.dataset else "eval_loss",
        num_beams=args.num_beams,
        compile=args.compile,
        xla=args.xla,
        device=args.device if framework == "pt" else None,
    )


def _encode(args, tokenizer, pairs):
    from westron.data.batching import encode_pairs

    return encode_pairs(tokenizer, pairs, args.max_source_length, args.max_target_length, source_prefix=args.source_prefix)


def make_batcher(args, tokenizer, config, pairs, *, shuffle: bool = True, num_shards: int = 1, shard_index: int = 0):
    """Token batches of `pairs` as the flags ask (length-bucketed; shuffled per epoch for training);
    with several processes, this process's shard of every global batch."""
    from westron.data.batching import TokenBatcher

    source_ids, target_ids = _encode(args, tokenizer, pairs)
    return TokenBatcher(
        source_ids,
        target_ids,
        pad_token_id=config.pad_token_id,
        decoder_start_token_id=config.decoder_start_token_id,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
        shuffle=shuffle,
        num_shards=num_shards,
        shard_index=shard_index,
    )


def make_eval_batches(args, tokenizer, config, pairs) -> list:
    """The validation set as a fixed list of length-sorted batches (the same every evaluation)."""
    batcher = make_batcher(args, tokenizer, config, pairs, shuffle=False)
    return [batcher.batch(indices) for indices in batcher.epoch_batches(0)]


def max_new_tokens(args, model) -> int:
    """--max-target-length, within the model's decoder positions (T5 has none: relative positions)."""
    positions = getattr(model.config, "max_position_embeddings", None)
    return min(args.max_target_length, positions) if positions else args.max_target_length


def _translation_kwargs(args, model, tokenizer) -> dict:
    """What the BLEU runs translate with: as many new tokens as a training target may hold (as HF's
    run_translation.py does; the generation config's default would cut them at 20), the source prefix,
    and a multilingual tokenizer's languages (from --src-lang / --forced-bos-lang, or as it was saved)."""
    kwargs = {
        "max_new_tokens": max_new_tokens(args, model),
        "source_prefix": args.source_prefix,  # "" too: not a prefix from the config the training pairs never had
    }
    if hasattr(tokenizer, "tgt_lang"):
        kwargs.update(src_lang=tokenizer.src_lang, tgt_lang=tokenizer.tgt_lang)
    return kwargs


def bleu_metric(args, tokenizer, pairs):
    """compute_metrics for the trainer: BLEU and chrF on the first --eval-samples validation pairs."""
    sample = pairs[: args.eval_samples]
    sources, references = [pair.source for pair in sample], [pair.target for pair in sample]

    def compute(model) -> dict[str, float]:
        from westron.evaluation import evaluate_model

        scores, _ = evaluate_model(
            model, tokenizer, sources, references, target_lang=args.target_lang, num_beams=args.num_beams,
            **_translation_kwargs(args, model, tokenizer),
        )  # fmt: skip
        return {"bleu": scores.bleu, "chrf": scores.chrf}

    return compute


# ---- after training -----------------------------------------------------------------------------------


def command_line(args) -> str:
    return "westron " + " ".join(shlex.quote(arg) for arg in args.argv)


def write_model_card(folder: str, args, results: dict) -> None:
    """README.md in Hugging Face's model-card layout: languages, metrics and how the model was trained."""
    from westron.file_utils import atomic_write

    test = results.get("test") or {}
    metrics = "".join(f"- {name}: {test[name]:.2f}\n" for name in ("bleu", "chrf", "ter") if isinstance(test.get(name), (int, float)))
    card = (
        "---\n"
        f"language:\n- {args.source_lang}\n- {args.target_lang}\n"
        "tags:\n- translation\n- westron\n"
        "library_name: westron\n"
        "---\n\n"
        f"# {os.path.basename(os.path.abspath(args.output_dir))}\n\n"
        f"A {args.source_lang}-{args.target_lang} translation model trained with Westron "
        f"({results['framework']}, {results['global_step']} steps).\n\n"
        + (f"## Test scores\n\n{metrics}\n" if metrics else "")
        + f"## Training command\n\n```\n{results['command']}\n```\n"
    )
    with atomic_write(os.path.join(folder, "README.md")) as handle:
        handle.write(card)


def push_to_hub(folder: str, args) -> None:
    """Uploads the final folder; everything is already saved, so a failure costs nothing but one line."""
    from huggingface_hub import HfApi

    repo_id = args.hub_model_id or os.path.basename(os.path.abspath(args.output_dir))
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise WestronError(f"--push-to-hub: HF_HUB_OFFLINE is set; the model is saved in {folder} (upload it later)")
    try:
        api = HfApi()
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Upload model trained with westron train")
    except Exception as error:  # network, authentication, rate limits: all the user's to fix, nothing is lost
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WestronError(f"--push-to-hub {repo_id} failed ({first_line}); the model is saved in {folder}") from None
    log(f"uploaded {folder} to {repo_id}")


_LOG_TO_STDERR = True  # False in the processes other than the main one of a data-parallel run


def log(message: str) -> None:
    if _LOG_TO_STDERR:
        print(f"westron: {message}", file=sys.stderr, flush=True)
