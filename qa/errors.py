"""Specific exceptions; each message says what went wrong and what to do about it."""


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


class ModelLoadError(QAError):
    """A packaged model cannot be loaded (package missing, checksum mismatch)."""


class ArticleError(QAError, ValueError):
    """An article cannot be added to or removed from the articles folder (an unsafe name, a file a build would
    skip, a missing choice); the message names the file and what to do. Also a ValueError: it is bad input."""
