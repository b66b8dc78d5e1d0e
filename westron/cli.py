"""The `westron` command.

    westron quickstart [--pairs en-es,en-he] [--budget-minutes 5] [--output-dir westron-quickstart]
    westron translate --model PATH [--framework pt|tf] [--device cpu|cuda:N|gpu:N] [-i FILE] [-o FILE]
        (a summary line with sentences/s, tokens/s and peak memory goes to stderr at the end)
    westron train --model PATH | --config PRESET --tokenizer DIR --train-file F --source-lang en --target-lang es --output-dir DIR
    westron evaluate --model PATH --test-file FILE --source-lang en --target-lang es [-o FILE] [--output-json FILE]
    westron demo
    westron attention --model PATH --source TEXT [--target TEXT] [--framework pt|tf|both] -o DIR   (westron/attention_cli.py)
    westron data prepare --input F --source-lang en --target-lang es -o DIR   (westron/data/cli.py)
    westron data gettext --target-lang es -o DIR
    westron tokenizer train --model-type marian --train-file F --source-lang en --target-lang es -o DIR
    westron compare --model DIR --test-file F --source-lang en --target-lang es -o OUT   (westron/compare/cli.py)
    westron report OUT/results.json

User mistakes (a missing folder, bad UTF-8, an unknown device) print one line,
`westron: error: ...`, and exit with status 2; no traceback, no partial output file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import sys
import time
import warnings
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from westron.errors import Terminated, WestronError

EXIT_USER_ERROR = 2
# Lines read ahead and sorted by length, so each batch holds sentences of similar length
# (less padding); the window bounds memory for any input size.
WINDOW_BATCHES = 16


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


class ArgumentMistake(WestronError):
    """A flag argparse refused (a bad number, an unknown choice, a missing required flag)."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are one `westron: error: ...` line, not a usage dump.

    Subcommand parsers are of this class too (add_subparsers makes its parent's class); --help
    still prints the full help.
    """

    def error(self, message: str):
        raise ArgumentMistake(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    from westron import __version__

    parser = OneLineArgumentParser(prog="westron", description="Neural machine translation in PyTorch and TensorFlow.")
    parser.add_argument("--version", action="version", version=f"westron {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    translate = commands.add_parser("translate", help="translate lines of text with a seq2seq checkpoint")
    translate.add_argument("--model", required=True, help="checkpoint folder or Hugging Face Hub repo id")
    translate.add_argument("--framework", choices=("pt", "tf"), default=None, help="default: pt if installed, else tf")
    translate.add_argument("--device", default=None, help="cpu, cuda, cuda:N (PyTorch) or gpu, gpu:N (TensorFlow)")
    translate.add_argument("--num-beams", type=positive_int, default=None, help="beam size (default: the model's)")
    translate.add_argument("--batch-size", type=positive_int, default=32)
    translate.add_argument(
        "--window-size", type=positive_int, default=None,
        help=f"lines read ahead and sorted by length, so batches hold similar lengths (default: {WINDOW_BATCHES} batches)",
    )
    translate.add_argument("--no-sort", action="store_true", help="translate in input order, without sorting by length")
    translate.add_argument("--max-new-tokens", type=positive_int, default=None)
    translate.add_argument("-i", "--input", default=None, help="input file, one sentence a line (default, or -: stdin)")
    translate.add_argument("-o", "--output", default=None, help="output file, written atomically (default, or -: stdout)")
    translate.add_argument("--src-lang", default=None, help="source language (M2M100/NLLB codes; T5: picks the task prefix)")
    translate.add_argument("--tgt-lang", default=None, help="target language (required by M2M100/NLLB)")
    translate.add_argument("--source-prefix", default=None, help='text put before every source (T5: "translate English to German: ")')
    translate.add_argument("--no-truncate", action="store_true", help="refuse inputs longer than the model's limit")
    translate.add_argument("--allow-pickle", action="store_true", help="load pytorch_model.bin pickles (trusted sources only)")
    translate.add_argument("--eager", action="store_true", help="TensorFlow: run generation eagerly (debugging)")
    translate.add_argument("--quantize", default=None, metavar="METHOD", help="int8: int8 matrix products (CPU inference; see docs/benchmarks.md)")

    from westron.evaluation_cli import add_evaluate_command

    add_evaluate_command(commands)

    from westron.attention_cli import add_attention_command

    add_attention_command(commands)

    demo = commands.add_parser("demo", help="build a tiny demo checkpoint and translate a few lines with it")
    demo.add_argument("--folder", default="demo-model", help="where to write the demo checkpoint")
    demo.add_argument("--framework", choices=("pt", "tf"), default=None)

    from westron.data.cli import add_data_commands
    from westron.data.tokenizer_cli import add_tokenizer_commands

    add_data_commands(commands)
    add_tokenizer_commands(commands)

    from westron.compare.cli import add_compare_command
    from westron.quickstart import add_quickstart_command
    from westron.training.cli import add_train_command

    add_train_command(commands)
    add_quickstart_command(commands)
    add_compare_command(commands)
    return parser


# ---- input -----------------------------------------------------------------------------------------


def read_lines(stream: BinaryIO, name: str) -> Iterator[str]:
    """Yields lines without their line ending (nor a first line's byte-order mark, as the corpus readers
    drop it); invalid UTF-8 is an error naming the line."""
    for number, raw in enumerate(stream, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise WestronError(f"{name}: line {number} is not valid UTF-8 ({error.reason} at byte {error.start})") from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text.rstrip("\r\n")


def windows(lines: Iterator[str], size: int) -> Iterator[list[str]]:
    window: list[str] = []
    for line in lines:
        window.append(line)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


@contextlib.contextmanager
def open_input(path: str | None):
    """The input stream: the file, or stdin for no -i or `-i -` (as `-o -` is stdout)."""
    if path is None or path == "-":
        if sys.stdin is None:  # started with descriptor 0 closed (`<&-`, some daemons)
            raise WestronError("standard input is closed: give the input file with -i FILE")
        yield sys.stdin.buffer, "<stdin>"
        return
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise WestronError(f"cannot read input file {path}: {error.strerror}") from None
    with handle:
        yield handle, path


@contextlib.contextmanager
def open_output(path: str | None):
    """The output stream. A regular file (new or existing) is written atomically: a temporary file
    renamed over it at the end, so a failed run leaves the old file. Stdout (`-` or no -o), a
    device (`/dev/null`) or a FIFO is written in place: renaming over it would replace the device.
    A write that fails (a full disk, a read-only file system) is one WestronError line."""
    if path is None or path == "-":
        if sys.stdout is None:  # started with descriptor 1 closed (`>&-`)
            raise WestronError("standard output is closed: give the output file with -o FILE")
        with write_errors_reported("standard output"):
            yield sys.stdout
        return
    from westron.file_utils import atomic_write

    if os.path.isdir(path):
        raise WestronError(f"cannot write {path}: it is a folder")
    if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
        with write_errors_reported(path):
            with open(path, "w", encoding="utf-8") as handle:
                yield handle
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise WestronError(f"cannot write {path}: folder {directory} does not exist")
    with write_errors_reported(path):
        with atomic_write(os.path.realpath(path)) as handle:  # a symbolic link is written through, not replaced
            yield handle


@contextlib.contextmanager
def write_errors_reported(name: str):
    """Turns an OSError while opening or writing the output into one line (the temp file is gone by then)."""
    try:
        yield
    except (BrokenPipeError, WestronError):  # (a CheckpointError is an OSError too)
        raise
    except OSError as error:
        if name == "standard output":
            silence_stdout()  # the interpreter's final flush would fail again
        raise WestronError(f"cannot write {name}: {error.strerror or error}") from None


def silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stdout = open(os.devnull, "w")


def refuse_output_over_input(input_path: str | None, output_path: str | None, flag: str = "-o") -> None:
    """-o naming the -i file (by inode: `./a`, `a` or a link) would overwrite the source while reading it."""
    if input_path in (None, "-") or output_path in (None, "-"):
        return
    with contextlib.suppress(OSError):
        if os.path.samefile(input_path, output_path) and stat.S_ISREG(os.stat(input_path).st_mode):
            raise WestronError(f"output {output_path} is the input file {input_path}: choose another {flag}")


def reader_gone(stream: TextIO) -> bool:
    """True when `stream` is a pipe whose reader has exited (`| head -1`): stop before translating more."""
    import select

    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLERR)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # not a real file (an in-memory stream)
        return False


# ---- translate -------------------------------------------------------------------------------------


class TranslationStats:
    """What the closing summary line reports, counted as the run goes (nothing kept per line)."""

    def __init__(self):
        self.started = time.perf_counter()
        self.started_cpu = time.process_time()
        self.lines = 0
        self.sentences = 0  # non-empty lines: the ones the model translates
        self.generated_tokens = 0  # per sentence: new tokens up to and including its eos

    def count_batch(self, output_ids, eos_token_ids: list[int]) -> None:
        """Adds one batch of `generate` output (rows, length): each row starts with the decoder start token."""
        import numpy as np

        new_ids = np.asarray(output_ids)[:, 1:]
        is_eos = np.isin(new_ids, eos_token_ids)
        lengths = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1) + 1, new_ids.shape[1])
        self.sentences += len(new_ids)
        self.generated_tokens += int(lengths.sum())

    def summary(self) -> str:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        line = (
            f"westron: translated {self.lines} lines ({self.sentences} non-empty) in {seconds:.1f} s: "
            f"{self.sentences / seconds:.2f} sentences/s, {self.generated_tokens / seconds:.1f} tokens/s"
        )
        peak = peak_rss_mib()
        line += f", peak RSS {peak:.0f} MiB" if peak is not None else ""
        # CPU seconds (all threads): on a shared machine they say more about the work than the clock.
        return line + f", CPU {time.process_time() - self.started_cpu:.1f} s"


def peak_rss_mib() -> float | None:
    """This process's peak resident memory so far, or None where the OS does not say (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def eos_token_ids(translator) -> list[int]:
    eos = getattr(translator.model.generation_config, "eos_token_id", None)
    return [token for token in (eos if isinstance(eos, list) else [eos]) if token is not None]


def translate_window(
    translator, window: list[str], first_line: int, batch_size: int, generate_kwargs, out=None, sort: bool = True,
    stats: TranslationStats | None = None,
) -> list[str]:
    """Translates one window; empty lines stay empty; order is restored after sorting by length.

    Stops with BrokenPipeError as soon as `out` is a pipe nobody reads any more.
    """
    from westron.pipelines import InputTooLongError

    outputs = [""] * len(window)
    order = [i for i, line in enumerate(window) if line.strip()]
    if sort:
        order.sort(key=lambda i: len(window[i]), reverse=True)
    for start in range(0, len(order), batch_size):
        if out is not None and reader_gone(out):
            raise BrokenPipeError("the output's reader has exited")
        batch = order[start : start + batch_size]
        try:
            output_ids = translator.generate_batch([window[i] for i in batch], **generate_kwargs)
        except InputTooLongError as error:
            line = first_line + batch[error.index]
            raise WestronError(f"line {line}: {error} (drop --no-truncate to truncate it)") from None
        if stats is not None:
            stats.count_batch(output_ids, eos_token_ids(translator))
        for i, text in zip(batch, translator.decode_batch(output_ids)):
            outputs[i] = as_one_line(text)
    if stats is not None:
        stats.lines += len(window)
    return outputs


def as_one_line(text: str) -> str:
    """A translation as one output line: a line break the vocabulary decodes to becomes a blank, so the
    output keeps the input's line count."""
    return " ".join(text.splitlines())


@contextlib.contextmanager
def native_stderr_silenced():
    """Sends file descriptor 2 to /dev/null for a moment.

    TensorFlow's C++ start-up notices (oneDNN, absl) are written straight to descriptor 2 while it
    is imported, past TF_CPP_MIN_LOG_LEVEL; a user of the CLI should see Westron's lines only.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced by an in-memory stream
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up notices kept off the terminal and its Python logger
    at ERROR (it warns about retracing, which bucketed compiled generation does by design)."""
    with native_stderr_silenced():
        import tensorflow as tf

    tf.get_logger().setLevel("ERROR")


def run_translate(args: argparse.Namespace) -> None:
    from westron.pipelines import TranslationPipeline, default_framework

    if (args.framework or default_framework()) == "tf":
        import_tensorflow_quietly()

    generate_kwargs = {}
    if args.num_beams is not None:
        generate_kwargs["num_beams"] = args.num_beams
    if args.max_new_tokens is not None:
        generate_kwargs["max_new_tokens"] = args.max_new_tokens
    if args.eager:
        if args.framework == "pt":
            raise WestronError("--eager applies to TensorFlow only (PyTorch always runs eagerly)")
        generate_kwargs["eager"] = True

    refuse_output_over_input(args.input, args.output)
    model_kwargs = quantization_kwargs(args.quantize)
    with open_input(args.input) as (stream, name):
        translator = TranslationPipeline(
            args.model,
            framework=args.framework,
            device=args.device,
            truncation=not args.no_truncate,
            allow_pickle=args.allow_pickle,
            src_lang=args.src_lang,
            tgt_lang=args.tgt_lang,
            source_prefix=args.source_prefix,
            model_kwargs=model_kwargs,
        )
        refuse_ignored_languages(translator, args.src_lang, args.tgt_lang)
        if args.eager and translator.framework != "tf":
            raise WestronError("--eager applies to TensorFlow only (PyTorch always runs eagerly)")
        window_size = args.window_size or args.batch_size * WINDOW_BATCHES
        stats = TranslationStats()
        with open_output(args.output) as out, progress_bar() as bar:
            first_line = 1
            for window in windows(read_lines(stream, name), window_size):
                texts = translate_window(
                    translator, window, first_line, args.batch_size, generate_kwargs, out, sort=not args.no_sort, stats=stats
                )
                for text in texts:
                    out.write(text + "\n")
                out.flush()
                first_line += len(window)
                bar.update(len(window))
    print(stats.summary(), file=sys.stderr)


def quantization_kwargs(method: str | None) -> dict:
    """from_pretrained's keywords for --quantize METHOD, checked before any model is loaded."""
    from westron.loading import QUANTIZATION_METHODS

    if method is None:
        return {}
    if method not in QUANTIZATION_METHODS:
        raise WestronError(f"--quantize {method}: unknown method (use {', '.join(QUANTIZATION_METHODS)})")
    return {"quantization": method}


def refuse_ignored_languages(translator, src_lang: str | None, tgt_lang: str | None) -> None:
    """--src-lang / --tgt-lang that the model has no use for: an error, not a silent untranslated run."""
    if not (src_lang or tgt_lang) or translator.languages_applied:
        return
    given = " and ".join(flag for flag, value in (("--src-lang", src_lang), ("--tgt-lang", tgt_lang)) if value)
    if translator.source_prefix:
        raise WestronError(f"{given}: a T5 task prefix is picked by the languages or given by --source-prefix: use one or the other")
    raise WestronError(
        f"{given}: this model takes no language codes (a Marian model translates one direction; a T5 model needs "
        "translation_XX_to_YY entries in its config's task_specific_params): leave them out, or give --source-prefix "
        "(multi-target opus-mt models: --source-prefix '>>fra<< ')"
    )


def progress_bar():
    from tqdm import tqdm

    return tqdm(unit=" lines", file=sys.stderr, disable=not sys.stderr.isatty(), dynamic_ncols=True)


def run_demo(args: argparse.Namespace) -> None:
    import importlib.util

    from westron.demo import run_demo as demo

    if args.framework != "pt" and importlib.util.find_spec("tensorflow") is not None:
        import_tensorflow_quietly()
    demo(args.folder, framework=args.framework)


# ---- entry point -----------------------------------------------------------------------------------


def one_line_warnings():
    """A showwarning that prints each distinct warning once, as one `westron: warning:` line."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if str(message) not in shown:
            shown.add(str(message))
            print(f"westron: warning: {message}", file=sys.stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter is not for users
    try:
        args = build_parser().parse_args(argv)
    except ArgumentMistake as error:
        print(f"westron: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed: model cards and logs record the command
    try:
        with warnings.catch_warnings(), termination_as_exception():  # restores the caller's warning settings (main() may be called in-process)
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = one_line_warnings()
            if args.command == "translate":
                run_translate(args)
            elif args.command == "evaluate":
                from westron.evaluation_cli import run_evaluate

                run_evaluate(args)
            elif args.command == "demo":
                run_demo(args)
            else:
                args.run(args)  # command groups (westron data ..., westron tokenizer ...) name their runner with set_defaults(run=...)
    except WestronError as error:
        print(f"westron: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("westron: interrupted", file=sys.stderr)
        return 130
    except Terminated as signal_received:
        print(f"westron: stopped by {signal.Signals(signal_received.signum).name}", file=sys.stderr)
        return 128 + signal_received.signum
    except BrokenPipeError:
        # The reader went away (`westron translate ... | head`): not an error worth a traceback.
        silence_stdout()
        return 1
    return 0


@contextlib.contextmanager
def termination_as_exception():
    """Raises Terminated on SIGTERM / SIGHUP for the duration (main thread only; restored after)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signum)

    signals = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, old_handler in previous.items():
            signal.signal(signum, old_handler)


if __name__ == "__main__":
    sys.exit(main())
