"""Translation quality per framework: BLEU, chrF and TER (sacrebleu, with signatures).

The translations are the ones the equivalence check made (PyTorch eager and TensorFlow, XLA by
default; greedy and beam), scored with westron.evaluation, the module `westron evaluate` and training use.
"""

from __future__ import annotations

from typing import Any

from westron.compare.equivalence import LanguagePair


def score_quality(translations, pairs: list[LanguagePair], bleu_tokenize: str | None = None) -> dict[str, Any]:
    """BLEU, chrF and TER per framework and decoding: over all pairs, and per pair when there are several."""
    from westron.evaluation import score_translations

    quality: dict[str, Any] = {}
    for fw, by_decoding in translations.items():
        for decoding, by_pair in by_decoding.items():
            entry: dict[str, Any] = {}
            if len(pairs) > 1:
                entry["per_pair"] = {
                    pair.name: score_translations(by_pair[pair.name], pair.references, target_lang=pair.target_lang,
                                                  bleu_tokenize=bleu_tokenize).to_dict()
                    for pair in pairs
                }
            hypotheses = [text for pair in pairs for text in by_pair[pair.name]]
            references = [text for pair in pairs for text in pair.references]
            targets = {pair.target_lang for pair in pairs}
            target = pairs[0].target_lang if len(targets) == 1 else None
            entry["all"] = score_translations(hypotheses, references, target_lang=target, bleu_tokenize=bleu_tokenize).to_dict()
            quality.setdefault(fw, {})[decoding] = entry
    return quality
