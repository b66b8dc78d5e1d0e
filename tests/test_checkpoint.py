import json
import os

import numpy as np
import pytest

from westron.checkpoint import (
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    check_names_and_shapes,
    load_state_dict,
    parse_size,
    save_state_dict,
    tf_to_checkpoint_name,
)
from westron.errors import CheckpointError


def tensors():
    rng = np.random.default_rng(0)
    return {f"layer.{i}.weight": rng.standard_normal((8, 16)).astype(np.float32) for i in range(6)}


def test_single_file_round_trip(tmp_path):
    original = tensors()
    assert save_state_dict(original, tmp_path) == [SAFE_WEIGHTS_NAME]
    loaded = load_state_dict(tmp_path)
    assert sorted(loaded) == sorted(original)
    for name in original:
        np.testing.assert_array_equal(loaded[name], original[name])


def test_sharded_round_trip_and_index(tmp_path):
    original = tensors()
    written = save_state_dict(original, tmp_path, max_shard_size=1100)  # 512 bytes each: 2 per shard
    assert SAFE_WEIGHTS_INDEX_NAME in written and len(written) == 4
    index = json.loads((tmp_path / SAFE_WEIGHTS_INDEX_NAME).read_text())
    assert set(index["weight_map"]) == set(original)
    assert not (tmp_path / SAFE_WEIGHTS_NAME).exists()
    loaded = load_state_dict(tmp_path)
    for name in original:
        np.testing.assert_array_equal(loaded[name], original[name])


def test_resaving_unsharded_removes_old_shards(tmp_path):
    save_state_dict(tensors(), tmp_path, max_shard_size=1100)
    save_state_dict(tensors(), tmp_path)
    assert sorted(os.listdir(tmp_path)) == [SAFE_WEIGHTS_NAME]


def test_torch_tensors_and_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    save_state_dict({"w": torch.arange(4, dtype=torch.bfloat16)}, tmp_path)
    as_numpy = load_state_dict(tmp_path, framework="np")["w"]
    assert str(as_numpy.dtype) == "bfloat16"
    np.testing.assert_array_equal(as_numpy.astype(np.float32), [0, 1, 2, 3])
    assert load_state_dict(tmp_path, framework="pt")["w"].dtype == torch.bfloat16


def test_pickles_refused_without_opt_in(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(2)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="allow_pickle=True"):
        load_state_dict(tmp_path)
    loaded = load_state_dict(tmp_path, allow_pickle=True)
    np.testing.assert_array_equal(loaded["w"], [1.0, 1.0])


def test_corrupt_safetensors(tmp_path):
    (tmp_path / SAFE_WEIGHTS_NAME).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_state_dict(tmp_path)


def test_no_weights(tmp_path):
    with pytest.raises(CheckpointError, match="has no weights"):
        load_state_dict(tmp_path)


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    import safetensors.numpy

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", explode)
    with pytest.raises(RuntimeError):
        save_state_dict(tensors(), tmp_path)
    assert os.listdir(tmp_path) == []


def test_mismatch_message_lists_everything():
    with pytest.raises(CheckpointError) as error:
        check_names_and_shapes(
            {"a": (2, 3), "b": (4,), "c": (1,)},
            {"a": (3, 2), "c": (1,), "z": (5,), "ignored.table": (9,)},
            "folder",
            ignored=[r"\.table$"],
        )
    message = str(error.value)
    assert "missing: b" in message and "unexpected: z" in message
    assert "a (checkpoint (3, 2), model (2, 3))" in message and "ignored" not in message


@pytest.mark.parametrize(
    "path, expected",
    [
        ("tf_marian/model/encoder/layers.0/self_attn/q_proj/kernel", ("model.encoder.layers.0.self_attn.q_proj.weight", True)),
        ("tf_marian/model/encoder/layers.0/self_attn/q_proj/bias", ("model.encoder.layers.0.self_attn.q_proj.bias", False)),
        ("tf_marian/model/shared/embeddings", ("model.shared.weight", False)),
        ("tf_marian/model/decoder/layers.1/final_layer_norm/gamma", ("model.decoder.layers.1.final_layer_norm.weight", False)),
        ("tf_marian/model/decoder/layers.1/final_layer_norm/beta", ("model.decoder.layers.1.final_layer_norm.bias", False)),
        ("tf_marian/final_logits_bias", ("final_logits_bias", False)),
        ("tf_t5/encoder/final_layer_norm/weight", ("encoder.final_layer_norm.weight", False)),
    ],
)
def test_tf_name_rule(path, expected):
    assert tf_to_checkpoint_name(path) == expected


def test_parse_size():
    assert parse_size("5GB") == 5 * 10**9
    assert parse_size("500MiB") == 500 * 2**20
    assert parse_size(123) == 123
    with pytest.raises(ValueError):
        parse_size("lots")
