"""Atomic file writes: a reader sees the old file or the whole new one, never a partial file."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import sys
import tempfile


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
def atomic_directory(path: str | os.PathLike):
    """Yields an empty temporary folder beside `path`; on success it replaces `path` as a whole.

    A reader (or a process killed at any moment) sees the old folder or the complete new one,
    never a mix: the new folder is written and flushed first, then swapped in by one atomic
    exchange of the two names, and the old one is removed afterwards.
    """
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    tmp_path = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o755)
        fsync_tree(tmp_path)
        if os.path.isdir(path):
            if not exchange_paths(tmp_path, path):
                old_path = tmp_path + ".old"
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
