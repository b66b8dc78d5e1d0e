#!/usr/bin/env python3
"""Keep Westron's copied code in step with its sources, and model folders self-contained.

Two checks, one command (`make check-copies`; `make fix-copies` runs it with `--fix`):

1. `# Copied from` markers. A comment directly above a class or function (above its decorators),
   or above an assignment to one name (`ACT2FN = {...}`),

       # Copied from westron.models.marian.modeling_marian.MarianAttention with Marian->M2M100 all-casing

   says the block below is the named object's source with the replacements applied. The object is
   found by its dotted path (a module file under westron/ or tests/, then a class, function,
   method or one-name assignment inside it) by parsing the source with `ast`: nothing is imported, so checking loads
   neither torch nor TensorFlow. Replacements are literal and apply left to right; `all-casing`
   adds each pair's lower-case, UPPER-case and Capitalised forms. Before comparing, the source
   block is re-indented to the copy's depth (a method may be copied as a function or into another
   class), the copy may carry its own name, and blank lines and trailing whitespace do not count.

   `# Ignore copy` directly above a statement inside a copy excludes that statement (with its
   decorators and the comment lines directly above it) from the comparison, together with its
   counterpart in the source: the def/class of the same name (after replacements), or for any
   other statement the one at the same position (the n-th non-def statement of the same body).
   An ignored def/class the source lacks is simply extra. `--fix` keeps ignored blocks verbatim.

   Each copy is compared with its direct source, so a chain (A from B, B from C) is checked link
   by link; `--fix` repeats until nothing changes, so a whole chain follows its root.

2. The single-model-file rule (`check_imports`). A file under westron/models/<model>/ imports
   only Westron's shared core (westron.* outside westron/models/) and its own folder: never
   another model's folder, never westron.models.auto. PyTorch files never import TensorFlow
   and TensorFlow files never import PyTorch (see `file_framework` for which file is which).
   Static imports are read with `ast`, relative ones and those inside functions included.

Usage: python utils/check_copies.py [--fix] [--root DIR]
Exit status 0 when everything agrees (or every drift was fixed), 1 otherwise. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import io
import os
import re
import sys
import tempfile
import tokenize
from dataclasses import dataclass
from pathlib import Path

SCANNED_DIRS = ("westron", "tests")  # where markers are looked for; also the roots a reference may name
MAX_FIX_PASSES = 10
DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

# ---------------------------------------------------------------------------------------------
# Problems and files
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    path: str  # relative to the root, with forward slashes
    line: int
    message: str
    details: str = ""  # a unified diff for a drifted copy

    def format(self) -> str:
        head = f"{self.path}:{self.line}: {self.message}"
        return f"{head}\n{self.details}" if self.details else head


class CheckError(Exception):
    """A marker that cannot be checked: reported at the marker's line."""


_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split exactly where Python's tokenizer splits them."""
    return _LINE_RE.findall(text)


def strip_eol(line: str) -> str:
    return line.rstrip("\r\n")


def leading_ws(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def is_comment_only(line: str) -> bool:
    return line.lstrip().startswith("#")


class SourceFile:
    """One parsed Python file: text, lines, tree and comments, computed on demand."""

    def __init__(self, root: Path, rel: str):
        self.rel = rel
        self.path = root / rel
        self.text = self.path.read_bytes().decode("utf-8")
        self.lines = split_lines(self.text)
        self._tree: ast.Module | None = None
        self._comments: list[tuple[int, int, str]] | None = None

    @property
    def tree(self) -> ast.Module:  # raises SyntaxError
        if self._tree is None:
            self._tree = ast.parse(self.text, filename=self.rel)
        return self._tree

    def line(self, lineno: int) -> str:
        return strip_eol(self.lines[lineno - 1]) if 0 < lineno <= len(self.lines) else ""

    def comments(self) -> list[tuple[int, int, str]]:
        """(line, column, text) of every comment alone on its line (never text inside strings)."""
        if self._comments is None:
            self._comments = []
            if "Copied from" in self.text or "Ignore copy" in self.text:
                self.tree  # a syntax error surfaces as SyntaxError, not as a tokenizer error
                for tok in tokenize.generate_tokens(io.StringIO(self.text).readline):
                    if tok.type == tokenize.COMMENT and not tok.line[: tok.start[1]].strip():
                        self._comments.append((tok.start[0], tok.start[1], tok.string))
        return self._comments

    def newline(self) -> str:
        for line in self.lines:
            if line.endswith("\r\n"):
                return "\r\n"
            if line.endswith(("\n", "\r")):
                return line[-1]
        return "\n"


class Repo:
    """The checked tree: a cache of parsed files under `root`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self._files: dict[str, SourceFile] = {}

    def python_files(self, top: str) -> list[str]:
        base = self.root / top
        if not base.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    found.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return found

    def get(self, rel: str) -> SourceFile:
        if rel not in self._files:
            self._files[rel] = SourceFile(self.root, rel)
        return self._files[rel]

    def forget(self, rel: str) -> None:
        self._files.pop(rel, None)

    def write(self, rel: str, text: str) -> None:
        """Atomic: a temporary file in the same folder, then os.replace; the file mode is kept."""
        path = self.root / rel
        mode = path.stat().st_mode & 0o7777
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.forget(rel)

    def resolve(self, ref: str) -> tuple[SourceFile, ast.AST]:
        """The file and def/class node that `westron.pkg.module.Class.method` names."""
        parts = ref.split(".")
        if any((self.root / p).is_file() for p in (Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py"))):
            raise CheckError(f"cannot check against {ref}: it names a module; name a class, function or assignment in it")
        for i in range(len(parts) - 1, 0, -1):
            for candidate in (Path(*parts[:i]).with_suffix(".py"), Path(*parts[:i], "__init__.py")):
                if (self.root / candidate).is_file():
                    rel = candidate.as_posix()
                    break
            else:
                continue
            break
        else:
            raise CheckError(f"cannot resolve {ref}: no module file for it under {parts[0]}/")
        src = self.get(rel)
        try:
            node: ast.AST = src.tree
        except SyntaxError as exc:
            raise CheckError(f"cannot resolve {ref}: syntax error in {rel}:{exc.lineno}") from None
        for depth, name in enumerate(parts[i:]):
            found = next((n for n in body_of(node) if named(n) == name), None)
            if found is None:
                where = ".".join(parts[i : i + depth]) or rel
                raise CheckError(f"cannot resolve {ref}: no class, function or assignment {name!r} in {where}")
            node = found
        return src, node


def named(node: ast.AST) -> str | None:
    """The name a statement defines, for the statements a marker may sit on: a class, a function,
    or an assignment to one name (`ACT2FN = {...}`, `x: int = 0`)."""
    if isinstance(node, DEFS):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def body_of(node: ast.AST) -> list[ast.stmt]:
    body = getattr(node, "body", None)
    return body if isinstance(body, list) else []


# ---------------------------------------------------------------------------------------------
# Markers and replacements
# ---------------------------------------------------------------------------------------------

_MARKER_RE = re.compile(r"#\s*Copied from\s+(?P<ref>(?:westron|tests)\.\S*)(?P<rest>.*)$")
_REF_RE = re.compile(r"(?:westron|tests)(?:\.[A-Za-z_]\w*)+")
_PAIR_RE = re.compile(r"(\S+?)->(\S+)")
_IGNORE_RE = re.compile(r"#\s*Ignore copy\b")
_HEADER_RE = re.compile(r"^(\s*(?:async\s+def|def|class)\s+)([A-Za-z_]\w*)")
GRAMMAR = "# Copied from westron.<module>.<Object>[.<method>] [with A->B[, C->D ...]] [all-casing]"


@dataclass(frozen=True)
class Marker:
    line: int
    ref: str
    pairs: tuple[dict[str, str], ...]  # replacement groups, see expand_pairs


def parse_marker(comment: str) -> Marker | None:
    """None for a comment that is not a Westron marker; CheckError for a malformed one."""
    match = _MARKER_RE.match(comment)
    if match is None:
        return None
    ref, rest = match.group("ref"), match.group("rest").strip()
    if not _REF_RE.fullmatch(ref):
        raise CheckError(f"malformed marker: {ref!r} is not a dotted path (expected `{GRAMMAR}`)")
    all_casing = False
    if rest == "all-casing" or re.search(r"\sall-casing$", rest):
        all_casing, rest = True, rest[: -len("all-casing")].rstrip()
    pairs: list[tuple[str, str]] = []
    if rest:
        if not re.match(r"with\s", rest):
            raise CheckError(f"malformed marker: unexpected {rest!r} after the reference (expected `{GRAMMAR}`)")
        for chunk in rest[4:].split(","):
            pair = _PAIR_RE.fullmatch(chunk.strip())
            if pair is None or "->" in pair.group(2):
                raise CheckError(f"malformed marker: {chunk.strip()!r} is not a replacement `A->B`")
            pairs.append(pair.groups())
    elif all_casing:
        raise CheckError("malformed marker: `all-casing` without `with A->B` replacements")
    return Marker(0, ref, expand_pairs(pairs, all_casing))


def expand_pairs(pairs: list[tuple[str, str]], all_casing: bool) -> tuple[dict[str, str], ...]:
    """One {old: new} group per pair; with `all-casing` a group also holds the pair's lower-case,
    UPPER-case and Capitalised forms. Groups apply left to right, the forms of one group at once
    (so `Bert->RoBERTa all-casing` never rewrites the `BERT` inside a fresh `RoBERTa`)."""
    groups = []
    for old, new in pairs:
        forms = {old: new}
        if all_casing:
            forms.setdefault(old.lower(), new.lower())
            forms.setdefault(old.upper(), new.upper())
            forms.setdefault(old[:1].upper() + old[1:], new[:1].upper() + new[1:])
        groups.append(forms)
    return tuple(groups)


def apply_replacements(text: str, groups: tuple[dict[str, str], ...]) -> str:
    for forms in groups:
        if len(forms) == 1:
            (old, new), = forms.items()
            text = text.replace(old, new)
        else:
            pattern = "|".join(re.escape(old) for old in sorted(forms, key=len, reverse=True))
            text = re.sub(pattern, lambda m: forms[m.group(0)], text)
    return text


# ---------------------------------------------------------------------------------------------
# Blocks: line ranges of statements, and statements' positions inside a copied object
# ---------------------------------------------------------------------------------------------


def node_start(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    return decorators[0].lineno if decorators else node.lineno


def block_end(sf: SourceFile, node: ast.stmt) -> int:
    """The node's last line, plus comment lines indented deeper than it that directly follow."""
    last = node.end_lineno
    i = last + 1
    while i <= len(sf.lines):
        line = sf.line(i)
        if not line.strip():
            i += 1
            continue
        if is_comment_only(line) and len(leading_ws(line)) > node.col_offset:
            last = i
            i += 1
            continue
        break
    return last


def block_start(sf: SourceFile, node: ast.stmt, floor: int) -> int:
    """The node's first line, moved up over the comment lines of its indentation right above it."""
    start = node_start(node)
    while start - 1 > floor:
        above = sf.line(start - 1)
        if not (is_comment_only(above) and len(leading_ws(above)) == node.col_offset):
            break
        start -= 1
    return start


def child_lists(node: ast.AST):
    """(label, statement list) for every statement list directly inside `node`."""
    for name in ("body", "orelse", "finalbody"):
        value = getattr(node, name, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            yield name, value
    for i, handler in enumerate(getattr(node, "handlers", None) or []):
        yield f"handlers.{i}", handler.body
    for i, case in enumerate(getattr(node, "cases", None) or []):
        yield f"cases.{i}", case.body


@dataclass
class Place:
    path: tuple  # ((label, key), ...) from the copied object down to this statement
    parent: ast.AST
    siblings: list[ast.stmt]


def key_of(stmt: ast.stmt, siblings: list[ast.stmt]) -> tuple:
    """A def/class is known by its name; any other statement by its rank among the non-defs."""
    if isinstance(stmt, DEFS):
        return ("def", stmt.name)
    rank = sum(1 for s in siblings[: siblings.index(stmt)] if not isinstance(s, DEFS))
    return ("stmt", rank)


def places(root: ast.AST) -> dict[int, Place]:
    """id(statement) -> Place, for every statement inside `root` (pre-order)."""
    found: dict[int, Place] = {}

    def visit(node, path):
        for label, stmts in child_lists(node):
            for stmt in stmts:
                here = path + ((label, key_of(stmt, stmts)),)
                found[id(stmt)] = Place(here, node, stmts)
                visit(stmt, here)

    visit(root, ())
    return found


def follow(src_root: ast.AST, path: tuple, pairs) -> ast.stmt | None:
    """The source statement at `path` (names compared after the replacements), or None."""
    node = src_root
    for label, (kind, value) in path:
        stmts = dict(child_lists(node)).get(label)
        if stmts is None:
            return None
        if kind == "def":
            node = next((s for s in stmts if isinstance(s, DEFS) and apply_replacements(s.name, pairs) == value), None)
        else:
            plain = [s for s in stmts if not isinstance(s, DEFS)]
            node = plain[value] if value < len(plain) else None
        if node is None:
            return None
    return node


def qualnames(tree: ast.Module) -> dict[int, str]:
    names: dict[int, str] = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, DEFS):
                names[id(child)] = prefix + child.name
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.stmt):
                if named(child):
                    names[id(child)] = prefix + named(child)
                visit(child, prefix)

    visit(tree, "")
    return names


# ---------------------------------------------------------------------------------------------
# Check 1: copies
# ---------------------------------------------------------------------------------------------


@dataclass
class Copy:
    marker: Marker
    node: ast.stmt  # the marked def/class/assignment in the copy's file
    name: str  # its qualified name, for messages


@dataclass
class Drift:
    problem: Problem
    start: int  # the copy's lines start..end (1-based, inclusive) ...
    end: int
    new_lines: list[str]  # ... become these (without line endings)


def find_copies(sf: SourceFile) -> tuple[list[Copy], list[Problem]]:
    """Every marker of the file, paired with the def/class right below it."""
    tree = sf.tree
    starts: dict[int, ast.stmt] = {}
    def_lines: dict[int, ast.stmt] = {}
    for node in ast.walk(tree):
        if named(node) is not None:
            starts.setdefault(node_start(node), node)
            def_lines[node.lineno] = node
    names = qualnames(tree)
    copies, problems = [], []
    for line, _col, text in sf.comments():
        try:
            marker = parse_marker(text)
            if marker is None:
                continue
            node = starts.get(line + 1)
            if node is None:
                if line + 1 in def_lines:
                    raise CheckError("malformed marker: put `# Copied from` above the decorators, not below them")
                raise CheckError(
                    "malformed marker: `# Copied from` must be directly above a class, function or one-name "
                    "assignment, with no other line in between"
                )
            copies.append(Copy(Marker(line, marker.ref, marker.pairs), node, names[id(node)]))
        except CheckError as exc:
            problems.append(Problem(sf.rel, line, str(exc)))
    return copies, problems


def ignore_comments_outside(sf: SourceFile, copies: list[Copy]) -> list[Problem]:
    spans = [(c.marker.line, block_end(sf, c.node)) for c in copies]
    return [
        Problem(sf.rel, line, "`# Ignore copy` outside any `# Copied from` block")
        for line, _col, text in sf.comments()
        if _IGNORE_RE.match(text) and not any(a < line <= b for a, b in spans)
    ]


def check_copy(repo: Repo, sf: SourceFile, copy: Copy) -> Drift | None:
    """None when the copy matches its source; raises CheckError when it cannot be checked."""
    src, src_root = repo.resolve(copy.marker.ref)
    root = copy.node
    if src.rel == sf.rel and src_root is root:
        raise CheckError(f"{copy.name} is marked as a copy of itself")
    pairs = copy.marker.pairs
    c0, c1 = node_start(root), block_end(sf, root)
    s0, s1 = node_start(src_root), block_end(src, src_root)

    # `# Ignore copy` blocks of the copy, outermost only, each with its source counterpart.
    where = places(root)
    order = {id(n): i for i, n in enumerate(_preorder(root))}
    ignored = []  # (copy start, copy end, stmt)
    for line, _col, text in sf.comments():
        if not (c0 < line <= c1 and _IGNORE_RE.match(text)):
            continue
        target = line + 1
        while target <= c1 and is_comment_only(sf.line(target)):
            target += 1
        stmt = min(
            (n for n in _preorder(root) if n is not root and node_start(n) == target),
            key=lambda n: order[id(n)],
            default=None,
        )
        if stmt is None or not sf.line(target).strip():
            raise CheckError(f"`# Ignore copy` at line {line} is not directly above a statement of {copy.name}")
        start = min(line, block_start(sf, stmt, floor=root.lineno))
        end = block_end(sf, stmt)
        if any(a <= start and end <= b for a, b, _ in ignored):
            continue  # inside a block ignored already
        ignored = [(a, b, n) for a, b, n in ignored if not (start <= a and b <= end)]
        ignored.append((start, end, stmt))

    def counterpart(stmt):
        return follow(src_root, where[id(stmt)].path, pairs)

    def src_region(node):
        return block_start(src, node, floor=src_root.lineno), block_end(src, node)

    replaced: dict[int, tuple[int, list[str]]] = {}  # source start -> (source end, copy's lines)
    inserts: dict[int, list[list[str]]] = {}  # source line -> extra blocks to put after it
    used = set()
    for start, end, stmt in sorted(ignored, key=lambda item: item[:2]):
        lines = [strip_eol(sf.lines[i - 1]) for i in range(start, end + 1)]
        match = counterpart(stmt)
        if match is not None and id(match) not in used:
            used.add(id(match))
            a, b = src_region(match)
            replaced[a] = (b, lines)
        else:
            inserts.setdefault(_anchor(stmt, root, where, counterpart, src_region, s1), []).append(
                ([""] if isinstance(stmt, DEFS) else []) + lines
            )

    # The expected copy: the source block, replaced and re-indented, with the ignored blocks.
    copy_name = named(root)
    src_indent = leading_ws(src.line(src_root.lineno))
    dst_indent = leading_ws(sf.line(root.lineno))
    expected: list[str] = []
    i = s0
    while i <= s1:
        if i in replaced:
            last, lines = replaced[i]
            expected.extend(lines)
        else:
            last = i
            line = apply_replacements(src.line(i), pairs)
            if not line.strip():
                line = ""
            elif line.startswith(src_indent):
                line = dst_indent + line[len(src_indent) :]
            if i == src_root.lineno:
                line = _HEADER_RE.sub(lambda m: m.group(1) + copy_name, line, count=1)
            expected.append(line)
        for j in range(i, last + 1):
            for block in inserts.get(j, []):
                expected.extend(block)
        i = last + 1

    actual = [sf.line(i) for i in range(c0, c1 + 1)]
    got = [(c0 + k, line.rstrip()) for k, line in enumerate(actual) if line.strip()]
    want = [line.rstrip() for line in expected if line.strip()]
    if [line for _, line in got] == want:
        return None
    first = next((n for (n, a), b in zip(got, want) if a != b), got[len(want)][0] if len(got) > len(want) else c1)
    diff = difflib.unified_diff(
        [line.rstrip() for line in actual],
        [line.rstrip() for line in expected],
        fromfile=f"{sf.rel}:{c0}-{c1} ({copy.name}, the copy)",
        tofile=f"{copy.marker.ref} (the source, as the copy should read)",
        lineterm="",
    )
    problem = Problem(sf.rel, first, f"{copy.name} differs from {copy.marker.ref}", "\n".join(diff))
    return Drift(problem, c0, c1, expected)


def _preorder(root):
    for _label, stmts in child_lists(root):
        for stmt in stmts:
            yield stmt
            yield from _preorder(stmt)


def _anchor(stmt, root, where, counterpart, src_region, s1) -> int:
    """The source line after which an ignored block the source lacks goes (for `--fix`)."""
    place = where[id(stmt)]
    k = place.siblings.index(stmt)
    for sibling in reversed(place.siblings[:k]):
        match = counterpart(sibling)
        if match is not None:
            return src_region(match)[1]
    for sibling in place.siblings[k + 1 :]:
        match = counterpart(sibling)
        if match is not None:
            return src_region(match)[0] - 1
    if place.parent is root:
        return s1
    match = counterpart(place.parent)
    if match is not None:
        return src_region(match)[1]
    return _anchor(place.parent, root, where, counterpart, src_region, s1)


def check_file_copies(repo: Repo, rel: str) -> tuple[list[Drift], list[Problem]]:
    sf = repo.get(rel)
    try:
        copies, problems = find_copies(sf)
    except SyntaxError as exc:
        return [], [Problem(rel, exc.lineno or 1, f"syntax error: {exc.msg}")]
    problems += ignore_comments_outside(sf, copies)
    drifts = []
    for copy in copies:
        try:
            drift = check_copy(repo, sf, copy)
        except CheckError as exc:
            problems.append(Problem(rel, copy.marker.line, str(exc)))
            continue
        if drift is not None:
            drifts.append(drift)
    return drifts, problems


def fix_file(repo: Repo, rel: str, drifts: list[Drift]) -> list[Drift]:
    """Rewrite the drifted copies of one file (outermost first when they nest); the rest stays byte for byte."""
    chosen: list[Drift] = []
    for drift in sorted(drifts, key=lambda d: (d.start, -d.end)):
        if all(drift.start > c.end or drift.end < c.start for c in chosen):
            chosen.append(drift)
    sf = repo.get(rel)
    lines = list(sf.lines)
    newline = sf.newline()
    for drift in sorted(chosen, key=lambda d: d.start, reverse=True):
        old_last = lines[drift.end - 1]
        ending = old_last[len(strip_eol(old_last)) :]
        block = [line + newline for line in drift.new_lines[:-1]] + [drift.new_lines[-1] + ending]
        lines[drift.start - 1 : drift.end] = block
    repo.write(rel, "".join(lines))
    return chosen


# ---------------------------------------------------------------------------------------------
# Check 2: the single-model-file rule
# ---------------------------------------------------------------------------------------------

PT_PACKAGES = ("torch",)
TF_PACKAGES = ("tensorflow", "keras", "tf_keras")


def module_framework(module: str) -> str | None:
    """"pt" / "tf" for a module that loads PyTorch / TensorFlow when imported, else None."""
    parts = module.split(".")
    if parts[0] in PT_PACKAGES:
        return "pt"
    if parts[0] in TF_PACKAGES:
        return "tf"
    if parts[0] == "westron":
        last = parts[-1]
        if last.startswith(("modeling_tf_", "tf_")):
            return "tf"
        if last == "modeling_utils" or last.startswith("torch_"):
            return "pt"
        if len(parts) >= 4 and parts[1] == "models" and last.startswith("modeling_"):
            return "pt"
    return None


def file_framework(rel_parts: list[str], imported: list[str]) -> str | None:
    """TF: modeling_tf_*.py and tf_*.py anywhere in westron/. PyTorch: modeling_*.py (other than
    modeling_tf_*) and torch_*.py anywhere in westron/, and any file of a model folder that imports torch."""
    name = rel_parts[-1]
    if name.startswith(("modeling_tf_", "tf_")):
        return "tf"
    if name.startswith(("modeling_", "torch_")):
        return "pt"
    in_model_folder = len(rel_parts) >= 4 and rel_parts[1] == "models"
    if in_model_folder and any(m.split(".")[0] in PT_PACKAGES for m in imported):
        return "pt"
    return None


def check_imports(repo: Repo, rel: str) -> list[Problem]:
    parts = rel.split("/")
    if parts[0] != "westron":
        return []
    try:
        tree = repo.get(rel).tree
    except SyntaxError as exc:
        return [Problem(rel, exc.lineno or 1, f"syntax error: {exc.msg}")]
    model = parts[2] if len(parts) >= 4 and parts[1] == "models" else None
    package = parts[:-1]  # westron/models/marian/x.py and .../__init__.py both live in westron.models.marian
    problems: list[Problem] = []
    statements: list[tuple[int, list[str], list[str]]] = []  # (line, modules loaded, modules named for the model rule)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
            statements.append((node.lineno, names, names))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    problems.append(Problem(rel, node.lineno, "relative import beyond the top-level package"))
                    continue
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            subs = [f"{module}.{alias.name}" for alias in node.names if alias.name != "*"]
            ruled = subs if module in ("westron", "westron.models") else [module]
            statements.append((node.lineno, [module] + subs, ruled))

    if model is not None:
        for line, _loaded, ruled in statements:
            for target in ruled:
                t = target.split(".")
                if t[:2] != ["westron", "models"] or (len(t) >= 3 and t[2] == model):
                    continue
                if len(t) == 2:
                    what = "the models package"
                else:
                    what = "the auto registry" if t[2] == "auto" else "another model's folder"
                problems.append(Problem(
                    rel, line,
                    f"imports {target} ({what}): files in westron/models/{model}/ import only Westron's shared core "
                    f"and their own folder",
                ))

    framework = file_framework(parts, [m for _, loaded, _ in statements for m in loaded])
    wrong = {"tf": "pt", "pt": "tf"}.get(framework)
    for line, loaded, _ruled in statements:
        target = next((m for m in loaded if module_framework(m) == wrong), None) if wrong else None
        if target is None:
            continue
        if framework == "tf":
            message = f"TensorFlow file imports {target} (PyTorch): TF files never import torch"
            problems.append(Problem(rel, line, message))
        else:
            problems.append(Problem(
                rel, line, f"PyTorch file imports {target} (TensorFlow): PyTorch files never import tensorflow or keras"
            ))
    return problems


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def run(root: str | os.PathLike = ".", fix: bool = False, out=None) -> list[Problem]:
    """Check (and with `fix`, first repair) the tree at `root`. Returns what is still wrong."""
    out = sys.stdout if out is None else out
    repo = Repo(root)
    files = [rel for top in SCANNED_DIRS for rel in repo.python_files(top)]
    if fix:
        for _ in range(MAX_FIX_PASSES):
            changed = False
            for rel in files:
                drifts, _ = check_file_copies(repo, rel)
                if drifts:
                    for drift in fix_file(repo, rel, drifts):
                        what = drift.problem.message.replace(" differs from ", " from ")
                        print(f"{rel}:{drift.start}: rewrote {what}", file=out)
                    changed = True
            if not changed:
                break
    problems: list[Problem] = []
    for rel in files:
        drifts, file_problems = check_file_copies(repo, rel)
        problems += [d.problem for d in drifts] + file_problems
        if not any(p.message.startswith("syntax error") for p in file_problems):
            problems += check_imports(repo, rel)
    return sorted(set(problems), key=lambda p: (p.path, p.line, p.message))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fix", action="store_true", help="rewrite drifted copies from their sources")
    parser.add_argument(
        "--root", default=Path(__file__).resolve().parents[1], help="repository root (default: this checkout)"
    )
    args = parser.parse_args(argv)
    problems = run(args.root, fix=args.fix)
    for problem in problems:
        print(problem.format())
    if problems:
        hint = "" if args.fix else "; `make fix-copies` rewrites drifted copies"
        print(f"check-copies: {len(problems)} problem(s){hint}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
