"""pipeline("translation") across families: source prefixes (T5) and languages (NLLB), HF as the oracle."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import westron
from tests import hf_oracle, spm_fixtures
from westron.errors import WestronError

SOURCES = ["The road goes ever on.", "Speak, friend, and enter.", "Not all those who wander are lost, said the wizard."]


@pytest.fixture(scope="module")
def nllb_folder(tmp_path_factory):
    folder = spm_fixtures.write_nllb_folder(tmp_path_factory.mktemp("nllb"))
    vocab_size = len(westron.AutoTokenizer.from_pretrained(folder))
    hf_oracle.save_tiny_m2m100(folder, seed=3, vocab_size=vocab_size, max_position_embeddings=128, init_std=0.5)
    return folder


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory):
    folder = spm_fixtures.write_t5_folder(tmp_path_factory.mktemp("t5"))
    vocab_size = len(westron.T5Tokenizer.from_pretrained(folder))  # no config.json yet for AutoTokenizer
    hf_oracle.save_tiny_t5(folder, seed=3, vocab_size=vocab_size, initializer_factor=5.0)
    config_path = os.path.join(folder, "config.json")
    config = json.load(open(config_path))
    config["task_specific_params"] = {
        "translation_en_to_de": {"prefix": "translate English to German: ", "num_beams": 2, "max_length": 12},
        "translation_en_to_fr": {"prefix": "translate English to French: ", "num_beams": 2, "max_length": 12},
    }
    json.dump(config, open(config_path, "w"))
    return folder


def hf_translate(folder, texts, prefix="", **generate_kwargs):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    batch = tokenizer([prefix + text for text in texts], return_tensors="pt", padding=True)
    with torch.no_grad():
        ids = model.generate(**batch, **generate_kwargs)
    return tokenizer.batch_decode(ids, skip_special_tokens=True)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_nllb_forces_the_target_language_like_hf(nllb_folder, framework):
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(nllb_folder, src_lang="eng_Latn")
    want = hf_translate_nllb(nllb_folder, hf_tokenizer, "heb_Hebr")
    translator = westron.pipeline(
        "translation", model=nllb_folder, framework=framework, src_lang="eng_Latn", tgt_lang="heb_Hebr"
    )
    assert translator.generate_kwargs["forced_bos_token_id"] == hf_tokenizer.convert_tokens_to_ids("heb_Hebr")
    got = [r["translation_text"] for r in translator(SOURCES, max_new_tokens=8, num_beams=2)]
    assert got == want


def hf_translate_nllb(folder, hf_tokenizer, tgt_lang):
    from transformers import AutoModelForSeq2SeqLM

    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    batch = hf_tokenizer(SOURCES, return_tensors="pt", padding=True)
    forced = hf_tokenizer.convert_tokens_to_ids(tgt_lang)
    with torch.no_grad():
        ids = model.generate(**batch, forced_bos_token_id=forced, max_new_tokens=8, num_beams=2)
    assert (ids[:, 1] == forced).all()
    return hf_tokenizer.batch_decode(ids, skip_special_tokens=True)


def test_truncation_per_call_as_in_hf4(nllb_folder):
    """HF 4.x's translator(texts, truncation=...) (with its strategy names) overrides the pipeline's choice."""
    strict = westron.pipeline("translation", model=nllb_folder, framework="pt", src_lang="eng_Latn", tgt_lang="heb_Hebr", truncation=False)
    long_text = " ".join(["wander"] * 300)  # over the model's 128 positions
    with pytest.raises(WestronError, match="more than the model's limit of 128"):
        strict(long_text, max_new_tokens=2)
    with pytest.warns(UserWarning, match="are truncated"):
        truncated = strict(long_text, truncation=True, max_new_tokens=2)
    with pytest.warns(UserWarning, match="are truncated"):
        assert strict(long_text, truncation="longest_first", max_new_tokens=2) == truncated
    lenient = westron.pipeline("translation", model=nllb_folder, framework="pt", src_lang="eng_Latn", tgt_lang="heb_Hebr")
    with pytest.raises(WestronError, match="more than the model's limit"):
        lenient(long_text, truncation="do_not_truncate", max_new_tokens=2)
    with pytest.raises(WestronError, match="truncation must be True, False"):
        lenient(SOURCES[0], truncation="yes")


def test_no_model_is_one_clear_error():
    """HF 4.x's pipeline("translation_en_to_fr") downloaded t5-base; Westron names what it needs."""
    with pytest.raises(WestronError, match="pipeline.. needs model=: a folder or Hub id"):
        westron.pipeline("translation_en_to_fr")


def test_languages_per_call_are_one_clear_error(nllb_folder):
    translator = westron.pipeline("translation", model=nllb_folder, framework="pt", src_lang="eng_Latn", tgt_lang="heb_Hebr")
    with pytest.raises(WestronError, match=r"src_lang, tgt_lang: give the languages to pipeline\('translation'"):
        translator(SOURCES, src_lang="eng_Latn", tgt_lang="kat_Geor")


def test_task_name_gives_the_languages(nllb_folder):
    translator = westron.pipeline("translation_eng_Latn_to_kat_Geor", model=nllb_folder, framework="pt")
    assert translator.tokenizer.src_lang == "eng_Latn" and translator.tokenizer.tgt_lang == "kat_Geor"


def test_unknown_or_missing_target_language(nllb_folder):
    with pytest.raises(WestronError, match="did you mean: heb_Hebr"):
        westron.pipeline("translation", model=nllb_folder, framework="pt", tgt_lang="heb_hebr")
    with pytest.raises(WestronError, match="target language"):
        westron.pipeline("translation", model=nllb_folder, framework="pt")


def test_a_target_language_saved_with_the_tokenizer_is_the_default(nllb_folder, tmp_path):
    """A model fine-tuned by westron train saves its tokenizer's languages: the pipeline (and so
    westron translate) translates into that language without being told again."""
    import shutil

    folder = shutil.copytree(nllb_folder, tmp_path / "fine-tuned")
    tokenizer = westron.AutoTokenizer.from_pretrained(folder)
    tokenizer.src_lang, tokenizer.tgt_lang = "eng_Latn", "heb_Hebr"
    tokenizer.save_pretrained(folder)
    saved = westron.pipeline("translation", model=folder, framework="pt")
    told = westron.pipeline("translation", model=folder, framework="pt", tgt_lang="heb_Hebr")
    assert saved.generate_kwargs["forced_bos_token_id"] == tokenizer.get_lang_id("heb_Hebr")
    assert saved(SOURCES, max_new_tokens=4) == told(SOURCES, max_new_tokens=4)
    assert westron.pipeline("translation", model=folder, framework="pt", tgt_lang="kat_Geor").tokenizer.tgt_lang == "kat_Geor"


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_t5_prefix_and_settings_from_task_specific_params(t5_folder, framework):
    want = hf_translate(t5_folder, SOURCES, prefix="translate English to German: ", num_beams=2, max_length=12)
    translator = westron.pipeline("translation_en_to_de", model=t5_folder, framework=framework)
    assert translator.source_prefix == "translate English to German: "
    assert [r["translation_text"] for r in translator(SOURCES)] == want


def test_t5_explicit_prefix_wins(t5_folder):
    want = hf_translate(t5_folder, SOURCES, prefix="translate English to Hebrew: ", max_new_tokens=6)
    translator = westron.pipeline(
        "translation", model=t5_folder, framework="pt", source_prefix="translate English to Hebrew: "
    )
    assert [r["translation_text"] for r in translator(SOURCES, max_new_tokens=6)] == want


def test_t5_unknown_direction_lists_the_known_ones(t5_folder):
    with pytest.raises(WestronError, match="translation_en_to_de, translation_en_to_fr"):
        westron.pipeline("translation_en_to_he", model=t5_folder, framework="pt")


def test_generate_output_flags_are_refused_with_text_output(t5_folder):
    translator = westron.pipeline("translation_en_to_de", model=t5_folder, framework="pt")
    with pytest.raises(WestronError, match="output_scores: the translation pipeline returns text"):
        translator(SOURCES, output_scores=True)


def test_unsupported_task():
    with pytest.raises(WestronError, match="unsupported task 'summarization'"):
        westron.pipeline("summarization", model="unused")


def test_model_objects_bring_their_framework(t5_folder):
    """pipeline(model=<TF model object>) runs TensorFlow without framework="tf", and agrees with PyTorch."""
    tokenizer = westron.AutoTokenizer.from_pretrained(t5_folder)
    tf_model = westron.TFAutoModelForSeq2SeqLM.from_pretrained(t5_folder)
    pt_model = westron.AutoModelForSeq2SeqLM.from_pretrained(t5_folder)
    tf_translator = westron.pipeline("translation", model=tf_model, tokenizer=tokenizer, source_prefix="x: ")
    pt_translator = westron.pipeline("translation", model=pt_model, tokenizer=tokenizer, source_prefix="x: ")
    assert (tf_translator.framework, pt_translator.framework) == ("tf", "pt")
    assert tf_translator(SOURCES, max_new_tokens=5) == pt_translator(SOURCES, max_new_tokens=5)


@pytest.fixture(scope="module")
def t5_translator(t5_folder):
    return westron.pipeline("translation", model=t5_folder, framework="pt", source_prefix="x: ", max_new_tokens=5)


def test_empty_and_blank_inputs_give_empty_translations(t5_translator):
    """As the CLI keeps empty lines empty: nothing to translate gives "", whatever the model would say."""
    texts = ["", SOURCES[0], "   ", "\t\n", SOURCES[1]]
    translations = [r["translation_text"] for r in t5_translator(texts, batch_size=2)]
    expected = [r["translation_text"] for r in t5_translator(SOURCES[:2])]
    assert translations == ["", expected[0], "", "", expected[1]]
    assert t5_translator([""]) == [{"translation_text": ""}]
    assert t5_translator("  ") == [{"translation_text": ""}]


def test_empty_inputs_keep_their_place_with_several_returned_sequences(t5_translator):
    texts = ["", SOURCES[0]]
    translations = [[r["translation_text"] for r in group] for group in t5_translator(texts, num_beams=2, num_return_sequences=2)]
    expected = [r["translation_text"] for r in t5_translator(SOURCES[0], num_beams=2, num_return_sequences=2)]
    assert translations == [["", ""], expected]
    assert t5_translator([""], num_beams=2, num_return_sequences=2) == [[{"translation_text": ""}] * 2]


def test_several_returned_sequences_are_grouped_per_text_as_in_hf4(t5_folder, t5_translator):
    """HF 4.x: one text gives a flat list of its n translations; a list of texts a list of such lists."""
    many = dict(num_beams=3, num_return_sequences=2)
    one = t5_translator(SOURCES[0], **many)
    assert [sorted(r) for r in one] == [["translation_text"]] * 2
    grouped = t5_translator(SOURCES, **many)
    assert [len(group) for group in grouped] == [2] * len(SOURCES)
    assert grouped[0] == one
    texts = [[r["translation_text"] for r in group] for group in grouped]
    expected = hf_translate(t5_folder, SOURCES, prefix="x: ", max_new_tokens=5, **many)
    assert texts == [expected[i : i + 2] for i in range(0, len(expected), 2)]
    ids = t5_translator(SOURCES[:2], return_tensors=True, **many)
    assert [[sorted(r) for r in group] for group in ids] == [[["translation_token_ids"]] * 2] * 2
    assert len(t5_translator(SOURCES, num_beams=3)) == len(SOURCES)  # one each: a flat list


def test_tokenizer_as_a_folder_as_in_hf4(t5_folder):
    """pipeline(..., tokenizer="t5-small") loads it, as HF 4.x does (with a model path or a model object)."""
    expected = westron.pipeline("translation", model=t5_folder, source_prefix="x: ")(SOURCES, max_new_tokens=4)
    by_path = westron.pipeline("translation", model=t5_folder, tokenizer=t5_folder, source_prefix="x: ")
    assert by_path(SOURCES, max_new_tokens=4) == expected
    model = westron.AutoModelForSeq2SeqLM.from_pretrained(t5_folder)
    with_object = westron.pipeline("translation", model=model, tokenizer=t5_folder, source_prefix="x: ")
    assert with_object(SOURCES, max_new_tokens=4) == expected


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_a_loaded_model_object_brings_its_tokenizer_as_in_hf4(t5_folder, framework):
    """HF 4.x: pipeline(model=<model from from_pretrained>) loads the tokenizer from the model's folder."""
    auto = westron.AutoModelForSeq2SeqLM if framework == "pt" else westron.TFAutoModelForSeq2SeqLM
    model = auto.from_pretrained(t5_folder)
    assert model.name_or_path == t5_folder
    translator = westron.pipeline("translation", model=model, source_prefix="x: ")
    assert translator.tokenizer.name_or_path == t5_folder
    fast = dict(eager=True) if framework == "tf" else {}  # TensorFlow's step-by-step search: no compiling
    assert sorted(translator(SOURCES[0], max_new_tokens=3, **fast)[0]) == ["translation_text"]
    built = type(model)(model.config)  # not from a folder: nothing to find the tokenizer in
    assert built.name_or_path == ""
    with pytest.raises(WestronError, match="pass tokenizer= when model is a model object not loaded with from_pretrained"):
        westron.pipeline("translation", model=built, source_prefix="x: ")


@pytest.mark.parametrize("texts, kind", [(123, "int"), (None, "NoneType"), (["fine", 7], "int"), (["fine", None], "NoneType"), (b"bytes", "bytes")])
def test_input_that_is_not_text_names_the_expected_types(t5_translator, texts, kind):
    with pytest.raises(TypeError, match=f"a string or a list of strings, not {kind}") as error:
        t5_translator(texts)
    assert isinstance(error.value, WestronError)


# ---- HF 4.x's pipeline details ---------------------------------------------------------------------


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_integer_devices_as_in_hf4(t5_folder, framework):
    cpu = westron.pipeline("translation", model=t5_folder, framework=framework, device=-1, source_prefix="x: ")
    assert cpu(SOURCES[:1], max_new_tokens=4) == westron.pipeline(
        "translation", model=t5_folder, framework=framework, source_prefix="x: "
    )(SOURCES[:1], max_new_tokens=4)
    with pytest.raises(WestronError, match="GPU"):  # tests see no GPU
        westron.pipeline("translation", model=t5_folder, framework=framework, device=0)
    with pytest.raises(WestronError, match="-1 for the CPU"):
        westron.pipeline("translation", model=t5_folder, framework=framework, device=-2)


def test_plain_translation_on_t5_takes_the_first_task_specific_params_entry(t5_folder):
    want = hf_translate(t5_folder, SOURCES, prefix="translate English to German: ", num_beams=2, max_length=12)
    with pytest.warns(UserWarning, match='defaulting to "translation_en_to_de"'):
        translator = westron.pipeline("translation", model=t5_folder, framework="pt")
    assert translator.source_prefix == "translate English to German: "
    assert [r["translation_text"] for r in translator(SOURCES)] == want


def test_batch_size_changes_nothing_but_the_batches(t5_folder):
    one = westron.pipeline("translation", model=t5_folder, framework="pt", source_prefix="x: ", batch_size=1)
    assert one.batch_size == 1
    assert one(SOURCES, max_new_tokens=6) == one(SOURCES, batch_size=3, max_new_tokens=6)
    with pytest.raises(WestronError, match="batch_size must be a positive integer"):
        one(SOURCES, batch_size=0)


@pytest.mark.parametrize("framework", ["pt", "tf"])
def test_return_tensors_gives_hf_unbatched_ids(t5_folder, framework):
    """return_tensors=True: each sequence's ids, as HF generate gives them for that text alone."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer, hf = AutoTokenizer.from_pretrained(t5_folder), AutoModelForSeq2SeqLM.from_pretrained(t5_folder).eval()
    translator = westron.pipeline("translation", model=t5_folder, framework=framework, source_prefix="x: ")
    results = translator(SOURCES + [""], return_tensors=True, max_new_tokens=8)
    assert [list(r) for r in results] == [["translation_token_ids"]] * 4
    for text, result in zip(SOURCES, results):
        with torch.no_grad():
            want = hf.generate(**tokenizer(["x: " + text], return_tensors="pt"), max_new_tokens=8)[0]
        ids = result["translation_token_ids"]
        assert type(ids).__module__.startswith("torch" if framework == "pt" else "tensorflow")
        assert np.asarray(ids).tolist() == want.tolist()
    assert np.asarray(results[-1]["translation_token_ids"]).size == 0


def test_clean_up_tokenization_spaces_reaches_decode(t5_folder):
    """A model made to say "word", "▁", "." decodes to "word ." and, cleaned up, to "word."."""
    tokenizer = westron.AutoTokenizer.from_pretrained(t5_folder)
    space, period = tokenizer.convert_tokens_to_ids("▁"), tokenizer.convert_tokens_to_ids(".")
    word = tokenizer.convert_tokens_to_ids("▁la")
    assert tokenizer.unk_token_id not in (space, period, word)
    allowed = {word, space, period, tokenizer.eos_token_id}
    banned = [[i] for i in range(len(tokenizer)) if i not in allowed] + [[word, period]]
    settings = dict(
        forced_bos_token_id=word, bad_words_ids=banned, no_repeat_ngram_size=1, min_new_tokens=3, max_new_tokens=4
    )
    translator = westron.pipeline("translation", model=t5_folder, framework="pt", source_prefix="x: ")
    raw = translator(SOURCES[:1], clean_up_tokenization_spaces=False, **settings)[0]["translation_text"]
    clean = translator(SOURCES[:1], clean_up_tokenization_spaces=True, **settings)[0]["translation_text"]
    assert (raw, clean) == ("la .", "la.")


def test_loading_arguments_reach_from_pretrained(t5_folder):
    """HF 4.x's pipeline(torch_dtype=..., device_map=..., model_kwargs={...}) load the model as asked."""
    translator = westron.pipeline(
        "translation", model=t5_folder, framework="pt", source_prefix="x: ", torch_dtype=torch.bfloat16,
        device_map="cpu", model_kwargs={"attn_implementation": "eager"},
    )
    assert translator.model.dtype == torch.bfloat16 and translator.model.config._attn_implementation == "eager"
    assert translator(SOURCES[:1], max_new_tokens=3)[0]["translation_text"] is not None
    with pytest.raises(WestronError, match="load_in_8bit"):
        westron.pipeline("translation", model=t5_folder, framework="pt", model_kwargs={"load_in_8bit": True})
    tokenizer, model = westron.AutoTokenizer.from_pretrained(t5_folder), westron.AutoModelForSeq2SeqLM.from_pretrained(t5_folder)
    with pytest.raises(WestronError, match="torch_dtype: loading arguments need model= to be a path"):
        westron.pipeline("translation", model=model, tokenizer=tokenizer, torch_dtype=torch.float16)


# ---- languages that would change nothing ------------------------------------------------------------


@pytest.mark.parametrize(
    "languages, prefix",
    [(dict(tgt_lang="fr"), "translate English to French: "), (dict(src_lang="en"), "translate English to German: ")],
)
def test_t5_one_language_picks_the_first_task_that_has_it(t5_folder, languages, prefix):
    """tgt_lang alone used to give no prefix at all (the model then does not translate)."""
    translator = westron.pipeline("translation", model=t5_folder, framework="pt", **languages)
    assert translator.source_prefix == prefix and translator.languages_applied
    assert translator.generate_kwargs["num_beams"] == 2
    with pytest.raises(WestronError, match="no translation_XX_to_he"):
        westron.pipeline("translation", model=t5_folder, framework="pt", tgt_lang="he")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tgt-lang", "fr"], None),
        (["--src-lang", "en", "--source-prefix", "x: "], "use one or the other"),
        (["--src-lang", "de"], "no translation_de_to_YY"),
    ],
)
def test_cli_t5_languages_pick_a_prefix_or_are_refused(t5_folder, monkeypatch, flags, message):
    from tests.cli_utils import assert_one_line_error, run_cli

    argv = ["translate", "--model", t5_folder, "--framework", "pt", "--max-new-tokens", "4", *flags]
    code, stdout, stderr = run_cli(argv, monkeypatch, stdin_bytes=f"{SOURCES[0]}\n".encode())
    if message is not None:
        assert_one_line_error(code, stderr, message)
        return
    assert code == 0, stderr
    want = hf_translate(t5_folder, SOURCES[:1], prefix="translate English to French: ", num_beams=2, max_new_tokens=4)
    assert stdout == want[0] + "\n"
