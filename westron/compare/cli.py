"""`westron compare` and `westron report`: measure both frameworks on a checkpoint, render the report.

    westron compare --model DIR [--model DIR2] --test-file F --source-lang en --target-lang de -o OUT [--quick]
    westron compare --render-only OUT/results.json -o OUT2      (re-render without measuring)
    westron report OUT/results.json [-o OUT2]                   (the same)

OUT gets results.json (every number, with how it was measured), report.md (+ plots/*.png) and a
self-contained report.html. docs/compare.md describes each section.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from westron.errors import WestronError


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_compare_command(commands) -> None:
    """Adds `compare` and `report` to the `westron` command's subparsers."""
    from westron.cli import positive_int
    from westron.compare.measure import MODES

    compare = commands.add_parser("compare", help="PyTorch vs TensorFlow on one checkpoint: equivalence, quality, speed, memory")
    compare.add_argument("--model", action="append", default=[], metavar="[LABEL=]DIR",
                         help="checkpoint folder or Hub repo id; give twice to compare two checkpoints (e.g. pt=runs/pt/final tf=runs/tf/final)")
    compare.add_argument("--test-file", help="test set: JSON lines, TSV/CSV with language columns, a Moses pair, ...")
    compare.add_argument("--source-lang", type=comma_list, help="source language key(s) in the test file (en; en,en for several pairs)")
    compare.add_argument("--target-lang", type=comma_list, help="target language key(s) in the test file (de; de,fr for several pairs)")
    compare.add_argument("--src-lang", default=None, help="the model's source language code when it differs from the key (NLLB: eng_Latn)")
    compare.add_argument("--tgt-lang", default=None, help="the model's target language code when it differs from the key (NLLB: deu_Latn)")
    compare.add_argument("--source-prefix", default=None, help='text put before every source (T5: "translate English to German: ")')
    compare.add_argument("-o", "--output-dir", required=True, help="where results.json, report.md and report.html go")
    compare.add_argument("--render-only", metavar="RESULTS_JSON", default=None, help="re-render an earlier results.json; measure nothing")
    compare.add_argument("--training-log", action="append", default=[], metavar="[LABEL=]PATH",
                         help="a training log (JSON lines) or a folder with log.jsonl; default: found beside the models")
    compare.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu, gpu, cuda:N / gpu:N")
    compare.add_argument("--modes", type=comma_list, default=list(MODES),
                         help=f"speed/memory modes, comma-separated, or 'none' (default: all: {','.join(MODES)})")
    compare.add_argument("--quick", action="store_true", help="smoke-test sizes: 16 sentences, 4 for speed, one timed run")
    compare.add_argument("--max-sentences", type=positive_int, default=None, help="test sentences for equivalence and quality (default: all)")
    compare.add_argument("--speed-sentences", type=positive_int, default=None, help="sentences timed at batch 32 (default 32)")
    compare.add_argument("--batch1-sentences", type=positive_int, default=None, help="sentences timed one at a time (default 8)")
    compare.add_argument("--runs", type=positive_int, default=None, help="timed runs after the warm-up; the median is reported (default 3)")
    compare.add_argument("--num-beams", type=positive_int, default=4, help="beam width of the beam-search columns (default 4)")
    compare.add_argument("--max-new-tokens", type=positive_int, default=None, help="cap on generated tokens (default: the model's)")
    compare.add_argument("--equivalence-tf-mode", choices=("xla", "function", "eager"), default="xla",
                         help="how TensorFlow generates for equivalence and quality (default xla, its generate default)")
    compare.add_argument("--mode-timeout", type=positive_seconds, default=1800.0, help="seconds one speed mode may take before it is reported as failed")
    compare.add_argument("--bleu-tokenize", default=None, help="sacrebleu BLEU tokenizer (default: from the target language)")
    compare.add_argument("--on-error", choices=("fail", "skip"), default="fail", help="malformed test records: stop or skip them")
    compare.add_argument("--source-column", default=None, help="TSV/CSV: the source column's header name or 0-based index (one pair)")
    compare.add_argument("--target-column", default=None, help="TSV/CSV: the target column's header name or 0-based index (one pair)")
    # What --render-only refuses: every flag that changes a measurement, at its default unless typed.
    defaults = vars(compare.parse_args(["--output-dir", "unused"]))
    measuring = {dest: value for dest, value in defaults.items() if dest not in ("output_dir", "render_only")}
    compare.set_defaults(run=run_compare_command, measuring_defaults=measuring)

    report = commands.add_parser("report", help="render a `westron compare` results.json as Markdown and HTML")
    report.add_argument("results", help="results.json written by westron compare")
    report.add_argument("-o", "--output-dir", default=None, help="where to write the report (default: beside results.json)")
    report.set_defaults(run=run_report_command)


def positive_seconds(text: str) -> float:
    """A time limit: a positive finite number of seconds (0, -5 or nan would fail every mode unmeasured)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


def parse_models(items: list[str]) -> list[tuple[str, str]]:
    models = []
    for item in items:
        label, separator, path = item.partition("=")
        if not separator or os.path.exists(item):
            label, path = "", item
        models.append((label or os.path.basename(os.path.normpath(path)) or path, path))
    labels = [label for label, _ in models]
    if len(set(labels)) != len(labels):
        models = [(f"{label} ({k + 1})", path) for k, (label, path) in enumerate(models)]
    return models


def render(results_path: str, output_dir: str) -> None:
    from westron.compare.measure import check_output_dir
    from westron.compare.report import load_results, report_blocks, write_reports, write_results

    results = load_results(results_path)
    try:
        report_blocks(results)  # a truncated or hand-edited file fails here, before any folder is made
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        raise WestronError(f"{results_path} is incomplete or edited: not as westron compare writes it ({type(error).__name__}: {error})") from None
    check_output_dir(output_dir)
    paths = write_reports(results, output_dir)
    if os.path.abspath(os.path.dirname(results_path)) != os.path.abspath(output_dir):
        write_results(results, output_dir)
    print(f"report: {paths['html']} and {paths['markdown']}")


def run_compare_command(args: argparse.Namespace) -> None:
    if args.render_only:
        measuring = [f"--{name.replace('_', '-')}" for name, default in args.measuring_defaults.items() if getattr(args, name) != default]
        if measuring:
            raise WestronError(f"--render-only measures nothing: drop {', '.join(measuring)}")
        render(args.render_only, args.output_dir)
        return
    missing = [flag for flag, value in (("--model", args.model), ("--test-file", args.test_file),
                                        ("--source-lang", args.source_lang), ("--target-lang", args.target_lang)) if not value]
    if missing:
        raise WestronError(f"compare needs {', '.join(missing)} (or --render-only RESULTS_JSON)")
    if len(args.model) > 2:
        raise WestronError("compare takes one or two --model checkpoints")
    from westron.compare.measure import CompareSettings

    modes = [] if args.modes == ["none"] else args.modes
    if not modes:
        timing = [f"--{name.replace('_', '-')}" for name in ("speed_sentences", "batch1_sentences", "runs", "mode_timeout")
                  if getattr(args, name) != args.measuring_defaults[name]]
        if timing:
            raise WestronError(f"{', '.join(timing)} size(s) the speed modes, which --modes none skips: drop them or choose modes")
    settings = CompareSettings(
        models=parse_models(args.model), test_file=args.test_file, source_langs=args.source_lang,
        target_langs=args.target_lang, output_dir=args.output_dir, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
        source_prefix=args.source_prefix, device=args.device, modes=modes, num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens, mode_timeout=args.mode_timeout, training_logs=args.training_log,
        bleu_tokenize=args.bleu_tokenize, on_error=args.on_error, equivalence_tf_mode=args.equivalence_tf_mode,
        source_column=args.source_column, target_column=args.target_column,
    )
    if args.quick:
        settings.make_quick()
    for name in ("max_sentences", "speed_sentences", "batch1_sentences", "runs"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    results, paths = compare_and_report(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    for model in results["models"]:
        verdict = "equivalent" if model["equivalence"]["equivalent"] else "NOT EQUIVALENT"
        print(f"{model['label']}: PyTorch and TensorFlow {verdict} "
              f"(max |logit diff| {model['equivalence']['logits']['max_abs_diff']:.3g})")
    print(f"report: {paths['html']} and {paths['markdown']}; numbers: {os.path.join(args.output_dir, 'results.json')}")


def compare_and_report(settings, log=print, extra_section_providers=None) -> tuple[dict, dict[str, str]]:
    """Measures, writes results.json, renders report.md and report.html (what `westron quickstart` calls).

    Returns the results and the report paths {"results", "markdown", "html"}.
    """
    from westron.compare.measure import run_compare
    from westron.compare.report import write_reports, write_results

    results = run_compare(settings, log=log, extra_section_providers=extra_section_providers)
    paths = {"results": write_results(results, settings.output_dir), **write_reports(results, settings.output_dir)}
    return results, paths


def run_report_command(args: argparse.Namespace) -> None:
    render(args.results, args.output_dir or os.path.dirname(os.path.abspath(args.results)))
