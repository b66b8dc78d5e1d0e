"""utils/check_copies.py on small fake `westron/` trees built under tmp_path.

Each test builds the files it needs, runs the checker with `root=tmp_path` and looks at what it
reports (path, line, message) or, for `--fix`, at the bytes it leaves behind.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "utils" / "check_copies.py"

_spec = importlib.util.spec_from_file_location("westron_check_copies", SCRIPT)
cc = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cc  # dataclasses look their module up while the class is created
_spec.loader.exec_module(cc)

MARIAN = "westron/models/marian/modeling_marian.py"
M2M = "westron/models/m2m100/modeling_m2m100.py"
REF = "westron.models.marian.modeling_marian"

# The source every test copies from. `import torch` proves the checker never imports it.
MARIAN_SOURCE = '''\
"""A fake Marian modeling file."""

import math

import torch


class MarianAttention:
    """Attention for Marian."""

    def __init__(self, embed_dim, num_heads):
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.marian_scale = 1 / math.sqrt(embed_dim)  # MARIAN_SCALE

    def forward(self, hidden):
        # (B, L, D): Marian scales the queries
        return hidden * self.marian_scale

    @staticmethod
    def shape(x):
        return x


def marian_helper(x):
    return x + 1
'''

# MarianAttention as its copy must read with `Marian->M2M100`.
M2M_ATTENTION = '''\
class M2M100Attention:
    """Attention for M2M100."""

    def __init__(self, embed_dim, num_heads):
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.marian_scale = 1 / math.sqrt(embed_dim)  # MARIAN_SCALE

    def forward(self, hidden):
        # (B, L, D): M2M100 scales the queries
        return hidden * self.marian_scale

    @staticmethod
    def shape(x):
        return x
'''


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


def copy_file(body: str, marker: str = f"# Copied from {REF}.MarianAttention with Marian->M2M100") -> str:
    return f'"""A fake M2M100 modeling file."""\n\nimport math\n\n\n{marker}\n{body}'


def check(root: Path, fix: bool = False) -> list:
    return cc.run(root, fix=fix, out=io.StringIO())


def line_of(root: Path, rel: str, needle: str) -> int:
    lines = (root / rel).read_text(encoding="utf-8").splitlines()
    matches = [i for i, line in enumerate(lines, 1) if needle in line]
    assert len(matches) == 1, (needle, matches)
    return matches[0]


@pytest.fixture
def tree(tmp_path):
    write(tmp_path, {MARIAN: MARIAN_SOURCE, M2M: copy_file(M2M_ATTENTION)})
    return tmp_path


# ---- copies -----------------------------------------------------------------------------------


def test_intact_copy_passes(tree):
    assert check(tree) == []


def test_one_character_drift_fails_and_names_its_line(tree):
    path = tree / M2M
    path.write_text(path.read_text().replace("1 / math.sqrt", "2 / math.sqrt"))
    problems = check(tree)
    assert [(p.path, p.line, p.message) for p in problems] == [
        (M2M, line_of(tree, M2M, "2 / math.sqrt"), f"M2M100Attention differs from {REF}.MarianAttention")
    ]
    assert "-        self.marian_scale = 2 / math.sqrt(embed_dim)" in problems[0].details
    assert "+        self.marian_scale = 1 / math.sqrt(embed_dim)" in problems[0].details


def test_drift_in_the_source_is_caught_at_the_copy(tree):
    path = tree / MARIAN
    path.write_text(path.read_text().replace("return x + 1", "return x + 2").replace("return x\n", "return -x\n"))
    problems = check(tree)
    assert [(p.path, p.line) for p in problems] == [(M2M, line_of(tree, M2M, "        return x"))]


def test_a_missing_line_is_drift(tree):
    path = tree / M2M
    path.write_text(path.read_text().replace("        self.num_heads = num_heads\n", ""))
    assert [p.line for p in check(tree)] == [line_of(tree, M2M, "self.marian_scale = 1")]


def test_replacements_apply_left_to_right(tree):
    nllb = M2M_ATTENTION.replace("M2M100", "NLLB")
    write(tree, {M2M: copy_file(nllb, f"# Copied from {REF}.MarianAttention with Marian->M2M100, M2M100->NLLB")})
    assert check(tree) == []
    write(tree, {M2M: copy_file(nllb, f"# Copied from {REF}.MarianAttention with M2M100->NLLB, Marian->M2M100")})
    assert len(check(tree)) == 1


def test_all_casing_replaces_lower_upper_and_capitalised_forms(tree):
    all_cased = M2M_ATTENTION.replace("marian_scale", "m2m100_scale").replace("MARIAN_SCALE", "M2M100_SCALE")
    write(tree, {M2M: copy_file(all_cased, f"# Copied from {REF}.MarianAttention with Marian->M2M100 all-casing")})
    assert check(tree) == []
    # the same copy without all-casing: the lower- and upper-case names are drift
    write(tree, {M2M: copy_file(all_cased, f"# Copied from {REF}.MarianAttention with Marian->M2M100")})
    assert len(check(tree)) == 1
    # Capitalised form of a lower-case pair: `marian->opus` also makes Marian -> Opus, MARIAN -> OPUS
    opus = all_cased.replace("M2M100_SCALE", "OPUS_SCALE").replace("m2m100", "opus").replace("M2M100", "Opus")
    write(tree, {M2M: copy_file(opus, f"# Copied from {REF}.MarianAttention with marian->opus all-casing")})
    assert check(tree) == []


def test_all_casing_never_replaces_inside_a_fresh_replacement(tmp_path):
    write(tmp_path, {
        "westron/models/bert/modeling_bert.py": "def bert_norm(x):\n    return BertNorm(x)  # BERT\n",
        "westron/models/roberta/modeling_roberta.py": (
            "# Copied from westron.models.bert.modeling_bert.bert_norm with Bert->RoBERTa all-casing\n"
            "def roberta_norm(x):\n    return RoBERTaNorm(x)  # ROBERTA\n"
        ),
    })
    assert check(tmp_path) == []


def test_fix_restores_the_copy_and_leaves_every_other_byte(tree):
    # CRLF endings, trailing spaces, non-ASCII and no final newline outside the copy must survive.
    intact = copy_file(M2M_ATTENTION).replace("\n", "\r\n") + "\r\n\r\n# d\u00e9j\u00e0 vu   \r\nX = 1  "
    write(tree, {M2M: intact})
    assert check(tree) == []
    drifted = intact.replace("1 / math.sqrt", "3 / math.sqrt")
    drifted = drifted.replace("        return x\r\n", "        pass\r\n        return x\r\n")
    write(tree, {M2M: drifted})
    assert len(check(tree)) == 1

    assert check(tree, fix=True) == []
    assert (tree / M2M).read_bytes() == intact.encode("utf-8")


def test_fix_twice_changes_nothing_the_second_time(tree):
    path = tree / M2M
    path.write_text(path.read_text().replace("self.embed_dim = embed_dim", "self.embed_dim = 2 * embed_dim"))
    out = io.StringIO()
    assert cc.run(tree, fix=True, out=out) == []
    assert "rewrote M2M100Attention" in out.getvalue()
    first = path.read_bytes()
    out = io.StringIO()
    assert cc.run(tree, fix=True, out=out) == []
    assert out.getvalue() == ""
    assert path.read_bytes() == first


def test_unresolved_references_fail_with_path_and_line(tree):
    marker_line = 6  # copy_file puts the marker there
    for ref, reason in [
        ("westron.models.nope.modeling_nope.X", "no module file"),
        (f"{REF}.MarianAttentionX", "no class, function or assignment 'MarianAttentionX'"),
        (f"{REF}.MarianAttention.backward", "no class, function or assignment 'backward' in MarianAttention"),
        (REF, "names a module"),
    ]:
        write(tree, {M2M: copy_file(M2M_ATTENTION, f"# Copied from {ref}")})
        problems = check(tree)
        assert [(p.path, p.line) for p in problems] == [(M2M, marker_line)], ref
        assert reason in problems[0].message


@pytest.mark.parametrize("marker", [
    f"# Copied from {REF}.MarianAttention with Marian-M2M100",
    f"# Copied from {REF}.MarianAttention with",
    f"# Copied from {REF}.MarianAttention wiht Marian->M2M100",
    f"# Copied from {REF}.MarianAttention with Marian->",
    f"# Copied from {REF}.MarianAttention all-casing",
    f"# Copied from {REF}.MarianAttention, with Marian->M2M100",
    f"# Copied from {REF}..MarianAttention",
])
def test_malformed_markers_fail_with_path_and_line(tree, marker):
    write(tree, {M2M: copy_file(M2M_ATTENTION, marker)})
    problems = check(tree)
    assert [(p.path, p.line) for p in problems] == [(M2M, 6)]
    assert problems[0].message.startswith("malformed marker")


def test_marker_not_directly_above_a_definition(tree):
    write(tree, {M2M: copy_file(M2M_ATTENTION, f"# Copied from {REF}.MarianAttention\n")})  # blank line below
    assert [(p.path, p.line) for p in check(tree)] == [(M2M, 6)]
    body = M2M_ATTENTION.replace(
        "    @staticmethod\n", f"    @staticmethod\n    # Copied from {REF}.MarianAttention.shape\n"
    )
    write(tree, {M2M: copy_file(body)})
    problems = [p for p in check(tree) if p.message.startswith("malformed marker")]
    assert [p.line for p in problems] == [line_of(tree, M2M, "MarianAttention.shape")]
    assert "above the decorators" in problems[0].message


def test_marker_text_inside_strings_is_not_a_marker(tree):
    write(tree, {"westron/notes.py": f'"""\n# Copied from {REF}.Nope with bad syntax\n"""\nX = "# Ignore copy"\n'})
    assert check(tree) == []


def test_copies_in_tests_and_references_to_tests(tree):
    write(tree, {
        "tests/models/marian/test_marian.py": "class MarianTester:\n    def make(self):\n        return 'marian'\n",
        "tests/models/m2m100/test_m2m100.py": (
            "# Copied from tests.models.marian.test_marian.MarianTester with Marian->M2M100, marian->m2m100\n"
            "class M2M100Tester:\n    def make(self):\n        return 'm2m100'\n"
        ),
    })
    assert check(tree) == []
    path = tree / "tests/models/m2m100/test_m2m100.py"
    path.write_text(path.read_text().replace("'m2m100'", "'marian'"))
    assert [(p.path, p.line) for p in check(tree)] == [("tests/models/m2m100/test_m2m100.py", 4)]


# ---- # Ignore copy ------------------------------------------------------------------------------


IGNORED_FORWARD = M2M_ATTENTION.replace(
    "    def forward(self, hidden):\n"
    "        # (B, L, D): M2M100 scales the queries\n"
    "        return hidden * self.marian_scale\n",
    "    # Ignore copy\n    def forward(self, hidden, mask):\n        return (hidden + mask) * self.marian_scale\n",
)


def test_ignore_copy_excludes_the_block_below_it(tree):
    write(tree, {M2M: copy_file(IGNORED_FORWARD)})
    assert check(tree) == []
    # without the comment the same method is drift
    write(tree, {M2M: copy_file(IGNORED_FORWARD.replace("    # Ignore copy\n", ""))})
    assert [p.line for p in check(tree)] == [line_of(tree, M2M, "def forward(self, hidden, mask)")]


def test_ignore_copy_excludes_only_that_block(tree):
    write(tree, {M2M: copy_file(IGNORED_FORWARD.replace("        return x\n", "        return x * 2\n"))})
    assert [p.line for p in check(tree)] == [line_of(tree, M2M, "return x * 2")]


def test_ignore_copy_on_a_statement_and_on_an_extra_method(tree):
    body = M2M_ATTENTION.replace(
        "        self.num_heads = num_heads\n", "        # Ignore copy\n        self.num_heads = 2 * num_heads\n"
    ).replace(
        "    @staticmethod\n",
        "    # Ignore copy\n    def extra(self):\n        return 'only in the copy'\n\n    @staticmethod\n",
    )
    write(tree, {M2M: copy_file(body)})
    assert check(tree) == []


def test_fix_keeps_ignored_blocks(tree):
    body = IGNORED_FORWARD.replace(
        "        return x\n", "        return x\n\n    # Ignore copy\n    def extra(self):\n        return 1\n"
    )
    write(tree, {M2M: copy_file(body)})
    assert check(tree) == []
    intact = (tree / M2M).read_bytes()
    path = tree / M2M
    path.write_text(path.read_text().replace("self.num_heads = num_heads", "self.num_heads = None"))
    assert len(check(tree)) == 1
    assert check(tree, fix=True) == []
    assert path.read_bytes() == intact


def test_ignore_copy_outside_a_copy_is_reported(tree):
    write(tree, {"westron/other.py": "X = 1\n\n# Ignore copy\ndef f():\n    pass\n"})
    assert [(p.path, p.line) for p in check(tree)] == [("westron/other.py", 3)]


# ---- chains, methods, indentation, whitespace --------------------------------------------------

CHAIN = {
    "westron/models/c/modeling_c.py": "def c_fn(x):\n    y = x + 1  # C\n    return y\n",
    "westron/models/b/modeling_b.py": (
        "# Copied from westron.models.c.modeling_c.c_fn with c_fn->b_fn, C->B\n"
        "def b_fn(x):\n    y = x + 1  # B\n    return y\n"
    ),
    "westron/models/a/modeling_a.py": (
        "# Copied from westron.models.b.modeling_b.b_fn with b_fn->a_fn, B->A\n"
        "def a_fn(x):\n    y = x + 1  # A\n    return y\n"
    ),
}


def test_chain_is_checked_link_by_link(tmp_path):
    write(tmp_path, CHAIN)
    assert check(tmp_path) == []
    # B drifts from C; A still matches B: only the B link fails
    write(tmp_path, {"westron/models/b/modeling_b.py": CHAIN["westron/models/b/modeling_b.py"].replace("+ 1", "+ 2")})
    write(tmp_path, {"westron/models/a/modeling_a.py": CHAIN["westron/models/a/modeling_a.py"].replace("+ 1", "+ 2")})
    assert [(p.path, p.line) for p in check(tmp_path)] == [("westron/models/b/modeling_b.py", 3)]


def test_fix_follows_a_chain_from_its_root(tmp_path):
    write(tmp_path, CHAIN)
    write(tmp_path, {"westron/models/c/modeling_c.py": CHAIN["westron/models/c/modeling_c.py"].replace("+ 1", "- 1")})
    assert len(check(tmp_path)) == 1  # only the first link sees the change
    assert check(tmp_path, fix=True) == []
    assert "y = x - 1  # A" in (tmp_path / "westron/models/a/modeling_a.py").read_text()


def test_copied_method_inside_a_class(tree):
    body = textwrap.dedent(f'''\
        class M2M100DecoderAttention:
            def __init__(self):
                self.marian_scale = 0.5

            # Copied from {REF}.MarianAttention.forward with Marian->M2M100
            def forward(self, hidden):
                # (B, L, D): M2M100 scales the queries
                return hidden * self.marian_scale
        ''')
    write(tree, {M2M: copy_file(body, "# a plain comment")})
    assert check(tree) == []
    path = tree / M2M
    path.write_text(path.read_text().replace("return hidden * self.marian_scale", "return hidden / self.marian_scale"))
    problems = check(tree)
    assert [(p.path, p.line, p.message) for p in problems] == [
        (
            M2M,
            line_of(tree, M2M, "return hidden /"),
            f"M2M100DecoderAttention.forward differs from {REF}.MarianAttention.forward",
        )
    ]


def test_indentation_is_normalised_between_method_function_and_class(tree):
    body = textwrap.dedent(f'''\
        # Copied from {REF}.MarianAttention.forward with Marian->M2M100
        def attention_forward(self, hidden):
            # (B, L, D): M2M100 scales the queries
            return hidden * self.marian_scale


        class Helpers:
            class Inner:
                # Copied from {REF}.marian_helper
                def helper(x):
                    return x + 1
        ''')
    write(tree, {M2M: copy_file(body, "# a plain comment")})
    assert check(tree) == []
    intact = (tree / M2M).read_bytes()
    path = tree / M2M
    text = path.read_text().replace("    return hidden * self", "    return hidden + self")
    path.write_text(text.replace("return x + 1", "return x + 9"))
    assert len(check(tree)) == 2
    assert check(tree, fix=True) == []
    assert path.read_bytes() == intact


def test_blank_lines_and_trailing_whitespace_are_not_drift(tree):
    loose = M2M_ATTENTION.replace("        self.embed_dim = embed_dim\n", "\n        self.embed_dim = embed_dim   \n\n")
    loose = loose.replace("\n\n    def forward", "\n    def forward").replace("return x\n", "return x\t\n")
    write(tree, {M2M: copy_file(loose)})
    assert check(tree) == []


def test_one_name_assignments_can_be_copied(tree):
    source = MARIAN_SOURCE + '\nMARIAN_ACT = {\n    "relu": "marian_relu",\n}\n'
    copy = copy_file('M2M100_ACT = {\n    "relu": "marian_relu",\n}\n', f"# Copied from {REF}.MARIAN_ACT with MARIAN->M2M100")
    write(tree, {MARIAN: source, M2M: copy})
    assert check(tree) == []
    path = tree / M2M
    path.write_text(path.read_text().replace('"relu": ', '"gelu": '))
    assert [p.line for p in check(tree)] == [8]
    assert check(tree, fix=True) == []
    assert '    "relu": "marian_relu",' in path.read_text()


def test_decorators_are_part_of_the_copy(tree):
    write(tree, {M2M: copy_file(M2M_ATTENTION.replace("    @staticmethod\n", "    @classmethod\n"))})
    assert [p.line for p in check(tree)] == [line_of(tree, M2M, "@classmethod")]


# ---- the single-model-file rule -----------------------------------------------------------------


def test_clean_model_folder_passes(tree):
    write(tree, {
        "westron/modeling_utils.py": "import torch\n",
        "westron/models/m2m100/configuration_m2m100.py": "from westron.configuration_utils import X\n",
        "westron/models/m2m100/modeling_tf_m2m100.py": (
            "import keras\nimport tensorflow as tf\n\nfrom westron.modeling_outputs import Out\n"
            "from .configuration_m2m100 import M2M100Config\nfrom . import configuration_m2m100\n"
            "from westron.models.m2m100 import configuration_m2m100 as c\nfrom westron.models import m2m100\n"
        ),
    })
    assert check(tree) == []


@pytest.mark.parametrize("rel, text, message", [
    (M2M, "import math\n\n\ndef f():\n    from westron.models.marian.modeling_marian import MarianAttention\n",
     "imports westron.models.marian.modeling_marian (another model's folder)"),
    (M2M, "x = 1\nfrom ..marian import configuration_marian\n",
     "imports westron.models.marian (another model's folder)"),
    (M2M, "x = 1\nfrom .. import marian\n", "imports westron.models.marian (another model's folder)"),
    (M2M, "x = 1\nimport westron.models.auto\n", "imports westron.models.auto (the auto registry)"),
    (M2M, "x = 1\nfrom westron.models.auto import AutoConfig\n", "imports westron.models.auto (the auto registry)"),
    ("westron/models/m2m100/modeling_tf_m2m100.py", "import keras\nimport torch\n",
     "TensorFlow file imports torch (PyTorch)"),
    ("westron/models/m2m100/modeling_tf_m2m100.py", "import keras\n\n\ndef f():\n    from torch import nn\n",
     "TensorFlow file imports torch (PyTorch)"),
    ("westron/models/m2m100/modeling_tf_m2m100.py", "import keras\nfrom .modeling_m2m100 import X\n",
     "TensorFlow file imports westron.models.m2m100.modeling_m2m100 (PyTorch)"),
    (M2M, "import torch\nimport tensorflow as tf\n", "PyTorch file imports tensorflow (TensorFlow)"),
    (M2M, "import torch\nfrom keras import layers\n", "PyTorch file imports keras (TensorFlow)"),
    (M2M, "import torch\nfrom westron.modeling_tf_utils import TFPreTrainedModel\n",
     "PyTorch file imports westron.modeling_tf_utils (TensorFlow)"),
    ("westron/models/m2m100/tokenization_m2m100.py", "import torch\n\n\ndef f():\n    import tensorflow\n",
     "PyTorch file imports tensorflow (TensorFlow)"),
    ("westron/generation/tf_search.py", "import tensorflow\nimport torch\n", "TensorFlow file imports torch (PyTorch)"),
])
def test_import_rule_violations_are_reported_with_path_and_line(tree, rel, text, message):
    write(tree, {rel: text})
    problems = check(tree)
    assert [(p.path, p.line) for p in problems] == [(rel, len(text.splitlines()))]
    assert problems[0].message.startswith(message), problems[0].message


def test_shared_core_may_import_the_models_package(tree):
    shared = "from westron.models.auto import AutoConfig\nimport torch\nimport tensorflow\n"
    write(tree, {"westron/pipelines.py": shared})
    assert check(tree) == []


# ---- the command ---------------------------------------------------------------------------------


def test_command_prints_path_line_and_diff_and_exits_1_without_importing_the_code(tree):
    path = tree / M2M
    path.write_text(path.read_text().replace("return x\n", "return x  \n        # new\n"))
    write(tree, {"westron/models/m2m100/modeling_tf_m2m100.py": "import torch\n"})
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('cc', {str(SCRIPT)!r})\n"
        "cc = importlib.util.module_from_spec(spec); sys.modules['cc'] = cc; spec.loader.exec_module(cc)\n"
        f"code = cc.main(['--root', {str(tree)!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tensorflow', 'westron'))\n"
        "print(json.dumps([code, loaded]))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tree, timeout=60)
    *report, last = result.stdout.splitlines()
    assert json.loads(last) == [1, []], result.stderr
    assert report[0] == f"{M2M}:{line_of(tree, M2M, '# new')}: M2M100Attention differs from {REF}.MarianAttention"
    assert "-        # new" in report  # the diff turns the copy into what it should read
    assert "westron/models/m2m100/modeling_tf_m2m100.py:1: TensorFlow file imports torch" in "\n".join(report)
    assert "2 problem(s)" in result.stderr

    command = [sys.executable, str(SCRIPT), "--root", str(tree)]
    result = subprocess.run(command + ["--fix"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1  # the import violation cannot be fixed
    assert f"{M2M}:7: rewrote M2M100Attention from {REF}.MarianAttention" in result.stdout
    (tree / "westron/models/m2m100/modeling_tf_m2m100.py").unlink()
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "")


def test_the_repository_is_checked_without_crashing():
    # The result is not asserted here (`make check-copies` is the gate), only that checking the real
    # tree runs through. How fast it is is not a unit test's business (no timed assertions).
    cc.run(REPO)


# ---- the real model families: copies between them that once had no marker ------------------------------

MARIAN_PT = ("westron/models/marian/modeling_marian.py", "westron.models.marian.modeling_marian")
MARIAN_TF = ("westron/models/marian/modeling_tf_marian.py", "westron.models.marian.modeling_tf_marian")
# (copy file, the copy's class, source file and module, the source's class, method)
FAMILY_COPIES = [
    ("westron/models/t5/modeling_t5.py", "T5ForConditionalGeneration", MARIAN_PT, "MarianMTModel", "get_output_embeddings"),
    ("westron/models/t5/modeling_t5.py", "T5ForConditionalGeneration", MARIAN_PT, "MarianMTModel", "set_output_embeddings"),
    ("westron/models/t5/modeling_t5.py", "T5ForConditionalGeneration", MARIAN_PT, "MarianMTModel", "prepare_decoder_input_ids_from_labels"),
    ("westron/models/t5/modeling_tf_t5.py", "TFT5ForConditionalGeneration", MARIAN_TF, "TFMarianMTModel", "prepare_decoder_input_ids_from_labels"),
    ("westron/models/m2m_100/modeling_m2m_100.py", "M2M100Model", MARIAN_PT, "MarianModel", "get_input_embeddings"),
    ("westron/models/m2m_100/modeling_m2m_100.py", "M2M100ForConditionalGeneration", MARIAN_PT, "MarianMTModel", "forward"),
]


def method_node(path: Path, class_name: str, method: str) -> ast.FunctionDef:
    tree = ast.parse(path.read_text())
    [cls] = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name]
    [node] = [node for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == method]
    return node


def test_drift_in_marians_methods_is_caught_at_their_copies_in_other_families(tmp_path):
    """The checker keeps these in step only if they are marked: a line added to each Marian method is
    reported at the other family's copy (one check of a copy of the real tree)."""
    shutil.copytree(REPO / "westron", tmp_path / "westron")
    for _, _, (source_rel, _), source_class, method in FAMILY_COPIES:
        path = tmp_path / source_rel
        last = method_node(path, source_class, method).body[-1]  # a statement after any docstring
        lines = path.read_text().splitlines(keepends=True)
        lines.insert(last.lineno - 1, f"{lines[last.lineno - 1][: last.col_offset]}assert self is not None  # drift\n")
        path.write_text("".join(lines))

    problems = cc.run(tmp_path, out=io.StringIO())
    for copy_rel, copy_class, (_, source_module), source_class, method in FAMILY_COPIES:
        copy = method_node(tmp_path / copy_rel, copy_class, method)
        found = [p for p in problems if p.path == copy_rel and copy.lineno <= p.line <= copy.end_lineno]
        assert [p.message for p in found] == [f"{copy_class}.{method} differs from {source_module}.{source_class}.{method}"], problems
        assert "assert self is not None" in found[0].details
