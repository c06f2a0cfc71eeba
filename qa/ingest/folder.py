"""A folder of article files (or a JSONL corpus) -> Documents, each file read by its format's reader.

Unreadable files are skipped with a reason (or, with ``config.strict``, raise :class:`IngestError`), so one
bad file never blocks a build. Files of a format qa cannot read are listed as skipped too ("unsupported
format"), never ignored silently.

- Hidden files and folders (names starting with ".") are ignored; symlinks are followed only when they
  resolve inside the folder. FIFOs, devices and sockets are skipped (reading one could block forever), and
  so are file names that are not valid UTF-8 (they could not be stored in the index or shown).
- A file is read whole after its size is checked against its format's limit (qa.ingest.registry), and its
  sha256 is of the raw bytes, so a changed file (same name) is re-read and re-embedded by the next build.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from qa.config import Config
from qa.errors import IngestError
from qa.files import sha256_file
from qa.ingest.documents import IngestResult, Reuse, Skipped, Unreadable, valid_utf8
from qa.ingest.registry import (
    FORMATS,
    Format,
    article_suffixes,
    format_for,
    read_file_bytes,
    reusable,
    unsupported,
)
from qa.types import Document

logger = logging.getLogger(__name__)


def read_article(path: str | Path, doc_id: str, config: Config) -> Document:
    """Read one article file. Raises IngestError naming the file and the reason (empty, encrypted, ...)."""
    try:
        return _read_article(Path(path), doc_id, config)
    except Unreadable as exc:
        raise IngestError(f"Cannot ingest {path}: {exc}") from None


def _read_article(path: Path, doc_id: str, config: Config, reuse: Reuse | None = None) -> Document:
    fmt = format_for(path)
    if fmt is None or fmt.read is None:
        raise Unreadable(unsupported(path.name))
    return read_file_bytes(fmt, _read_bytes(path, fmt, config), doc_id, config, reuse)


def _read_bytes(path: Path, fmt: Format, config: Config) -> bytes:
    limit = fmt.limit(config)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("it is not a regular file (a FIFO, device or socket); only regular files are read")
        if info.st_size > limit:
            raise Unreadable(fmt.too_large(info.st_size, config))
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror or exc}); check that it exists and is readable") from None
    if len(raw) > limit:
        raise Unreadable(fmt.too_large(len(raw), config))
    return raw


def load_folder(folder: str | Path, config: Config, reuse: Reuse | None = None) -> IngestResult:
    """Every article file under ``folder`` (recursively, sorted); doc_id is the POSIX relative path.

    ``reuse`` (a previous index's documents) spares reading unchanged PDF, Word and HTML files again.
    """
    root = Path(folder)
    if not root.is_dir():
        raise IngestError(f"{root} is not a folder: pass the folder that holds the article files.")
    result = IngestResult()
    for doc_id, path, problem in _candidates(root):
        if problem:  # a link not followed, a name that cannot be stored: said, but not an error when strict
            logger.warning("Skipping %s: %s", path, problem)
            result.skipped.append(Skipped(doc_id, problem))
            continue
        try:
            doc = _read_article(path, doc_id, config, reuse)
        except Unreadable as exc:
            if config.strict:
                raise IngestError(f"Cannot ingest {path}: {exc}") from None
            logger.warning("Skipping %s: %s", path, exc)
            result.skipped.append(Skipped(doc_id, str(exc)))
            continue
        if doc.paragraphs and not doc.content_paragraphs():
            logger.info("%s: every paragraph looks like site furniture; it will yield no passages", doc_id)
        result.documents.append(doc)
        fmt: Format = format_for(path)  # type: ignore[assignment]  # read, so its format is known
        result.extractors.setdefault(fmt.name, fmt.extractor())
        if reusable(fmt, reuse, doc_id, doc.sha256) is not None:
            result.reused.append(doc_id)
    return result


def file_hashes(folder: str | Path, config: Config) -> dict[str, str]:
    """{doc_id: sha256 of the raw bytes} for the files load_folder would try to read; cheap staleness check.

    Files that cannot be opened at all, files of unsupported formats and symlinks leading outside the folder
    are left out.
    """
    root = Path(folder)
    if not root.is_dir():
        return {}
    hashes: dict[str, str] = {}
    for doc_id, path, problem in _candidates(root):
        fmt = format_for(path)
        if problem or fmt is None or fmt.read is None:
            continue
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # never open a FIFO: it would block
                continue
            hashes[doc_id] = sha256_file(path)
        except OSError as exc:
            logger.debug("Cannot hash %s: %s", path, exc)
    return hashes


def article_files(folder: str | Path) -> list[str]:
    """The doc_ids (POSIX relative paths, sorted) of the article files a build of ``folder`` would read.

    The same walk as :func:`load_folder` (hidden files and folders ignored, links outside the folder and
    names that are not UTF-8 left out), without reading any file: the UI lists these to choose one to remove.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    suffixes = article_suffixes()
    return [doc_id for doc_id, path, problem in _candidates(root)
            if not problem and path.suffix.lower() in suffixes and path.is_file()]



def _candidates(root: Path) -> Iterator[tuple[str, Path, str]]:
    """(doc_id, path, problem) for every visible file under root, sorted by doc_id; problem is "" if fine.

    Files of unsupported formats are listed too: reading them says so (a skip, or an error when strict).
    """
    real_root = root.resolve()
    found: list[tuple[str, Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in list(dirnames):
            path = here / name
            if path.is_symlink():
                dirnames.remove(name)  # never descend through links (loops, duplicates)
                if not path.resolve().is_relative_to(real_root):
                    found.append((_printable(_doc_id(path, root)), path, _printable(_outside(path, root))))
                else:
                    logger.debug("Not following %s: its target is read at its real path", path)
        for name in filenames:
            path = here / name
            if name.startswith("."):
                continue
            problem = ""
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                problem = _printable(_outside(path, root))
            doc_id = _doc_id(path, root)
            if not valid_utf8(doc_id):
                doc_id = _printable(doc_id)
                problem = "its name is not valid UTF-8; rename the file (e.g. with `convmv`) and build again"
            found.append((doc_id, path, problem))
    yield from sorted(found, key=lambda item: item[0])


def _doc_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _printable(name: str) -> str:
    """A name with undecodable bytes shown as U+FFFD, safe to print and to store as JSON."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _outside(path: Path, root: Path) -> str:
    return f"symlink to {path.resolve()}, outside {root}; not followed (copy the file in instead)"


def load_corpus(path: str | Path, config: Config, reuse: Reuse | None = None) -> IngestResult:
    """A folder of articles, or a corpus file of a format that holds many records (``.jsonl``)."""
    path = Path(path)
    if path.is_dir():
        return load_folder(path, config, reuse)
    fmt = format_for(path)
    if path.is_file() and fmt is not None and fmt.load is not None:
        result = fmt.load(path, config)
        result.extractors = {fmt.name: fmt.extractor()} if result.documents else {}
        return result
    corpora = ", ".join(s for f in FORMATS if f.load is not None for s in f.suffixes)
    if not path.exists():
        raise IngestError(f"{path} does not exist: pass a folder of articles ({', '.join(article_suffixes())}) "
                          f"or a {corpora} corpus.")
    raise IngestError(
        f"{path} is neither a folder nor a {corpora} file: pass the folder that holds the articles "
        f"({', '.join(article_suffixes())}) or a JSONL corpus "
        '({"id": ..., "title": ..., "text": ...} per line).'
    )
