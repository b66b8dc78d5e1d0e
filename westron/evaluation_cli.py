"""`westron evaluate`: translate a test set with a checkpoint and print BLEU, chrF and TER with signatures.

    westron evaluate --model DIR --test-file test.jsonl --source-lang en --target-lang es [-o hyp.txt] [--output-json scores.json]

The test file is JSON lines in Hugging Face's translation layout (`{"translation": {"en": ..., "es": ...}}`,
.jsonl/.json), TSV/CSV with a header naming the language columns (or, without a header,
`--source-column 0 --target-column 1`), or any other format `westron data prepare` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from westron.errors import WestronError


def add_evaluate_command(commands) -> None:
    """Adds the `evaluate` subcommand to the `westron` command's subparsers."""
    from westron.cli import positive_int

    evaluate = commands.add_parser("evaluate", help="translate a test set and score it (BLEU, chrF, TER)")
    evaluate.add_argument("--model", required=True, help="checkpoint folder or Hugging Face Hub repo id")
    evaluate.add_argument("--test-file", required=True, help="JSON lines ({\"translation\": {...}}), TSV/CSV with language columns, a Moses pair, ...")
    evaluate.add_argument("--source-column", default=None, help="TSV/CSV: the source column's header name or 0-based index (default: the one named --source-lang)")
    evaluate.add_argument("--target-column", default=None, help="TSV/CSV: the target column's header name or 0-based index")
    evaluate.add_argument("--on-error", choices=("fail", "skip"), default="fail", help="malformed test records: stop (default) or skip them")
    evaluate.add_argument("--source-lang", required=True, help="source language key in the test file (en)")
    evaluate.add_argument("--target-lang", required=True, help="target language key in the test file (es); picks the BLEU tokenizer")
    evaluate.add_argument("--framework", choices=("pt", "tf"), default=None, help="default: pt if installed, else tf")
    evaluate.add_argument("--device", default=None, help="cpu, cuda, cuda:N (PyTorch) or gpu, gpu:N (TensorFlow)")
    evaluate.add_argument("--num-beams", type=positive_int, default=None, help="beam size (default: the model's)")
    evaluate.add_argument("--batch-size", type=positive_int, default=32)
    evaluate.add_argument("--max-new-tokens", type=positive_int, default=None)
    evaluate.add_argument("--quantize", default=None, metavar="METHOD", help="int8: int8 matrix products (CPU inference; see docs/benchmarks.md)")
    evaluate.add_argument("--bleu-tokenize", default=None, help="sacrebleu BLEU tokenizer (default: from --target-lang: ja-mecab, zh, ko-mecab or 13a)")
    evaluate.add_argument("--src-lang", default=None, help="the model's source language code (M2M100/NLLB: eng_Latn; T5: picks the task prefix)")
    evaluate.add_argument("--tgt-lang", default=None, help="the model's target language code (required by M2M100/NLLB: spa_Latn)")
    evaluate.add_argument("--source-prefix", default=None, help='text put before every source (T5: "translate English to German: ")')
    evaluate.add_argument("-o", "--output", default=None, help="hypotheses file, one a line; - prints them to stdout and the scores to stderr (default: beside --output-json, else not written)")
    evaluate.add_argument("--output-json", default=None, help="write every score, signature and setting as JSON (atomically)")


# ---- the test file ------------------------------------------------------------------------------------


def read_test_file(
    path: str, source_lang: str, target_lang: str, on_error: str = "fail", source_column=None, target_column=None
) -> tuple[list[str], list[str]]:
    """Sources and references of a test file, in any format `westron data prepare` reads.

    source_column / target_column: TSV/CSV columns by header name or 0-based index (a file without a header).
    """
    from westron.data.readers import ReadStats, read_pairs

    columns = {"source_column": source_column, "target_column": target_column}
    columns = {name: value for name, value in columns.items() if value is not None}  # other formats refuse them
    stats = ReadStats()
    pairs = list(read_pairs(path, source_lang, target_lang, on_error=on_error, stats=stats, **columns))
    if not pairs:
        raise WestronError(f"{path} holds no sentence pairs")
    if not any(pair.target.strip() for pair in pairs):  # BLEU, chrF and TER against nothing mean nothing
        raise WestronError(f"{path}: every {target_lang} reference is empty: nothing to score against")
    if stats.num_skipped:  # --on-error skip: the scores cover fewer sentences than the file holds; say so
        warnings.warn(f"skipped {stats.skipped_summary()} of the test file, e.g. {stats.examples[0]}", stacklevel=2)
    return [pair.source for pair in pairs], [pair.target for pair in pairs]


def refuse_clashing_outputs(test_file: str, source_lang: str, target_lang: str, hypotheses_path, output_json) -> None:
    """Outputs that would overwrite the test file (or one file of a Moses pair), or each other."""
    from westron.cli import refuse_output_over_input
    from westron.data.readers import moses_files

    inputs = [test_file, *(moses_files(test_file, source_lang, target_lang) or ())]
    for flag, path in (("-o", hypotheses_path), ("--output-json", output_json)):
        for input_path in inputs:
            refuse_output_over_input(input_path, path, flag)
    if hypotheses_path is not None and output_json is not None and os.path.realpath(hypotheses_path) == os.path.realpath(output_json):
        raise WestronError(f"-o and --output-json both name {output_json}: the scores would replace the hypotheses")


def language_codes(tokenizer, args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--src-lang / --tgt-lang, defaulted for a multilingual (M2M100/NLLB) model to the test file's
    --source-lang / --target-lang where those are codes the model knows, as westron compare and
    westron train do ("es" is an M2M100 code; NLLB's are spa_Latn), else to the languages its
    tokenizer was saved with (a model westron train fine-tuned)."""
    if not hasattr(tokenizer, "get_lang_id"):
        return args.src_lang, args.tgt_lang  # Marian or T5: refuse_ignored_languages says so if given

    def known(code: str) -> bool:
        try:
            tokenizer.get_lang_id(code)
        except WestronError:
            return False
        return True

    src_lang = args.src_lang or (args.source_lang if known(args.source_lang) else None)
    tgt_lang = args.tgt_lang or (args.target_lang if known(args.target_lang) else tokenizer.tgt_lang)
    if tgt_lang is None:
        raise WestronError(
            f"this model translates into many languages and {args.target_lang!r} is not one of its codes: "
            "give the target language with --tgt-lang"
        )
    return src_lang, tgt_lang


# ---- the command ---------------------------------------------------------------------------------------


def run_evaluate(args: argparse.Namespace) -> None:
    from westron.cli import (
        as_one_line, import_tensorflow_quietly, open_output, progress_bar, quantization_kwargs, refuse_ignored_languages,
    )
    from westron.evaluation import bleu_metric, bleu_tokenizer_for, score_translations, translate_sources
    from westron.file_utils import atomic_write
    from westron.pipelines import TranslationPipeline, default_framework

    model_kwargs = quantization_kwargs(args.quantize)
    sources, references = read_test_file(
        args.test_file, args.source_lang, args.target_lang, args.on_error, args.source_column, args.target_column
    )
    if args.output_json == "-":
        raise WestronError("--output-json -: give a file name (the scores are printed already; -o - prints the hypotheses)")
    hypotheses_path = args.output
    if hypotheses_path is None and args.output_json is not None:
        hypotheses_path = os.path.splitext(args.output_json)[0] + ".hyp.txt"
    # Fail before translating, not after: the BLEU tokenizer must start and the output folders must exist.
    bleu_metric(args.bleu_tokenize or bleu_tokenizer_for(args.target_lang))
    refuse_clashing_outputs(args.test_file, args.source_lang, args.target_lang, hypotheses_path, args.output_json)
    for path in (hypotheses_path, args.output_json):
        if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise WestronError(f"cannot write {path}: folder {os.path.dirname(os.path.abspath(path))} does not exist")
        if path is not None and os.path.isdir(path):
            raise WestronError(f"cannot write {path}: it is a folder")

    framework = args.framework or default_framework()
    if framework == "tf":
        import_tensorflow_quietly()
    from westron.configuration_utils import peek_hub_kwargs
    from westron.models.auto import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model, **peek_hub_kwargs(dict(model_kwargs)))
    src_lang, tgt_lang = language_codes(tokenizer, args)
    translator = TranslationPipeline(
        args.model,
        tokenizer=tokenizer,
        framework=framework,
        device=args.device,
        src_lang=src_lang,
        tgt_lang=tgt_lang,
        source_prefix=args.source_prefix,
        model_kwargs=model_kwargs,
    )
    refuse_ignored_languages(translator, args.src_lang, args.tgt_lang)
    generate_kwargs = {}
    if args.num_beams is not None:
        generate_kwargs["num_beams"] = args.num_beams
    if args.max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = args.max_new_tokens
    with progress_bar() as bar:
        hypotheses = translate_sources(translator, sources, args.batch_size, progress=bar, **generate_kwargs)
    result = score_translations(hypotheses, references, target_lang=args.target_lang, bleu_tokenize=args.bleu_tokenize)

    if hypotheses_path is not None:
        with open_output(hypotheses_path) as out:
            out.writelines(as_one_line(text) + "\n" for text in hypotheses)
    if args.output_json is not None:
        report = result.to_dict()
        report["settings"] = {
            "model": args.model,
            "test_file": args.test_file,
            "source_lang": args.source_lang,
            "target_lang": args.target_lang,
            "framework": framework,
            "num_beams": args.num_beams or translator.generate_kwargs.get("num_beams") or translator.model.generation_config.num_beams,
            "batch_size": args.batch_size,
            "max_new_tokens": args.max_new_tokens,
            "quantization": args.quantize,
            "src_lang": args.src_lang,
            "tgt_lang": args.tgt_lang,
            "source_prefix": args.source_prefix,
            "hypotheses_file": hypotheses_path,
        }
        with atomic_write(args.output_json) as handle:
            json.dump(report, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
    scores_to = sys.stderr if hypotheses_path == "-" else sys.stdout  # -o -: stdout holds the hypotheses alone
    print(f"{args.model} on {args.test_file} ({args.source_lang}->{args.target_lang}, {framework}):", file=scores_to)
    print(result.format(), file=scores_to)
    if hypotheses_path not in (None, "-"):
        print(f"hypotheses: {hypotheses_path}")
    sys.stdout.flush()
