#!/usr/bin/env python
"""Generation speed: Westron (PT, TF eager / tf.function / XLA) against Hugging Face transformers
and CTranslate2.

Every system loads the same random-weight checkpoint and generates exactly --new-tokens tokens
per sentence (min_new_tokens = max_new_tokens, so no system stops early), greedy and beam, at
batch 1 and batch 32. Each system runs in its own process (an OpenMP library sharing a process
with torch loses up to a third of its speed to torch's idle threads); HF transformers 4.57 (the
last release with TensorFlow models, which needs tf-keras) runs from its own virtual environment,
made by `make benchmark-env` (.venv-hf4). CTranslate2 (`pip install -e ".[bench]"`) runs the same
checkpoint converted once by its TransformersConverter, in float32 (ct2-fp32) and with int8
weights (ct2-int8); without ctranslate2 installed those rows are skipped with a message.
westron-pt-int8 and westron-tf-xla-int8 load the checkpoint with `quantization="int8"`.

    .venv/bin/python benchmarks/generate.py                       # every system, every row
    .venv/bin/python benchmarks/generate.py --systems westron-pt,hf-pt,ct2-fp32 --rows greedy-32
    .venv/bin/python benchmarks/generate.py --model t5        # t5-small shapes; --model nllb: NLLB-600M shapes
    .venv/bin/python benchmarks/generate.py --quick           # a tiny model, a few systems: a minute

Results: a markdown table on stdout (sentences/s, generated tokens/s, GFLOP/s and MFU, median of
--repeats runs after --warmup runs; first-call compile time apart). Copy it, with the command and
the machine, into docs/benchmarks.md.

MFU (model FLOPs utilisation) is the model's own arithmetic per second over the machine's fp32
matrix-product peak, measured in the same run (best of --repeats square n x n products, n =
--peak-size, with torch.matmul and with tf.matmul, each in its own process, before and after the
systems; the highest is the peak). The model's arithmetic counts the matrix products only, as
2 FLOPs per multiply-add, from config.json's shapes (d = d_model, i = heads x head size, f = FFN
width, m = 2 FFN matrices, 3 when gated, V = vocabulary, B sentences, K beams, S source tokens,
T new tokens, L_e / L_d layers):

    encoder  2 B S L_e (4 d i + 2 S i + m d f)                  q,k,v,o; scores and mix; FFN
    cross    2 B L_d S (2 d i)                                  cross-attention keys and values, once
    decoder  2 B K sum_{t=1..T} [L_d (6 d i + 2 t i + 2 S i + m d f) + d V]
                          self q,k,v,o and cross q,o; self attention over t keys; cross over S; FFN; LM head

Embedding look-ups, layer norms, softmax, beam bookkeeping and padding are left out, so MFU is a
lower bound on the arithmetic a system does. The int8 rows are measured against the fp32 peak too.
"""

from __future__ import annotations

import argparse
import importlib.util
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

SYSTEMS = [
    "westron-pt", "westron-tf-eager", "westron-tf-function", "westron-tf-xla", "hf-pt", "hf4-tf-xla", "ct2-fp32", "ct2-int8",
    "westron-pt-int8", "westron-tf-xla-int8",
]
# CTranslate2 system -> compute_type: the float32 conversion loaded as is, or with int8 weights.
CT2_COMPUTE_TYPES = {"ct2-fp32": "float32", "ct2-int8": "int8"}
# Systems of --quick: the ones that start in seconds (no TensorFlow import, no XLA compiles).
QUICK_SYSTEMS = ["westron-pt", "hf-pt", "ct2-fp32", "ct2-int8"]
# The fp32 matrix-product peak, each measured in its own process.
PEAK_SYSTEMS = ["gemm-torch", "gemm-tf"]
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
# A Marian small enough for --quick: the machinery in a minute, not a speed figure.
MODELS["tiny"] = {**MODELS["marian"], **dict(vocab_size=1000, d_model=64, encoder_layers=2, decoder_layers=2,
                                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                                           decoder_ffn_dim=128, pad_token_id=999, decoder_start_token_id=999)}
# HF 4.57 has TensorFlow Marian and T5, but never had TensorFlow M2M100.
HF4_TF_MODELS = {"marian", "t5", "tiny"}
# The unknown-token id of each family's real vocabularies (opus-mt, t5, NLLB): config.json lacks it.
UNK_TOKEN_IDS = {"marian": 1, "t5": 2, "m2m_100": 3}


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


# ---- CTranslate2: the same checkpoint, converted --------------------------------------------------------


def ct2_folder(folder: str) -> str:
    return folder + "-ct2"


class IdVocabulary:
    """What CTranslate2's TransformersConverter asks of a tokenizer, for a checkpoint that has none.

    The converter reads the vocabulary (token strings in id order) and the special tokens from a
    Hugging Face tokenizer; a random-weight checkpoint has no tokenizer files. Token i is named
    "t{i}", the special ids get their usual names, so ids map to the same rows on both sides.
    """

    def __init__(self, config: dict):
        self.unk_token_id = UNK_TOKEN_IDS[config["model_type"]]
        names = {}
        for key, token in (("pad_token_id", "<pad>"), ("eos_token_id", "</s>"), ("bos_token_id", "<s>")):
            if config.get(key) is not None:
                names.setdefault(config[key], token)
        names.setdefault(self.unk_token_id, "<unk>")
        self.tokens = [names.get(i, f"t{i}") for i in range(config["vocab_size"])]
        self.pad_token = self.tokens[config["pad_token_id"]]
        self.eos_token = self.tokens[config["eos_token_id"]]
        self.unk_token = self.tokens[self.unk_token_id]
        self.bos_token = self.tokens[config["bos_token_id"]] if config.get("bos_token_id") is not None else None
        self.special_tokens_map: dict = {}

    def get_vocab(self) -> dict:
        return {token: i for i, token in enumerate(self.tokens)}

    def convert_ids_to_tokens(self, ids):
        return self.tokens[ids] if isinstance(ids, int) else [self.tokens[i] for i in ids]


def convert_for_ct2(folder: str) -> None:
    """Converts the HF-format checkpoint (float32) with CTranslate2's own converter, once.

    int8 is chosen when the model is loaded (compute_type), from this same float32 conversion.
    """
    from ctranslate2.converters import TransformersConverter

    config = json.load(open(os.path.join(folder, "config.json")))

    class Converter(TransformersConverter):
        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return IdVocabulary(config)

    Converter(folder).convert(ct2_folder(folder), quantization=None, force=True)


def ct2_vocabulary(folder: str) -> list[str]:
    for name in ("shared_vocabulary.json", "target_vocabulary.json"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return json.load(open(path, encoding="utf-8"))
    raise SystemExit(f"no vocabulary in {folder}")


# ---- one system, in its own process ----------------------------------------------------------------


def load_system(system: str, folder: str):
    """Returns generate(ids, mask, num_beams, new_tokens) for a system."""
    settings = lambda beams, new: dict(  # noqa: E731
        num_beams=beams, max_new_tokens=new, min_new_tokens=new, forced_eos_token_id=None, num_return_sequences=1
    )
    if system in ("westron-pt", "westron-pt-int8", "hf-pt"):
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        if system.startswith("westron-pt"):
            import westron

            quantization = {"quantization": "int8"} if system.endswith("-int8") else {}
            model = westron.AutoModelForSeq2SeqLM.from_pretrained(folder, **quantization)
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

        quantization = {"quantization": "int8"} if system.endswith("-int8") else {}
        model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(folder, **quantization)
        mode = system.removeprefix("westron-tf-").removesuffix("-int8")

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
    if system in CT2_COMPUTE_TYPES:
        import ctranslate2

        converted = ct2_folder(folder)
        translator = ctranslate2.Translator(
            converted, device="cpu", compute_type=CT2_COMPUTE_TYPES[system], inter_threads=1, intra_threads=os.cpu_count() or 1
        )
        vocabulary = ct2_vocabulary(converted)

        def generate(ids, mask, beams, new):
            # CTranslate2 takes token strings; the source keeps its eos, as a tokenizer would give it.
            tokens = [[vocabulary[i] for i in row[row_mask.astype(bool)]] for row, row_mask in zip(ids, mask)]
            results = translator.translate_batch(
                tokens, beam_size=beams, min_decoding_length=new, max_decoding_length=new, max_batch_size=0
            )
            return (len(results), 1 + max(len(result.hypotheses[0]) for result in results))

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


def gemm_peak(system: str, size: int, repeats: int) -> float:
    """The best fp32 GFLOP/s of an n x n by n x n product (2 n^3 FLOPs) over `repeats` timed runs."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    if system == "gemm-torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        a, b = torch.from_numpy(a), torch.from_numpy(b)
        product = lambda: torch.matmul(a, b)  # noqa: E731
    else:
        import tensorflow as tf

        a, b = tf.constant(a), tf.constant(b)
        product = lambda: tf.matmul(a, b).numpy()  # noqa: E731  (.numpy(): wait for the result)
    for _ in range(2):
        product()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def run_worker(args) -> None:
    if args.worker in PEAK_SYSTEMS:
        print("RESULTS " + json.dumps([dict(system=args.worker, gflops=gemm_peak(args.worker, args.peak_size, max(3, args.repeats)))]))
        return
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


# ---- model FLOPs (the formula is in the module docstring) ---------------------------------------------


def model_shape(config: dict) -> dict:
    """The shapes the FLOP count needs, from a Marian, M2M100 or T5 config.json."""
    if config["model_type"] in ("t5", "mt5"):
        layers = config["num_layers"]
        return dict(
            d=config["d_model"],
            inner=config["num_heads"] * config["d_kv"],
            ffn=config["d_ff"],
            ffn_matrices=3 if config.get("feed_forward_proj", "relu").startswith("gated") else 2,
            encoder_layers=layers,
            decoder_layers=config.get("num_decoder_layers") or layers,
            vocab=config["vocab_size"],
        )
    return dict(
        d=config["d_model"],
        inner=config["d_model"],
        ffn=config["decoder_ffn_dim"],  # the encoder's is the same in every shape here
        ffn_matrices=2,
        encoder_layers=config["encoder_layers"],
        decoder_layers=config["decoder_layers"],
        vocab=config.get("decoder_vocab_size") or config["vocab_size"],
    )


def generation_flops(config: dict, batch: int, source_length: int, new_tokens: int, beams: int) -> float:
    """Matrix-product FLOPs of encoding `batch` sources and generating `new_tokens` per beam."""
    shape = model_shape(config)
    d, i, f, m, vocab = shape["d"], shape["inner"], shape["ffn"], shape["ffn_matrices"], shape["vocab"]
    S, T = source_length, new_tokens
    encoder = batch * S * shape["encoder_layers"] * (4 * d * i + 2 * S * i + m * d * f)
    cross_keys_values = batch * shape["decoder_layers"] * S * 2 * d * i
    key_positions = T * (T + 1) // 2  # step t attends to t self keys
    decoder_layer = shape["decoder_layers"] * (T * (6 * d * i + 2 * S * i + m * d * f) + 2 * key_positions * i)
    decoder = batch * beams * (decoder_layer + T * d * vocab)
    return 2.0 * (encoder + cross_keys_values + decoder)


# ---- the driver --------------------------------------------------------------------------------------


def run_in_own_process(system: str, args, folder: str) -> list[dict] | None:
    """Runs one system's worker in a fresh process; its results, or None (the reason on stderr)."""
    python = HF4_PYTHON if system.startswith("hf4") else sys.executable
    command = [python, __file__, "--worker", system, "--folder", folder, "--rows", args.rows]
    command += ["--source-length", str(args.source_length), "--new-tokens", str(args.new_tokens)]
    command += ["--warmup", str(args.warmup), "--repeats", str(args.repeats), "--peak-size", str(args.peak_size)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    if system.startswith("hf4"):
        env["TF_USE_LEGACY_KERAS"] = "1"
    print(f"running {system} ...", file=sys.stderr, flush=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    if done.returncode != 0 or not lines:
        print(f"{system} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1][len("RESULTS ") :])


def skip_reason(system: str, model: str) -> str | None:
    if system.startswith("hf4"):
        if model not in HF4_TF_MODELS:
            return f"{system}: HF 4.57 has no TensorFlow {model}"
        if not os.path.exists(HF4_PYTHON):
            return f"{system}: {HF4_PYTHON} missing (make benchmark-env)"
    if system in CT2_COMPUTE_TYPES and importlib.util.find_spec("ctranslate2") is None:
        return f'{system}: ctranslate2 is not installed (pip install -e ".[bench]")'
    if system == "gemm-tf" and importlib.util.find_spec("tensorflow") is None:
        return f"{system}: tensorflow is not installed"
    return None


def measure_peak(args, folder: str, when: str, skipped: list[str]) -> list[dict]:
    results = []
    for system in PEAK_SYSTEMS:
        reason = skip_reason(system, args.model)
        if reason:
            if when == "before":
                skipped.append(reason)
            continue
        for result in run_in_own_process(system, args, folder) or []:
            results.append({**result, "when": when})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default=None, help="model shapes (default: marian; --quick: tiny)")
    parser.add_argument("--systems", default=None, help=f"comma-separated, from {','.join(SYSTEMS)} (default: all)")
    parser.add_argument("--rows", default=None, help=f"comma-separated, from {','.join(ROWS)} (default: all)")
    parser.add_argument("--source-length", type=int, default=24)
    parser.add_argument("--new-tokens", type=int, default=None, help="exactly this many per sentence (default: 32)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs per row (default: 2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per row; the median is reported (default: 5)")
    parser.add_argument("--peak-size", type=int, default=None, help="n of the n x n GEMM peak (default: 2048)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: the tiny model, the systems that start fast, "
                        "greedy rows, 8 new tokens, 1 warm-up, 1 repeat (explicit options still win)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--convert", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quick = dict(model="tiny", systems=",".join(QUICK_SYSTEMS), rows="greedy-1,greedy-32", new_tokens=8, warmup=1,
                 repeats=1, peak_size=512)
    full = dict(model="marian", systems=",".join(SYSTEMS), rows=",".join(ROWS), new_tokens=32, warmup=2, repeats=5,
                peak_size=2048)
    for name, default in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    unknown = [name for name in args.systems.split(",") if name not in SYSTEMS]
    unknown += [name for name in args.rows.split(",") if name not in ROWS]
    if unknown:
        parser.error(f"unknown system or row: {', '.join(unknown)}")
    if args.convert:
        convert_for_ct2(args.folder)
        return
    if args.worker:
        run_worker(args)
        return

    folder = checkpoint_folder(args.model)
    config = json.load(open(os.path.join(folder, "config.json")))
    skipped: list[str] = []
    peaks = measure_peak(args, folder, "before", skipped)
    rows = []
    for system in args.systems.split(","):
        reason = skip_reason(system, args.model)
        if reason:
            print(f"skipping {reason}", file=sys.stderr)
            skipped.append(reason)
            continue
        if system in CT2_COMPUTE_TYPES and not os.path.exists(os.path.join(ct2_folder(folder), "model.bin")):
            print("converting the checkpoint for CTranslate2 ...", file=sys.stderr, flush=True)
            # Its own process too: the converter imports torch and transformers.
            subprocess.run([sys.executable, __file__, "--convert", "--folder", folder], check=True)
        rows.extend(run_in_own_process(system, args, folder) or [])
    peaks += measure_peak(args, folder, "after", skipped)
    peak = max((result["gflops"] for result in peaks), default=None)

    print(f"\nmodel: {args.model} (random weights), source {args.source_length} tokens, exactly {args.new_tokens} new tokens")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    for result in peaks:
        print(f"fp32 GEMM peak ({args.peak_size}^3, {result['system']}, {result['when']} the systems): {result['gflops']:.1f} GFLOP/s")
    print()
    print("| row | system | sentences/s | tokens/s | GFLOP/s | MFU | median s | first call s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in args.rows.split(","):
        beams, batch = ROWS[row]
        for result in rows:
            if result["row"] == row:
                gflops = generation_flops(config, batch, args.source_length, result["new_tokens"], beams) / result["seconds"] / 1e9
                mfu = f"{100 * gflops / peak:.1f}%" if peak else "-"
                print(
                    f"| {row} | {result['system']} | {result['sentences_per_s']:.2f} | {result['tokens_per_s']:.0f} "
                    f"| {gflops:.2f} | {mfu} | {result['seconds']:.3f} | {result['first_call_s']:.2f} |"
                )
    for reason in skipped:
        print(f"\nskipped {reason}")


if __name__ == "__main__":
    main()
