"""Tiny SentencePiece models trained by the real trainer, for tokenizer equivalence tests.

`multilingual_corpus()` is a deterministic corpus of a few hundred lines in several scripts (Latin
with accents, Cyrillic, Greek, Hebrew, Japanese, Georgian), with digits and punctuation.
`trained_spm(name)` trains one of the `SPM_RECIPES` once per test process (a second or so) and
returns the path of its .model file. `edge_case_texts()` are inputs a tokenizer gets wrong first:
the empty string, blanks only, characters the models never saw, literal special tokens, language
codes. `write_marian_folder()` lays out an opus-mt style tokenizer folder from two models.

`write_t5_folder()`, `write_nllb_folder()` and `write_m2m100_folder()` lay out the folders of
those families as the Hub has them (the files Hugging Face's tokenizer classes load offline),
from their own recipes; the language code lists are taken from Hugging Face, the oracle.
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

from tests.hf_pinned import hf_language_codes

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
    # T5's spiece.model: unigram, <pad> = 0, </s> = 1, <unk> = 2 and no <s>.
    "t5": dict(model_type="unigram", vocab_size=300, pad_id=0, eos_id=1, unk_id=2, bos_id=-1),
    # NLLB's and M2M100's sentencepiece.bpe.model: BPE, SentencePiece's default <unk> = 0, <s> = 1, </s> = 2.
    "nllb": dict(model_type="bpe", vocab_size=300),
    "m2m100": dict(model_type="bpe", vocab_size=270),
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


def write_t5_folder(folder: str | os.PathLike, *, tokenizer_config: dict | None = None) -> str:
    """A T5 tokenizer folder: spiece.model and tokenizer_config.json (t5-small's: only model_max_length)."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    shutil.copyfile(trained_spm("t5"), os.path.join(folder, "spiece.model"))
    _write_json(os.path.join(folder, "tokenizer_config.json"), {"model_max_length": 512, **(tokenizer_config or {})})
    return folder


def _added_token(content: str, **flags) -> dict:
    token = dict(content=content, lstrip=False, normalized=False, rstrip=False, single_word=False, special=True)
    token.update(flags)
    return token


def write_nllb_folder(
    folder: str | os.PathLike, *, with_ids: bool = True, tokenizer_config: dict | None = None
) -> str:
    """An nllb-200 tokenizer folder: sentencepiece.bpe.model and a tokenizer_config.json that lists
    the 202 language codes and, `with_ids` (as the Hub's has it), their fairseq ids in
    added_tokens_decoder: <s> <pad> </s> <unk> = 0..3, the codes after the pieces, <mask> last."""
    FAIRSEQ_LANGUAGE_CODES = hf_language_codes()["nllb"]

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = shutil.copyfile(trained_spm("nllb"), os.path.join(folder, "sentencepiece.bpe.model"))
    mask = dict(content="<mask>", lstrip=True, normalized=True, rstrip=False, single_word=False)
    config = {
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "mask_token": {"__type": "AddedToken", **mask}, "src_lang": None, "tgt_lang": None,
        "legacy_behaviour": False, "model_max_length": 1024, "sp_model_kwargs": {},
        "additional_special_tokens": list(FAIRSEQ_LANGUAGE_CODES), "tokenizer_class": "NllbTokenizer",
    }  # fmt: skip
    if with_ids:
        tokens = ["<s>", "<pad>", "</s>", "<unk>"]
        decoder = {str(index): _added_token(token) for index, token in enumerate(tokens)}
        first = len(spm_pieces(path)) + 1  # fairseq: piece k at k + 1
        for index, code in enumerate(FAIRSEQ_LANGUAGE_CODES):
            decoder[str(first + index)] = _added_token(code)
        decoder[str(first + len(FAIRSEQ_LANGUAGE_CODES))] = _added_token(**mask, special=True)
        config["added_tokens_decoder"] = decoder
    config.update(tokenizer_config or {})
    _write_json(os.path.join(folder, "tokenizer_config.json"), config)
    return folder


def m2m100_vocab(spm_path: str, *, missing: int = 5) -> dict[str, int]:
    """A fairseq vocab.json: <s> <pad> </s> <unk> = 0..3, then the pieces in another order than
    SentencePiece's (longest first), the last `missing` of them left out (they read as <unk>)."""
    pieces = [piece for piece in spm_pieces(spm_path) if piece not in ("<unk>", "<s>", "</s>")]
    pieces = sorted(pieces, key=lambda piece: (-len(piece), piece))[: len(pieces) - missing]
    return {token: index for index, token in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + pieces)}


def write_m2m100_folder(
    folder: str | os.PathLike,
    *,
    list_language_tokens: bool = True,
    language_codes: str = "m2m100",
    tokenizer_config: dict | None = None,
) -> str:
    """An m2m100 tokenizer folder: vocab.json, sentencepiece.bpe.model, tokenizer_config.json and
    special_tokens_map.json; `list_language_tokens` (as the Hub's do) lists `__en__`... as
    additional_special_tokens."""
    FAIRSEQ_LANGUAGE_CODES = hf_language_codes()["m2m100"]

    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    path = shutil.copyfile(trained_spm("m2m100"), os.path.join(folder, "sentencepiece.bpe.model"))
    _write_json(os.path.join(folder, "vocab.json"), m2m100_vocab(path))
    special = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    if list_language_tokens:
        special["additional_special_tokens"] = [f"__{code}__" for code in FAIRSEQ_LANGUAGE_CODES[language_codes]]
    config = {
        **special, "src_lang": None, "tgt_lang": None, "language_codes": language_codes, "num_madeup_words": 8,
        "sp_model_kwargs": {}, "model_max_length": 1024, "tokenizer_class": "M2M100Tokenizer",
    }  # fmt: skip
    config.update(tokenizer_config or {})
    _write_json(os.path.join(folder, "tokenizer_config.json"), config)
    _write_json(os.path.join(folder, "special_tokens_map.json"), special)
    return folder


def batches(texts: list, size: int = 8) -> list[list]:
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def first_mismatches(results, limit: int = 3) -> list:
    """The first few (input, ours, theirs) that differ: a readable assertion message."""
    return [result for result in results if result[1] != result[2]][:limit]
