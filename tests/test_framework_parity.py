"""Framework parity over every registered model family.

Built from a tiny config, the PyTorch model and the TensorFlow model must expose the same
checkpoint tensor names with the same shapes, and every PyTorch class in a modeling file must have
its TF twin. A parameter one twin grows and the other lacks fails here, by name.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

from westron.models.auto import MODEL_FAMILIES, import_object

ROOT = pathlib.Path(__file__).resolve().parents[1]

# One tiny config per family and per shape that changes the parameter set.
TINY_CONFIGS: dict[str, list[dict]] = {
    "marian": [
        dict(vocab_size=99, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
             decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, max_position_embeddings=32,
             pad_token_id=98, decoder_start_token_id=98),
        dict(vocab_size=99, d_model=16, encoder_layers=1, decoder_layers=2, encoder_attention_heads=2,
             decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, max_position_embeddings=32,
             pad_token_id=60, decoder_start_token_id=60, share_encoder_decoder_embeddings=False,
             decoder_vocab_size=61, tie_word_embeddings=False),
    ],
    "t5": [
        dict(vocab_size=99, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_decoder_layers=1, num_heads=2,
             relative_attention_num_buckets=8, feed_forward_proj="relu"),
        dict(vocab_size=99, d_model=16, d_kv=4, d_ff=24, num_layers=1, num_decoder_layers=2, num_heads=2,
             relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", tie_word_embeddings=False),
    ],
    "mt5": [
        dict(vocab_size=99, d_model=16, d_kv=4, d_ff=24, num_layers=1, num_decoder_layers=1, num_heads=2,
             relative_attention_num_buckets=8, tie_word_embeddings=False),
    ],
    "m2m_100": [
        dict(vocab_size=99, d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
             decoder_attention_heads=2, encoder_ffn_dim=24, decoder_ffn_dim=24, max_position_embeddings=32),
        dict(vocab_size=99, d_model=15, encoder_layers=1, decoder_layers=2, encoder_attention_heads=3,
             decoder_attention_heads=3, encoder_ffn_dim=24, decoder_ffn_dim=24, max_position_embeddings=32,
             pad_token_id=30, scale_embedding=False, tie_word_embeddings=False),
    ],
}

CASES = [(model_type, i) for model_type in MODEL_FAMILIES for i in range(len(TINY_CONFIGS.get(model_type, [None])))]


def test_every_family_has_tiny_configs():
    assert sorted(TINY_CONFIGS) == sorted(MODEL_FAMILIES)


@pytest.mark.parametrize("model_type, index", CASES)
def test_same_checkpoint_names_and_shapes(model_type, index):
    family = MODEL_FAMILIES[model_type]
    config = import_object(family.config)(**TINY_CONFIGS[model_type][index])
    pt_model = import_object(family.pt_model)(config)
    tf_model = import_object(family.tf_model)(config)

    assert pt_model.tied_weights() == tf_model.tied_weights()
    tied = pt_model.tied_weights()
    pt_shapes = {name: tuple(t.shape) for name, t in pt_model.state_dict().items() if name not in tied}
    tf_shapes = tf_model.checkpoint_shapes()

    only_pt = sorted(set(pt_shapes) - set(tf_shapes))
    only_tf = sorted(set(tf_shapes) - set(pt_shapes))
    assert not only_pt, f"in PyTorch only: {only_pt}"
    assert not only_tf, f"in TensorFlow only: {only_tf}"
    differing = {n: (pt_shapes[n], tf_shapes[n]) for n in pt_shapes if pt_shapes[n] != tf_shapes[n]}
    assert not differing, f"shape differs (pt, tf): {differing}"


def _classes(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


@pytest.mark.parametrize("model_type", sorted(MODEL_FAMILIES))
def test_every_pytorch_class_has_its_tf_twin_in_the_same_order(model_type):
    module = MODEL_FAMILIES[model_type].pt_model.rsplit(".", 1)[0]
    pt_file = ROOT / (module.replace(".", "/") + ".py")
    tf_file = pt_file.with_name(pt_file.name.replace("modeling_", "modeling_tf_", 1))
    pt_classes = _classes(pt_file)
    tf_classes = _classes(tf_file)
    expected = ["TF" + name for name in pt_classes]
    missing = [name for name in expected if name not in tf_classes]
    assert not missing, f"{tf_file.name} lacks the twins {missing}"
    in_order = [name for name in tf_classes if name in expected]
    assert in_order == expected, f"{tf_file.name} classes are not in {pt_file.name}'s order"


def test_public_names_resolve_and_cover_every_family():
    """Every lazy name imports, and each family's config, tokenizer, PT and TF classes are exported."""
    import westron

    for name in westron._LAZY_NAMES:
        assert getattr(westron, name).__name__ == name
    exported = set(westron._LAZY_NAMES)
    for family in MODEL_FAMILIES.values():
        for dotted in family:
            assert dotted.rsplit(".", 1)[1] in exported, f"westron does not export {dotted}"
