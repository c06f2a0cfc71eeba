"""File helpers that must be right once: writing a file whole or not at all, fsync, sha256 of a file.

Every module that writes or checks files uses these (the index, the resume areas, the query-encoder export
cache, the reader's checksum check, ingest's file hashes, the articles folder), so a fix to durability or
hashing lands everywhere at once.

This module sits below every other one in qa (it imports nothing from qa), rather than inside ``qa.index``:
ingest, embed and the reader run before the index exists and must not depend on the package that builds it.

The index's fault-injection tests (tests/test_faults.py, tests/test_resume.py) patch ``write_synced``,
``fsync_dir`` and ``fsync_tree`` here: callers reach them through this module (``files.write_synced(...)``),
never through a copied reference, so a patched function is the one that runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks (model files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and fsync it: the bytes are on disk when this returns.

    Not atomic by itself: use it for files inside a directory that is renamed into place as a whole, and
    :func:`write_atomic` for a file replaced on its own.
    """
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: Path, data: bytes, *, tmp: Path | None = None, sync_dir: bool = False) -> None:
    """Replace ``path`` by ``data`` whole or not at all: a reader (or a crash) sees the old file or the new one.

    Writes a temporary file beside ``path`` (``tmp``; by default a hidden name unique to this process and
    thread), fsyncs it and renames it over ``path`` with ``os.replace``. ``sync_dir`` also fsyncs the
    directory, so the rename itself survives a power cut (the index's CURRENT pointer needs that). On any
    error the temporary file is removed and the OSError raised; ``path`` is unchanged.
    """
    tmp = tmp or path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        write_synced(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the write error says more than this one
        raise
    if sync_dir:
        fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Flush a directory's entries (names created, renamed or removed in it) to disk."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(directory: Path) -> None:
    """Flush every file under ``directory``, then every directory in it and itself."""
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    for sub in [p for p in directory.rglob("*") if p.is_dir()] + [directory]:
        fsync_dir(sub)


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` when possible (no second copy on disk), a copy otherwise
    (another file system, or links not allowed). Only for files that are never written in place."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
