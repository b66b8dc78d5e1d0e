"""Running the `westron` command in-process, and checking that a mistake is one clear line."""

from __future__ import annotations

import io
import sys


def run_cli(argv, monkeypatch, stdin_bytes: bytes = b""):
    """westron's main() in-process with `stdin_bytes` as its input: (exit code, stdout, stderr)."""
    from westron.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin_bytes), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    code = main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


def assert_one_line_error(code, stderr: str, *fragments: str) -> None:
    """Exit status 2 and one `westron: error: ...` line (warnings aside) holding every fragment."""
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("westron: warning:")]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("westron: error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
