#!/usr/bin/env python
"""CUDA check for the PyTorch path (run by hand on a GPU machine; tests never need a GPU).

1. Each model family on cuda: logits equal HF's (on the CPU) within 1e-4; greedy and beam ids equal
   HF's generate on cuda.
2. Speed and memory: an opus-mt-en-de-shaped random Marian, Westron PT vs HF PT on cuda, exactly
   32 new tokens, greedy and 4-beam, batch 32 (median of 5 after 2 warm-ups), with
   torch.cuda.max_memory_allocated / memory_reserved.

    PYTHONPATH=. python benchmarks/gpu_check.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, ".")
from tests import hf_oracle  # noqa: E402

import westron  # noqa: E402


def check_family(name, save, hf_class):
    folder = tempfile.mkdtemp()
    save(folder)
    hf = hf_class.from_pretrained(folder).eval()
    ours = westron.AutoModelForSeq2SeqLM.from_pretrained(folder, device="cuda")
    config = hf.config
    ids, mask = hf_oracle.random_batch(config.vocab_size, config.pad_token_id, config.eos_token_id)
    decoder_ids = ids[:, :5].clone()
    decoder_ids[:, 0] = config.decoder_start_token_id
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids).logits
        got = ours(input_ids=ids.cuda(), attention_mask=mask.cuda(), decoder_input_ids=decoder_ids.cuda()).logits
    diff = (got.cpu() - want).abs().max().item()
    hf_cuda = hf.cuda()
    same = []
    for beams in (1, 3):
        kwargs = dict(num_beams=beams, max_new_tokens=12)
        b = ours.generate(ids.cuda(), attention_mask=mask.cuda(), **kwargs).cpu()
        try:
            a = hf_cuda.generate(ids.cuda(), attention_mask=mask.cuda(), **kwargs).cpu()
        except Exception as error:  # HF 5.17 (on the GPU image) fails some shapes: two vocabularies, uneven depths
            print(f"  {name}: HF's own generate failed (num_beams={beams}): {str(error)[:80]}")
            continue
        same.append(a.shape == b.shape and bool((a == b).all()))
    print(f"{name}: max |logits - HF| = {diff:.2e}; generate ids equal to HF (greedy, beam 3): {same}")
    return diff < 1e-4 and all(same)


def speed():
    from transformers import MarianConfig, MarianMTModel

    config = MarianConfig(
        vocab_size=58101, d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
        decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048, activation_function="swish",
        scale_embedding=True, max_position_embeddings=512, pad_token_id=58100, eos_token_id=0,
        decoder_start_token_id=58100, forced_eos_token_id=None,
    )
    folder = tempfile.mkdtemp()
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(folder)
    ids = torch.randint(10, 32000, (32, 24))
    ids[:, -1] = 0
    mask = torch.ones_like(ids)
    print("\n| system | row | sentences/s | tokens/s | max allocated MiB | reserved MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for system in ("westron-pt", "hf-pt"):
        torch.cuda.empty_cache()
        if system == "westron-pt":
            model = westron.AutoModelForSeq2SeqLM.from_pretrained(folder, device="cuda")
        else:
            model = MarianMTModel.from_pretrained(folder).eval().cuda()
        for beams in (1, 4):
            kwargs = dict(num_beams=beams, max_new_tokens=32, min_new_tokens=32)
            run = lambda: model.generate(ids.cuda(), attention_mask=mask.cuda(), **kwargs)  # noqa: E731
            torch.cuda.reset_peak_memory_stats()
            for _ in range(2):
                run()
            times = []
            for _ in range(5):
                torch.cuda.synchronize()
                start = time.perf_counter()
                out = run()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
            median = statistics.median(times)
            new = out.shape[1] - 1
            print(
                f"| {system} | {'greedy' if beams == 1 else 'beam4'}-32 | {32 / median:.1f} | {32 * new / median:.0f} "
                f"| {torch.cuda.max_memory_allocated() / 2**20:.0f} | {torch.cuda.memory_reserved() / 2**20:.0f} |"
            )
        model = None  # frees its GPU memory before the next system loads


def main():
    from transformers import M2M100ForConditionalGeneration, MarianMTModel, T5ForConditionalGeneration

    print(torch.__version__, torch.cuda.get_device_name(0))
    ok = True
    for variant, overrides in hf_oracle.MARIAN_VARIANTS.items():
        ok &= check_family(f"marian/{variant}", lambda f, o=overrides: hf_oracle.save_tiny_marian(f, **o), MarianMTModel)
    for variant, overrides in hf_oracle.T5_VARIANTS.items():
        ok &= check_family(f"t5/{variant}", lambda f, o=overrides: hf_oracle.save_tiny_t5(f, **o), T5ForConditionalGeneration)
    for variant, overrides in hf_oracle.M2M100_VARIANTS.items():
        ok &= check_family(
            f"m2m_100/{variant}", lambda f, o=overrides: hf_oracle.save_tiny_m2m100(f, **o), M2M100ForConditionalGeneration
        )
    speed()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
