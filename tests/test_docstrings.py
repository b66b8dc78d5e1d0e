"""The `Example:` sections of the public entry points run, so they never rot.

A tiny Marian checkpoint folder (random weights, a SentencePiece tokenizer: `westron demo`'s) is
built once and exposed to the examples as `checkpoint`, the name they use for "a folder or Hub id
such as Helsinki-NLP/opus-mt-en-de". The untrained model translates into noise, so examples show
translations as '...'. Each example runs in a fresh temporary working folder (they save into it).
"""

from __future__ import annotations

import doctest
import importlib

import pytest

from westron.demo import build_demo_checkpoint

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# module, dotted name of an object whose docstring carries an example
DOCUMENTED = [
    ("westron.modeling_utils", "PreTrainedModel.from_pretrained"),
    ("westron.modeling_utils", "PreTrainedModel.generate"),
    ("westron.modeling_utils", "PreTrainedModel.compute_transition_scores"),
    ("westron.modeling_utils", "PreTrainedModel.resize_token_embeddings"),
    ("westron.data_collator", "DataCollatorForSeq2Seq"),
    ("westron.modeling_tf_utils", "TFPreTrainedModel.from_pretrained"),
    ("westron.modeling_tf_utils", "TFPreTrainedModel.generate"),
    ("westron.modeling_tf_utils", "TFPreTrainedModel.compute_transition_scores"),
    ("westron.models.auto", "AutoTokenizer.from_pretrained"),
    ("westron.models.auto", "_AutoModel.from_pretrained"),
    ("westron.tokenization_utils", "PreTrainedTokenizer.from_pretrained"),
    ("westron.tokenization_utils", "PreTrainedTokenizer.__call__"),
    ("westron.tokenization_utils", "PreTrainedTokenizer.batch_decode"),
    ("westron.tokenization_utils", "PreTrainedTokenizer.save_pretrained"),
    ("westron.pipelines", "pipeline"),
    ("westron.torch_quantization", "quantize_model"),
    ("westron.tf_quantization", "quantize_model"),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_demo_checkpoint(str(tmp_path_factory.mktemp("docstrings") / "tiny-opus-mt"))


def find_object(module_name: str, dotted: str):
    value = importlib.import_module(module_name)
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("module_name, dotted", DOCUMENTED, ids=[name for _, name in DOCUMENTED])
def test_docstring_example_runs(module_name, dotted, checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tests = doctest.DocTestFinder(recurse=False).find(
        find_object(module_name, dotted), f"{module_name}.{dotted}", globs={"checkpoint": checkpoint}
    )
    examples = [test for test in tests if test.examples]
    assert examples, f"{module_name}.{dotted} has no Example"
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report: list[str] = []
    for test in examples:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
