#!/usr/bin/env python
"""int8 (and bf16) inference against float32: BLEU on a test set and generation speed, per framework.

For each framework, the float32 model and its variants (`from_pretrained(..., quantization="int8")`,
`dtype=bfloat16`) are loaded in one process and measured in turn, repeat after repeat, so every
ratio compares runs made a few seconds apart (the machine's speed drifts; other jobs share it).

    .venv/bin/python benchmarks/quantization.py --model-pt /tmp/qs3/pt --model-tf /tmp/qs3/tf \
        --test-file /tmp/qs3/corpus/test.jsonl --source-lang en --target-lang es --limit 400

BLEU: greedy, batch 32, the first --limit sentences (westron.evaluation.score_translations).
Speed: generated tokens per second (tokens after the start token, eos included, padding not) over
the first --speed-sentences sentences in batches of 32, greedy and beam 4, the best of --repeats
runs after one warm-up run (TensorFlow compiles its XLA search per shape bucket in the warm-up).
Prints a markdown table; copy it with the command and the machine into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = {  # name -> from_pretrained keywords, per framework
    "fp32": {"pt": {}, "tf": {}},
    "int8": {"pt": {"quantization": "int8"}, "tf": {"quantization": "int8"}},
    "bf16": {"pt": {"dtype": "bfloat16"}, "tf": {"dtype": "bfloat16"}},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-pt", help="checkpoint folder for PyTorch")
    parser.add_argument("--model-tf", help="checkpoint folder for TensorFlow (may be the same)")
    parser.add_argument("--test-file", required=True)
    parser.add_argument("--source-lang", required=True)
    parser.add_argument("--target-lang", required=True)
    parser.add_argument("--limit", type=int, default=400, help="BLEU on the first N sentences (0: all)")
    parser.add_argument("--speed-sentences", type=int, default=128)
    parser.add_argument("--variants", default="fp32,int8", help="comma-separated: fp32, int8, bf16")
    parser.add_argument("--speed-variants", default=None, help="variants timed (default: --variants); BLEU is for --variants only")
    parser.add_argument("--beams", default="1,4")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (1: steadier ratios on a shared machine)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    return parser.parse_args(argv)


def set_threads(framework: str, threads: int) -> None:
    if framework == "pt":
        import torch

        torch.set_num_threads(threads)
    else:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")  # bucketed XLA search retraces by design
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def load(framework: str, folder: str, variant: str):
    from westron import AutoModelForSeq2SeqLM, TFAutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if framework == "pt" else TFAutoModelForSeq2SeqLM
    return auto.from_pretrained(folder, **VARIANTS[variant][framework])


def generated_tokens(ids, pad_token_id: int) -> int:
    import numpy as np

    ids = np.asarray(ids)[:, 1:]  # after the start token
    return int((ids != pad_token_id).sum())


def time_generation(model, tokenizer, framework, sources, beams, max_new_tokens, batch_size=32) -> tuple[int, float]:
    """(tokens generated, seconds) for the sources in batches, longest first."""
    import contextlib

    sources = sorted(sources, key=len, reverse=True)
    batches = [tokenizer(sources[i : i + batch_size], return_tensors=framework, padding=True) for i in range(0, len(sources), batch_size)]
    no_grad = contextlib.nullcontext()
    if framework == "pt":
        import torch

        no_grad = torch.no_grad()
    tokens, start = 0, time.perf_counter()
    with no_grad:
        for batch in batches:
            ids = model.generate(**batch, num_beams=beams, max_new_tokens=max_new_tokens)
            tokens += generated_tokens(ids, tokenizer.pad_token_id)
    return tokens, time.perf_counter() - start


def measure(framework: str, folder: str, args, sources, references) -> list[dict]:
    from westron import AutoTokenizer
    from westron.evaluation import score_translations, translate_sources
    from westron.pipelines import TranslationPipeline

    set_threads(framework, args.threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    variants = args.variants.split(",")
    speed_variants = (args.speed_variants or args.variants).split(",")
    models = {variant: load(framework, folder, variant) for variant in dict.fromkeys(variants + speed_variants)}
    rows = [{"framework": framework, "variant": variant} for variant in models]
    for row in rows:
        if row["variant"] not in variants:
            continue
        variant, model = row["variant"], models[row["variant"]]
        translator = TranslationPipeline(model, tokenizer=tokenizer, framework=framework)
        start = time.perf_counter()
        hypotheses = translate_sources(translator, sources, 32, max_new_tokens=args.max_new_tokens)
        seconds = time.perf_counter() - start
        result = score_translations(hypotheses, references, target_lang=args.target_lang)
        row.update(bleu=result.bleu, chrf=result.chrf, bleu_seconds=seconds)
        print(f"{framework} {variant}: BLEU {result.bleu:.2f} chrF {result.chrf:.2f} ({seconds:.0f} s)", file=sys.stderr, flush=True)
    speed_sources = [s for s in sources[: args.speed_sentences] if s.strip()]
    for beams in [int(b) for b in args.beams.split(",")]:
        best = {}
        for repeat in range(args.repeats + 1):  # the first run warms up (XLA compiles per shape bucket)
            for variant in speed_variants:
                tokens, seconds = time_generation(models[variant], tokenizer, framework, speed_sources, beams, args.max_new_tokens)
                print(f"{framework} {variant} beams={beams} run {repeat}: {tokens / seconds:.0f} tok/s", file=sys.stderr, flush=True)
                if repeat > 0:
                    best[variant] = max(best.get(variant, 0.0), tokens / seconds)
        for row in rows:
            if row["variant"] in best:
                row[f"tok/s beam{beams}"] = best[row["variant"]]
    return rows


def main(argv=None) -> None:
    args = parse_args(argv)
    from westron.data.readers import read_pairs

    pairs = list(read_pairs(args.test_file, args.source_lang, args.target_lang))
    if args.limit:
        pairs = pairs[: args.limit]
    sources, references = [p.source for p in pairs], [p.target for p in pairs]
    rows = []
    for framework, folder in (("pt", args.model_pt), ("tf", args.model_tf)):
        if folder:
            rows += measure(framework, folder, args, sources, references)
    print(f"\n{len(sources)} sentences of {args.test_file}; speed: first {args.speed_sentences}, batch 32, {args.threads} thread(s)")
    print_table(rows, [int(b) for b in args.beams.split(",")])


def print_table(rows: list[dict], beams: list[int]) -> None:
    header = ["framework", "variant", "BLEU", "chrF"] + [f"tok/s beam {b}" for b in beams] + ["x fp32 (beam " + ", ".join(map(str, beams)) + ")"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        base = next(r for r in rows if r["framework"] == row["framework"] and r["variant"] == "fp32")
        speeds = [row.get(f"tok/s beam{b}") for b in beams]
        ratios = [f"{s / base[f'tok/s beam{b}']:.2f}" if s and base.get(f"tok/s beam{b}") else "-" for s, b in zip(speeds, beams)]
        scores = [f"{row[key]:.2f}" if key in row else "-" for key in ("bleu", "chrf")]
        cells = [row["framework"], row["variant"]] + scores
        cells += [f"{s:.0f}" if s else "-" for s in speeds] + [" / ".join(ratios)]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
