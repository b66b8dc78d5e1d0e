"""The gettext corpus builder on .po and .mo catalogs written here with polib (as msgfmt would)."""

from __future__ import annotations

import json
import os

import polib
import pytest

from westron.cli import main
from westron.data.gettext import (
    accelerators_kept,
    build_gettext_corpora,
    build_gettext_corpus,
    locale_rank,
    overlap_key,
    placeholders,
    plural_forms,
)
from westron.data.records import split_of
from westron.errors import WestronError

RUSSIAN_PLURALS = "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);"
SPANISH_PLURALS = "nplurals=2; plural=(n != 1);"
NO_SPLIT = dict(validation_fraction=0.0, test_fraction=0.0)


def entry(msgid, msgstr="", *, ctxt=None, plural=None, forms=None, fuzzy=False, obsolete=False):
    options = dict(msgid=msgid, msgctxt=ctxt, obsolete=obsolete, flags=["fuzzy"] if fuzzy else [])
    if plural is not None:
        return polib.POEntry(msgid_plural=plural, msgstr_plural=dict(enumerate(forms)), **options)
    return polib.POEntry(msgstr=msgstr, **options)


def write_catalog(root, locale, domain, entries, *, plural_forms=SPANISH_PLURALS, mo=False, header=True):
    """<root>/<locale>/LC_MESSAGES/<domain>.po (or .mo, compiled without fuzzy entries, as msgfmt does)."""
    catalog = polib.POFile()
    if header:
        catalog.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Language": locale}
        if plural_forms is not None:
            catalog.metadata["Plural-Forms"] = plural_forms
    for item in entries:
        if not (mo and (item.fuzzy or item.obsolete)):
            catalog.append(item)
    folder = os.path.join(root, locale, "LC_MESSAGES")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{domain}.{'mo' if mo else 'po'}")
    catalog.save_as_mofile(path) if mo else catalog.save(path)
    return path


def read_jsonl(path, target="es"):
    with open(path, encoding="utf-8") as handle:
        return [(row["translation"]["en"], row["translation"][target]) for row in map(json.loads, handle)]


RULE_ENTRIES = [
    entry("_Open", "_Abrir"),
    entry("Open", "Abierto", ctxt="adjective"),  # two contexts, two translations: two pairs
    entry("Open", "Abrir", ctxt="verb"),
    entry("Save", "Guardar", ctxt="menu"),  # two contexts, one translation: one pair
    entry("Save", "Guardar", ctxt="toolbar"),
    entry("Draft", "Borrador", fuzzy=True),
    entry("Old", "Viejo", obsolete=True),
    entry("Untranslated", ""),
    entry("%d file", plural="%d files", forms=["%d archivo", "%d archivos"]),
    entry("Copied %s to %s", "Se copió %2$s en %1$s"),  # positional: same placeholders
    entry("Hello %(name)s, {0} and {user}", "Hola %(name)s, {0} y {user}"),
    entry("Lost %s here", "Perdido aquí"),  # placeholder missing
    entry("Size: %Id bytes", "Tamaño: %Id bytes"),
    entry("_Quit", "Salir"),  # accelerator missing
    entry("&Edit", "&Editar"),
    entry("Save _As", "Guardar _como"),
    entry("tablespace_name", "nombre_de_tablespace"),  # snake_case, no accelerator
    entry("<b>Bold</b> text", "Texto en <b>negrita</b>"),
    entry("<b>Bold</b> text twice", "Texto dos veces en negrita"),  # markup missing
    entry("Usage: %s <file>", "Uso: %s <archivo>"),  # <file> is a word, not markup
    entry("%s: %s", "%s: %s"),  # no letters
    entry("OK", "OK"),  # a copied term stays
    entry("could not open the file", "could not open the file"),  # a copied phrase is untranslated
    entry("  -a, --all     show all\n  -q, --quiet   say less\n", "  -a, --all     muestra todo\n  -q, --quiet   dice menos\n"),
]
RULE_PAIRS = {
    ("_Open", "_Abrir"),
    ("Open", "Abierto"),
    ("Open", "Abrir"),
    ("Save", "Guardar"),
    ("%d file", "%d archivo"),
    ("%d files", "%d archivos"),
    ("Copied %s to %s", "Se copió %2$s en %1$s"),
    ("Hello %(name)s, {0} and {user}", "Hola %(name)s, {0} y {user}"),
    ("Size: %Id bytes", "Tamaño: %Id bytes"),
    ("&Edit", "&Editar"),
    ("Save _As", "Guardar _como"),
    ("tablespace_name", "nombre_de_tablespace"),
    ("<b>Bold</b> text", "Texto en <b>negrita</b>"),
    ("Usage: %s <file>", "Uso: %s <archivo>"),
    ("OK", "OK"),
    ("-a, --all show all", "-a, --all muestra todo"),
    ("-q, --quiet say less", "-q, --quiet dice menos"),
}


@pytest.mark.parametrize("mo", [False, True], ids=["po", "mo"])
def test_rules_keep_drop_and_count(tmp_path, mo):
    write_catalog(tmp_path / "locale", "es", "app", RULE_ENTRIES, mo=mo)
    summary = build_gettext_corpus("en", "es", tmp_path / "out", search_paths=[tmp_path / "locale"], **NO_SPLIT)
    assert set(read_jsonl(tmp_path / "out" / "train.jsonl")) == RULE_PAIRS
    assert summary["pairs"] == {"train": len(RULE_PAIRS), "validation": 0, "test": 0}
    dropped = summary["catalogs"]["app"]["dropped"]
    expected = {"placeholder_mismatch": 1, "accelerator_mismatch": 1, "markup_mismatch": 1}
    expected.update({"no_letters": 1, "copied_untranslated": 1})
    if not mo:  # a .mo holds no fuzzy, obsolete or untranslated entries
        expected.update({"fuzzy": 1, "obsolete": 1, "untranslated": 1})
    assert dropped == expected
    assert summary["dropped"]["duplicate"] == 1  # Save: two contexts, one translation


def test_plural_forms_follow_the_header(tmp_path):
    root = tmp_path / "locale"
    files = entry("%d file", plural="%d files", forms=["%d файл", "%d файла", "%d файлов"])
    write_catalog(root, "ru", "app", [files], plural_forms=RUSSIAN_PLURALS, mo=True)
    broken = entry("%d dir", plural="%d dirs", forms=["%d каталог", "%d каталога", "%d каталогов"])
    write_catalog(root, "ru", "broken", [broken], plural_forms="nplurals=3; plural=n %% import os;", mo=True)
    summary = build_gettext_corpus("en", "ru", tmp_path / "out", search_paths=[root], **NO_SPLIT)
    pairs = set(read_jsonl(tmp_path / "out" / "train.jsonl", "ru"))
    # Russian says "5 файлов" (form 2); the broken header falls back to forms 0 and 1, and says so.
    assert pairs == {("%d file", "%d файл"), ("%d files", "%d файлов"), ("%d dir", "%d каталог"), ("%d dirs", "%d каталога")}
    assert summary["plural_header_fallback"] == ["broken"]
    assert plural_forms(RUSSIAN_PLURALS) == (0, 2) and plural_forms("nplurals=1; plural=0;") == (0, 0)
    assert plural_forms(None) is None and plural_forms("nplurals=2; plural=n+;") is None
    assert plural_forms("nplurals=2; plural=n*7;") is None  # a form out of range


def test_most_frequent_translation_wins(tmp_path):
    root = tmp_path / "locale"
    write_catalog(root, "es", "a", [entry("Folder", "Carpeta")])
    write_catalog(root, "es", "b", [entry("Folder", "Directorio")])
    write_catalog(root, "es", "c", [entry("Folder", "Directorio")])
    summary = build_gettext_corpus("en", "es", tmp_path / "out", search_paths=[root], **NO_SPLIT)
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == [("Folder", "Directorio")]
    assert summary["dropped"]["minority_translation"] == 1 and summary["dropped"]["duplicate"] == 1


def test_locale_variants(tmp_path):
    assert [locale_rank(name, "es") for name in ("es", "es_ES", "es_MX", "es_ES.UTF-8", "es@valencia", "et")] == [
        0, 1, 2, 1, None, None,
    ]  # fmt: skip
    assert locale_rank("pt_BR", "pt_BR") == 0 and locale_rank("pt", "pt_BR") is None
    assert locale_rank("sr@latin", "sr") is None and locale_rank("sr@latin", "sr@latin") == 0
    root = tmp_path / "locale"
    write_catalog(root, "es", "both", [entry("Yes", "Sí")])
    write_catalog(root, "es_MX", "both", [entry("Yes", "Sí (MX)")])
    write_catalog(root, "es_MX", "mexican", [entry("No", "No (MX)")])
    write_catalog(root, "sr@latin", "latin", [entry("No", "Ne")])
    summary = build_gettext_corpus("en", "es", tmp_path / "out", search_paths=[root], **NO_SPLIT)
    assert set(read_jsonl(tmp_path / "out" / "train.jsonl")) == {("Yes", "Sí"), ("No", "No (MX)")}
    assert {name: report["locale"] for name, report in summary["catalogs"].items()} == {"both": "es", "mexican": "es_MX"}


def test_explicit_catalogs_and_package_catalogs(tmp_path):
    project = tmp_path / "project" / "po"
    project.mkdir(parents=True)
    catalog = polib.POFile()
    catalog.metadata = {"Project-Id-Version": "frobnicator 1.0", "Content-Type": "text/plain; charset=UTF-8"}
    catalog.append(entry("Frobnicate", "Frobnicar"))
    catalog.save(os.fspath(project / "es.po"))
    site = tmp_path / "site-packages"
    write_catalog(site / "pkg" / "sub" / "locale", "es", "messages", [entry("Cancel", "Cancelar")], mo=True)
    summary = build_gettext_corpus(
        "en", "es", tmp_path / "out", catalogs=[tmp_path / "project"], search_paths=[site], **NO_SPLIT
    )
    assert set(summary["catalogs"]) == {"frobnicator", "pkg.sub:messages"}
    assert set(read_jsonl(tmp_path / "out" / "train.jsonl")) == {("Frobnicate", "Frobnicar"), ("Cancel", "Cancelar")}


def many_catalogs(root, count=40):
    """Catalogs sharing some sentences (as UI text does) beside their own."""
    for index in range(count):
        entries = [entry(f"Message {k} of domain{index:02d}", f"Mensaje {k} de domain{index:02d}") for k in range(5)]
        entries += [entry("Cancel", "Cancelar"), entry("_Quit", "_Salir"), entry(f"Common {index % 7}", f"Común {index % 7}")]
        write_catalog(root, "es", f"domain{index:02d}", entries, mo=index % 2 == 0)
        write_catalog(root, "ru", f"domain{index:02d}", [entry(f"Common {index % 5}", f"Общий {index % 5}")])


def test_by_catalog_split_is_deterministic_and_test_is_clean(tmp_path):
    root = tmp_path / "locale"
    many_catalogs(root)
    options = dict(search_paths=[root], validation_fraction=0.2, test_fraction=0.2, seed=3)
    summary = build_gettext_corpus("en", "es", tmp_path / "a", **options)
    assert summary["split"] == "by-catalog"  # the default
    for name, report in summary["catalogs"].items():
        assert report["split"] == split_of(name, 0.2, 0.2, 3)
    assert all(summary["catalogs_per_split"].values())
    splits = {name: read_jsonl(tmp_path / "a" / f"{name}.jsonl") for name in ("train", "validation", "test")}
    keys = {name: {overlap_key(source) for source, _ in pairs} for name, pairs in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"] and not keys["validation"] & keys["test"]
    assert ("Cancel", "Cancelar") in splits["train"] and summary["dropped"]["seen_in_earlier_split"] > 0
    for name in ("validation", "test"):  # a held-out pair comes from a held-out catalog
        domains = {source.split()[-1] for source, _ in splits[name] if source.startswith("Message")}
        assert domains and {summary["catalogs"][domain]["split"] for domain in domains} == {name}

    # The same catalogs elsewhere, found in another order: the same bytes.
    os.rename(root, tmp_path / "moved")
    build_gettext_corpus("en", "es", tmp_path / "b", **{**options, "search_paths": [tmp_path / "moved"]})
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()

    summary = build_gettext_corpus("en", "es", tmp_path / "c", **{**options, "split": "random", "search_paths": [tmp_path / "moved"]})
    for source, _ in read_jsonl(tmp_path / "c" / "test.jsonl"):
        assert split_of(overlap_key(source), 0.2, 0.2, 3) == "test"


def test_several_targets_and_the_cli(tmp_path, capsys):
    root = tmp_path / "locale"
    many_catalogs(root, count=12)
    argv = ["data", "gettext", "--target-lang", "es,ru", "-o", str(tmp_path / "out"), "--search-path", str(root)]
    assert main(argv + ["--split", "random", "--validation-fraction", "0.3", "--test-fraction", "0.3"]) == 0
    for target in ("es", "ru"):
        summary = json.loads((tmp_path / "out" / f"en-{target}" / "summary.json").read_text(encoding="utf-8"))
        assert summary["target_lang"] == target and summary["split"] == "random"
        assert read_jsonl(tmp_path / "out" / f"en-{target}" / "train.jsonl", target)
    assert "en-ru: train" in capsys.readouterr().err


def test_no_catalogs_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "gettext", "--target-lang", "es", "-o", str(tmp_path / "out"), "--search-path", str(empty)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("westron: error: no gettext catalogs for 'es'") and error.count("\n") == 1
    monkeypatch.setenv("WESTRON_GETTEXT_PATH", os.fspath(empty))
    assert main(["data", "gettext", "--target-lang", "es", "-o", str(tmp_path / "out")]) == 2
    assert "no gettext catalogs" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_too_few_catalogs_say_what_to_pass(tmp_path):
    root = tmp_path / "locale"
    write_catalog(root, "es", "only", [entry("Yes", "Sí"), entry("No", "No")])
    with pytest.raises(WestronError, match=r"en-es: 2 pairs from 1 catalogs are too few for --split by-catalog .*--split random"):
        build_gettext_corpora("en", ["es"], tmp_path / "out", search_paths=[root])
    assert not (tmp_path / "out").exists()


def test_bad_input_is_a_westron_error(tmp_path):
    root = tmp_path / "locale"
    write_catalog(root, "es", "app", [entry("Yes", "Sí")])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(WestronError, match="holds other files"):
        build_gettext_corpus("en", "es", tmp_path / "mine", search_paths=[root], **NO_SPLIT)
    # A folder holding an earlier corpus (summary.json) is rebuilt in place; the user's other files stay.
    (tmp_path / "mine" / "summary.json").write_text("{}", encoding="utf-8")
    (tmp_path / "mine" / "train.jsonl").write_text("old\n", encoding="utf-8")
    build_gettext_corpus("en", "es", tmp_path / "mine", search_paths=[root], **NO_SPLIT)
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "precious"
    assert read_jsonl(tmp_path / "mine" / "train.jsonl") == [("Yes", "Sí")]
    with pytest.raises(WestronError, match="source must be en"):
        build_gettext_corpus("de", "es", tmp_path / "out", search_paths=[root])
    with pytest.raises(WestronError, match="no such file"):
        build_gettext_corpus("en", "es", tmp_path / "out", catalogs=[tmp_path / "missing.po"], search_paths=[root])
    (tmp_path / "bad.mo").write_bytes(b"not a catalog")
    with pytest.raises(WestronError, match="bad.mo"):
        build_gettext_corpus("en", "es", tmp_path / "out", catalogs=[tmp_path / "bad.mo"], search_paths=[root])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("%s of %d", {"%s": 1, "%d": 1}),
        ("%2$s de %1$s", {"%s": 2}),
        ("%(count)d items, %(name)s", {"%(count)d": 1, "%(name)s": 1}),
        ("%Id %lu %-10s %5.2f %%", {"%d": 1, "%lu": 1, "%s": 1, "%f": 1}),
        ("{0} {name} {user.name!r:>10} {{literal}} {}", {"{0}": 1, "{name}": 1, "{user.name!r}": 1, "{}": 1}),
        ("%1 of %2", {"%1": 1, "%2": 1}),
        ("100% off, 50 % more", {}),
    ],
)
def test_placeholders(text, expected):
    assert placeholders(text) == expected


def test_accelerators():
    assert accelerators_kept("_Open", "Ö_ffnen") and accelerators_kept("_Open", "開く(_O)")
    assert accelerators_kept("&Open", "&Abrir") and not accelerators_kept("&Open", "Abrir")
    assert accelerators_kept("Tom &amp; Jerry", "Tom &amp; Jerry") and accelerators_kept("R&D", "I+D")
    assert not accelerators_kept("Save _As", "Guardar como")
