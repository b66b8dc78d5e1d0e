"""One checkpoint, two frameworks: do they compute the same thing?

For each batch of test sources (both models loaded from the same folder, in one process):
- greedy and beam-search ids from PyTorch (eager) and from TensorFlow (XLA, its default, unless
  told otherwise);
- the logits of one teacher-forced pass in each framework, fed PyTorch's greedy output as the
  decoder input, compared at every real position (up to and including the first </s>);
- which sentences' outputs differ, in either decoding.

The verdict uses the test suite's float32 rule: the largest |difference| must stay within
1e-4 x max(1, largest |logit|) (other kernels, the same arithmetic), and every output must be
identical. A broken twin (a weight loaded into the wrong place, a missing scale) moves logits by
far more than that. The translations are kept, so the quality section scores them without
translating again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOGITS_TOL = 1e-4  # the PT/TF tolerance of the test suite (tests/test_modeling_common.py), relative to max(1, |logits|)
LISTED_DIFFERENCES = 20  # differing sentences the report lists per model
TF_MODE_NAMES = {"xla": "XLA", "function": "tf.function", "eager": "eager"}


@dataclass
class LanguagePair:
    """One direction of the test set: the test file's language keys, the model's codes, the texts."""

    source_lang: str
    target_lang: str
    sources: list[str]
    references: list[str]
    src_code: str | None = None  # passed to multilingual tokenizers (NLLB "spa_Latn") and T5's task lookup
    tgt_code: str | None = None
    source_prefix: str | None = None

    @property
    def name(self) -> str:
        return f"{self.source_lang}-{self.target_lang}"


@dataclass
class Tally:
    """Running maxima and counts over batches."""

    max_abs_diff: float = 0.0
    max_abs_logit: float = 0.0
    positions: int = 0
    identical: dict[str, int] = field(default_factory=lambda: {"greedy": 0, "beam": 0})
    sentences: int = 0


def trimmed(row: np.ndarray, pad_token_id: int) -> list[int]:
    """A generated row without the padding after its end (the start token stays)."""
    ids = row.tolist()
    while len(ids) > 1 and ids[-1] == pad_token_id:
        ids.pop()
    return ids


def decoder_mask(ids: np.ndarray, eos_token_ids: set[int]) -> np.ndarray:
    """1 at the start token and every position up to and including the first </s>, 0 after it."""
    is_eos = np.isin(ids, list(eos_token_ids))
    is_eos[:, 0] = False  # the start token may equal eos/pad (Marian starts with <pad>, T5 with pad 0)
    ended_before = np.cumsum(is_eos, axis=1) - is_eos  # eos strictly before this position
    return (ended_before == 0).astype(np.int64)


def eos_ids(model) -> set[int]:
    value = getattr(model.generation_config, "eos_token_id", None)
    if value is None:
        value = model.config.eos_token_id
    return set(value) if isinstance(value, (list, tuple)) else {value}


def compare_frameworks(
    pt_model,
    tf_model,
    tokenizer,
    pairs: list[LanguagePair],
    *,
    num_beams: int = 4,
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    tf_mode: str = "xla",
    progress=None,
) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, list[str]]]]]:
    """Equivalence numbers for one checkpoint, and its translations.

    tf_mode: how TensorFlow generates ("xla", its default; "function"; "eager").
    Returns (equivalence, translations) with translations[framework][decoding][pair name] the
    decoded outputs in the order of that pair's sources.
    """
    from westron.compare import tf_modes, torch_modes
    from westron.pipelines import TranslationPipeline

    pad = pt_model.config.pad_token_id
    eos = eos_ids(pt_model)
    decodings = {"greedy": 1, "beam": num_beams}
    tally = Tally()
    differences: list[dict[str, Any]] = []
    translations = {fw: {d: {} for d in decodings} for fw in ("pt", "tf")}
    for pair in pairs:
        options = {"src_lang": pair.src_code, "tgt_lang": pair.tgt_code, "source_prefix": pair.source_prefix}
        pt = TranslationPipeline(pt_model, tokenizer, framework="pt", **options)  # tokenizing and language settings, for both
        kwargs = dict(pt.generate_kwargs, do_sample=False)
        if max_new_tokens:
            kwargs["max_new_tokens"] = max_new_tokens
        outputs = {fw: {d: [""] * len(pair.sources) for d in decodings} for fw in ("pt", "tf")}
        order = sorted(range(len(pair.sources)), key=lambda i: len(pair.sources[i]), reverse=True)  # less padding
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            prefix = pt.source_prefix or ""
            input_ids, attention_mask = pt.encode([prefix + pair.sources[i] for i in rows])
            ids = {}
            for decoding, beams in decodings.items():
                ids["pt", decoding] = torch_modes.generate_ids(pt_model, input_ids, attention_mask, "eager", **kwargs, num_beams=beams)
                ids["tf", decoding] = tf_modes.generate_ids(tf_model, input_ids, attention_mask, tf_mode, **kwargs, num_beams=beams)
            # Logits along PyTorch's greedy output, in both frameworks.
            decoder_ids = ids["pt", "greedy"]
            mask = decoder_mask(decoder_ids, eos)
            pt_logits = torch_modes.teacher_forced_logits(pt_model, input_ids, attention_mask, decoder_ids, mask)
            tf_logits = tf_modes.teacher_forced_logits(tf_model, input_ids, attention_mask, decoder_ids, mask)
            real = mask.astype(bool)
            tally.max_abs_diff = max(tally.max_abs_diff, float(np.abs(pt_logits - tf_logits)[real].max()))
            tally.max_abs_logit = max(tally.max_abs_logit, float(np.abs(pt_logits)[real].max()))
            tally.positions += int(real.sum())
            tally.sentences += len(rows)
            for decoding in decodings:
                texts = {fw: tokenizer.batch_decode(ids[fw, decoding], skip_special_tokens=True) for fw in ("pt", "tf")}
                for k, i in enumerate(rows):
                    for fw in ("pt", "tf"):
                        outputs[fw][decoding][i] = texts[fw][k]
                    same = trimmed(ids["pt", decoding][k], pad) == trimmed(ids["tf", decoding][k], pad)
                    tally.identical[decoding] += same
                    if not same and len(differences) < LISTED_DIFFERENCES:
                        differences.append(
                            {"pair": pair.name, "index": i, "decoding": decoding, "source": pair.sources[i],
                             "pt": texts["pt"][k], "tf": texts["tf"][k], "same_text": texts["pt"][k] == texts["tf"][k]}
                        )
            if progress is not None:
                progress.update(len(rows))
        for fw in ("pt", "tf"):
            for decoding in decodings:
                translations[fw][decoding][pair.name] = outputs[fw][decoding]

    differences.sort(key=lambda d: (d["pair"], list(decodings).index(d["decoding"]), d["index"]))
    tolerance = LOGITS_TOL * max(1.0, tally.max_abs_logit)
    share = {d: tally.identical[d] / tally.sentences if tally.sentences else 0.0 for d in decodings}
    equivalence = {
        "sentences": tally.sentences,
        "logits": {
            "max_abs_diff": tally.max_abs_diff,
            "max_abs_logit": tally.max_abs_logit,
            "tolerance": tolerance,
            "within_tolerance": tally.max_abs_diff <= tolerance,
            "positions_compared": tally.positions,
        },
        "identical_share": share,
        "identical_count": dict(tally.identical),
        "num_beams": num_beams,
        "equivalent": tally.max_abs_diff <= tolerance and all(value == 1.0 for value in share.values()),
        "differences": differences,
        "differences_listed_at_most": LISTED_DIFFERENCES,
        "method": (
            "both frameworks load the same checkpoint in one process; logits of one teacher-forced pass on PyTorch's "
            "greedy output, compared at every position up to and including the first </s> (max |PT - TF|, float32); "
            f"tolerance {LOGITS_TOL:g} x max(1, max |logit|); outputs compared as token ids: PyTorch eager vs "
            f"TensorFlow {TF_MODE_NAMES[tf_mode]}, greedy and beam {num_beams}"
        ),
    }
    return equivalence, translations
