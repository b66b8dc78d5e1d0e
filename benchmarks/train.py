#!/usr/bin/env python
"""Training speed: one optimizer step (forward, backward, clipping, AdamW) of Westron's trainers
against Hugging Face transformers, in target tokens per second.

Every system loads the same random-weight, opus-mt-en-de-shaped Marian checkpoint (74 M parameters,
tied embeddings, dropout 0.1 as in the opus-mt configs) and trains on the same batch (32 sentences
of 24 source and 24 target tokens; 768 target tokens per step):

- westron-pt: Westron's own `Trainer.train_step` (eager PyTorch); westron-pt-compile: the same with
  `TrainingArguments(compile=True)` (torch.compile of the forward pass, as `westron train --compile`);
  westron-pt-unfused: the same trainer with torch's default (unfused, per-parameter) AdamW, as it was
  before the trainer used the fused kernel: the before/after of that change in one run.
- westron-tf-function / westron-tf-xla: Westron's `TFTrainer.train_step` (tf.function; XLA with
  `TrainingArguments(xla=True)`), under Keras' mixed_bfloat16 policy for bf16.
- hf-pt: transformers 5 `MarianMTModel`, the loop Seq2SeqTrainer runs (model(**batch, labels).loss,
  backward, clip_grad_norm_ 1.0, torch's fused AdamW: "adamw_torch_fused", its default optim with
  torch >= 2.8, zero_grad), under torch.autocast for bf16.
- hf4-tf-function / hf4-tf-xla: transformers 4.57 `TFMarianMTModel` (the last release with TF models)
  with a GradientTape step in tf.function (XLA: jit_compile=True) and tf-keras AdamW (global clipnorm
  1.0), from its own virtual environment .venv-hf4 (`make benchmark-env`). Its bf16 (Keras'
  mixed_bfloat16 policy) fails inside transformers' TF Marian, so it has fp32 rows only.

Westron's trainers use label_smoothing 0 here, so each system's first loss is the same quantity (the
mean cross-entropy, near ln(58101) = 10.97 for random weights; dropout makes them differ slightly).
Each system runs in its own process; the first --warmup steps (compilation, allocator warm-up) are
excluded and the median of --steps timed steps is reported, with the ratio to hf-pt of the same
precision. The machine's fp32 GEMM speed (torch's MKL path, torch's oneDNN path, TensorFlow) is
measured first, for context.

    .venv/bin/python benchmarks/train.py                   # the default run (a few minutes)
    .venv/bin/python benchmarks/train.py --quick           # smoke check: tiny model, 1 + 2 steps
    .venv/bin/python benchmarks/train.py --systems westron-pt,hf-pt --precisions fp32 --steps 5

Copy the table, with the command and the machine, into docs/benchmarks.md ("Training step").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate  # noqa: E402  (the shared checkpoint maker and the HF 4.57 TF loading wrapper)

ROOT = generate.ROOT
HF4_PYTHON = generate.HF4_PYTHON

SYSTEMS = [
    "westron-pt-unfused",
    "westron-pt",
    "westron-pt-compile",
    "westron-tf-function",
    "westron-tf-xla",
    "hf-pt",
    "hf4-tf-function",
    "hf4-tf-xla",
]
PRECISIONS = ["fp32", "bf16"]
# Systems without a bf16 mode: transformers 4.57's TFMarianMTModel fails under mixed_bfloat16 (it
# multiplies bf16 embeddings by a float32 scale). The default run also leaves out the slow combinations (below).
NO_BF16 = {"hf4-tf-function", "hf4-tf-xla"}
# bf16 rows of the default run (the others take minutes to compile; ask for them with --precisions bf16)
DEFAULT_BF16 = ["westron-pt", "westron-tf-function", "hf-pt"]
# A tiny Marian for --quick: the machinery, not the speed.
TINY = dict(
    generate.MODELS["marian"], vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2,
    encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
    pad_token_id=999, decoder_start_token_id=999, max_position_embeddings=64,
)  # fmt: skip


def make_batch(batch: int, source_length: int, target_length: int, config: dict) -> dict:
    """One training batch as Westron's trainers take it: int32 numpy arrays; every target token counts."""
    import numpy as np

    rng = np.random.default_rng(1234)
    high = min(config["vocab_size"], 32000) - 10
    input_ids = rng.integers(10, high, size=(batch, source_length)).astype(np.int32)
    labels = rng.integers(10, high, size=(batch, target_length)).astype(np.int32)
    input_ids[:, -1] = labels[:, -1] = config["eos_token_id"]
    decoder_input_ids = np.concatenate(
        [np.full((batch, 1), config["decoder_start_token_id"], np.int32), labels[:, :-1]], axis=1
    )  # labels shifted right, as DataCollatorForSeq2Seq / the models do
    return dict(
        input_ids=input_ids, attention_mask=np.ones_like(input_ids), decoder_input_ids=decoder_input_ids, labels=labels
    )


def westron_arguments(output_dir: str, precision: str, compile: bool = False, xla: bool = False):
    from westron.training.arguments import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        max_steps=10**6,
        learning_rate=1e-4,
        warmup_steps=0,
        scheduler="constant",
        label_smoothing=0.0,  # the plain mean cross-entropy HF's models return
        mixed_precision="bf16" if precision == "bf16" else None,
        compile=compile,
        xla=xla,
        save_steps=None,
        progress_bar=False,
    )


# ---- one system, in its own process: returns step() -> loss ------------------------------------------


def load_system(system: str, folder: str, precision: str, batch: dict, output_dir: str):
    if system.startswith("westron-pt"):
        import torch

        import westron
        from westron.training.torch_trainer import Trainer

        torch.set_num_threads(os.cpu_count() or 1)
        model = westron.AutoModelForSeq2SeqLM.from_pretrained(folder)
        trainer = Trainer(
            model, westron_arguments(output_dir, precision, compile=system == "westron-pt-compile"), [batch]
        )
        if system == "westron-pt-unfused":  # the trainer before fused AdamW: torch's default per-parameter update
            groups = [
                {"params": group["params"], "weight_decay": group["weight_decay"]}
                for group in trainer.optimizer.param_groups
            ]
            trainer.optimizer = torch.optim.AdamW(
                groups, **{k: trainer.optimizer.defaults[k] for k in ("lr", "betas", "eps")}
            )
        return lambda: trainer.train_step(batch).loss
    if system.startswith("westron-tf"):
        import westron
        from westron.training.tf_trainer import TFTrainer

        model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(folder)
        trainer = TFTrainer(model, westron_arguments(output_dir, precision, xla=system == "westron-tf-xla"), [batch])
        return lambda: trainer.train_step(batch).loss
    if system == "hf-pt":
        return hf_pt_step(folder, precision, batch)
    if system.startswith("hf4-tf"):
        return hf4_tf_step(folder, precision, batch, jit_compile=system == "hf4-tf-xla")
    raise SystemExit(f"unknown system {system}")


def hf_pt_step(folder: str, precision: str, batch: dict):
    """Seq2SeqTrainer's step, written out: decay/no-decay AdamW groups, autocast for bf16, clip 1.0."""
    import contextlib

    import torch
    from transformers import AutoModelForSeq2SeqLM

    torch.set_num_threads(os.cpu_count() or 1)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "bias" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "bias" not in n)]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=1e-4, fused=True)  # TrainingArguments' default optim with torch >= 2.8
    tensors = {name: torch.as_tensor(array, dtype=torch.long) for name, array in batch.items()}
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def step() -> float:
        with autocast:
            loss = model(**tensors).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    return step


def hf4_tf_step(folder: str, precision: str, batch: dict, jit_compile: bool):
    """transformers 4.57 TFMarianMTModel: a GradientTape step in tf.function, tf-keras AdamW."""
    import tensorflow as tf
    import tf_keras
    from transformers import AutoConfig, TFAutoModelForSeq2SeqLM

    model = TFAutoModelForSeq2SeqLM.from_config(AutoConfig.from_pretrained(folder))
    model(model.dummy_inputs)  # build
    generate._load_pt_safetensors_into_hf4_tf(model, os.path.join(folder, "model.safetensors"))
    optimizer = tf_keras.optimizers.AdamW(learning_rate=1e-4, weight_decay=0.01, global_clipnorm=1.0)
    variables = model.trainable_variables
    tensors = {name: tf.constant(array, dtype=tf.int32) for name, array in batch.items()}

    @tf.function(jit_compile=jit_compile)
    def train_step(input_ids, attention_mask, decoder_input_ids, labels):
        with tf.GradientTape() as tape:
            outputs = model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                decoder_input_ids=decoder_input_ids,
                labels=labels,
                training=True,
            )
            loss = tf.reduce_mean(outputs.loss)
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
        return loss

    return lambda: float(train_step(**tensors))


def gemm_speeds(size: int = 2048, repeats: int = 5) -> dict:
    """fp32 GFLOP/s of one size x size x size product: torch (MKL), torch's oneDNN linear, TensorFlow."""
    import numpy as np
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    a, b = torch.randn(size, size), torch.randn(size, size)
    flops = 2 * size**3
    speeds = {
        "torch matmul (MKL)": _best_rate(lambda: torch.matmul(a, b), flops, repeats),
        "torch oneDNN linear": _best_rate(
            lambda: torch.ops.mkldnn._linear_pointwise(a, b, None, "none", [], ""), flops, repeats
        ),
    }
    import tensorflow as tf

    x, y = tf.constant(np.asarray(a)), tf.constant(np.asarray(b))
    speeds["TensorFlow matmul (oneDNN/Eigen)"] = _best_rate(lambda: tf.matmul(x, y).numpy(), flops, repeats)
    return speeds


def _best_rate(function, flops: float, repeats: int) -> float:
    function()
    best = min(_seconds(function) for _ in range(repeats))
    return flops / best / 1e9


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run_worker(args) -> None:
    if args.worker == "gemm":
        print("RESULTS " + json.dumps(gemm_speeds()))
        return
    config = json.load(open(os.path.join(args.folder, "config.json")))
    batch = make_batch(args.batch_size, args.source_length, args.target_length, config)
    with tempfile.TemporaryDirectory() as output_dir:
        step = load_system(args.worker, args.folder, args.precision, batch, output_dir)
        start = time.perf_counter()
        first_loss = step()
        first = time.perf_counter() - start
        for _ in range(args.warmup - 1):
            step()
        times = []
        for _ in range(args.steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    tokens = int(batch["labels"].size)
    result = dict(
        system=args.worker, precision=args.precision, step_s=median, tokens_per_s=tokens / median,
        first_step_s=first, first_loss=first_loss, steps=args.steps,
    )  # fmt: skip
    print("RESULTS " + json.dumps(result))


# ---- the driver --------------------------------------------------------------------------------------


def run_process(python: str, worker_args: list[str], hf4: bool) -> tuple[dict | None, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    if hf4:
        env["TF_USE_LEGACY_KERAS"] = "1"
    done = subprocess.run([python, __file__, *worker_args], env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    if done.returncode != 0 or not lines:
        return None, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULTS ") :]), ""


def runs(args) -> list[tuple[str, str]]:
    """(system, precision) pairs in run order."""
    systems = (
        args.systems.split(",")
        if args.systems
        else [s for s in SYSTEMS if not (args.quick and s == "westron-pt-compile")]
    )
    precisions = args.precisions.split(",") if args.precisions else (["fp32"] if args.quick else PRECISIONS)
    pairs = []
    for precision in precisions:
        for system in systems:
            if system not in SYSTEMS:
                raise SystemExit(f"unknown system {system} (known: {', '.join(SYSTEMS)})")
            if precision == "bf16" and system in NO_BF16:
                if args.precisions:
                    print(f"skipping {system} bf16: not supported (see the docstring)", file=sys.stderr)
                continue
            if precision == "bf16" and not args.precisions and system not in DEFAULT_BF16:
                continue
            pairs.append((system, precision))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--systems",
        help=f"comma-separated, from {','.join(SYSTEMS)} (default: all; --quick: all but westron-pt-compile)",
    )
    parser.add_argument(
        "--precisions",
        help="comma-separated fp32,bf16 (default: fp32 for all, bf16 for westron-pt, westron-tf-function and hf-pt; --quick: fp32)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--source-length", type=int, default=24)
    parser.add_argument("--target-length", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (at least 1)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps; the median is reported")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke check: a tiny Marian, fp32, 1 warm-up + 2 steps, no GEMM, no torch.compile",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    if args.quick:
        args.warmup, args.steps = 1, 2
    args.warmup = max(1, args.warmup)
    started = time.perf_counter()
    folder = generate.checkpoint_folder("marian-tiny", TINY) if args.quick else generate.checkpoint_folder("marian")

    gemm = {}
    if not args.quick:
        print("measuring fp32 GEMM ...", file=sys.stderr, flush=True)
        gemm, error = run_process(sys.executable, ["--worker", "gemm"], hf4=False)
        if gemm is None:
            print(f"GEMM measurement failed:\n{error}", file=sys.stderr)
    results = []
    for system, precision in runs(args):
        python = HF4_PYTHON if system.startswith("hf4") else sys.executable
        if not os.path.exists(python):
            print(f"skipping {system}: {python} missing (make benchmark-env)", file=sys.stderr)
            continue
        worker_args = ["--worker", system, "--precision", precision, "--folder", folder]
        worker_args += ["--batch-size", str(args.batch_size), "--source-length", str(args.source_length)]
        worker_args += [
            "--target-length",
            str(args.target_length),
            "--warmup",
            str(args.warmup),
            "--steps",
            str(args.steps),
        ]
        print(f"running {system} {precision} ...", file=sys.stderr, flush=True)
        result, error = run_process(python, worker_args, hf4=system.startswith("hf4"))
        if result is None:
            print(f"{system} {precision} failed:\n{error}", file=sys.stderr)
            continue
        results.append(result)
        print(
            f"  {result['tokens_per_s']:.0f} target tokens/s, first step {result['first_step_s']:.1f} s",
            file=sys.stderr,
            flush=True,
        )
    print_table(args, folder, gemm, results, time.perf_counter() - started)


def print_table(args, folder: str, gemm: dict, results: list[dict], seconds: float) -> None:
    config = json.load(open(os.path.join(folder, "config.json")))
    print(
        f"\nmodel: random Marian (d_model {config['d_model']}, {config['encoder_layers']}+{config['decoder_layers']} layers, "
        f"vocab {config['vocab_size']}); batch {args.batch_size} x {args.source_length} source x {args.target_length} target tokens; "
        f"median of {args.steps} steps after {args.warmup} warm-up"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; run took {seconds:.0f} s\n"
    )
    if gemm:
        print("fp32 GEMM 2048^3: " + ", ".join(f"{name} {rate:.0f} GFLOP/s" for name, rate in gemm.items()) + "\n")
    print("| system | precision | target tokens/s | vs hf-pt | median step s | first step s | first loss |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for result in results:
        reference = [r for r in results if r["system"] == "hf-pt" and r["precision"] == result["precision"]]
        ratio = f"{result['tokens_per_s'] / reference[0]['tokens_per_s']:.2f}" if reference else "-"
        print(
            f"| {result['system']} | {result['precision']} | {result['tokens_per_s']:.0f} | {ratio} "
            f"| {result['step_s']:.2f} | {result['first_step_s']:.1f} | {result['first_loss']:.4f} |"
        )


if __name__ == "__main__":
    main()
