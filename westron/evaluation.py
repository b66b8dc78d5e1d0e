"""Translation quality: BLEU, chrF and TER from sacrebleu, with their signatures, and the length ratio.

One module that training, `westron evaluate`, quickstart and compare all call, so every number
Westron prints is computed the same way:

    >>> result = score_translations(hypotheses, references, target_lang="de")
    >>> result.bleu, result.signatures["bleu"]
    (31.2, 'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0')

The BLEU tokenizer follows the target language as sacrebleu's own command line does: ja-mecab for
Japanese, zh for Chinese, ko-mecab for Korean, 13a otherwise (`bleu_tokenize` overrides it). The
MeCab tokenizers need `pip install 'westron[ja]'` / `'westron[ko]'`; without them scoring stops with
a WestronError naming the extra, rather than quietly falling back to a tokenizer whose BLEU is not
comparable with anyone else's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from westron.errors import WestronError

# sacrebleu's command line picks these BLEU tokenizers from the target language (13a otherwise).
BLEU_TOKENIZER_BY_LANGUAGE = {"ja": "ja-mecab", "zh": "zh", "ko": "ko-mecab"}
DEFAULT_BLEU_TOKENIZER = "13a"
# ISO 639-3 codes (NLLB's "jpn_Jpan", "zho_Hans", "kor_Hang") that the rules above know as 639-1.
ISO_639_3_TO_1 = {"jpn": "ja", "zho": "zh", "cmn": "zh", "yue": "zh", "kor": "ko"}
# What each tokenizer needs beyond sacrebleu itself: the Westron extra that installs it.
TOKENIZER_EXTRAS = {"ja-mecab": "westron[ja]", "ko-mecab": "westron[ko]"}


def base_language(code: str | None) -> str:
    """The ISO 639-1 language of a code: "zh-TW" -> "zh", "jpn_Jpan" -> "ja", "de" -> "de"."""
    if not code:
        return ""
    primary = code.replace("-", "_").split("_")[0].lower()
    return ISO_639_3_TO_1.get(primary, primary)


def bleu_tokenizer_for(target_lang: str | None) -> str:
    """The BLEU tokenizer sacrebleu's command line uses for this target language."""
    return BLEU_TOKENIZER_BY_LANGUAGE.get(base_language(target_lang), DEFAULT_BLEU_TOKENIZER)


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Corpus-level scores of one set of translations; BLEU, chrF and TER on sacrebleu's 0-100 scale.

    length_ratio is hypothesis length / reference length in BLEU tokens (what BLEU's brevity
    penalty sees: below 1 the translations are too short and BLEU is penalised).
    """

    bleu: float
    chrf: float
    ter: float
    length_ratio: float
    hyp_length: int  # BLEU tokens in all hypotheses
    ref_length: int  # BLEU tokens in all references
    num_sentences: int
    signatures: dict[str, str]  # metric name -> sacrebleu signature ("nrefs:1|case:mixed|...")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def format(self) -> str:
        """The scores as a person reads them, one metric a line with its signature."""
        return "\n".join(
            [
                f"BLEU  = {self.bleu:6.2f}  {self.signatures['bleu']}",
                f"chrF2 = {self.chrf:6.2f}  {self.signatures['chrf']}",
                f"TER   = {self.ter:6.2f}  {self.signatures['ter']}",
                f"length ratio = {self.length_ratio:.3f} (hyp {self.hyp_length} / ref {self.ref_length} BLEU tokens)",
                f"sentences = {self.num_sentences}",
            ]
        )


def bleu_metric(tokenize: str):
    """sacrebleu's BLEU with this tokenizer; a missing MeCab is one clear line, not sacrebleu's banner."""
    from sacrebleu.metrics import BLEU

    if tokenize not in BLEU.TOKENIZERS:
        raise WestronError(f"unknown BLEU tokenizer {tokenize!r} (sacrebleu has: {', '.join(BLEU.TOKENIZERS)})")
    try:
        return BLEU(tokenize=tokenize)
    except (ImportError, RuntimeError) as error:  # sacrebleu raises RuntimeError when MeCab is missing
        extra = TOKENIZER_EXTRAS.get(tokenize)
        if extra is None:
            raise WestronError(f"the BLEU tokenizer {tokenize} cannot start: {error}".strip()) from None
        raise WestronError(
            f"the BLEU tokenizer {tokenize} needs MeCab and its dictionary: pip install '{extra}' "
            "(or choose another tokenizer with --bleu-tokenize / bleu_tokenize=, e.g. char)"
        ) from None


def score_translations(
    hypotheses: Sequence[str],
    references: Sequence[str],
    target_lang: str | None = None,
    bleu_tokenize: str | None = None,
) -> EvaluationResult:
    """BLEU, chrF and TER of hypotheses against one reference each, with their signatures."""
    from sacrebleu.metrics import CHRF, TER

    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise WestronError(f"{len(hypotheses)} translations for {len(references)} references: the counts must match")
    if not references:
        raise WestronError("nothing to score: no sentences")
    bleu = bleu_metric(bleu_tokenize or bleu_tokenizer_for(target_lang))
    chrf = CHRF()
    ter = TER()  # sacrebleu's defaults (its asian_support acts only with normalized=True, which changes every language)
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    ter_score = ter.corpus_score(hypotheses, [references])
    return EvaluationResult(
        bleu=bleu_score.score,
        chrf=chrf_score.score,
        ter=ter_score.score,
        length_ratio=bleu_score.sys_len / bleu_score.ref_len if bleu_score.ref_len else 0.0,
        hyp_length=bleu_score.sys_len,
        ref_length=bleu_score.ref_len,
        num_sentences=len(references),
        signatures={
            "bleu": str(bleu.get_signature()),
            "chrf": str(chrf.get_signature()),
            "ter": str(ter.get_signature()),
        },
    )


def translate_sources(translator, sources: Sequence[str], batch_size: int = 32, progress=None, **generate_kwargs) -> list[str]:
    """Translates every source with a TranslationPipeline; returns the translations in input order.

    Batches hold sentences of similar length (longest first, so a too-long batch fails early and
    padding stays small); empty sources translate to empty strings. `progress` (a tqdm bar or
    anything with update(n)) is told how many sentences each batch finished.
    """
    outputs = [""] * len(sources)
    order = sorted((i for i, text in enumerate(sources) if text.strip()), key=lambda i: len(sources[i]), reverse=True)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        for i, text in zip(batch, translator.translate_batch([sources[i] for i in batch], **generate_kwargs)):
            outputs[i] = text
        if progress is not None:
            progress.update(len(batch))
    return outputs


def evaluate_model(
    model,
    tokenizer,
    sources: Sequence[str],
    references: Sequence[str],
    *,
    target_lang: str | None = None,
    bleu_tokenize: str | None = None,
    batch_size: int = 32,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    source_prefix: str | None = None,
    **generate_kwargs,
) -> tuple[EvaluationResult, list[str]]:
    """Translates `sources` with a PyTorch or TensorFlow model and scores them against `references`.

    model: a Westron model object (its framework is its own) with its tokenizer, or a checkpoint
    folder (tokenizer None). num_beams / max_new_tokens default to the model's generation config.
    src_lang / tgt_lang are the multilingual tokenizers' codes (NLLB "spa_Latn"); target_lang
    (default: tgt_lang) picks the BLEU tokenizer. A PyTorch model in training mode is switched to
    eval mode for the translation and back afterwards.
    Returns the scores and the translations, in the order of `sources`.
    """
    from westron.pipelines import TranslationPipeline

    if len(sources) != len(references):
        raise WestronError(f"{len(sources)} sources for {len(references)} references: the counts must match")
    if num_beams is not None:
        generate_kwargs["num_beams"] = num_beams
    if max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = max_new_tokens
    translator = TranslationPipeline(model, tokenizer, src_lang=src_lang, tgt_lang=tgt_lang, source_prefix=source_prefix)
    was_training = translator.framework == "pt" and translator.model.training
    if was_training:
        translator.model.eval()
    try:
        hypotheses = translate_sources(translator, list(sources), batch_size=batch_size, **generate_kwargs)
    finally:
        if was_training:
            translator.model.train()
    result = score_translations(hypotheses, references, target_lang=target_lang or tgt_lang, bleu_tokenize=bleu_tokenize)
    return result, hypotheses
