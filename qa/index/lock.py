"""The build lock: one writer per index directory, so a second build cannot undo the first one's work.

A save deletes what interrupted saves left behind (``.tmp-*`` directories, versions that never went live);
a second build running at the same time would see the first one's temporary directory as such a leftover.
Builds therefore hold ``build.lock`` from start to end, and a second one fails at once with
IndexLockedError. Readers never take the lock: they read whole versions, which are never written in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; builds there are not serialised
    fcntl = None  # type: ignore[assignment]

from qa.errors import IndexLockedError, IndexWriteError
from qa.index.layout import LOCK


@dataclass(frozen=True)
class IndexLock:
    """Proof that this process holds the build lock of ``index_dir`` (from :func:`index_lock`)."""

    index_dir: Path
    fd: int


@contextmanager
def index_lock(index_dir: str | Path) -> Iterator[IndexLock]:
    """Hold the exclusive build lock of ``index_dir`` (created if needed) for the ``with`` block.

    Raises IndexLockedError at once when another build, in this or another process, holds it (a build can
    take minutes, so waiting silently would look like a hang), and IndexWriteError when the directory
    cannot be created or written. The lock is an ``fcntl.flock`` on ``build.lock``: the operating system
    drops it when its holder dies, so a killed build never leaves the index locked.
    """
    index_dir = Path(index_dir)
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise IndexWriteError.from_os_error(index_dir, exc) from exc
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(fd)
                raise IndexLockedError(
                    f"Another build is running on {index_dir}{holder}: wait for it to finish, then run "
                    "`qa build` again (a second build at the same time would undo the first one's work)."
                ) from None
            try:  # who holds it, for the message above; a full disk must not stop the build here
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            except OSError:
                pass
        yield IndexLock(index_dir, fd)
    finally:
        os.close(fd)  # releases the flock


def _lock_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (process {pid})" if pid.isdigit() else ""


@contextmanager
def holding(index_dir: Path, lock: IndexLock | None) -> Iterator[None]:
    """The caller's lock when it passed one (checked), else a lock taken for the block."""
    if lock is None:
        with index_lock(index_dir):
            yield
        return
    if lock.index_dir.resolve() != index_dir.resolve():
        raise ValueError(f"The lock is for {lock.index_dir}, not {index_dir}: pass the lock of the index written.")
    yield
