"""A parallel corpus from the gettext catalogs installed on the machine.

Every translated program ships catalogs: `<root>/<locale>/LC_MESSAGES/<domain>.mo` under
/usr/share/locale and /usr/local/share/locale, and `.po`/`.mo` files inside Python packages. By
gettext convention the msgid is the English source and the msgstr its translation, so each
catalog is a small parallel corpus of user-interface text.

What becomes a pair, and why (the choices are the model's teachers):
- A catalog is read with polib (.po and .mo alike). Header, obsolete, fuzzy and untranslated
  entries are skipped. The context (msgctxt) is not part of the text, but it keeps two meanings
  apart: one source with two contexts and two translations gives two pairs.
- Plurals give two pairs: msgid with the form the language uses for n=1, and msgid_plural with the
  form it uses for n=5 (the Plural-Forms expression of the header is evaluated). A missing or
  broken header falls back to forms 0 and 1, and the catalog is listed in the summary.
- Whitespace runs become one blank. An entry of several lines whose translation has as many
  lines gives one pair per line (help texts are translated line by line); otherwise its lines are
  joined, and entries longer than `max_chars` are dropped.
- Format placeholders (%s, %1$s, %(name)s, %Id, {0}, {name}, %1...), accelerators (_File, &Open,
  (_F)) and markup tags (<b>, <a href=...>) stay in the text and must match on both sides: the
  same placeholders as a multiset (position and flags aside), an accelerator in the translation
  for each one the source has, the same tags. A pair that fails is dropped and counted.
- A source with no letters outside its placeholders ("%s: %s") teaches nothing and is dropped.
  A translation that copies its source is kept when it is a name or a term (UI text keeps names,
  codes and labels: "OK", "Email", "Microsoft Natural Elite", "Madre de Dios"), and dropped as
  untranslated when it reads as English prose (three lowercase English words or more).
- Duplicates: per split, one pair per (context, source): the translation most catalogs give
  (ties: the first catalog by name). Catalogs are held out whole (`split="by-catalog"`, the
  default: a catalog's domain decides its split through `split_of`) or sentences are hashed
  (`split="random"`). A source (compared without case, accelerators and trailing ".:…") goes to
  the first split of train, validation, test that has it, so no test sentence was seen in training.

Locales: target "es" accepts the folders es, es_ES, es_MX..., also with an encoding (es_ES.UTF-8),
but not modifiers (sr@latin is another script, ca@valencia another variety); one locale per
catalog: the bare language first, then the language's own territory (pt_PT, de_DE), then the
others by name. An explicit locale ("pt_BR", "sr@latin") accepts that folder only.
"""

from __future__ import annotations

import collections
import dataclasses
import gettext as stdlib_gettext
import os
import re
import site
import sysconfig
import warnings
from collections.abc import Iterable, Iterator, Sequence

from westron.data.records import SPLITS, Pair, split_of, write_jsonl
from westron.errors import WestronError

DEFAULT_LOCALE_ROOTS = ("/usr/share/locale", "/usr/local/share/locale")
# os.pathsep-separated folders searched instead of the default ones (tests, unusual machines).
SEARCH_PATH_ENV = "WESTRON_GETTEXT_PATH"
SPLIT_CHOICES = ("by-catalog", "random")
SUMMARY_FILE = "summary.json"
CATALOG_SUFFIXES = (".po", ".mo")
# n for the plural pair: a "many" form where a language has one (Russian, Polish: 5 файлов).
PLURAL_SAMPLE_N = 5

_LOCALE = re.compile(r"^(?P<language>[a-z]{2,3})(?:_(?P<territory>[A-Za-z]{2}|\d{3}|[A-Z][a-z]{3}))?(?:\.[\w-]+)?(?:@(?P<modifier>\w+))?$")


# ---- locales ------------------------------------------------------------------------------------


def parse_locale(name: str) -> tuple[str, str | None, str | None] | None:
    """("pt", "BR", None) from "pt_BR", ("sr", None, "latin") from "sr@latin"; None if no locale."""
    match = _LOCALE.match(name)
    if match is None:
        return None
    return match["language"], match["territory"], match["modifier"]


def locale_rank(locale: str, target: str) -> int | None:
    """How well a locale folder fits the target language (0 best), or None if it does not."""
    parsed, wanted = parse_locale(locale), parse_locale(target)
    if parsed is None or wanted is None:
        return None
    language, territory, modifier = parsed
    if wanted[1] is not None or wanted[2] is not None:  # an explicit locale: that one only
        return 0 if (language, territory, modifier) == wanted else None
    if language != wanted[0] or modifier is not None:
        return None
    if territory is None:
        return 0
    return 1 if territory.lower() == language else 2


# ---- finding catalogs ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CatalogFile:
    """One catalog file: `name` is the split key, the domain ("coreutils"), prefixed by the package
    for catalogs inside Python packages ("django.contrib.admin:django")."""

    name: str
    locale: str
    path: str


def default_search_paths() -> list[str]:
    """$WESTRON_GETTEXT_PATH if set, else the system locale folders and the Python package folders."""
    if SEARCH_PATH_ENV in os.environ:
        return [path for path in os.environ[SEARCH_PATH_ENV].split(os.pathsep) if path]
    paths = list(DEFAULT_LOCALE_ROOTS)
    paths += [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths += site.getsitepackages() + [site.getusersitepackages()]
    return list(dict.fromkeys(os.path.realpath(path) for path in paths))


def catalogs_under(root: str) -> Iterator[CatalogFile]:
    """Catalogs laid out as <prefix>/<locale>/LC_MESSAGES/<domain>.mo|.po under `root`, in a fixed order."""
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        if os.path.basename(directory) != "LC_MESSAGES":
            continue
        locale_dir = os.path.dirname(directory)
        prefix = os.path.relpath(os.path.dirname(locale_dir), root).split(os.sep)
        prefix = [part for part in prefix if part not in (".", "")]
        if prefix and prefix[-1] in ("locale", "locales"):
            prefix = prefix[:-1]
        for file_name in sorted(files):
            domain, suffix = os.path.splitext(file_name)
            if suffix in CATALOG_SUFFIXES:
                name = f"{'.'.join(prefix)}:{domain}" if prefix else domain
                yield CatalogFile(name, os.path.basename(locale_dir), os.path.join(directory, file_name))


def explicit_catalogs(path: str) -> Iterator[CatalogFile]:
    """The catalogs of a --catalogs argument: a file, or every .po/.mo file under a folder."""
    if not os.path.exists(path):
        raise WestronError(f"--catalogs {path}: no such file or folder")
    if os.path.isfile(path):
        found = describe_catalog_file(path)
        if found is None:
            raise WestronError(
                f"cannot tell the language of {path}: it has no Language header and is neither in a "
                "<locale>/LC_MESSAGES folder nor named <locale>.po"
            )
        yield found
        return
    for directory, subdirectories, files in os.walk(path):
        subdirectories.sort()
        for file_name in sorted(files):
            if file_name.endswith(CATALOG_SUFFIXES):
                found = describe_catalog_file(os.path.join(directory, file_name))
                if found is not None:
                    yield found


def describe_catalog_file(path: str) -> CatalogFile | None:
    """Name and locale of a catalog file from its place (<locale>/LC_MESSAGES/<domain>.po,
    po/<locale>.po) or, failing that, its header (Language, Project-Id-Version)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.basename(parent) == "LC_MESSAGES":
        return CatalogFile(stem, os.path.basename(os.path.dirname(parent)), path)
    metadata = read_catalog(path).metadata
    project = (metadata.get("Project-Id-Version") or "").split()
    if parse_locale(stem) is not None:  # po/es.po: the project names the catalog
        folder = os.path.basename(parent)
        if folder == "po":
            folder = os.path.basename(os.path.dirname(parent))
        return CatalogFile(project[0] if project and project[0] != "PACKAGE" else folder, stem, path)
    language = (metadata.get("Language") or "").strip()
    if parse_locale(language) is None:
        return None
    return CatalogFile(stem, language, path)


def select_catalogs(found: Iterable[CatalogFile], target_lang: str) -> list[CatalogFile]:
    """One file per catalog name: the best locale, then the first found, a .po before a .mo."""
    best: dict[str, tuple[tuple[int, int, int], CatalogFile]] = {}
    for order, catalog in enumerate(found):
        rank = locale_rank(catalog.locale, target_lang)
        if rank is None:
            continue
        key = (rank, 0 if catalog.path.endswith(".po") else 1, order)
        if catalog.name not in best or key < best[catalog.name][0]:
            best[catalog.name] = (key, catalog)
    return [best[name][1] for name in sorted(best)]


# ---- reading one catalog ----------------------------------------------------------------------------


def read_catalog(path: str):
    """A polib POFile/MOFile; a file polib cannot read is a WestronError naming it."""
    import polib

    try:
        if path.endswith(".mo"):
            return polib.mofile(path)
        return polib.pofile(path)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise WestronError(f"cannot read the gettext catalog {path}: {error}") from None


def plural_forms(header: str | None) -> tuple[int, int] | None:
    """(form for n=1, form for n=PLURAL_SAMPLE_N) from a Plural-Forms header; None if it is broken."""
    if not header:
        return None
    match = re.search(r"nplurals\s*=\s*(\d+)\s*;\s*plural\s*=\s*([^;]+)", header)
    if match is None:
        return None
    try:
        # The standard library's C-expression compiler checks the tokens before evaluating.
        plural = stdlib_gettext.c2py(match[2].strip())
        forms = plural(1), plural(PLURAL_SAMPLE_N)
    except (ValueError, SyntaxError, RecursionError, ZeroDivisionError):
        return None
    nplurals = int(match[1])
    if not all(isinstance(form, int) and 0 <= form < nplurals for form in forms):
        return None
    return forms


@dataclasses.dataclass
class CatalogReport:
    """What one catalog gave: entries read, pairs that passed the checks, and why others did not."""

    path: str
    locale: str
    messages: int = 0
    candidates: int = 0
    plural_header_fallback: bool = False
    dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def to_json(self) -> dict:
        report = {"path": self.path, "locale": self.locale, "messages": self.messages, "pairs": self.candidates}
        if self.plural_header_fallback:
            report["plural_header_fallback"] = True
        report["dropped"] = dict(sorted(self.dropped.items()))
        return report


def catalog_messages(catalog, report: CatalogReport) -> Iterator[tuple[str, str, str]]:
    """(context, msgid, msgstr) of the translated entries; each plural entry gives two."""
    forms = None
    for entry in catalog:
        if entry.msgid == "" and not entry.msgctxt:
            continue  # the header
        report.messages += 1
        if getattr(entry, "obsolete", False):
            report.dropped["obsolete"] += 1
        elif "fuzzy" in getattr(entry, "flags", ()):
            report.dropped["fuzzy"] += 1
        elif entry.msgid_plural:
            if forms is None:
                forms = plural_forms(catalog.metadata.get("Plural-Forms"))
                if forms is None:
                    report.plural_header_fallback = True
                    forms = (0, 1)
            for source, form in zip((entry.msgid, entry.msgid_plural), forms):
                target = entry.msgstr_plural.get(form, "") or entry.msgstr_plural.get(str(form), "")
                if target:
                    yield entry.msgctxt or "", source, target
                else:
                    report.dropped["untranslated"] += 1
        elif entry.msgstr:
            yield entry.msgctxt or "", entry.msgid, entry.msgstr
        else:
            report.dropped["untranslated"] += 1


# ---- checks on a pair -------------------------------------------------------------------------------

# printf (C, glibc's I flag, positional N$, Python's %(name)s, <PRId64>) and Qt's %1. Not the
# blank flag: "100% off" is text. The key keeps what must agree: name, length and conversion.
_PRINTF = re.compile(
    r"%(?:\d+\$)?(?:\((?P<name>[^()\s]*)\))?[-+#0'I]*(?:\*(?:\d+\$)?|\d+)?(?:\.(?:\*(?:\d+\$)?|\d+))?"
    r"(?P<conversion>(?:hh|h|ll|l|L|q|j|z|Z|t)?[diouxXeEfFgGaAcCsSpnm%]|<PRI\w+>)"
    r"|%(?P<qt>\d+)"
)
# Python's str.format fields ({0}, {name}, {user.name!r:>10}); {{ and }} are literal braces.
_BRACE = re.compile(r"\{\{|\}\}|\{(?P<field>\d*|[^\W\d]\w*(?:\.\w+|\[\w+\])*)(?P<conversion>![rsa])?(?::[^{}]*)?\}")
# A keyboard accelerator marker: _ (GTK) or & (Qt, Windows) right before a letter or digit, not an
# entity (&amp;). In a translation it may sit mid-word ("_Open" -> "Ö_ffnen", "開く(_O)"); in an
# English source only at the start of a word, since snake_case names (tablespace_name) are no
# accelerators and get translated freely (nombre_de_tablespace).
_ACCELERATOR = re.compile(r"(?<![_&])(?:_|&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;))(?=[^\W_])")
_SOURCE_ACCELERATOR = re.compile(r"(?<![\w&])(?:_|&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;))(?=[^\W_])")
# Markup of Pango and HTML; <file> in a usage line is a word, translated as one.
_TAG = re.compile(
    r"<(?P<close>/?)(?P<tag>b|i|u|s|a|big|small|tt|sub|sup|span|br|p|em|strong|code|kbd|var|ul|ol|li|div"
    r"|h[1-6]|markup|img|hr|q|cite|pre)\b[^<>]*>",
    re.IGNORECASE,
)


def placeholders(text: str) -> collections.Counter:
    """The format placeholders of a text, as comparable keys ("%s", "%(name)s", "{0}", "%1")."""
    keys = collections.Counter()
    for match in _PRINTF.finditer(text):
        if match["qt"] is not None:
            keys[f"%{match['qt']}"] += 1
        elif match["conversion"] != "%":
            name = f"({match['name']})" if match["name"] is not None else ""
            keys[f"%{name}{match['conversion']}"] += 1
    for match in _BRACE.finditer(text):
        if match["field"] is not None:
            keys["{" + match["field"] + (match["conversion"] or "") + "}"] += 1
    return keys


def markup_tags(text: str) -> collections.Counter:
    return collections.Counter(f"<{m['close']}{m['tag'].lower()}>" for m in _TAG.finditer(text))


def accelerators_kept(source: str, target: str) -> bool:
    """Every accelerator of the source has one in the translation (a translator may add none of its own)."""
    return len(_ACCELERATOR.findall(target)) >= len(_SOURCE_ACCELERATOR.findall(source))


def reads_as_prose(text: str) -> bool:
    """Three plain lowercase English words or more: a phrase to translate, not a name, a term or a
    command line (git check-attr --stdin [-z])."""
    return sum(1 for word in text.split() if re.fullmatch(r"[a-z]{2,}[.,:;!?]?", word)) >= 3


def without_placeholders(text: str) -> str:
    return _BRACE.sub(" ", _PRINTF.sub(" ", text))


def rejection(source: str, target: str, max_chars: int) -> str | None:
    """Why a (source, target) pair is not kept, or None if it is."""
    if max(len(source), len(target)) > max_chars:
        return "too_long"
    if not any(character.isalpha() for character in without_placeholders(source)):
        return "no_letters"
    if source == target and reads_as_prose(source):
        return "copied_untranslated"
    if placeholders(source) != placeholders(target):
        return "placeholder_mismatch"
    if not accelerators_kept(source, target):
        return "accelerator_mismatch"
    if markup_tags(source) != markup_tags(target):
        return "markup_mismatch"
    return None


def squeeze(text: str) -> str:
    return " ".join(text.split())


def candidate_pairs(messages, report: CatalogReport, max_chars: int) -> Iterator[tuple[str, str, str]]:
    """(context, source, target) pairs that pass the checks; multi-line entries split by line when they can."""
    for context, msgid, msgstr in messages:
        source_lines = [line for line in msgid.splitlines() if line.strip()]
        target_lines = [line for line in msgstr.splitlines() if line.strip()]
        if len(source_lines) > 1 and len(source_lines) == len(target_lines):
            pairs = list(zip(source_lines, target_lines))
        else:
            pairs = [(msgid, msgstr)]
        for source, target in pairs:
            source, target = squeeze(source), squeeze(target)
            reason = rejection(source, target, max_chars)
            if reason is None:
                report.candidates += 1
                yield context, source, target
            else:
                report.dropped[reason] += 1


# ---- the corpus ----------------------------------------------------------------------------------


def overlap_key(source: str) -> str:
    """What makes two sources "the same sentence" across splits: no case, accelerators or trailing ".:…"."""
    return _ACCELERATOR.sub("", source).casefold().rstrip(" .:…!?")


@dataclasses.dataclass
class GettextCorpus:
    """The pairs of one language pair, per split, and the summary written beside them."""

    splits: dict[str, list[Pair]]
    summary: dict


def collect_corpus(
    source_lang: str,
    target_lang: str,
    found: Sequence[CatalogFile],
    *,
    split: str = "by-catalog",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_chars: int = 1000,
) -> GettextCorpus:
    """Reads the catalogs of `target_lang` among `found` and builds the split, deduplicated pairs."""
    catalogs = select_catalogs(found, target_lang)
    reports: dict[str, CatalogReport] = {}
    unreadable: dict[str, str] = {}
    # (catalog name, context, source, target, overlap key) in a fixed order: catalogs by name,
    # entries as in the file.
    rows: list[tuple[str, str, str, str, str]] = []
    for catalog in catalogs:
        try:
            parsed = read_catalog(catalog.path)
        except WestronError as error:
            unreadable[catalog.name] = str(error)
            warnings.warn(str(error))
            continue
        report = reports[catalog.name] = CatalogReport(catalog.path, catalog.locale)
        for context, source, target in candidate_pairs(catalog_messages(parsed, report), report, max_chars):
            rows.append((catalog.name, context, source, target, overlap_key(source)))

    catalog_split = {name: split_of(name, validation_fraction, test_fraction, seed) for name in reports}
    # A source's split: its catalog's (by-catalog) or its own hash (random); then the first split
    # that has the sentence at all, so that validation and test hold no sentence seen before them.
    def own_split(name: str, key: str) -> str:
        return catalog_split[name] if split == "by-catalog" else split_of(key, validation_fraction, test_fraction, seed)

    first_split: dict[str, int] = {}
    for name, _, _, _, key in rows:
        first_split[key] = min(first_split.get(key, len(SPLITS)), SPLITS.index(own_split(name, key)))

    dropped = collections.Counter()
    votes: dict[str, dict[tuple[str, str], collections.Counter]] = {name: {} for name in SPLITS}
    origins: dict[tuple[str, str, str], str] = {}
    for name, context, source, target, key in rows:
        chosen = SPLITS[first_split[key]]
        if chosen != own_split(name, key):
            dropped["seen_in_earlier_split"] += 1
            continue
        votes[chosen].setdefault((context, source), collections.Counter())[target] += 1
        origins.setdefault((context, source, target), name)

    splits: dict[str, list[Pair]] = {}
    for name in SPLITS:
        kept: dict[tuple[str, str], Pair] = {}
        for (context, source), counter in votes[name].items():
            # most_common keeps first-seen order among ties: the first catalog by name wins.
            target, _ = counter.most_common(1)[0]
            dropped["minority_translation"] += sum(counter.values()) - counter[target]
            dropped["duplicate"] += counter[target] - 1
            if (source, target) in kept:  # two contexts, one translation: one pair
                dropped["duplicate"] += 1
                continue
            kept[(source, target)] = Pair(source, target, origins[(context, source, target)])
        splits[name] = list(kept.values())

    per_rule = collections.Counter()
    for report in reports.values():
        per_rule.update(report.dropped)
    per_rule.update(dropped)
    summary = {
        "source_lang": source_lang,
        "target_lang": target_lang,
        "split": split,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "max_chars": max_chars,
        "pairs": {name: len(splits[name]) for name in SPLITS},
        "catalogs_per_split": catalogs_per_split(splits, catalog_split, split),
        "dropped": dict(sorted(per_rule.items())),
        "plural_header_fallback": sorted(name for name, report in reports.items() if report.plural_header_fallback),
        "unreadable": unreadable,
        "catalogs": {
            name: {**report.to_json(), **({"split": catalog_split[name]} if split == "by-catalog" else {})}
            for name, report in reports.items()
        },
    }
    return GettextCorpus(splits, summary)


def catalogs_per_split(splits: dict[str, list[Pair]], catalog_split: dict[str, str], split: str) -> dict[str, list[str]]:
    """by-catalog: the catalogs each split holds; random: the catalogs each split has pairs from."""
    if split == "by-catalog":
        return {name: sorted(c for c, where in catalog_split.items() if where == name) for name in SPLITS}
    return {name: sorted({pair.origin for pair in splits[name]}) for name in SPLITS}


def check_corpus(corpus: GettextCorpus, search_paths: Sequence[str]) -> None:
    """A clear error when the pair has no catalogs, or too few for every split to get some."""
    summary = corpus.summary
    pair = f"{summary['source_lang']}-{summary['target_lang']}"
    total = sum(summary["pairs"].values())
    if not summary["catalogs"]:
        where = ", ".join(search_paths) or "(no search path)"
        raise WestronError(
            f"no gettext catalogs for {summary['target_lang']!r} under {where}: "
            "install translated software or pass --catalogs PATH"
        )
    wanted = {"train": 1, "validation": summary["validation_fraction"], "test": summary["test_fraction"]}
    empty = [name for name in SPLITS if wanted[name] > 0 and not summary["pairs"][name]]
    if empty:
        if summary["split"] == "by-catalog":
            advice = "pass --split random, or bring your own data (--train-file)"
        else:
            advice = "add catalogs with --catalogs, or bring your own data (--train-file)"
        raise WestronError(
            f"{pair}: {total} pairs from {len(summary['catalogs'])} catalogs are too few for --split "
            f"{summary['split']} ({' and '.join(empty)} got none): {advice}"
        )


def write_corpus(corpus: GettextCorpus, output_dir: str | os.PathLike) -> None:
    """train/validation/test.jsonl and summary.json, swapped in as one folder."""
    from westron.file_utils import atomic_directory, check_replaceable_folder
    from westron.file_utils import write_json

    check_replaceable_folder(output_dir, SUMMARY_FILE)
    source_lang, target_lang = corpus.summary["source_lang"], corpus.summary["target_lang"]
    # Its own four files are replaced; anything else in the folder (a corpus that `westron data prepare`
    # split into the same folder, notes) is carried over into the new one, not deleted with the old.
    with atomic_directory(output_dir, keep=lambda name: True) as folder:
        for name in SPLITS:
            write_jsonl(corpus.splits[name], os.path.join(folder, f"{name}.jsonl"), source_lang, target_lang)
        write_json(os.path.join(folder, SUMMARY_FILE), corpus.summary)


def find_catalog_files(catalogs: Sequence[str] = (), search_paths: Sequence[str] | None = None) -> list[CatalogFile]:
    """Every catalog file of every language: explicit --catalogs first, then the search paths."""
    found: list[CatalogFile] = []
    for path in catalogs:
        found.extend(explicit_catalogs(os.fspath(path)))
    for root in default_search_paths() if search_paths is None else search_paths:
        if os.path.isdir(root):
            found.extend(catalogs_under(root))
    return found


def check_options(source_lang: str, target_langs: Sequence[str], split: str, validation_fraction: float, test_fraction: float, max_chars: int) -> None:
    if source_lang != "en":
        raise WestronError(f"--source-lang {source_lang}: gettext msgids are English, so the source must be en")
    for target in target_langs:
        if parse_locale(target) is None:
            raise WestronError(f"--target-lang {target!r} is not a language code (es, pt_BR, sr@latin)")
        if parse_locale(target)[0] == "en":
            raise WestronError(f"--target-lang {target}: the source is English already")
    if not target_langs or len(set(target_langs)) != len(target_langs):
        raise WestronError(f"--target-lang must list languages once each, not {','.join(target_langs)!r}")
    if split not in SPLIT_CHOICES:
        raise WestronError(f"split must be one of {', '.join(SPLIT_CHOICES)}, not {split!r}")
    if not (0 <= validation_fraction and 0 <= test_fraction and validation_fraction + test_fraction < 1):
        raise WestronError("validation and test fractions must be at least 0 and add up to less than 1")
    if max_chars < 1:
        raise WestronError(f"max_chars must be at least 1, not {max_chars}")


def plan_corpora(
    source_lang: str,
    target_langs: Sequence[str],
    *,
    catalogs: Sequence[str] = (),
    search_paths: Sequence[str] | None = None,
    split: str = "by-catalog",
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_chars: int = 1000,
) -> dict[str, GettextCorpus]:
    """The corpus of every target language, checked, nothing written yet."""
    check_options(source_lang, target_langs, split, validation_fraction, test_fraction, max_chars)
    roots = default_search_paths() if search_paths is None else [os.fspath(path) for path in search_paths]
    found = find_catalog_files(catalogs, roots)
    corpora = {}
    for target in target_langs:
        corpus = collect_corpus(
            source_lang,
            target,
            found,
            split=split,
            validation_fraction=validation_fraction,
            test_fraction=test_fraction,
            seed=seed,
            max_chars=max_chars,
        )
        corpus.summary["search_paths"] = roots
        corpus.summary["explicit_catalogs"] = [os.fspath(path) for path in catalogs]
        check_corpus(corpus, roots)
        corpora[target] = corpus
    return corpora


def build_gettext_corpus(source_lang: str, target_lang: str, output_dir: str | os.PathLike, **options) -> dict:
    """The corpus of one language pair, written into output_dir (train/validation/test.jsonl and
    summary.json); returns the summary.

    Options: catalogs (extra .po/.mo files or folders), search_paths (folders searched for
    <locale>/LC_MESSAGES catalogs; default: $WESTRON_GETTEXT_PATH, else /usr/share/locale,
    /usr/local/share/locale and the Python package folders), split ("by-catalog" or "random"),
    validation_fraction, test_fraction, seed, max_chars.
    """
    corpus = plan_corpora(source_lang, [target_lang], **options)[target_lang]
    write_corpus(corpus, output_dir)
    return corpus.summary


def build_gettext_corpora(source_lang: str, target_langs: Sequence[str], output_dir: str | os.PathLike, **options) -> dict[str, dict]:
    """One corpus per target language, in output_dir/<source>-<target>; returns {target: summary}.

    Every language is built and checked before anything is written. Options as build_gettext_corpus.
    """
    corpora = plan_corpora(source_lang, target_langs, **options)
    for target, corpus in corpora.items():
        write_corpus(corpus, os.path.join(output_dir, f"{source_lang}-{target}"))
    return {target: corpus.summary for target, corpus in corpora.items()}
