"""Every keyword HF 4.x's from_pretrained documents: it works as in HF, is a documented no-op, or is a clear error.

A folder loaded with any accepted keyword and saved again has the config.json it had (the keyword
is never stored on the config), except the dtype key, which records the weights' dtype as HF's does.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch

import westron
from tests import hf_oracle
from westron import loading
from westron.configuration_utils import HUB_KWARGS
from westron.errors import WestronError

# Keyword -> (a value a user would pass, the outcome in PyTorch, the outcome in TensorFlow).
HF4_KEYWORDS = {
    "config": (None, "works", "works"),  # filled in with a real config by the test
    "cache_dir": ("cache", "works", "works"),
    "ignore_mismatched_sizes": (True, "error", "error"),
    "force_download": (True, "works", "works"),
    "local_files_only": (True, "works", "works"),
    "token": ("hf_not_a_real_token", "works", "works"),
    "use_auth_token": ("hf_not_a_real_token", "works", "works"),
    "revision": ("main", "works", "works"),
    "use_safetensors": (True, "works", "works"),
    "weights_only": (False, "error", "error"),
    "state_dict": (None, "works", "works"),  # filled in with the checkpoint's tensors
    "from_tf": (True, "error", "error"),
    "from_pt": (True, "error", "works"),  # a TF keyword: HF 4.x TF scripts pass it for PyTorch-only checkpoints
    "from_flax": (True, "error", "error"),
    "proxies": ({"https": "http://proxy:3128"}, "error", "error"),
    "output_loading_info": (True, "works", "works"),
    "mirror": ("tuna", "no-op", "no-op"),
    "_fast_init": (False, "no-op", "no-op"),
    "low_cpu_mem_usage": (True, "no-op", "no-op"),
    "torch_dtype": (torch.float16, "works", "error"),
    "dtype": ("bfloat16", "works", "works"),
    "device_map": ("auto", "works", "error"),
    "max_memory": ({0: "1GB"}, "error", "error"),
    "offload_folder": ("offload", "error", "error"),
    "offload_state_dict": (True, "no-op", "no-op"),
    "load_in_8bit": (True, "error", "error"),
    "load_in_4bit": (True, "error", "error"),
    "quantization_config": ({"load_in_8bit": True}, "error", "error"),
    "subfolder": ("", "works", "works"),
    "variant": ("fp16", "error", "error"),
    "attn_implementation": ("eager", "works", "works"),
    "trust_remote_code": (True, "no-op", "no-op"),
    "code_revision": ("main", "no-op", "no-op"),
    "resume_download": (True, "no-op", "no-op"),
    "adapter_kwargs": ({"revision": "main"}, "error", "error"),
    "adapter_name": ("my-adapter", "error", "error"),
    "gguf_file": ("model.gguf", "error", "error"),
    "tp_plan": ("auto", "error", "error"),
    "key_mapping": ({r"^nothing\.": "model."}, "works", "works"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return hf_oracle.save_tiny_marian(tmp_path_factory.mktemp("marian") / "model", seed=1)


def read_config(folder) -> dict:
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_every_keyword_is_classified():
    """A keyword Westron forgets would fall through to the config and be written into config.json."""
    known = set(loading.NO_OPS) | set(loading.UNSUPPORTED) | set(loading.SUPPORTED) | set(HUB_KWARGS) | {"use_auth_token"}
    assert sorted(set(HF4_KEYWORDS) - known) == []
    for name, (_, pt, tf) in HF4_KEYWORDS.items():
        if "no-op" in (pt, tf):
            assert name in loading.NO_OPS
        if pt == tf == "error":
            assert name in loading.UNSUPPORTED


def _value(name, folder, model_class):
    value = HF4_KEYWORDS[name][0]
    if name == "config":
        return model_class.config_class.from_pretrained(folder)
    if name == "state_dict":
        return westron.checkpoint.load_state_dict(folder, framework="pt" if model_class is westron.MarianMTModel else "np")
    if name == "cache_dir":
        return os.path.join(folder, "..", "cache")
    return value


@pytest.mark.parametrize("name", sorted(HF4_KEYWORDS))
def test_pytorch_keyword_outcome(folder, tmp_path, name):
    outcome = HF4_KEYWORDS[name][1]
    value = _value(name, folder, westron.MarianMTModel)
    if outcome == "error":
        with pytest.raises(WestronError, match=name):
            westron.MarianMTModel.from_pretrained(folder, **{name: value})
        return
    model = westron.MarianMTModel.from_pretrained(folder, **{name: value})
    if name == "output_loading_info":
        model, info = model
        assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert isinstance(model, westron.MarianMTModel)
    model.save_pretrained(tmp_path / "saved")
    want = read_config(folder)
    if name in ("torch_dtype", "dtype"):
        want["dtype"] = str(model.dtype).removeprefix("torch.")
        assert model.dtype == {"torch_dtype": torch.float16, "dtype": torch.bfloat16}[name]
    assert read_config(tmp_path / "saved") == want


@pytest.mark.parametrize("name", sorted(HF4_KEYWORDS))
def test_tensorflow_keyword_outcome(folder, name):
    """The same sweep through the TF loader's keyword check (a full TF load per keyword would take minutes)."""
    outcome = HF4_KEYWORDS[name][2]
    value = _value(name, folder, westron.TFMarianMTModel)
    if outcome == "error":
        with pytest.raises(WestronError, match=name):
            loading.take_loading_kwargs({name: value}, framework="tf")
    else:
        options = loading.take_loading_kwargs({name: value}, framework="tf")
        assert options.config_overrides == {}


def test_tensorflow_round_trip_with_accepted_keywords(folder, tmp_path):
    accepted = {
        name: _value(name, folder, westron.TFMarianMTModel)
        for name, (_, _, tf) in HF4_KEYWORDS.items()
        if tf != "error" and name not in ("config", "state_dict", "output_loading_info", "use_auth_token", "dtype")
    }
    model = westron.TFMarianMTModel.from_pretrained(folder, **accepted)
    model.save_pretrained(tmp_path / "saved")
    assert read_config(tmp_path / "saved") == read_config(folder)


def test_unknown_keyword_is_an_error_and_a_config_key_an_override(folder):
    with pytest.raises(WestronError, match="unexpected from_pretrained argument.*: dropuot"):
        westron.MarianMTModel.from_pretrained(folder, dropuot=0.3)
    assert westron.MarianMTModel.from_pretrained(folder, dropout=0.3).config.dropout == 0.3
    with pytest.raises(WestronError, match="not both"):
        westron.MarianMTModel.from_pretrained(folder, token="a", use_auth_token="b")
    with pytest.raises(WestronError, match="not both"):
        westron.MarianMTModel.from_pretrained(folder, dtype=torch.float16, torch_dtype=torch.float16)


def test_float16_logits_match_hf_float16(folder):
    from transformers import MarianMTModel as HFMarian

    batch = hf_oracle.random_batch(99, pad_token_id=98, eos_token_id=0)
    ids, mask = batch[0], batch[1]
    hf = HFMarian.from_pretrained(folder, dtype=torch.float16).eval()
    ours = westron.MarianMTModel.from_pretrained(folder, torch_dtype=torch.float16)
    assert ours.dtype == hf.dtype == torch.float16
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=ids).logits
        got = ours(input_ids=ids, attention_mask=mask, decoder_input_ids=ids).logits
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), want.float(), atol=1e-2, rtol=1e-2)


def test_dtype_auto_reads_config_json(folder, tmp_path):
    shutil.copytree(folder, tmp_path / "bf16")
    config = read_config(tmp_path / "bf16")
    config["dtype"] = "bfloat16"
    (tmp_path / "bf16" / "config.json").write_text(json.dumps(config))
    assert westron.MarianMTModel.from_pretrained(tmp_path / "bf16", dtype="auto").dtype == torch.bfloat16
    assert westron.MarianMTModel.from_pretrained(folder, torch_dtype="auto").dtype == torch.float32
    with pytest.raises(WestronError, match="not a floating torch dtype"):
        westron.MarianMTModel.from_pretrained(folder, torch_dtype=torch.int8)


@pytest.mark.parametrize("family", ["marian", "t5"])
def test_eager_attention_is_the_explicit_path_and_equals_hf_eager(tmp_path, family):
    import transformers

    if family == "marian":
        folder, ours_class, hf_class = hf_oracle.save_tiny_marian(tmp_path, seed=2), westron.MarianMTModel, transformers.MarianMTModel
        batch = hf_oracle.random_batch(99, pad_token_id=98, eos_token_id=0)
    else:
        folder, ours_class, hf_class = hf_oracle.save_tiny_t5(tmp_path, seed=2), westron.T5ForConditionalGeneration, transformers.T5ForConditionalGeneration
        batch = hf_oracle.random_batch(99, pad_token_id=0, eos_token_id=1)
    ids, mask = batch[0], batch[1]
    model = ours_class.from_pretrained(folder, attn_implementation="eager")
    implementations = {m.attn_implementation for m in model.modules() if hasattr(m, "attn_implementation")}
    assert implementations == {"eager"} and model.config._attn_implementation == "eager"
    assert ours_class.from_pretrained(folder).config._attn_implementation == "sdpa"
    hf = hf_class.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=ids).logits
        got = model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    with pytest.raises(WestronError, match="flash_attention_2"):
        ours_class.from_pretrained(folder, attn_implementation="flash_attention_2")


def test_device_map_places_the_whole_model(folder):
    assert westron.MarianMTModel.from_pretrained(folder, device_map="auto").device.type == "cpu"  # no GPU in tests
    assert westron.MarianMTModel.from_pretrained(folder, device_map={"": "cpu"}).device.type == "cpu"
    with pytest.raises(WestronError, match="no CUDA GPU"):
        westron.MarianMTModel.from_pretrained(folder, device_map="cuda")
    with pytest.raises(WestronError, match="per-module devices"):
        westron.MarianMTModel.from_pretrained(folder, device_map={"model.encoder": 0, "model.decoder": 1})
    with pytest.raises(WestronError, match="not both"):
        westron.MarianMTModel.from_pretrained(folder, device="cpu", device_map="cpu")


def test_state_dict_and_key_mapping(folder):
    reference = westron.MarianMTModel.from_pretrained(folder)
    renamed = {name.replace("model.", "base.", 1): t for name, t in westron.checkpoint.load_state_dict(folder, "pt").items()}
    model = westron.MarianMTModel.from_pretrained(folder, state_dict=renamed, key_mapping={r"^base\.": "model."})
    for (name, got), want in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(got, want, msg=name)
    with pytest.raises(westron.errors.CheckpointError):
        westron.MarianMTModel.from_pretrained(folder, state_dict=renamed)


def test_subfolder_and_use_safetensors(folder, tmp_path):
    shutil.copytree(folder, tmp_path / "repo" / "marian")
    model = westron.MarianMTModel.from_pretrained(tmp_path / "repo", subfolder="marian", use_safetensors=True)
    assert model.config.d_model == 32
    with pytest.raises(westron.errors.CheckpointError, match="has no config.json"):
        westron.MarianMTModel.from_pretrained(tmp_path / "repo", subfolder="t5")
    with pytest.raises(WestronError, match="allow_pickle=True"):
        westron.MarianMTModel.from_pretrained(folder, use_safetensors=False)


def test_hub_arguments_reach_huggingface_hub(folder, monkeypatch):
    """token (and its old name), revision, subfolder and force_download are passed to hf_hub_download.

    The Hub is unreachable in tests, so the download function is the one boundary replaced: it
    records its arguments and serves the local folder's files.
    """
    import huggingface_hub

    calls = []

    def hf_hub_download(repo_id, filename, **kwargs):
        calls.append(kwargs)
        path = os.path.join(folder, filename)
        if not os.path.exists(path):
            raise huggingface_hub.utils.EntryNotFoundError(filename)
        return path

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(westron.hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(huggingface_hub.constants, "is_offline_mode", lambda: False)
    westron.MarianMTModel.from_pretrained("westron/tiny", use_auth_token="hf_old", revision="v1", force_download=True)
    assert calls and all(
        c["token"] == "hf_old" and c["revision"] == "v1" and c["force_download"] and c["subfolder"] is None for c in calls
    )
    calls.clear()
    westron.MarianMTModel.from_pretrained("westron/tiny", token="hf_new", subfolder="")
    assert calls and all(c["token"] == "hf_new" and not c["force_download"] for c in calls)


@pytest.mark.parametrize(("family", "policy"), [("marian", "bfloat16"), ("t5", "mixed_bfloat16"), ("m2m_100", "bfloat16")])
def test_tensorflow_dtype_policies(tmp_path, family, policy):
    save = {"marian": hf_oracle.save_tiny_marian, "t5": hf_oracle.save_tiny_t5, "m2m_100": hf_oracle.save_tiny_m2m100}
    folder = save[family](tmp_path / "model", seed=3)
    reference = westron.TFAutoModelForSeq2SeqLM.from_pretrained(folder)
    model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(folder, dtype=policy)
    assert model.dtype_policy.name == policy
    variable_dtype = "bfloat16" if policy == "bfloat16" else "float32"
    assert {v.dtype for v in model.weights} == {variable_dtype}
    ids = np.array([[5, 6, 7, 8, 2]], dtype=np.int32)
    got = model(input_ids=ids, decoder_input_ids=ids).logits
    want = reference(input_ids=ids, decoder_input_ids=ids).logits
    assert got.dtype.name == "bfloat16"
    np.testing.assert_allclose(np.asarray(got, np.float32), want.numpy(), atol=0.1 * float(np.abs(want).max()))
    assert model.generate(ids, max_new_tokens=3, eager=True).shape[0] == 1  # eager: no XLA compile in a unit test
    model.save_pretrained(tmp_path / "saved")
    assert read_config(tmp_path / "saved")["dtype"] == variable_dtype
    with pytest.raises(WestronError, match="not a Keras dtype policy"):
        westron.TFAutoModelForSeq2SeqLM.from_pretrained(folder, dtype="int8")


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_save_pretrained_takes_hf4_keywords(folder, tmp_path, framework):
    model_class = westron.MarianMTModel if framework == "pt" else westron.TFMarianMTModel
    model = model_class.from_pretrained(folder)
    model.save_pretrained(tmp_path / "saved", safe_serialization=True, push_to_hub=False, is_main_process=True, token=None)
    assert read_config(tmp_path / "saved") == read_config(folder)
    for name, value in [("safe_serialization", False), ("push_to_hub", True), ("is_main_process", False), ("variant", "fp16")]:
        with pytest.raises(WestronError, match=f"save_pretrained\\({name}="):
            model.save_pretrained(tmp_path / "refused", **{name: value})
    with pytest.raises(WestronError, match="unexpected save_pretrained argument"):
        model.save_pretrained(tmp_path / "refused", safe_serialisation=True)
    assert not os.path.exists(tmp_path / "refused")


def test_save_pretrained_state_dict(folder, tmp_path):
    model = westron.MarianMTModel.from_pretrained(folder)
    state = {name: torch.zeros_like(t) if name.endswith("bias") else t for name, t in model.state_dict().items()}
    model.save_pretrained(tmp_path / "saved", state_dict=state)
    reloaded = westron.MarianMTModel.from_pretrained(tmp_path / "saved")
    assert all(not t.any() for name, t in reloaded.state_dict().items() if name.endswith("bias"))
    assert any(t.any() for name, t in model.state_dict().items() if name.endswith("bias"))


def test_configs_and_tokenizers_take_the_hub_hints(folder, tmp_path):
    """AutoConfig/AutoTokenizer.from_pretrained(trust_remote_code=True) is common HF 4.x code: a no-op, never stored."""
    config = westron.AutoConfig.from_pretrained(folder, trust_remote_code=True, use_auth_token=None, revision="main")
    assert not hasattr(config, "trust_remote_code") and not hasattr(config, "use_auth_token")
    config.save_pretrained(tmp_path)
    assert read_config(tmp_path) == read_config(folder)


@pytest.mark.parametrize("loader", ["AutoModelForSeq2SeqLM", "TFAutoModelForSeq2SeqLM", "MarianTokenizer", "AutoConfig"])
def test_a_revision_of_a_local_folder_is_refused_not_ignored(folder, loader):
    """A local folder has one version: revision="v2" would have read it anyway; "main" (HF's default) is fine."""
    from tests.spm_fixtures import write_marian_folder

    if loader == "MarianTokenizer":
        folder = write_marian_folder(os.path.join(os.path.dirname(folder), "tokenizer"))
    load = getattr(westron, loader).from_pretrained
    with pytest.raises(WestronError, match="revision='v2' applies to Hub repos; .* is a local folder"):
        load(folder, revision="v2")
    load(folder, revision="main")
