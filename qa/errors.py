"""Specific exceptions; each message says what went wrong and what to do about it.

Every error qa raises on purpose is defined here (and exported from ``qa``), so a caller can catch
:class:`QAError` or one specific kind without importing the module that raises it.
"""

from __future__ import annotations

import errno
from pathlib import Path


class QAError(Exception):
    """Base class for every error qa raises on purpose."""


class IngestError(QAError):
    """An article file cannot be read (empty, binary, not UTF-8, too large); names the file and reason."""


class IndexNotFoundError(QAError):
    """No index at the given directory: run `qa build`."""


class IndexMismatchError(QAError):
    """The index was built with another model, dimension, settings or format version: run `qa build`."""


class IndexCorruptError(QAError):
    """An index file is missing, truncated or altered (checksum mismatch): run `qa build` to repair."""


class IndexLockedError(QAError):
    """Another build is writing to the same index directory: wait for it to finish, then build again."""


# errno -> (what happened, what to do), for IndexWriteError's message.
_WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full (no space left on device)", "free some disk space"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some disk space"),
    errno.EROFS: ("the file system is read-only", "mount it read-write"),
    errno.EACCES: ("permission denied", "make the directory writable for this user"),
    errno.EPERM: ("the operation is not permitted", "make the directory writable for this user"),
}


class IndexWriteError(QAError):
    """The index cannot be written (disk full, read-only, no permission); the live index is unchanged."""

    @classmethod
    def from_os_error(cls, index_dir: Path, exc: OSError, unchanged: bool = True) -> IndexWriteError:
        """The error for ``exc`` met while writing ``index_dir``: what failed (disk full, read-only, ...), whether
        the live index changed (``unchanged``: it did not), and what to do about it."""
        what, fix = _WRITE_ERRORS.get(exc.errno, (exc.strerror or str(exc), "check the disk and the directory"))
        where = f" (writing {exc.filename})" if exc.filename else ""
        state = (
            "The live index was not changed. " if unchanged
            else "The new version is live but may not be flushed to disk. "
        )
        return cls(
            f"Cannot write the index in {index_dir}: {what}{where}. {state}"
            f"To fix it, {fix} or pass another --index directory, then run `qa build` again."
        )


class ModelLoadError(QAError):
    """A packaged model cannot be loaded (package missing, checksum mismatch)."""


class RayNotInstalledError(QAError):
    """``engine="ray"`` was asked for but Ray is not installed."""


class ArticleError(QAError, ValueError):
    """An article cannot be added to or removed from the articles folder (an unsafe name, a file a build would
    skip, a missing choice); the message names the file and what to do. Also a ValueError: it is bad input."""
