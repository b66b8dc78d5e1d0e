"""save_pretrained swaps a whole folder in: killed at any moment, a checkpoint folder is wholly old or wholly new.

The kill -9 test runs a saver process that forks a child per round; the child saves two different
models into one folder, alternately, until it is killed at a random moment (seeded). After every
kill the folder must load and be exactly one of the two models (a weight, config.json and
generation_config.json all agree), and the next save must leave no temporary folder behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from westron.file_utils import atomic_directory, recover_directory
from westron.generation.configuration_utils import GenerationConfig
from westron.models.marian.configuration_marian import MarianConfig
from westron.models.marian.modeling_marian import MarianMTModel


def tiny_marian(layers: int, seed: int) -> MarianMTModel:
    """~1-2 MB of weights, so a save takes long enough for kills to land in the middle of it."""
    config = MarianConfig(
        vocab_size=200, d_model=64, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=256, decoder_ffn_dim=256, max_position_embeddings=64,
        pad_token_id=199, decoder_start_token_id=199, num_beams=layers,
    )  # fmt: skip
    torch.manual_seed(seed)
    return MarianMTModel(config)


SAVER = textwrap.dedent(
    """
    import os, sys
    import torch
    torch.set_num_threads(1)
    from tests.test_atomic_save import tiny_marian

    folder = sys.argv[1]
    models = [tiny_marian(2, seed=1), tiny_marian(3, seed=2)]
    for line in sys.stdin:  # one round per line: fork a child that saves until it is killed
        pid = os.fork()
        if pid == 0:
            round_number = 0
            while True:
                models[round_number % 2].save_pretrained(folder)
                round_number += 1
        print(pid, flush=True)
        os.waitpid(pid, 0)
        print("reaped", flush=True)
    """
)


def model_identity(folder: str) -> int:
    """Loads the folder and returns which model it holds (its layer count), checking all parts agree."""
    model = MarianMTModel.from_pretrained(folder)
    layers = model.config.encoder_layers
    assert GenerationConfig.for_model(folder, model.config).num_beams == layers
    expected = tiny_marian(layers, seed=layers - 1)
    weight = "model.encoder.layers.0.fc1.weight"
    np.testing.assert_array_equal(model.state_dict()[weight].numpy(), expected.state_dict()[weight].numpy())
    return layers


def leftovers(parent) -> list[str]:
    return sorted(name for name in os.listdir(parent) if name != "model")


def test_kill_9_during_save_pretrained_leaves_old_or_new_folder(tmp_path):
    folder = str(tmp_path / "model")
    tiny_marian(2, seed=1).save_pretrained(folder)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    saver = subprocess.Popen(
        [sys.executable, "-c", SAVER, folder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )  # fmt: skip
    rng = random.Random(0)
    seen = set()
    try:
        for _ in range(24):
            saver.stdin.write("go\n")
            saver.stdin.flush()
            child = int(saver.stdout.readline())
            # The child needs a moment to start saving; then each save takes some tens of milliseconds.
            time.sleep(rng.uniform(0.02, 0.3))
            os.kill(child, signal.SIGKILL)
            assert saver.stdout.readline().strip() == "reaped"
            seen.add(model_identity(folder))
    finally:
        saver.stdin.close()
        saver.wait(timeout=60)
    assert seen == {2, 3}, "the kills should land in both models' saves"
    tiny_marian(2, seed=1).save_pretrained(folder)
    assert leftovers(tmp_path) == []
    assert sorted(os.listdir(folder)) == ["config.json", "generation_config.json", "model.safetensors"]


def test_save_keeps_other_files_and_replaces_its_own(tmp_path):
    folder = tmp_path / "model"
    tiny_marian(2, seed=1).save_pretrained(folder, max_shard_size="300KB")
    assert (folder / "model.safetensors.index.json").exists()
    (folder / "vocab.json").write_text("{}")
    (folder / "runs").mkdir()
    (folder / "runs" / "events").write_text("x")
    tiny_marian(3, seed=2).save_pretrained(folder)  # one file now: the old shards and index must go
    assert sorted(os.listdir(folder)) == [
        "config.json", "generation_config.json", "model.safetensors", "runs", "vocab.json",
    ]  # fmt: skip
    assert (folder / "runs" / "events").read_text() == "x"
    assert model_identity(str(folder)) == 3
    MarianConfig(d_model=8, encoder_attention_heads=2, decoder_attention_heads=2).save_pretrained(folder)  # keeps the weights
    assert (folder / "model.safetensors").exists() and (folder / "vocab.json").exists()


def test_fallback_without_exchange_and_a_crash_between_its_renames(tmp_path, monkeypatch):
    import westron.file_utils as file_utils

    folder = str(tmp_path / "model")
    tiny_marian(2, seed=1).save_pretrained(folder)
    monkeypatch.setattr(file_utils, "exchange_paths", lambda first, second: False)
    tiny_marian(3, seed=2).save_pretrained(folder)
    assert model_identity(folder) == 3 and leftovers(tmp_path) == []

    # Killed after `folder -> .old` and before `tmp -> folder`: a dead process's names remain.
    dead_pid = 2**22 + 1  # above Linux's pid_max default; never a live process here
    os.rename(folder, str(tmp_path / f".model.{dead_pid}-abc.tmp.old"))
    (tmp_path / f".model.{dead_pid}-abc.tmp").mkdir()
    assert model_identity(folder) == 3  # loading restores the old folder
    tiny_marian(2, seed=1).save_pretrained(folder)
    assert leftovers(tmp_path) == []


def test_temporary_folder_of_a_live_save_is_left_alone(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    live = tmp_path / f".model.{os.getppid()}-xyz.tmp"
    live.mkdir()
    recover_directory(folder)
    assert live.exists()


def test_failed_save_keeps_the_old_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(folder) as new:
            (open(os.path.join(new, "a"), "w")).write("new")
            raise RuntimeError("killed")
    assert (folder / "a").read_text() == "old" and leftovers(tmp_path) == []


def test_tokenizer_and_model_saves_into_one_folder_keep_each_other(tmp_path):
    """HF habit: model.save_pretrained(d); tokenizer.save_pretrained(d). Each is one atomic swap that
    keeps the other's files and replaces its own (a stale vocabulary file of another tokenizer goes)."""
    from westron import AutoTokenizer
    from westron.demo import build_demo_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(build_demo_checkpoint(str(tmp_path / "demo")))
    folder = tmp_path / "saves" / "model"
    tiny_marian(2, seed=1).save_pretrained(folder)
    (folder / "tokenizer_config.json").write_text("{}")  # an older save's, to be replaced
    tokenizer.save_pretrained(folder)
    tiny_marian(3, seed=2).save_pretrained(folder)
    names = set(os.listdir(folder))
    assert {"config.json", "model.safetensors", "tokenizer_config.json", "vocab.json", "source.spm"} <= names
    assert model_identity(str(folder)) == 3 and leftovers(folder.parent) == []
    assert AutoTokenizer.from_pretrained(folder)("Speak, friend")["input_ids"] == tokenizer("Speak, friend")["input_ids"]
