"""Trains the SentencePiece tokenizer of a model from scratch, in the folder layout of its family.

The real SentencePiece trainer runs in-process on the source and target sides of the training
files (any format `read_pairs` reads: JSON lines, TSV/CSV with language columns, ...), streamed, at most
`input_sentence_size` sentences (sampled with a fixed seed), one thread by default: the same files
give the same model, byte for byte.

Layouts (what Westron's and Hugging Face's tokenizers load):
- marian: source.spm and target.spm (the same model when joint; one per language when separate,
  as opus-mt has them), vocab.json holding the pieces of both in one vocabulary (</s> = 0,
  <unk> = 1, the pieces, <pad> last), tokenizer_config.json and special_tokens_map.json. Each model
  gets vocab_size - 1 pieces, so that a joint vocabulary with <pad> has exactly vocab_size ids. The
  model config: eos 0, pad = decoder_start = the last id, vocab_size = decoder_vocab_size = len(vocab.json).
- t5: spiece.model whose ids are the model's (<pad> = 0, </s> = 1, <unk> = 2, no <s>), then
  `extra_ids` sentinels <extra_id_N> after the pieces, and tokenizer_config.json. The model config:
  pad = decoder_start = 0, eos 1, vocab_size = pieces + extra_ids. T5 has one vocabulary: joint only.

`user_defined_symbols` (Marian's target-language codes, >>heb<<) become whole pieces of the model.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence

from westron.data.readers import read_pairs
from westron.errors import WestronError

MODEL_TYPES = ("marian", "t5")
MODEL_KINDS = ("unigram", "bpe")
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"

# SentencePiece's reserved ids per family (-1: no such token).
_SPECIAL_IDS = {
    "marian": dict(eos_id=0, unk_id=1, bos_id=-1, pad_id=-1),
    "t5": dict(pad_id=0, eos_id=1, unk_id=2, bos_id=-1),
}


@dataclasses.dataclass(frozen=True)
class TrainedTokenizer:
    """Where the tokenizer was written and the ids a from-scratch model config must use with it."""

    folder: str
    model_type: str
    config_ids: dict[str, int]


# ---- training text ----------------------------------------------------------------------------------


def training_sentences(files: Sequence[str], source_lang: str, target_lang: str, sides: str) -> Iterator[str]:
    """The non-empty texts of one side ("source", "target") or of both, file by file."""
    for path in files:
        for pair in read_pairs(path, source_lang, target_lang):
            for side, text in (("source", pair.source), ("target", pair.target)):
                if sides in (side, "both") and text.strip():
                    yield text


# ---- SentencePiece ----------------------------------------------------------------------------------


# SentencePiece's max_sentence_length: it leaves longer sentences out of training without a word
# (at minloglevel 2); Westron leaves them out itself, and counts them for a warning.
MAX_SENTENCE_BYTES = 4192


def train_sentencepiece(sentences: Iterable[str], **options) -> bytes:
    """A serialized SentencePiece model trained on `sentences` with Westron's fixed settings + options."""
    import sentencepiece

    settings = dict(
        hard_vocab_limit=False,  # a small corpus gives a smaller vocabulary rather than an error
        minloglevel=2,
        shuffle_input_sentence=True,  # sampling, when the input exceeds input_sentence_size, is seeded
        max_sentence_length=MAX_SENTENCE_BYTES,
    )
    settings.update(options)
    sentencepiece.set_random_generator_seed(settings.pop("seed"))
    buffer = io.BytesIO()
    too_long = [0]

    def within_limit(texts: Iterable[str]) -> Iterator[str]:
        for text in texts:
            if len(text.encode("utf-8")) > MAX_SENTENCE_BYTES:
                too_long[0] += 1
            else:
                yield text

    sentences = within_limit(sentences)
    try:
        first = next(sentences)
    except StopIteration:
        longer = f" ({too_long[0]} sentences are longer than SentencePiece's limit of {MAX_SENTENCE_BYTES} bytes)" if too_long[0] else ""
        raise WestronError(f"the training files hold no text to train a tokenizer on{longer}") from None
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=_chain(first, sentences), model_writer=buffer, **settings
        )
    except RuntimeError as error:
        raise WestronError(f"SentencePiece could not train: {error}") from None
    if too_long[0]:
        warnings.warn(
            f"{too_long[0]} sentences longer than {MAX_SENTENCE_BYTES} bytes (SentencePiece's max_sentence_length) "
            "were left out of tokenizer training",
            stacklevel=2,
        )
    return buffer.getvalue()


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def spm_pieces(model: bytes) -> list[str]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    return [processor.id_to_piece(index) for index in range(processor.get_piece_size())]


# ---- layouts ----------------------------------------------------------------------------------------


def marian_vocab(*models: bytes) -> dict[str, int]:
    """opus-mt's vocab.json: </s> = 0, <unk> = 1 (the models' own ids 0 and 1), the pieces of every
    model, each once, then <pad> last."""
    tokens = ["</s>", "<unk>"]
    for model in models:
        tokens += spm_pieces(model)
    tokens = list(dict.fromkeys(tokens)) + ["<pad>"]
    return {token: index for index, token in enumerate(tokens)}


def write_marian(folder: str, source_model: bytes, target_model: bytes, source_lang: str, target_lang: str, model_max_length: int) -> dict[str, int]:
    from westron.file_utils import write_json

    for name, model in (("source.spm", source_model), ("target.spm", target_model)):
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(model)
    models = (source_model,) if source_model == target_model else (source_model, target_model)
    vocab = marian_vocab(*models)
    write_json(os.path.join(folder, "vocab.json"), vocab)
    special = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    config = {
        "tokenizer_class": "MarianTokenizer",
        "source_lang": source_lang,
        "target_lang": target_lang,
        "separate_vocabs": False,
        "model_max_length": model_max_length,
        **special,
    }
    write_json(os.path.join(folder, TOKENIZER_CONFIG_FILE), config)
    write_json(os.path.join(folder, "special_tokens_map.json"), special)
    pad = vocab["<pad>"]
    return dict(
        vocab_size=len(vocab),
        decoder_vocab_size=len(vocab),
        pad_token_id=pad,
        eos_token_id=vocab["</s>"],
        forced_eos_token_id=vocab["</s>"],
        decoder_start_token_id=pad,
    )


def write_t5(folder: str, model: bytes, extra_ids: int, model_max_length: int) -> dict[str, int]:
    from westron.file_utils import write_json

    with open(os.path.join(folder, "spiece.model"), "wb") as handle:
        handle.write(model)
    special = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
    sentinels = [f"<extra_id_{i}>" for i in range(extra_ids)]
    config = {
        "tokenizer_class": "T5Tokenizer",
        "extra_ids": extra_ids,
        "model_max_length": model_max_length,
        **special,
        "additional_special_tokens": sentinels,
    }
    write_json(os.path.join(folder, TOKENIZER_CONFIG_FILE), config)
    write_json(os.path.join(folder, "special_tokens_map.json"), {**special, "additional_special_tokens": sentinels})
    return dict(
        vocab_size=len(spm_pieces(model)) + extra_ids,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )


# ---- the whole job ----------------------------------------------------------------------------------


def train_tokenizer(
    model_type: str,
    train_files: Sequence[str | os.PathLike],
    source_lang: str,
    target_lang: str,
    output_dir: str | os.PathLike,
    *,
    vocab_size: int = 8000,
    model_kind: str = "unigram",
    joint: bool = True,
    character_coverage: float = 1.0,
    user_defined_symbols: Sequence[str] = (),
    extra_ids: int | None = None,
    input_sentence_size: int = 1_000_000,
    seed: int = 0,
    num_threads: int = 1,
    model_max_length: int = 512,
) -> TrainedTokenizer:
    """Trains the tokenizer of a `model_type` ("marian" or "t5") on the files' two sides and writes
    its folder (replaced as a whole); returns it with the ids for the model config.

    joint: one SentencePiece model for both languages; otherwise (Marian only) one per language,
    vocab_size each, in one shared vocab.json. extra_ids: T5's sentinels (default 100; Marian has none).
    """
    from westron.file_utils import atomic_directory, check_replaceable_folder

    if model_type not in MODEL_TYPES:
        raise WestronError(f"model type must be one of {', '.join(MODEL_TYPES)}, not {model_type!r}")
    if model_kind not in MODEL_KINDS:
        raise WestronError(f"model kind must be one of {', '.join(MODEL_KINDS)}, not {model_kind!r}")
    if model_type == "t5" and not joint:
        raise WestronError("T5 has one vocabulary for both languages: --separate applies to Marian only")
    if model_type == "marian" and extra_ids is not None:
        raise WestronError("--extra-ids applies to T5 only (Marian has no sentinel tokens)")
    extra_ids = 100 if extra_ids is None else extra_ids
    if not train_files:
        raise WestronError("no --train-file given")
    # SentencePiece's own range for character_coverage is [0.98, 1]; outside it, it fails after reading the corpus.
    if vocab_size < 8 or not 0.98 <= character_coverage <= 1 or input_sentence_size < 1 or num_threads < 1 or extra_ids < 0:
        raise WestronError(
            "vocab_size must be at least 8, character_coverage in [0.98, 1] (SentencePiece's range), "
            "input_sentence_size and num_threads at least 1, extra_ids at least 0"
        )
    if source_lang == target_lang:
        raise WestronError(f"source and target language are both {source_lang!r}")
    symbols = list(dict.fromkeys(symbol for symbol in user_defined_symbols if symbol))
    files = [os.fspath(path) for path in train_files]
    for path in files:
        next(iter(read_pairs(path, source_lang, target_lang)), None)  # a bad file fails before training

    options = dict(
        model_type=model_kind,
        # Marian appends <pad> to the pieces: a joint vocabulary then has exactly vocab_size ids.
        vocab_size=vocab_size - 1 if model_type == "marian" else vocab_size,
        character_coverage=character_coverage,
        user_defined_symbols=symbols,
        input_sentence_size=input_sentence_size,
        num_threads=num_threads,
        seed=seed,
        **_SPECIAL_IDS[model_type],
    )

    def train(sides: str) -> bytes:
        return train_sentencepiece(training_sentences(files, source_lang, target_lang, sides), **options)

    output_dir = os.fspath(output_dir)
    check_replaceable_folder(output_dir, TOKENIZER_CONFIG_FILE)
    if os.path.isfile(os.path.join(output_dir, "config.json")):  # a checkpoint: replacing the folder would delete its weights
        raise WestronError(f"{output_dir} holds a model (config.json); a new tokenizer goes in a folder of its own: choose another -o")
    inside = [path for path in files if os.path.realpath(path).startswith(os.path.join(os.path.realpath(output_dir), ""))]
    if inside:  # the folder is replaced as a whole: the training file would be deleted with it
        raise WestronError(f"--train-file {inside[0]} is inside the output folder {output_dir}, which is replaced as a whole: choose another -o")
    if joint:
        source_model = target_model = train("both")
    else:
        source_model, target_model = train("source"), train("target")
    with atomic_directory(output_dir) as folder:
        if model_type == "marian":
            ids = write_marian(folder, source_model, target_model, source_lang, target_lang, model_max_length)
        else:
            ids = write_t5(folder, source_model, extra_ids, model_max_length)
    return TrainedTokenizer(output_dir, model_type, ids)
