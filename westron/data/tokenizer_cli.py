"""`westron tokenizer train`: a SentencePiece tokenizer for a from-scratch model, in its family's layout."""

from __future__ import annotations

import argparse
import sys


def add_tokenizer_commands(commands) -> None:
    """Registers the `westron tokenizer` command group."""
    from westron.cli import positive_int

    tokenizer = commands.add_parser("tokenizer", help="train a tokenizer for a new model")
    subcommands = tokenizer.add_subparsers(dest="tokenizer_command", required=True, metavar="COMMAND")
    train = subcommands.add_parser(
        "train",
        help="train SentencePiece on parallel data and write a Marian or T5 tokenizer folder",
        description="Trains SentencePiece on the source and target sides of the training files and writes "
        "the files Westron's and Hugging Face's tokenizers load; prints the ids the model config needs.",
    )
    train.add_argument("--model-type", choices=("marian", "t5"), required=True)
    train.add_argument(
        "--train-file", action="append", required=True, metavar="FILE",
        help="JSON lines ({\"translation\": {\"en\": ..., \"es\": ...}}) TSV/CSV with columns named after the languages, a Moses pair, ... (any format westron data prepare reads; repeatable)",
    )  # fmt: skip
    train.add_argument("--source-lang", required=True)
    train.add_argument("--target-lang", required=True)
    train.add_argument("--vocab-size", type=positive_int, default=8000, help="pieces per SentencePiece model (default: 8000)")
    train.add_argument("--model-kind", choices=("unigram", "bpe"), default="unigram", help="SentencePiece algorithm")
    sharing = train.add_mutually_exclusive_group()
    sharing.add_argument("--joint", dest="joint", action="store_true", default=True, help="one model for both languages (default)")
    sharing.add_argument("--separate", dest="joint", action="store_false", help="Marian: one model per language, one shared vocab.json")
    train.add_argument("--character-coverage", type=float, default=1.0, help="share of characters covered (default: 1.0)")
    train.add_argument("--user-defined-symbols", default="", help="comma-separated pieces kept whole, e.g. '>>heb<<,>>jpn<<'")
    train.add_argument("--extra-ids", type=int, default=None, help="T5: sentinel tokens <extra_id_N> (default: 100)")
    train.add_argument("--input-sentence-size", type=positive_int, default=1_000_000, help="sentences sampled for training")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--num-threads", type=positive_int, default=1, help="trainer threads (default: 1)")
    train.add_argument("-o", "--output", required=True, help="tokenizer folder (replaced as a whole)")
    train.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> None:
    from westron.data.tokenizer_training import train_tokenizer

    trained = train_tokenizer(
        args.model_type,
        args.train_file,
        args.source_lang,
        args.target_lang,
        args.output,
        vocab_size=args.vocab_size,
        model_kind=args.model_kind,
        joint=args.joint,
        character_coverage=args.character_coverage,
        user_defined_symbols=[symbol.strip() for symbol in args.user_defined_symbols.split(",")],
        extra_ids=args.extra_ids,
        input_sentence_size=args.input_sentence_size,
        seed=args.seed,
        num_threads=args.num_threads,
    )
    ids = ", ".join(f"{key}={value}" for key, value in trained.config_ids.items())
    print(f"{trained.model_type} tokenizer -> {trained.folder}; model config: {ids}", file=sys.stderr)
