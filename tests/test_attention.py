"""Attention maps: westron.attention (shapes, normalisation, PT = TF), the PNG/HTML renderer and `westron attention`.

Tiny random checkpoints of the three families with their real (tiny, trained) tokenizers, whose
corpus holds Hebrew, Japanese and Georgian, so the token labels are in those scripts too.
"""

from __future__ import annotations

import json
import os
import re
import warnings

import numpy as np
import pytest

import westron
from tests import hf_oracle, spm_fixtures
from tests.cli_utils import run_cli
from westron.attention_maps import KINDS, AttentionMaps, attention, attention_weights, max_difference
from westron.errors import WestronError

# Attention weights lie in [0, 1]: float32 rounding in two frameworks' kernels stays far below this
# on tiny models with ordinary initialisation (measured: ~1e-7); the issue asks for 1e-5.
AGREEMENT_TOL = 1e-5
SUM_TOL = 1e-5  # a softmax row's sum in float32, over at most a few dozen keys

HEBREW, JAPANESE, GEORGIAN = "שלום, מה שלומך?", "駅はどこですか？", "გამარჯობა"


@pytest.fixture(scope="module")
def marian_folder(tmp_path_factory):
    folder = spm_fixtures.write_marian_folder(tmp_path_factory.mktemp("marian"))
    vocab = json.load(open(os.path.join(folder, "vocab.json"), encoding="utf-8"))
    pad = vocab["<pad>"]
    hf_oracle.save_tiny_marian(folder, seed=1, vocab_size=len(vocab), pad_token_id=pad, decoder_start_token_id=pad)
    return folder


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    folder = spm_fixtures.write_t5_folder(tmp_path_factory.mktemp("t5"))
    hf_oracle.save_tiny_t5(folder, seed=1, vocab_size=len(westron.T5Tokenizer.from_pretrained(folder)))
    return folder


@pytest.fixture(scope="module")
def nllb_folder(tmp_path_factory):
    folder = spm_fixtures.write_nllb_folder(tmp_path_factory.mktemp("nllb"))
    vocab_size = len(westron.AutoTokenizer.from_pretrained(folder))
    hf_oracle.save_tiny_m2m100(folder, seed=1, vocab_size=vocab_size, max_position_embeddings=128)
    return folder


FAMILIES = {
    "marian": dict(),
    "t5": dict(source_prefix="translate English to German: "),
    "nllb": dict(src_lang="eng_Latn", tgt_lang="heb_Hebr"),
}


@pytest.fixture
def family_folder(request):
    return request.getfixturevalue(f"{request.param}_folder")


def load(folder, framework):
    auto = westron.AutoModelForSeq2SeqLM if framework == "pt" else westron.TFAutoModelForSeq2SeqLM
    return auto.from_pretrained(folder), westron.AutoTokenizer.from_pretrained(folder)


# ---- the arrays ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family_folder", list(FAMILIES), indirect=True)
def test_shapes_labels_and_pt_tf_agreement(family_folder, request):
    """Every family: (layers, heads, q, k) per kind, labels as the tokenizer splits, PT = TF within 1e-5."""
    options = FAMILIES[request.node.callspec.params["family_folder"]]
    model, tokenizer = load(family_folder, "pt")
    source = f"The road goes ever on. {HEBREW}"
    maps = attention(model, tokenizer, source, max_new_tokens=6, **options)  # the model's own translation

    prefix = options.get("source_prefix", "")
    want_source = tokenizer.convert_ids_to_tokens(tokenizer(prefix + source)["input_ids"])
    assert maps.source_tokens == want_source
    assert any("ש" in token for token in maps.source_tokens)  # the Hebrew pieces are labels too
    assert maps.target_ids[0] == model.config.decoder_start_token_id and 2 <= len(maps.target_ids) <= 7
    assert maps.target_tokens == tokenizer.convert_ids_to_tokens(maps.target_ids)
    assert maps.target == tokenizer.decode(maps.target_ids, skip_special_tokens=True)
    S, T = len(maps.source_tokens), len(maps.target_tokens)
    config = model.config
    encoder_layers = getattr(config, "encoder_layers", getattr(config, "num_layers", None))
    decoder_layers = getattr(config, "decoder_layers", getattr(config, "num_decoder_layers", None))
    heads = getattr(config, "encoder_attention_heads", getattr(config, "num_heads", None))
    assert maps.encoder.shape == (encoder_layers, heads, S, S)
    assert maps.decoder.shape == (decoder_layers, heads, T, T)
    assert maps.cross.shape == (decoder_layers, heads, T, S)
    assert all(maps.weights[kind].dtype == np.float32 for kind in KINDS)

    tf_model, tf_tokenizer = load(family_folder, "tf")
    tf_maps = attention(tf_model, tf_tokenizer, source, target_ids=maps.target_ids, **options)
    assert tf_maps.framework == "tf" and tf_maps.source_tokens == maps.source_tokens
    difference = max_difference(maps, tf_maps)
    assert difference <= AGREEMENT_TOL, difference


def test_forced_target_is_the_decoder_input(marian_folder):
    model, tokenizer = load(marian_folder, "pt")
    maps = attention(model, tokenizer, "Where is the train station?", target=JAPANESE)
    labels = tokenizer(text_target=JAPANESE)["input_ids"]
    assert maps.target_ids == [model.config.decoder_start_token_id] + labels
    assert maps.target == JAPANESE
    assert maps.cross.shape[2:] == (len(labels) + 1, len(maps.source_tokens))


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_rows_sum_to_one_over_unmasked_keys_and_zero_on_padding(marian_folder, framework):
    model, tokenizer = load(marian_folder, framework)
    batch = tokenizer(["Where is the train station? " + GEORGIAN, "x"], text_target=[JAPANESE, "ok"], padding=True, return_tensors="np")
    start = np.full((2, 1), model.config.decoder_start_token_id)
    decoder_ids = np.concatenate([start, batch["labels"]], axis=1)
    decoder_ids[decoder_ids == -100] = model.config.pad_token_id
    decoder_mask = np.concatenate([np.ones((2, 1), dtype=np.int64), (batch["labels"] != model.config.pad_token_id)], axis=1)
    weights = attention_weights(model, batch["input_ids"], batch["attention_mask"], decoder_ids, decoder_mask)

    source_keys = batch["attention_mask"].astype(bool)  # (B, S)
    target_len = decoder_ids.shape[1]
    causal = np.tril(np.ones((target_len, target_len), dtype=bool))  # query i sees keys 0..i
    key_masks = {
        "encoder": source_keys[:, None, :],  # (B, 1, S)
        "cross": source_keys[:, None, :],
        "decoder": causal[None] & decoder_mask.astype(bool)[:, None, :],  # (B, T, T)
    }
    assert source_keys[1].sum() < source_keys.shape[1]  # the second row really is padded
    for kind in KINDS:
        w = weights[kind]  # (B, L, H, q, k)
        visible = np.broadcast_to(key_masks[kind][:, None, None], w.shape)
        assert np.all(w[~visible] == 0.0), kind  # exactly zero: the mask is the dtype's minimum
        sums = w.sum(axis=-1)
        np.testing.assert_allclose(sums, np.ones_like(sums), atol=SUM_TOL, err_msg=kind)


def test_index_lists():
    import argparse

    from westron.attention_cli import index_list

    assert index_list("0,2-3,-1") == [0, 2, 3, -1] and index_list("all") is None
    for bad in ("3-1", "x", "1-"):
        with pytest.raises(argparse.ArgumentTypeError):
            index_list(bad)


def test_select_layers_and_heads(marian_folder):
    maps = attention(*load(marian_folder, "pt"), "Speak, friend.", target="Hallo")
    chosen = maps.select(layers=[-1], heads=[0, 2])
    assert chosen.layers["encoder"] == [1] and chosen.heads["cross"] == [0, 2]
    np.testing.assert_array_equal(chosen.cross, maps.cross[[1]][:, [0, 2]])
    with pytest.raises(WestronError, match="no layer 5"):
        maps.select(layers=[5])
    with pytest.raises(WestronError, match="no head 4"):
        maps.select(heads=[4])


def test_npz_round_trip(tmp_path, marian_folder):
    maps = attention(*load(marian_folder, "pt"), HEBREW, target=GEORGIAN)
    maps.save_npz(tmp_path / "maps.npz")
    back = AttentionMaps.load_npz(tmp_path / "maps.npz")
    assert back.source_tokens == maps.source_tokens and back.target == GEORGIAN and back.target_ids == maps.target_ids
    for kind in KINDS:
        np.testing.assert_array_equal(back.weights[kind], maps.weights[kind])


def test_a_model_that_cannot_output_attentions_is_a_clear_error(marian_folder):
    import torch

    from westron.models.marian.modeling_marian import MarianMTModel

    class FusedOnlyMarian(MarianMTModel):  # as a fused-kernel model: the weights are never materialised
        def forward(self, *args, output_attentions=None, **kwargs):
            return super().forward(*args, output_attentions=False, **kwargs)

    class NoFlagModel(torch.nn.Module):
        config = MarianMTModel.from_pretrained(marian_folder).config

        def forward(self, input_ids, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None):
            raise AssertionError("not called")

    tokenizer = westron.AutoTokenizer.from_pretrained(marian_folder)
    with pytest.raises(WestronError, match="returned no encoder_attentions: it cannot output attention weights"):
        attention(FusedOnlyMarian.from_pretrained(marian_folder), tokenizer, "Speak.", target="Hallo")
    with pytest.raises(WestronError, match="NoFlagModel cannot output attention weights"):
        attention(NoFlagModel(), tokenizer, "Speak.", target="Hallo")


def test_bad_sentences_are_errors(marian_folder):
    model, tokenizer = load(marian_folder, "pt")
    with pytest.raises(WestronError, match="non-empty source"):
        attention(model, tokenizer, "  ")
    with pytest.raises(WestronError, match="target sentence is empty"):
        attention(model, tokenizer, "Speak.", target="")
    # Generation settings with a forced target would be ignored: refused, as the CLI refuses --num-beams with --target.
    with pytest.raises(WestronError, match="max_new_tokens, num_beams shape.s. the model's own translation"):
        attention(model, tokenizer, "Speak.", target="Hallo", num_beams=4, max_new_tokens=3)
    with pytest.raises(WestronError, match="num_beams shape"):
        attention(model, tokenizer, "Speak.", target_ids=[0, 5], num_beams=4)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_a_target_past_the_position_table_is_an_error(marian_folder, framework):
    """The tiny Marian has 64 positions: a longer forced target is one WestronError in both twins, not an IndexError."""
    model, tokenizer = load(marian_folder, framework)
    with pytest.raises(WestronError, match="the model takes at most 64: shorten it"):
        attention(model, tokenizer, "Speak.", target="Hallo " * 70)
    with pytest.raises(WestronError, match="takes at most 64"):
        attention(model, tokenizer, "Speak.", target_ids=[0] * 65)
    assert attention(model, tokenizer, "Speak.", target_ids=[0] * 64).cross.shape[2] == 64  # the limit itself is fine


# ---- drawing ----------------------------------------------------------------------------------------------


def fake_maps(source_tokens, target_tokens, framework="pt", seed=0) -> AttentionMaps:
    """Tiny row-normalised maps with the given labels (1 layer, 2 heads): drawing needs no model."""
    rng = np.random.default_rng(seed)

    def rows(q, k):
        w = rng.random((1, 2, q, k)).astype(np.float32)
        return w / w.sum(-1, keepdims=True)

    S, T = len(source_tokens), len(target_tokens)
    weights = {"encoder": rows(S, S), "decoder": rows(T, T), "cross": rows(T, S)}
    return AttentionMaps(
        list(source_tokens), list(target_tokens), weights, {k: [0] for k in KINDS}, {k: [0, 1] for k in KINDS},
        framework, "source", "target", list(range(T)),
    )  # fmt: skip


def png_pixels(path):
    import matplotlib.image

    return matplotlib.image.imread(path)


def needs_fonts(*families):
    from westron.attention_render import FONT_PACKAGES, label_fonts

    missing = [family for family in families if family not in label_fonts()]
    if missing:
        pytest.skip(f"fonts {missing} are not installed (make fonts, or apt-get install {FONT_PACKAGES})")


def test_right_to_left_labels_read_right_to_left(tmp_path):
    """A Hebrew label drawn equals its letters reversed and forced left-to-right (U+202D ... U+202C).

    Drawn letter by letter left to right (no bidi), the image would equal the control instead.
    """
    from westron.attention_render import render_png

    needs_fonts("DejaVu Sans")
    word = "שלום"
    forced = "\u202d" + word[::-1] + "\u202c"
    images = {}
    for name, token in (("rtl", word), ("visual", forced), ("control", word[::-1])):
        images[name] = png_pixels(render_png([fake_maps(["abcdef", token], ["b"])], "encoder", tmp_path / f"{name}.png"))
    assert images["rtl"].shape == images["visual"].shape
    assert np.array_equal(images["rtl"], images["visual"])
    assert not np.array_equal(images["rtl"], images["control"])


def test_cjk_georgian_and_hebrew_labels_have_glyphs(tmp_path):
    from westron.attention_render import MissingGlyphWarning, render_png

    needs_fonts("DejaVu Sans", "Noto Sans CJK JP")
    tokens = ["▁駅", "は", "どこ", "▁გამარჯობა", "▁שלום", "</s>"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingGlyphWarning)
        warnings.filterwarnings("error", message=".*missing from font")
        path = render_png([fake_maps(tokens, tokens)], "cross", tmp_path / "cross.png")
    assert os.path.getsize(path) > 0


def test_a_glyph_no_font_has_is_one_warning(tmp_path):
    from westron.attention_render import MissingGlyphWarning, render_png

    with pytest.warns(MissingGlyphWarning, match="no installed font can draw") as record:
        render_png([fake_maps(["\U0010fffd\U0010fffc", "a"], ["b"])], "encoder", tmp_path / "tofu.png")
    assert len([w for w in record if issubclass(w.category, MissingGlyphWarning)]) == 1


def test_html_view_is_self_contained_with_the_data(tmp_path):
    from westron.attention_render import render_html

    maps = fake_maps(["▁שלום", "</script>", "駅"], ["<pad>", "ok"])
    path = render_html([maps, fake_maps(maps.source_tokens, maps.target_tokens, "tf", seed=1)], tmp_path / "a.html")
    page = open(path, encoding="utf-8").read()
    assert "http://" not in page and "https://" not in page and "<script src" not in page  # works offline
    assert page.count("</script>") == 2  # the token "</script>" is escaped inside the JSON
    payload = re.search(r'<script type="application/json" id="westron-attention-data">(.*?)</script>', page, re.S).group(1)
    data = json.loads(payload)
    assert data["source_tokens"] == maps.source_tokens and data["frameworks"] == ["pt", "tf"]
    np.testing.assert_allclose(data["maps"]["cross"]["weights"]["pt"], maps.cross, atol=5e-5)
    assert data["comparison"].startswith("max |PyTorch - TensorFlow| = ")


def test_report_section_for_the_compare_report(tmp_path):
    from westron.attention_render import report_section

    maps = fake_maps(["a", "b"], ["c"])
    section = report_section([maps], tmp_path / "report" / "images", element_id="sample-1")
    assert [os.path.basename(p) for p in section.images] == ["attention_encoder.png", "attention_decoder.png", "attention_cross.png"]
    assert all(os.path.getsize(p) > 0 for p in section.images)
    assert "![cross-attention](images/attention_cross.png)" in section.markdown
    assert section.html.startswith('<div class="wa-root" id="sample-1">')


# ---- the command ----------------------------------------------------------------------------------------------


def test_cli_both_frameworks_writes_every_file(tmp_path, nllb_folder, monkeypatch):
    out = tmp_path / "maps"
    argv = ["attention", "--model", nllb_folder, "--source", "Where is the train station?", "--src-lang", "eng_Latn",
            "--tgt-lang", "jpn_Jpan", "--framework", "both", "--layers=-1", "--heads", "0-1", "--max-new-tokens", "5", "-o", str(out)]  # fmt: skip
    code, stdout, stderr = run_cli(argv, monkeypatch)
    assert code == 0, stderr
    names = ["attention.html", "attention_pt.npz", "attention_tf.npz", "cross.png", "decoder.png", "encoder.png"]
    assert sorted(os.listdir(out)) == names
    assert all(os.path.getsize(out / name) > 0 for name in names)
    assert png_pixels(out / "cross.png").shape[0] > 50
    difference = float(re.search(r"attention weight difference: (\S+)", stdout).group(1))
    assert difference <= AGREEMENT_TOL
    pt, tf = (AttentionMaps.load_npz(out / f"attention_{fw}.npz") for fw in ("pt", "tf"))
    assert pt.layers["cross"] == [1] and pt.heads["encoder"] == [0, 1] and pt.cross.shape[:2] == (1, 2)
    assert pt.target_tokens[1] == "jpn_Jpan" and pt.target_ids == tf.target_ids
    assert max_difference(pt, tf) <= AGREEMENT_TOL

    # A second run replaces the folder it wrote; a folder of other files is refused.
    code, _, stderr = run_cli(argv[:-2] + ["--framework", "pt", "-o", str(out)], monkeypatch)
    assert code == 0, stderr and not os.path.exists(out / "attention_tf.npz")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, stderr = run_cli(argv[:-2] + ["-o", str(tmp_path / "mine")], monkeypatch)
    assert code == 2 and "holds other files" in stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--layers", "7"], "the model has no layer 7"),
        (["--target", "Hallo", "--num-beams", "2"], "leave them out with --target"),
        (["--target", "Hallo " * 70], "the model takes at most 64"),
    ],
)
def test_cli_mistakes_are_one_line_errors(tmp_path, marian_folder, monkeypatch, extra, message):
    argv = ["attention", "--model", marian_folder, "--source", "Speak.", "--framework", "pt", "-o", str(tmp_path / "o")]
    code, _, stderr = run_cli(argv + extra, monkeypatch)
    assert code == 2 and stderr.strip().count("\n") == 0 and message in stderr, stderr
    assert not os.path.exists(tmp_path / "o")
