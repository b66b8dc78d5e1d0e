#!/usr/bin/env python
"""Quality per minute of training: the quickstart recipe against plain Hugging Face transformers.

Every system starts from the same random initial weights (the quickstart's model shape), trains on
the same corpus (this machine's gettext catalogs, en-es, whole catalogs held out) with the same
vocabulary and the same length-bucketed batches for a fixed wall-clock budget, then translates the
held-out test catalogs (beam 4) and is scored with sacrebleu (13a). One process per run, so no run
inherits another's threads or memory.

    .venv/bin/python benchmarks/quality.py                               # 2, 5, 10, 15 min; every system
    .venv/bin/python benchmarks/quality.py --minutes 5 --systems westron-pt,hf-pt
    .venv/bin/python benchmarks/quality.py --minutes 5,10 --systems westron-pt,hf-pt --side-by-side

--side-by-side runs the systems of one budget at the same time, one thread each, as the quickstart
trains its two frameworks: every system gets the same share of the machine and the whole grid takes
the sum of the budgets once, not once per system.

Systems:
- westron-pt / westron-tf: `westron quickstart`'s recipe and trainers (quickstart.Recipe).
- hf-pt: transformers' MarianMTModel in a plain PyTorch loop with the recipe a tuned HF run used on
  this kind of machine (../shared/PERFORMANCE-NOTES.md): lr 1e-3, 150 warm-up steps, inverse-sqrt,
  4096-token batches, label smoothing 0.1, clipping 1.0, HF's dropout 0.1.

Results: a markdown table on stdout (and every number in --output-dir/results.jsonl). Copy it,
with the command and the machine, into docs/quickstart.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

SYSTEMS = ["westron-pt", "westron-tf", "hf-pt"]
# The anchor recipe of a tuned plain-HF run (PERFORMANCE-NOTES.md, "Training from scratch on 2 cores").
HF_RECIPE = dict(learning_rate=1e-3, warmup_steps=150, max_tokens=4096, label_smoothing=0.1, max_grad_norm=1.0,
                 weight_decay=0.01, betas=(0.9, 0.98), dropout=0.1)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="2,5,10,15", help="training budgets, comma-separated")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--pair", default="en-es")
    parser.add_argument("--output-dir", default=os.path.join(HERE, ".cache", "quality"))
    parser.add_argument(
        "--side-by-side", action="store_true", help="run the systems of a budget at once, one thread each"
    )
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", nargs=2, metavar=("SYSTEM", "MINUTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    source_lang, target_lang = args.pair.split("-")
    if args.worker:
        system, minutes = args.worker
        print(json.dumps(run_one(system, float(minutes), args.output_dir, source_lang, target_lang, args.threads)))
        return
    if args.side_by_side and len(args.systems.split(",")) > (os.cpu_count() or 1):
        raise SystemExit(f"--side-by-side runs one system per core: pick at most {os.cpu_count()} systems")
    prepare(args.output_dir, source_lang, target_lang)
    rows = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        systems = args.systems.split(",")
        groups = [systems] if args.side_by_side else [[system] for system in systems]
        for group in groups:
            workers = {}
            for system in group:
                command = [sys.executable, os.path.abspath(__file__), "--worker", system, f"{minutes:g}",
                           "--pair", args.pair, "--output-dir", args.output_dir]  # fmt: skip
                if args.side_by_side:
                    command += ["--threads", "1"]
                print(f"# {system}, {minutes:g} min ...", file=sys.stderr, flush=True)
                workers[system] = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            for system, worker in workers.items():
                output, _ = worker.communicate()
                if worker.returncode != 0:
                    print(f"# {system}, {minutes:g} min failed (exit {worker.returncode})", file=sys.stderr)
                    continue
                row = json.loads(output.strip().splitlines()[-1])
                row["side_by_side"] = args.side_by_side
                rows.append(row)
                with open(os.path.join(args.output_dir, "results.jsonl"), "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
    print_table(rows)


def prepare(output_dir: str, source_lang: str, target_lang: str) -> None:
    """Corpus, vocabulary and initial weights, exactly as the quickstart builds them (reused if there)."""
    from westron import quickstart

    recipe = quickstart.Recipe()
    corpus = quickstart.ensure_corpus(os.path.join(output_dir, "corpus"), source_lang, target_lang, False, [])
    tokenizer = quickstart.ensure_tokenizer(
        os.path.join(output_dir, "tokenizer"), corpus, source_lang, target_lang, recipe, False
    )
    if not os.path.isdir(os.path.join(output_dir, "initial")):
        quickstart.initial_weights(os.path.join(output_dir, "initial"), tokenizer, recipe, ["pt", "tf"])


def run_one(
    system: str, minutes: float, output_dir: str, source_lang: str, target_lang: str, threads: int | None
) -> dict:
    folder = os.path.join(output_dir, f"{system}-{minutes:g}min")
    corpus = os.path.join(output_dir, "corpus")
    initial = os.path.join(output_dir, "initial")
    if system.startswith("westron-"):
        from westron import quickstart

        framework = system.split("-")[1]
        result = quickstart.train_and_score(
            folder,
            framework,
            initial,
            corpus,
            source_lang,
            target_lang,
            minutes,
            quickstart.Recipe(),
            None,
            threads=threads,
        )
        steps, tokens_per_second, scores = result["steps"], result["target_tokens_per_second"], result["test"]
    elif system == "hf-pt":
        steps, tokens_per_second, scores = train_and_score_hf(
            folder, initial, corpus, source_lang, target_lang, minutes, threads
        )
    else:
        raise SystemExit(f"unknown system {system!r} (choose from {', '.join(SYSTEMS)})")
    return {
        "system": system, "minutes": minutes, "steps": steps, "target_tokens_per_second": round(tokens_per_second),
        "threads": threads or "default", "bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2), "test_sentences": scores["num_sentences"],
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
    }  # fmt: skip


def train_and_score_hf(folder, initial, corpus, source_lang, target_lang, minutes, threads) -> tuple[int, float, dict]:
    """transformers' MarianMTModel in a plain PyTorch loop (HF_RECIPE), on the quickstart's batches."""
    import numpy as np
    import torch

    if threads:
        torch.set_num_threads(threads)
    import torch.nn.functional as F
    import transformers

    from westron.data.batching import TokenBatcher, encode_pairs
    from westron.data.readers import read_pairs
    from westron.evaluation import score_translations
    from westron.quickstart import Recipe

    recipe = Recipe()
    torch.manual_seed(recipe.seed)
    tokenizer = transformers.MarianTokenizer.from_pretrained(initial)
    model = transformers.MarianMTModel.from_pretrained(initial, dropout=HF_RECIPE["dropout"])
    pairs = list(read_pairs(os.path.join(corpus, "train.jsonl"), source_lang, target_lang))
    from westron.models.auto import AutoTokenizer

    source_ids, target_ids = encode_pairs(
        AutoTokenizer.from_pretrained(initial), pairs, recipe.max_length, recipe.max_length
    )
    batcher = TokenBatcher(
        source_ids, target_ids, pad_token_id=model.config.pad_token_id,
        decoder_start_token_id=model.config.decoder_start_token_id, max_tokens=HF_RECIPE["max_tokens"], seed=recipe.seed,
    )  # fmt: skip
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": HF_RECIPE["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=HF_RECIPE["learning_rate"], betas=HF_RECIPE["betas"],
    )  # fmt: skip
    warmup = HF_RECIPE["warmup_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: (step + 1) / warmup if step + 1 <= warmup else math.sqrt(warmup / (step + 1))
    )
    model.train()
    started, steps, tokens = time.monotonic(), 0, 0
    for batch in batcher:
        tensors = {name: torch.as_tensor(np.asarray(array, dtype=np.int64)) for name, array in batch.items()}
        logits = model(
            input_ids=tensors["input_ids"],
            attention_mask=tensors["attention_mask"],
            decoder_input_ids=tensors["decoder_input_ids"],
        ).logits
        labels = tensors["labels"]
        num_tokens = int((labels != -100).sum())
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum",
            label_smoothing=HF_RECIPE["label_smoothing"],
        ) / num_tokens  # fmt: skip
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), HF_RECIPE["max_grad_norm"])
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        steps, tokens = steps + 1, tokens + num_tokens
        if time.monotonic() - started >= minutes * 60:
            break
    train_seconds = time.monotonic() - started
    model.eval()
    test = list(read_pairs(os.path.join(corpus, "test.jsonl"), source_lang, target_lang))
    hypotheses = []
    with torch.no_grad():
        order = sorted(range(len(test)), key=lambda i: len(test[i].source))
        translated = {}
        for start in range(0, len(order), 32):
            chunk = order[start : start + 32]
            inputs = tokenizer([test[i].source for i in chunk], return_tensors="pt", padding=True, truncation=True)
            outputs = model.generate(**inputs, num_beams=recipe.num_beams, max_new_tokens=recipe.max_length)
            for i, text in zip(chunk, tokenizer.batch_decode(outputs, skip_special_tokens=True)):
                translated[i] = text
        hypotheses = [translated[i] for i in range(len(test))]
    scores = score_translations(hypotheses, [p.target for p in test], target_lang=target_lang)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "test_hypotheses.txt"), "w", encoding="utf-8") as handle:
        handle.writelines(text + "\n" for text in hypotheses)
    return steps, tokens / train_seconds, scores.to_dict()


def print_table(rows: list[dict]) -> None:
    print("| minutes | system | threads | steps | target tokens/s | BLEU | chrF |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['minutes']:g} | {row['system']} | {row['threads']} | {row['steps']} | {row['target_tokens_per_second']} | "
            f"{row['bleu']:.1f} | {row['chrf']:.1f} |"
        )


if __name__ == "__main__":
    main()
