"""`westron attention`: one sentence's attention maps as PNG grids, an interactive HTML view and .npz arrays.

    westron attention --model DIR --source "you are right, Moria is to the right" [--target "..."]
                      [--framework pt|tf|both] [--layers 0,2-3,-1] [--heads 0-3] -o DIR

Without --target the model translates the source first and the maps are those of its own
translation. `--framework both` runs the PyTorch and the TensorFlow twin on the same tokens
(TensorFlow is forced on PyTorch's translation), draws them side by side and prints the largest
difference between their weights.
"""

from __future__ import annotations

import argparse
import re

from westron.errors import WestronError

OUTPUT_MARKER = "attention.html"  # a folder holding it was written by this command and may be replaced


def index_list(text: str) -> list[int] | None:
    """'all' -> None; '0,2-3,-1' -> [0, 2, 3, -1] (negative indices count from the last layer/head)."""
    if text.strip().lower() == "all":
        return None
    indices: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if re.fullmatch(r"-?\d+", part):
            indices.append(int(part))
        elif match := re.fullmatch(r"(\d+)-(\d+)", part):
            first, last = int(match.group(1)), int(match.group(2))
            if last < first:
                raise argparse.ArgumentTypeError(f"range {part} is empty (write it low-high)")
            indices.extend(range(first, last + 1))
        else:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list of indices like 0,2-3,-1 (or 'all')")
    return indices


def add_attention_command(commands) -> None:
    """Adds the `attention` subcommand to the `westron` command's subparsers."""
    from westron.cli import positive_int

    attention = commands.add_parser("attention", help="draw a sentence's attention maps (PNG, HTML, .npz)")
    attention.add_argument("--model", required=True, help="checkpoint folder or Hugging Face Hub repo id")
    attention.add_argument("--source", required=True, help="the source sentence")
    attention.add_argument("--target", default=None, help="the translation to force (default: the model's own)")
    attention.add_argument("--framework", choices=("pt", "tf", "both"), default=None, help="default: pt if installed, else tf")
    attention.add_argument("--layers", type=index_list, default=None, help="layers to draw: 0,2-3,-1 or all (default: all)")
    attention.add_argument("--heads", type=index_list, default=None, help="heads to draw: 0-3 or all (default: all)")
    attention.add_argument("--src-lang", default=None, help="source language (M2M100/NLLB codes; T5: picks the task prefix)")
    attention.add_argument("--tgt-lang", default=None, help="target language (required by M2M100/NLLB)")
    attention.add_argument("--source-prefix", default=None, help='text put before the source (T5: "translate English to German: ")')
    attention.add_argument("--num-beams", type=positive_int, default=None, help="beam size of the model's own translation")
    attention.add_argument("--max-new-tokens", type=positive_int, default=None, help="length limit of the model's own translation")
    attention.add_argument("--allow-pickle", action="store_true", help="load pytorch_model.bin pickles (trusted sources only)")
    attention.add_argument("-o", "--output", required=True, help="output folder (created, or replaced if an earlier run wrote it)")
    attention.set_defaults(run=run_attention)


def run_attention(args: argparse.Namespace) -> None:
    from westron.attention_maps import attention, max_difference
    from westron.attention_render import write_attention_outputs
    from westron.cli import import_tensorflow_quietly
    from westron.file_utils import atomic_directory, check_replaceable_folder
    from westron.pipelines import default_framework

    check_replaceable_folder(args.output, OUTPUT_MARKER)
    if args.target is not None and (args.num_beams is not None or args.max_new_tokens is not None):
        raise WestronError("--num-beams and --max-new-tokens shape the model's own translation: leave them out with --target")
    frameworks = ["pt", "tf"] if args.framework == "both" else [args.framework or default_framework()]
    if "tf" in frameworks:
        import_tensorflow_quietly()

    generate_kwargs = {}
    if args.num_beams is not None:
        generate_kwargs["num_beams"] = args.num_beams
    if args.max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = args.max_new_tokens
    tokenizer = _load_tokenizer(args.model)
    maps_list = []
    for framework in frameworks:
        model = _load_model(args.model, framework, args.allow_pickle)
        first = maps_list[0] if maps_list else None
        if first is None:
            _refuse_ignored_languages(model, tokenizer, args)
        maps = attention(
            model, tokenizer, args.source,
            target=args.target if first is None else None,
            target_ids=None if first is None else first.target_ids,  # the second framework reads the same tokens
            src_lang=args.src_lang, tgt_lang=args.tgt_lang, source_prefix=args.source_prefix,
            **(generate_kwargs if first is None else {}),
        )  # fmt: skip
        if first is not None:
            maps.target = first.target
        maps_list.append(maps.select(args.layers, args.heads))

    with atomic_directory(args.output) as folder:
        write_attention_outputs(maps_list, folder)
    first = maps_list[0]
    print(f"source: {first.source}")
    print(f"target: {first.target}")
    if len(maps_list) == 2:
        print(f"max |PyTorch - TensorFlow| attention weight difference: {max_difference(*maps_list):.2e}")
    print(f"wrote {args.output}/: attention.html, encoder.png, decoder.png, cross.png, "
          + ", ".join(f"attention_{maps.framework}.npz" for maps in maps_list))


def _refuse_ignored_languages(model, tokenizer, args) -> None:
    """--src-lang / --tgt-lang the model has no use for (Marian): an error, as in `westron translate`."""
    from westron.cli import refuse_ignored_languages
    from westron.pipelines import TranslationPipeline

    if args.src_lang or args.tgt_lang:
        tgt_lang = args.tgt_lang or getattr(tokenizer, "tgt_lang", None)  # as attention() falls back
        translator = TranslationPipeline(model, tokenizer, src_lang=args.src_lang, tgt_lang=tgt_lang, source_prefix=args.source_prefix)
        refuse_ignored_languages(translator, args.src_lang, args.tgt_lang)


def _load_model(path: str, framework: str, allow_pickle: bool):
    from westron.models.auto import AutoModelForSeq2SeqLM, TFAutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if framework == "pt" else TFAutoModelForSeq2SeqLM
    return auto.from_pretrained(path, allow_pickle=allow_pickle)


def _load_tokenizer(path: str):
    from westron.models.auto import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)
