"""Article files (or a JSONL corpus) -> Documents with clean text, a title and marked boilerplate.

Nothing is removed from ``Document.text``: boilerplate paragraphs are only flagged, so offsets stay valid
and the UI can show the whole article. Unreadable files are skipped with a reason (or, with
``config.strict``, raise :class:`IngestError`), so one bad file never blocks a build.

Decisions worth knowing:

- The title is the first non-empty line (a leading Markdown ``#`` is dropped for ``.md`` files); the body
  is everything after it. A file with a title but no body is rejected: it has nothing to answer from.
- Paragraphs are non-empty lines, whether the article separates them with blank lines or single newlines.
- Hidden files and folders (names starting with ".") are ignored; symlinks are followed only when they
  resolve inside the folder. FIFOs, devices and sockets are skipped (reading one could block forever), and
  so are file names that are not valid UTF-8 (they could not be stored in the index or shown).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.boilerplate import classify_paragraphs
from qa.config import Config
from qa.errors import IngestError
from qa.types import Document, Paragraph

logger = logging.getLogger(__name__)

ARTICLE_SUFFIXES = (".txt", ".md")
ID_KEYS = ("id", "_id", "pid")
TEXT_KEYS = ("text", "context")
_BINARY_SAMPLE = 8192
_MAX_CONTROL_RATIO = 0.05  # more control bytes than this (besides tab/newline/CR/FF) and it is not text

# Spaces that NFKC leaves alone or that we want as a plain space; zero-width and format characters
# (category Cf: BOM, zero-width space/joiners, soft hyphen, direction marks) are removed instead.
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except newline (tabs, nbsp, \u2000-\u200a, \u3000...)
_BLANK_RUNS = re.compile(r"\n{3,}")
_PARAGRAPH = re.compile(r"[^\n]+")


@dataclass(frozen=True)
class Skipped:
    """A source that was not indexed, and why (shown by `qa build`)."""

    path: str
    reason: str


@dataclass
class IngestResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class _Unreadable(Exception):
    """Internal: the reason a file cannot be ingested (turned into IngestError or a Skipped entry)."""


def normalise_text(raw: str) -> str:
    """Canonical text: NFKC, plain spaces, LF line ends, trimmed lines, at most one blank line in a row.

    Non-breaking and other odd spaces break tokenisers and exact matching; invisible characters (BOM,
    zero-width space, soft hyphen) would split words for the index without showing in the UI.
    """
    text = _LINE_BREAKS.sub("\n", raw)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not _invisible(ch))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def _invisible(ch: str) -> bool:
    """Format and control characters other than newline and tab, and lone surrogates (from JSON escapes
    such as "\\ud800": they cannot be written as UTF-8)."""
    if ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cf", "Cc", "Cs")


def make_document(
    doc_id: str, title: str, body: str, sha256: str, *, detect_boilerplate: bool = True
) -> Document:
    """A Document from an already split title and body; paragraphs are marked (or all kept for clean corpora)."""
    text = normalise_text(body)
    spans = [(m.start(), m.end()) for m in _PARAGRAPH.finditer(text)]
    if detect_boilerplate:
        labels = classify_paragraphs([text[a:b] for a, b in spans])
    else:
        labels = [(False, "")] * len(spans)
    paragraphs = tuple(Paragraph(a, b, bad, reason) for (a, b), (bad, reason) in zip(spans, labels, strict=True))
    title = " ".join(normalise_text(title).split())
    return Document(doc_id, title, text, sha256, paragraphs)


def read_article(path: Path, doc_id: str, config: Config) -> Document:
    """Read one article file. Raises IngestError naming the file and the reason (empty, binary, ...)."""
    try:
        return _read_article(Path(path), doc_id, config)
    except _Unreadable as exc:
        raise IngestError(f"Cannot ingest {path}: {exc}") from None


def _read_article(path: Path, doc_id: str, config: Config) -> Document:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("it is not a regular file (a FIFO, device or socket); only plain text files are read")
        size = info.st_size
        if size > config.max_file_bytes:
            raise _Unreadable(_too_large(size, config))
        with path.open("rb") as handle:
            raw = handle.read(config.max_file_bytes + 1)  # the file may have grown since stat()
        if len(raw) > config.max_file_bytes:
            raise _Unreadable(_too_large(len(raw), config))
    except OSError as exc:
        raise _Unreadable(f"cannot be read ({exc.strerror or exc}); check that it exists and is readable") from None
    text = _decode(raw)
    if path.suffix.lower() == ".md":
        text = re.sub(r"\A#+ *", "", text)
    title, _, body = text.partition("\n")
    if not body.strip():
        raise _Unreadable("it has a title line but no body text; put the article text below the title")
    doc = make_document(doc_id, title, body, hashlib.sha256(raw).hexdigest())
    if doc.paragraphs and not doc.content_paragraphs():
        logger.info("%s: every paragraph looks like site furniture; it will yield no passages", doc_id)
    return doc


def _too_large(size: int, config: Config) -> str:
    return (
        f"it is {size:,} bytes, larger than max_file_bytes ({config.max_file_bytes:,}); "
        "split the article or raise --max-file-bytes"
    )


def _decode(raw: bytes) -> str:
    """Raw bytes -> normalised text, or _Unreadable saying what is wrong and how to fix it."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _Unreadable("it is UTF-16 encoded; re-save it as UTF-8")
    if not raw.strip():
        raise _Unreadable("it is empty; add a title line and the article text")
    sample = raw[:_BINARY_SAMPLE]
    if b"\x00" in sample:
        raise _Unreadable("it looks binary (contains NUL bytes); only UTF-8 text articles can be indexed")
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13) or b == 127)
    if control > _MAX_CONTROL_RATIO * len(sample):
        raise _Unreadable(
            f"it looks binary ({control} control bytes in the first {len(sample)}); "
            "only UTF-8 text articles can be indexed"
        )
    try:
        decoded = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _Unreadable(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None
    text = normalise_text(decoded)
    if not text:
        raise _Unreadable("it is empty (only whitespace or invisible characters); add the article text")
    return text


def load_folder(folder: str | Path, config: Config) -> IngestResult:
    """Every ``*.txt``/``*.md`` under ``folder`` (recursively, sorted); doc_id is the POSIX relative path."""
    root = Path(folder)
    if not root.is_dir():
        raise IngestError(f"{root} is not a folder: pass the folder that holds the article files.")
    result = IngestResult()
    for doc_id, path, problem in _candidates(root):
        if problem:
            logger.warning("Skipping %s: %s", path, problem)
            result.skipped.append(Skipped(doc_id, problem))
            continue
        try:
            result.documents.append(_read_article(path, doc_id, config))
        except _Unreadable as exc:
            if config.strict:
                raise IngestError(f"Cannot ingest {path}: {exc}") from None
            logger.warning("Skipping %s: %s", path, exc)
            result.skipped.append(Skipped(doc_id, str(exc)))
    return result


def file_hashes(folder: str | Path, config: Config) -> dict[str, str]:
    """{doc_id: sha256 of the raw bytes} for the files load_folder would consider; cheap staleness check.

    Files that cannot be opened at all, and symlinks leading outside the folder, are left out.
    """
    root = Path(folder)
    if not root.is_dir():
        return {}
    hashes: dict[str, str] = {}
    for doc_id, path, problem in _candidates(root):
        if problem:
            continue
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # never open a FIFO: it would block
                continue
            hashes[doc_id] = _sha256_file(path)
        except OSError as exc:
            logger.debug("Cannot hash %s: %s", path, exc)
    return hashes


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _candidates(root: Path) -> Iterator[tuple[str, Path, str]]:
    """(doc_id, path, problem) for article files under root, sorted by doc_id; problem is "" if fine."""
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
            if name.startswith(".") or not name.lower().endswith(ARTICLE_SUFFIXES):
                continue
            problem = ""
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                problem = _printable(_outside(path, root))
            doc_id = _doc_id(path, root)
            if not _valid_utf8(doc_id):
                doc_id = _printable(doc_id)
                problem = "its name is not valid UTF-8; rename the file (e.g. with `convmv`) and build again"
            found.append((doc_id, path, problem))
    yield from sorted(found, key=lambda item: item[0])


def _doc_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _valid_utf8(name: str) -> bool:
    """False for names that Python decoded with surrogate escapes (bytes that are not UTF-8)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    """A name with undecodable bytes shown as U+FFFD, safe to print and to store as JSON."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _outside(path: Path, root: Path) -> str:
    return f"symlink to {path.resolve()}, outside {root}; not followed (copy the file in instead)"


def load_jsonl(path: str | Path, config: Config) -> IngestResult:
    """One record per line: id from id/_id/pid, optional title, text from text/context.

    External corpora (SQuAD paragraphs, SciFact abstracts) are clean, so every paragraph is content.
    A bad line is skipped with a reason naming the file and line (or raises with ``config.strict``).
    """
    path = Path(path)
    result = IngestResult()
    seen: dict[str, int] = {}
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise IngestError(f"Cannot read {path} ({exc.strerror or exc}); check the path and permissions.") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = _record(line, number, config)
                if doc.doc_id in seen:
                    raise _Unreadable(f"duplicate id {doc.doc_id!r} (first on line {seen[doc.doc_id]}); "
                                      "ids must be unique")
                seen[doc.doc_id] = number
                result.documents.append(doc)
            except _Unreadable as exc:
                message = f"{path}, line {number}: {exc}"
                if config.strict:
                    raise IngestError(message) from None
                logger.warning("Skipping %s", message)
                result.skipped.append(Skipped(f"{path.name}:{number}", str(exc)))
    return result


def _record(line: bytes, number: int, config: Config) -> Document:
    try:
        record = json.loads(line.decode("utf-8-sig" if number == 1 else "utf-8"))
    except UnicodeDecodeError as exc:
        raise _Unreadable(f"not valid UTF-8 (byte 0x{line[exc.start]:02x}); re-save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise _Unreadable(f"not valid JSON ({exc.msg} at column {exc.colno}); fix or delete the line") from None
    if not isinstance(record, dict):
        raise _Unreadable(f"expected a JSON object, got {type(record).__name__}")
    doc_id = _first(record, ID_KEYS)
    text = _first(record, TEXT_KEYS)
    if doc_id is None:
        raise _Unreadable("no 'id', '_id' or 'pid' field; give every record an id")
    if not _valid_utf8(str(doc_id)):
        raise _Unreadable("the id holds a lone surrogate escape (e.g. \\ud800); give the record a valid id")
    if not isinstance(text, str) or not text.strip():
        raise _Unreadable("no text: put the passage in a non-empty 'text' (or 'context') string")
    if len(text.encode("utf-8", "surrogatepass")) > config.max_file_bytes:
        raise _Unreadable(f"text is larger than max_file_bytes ({config.max_file_bytes:,}); split the record")
    title = record.get("title") or ""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    sha = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()  # "\ud800" escapes
    return make_document(str(doc_id), str(title), text, sha, detect_boilerplate=False)


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((record[k] for k in keys if record.get(k) is not None), None)


def load_corpus(path: str | Path, config: Config) -> IngestResult:
    """A folder of articles or a ``.jsonl`` corpus."""
    path = Path(path)
    if path.is_dir():
        return load_folder(path, config)
    if path.is_file() and path.suffix.lower() == ".jsonl":
        return load_jsonl(path, config)
    if not path.exists():
        raise IngestError(f"{path} does not exist: pass a folder of .txt/.md articles or a .jsonl corpus.")
    raise IngestError(
        f"{path} is neither a folder nor a .jsonl file: pass the folder that holds the articles "
        '(.txt/.md, title on the first line) or a JSONL corpus ({"id": ..., "title": ..., "text": ...} per line).'
    )
