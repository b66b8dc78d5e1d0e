#!/usr/bin/env python
"""`westron translate` on a real file: length-sorted batches against input order, and memory.

Builds a --lines file of English messages from this machine's gettext catalogs (the msgids of
/usr/share/locale/*/LC_MESSAGES/*.mo, one-line ones, first seen first, an empty line every 100th
line) unless --input names a file, then runs `westron translate` on it in its own process:
sorted by length within each window (the default) and with --no-sort, and sorted on the first
tenth of the file, to show that peak memory does not grow with the file. Each run's summary line
(stderr) gives sentences/s, generated tokens/s and peak RSS; the script checks that every output
has the input's line count, empty lines where the input has them, and that sorted and unsorted
outputs are identical.

    .venv/bin/westron demo --folder demo-model                      # any checkpoint will do
    .venv/bin/python benchmarks/translate_file.py --model demo-model
    .venv/bin/python benchmarks/translate_file.py --model path/to/opus-mt-en-de --lines 10000 --num-beams 4
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SUMMARY = re.compile(
    r"translated (\d+) lines \((\d+) non-empty\) in ([\d.]+) s: ([\d.]+) sentences/s, ([\d.]+) tokens/s, peak RSS (\d+) MiB, CPU ([\d.]+) s"
)


def catalog_lines(count: int) -> list[str]:
    import polib

    seen: set[str] = set()
    lines: list[str] = []
    for path in sorted(glob.glob("/usr/share/locale/*/LC_MESSAGES/*.mo")):
        try:
            entries = polib.mofile(path)
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        for entry in entries:
            text = " ".join(entry.msgid.split())
            if text and "\n" not in entry.msgid and text not in seen:
                seen.add(text)
                lines.append(text)
                if len(lines) % 100 == 99:
                    lines.append("")
                if len(lines) >= count:
                    return lines
    raise SystemExit(f"only {len(lines)} catalog messages on this machine; pass --input FILE")


def translate(args, source: str, output: str, *options: str) -> dict:
    command = [sys.executable, "-m", "westron", "translate", "--model", args.model, "--framework", args.framework]
    command += ["--batch-size", str(args.batch_size), "--max-new-tokens", str(args.max_new_tokens)]
    if args.num_beams:
        command += ["--num-beams", str(args.num_beams)]
    command += ["-i", source, "-o", output, *options]
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    match = SUMMARY.search(done.stderr)
    if done.returncode != 0 or not match:
        raise SystemExit(f"westron translate failed:\n{done.stderr[-3000:]}")
    lines, sentences, seconds, per_s, tokens_per_s, rss, cpu = match.groups()
    return dict(lines=int(lines), seconds=float(seconds), sentences_per_s=float(per_s), tokens_per_s=float(tokens_per_s),
                rss=int(rss), cpu=float(cpu), sentences_per_cpu_s=int(sentences) / max(float(cpu), 1e-9))


def read(path: str) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return handle.read().split("\n")[:-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", default=None, help="translate this file (default: built from gettext catalogs)")
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--framework", choices=("pt", "tf"), default="pt")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--num-beams", type=int, default=None)
    parser.add_argument("--work-dir", default=os.path.join(HERE, ".cache", "translate_file"))
    args = parser.parse_args()

    os.makedirs(args.work_dir, exist_ok=True)
    source = args.input
    if source is None:
        source = os.path.join(args.work_dir, "input.txt")
        with open(source, "w", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in catalog_lines(args.lines))
    inputs = read(source)
    tenth = os.path.join(args.work_dir, "input-tenth.txt")
    with open(tenth, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in inputs[: max(1, len(inputs) // 10)])

    runs = {
        "sorted": translate(args, source, os.path.join(args.work_dir, "sorted.txt")),
        "unsorted (--no-sort)": translate(args, source, os.path.join(args.work_dir, "unsorted.txt"), "--no-sort"),
        "sorted, first tenth": translate(args, tenth, os.path.join(args.work_dir, "tenth.txt")),
    }
    sorted_lines = read(os.path.join(args.work_dir, "sorted.txt"))
    unsorted_lines = read(os.path.join(args.work_dir, "unsorted.txt"))
    for name, lines in (("sorted", sorted_lines), ("unsorted", unsorted_lines)):
        assert len(lines) == len(inputs), f"{name}: {len(lines)} output lines for {len(inputs)} input lines"
        # An empty input line gives an empty output line (a sentence may translate to "" too).
        assert all(not line for line, text in zip(lines, inputs) if not text.strip()), f"{name}: empty lines moved"
    differing = sum(a != b for a, b in zip(sorted_lines, unsorted_lines))

    print(f"\ninput: {source}, {len(inputs)} lines ({sum(not t.strip() for t in inputs)} empty); model {args.model}, "
          f"{args.framework}, batch {args.batch_size}, max {args.max_new_tokens} new tokens, beams {args.num_beams or 'model default'}\n")
    print("| run | lines | seconds | sentences/s | tokens/s | CPU s | sentences per CPU s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, run in runs.items():
        print(f"| {name} | {run['lines']} | {run['seconds']:.1f} | {run['sentences_per_s']:.1f} | {run['tokens_per_s']:.0f} "
              f"| {run['cpu']:.1f} | {run['sentences_per_cpu_s']:.1f} | {run['rss']} |")
    speedup = runs["sorted"]["sentences_per_s"] / runs["unsorted (--no-sort)"]["sentences_per_s"]
    cpu_ratio = runs["unsorted (--no-sort)"]["cpu"] / runs["sorted"]["cpu"]
    print(f"\nsorted / unsorted: {speedup:.2f}x by the clock, {cpu_ratio:.2f}x by CPU seconds; line counts and empty lines kept; "
          f"sorted and unsorted outputs differ on {differing} of {len(inputs)} lines")


if __name__ == "__main__":
    main()
