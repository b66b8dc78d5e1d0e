"""`westron data gettext`: the parallel corpus of the gettext catalogs installed on the machine."""

from __future__ import annotations

import argparse
import os
import sys


def add_gettext_command(data_commands) -> None:
    """Registers `gettext` under the `westron data` command group."""
    from westron.cli import positive_int

    command = data_commands.add_parser(
        "gettext",
        help="build a parallel corpus from the gettext catalogs of the installed software",
        description="Pairs the English msgids of gettext catalogs (.mo/.po) with their translations and "
        "writes train/validation/test.jsonl and summary.json. Several target languages "
        "(--target-lang es,he,ja) give one folder per pair: DIR/en-es, DIR/en-he, ...",
    )
    command.add_argument("--source-lang", default="en", help="the msgid language: en (gettext convention)")
    command.add_argument("--target-lang", required=True, help="es, pt_BR, or a comma-separated list: es,he,ja")
    command.add_argument("-o", "--output", required=True, help="output folder (its corpus files swapped in together; other files kept)")
    command.add_argument(
        "--split",
        choices=("by-catalog", "random"),
        default="by-catalog",
        help="by-catalog (default): hold out whole catalogs for validation and test; random: hash each sentence",
    )
    command.add_argument("--validation-fraction", type=float, default=0.1, help="default: 0.1")
    command.add_argument("--test-fraction", type=float, default=0.1, help="default: 0.1")
    command.add_argument("--seed", type=int, default=0, help="changes which catalogs or sentences are held out")
    command.add_argument(
        "--catalogs", action="append", default=[], metavar="PATH", help="extra .po/.mo files or folders (repeatable)"
    )
    command.add_argument(
        "--search-path",
        action="append",
        default=None,
        metavar="DIR",
        help="search DIR for <locale>/LC_MESSAGES catalogs instead of the defaults (repeatable; default: "
        "$WESTRON_GETTEXT_PATH, else /usr/share/locale, /usr/local/share/locale and Python's site-packages)",
    )
    command.add_argument("--max-chars", type=positive_int, default=1000, help="longest kept text (default: 1000)")
    command.set_defaults(run=run_gettext)


def run_gettext(args: argparse.Namespace) -> None:
    from westron.data.gettext import build_gettext_corpora, build_gettext_corpus

    targets = [language.strip() for language in args.target_lang.split(",") if language.strip()]
    options = dict(
        catalogs=args.catalogs,
        search_paths=args.search_path,
        split=args.split,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        max_chars=args.max_chars,
    )
    if len(targets) == 1:
        summaries = {targets[0]: build_gettext_corpus(args.source_lang, targets[0], args.output, **options)}
        folders = {targets[0]: args.output}
    else:
        summaries = build_gettext_corpora(args.source_lang, targets, args.output, **options)
        folders = {target: os.path.join(args.output, f"{args.source_lang}-{target}") for target in targets}
    for target, summary in summaries.items():
        pairs, catalogs = summary["pairs"], summary["catalogs_per_split"]
        counts = ", ".join(f"{name} {pairs[name]} ({len(catalogs[name])} catalogs)" for name in pairs)
        print(f"{summary['source_lang']}-{target}: {counts} -> {folders[target]}", file=sys.stderr)
