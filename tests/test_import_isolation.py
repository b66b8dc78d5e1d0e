"""`import westron` and config access load no deep-learning framework.

Each check runs in a fresh interpreter (this test process has long since imported torch and
TensorFlow) and reads `sys.modules` there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "tensorflow", "keras", "tf_keras")


def frameworks_loaded_by(code: str) -> list[str]:
    probe = (
        f"{code}\n"
        "import json, sys\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_import_westron_loads_no_framework():
    assert frameworks_loaded_by("import westron") == []


def test_config_access_loads_no_framework():
    code = (
        "import westron\n"
        "config = westron.MarianConfig(vocab_size=99, d_model=16)\n"
        "assert westron.AutoConfig.for_model('marian', vocab_size=99).vocab_size == 99\n"
        "assert config.d_model == 16\n"
    )
    assert frameworks_loaded_by(code) == []


def test_the_probe_sees_a_framework_load():
    # The probe must be able to fail: the PyTorch base model does load torch.
    assert "torch" in frameworks_loaded_by("import westron.modeling_utils")


def test_attention_api_and_cli_load_no_framework_or_matplotlib():
    # westron.attention and the `attention` command import torch, TensorFlow and matplotlib only
    # when a model or a drawing needs them (matplotlib is not a framework, but just as slow to import).
    code = (
        "import sys, westron\n"
        "assert callable(westron.attention) and westron.AttentionMaps\n"
        "from westron.cli import build_parser\n"
        "build_parser()\n"
        "assert 'matplotlib' not in sys.modules\n"
    )
    assert frameworks_loaded_by(code) == []
