"""Tiny SentencePiece models trained by the real trainer, for tokenizer equivalence tests.

`multilingual_corpus()` is a deterministic corpus of a few hundred lines in several scripts (Latin
with accents, Cyrillic, Greek, Hebrew, Japanese, Georgian), with digits and punctuation.
`trained_spm(name)` trains one of the `SPM_RECIPES` once per test process (a second or so) and
returns the path of its .model file. `edge_case_texts()` are inputs a tokenizer gets wrong first:
the empty string, blanks only, characters the models never saw, literal special tokens, language
codes. `write_marian_folder()` lays out an opus-mt style tokenizer folder from two models.

Nothing here is Marian-specific except `write_marian_folder`; T5, M2M100 and NLLB tokenizer tests
can train their own recipe (e.g. with `user_defined_symbols` or other special ids) the same way.
"""

from __future__ import annotations

import atexit
import functools
import io
import itertools
import json
import os
import shutil
import tempfile

# A few sentences per language; the corpus combines them with digits and punctuation.
_SENTENCES = {
    "en": [
        "The quick brown fox jumps over the lazy dog.",
        "I don't think we'll make it before nine o'clock.",
        "Translation models read a sentence and write another one.",
        "She paid $12.50 for three coffees, didn't she?",
        "Where is the train station?",
        "Please send the report by Friday.",
        "It's raining again; take an umbrella!",
        "We measured 3.14 metres at 21:45 on 2024-05-17.",
    ],
    "fr": [
        "Le cœur a ses raisons que la raison ne connaît point.",
        "Où est la gare, s'il vous plaît ?",
        "Élodie a mangé une crème brûlée à Noël.",
        "Ça coûte 15 € — c'est très cher !",
        "L'été dernier, nous sommes allés à la mer.",
        "« Bonjour », dit-il en français.",
    ],
    "de": [
        "Die Straße ist fünf Kilometer lang.",
        "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
        "Größere Übersetzungsmodelle brauchen mehr Daten.",
        "Wir treffen uns um 18 Uhr am Bahnhof.",
    ],
    "es": [
        "¿Dónde está la biblioteca?",
        "¡Qué día tan bonito hace hoy!",
        "El niño comió una piña en el año 1999.",
    ],
    "ru": [
        "Москва — столица России.",
        "Я люблю читать книги по вечерам.",
        "Сколько стоит билет до Санкт-Петербурга?",
    ],
    "el": [
        "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
        "Καλημέρα, τι κάνεις;",
    ],
    "he": [
        "שלום, מה שלומך?",
        "ירושלים היא עיר עתיקה.",
        "אני אוהב לקרוא ספרים בערב.",
        "הרכבת יוצאת בשעה 8:30.",
    ],
    "ja": [
        "今日はいい天気ですね。",
        "駅はどこですか？",
        "私は毎朝コーヒーを飲みます。",
        "東京は日本の首都です。",
    ],
    "ka": [
        "გამარჯობა, როგორ ხარ?",
        "თბილისი საქართველოს დედაქალაქია.",
        "მე მიყვარს ქართული ენა.",
    ],
}

_NUMBERS = ["0", "7", "42", "1984", "3,5", "2.718", "100%", "#1", "12:00", "-5"]
_PATTERNS = ["{s}", "{n} {s}", "{s} ({n})", "«{s}»", "{s} — {n}!", '"{s}"', "{n}. {s}", "{s}..."]


def multilingual_corpus() -> list[str]:
    """About 320 deterministic lines, one language per line, the empty string last."""
    lines = []
    numbers = itertools.cycle(_NUMBERS)
    for language in sorted(_SENTENCES):
        for sentence in _SENTENCES[language]:
            for pattern in _PATTERNS:
                lines.append(pattern.format(s=sentence, n=next(numbers)))
    # Mixed-script lines and long ones (for truncation).
    lines += [f"{a} {b}" for a, b in zip(_SENTENCES["he"], _SENTENCES["ja"])]
    lines += [f"{a} | {b}" for a, b in zip(_SENTENCES["ka"], _SENTENCES["fr"])]
    lines += [" ".join(_SENTENCES[language]) for language in sorted(_SENTENCES)]
    lines.append("")
    return lines


def edge_case_texts() -> list[str]:
    """Inputs outside the training corpus: blanks, unseen characters, special tokens in the text."""
    return [
        "",
        " ",
        "   leading and trailing blanks   ",
        "tab\tseparated\tand\nnewline",
        "multiple     inner      spaces",
        "emoji 🙂 and a clef 𝄞 are unknown",
        "Ꭰ Ꭱ Ꭲ (Cherokee) ᚠᚢᚦ (runes) never seen",
        "</s>",
        "text with </s> inside and <pad> too",
        "<unk> written out",
        "<unk>",
        "<eop> and <eod> written out, <eop>",
        ">>fra<< Où est la gare ?",
        ">>heb<< שלום",
        ">>jpn<<駅はどこですか？",
        ">>xyz<< an unknown language code",
        ">>fra<<",
        ">> not a code",
        "a >>fra<< in the middle",
        "</s>>>fra<< after a special token",
        "1234567890 0.5 -3 +7 1e10",
        "!!! ??? ... ,,, ;;; ::: ---",
        "ÀÉÎÕÜ àéîõü ñ ç ß ø å",
        "NFKC ﬁ ligature, ２ full-width digits, ｶﾀｶﾅ half-width",
    ]


# name -> trainer options. Source and target differ in algorithm and size, so swapping them shows.
SPM_RECIPES = {
    "source": dict(model_type="unigram", vocab_size=320),
    "target": dict(model_type="bpe", vocab_size=280),
}

_CACHE_DIR = None


def train_sentencepiece(lines, path: str | os.PathLike, **options) -> str:
    """Trains a SentencePiece model on `lines` and writes it to `path` (the .model file)."""
    import sentencepiece

    settings = dict(
        character_coverage=0.995,  # the rarest characters stay out: they become <unk>
        hard_vocab_limit=False,  # a tiny corpus may not support the exact size
        num_threads=1,
        minloglevel=2,
        seed_sentencepiece_size=100_000,
        input_sentence_size=0,
    )
    settings.update(options)
    buffer = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([line for line in lines if line]), model_writer=buffer, **settings
    )
    with open(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return os.fspath(path)


@functools.cache
def trained_spm(name: str) -> str:
    """The .model path of `SPM_RECIPES[name]`, trained on the corpus once per process."""
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = tempfile.mkdtemp(prefix="westron-spm-")
        atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)
    return train_sentencepiece(multilingual_corpus(), os.path.join(_CACHE_DIR, f"{name}.model"), **SPM_RECIPES[name])


def spm_pieces(path: str) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=path)
    return [processor.id_to_piece(index) for index in range(processor.get_piece_size())]


def marian_vocab(*spm_paths: str, language_codes=()) -> dict[str, int]:
    """An opus-mt vocab.json: </s> = 0, <unk> = 1, the pieces of the models, codes, <pad> last."""
    tokens = ["</s>", "<unk>"]
    for path in spm_paths:
        tokens += [piece for piece in spm_pieces(path) if piece not in ("<unk>", "<s>", "</s>")]
    tokens += list(language_codes)
    tokens = list(dict.fromkeys(tokens))  # shared pieces once, first place kept
    tokens.append("<pad>")
    return {token: index for index, token in enumerate(tokens)}


def write_marian_folder(
    folder: str | os.PathLike,
    *,
    separate_vocabs: bool = False,
    language_codes=(),
    tokenizer_config: dict | None = None,
    special_tokens_map: dict | None = None,
) -> str:
    """An opus-mt tokenizer folder: source.spm, target.spm, vocab.json (and target_vocab.json).

    With one vocabulary (the common case) vocab.json holds the pieces of both models; with
    `separate_vocabs` vocab.json holds the source pieces and target_vocab.json the target ones.
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    source, target = trained_spm("source"), trained_spm("target")
    shutil.copyfile(source, os.path.join(folder, "source.spm"))
    shutil.copyfile(target, os.path.join(folder, "target.spm"))
    config = {"source_lang": "mul", "target_lang": "mul", "model_max_length": 512}
    if separate_vocabs:
        _write_json(os.path.join(folder, "vocab.json"), marian_vocab(source, language_codes=language_codes))
        _write_json(os.path.join(folder, "target_vocab.json"), marian_vocab(target))
        config["separate_vocabs"] = True
    else:
        _write_json(os.path.join(folder, "vocab.json"), marian_vocab(source, target, language_codes=language_codes))
    config.update(tokenizer_config or {})
    _write_json(os.path.join(folder, "tokenizer_config.json"), config)
    if special_tokens_map is None:
        special_tokens_map = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    _write_json(os.path.join(folder, "special_tokens_map.json"), special_tokens_map)
    return folder


def _write_json(path: str, data) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, ensure_ascii=False, indent=2)
