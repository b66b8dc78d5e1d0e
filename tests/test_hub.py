"""Hub resolution without a network: local folders, the HF cache, and HF_HUB_OFFLINE."""

import pytest

from westron.errors import CheckpointError
from westron.hub import cached_file


def test_local_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert cached_file(tmp_path, "config.json") == str(tmp_path / "config.json")
    assert cached_file(tmp_path, "generation_config.json", required=False) is None
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        cached_file(tmp_path, "model.safetensors")


def test_a_file_is_not_a_model_folder(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointError, match="is a file"):
        cached_file(tmp_path / "file.txt", "config.json")


def test_missing_local_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        cached_file(str(tmp_path / "a" / "b" / "c"), "config.json")


def test_repo_id_offline_uses_the_hf_cache(tmp_path, monkeypatch):
    """A file placed in huggingface_hub's cache layout resolves offline; an absent one is a clear error."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = tmp_path / "models--westron--tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text('{"model_type": "marian"}')
    refs = tmp_path / "models--westron--tiny" / "refs"
    refs.mkdir()
    (refs / "main").write_text("a" * 40)

    path = cached_file("westron/tiny", "config.json", cache_dir=tmp_path)
    assert path.endswith("config.json") and open(path).read() == '{"model_type": "marian"}'
    assert cached_file("westron/tiny", "generation_config.json", required=False, cache_dir=tmp_path) is None
    with pytest.raises(CheckpointError, match="not in the Hugging Face cache"):
        cached_file("westron/other", "config.json", cache_dir=tmp_path)
