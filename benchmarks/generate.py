#!/usr/bin/env python
"""Generation speed: Westron (PT, TF eager / tf.function / XLA) against Hugging Face transformers.

Every system loads the same random-weight checkpoint and generates exactly --new-tokens tokens
per sentence (min_new_tokens = max_new_tokens, so no system stops early), greedy and beam, at
batch 1 and batch 32. Each system runs in its own process; HF transformers 4.57 (the last release
with TensorFlow models, which needs tf-keras) runs from its own virtual environment, made by
`make benchmark-env` (.venv-hf4).

    .venv/bin/python benchmarks/generate.py                       # every system, every row
    .venv/bin/python benchmarks/generate.py --systems westron-pt,hf-pt --rows greedy-32
    .venv/bin/python benchmarks/generate.py --model t5        # t5-small shapes; --model nllb: NLLB-600M shapes

Results: a markdown table on stdout (sentences/s, generated tokens/s, median of --repeats runs
after --warmup runs; first-call compile time apart). Copy it, with the command and the machine,
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
HF4_PYTHON = os.path.join(ROOT, ".venv-hf4", "bin", "python")

SYSTEMS = ["westron-pt", "westron-tf-eager", "westron-tf-function", "westron-tf-xla", "hf-pt", "hf4-tf-xla"]
# row name -> (num_beams, batch size)
ROWS = {"greedy-1": (1, 1), "greedy-32": (1, 32), "beam4-1": (4, 1), "beam4-32": (4, 32)}
# Model shapes (random weights). opus-mt-en-de: d_model 512, 6+6 layers, 8 heads, FFN 2048, vocab 58101, swish.
MODELS = {
    "marian": dict(
        model_type="marian",
        vocab_size=58101,
        d_model=512,
        encoder_layers=6,
        decoder_layers=6,
        encoder_attention_heads=8,
        decoder_attention_heads=8,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
        activation_function="swish",
        scale_embedding=True,
        max_position_embeddings=512,
        pad_token_id=58100,
        eos_token_id=0,
        decoder_start_token_id=58100,
        forced_eos_token_id=None,
    ),
    # t5-small: d_model 512, 6+6 layers, 8 heads, FFN 2048 (relu), vocab 32128, tied head.
    "t5": dict(
        model_type="t5",
        vocab_size=32128,
        d_model=512,
        d_kv=64,
        d_ff=2048,
        num_layers=6,
        num_heads=8,
        feed_forward_proj="relu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    ),
    # nllb-200-distilled-600M: d_model 1024, 12+12 layers, 16 heads, FFN 4096, vocab 256206.
    "nllb": dict(
        model_type="m2m_100",
        vocab_size=256206,
        d_model=1024,
        encoder_layers=12,
        decoder_layers=12,
        encoder_attention_heads=16,
        decoder_attention_heads=16,
        encoder_ffn_dim=4096,
        decoder_ffn_dim=4096,
        activation_function="relu",
        scale_embedding=True,
        max_position_embeddings=1024,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        forced_eos_token_id=None,
    ),
}
# HF 4.57 has TensorFlow Marian and T5, but never had TensorFlow M2M100.
HF4_TF_MODELS = {"marian", "t5"}


def checkpoint_folder(model: str, settings: dict | None = None) -> str:
    """Creates (once) a random-weight checkpoint with HF transformers 5 and returns its folder
    (settings: a config of one's own instead of MODELS[model])."""
    folder = os.path.join(CACHE, f"{model}-random")
    if os.path.exists(os.path.join(folder, "model.safetensors")):
        return folder
    import torch
    from transformers import AutoConfig as HFAutoConfig
    from transformers import AutoModelForSeq2SeqLM as HFAutoModel

    settings = dict(settings if settings is not None else MODELS[model])
    config = HFAutoConfig.for_model(settings.pop("model_type"), **settings)
    torch.manual_seed(0)
    HFAutoModel.from_config(config).save_pretrained(folder)
    return folder


def source_ids(batch: int, length: int, vocab: int, eos: int):
    import numpy as np

    rng = np.random.default_rng(1234)
    ids = rng.integers(10, min(vocab, 32000) - 10, size=(batch, length))
    ids[:, -1] = eos
    return ids, np.ones_like(ids)


# ---- one system, in its own process ----------------------------------------------------------------


def load_system(system: str, folder: str):
    """Returns generate(ids, mask, num_beams, new_tokens) for a system."""
    settings = lambda beams, new: dict(  # noqa: E731
        num_beams=beams, max_new_tokens=new, min_new_tokens=new, forced_eos_token_id=None, num_return_sequences=1
    )
    if system in ("westron-pt", "hf-pt"):
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        if system == "westron-pt":
            import westron

            model = westron.AutoModelForSeq2SeqLM.from_pretrained(folder)
        else:
            from transformers import AutoModelForSeq2SeqLM

            model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()

        def generate(ids, mask, beams, new):
            with torch.inference_mode():
                out = model.generate(torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), **settings(beams, new))
            return tuple(out.shape)

        return generate
    if system.startswith("westron-tf"):
        import westron

        model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(folder)
        mode = system.removeprefix("westron-tf-")

        def generate(ids, mask, beams, new):
            kwargs = settings(beams, new)
            if mode == "eager":
                kwargs["eager"] = True
            elif mode == "function":
                kwargs["jit_compile"] = False
            out = model.generate(ids, attention_mask=mask, **kwargs)
            return tuple(out.shape)

        return generate
    if system == "hf4-tf-xla":
        import numpy as np
        import tensorflow as tf
        from transformers import AutoConfig, TFAutoModelForSeq2SeqLM

        config = AutoConfig.from_pretrained(folder)
        model = TFAutoModelForSeq2SeqLM.from_config(config)
        model(model.dummy_inputs)  # build
        _load_pt_safetensors_into_hf4_tf(model, os.path.join(folder, "model.safetensors"))
        compiled = {}

        def generate(ids, mask, beams, new):
            key = (ids.shape, beams, new)
            if key not in compiled:
                compiled[key] = tf.function(model.generate, jit_compile=True)
            out = compiled[key](
                tf.constant(ids, dtype=tf.int32), attention_mask=tf.constant(mask, dtype=tf.int32), **settings(beams, new)
            )
            return tuple(out.shape)

        return generate
    raise SystemExit(f"unknown system {system}")


def _load_pt_safetensors_into_hf4_tf(model, path):
    """transformers 4.57 cannot read a PyTorch model.safetensors into a TF model (issue 40028).

    The small wrapper: read the file with safetensors.numpy, restore the tied copies HF 5 no longer
    saves, and hand the dict to HF 4's own PT->TF loader.
    """
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    state = load_file(path)
    shared = "model.shared.weight" if "model.shared.weight" in state else "shared.weight"
    prefix = "model." if shared.startswith("model.") else ""
    for tied in (f"{prefix}encoder.embed_tokens.weight", f"{prefix}decoder.embed_tokens.weight", "lm_head.weight"):
        state.setdefault(tied, state[shared])
    # HF 4's TF Marian keeps its sinusoidal tables as variables, already filled when built.
    model._keys_to_ignore_on_load_missing = [*(model._keys_to_ignore_on_load_missing or []), r"embed_positions"]
    load_pytorch_state_dict_in_tf2_model(
        model, state, tf_to_pt_weight_rename=getattr(model, "tf_to_pt_weight_rename", None), skip_logger_warnings=True
    )


def run_worker(args) -> None:
    folder = args.folder
    config = json.load(open(os.path.join(folder, "config.json")))
    generate = load_system(args.worker, folder)
    results = []
    for row in args.rows.split(","):
        beams, batch = ROWS[row]
        ids, mask = source_ids(batch, args.source_length, config["vocab_size"], config["eos_token_id"])
        start = time.perf_counter()
        shape = generate(ids, mask, beams, args.new_tokens)
        first = time.perf_counter() - start
        for _ in range(args.warmup - 1):
            generate(ids, mask, beams, args.new_tokens)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            shape = generate(ids, mask, beams, args.new_tokens)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        new_tokens = shape[1] - 1  # minus the decoder start token
        results.append(
            dict(
                system=args.worker,
                row=row,
                seconds=median,
                sentences_per_s=batch / median,
                tokens_per_s=batch * new_tokens / median,
                new_tokens=new_tokens,
                first_call_s=first,
                compile_s=max(0.0, first - median),
            )
        )
    print("RESULTS " + json.dumps(results))


# ---- the driver --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="marian")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--rows", default=",".join(ROWS))
    parser.add_argument("--source-length", type=int, default=24)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return

    folder = checkpoint_folder(args.model)
    rows = []
    for system in args.systems.split(","):
        if system.startswith("hf4") and args.model not in HF4_TF_MODELS:
            continue
        python = HF4_PYTHON if system.startswith("hf4") else sys.executable
        if not os.path.exists(python):
            print(f"skipping {system}: {python} missing (make benchmark-env)", file=sys.stderr)
            continue
        command = [python, __file__, "--worker", system, "--folder", folder, "--rows", args.rows]
        command += ["--source-length", str(args.source_length), "--new-tokens", str(args.new_tokens)]
        command += ["--warmup", str(args.warmup), "--repeats", str(args.repeats)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
        if system.startswith("hf4"):
            env["TF_USE_LEGACY_KERAS"] = "1"
        print(f"running {system} ...", file=sys.stderr, flush=True)
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
        if done.returncode != 0 or not lines:
            print(f"{system} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            continue
        rows.extend(json.loads(lines[-1][len("RESULTS ") :]))

    print(f"\nmodel: {args.model} (random weights), source {args.source_length} tokens, exactly {args.new_tokens} new tokens")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}\n")
    print("| row | system | sentences/s | tokens/s | median s | first call s |")
    print("|---|---|---:|---:|---:|---:|")
    for row in args.rows.split(","):
        for result in rows:
            if result["row"] == row:
                print(
                    f"| {row} | {result['system']} | {result['sentences_per_s']:.2f} | {result['tokens_per_s']:.0f} "
                    f"| {result['seconds']:.3f} | {result['first_call_s']:.2f} |"
                )


if __name__ == "__main__":
    main()
