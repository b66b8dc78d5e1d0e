"""A hostile but realistic user: bad inputs get one line and exit 2, output keeps its line count.

Each row of the tables is a mistake a user made (or a broken checkpoint they were handed), with
the fragment the one-line message must contain. CLI cases run `westron.cli.main` in-process;
signals and closed pipes need a real process. See docs/reliability.md for the guarantees.
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest

from tests.cli_utils import assert_one_line_error
from tests.cli_utils import run_cli as run_cli_with_stdin
from westron.cli import main
from westron.errors import WestronError


def run_cli(argv, monkeypatch, stdin_bytes=b"hello\n\nworld\n"):
    """main() in-process with three lines (one empty) on stdin unless told otherwise."""
    return run_cli_with_stdin(argv, monkeypatch, stdin_bytes)


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from westron.demo import build_demo_checkpoint

    return build_demo_checkpoint(str(tmp_path_factory.mktemp("demo") / "model"))


def no_temp_files(folder) -> bool:
    return not [name for name in os.listdir(folder) if name.endswith(".tmp")]


# ---- broken checkpoints: one edit of a good folder each --------------------------------------------


def edit_json(name, **changes):
    def edit(folder):
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        data.update(changes)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(data, handle)

    return edit


def nan_weights(pattern):
    def edit(folder):
        from safetensors.numpy import load_file, save_file

        path = os.path.join(folder, "model.safetensors")
        tensors = load_file(path)
        for name in tensors:
            if pattern in name:
                tensors[name] = np.full_like(tensors[name], np.nan)
        save_file(tensors, path, metadata={"format": "pt"})

    return edit


def truncated_vocab(folder):
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as handle:
        json.dump({"</s>": 0, "<unk>": 1, "<pad>": 2}, handle)


BROKEN_CHECKPOINTS = {
    "d_model as a string": (edit_json("config.json", d_model="64"), "d_model must be a positive integer, got '64'"),
    "negative vocab_size": (edit_json("config.json", vocab_size=-5), "vocab_size must be a positive integer, got -5"),
    "zero vocab_size": (edit_json("config.json", vocab_size=0), "vocab_size must be a positive integer, got 0"),
    "fractional layers": (edit_json("config.json", encoder_layers=1.5), "encoder_layers must be a positive integer"),
    "heads not dividing d_model": (
        edit_json("config.json", decoder_attention_heads=5),
        "decoder_attention_heads must be a divisor of d_model (64)",
    ),
    "dropout out of range": (edit_json("config.json", dropout=2), "dropout must be a number in [0, 1]"),
    "negative pad id": (edit_json("config.json", pad_token_id=-3), "pad_token_id must be a non-negative token id"),
    "boolean as string": (edit_json("config.json", scale_embedding="yes"), "scale_embedding must be true or false"),
    "tiny position table": (
        edit_json("config.json", max_position_embeddings=2),
        "needs 23 decoder positions but the model has max_position_embeddings=2",
    ),
    "num_beams as a word": (edit_json("generation_config.json", num_beams="four"), "num_beams must be an integer >= 1"),
    "generation eos outside vocab": (
        edit_json("generation_config.json", eos_token_id=1000),
        "eos_token_id [1000] lies outside the decoder vocabulary",
    ),
    "all weights NaN": (nan_weights(""), "holds NaN or infinite weights"),
    "one layer NaN": (nan_weights("decoder.layers.1.fc2"), "NaN or infinite weights in model.decoder.layers.1.fc2"),
    "truncated vocab.json": (truncated_vocab, "the tokenizer (3 tokens) has pad_token_id 2 but the model's config.json says"),
}


@pytest.mark.parametrize("framework", ["pt", "tf"])
@pytest.mark.parametrize("case", list(BROKEN_CHECKPOINTS))
def test_broken_checkpoint_is_one_line(case, framework, demo_folder, tmp_path, monkeypatch):
    edit, fragment = BROKEN_CHECKPOINTS[case]
    folder = str(tmp_path / "model")
    shutil.copytree(demo_folder, folder)
    edit(folder)
    code, stdout, stderr = run_cli(["translate", "--model", folder, "--framework", framework], monkeypatch)
    assert_one_line_error(code, stderr, fragment)
    assert stdout == ""


@pytest.mark.parametrize("case", ["d_model as a string", "heads not dividing d_model", "all weights NaN"])
def test_broken_checkpoint_through_the_api(case, demo_folder, tmp_path):
    from westron.models.auto import AutoModelForSeq2SeqLM

    edit, fragment = BROKEN_CHECKPOINTS[case]
    folder = str(tmp_path / "model")
    shutil.copytree(demo_folder, folder)
    edit(folder)
    with pytest.raises(WestronError, match=re.escape(fragment)):
        AutoModelForSeq2SeqLM.from_pretrained(folder)


def test_config_errors_name_the_file(demo_folder, tmp_path, monkeypatch):
    folder = str(tmp_path / "model")
    shutil.copytree(demo_folder, folder)
    edit_json("config.json", d_model="64")(folder)
    code, _, stderr = run_cli(["translate", "--model", folder, "--framework", "pt"], monkeypatch)
    assert_one_line_error(code, stderr, os.path.join(folder, "config.json") + ": d_model")


# ---- CLI mistakes ------------------------------------------------------------------------------------


def cli_cases(tmp_path, demo_folder):
    """(argv, expected fragment) for mistakes that need only paths."""
    source = tmp_path / "in.txt"
    source.write_text("hello\nworld\n", encoding="utf-8")
    (tmp_path / "link.txt").symlink_to(source)
    model = ["translate", "--model", demo_folder, "--framework", "pt", "-i", str(source)]
    return {
        "-o equal to -i": (model + ["-o", str(source)], "is the input file"),
        "-o a link to -i": (model + ["-o", str(tmp_path / "link.txt")], "is the input file"),
        "-o a folder": (model + ["-o", str(tmp_path)], "it is a folder"),
        "-o in a missing folder": (model + ["-o", str(tmp_path / "nope" / "out.txt")], "does not exist"),
        # A private copy of /dev/full (mknod, root only): a broken build must not replace the system's.
        "-o a full device": (model + ["-o", str(tmp_path / "full")], "No space left on device"),
        "--device mps": (model + ["--device", "mps"], "mps"),
        "--device nonsense": (model + ["--device", "tpu:7"], "not"),
        "a typo'd local path": (["translate", "--model", "dir/model", "-i", str(source)], "no folder 'dir/model'"),
    }


CLI_CASES = [
    "-o equal to -i", "-o a link to -i", "-o a folder", "-o in a missing folder", "-o a full device",
    "--device mps", "--device nonsense", "a typo'd local path",
]  # fmt: skip


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_mistake_is_one_line(case, demo_folder, tmp_path, monkeypatch):
    if case == "-o a full device":
        if os.geteuid() != 0:
            pytest.skip("mknod needs root (CI runs as root)")
        os.mknod(tmp_path / "full", 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a second /dev/full
    argv, fragment = cli_cases(tmp_path, demo_folder)[case]
    before = (tmp_path / "in.txt").read_bytes()
    code, _, stderr = run_cli(argv, monkeypatch)
    assert_one_line_error(code, stderr, fragment)
    assert (tmp_path / "in.txt").read_bytes() == before
    assert no_temp_files(tmp_path)


def test_full_stdout_is_one_line(demo_folder, monkeypatch):
    class FullStream(io.StringIO):
        def flush(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hello\n"), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", FullStream())
    monkeypatch.setattr(sys, "stderr", stderr)
    code = main(["translate", "--model", demo_folder, "--framework", "pt", "--max-new-tokens", "2"])
    assert_one_line_error(code, stderr.getvalue(), "cannot write standard output: No space left on device")


def test_read_only_file_system_is_one_line_and_leaves_nothing(demo_folder, tmp_path, monkeypatch):
    import westron.file_utils

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(westron.file_utils.tempfile, "mkstemp", read_only)
    code, _, stderr = run_cli(
        ["translate", "--model", demo_folder, "--framework", "pt", "-o", str(tmp_path / "out.txt")], monkeypatch
    )
    assert_one_line_error(code, stderr, "Read-only file system")
    assert os.listdir(tmp_path) == []


def test_output_onto_a_device_writes_in_place(demo_folder, tmp_path, monkeypatch):
    """`-o /dev/null` must not replace the system's /dev/null by a regular file (a rename would)."""
    if os.geteuid() != 0:
        pytest.skip("mknod needs root (CI runs as root)")
    device = tmp_path / "null"
    os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second /dev/null
    code, _, stderr = run_cli(
        ["translate", "--model", demo_folder, "--framework", "pt", "--max-new-tokens", "2", "-o", str(device)],
        monkeypatch,
    )
    assert code == 0, stderr
    assert stat.S_ISCHR(os.stat(device).st_mode)
    assert no_temp_files(tmp_path)


def test_output_into_a_fifo_writes_in_place(demo_folder, tmp_path, monkeypatch):
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, encoding="utf-8").read()))
    reader.start()
    code, _, stderr = run_cli(
        ["translate", "--model", demo_folder, "--framework", "pt", "--max-new-tokens", "2", "-o", str(fifo)],
        monkeypatch,
    )
    reader.join()
    assert code == 0, stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and received[0].count("\n") == 3


# ---- generation with bad ids: the same message in both frameworks ---------------------------------------

BAD_IDS = {
    "id past the vocabulary": ([[5, 120, 0]], None, "input_ids must be token ids in [0, 120), got 0 .. 120"),
    "negative id": ([[5, -1, 0]], None, "input_ids must be token ids in [0, 120), got -1 .. 5"),
    "longer than the positions": ([[5] * 129 + [0]], None, "input_ids hold 130 tokens but the model reads at most 128"),
    "empty mask row": ([[5, 6, 0], [7, 8, 0]], [[1, 1, 1], [0, 0, 0]], "attention_mask row 1 is all zeros"),
}


@pytest.fixture(scope="module")
def demo_models(demo_folder):
    from westron.models.auto import AutoModelForSeq2SeqLM, TFAutoModelForSeq2SeqLM

    return {"pt": AutoModelForSeq2SeqLM.from_pretrained(demo_folder), "tf": TFAutoModelForSeq2SeqLM.from_pretrained(demo_folder)}


@pytest.mark.parametrize("framework", ["pt", "tf"])
@pytest.mark.parametrize("case", list(BAD_IDS))
def test_bad_ids_same_error_in_both_frameworks(case, framework, demo_models):
    ids, mask, message = BAD_IDS[case]
    with pytest.raises(WestronError) as raised:
        demo_models[framework].generate(np.array(ids), attention_mask=None if mask is None else np.array(mask))
    assert message in str(raised.value)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_nan_logits_stop_generation(framework, demo_models):
    """Finite weights can still overflow (half precision): a NaN in the scores is an error, not empty output."""
    model = demo_models[framework]
    name = "final_logits_bias"
    if framework == "pt":
        import torch

        saved = model.final_logits_bias.clone()
        with torch.no_grad():
            model.final_logits_bias[0, 7] = float("nan")
        restore = lambda: model.final_logits_bias.copy_(saved)  # noqa: E731
    else:
        variable = model.checkpoint_variables()[name][0]
        saved = variable.numpy()
        broken = saved.copy()
        broken[0, 7] = np.nan
        variable.assign(broken)
        restore = lambda: variable.assign(saved)  # noqa: E731
    try:
        eager = {"eager": True} if framework == "tf" else {}  # the same search, without compiling it twice
        for num_beams in (1, 2):
            with pytest.raises(WestronError, match="NaN scores"):
                model.generate(np.array([[5, 6, 0]]), num_beams=num_beams, max_new_tokens=3, **eager)
    finally:
        if framework == "pt":
            import torch

            with torch.no_grad():
                restore()
        else:
            restore()


# ---- fuzz: random strings through the CLI's read/translate path -----------------------------------------


def random_text(rng: random.Random) -> str:
    alphabets = [
        "abcdefghijklmnopqrstuvwxyz     ",
        "\t\x0b\x0c\u00a0\u2028\u2029\u200b\ufeff",  # odd white space (never \n or \r: those end lines)
        "éßøπж中文字한국어🙂👍🏽\u0301\u202e",
        "<>/&;{}[]\"'\\%$#@!?.,:",
        "</s><unk><pad>▁",
    ]
    length = rng.choice([0, 1, 2, 5, 20, 80, 400])
    return "".join(rng.choice(rng.choice(alphabets)) for _ in range(length))


def test_fuzzed_lines_keep_the_line_count(demo_folder, tmp_path, monkeypatch):
    """3000 random lines (invisible, combining, bidi, special-token text, long): no traceback, one output line each."""
    rng = random.Random(1234)
    lines = [random_text(rng) for _ in range(3000)]
    lines += ["\x00", "\x00" * 10, "a\x00b", " " * 300, "▁" * 50, "</s>" * 40]
    data = "\n".join(lines).encode("utf-8") + b"\n"
    out = tmp_path / "out.txt"
    argv = ["translate", "--model", demo_folder, "--framework", "pt", "--max-new-tokens", "1", "--num-beams", "1"]
    code, _, stderr = run_cli(argv + ["--batch-size", "256", "-o", str(out)], monkeypatch, stdin_bytes=data)
    assert code == 0, stderr
    output = out.read_text(encoding="utf-8").split("\n")
    assert output[-1] == "" and len(output) - 1 == len(lines)
    for source, translation in zip(lines, output):
        assert "\n" not in translation
        if not source.strip():
            assert translation == ""


def test_invalid_utf8_names_the_line(demo_folder, monkeypatch):
    code, _, stderr = run_cli(["translate", "--model", demo_folder, "--framework", "pt"], monkeypatch, b"ok\n\xff\xfe\n")
    assert_one_line_error(code, stderr, "line 2 is not valid UTF-8")


def test_line_endings_and_a_byte_order_mark_are_not_text():
    """CRLF ends a line; a lone CR or U+2028 does not (the file's line count is what counts); a BOM
    starting the file is dropped, as the corpus readers drop it."""
    import io

    from westron.cli import read_lines

    raw = "\ufeffone\r\ntwo\rstill two\nthree\u2028still three\u0085too\n\n\ufefffive".encode()
    assert list(read_lines(io.BytesIO(raw), "in.txt")) == [
        "one", "two\rstill two", "three\u2028still three\u0085too", "", "\ufefffive",
    ]  # fmt: skip


# ---- signals and closed pipes need a real process ---------------------------------------------------


FAST = ["--batch-size", "4", "--num-beams", "1", "--max-new-tokens", "2"]


def westron_process(argv, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO_ROOT}
    command = [sys.executable, "-c", "import sys; from westron.cli import main; sys.exit(main())", *argv]
    return subprocess.Popen(command, env=env, cwd=REPO_ROOT, **kwargs)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signal_removes_the_temporary_output(signum, demo_folder, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("Speak, friend, and enter.\n" * 100_000, encoding="utf-8")
    out = tmp_path / "out.txt"
    process = westron_process(
        ["translate", "--model", demo_folder, "--framework", "pt", "-i", str(source), "-o", str(out), *FAST],
        stderr=subprocess.PIPE,
    )
    # Wait until the temporary output exists: the run is then mid-translation.
    while process.poll() is None and no_temp_files(tmp_path):
        os.sched_yield()
    os.kill(process.pid, signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    assert sorted(os.listdir(tmp_path)) == ["in.txt"], "no partial output, no temporary file"


def test_closed_pipe_stops_before_translating_the_rest(demo_folder, tmp_path):
    """`westron translate ... | head -1`: the run ends at the first batch after the reader left."""
    source = tmp_path / "in.txt"
    source.write_text("Speak, friend, and enter.\n" * 100_000, encoding="utf-8")
    process = westron_process(
        ["translate", "--model", demo_folder, "--framework", "pt", "-i", str(source), *FAST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = process.stdout.readline()
    process.stdout.close()
    # Without the check, the other 99,936 lines would be translated first (many minutes).
    _, stderr = process.communicate(timeout=120)
    assert first.endswith(b"\n") and b"Traceback" not in stderr


def test_typo_path_fails_fast_when_the_hub_is_unreachable(monkeypatch):
    """Online mode, no Hub: the answer comes from one refused connection, not from minutes of retries."""
    from huggingface_hub import constants

    import westron.hub
    from westron.errors import CheckpointError
    from westron.hub import cached_file

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setattr(westron.hub, "_REACHABLE", {})
    with pytest.raises(CheckpointError, match="no folder 'dir/model' exists here.*Hub is unreachable"):
        cached_file("dir/model", "config.json")
    assert westron.hub._REACHABLE == {"127.0.0.1": False}
