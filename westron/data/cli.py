"""The `westron data ...` commands.

    westron data prepare --input F [--input F2 ...] --source-lang en --target-lang es -o DIR

`add_data_commands(commands)` adds the `data` group to the top-level parser; each subcommand is
added by its own `add_X_command(data_commands)` and sets `run=` to the function that runs it, so
`westron.cli.main` needs no entry per subcommand.
"""

from __future__ import annotations

import argparse
import itertools
import sys

from westron.errors import WestronError


def add_data_commands(commands) -> argparse._SubParsersAction:
    """Adds `westron data` and its subcommands; returns the group's subparsers."""
    from westron.data.gettext_cli import add_gettext_command

    data = commands.add_parser("data", help="build and prepare parallel corpora for training")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    add_prepare_command(data_commands)
    add_gettext_command(data_commands)
    return data_commands


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be in [0, 1)")
    return value


def add_prepare_command(data_commands) -> None:
    from westron.cli import positive_int
    from westron.data.readers import FORMATS

    prepare = data_commands.add_parser(
        "prepare",
        help="clean a parallel corpus and split it into train/validation/test JSON lines",
        description=(
            "Reads pairs (JSON lines, TSV, CSV, a Moses file pair or a Hugging Face dataset), normalises "
            "them (NFC, whitespace), drops empty, over-long, length-ratio-outlier and duplicate-source pairs "
            "(the first pair with a source is kept), and splits them by a hash of the source."
        ),
    )
    prepare.add_argument("--input", action="append", required=True, help="corpus file, Moses prefix, dataset folder or Hub name (repeatable)")
    prepare.add_argument("--input-format", choices=FORMATS, default=None, help="default: guessed from the file name")
    prepare.add_argument("--source-lang", required=True)
    prepare.add_argument("--target-lang", required=True)
    prepare.add_argument("-o", "--output-dir", required=True, help="folder for train/validation/test.jsonl and summary.json")
    prepare.add_argument("--max-length", type=positive_int, default=None, help="drop pairs with a side longer than N characters")
    prepare.add_argument("--max-length-ratio", type=float, default=None, help="drop pairs whose longer side has more than R times the characters of the shorter")
    prepare.add_argument("--validation-fraction", type=fraction, default=0.05)
    prepare.add_argument("--test-fraction", type=fraction, default=0.05)
    prepare.add_argument("--seed", type=int, default=0, help="seed of the hash split")
    prepare.add_argument("--on-error", choices=("fail", "skip"), default="fail", help="malformed records: stop (default) or skip and count")
    prepare.add_argument("--source-column", default=None, help="TSV/CSV: the source column's header name or 0-based index")
    prepare.add_argument("--target-column", default=None, help="TSV/CSV: the target column's header name or 0-based index")
    prepare.add_argument("--hf-config", default=None, help="Hugging Face Hub datasets: the configuration (e.g. en-es)")
    prepare.add_argument("--hf-split", default=None, help="Hugging Face datasets: the split to read (default: train)")
    prepare.set_defaults(run=run_prepare)


def run_prepare(args: argparse.Namespace) -> None:
    from westron.data.prepare import prepare
    from westron.data.readers import ReadStats, read_pairs

    if args.max_length_ratio is not None and not args.max_length_ratio >= 1:  # NaN too
        raise WestronError(f"--max-length-ratio must be at least 1, not {args.max_length_ratio}")
    stats = ReadStats()
    options = {
        "source_column": args.source_column,
        "target_column": args.target_column,
        "hf_config": args.hf_config,
        "split": args.hf_split,
    }
    options = {key: value for key, value in options.items() if value is not None}
    readers = [
        read_pairs(path, args.source_lang, args.target_lang, format=args.input_format, on_error=args.on_error, stats=stats, **options)
        for path in args.input
    ]
    with progress_bar() as bar:
        pairs = (bar.update(1) or pair for pair in itertools.chain.from_iterable(readers))
        summary = prepare(
            pairs,
            args.output_dir,
            args.source_lang,
            args.target_lang,
            max_length=args.max_length,
            max_length_ratio=args.max_length_ratio,
            validation_fraction=args.validation_fraction,
            test_fraction=args.test_fraction,
            seed=args.seed,
            read_stats=stats,
        )
    for line in summary.lines():
        print(line)
    print(f"wrote {args.output_dir}/{{train,validation,test}}.jsonl and summary.json")


def progress_bar():
    from tqdm import tqdm

    return tqdm(unit=" pairs", file=sys.stderr, disable=not sys.stderr.isatty(), dynamic_ncols=True)
