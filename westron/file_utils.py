"""Atomic writes: a reader sees the old file (or folder) or the whole new one, never a partial one.

`atomic_write` / `atomic_path` replace one file; `atomic_directory` replaces a whole folder (a
checkpoint), so a save killed at any moment leaves the old checkpoint or the new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable

from westron.errors import WestronError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside `path`; on success renames it over `path`, on error removes it.

    For libraries that write files by name (safetensors); `atomic_write` opens it for you.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Opens a temporary file beside `path`, flushed to disk and renamed over `path` on success."""
    with atomic_path(path) as tmp_path:
        with open(tmp_path, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def fsync_tree(folder: str) -> None:
    """Flushes every file under `folder`, then the folders themselves, to disk."""
    for directory, _, files in os.walk(folder, topdown=False):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_directory(directory)


def fsync_directory(directory: str) -> None:
    """Makes a rename inside `directory` durable (POSIX needs the folder itself flushed)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exchange_paths(first: str, second: str) -> bool:
    """Swaps two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if result == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # a file system or kernel without the exchange flag
    raise OSError(error, os.strerror(error), second)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, keep: Callable[[str], bool] | None = None):
    """Yields an empty temporary folder beside `path`; on success it replaces `path` as a whole.

    A reader (or a process killed at any moment) sees the old folder or the complete new one,
    never a mix: the new folder is written and flushed first, then swapped in by one atomic
    exchange of the two names, and the old one is removed afterwards.

    `keep(name)` says which entries of the existing folder the new one inherits (hard-linked, or
    copied where links are not possible) unless the caller wrote an entry of that name: a model
    save keeps the tokenizer files saved into the same folder, and the reverse.
    Leftovers of an earlier save that was killed are recovered or removed first.
    """
    path = os.path.realpath(os.fspath(path))  # a symlinked folder is replaced where it points
    parent, name = os.path.split(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise WestronError(f"cannot save into {path}: it is a file, not a folder")
    os.makedirs(parent, exist_ok=True)
    recover_directory(path)
    tmp_path = tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}-", suffix=TMP_SUFFIX, dir=parent)
    try:
        yield tmp_path
        if keep is not None and os.path.isdir(path):
            _inherit_entries(path, tmp_path, keep)
        os.chmod(tmp_path, 0o755)
        fsync_tree(tmp_path)
        if os.path.isdir(path):
            if not exchange_paths(tmp_path, path):
                # No atomic exchange here: two renames. A crash between them leaves `path` missing
                # and the old folder at OLD: recover_directory puts it back.
                old_path = tmp_path + OLD_SUFFIX
                os.rename(path, old_path)
                os.rename(tmp_path, path)
                tmp_path = old_path
            fsync_directory(parent)
            shutil.rmtree(tmp_path)
        else:
            os.rename(tmp_path, path)
            fsync_directory(parent)
    except BaseException:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise


TMP_SUFFIX = ".tmp"
OLD_SUFFIX = ".old"


def _inherit_entries(old_folder: str, new_folder: str, keep: Callable[[str], bool]) -> None:
    for entry in os.scandir(old_folder):
        target = os.path.join(new_folder, entry.name)
        if not keep(entry.name) or is_leftover(entry.name) or os.path.lexists(target):
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            shutil.copytree(entry.path, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry.path, target)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)


def is_leftover(name: str) -> bool:
    """A temporary name of atomic_path / atomic_directory (`.NAME.XXXX.tmp`, `.NAME.XXXX.tmp.old`)."""
    return name.startswith(".") and (name.endswith(TMP_SUFFIX) or name.endswith(TMP_SUFFIX + OLD_SUFFIX))


_TEMP_FOLDER = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)-[^.]+\.tmp(?P<old>\.old)?")


def recover_directory(path: str | os.PathLike) -> None:
    """Repairs what a killed atomic_directory left beside `path`.

    A folder missing with its `.old` copy present (killed between the two fallback renames) is
    put back; temporary folders of processes that no longer run are removed. Those of a live
    process (a save in progress elsewhere) are left alone.
    """
    path = os.path.realpath(os.fspath(path))
    parent, name = os.path.split(path)
    try:
        entries = os.listdir(parent)
    except OSError:
        return
    leftovers = []
    for entry in entries:
        match = _TEMP_FOLDER.fullmatch(entry)
        if match and match["name"] == name and not _process_alive(int(match["pid"])):
            leftovers.append((entry, bool(match["old"])))
    with contextlib.suppress(OSError):  # a read-only folder: nothing to repair there
        for entry, is_old in sorted(leftovers, key=lambda item: not item[1]):  # .old first
            leftover = os.path.join(parent, entry)
            if is_old and not os.path.lexists(path):
                os.rename(leftover, path)
                fsync_directory(parent)
            else:
                shutil.rmtree(leftover)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_replaceable_folder(path: str | os.PathLike, marker: str) -> None:
    """Refuses an output folder that exists, is not empty and lacks `marker` (a file the same tool
    writes there): `atomic_directory` replaces a folder as a whole, so a wrong -o must not cost
    the user their files."""
    from westron.errors import WestronError

    path = os.fspath(path)
    if os.path.isfile(path):
        raise WestronError(f"{path} is a file; the output is a folder")
    if os.path.isdir(path) and os.listdir(path) and not os.path.isfile(os.path.join(path, marker)):
        raise WestronError(f"{path} exists and holds other files (no {marker}): choose a new or empty folder")


def write_json(path: str | os.PathLike, data, sort_keys: bool = False) -> None:
    """Writes `data` as indented UTF-8 JSON (non-ASCII kept as is), atomically."""
    with atomic_write(path) as handle:
        handle.write(json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n")


def copy_file_atomically(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Copies `source` over `destination` so that a reader never sees half a file."""
    if os.path.exists(destination) and os.path.samefile(source, destination):
        return
    with open(source, "rb") as reader, atomic_write(destination, "wb") as writer:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)
