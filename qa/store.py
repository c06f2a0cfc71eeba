"""The on-disk index: a directory of plain files with a checked manifest, saved atomically.

Layout::

    index_dir/
      CURRENT                  one line: the name of the live version directory
      v-<UTC time>-<random>/   one complete, immutable index version
        manifest.json          format, model, dimension, settings, file hashes, readers, counts, checksums
        vectors.faiss          faiss index over L2-normalised float32 vectors (inner product = cosine): exact
                               IndexFlatIP, or HNSW above qa.ann.FLAT_MAX_PASSAGES (Config.index_type)
        vectors.npy            the same vectors, raw, reused by incremental builds (memory-mapped on load)
        passages.jsonl         one Passage per line, in vector row order
        passages.offsets.npy   int64 byte offset of every line of passages.jsonl, and its size (n + 1 values)
        passages.docs.npy      int64 per passage: the line of its document in documents.jsonl
        documents.jsonl        one Document per line, paragraphs included (the UI shows whole articles), in
                               the order of the manifest's ``files``
        documents.offsets.npy  int64 byte offset of every line of documents.jsonl, and its size
        bm25/                  LexicalIndex.save (bm25s JSON + .npy), memory-mapped on load and searched
                               without importing bm25s (qa.lexical.Postings)
        encoder/model.onnx     the query encoder: the embedding model exported to ONNX (fp32) at build time,
        encoder/tokenizer.json with its tokenizer; described by the manifest's ``query_encoder`` and
                               checksummed like every file, so an index holds everything a question needs
                               and questions never load torch (qa.embed.load_query_encoder)

      build.lock               held (fcntl.flock) by the one build that may write here

Format version 3 (this one) reads passages and documents lazily: ``IndexStore.passages`` and
``IndexStore.documents`` are a :class:`PassageTable` and a :class:`DocumentTable` that memory-map the JSONL
files and parse one line when a row is asked for, so a loaded index holds no passage or article text in
memory beyond the rows in use (the load still reads every line once, to cross-check offsets and texts).
Older versions (1: everything read into memory; 2: no pages) are refused with IndexMismatchError; `qa build`
rebuilds them. The manifest's ``extractors`` names the reader of each file format indexed ("pypdf 7.1.1"), so an
index whose files were read by other readers is reported stale (qa.build.index_status).
An index saved without a query encoder (only a direct ``save_index`` call can do that) still loads, but asking
it a question without an encoder passed to the Retriever raises IndexMismatchError saying to run `qa build`,
which adds the encoder and re-embeds nothing.

A save writes a hidden ``.tmp-*`` directory, fsyncs it, renames it to ``v-*`` and only then swaps
``CURRENT`` with ``os.replace``: a crash at any point leaves the previous version live, and the next build
removes what the crash left behind. Nothing is pickled.

Promises, each proven by fault injection in tests/test_faults.py and tests/test_concurrency.py:

- a build killed at any moment leaves the complete old or the complete new index (never half of one);
- a write error (full disk, read-only directory) raises :class:`IndexWriteError` and changes nothing;
- a second build into the same directory raises :class:`IndexLockedError` instead of deleting the first
  one's temporary files;
- every file is checksummed and cross-checked at load, so a damaged index raises IndexCorruptError (or
  IndexMismatchError for another model, dimension or format) saying what is wrong and to run `qa build`;
- a reader that loads while a build swaps versions gets one whole version (it retries if its version was
  pruned under it).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import mmap as _mmap
import operator
import os
import secrets
import shutil
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; builds there are not serialised
    fcntl = None  # type: ignore[assignment]

from qa import ann
from qa.config import MODEL_NAME, MODEL_PACKAGE, Config
from qa.embed import (
    KNOWN_DIMENSIONS,
    Encoder,
    QueryEncoderExport,
    QueryEncoderSpec,
    load_query_encoder,
    model_package_version,
)
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, QAError
from qa.lexical import LexicalIndex
from qa.types import Document, Paragraph, Passage

logger = logging.getLogger(__name__)

# 1: passages/documents read whole into memory; 2: + offset tables, read lazily by row; 3: + pages of passages
# and documents (PDF), document author/date, the manifest's "extractors"
FORMAT_VERSION = 3
INDEX_TYPE = "flat-ip"
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS_FAISS = "vectors.faiss"
VECTORS_NPY = "vectors.npy"
PASSAGES = "passages.jsonl"
PASSAGE_OFFSETS = "passages.offsets.npy"
PASSAGE_DOCS = "passages.docs.npy"
DOCUMENTS = "documents.jsonl"
DOCUMENT_OFFSETS = "documents.offsets.npy"
BM25_DIR = "bm25"
ENCODER_MODEL = "encoder/model.onnx"
ENCODER_TOKENIZER = "encoder/tokenizer.json"
QUERY_ENCODER = "query_encoder"  # manifest key: the QueryEncoderSpec and the files above
TMP_PREFIX = ".tmp-"
VERSION_PREFIX = "v-"
LOCK = "build.lock"
LOAD_ATTEMPTS = 3  # a load retries when a concurrent build made another version live while it read


class IndexLockedError(QAError):
    """Another build is writing to the same index directory: wait for it to finish, then build again."""


class IndexWriteError(QAError):
    """The index cannot be written (disk full, read-only, no permission); the live index is unchanged."""


class _JsonlRows:
    """Line ``i`` of a JSONL file, parsed on demand through a memory map and a table of line offsets."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        size = path.stat().st_size
        if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1:
            raise ValueError(f"its offset table has shape {offsets.shape} and type {offsets.dtype}, "
                             "expected one int64 per line and one more")
        if int(offsets[0]) != 0 or int(offsets[-1]) != size or (len(offsets) > 1 and not (np.diff(offsets) > 0).all()):
            raise ValueError(f"its offset table does not match the file ({size} bytes, {len(offsets) - 1} lines)")
        self.path = path
        self._offsets = offsets
        self._data: Any = b""
        if size:
            with open(path, "rb") as f:
                self._data = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
            ends = np.frombuffer(self._data, dtype=np.uint8)[np.asarray(offsets[1:]) - 1]
            if not (ends == ord("\n")).all():
                raise ValueError("its offset table does not match the file (a row does not end a line)")

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def record(self, row: int) -> Any:
        """The JSON value on line ``row`` (ValueError when the line is not JSON)."""
        return json.loads(self._data[int(self._offsets[row]) : int(self._offsets[row + 1])])


def _row(index: Any, n: int) -> int:
    row = operator.index(index)
    if row < 0:
        row += n
    if not 0 <= row < n:
        raise IndexError(f"row {index} is out of range for {n} rows")
    return row


class PassageTable(Sequence[Passage]):
    """The passages of an index version, read from ``passages.jsonl`` one row at a time (not held in memory).

    Behaves like the list it replaces: ``len``, indexing (negative and slices too), iteration, ``==`` with a
    list. While a Passage is in use elsewhere (a Hit, an answer's source), asking for its row again returns
    the same object, so identity checks across one index version keep working; rows nobody holds are freed.
    """

    def __init__(self, rows: _JsonlRows, doc_rows: np.ndarray, n_documents: int) -> None:
        self._rows = rows
        self.doc_rows = doc_rows  # line in documents.jsonl of each passage's document
        self._n_documents = n_documents
        self._cache: weakref.WeakValueDictionary[int, Passage] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        self._groups: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = _row(index, len(self))
        with self._lock:
            passage = self._cache.get(row)
        if passage is None:
            passage = self.read(row)
            with self._lock:
                passage = self._cache.setdefault(row, passage)
        return passage

    def read(self, row: int) -> Passage:
        """Parse row ``row`` afresh (no cache); raises IndexCorruptError when the line is damaged."""
        try:
            return _passage(self._rows.record(row))
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"{self._rows.path} row {row} cannot be read ({exc}): run `qa build` to "
                                    "repair the index.") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PassageTable({self._rows.path}, {len(self)} passages)"

    def rows_of_document(self, doc_row: int) -> list[int]:
        """Passage rows (ascending) of the document on line ``doc_row`` of documents.jsonl."""
        groups = self._groups
        if groups is None:  # built aside and published in one assignment: safe to share between threads
            order = np.argsort(self.doc_rows, kind="stable")
            bounds = np.searchsorted(self.doc_rows[order], np.arange(self._n_documents + 1))
            groups = self._groups = (order, bounds)
        order, bounds = groups
        return [int(r) for r in order[bounds[doc_row] : bounds[doc_row + 1]]]


class DocumentTable(Mapping[str, Document]):
    """The articles of an index version by doc_id, read from ``documents.jsonl`` when asked for.

    Only the ids (from the manifest's ``files``, in line order) are held in memory.
    """

    def __init__(self, rows: _JsonlRows, doc_ids: list[str]) -> None:
        if len(doc_ids) != len(rows):
            raise ValueError(f"the manifest lists {len(doc_ids)} articles for {len(rows)} lines")
        self._rows = rows
        self._ids = doc_ids
        self._position = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        if len(self._position) != len(doc_ids):
            raise ValueError("the manifest repeats an article id")

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._position

    def __getitem__(self, doc_id: str) -> Document:
        return self.at(self._position[doc_id])

    def position(self, doc_id: str) -> int | None:
        """The line of ``doc_id`` in documents.jsonl (None when it is not in the index)."""
        return self._position.get(doc_id)

    def at(self, row: int) -> Document:
        try:
            return _document(self._rows.record(row))
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"{self._rows.path} row {row} cannot be read ({exc}): run `qa build` to "
                                    "repair the index.") from exc

    def __repr__(self) -> str:
        return f"DocumentTable({self._rows.path}, {len(self)} documents)"


@dataclass
class IndexStore:
    """One loaded index version. Row i of ``vectors``/``faiss_index``/``lexical`` is ``passages[i]``.

    A loaded index has a :class:`PassageTable` and a :class:`DocumentTable` (read by row from disk); a
    store built in memory (benchmarks, tests) may hold a plain list and dict instead.
    """

    path: Path  # the version directory
    version: str
    manifest: dict[str, Any]
    passages: Sequence[Passage]
    documents: Mapping[str, Document]
    faiss_index: faiss.Index
    vectors: np.ndarray
    lexical: LexicalIndex
    _rows_by_doc: dict[str, list[int]] | None = field(default=None, repr=False)

    def dense_search(self, query_vecs: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (row, cosine) per query vector; queries must be L2-normalised like the passages."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        queries = np.ascontiguousarray(np.atleast_2d(query_vecs), dtype=np.float32)
        if queries.shape[1] != self.faiss_index.d:
            raise ValueError(
                f"Query vectors have dimension {queries.shape[1]}, the index has {self.faiss_index.d}: "
                f"encode queries with {self.manifest['model_name']}."
            )
        k = min(k, self.faiss_index.ntotal)
        if k == 0:
            return [[] for _ in range(len(queries))]
        scores, rows = self.faiss_index.search(queries, k)
        return [
            [(int(r), float(s)) for r, s in zip(row, score, strict=True) if r >= 0]
            for row, score in zip(rows, scores, strict=True)
        ]

    def query_encoder(self, config: Config) -> Encoder:
        """The query encoder stored in this index version (loaded once per process and file content).

        Raises IndexMismatchError when the index has none (built before qa stored one) or one of another
        model than ``config.model_name``; the message says to run `qa build`.
        """
        problems = query_encoder_problems(self.manifest, config)
        if problems:
            index_dir = self.path.parent
            raise IndexMismatchError(
                f"Index at {index_dir}: {'; '.join(problems)}. Run `qa build --seeds DIR --index {index_dir}` "
                "to store it (the vectors are reused: nothing is embedded again)."
            )
        spec = QueryEncoderSpec.from_dict(self.manifest[QUERY_ENCODER])
        checksums = self.manifest["checksums"]
        return load_query_encoder(self.path / ENCODER_MODEL, self.path / ENCODER_TOKENIZER, spec,
                                  checksums[ENCODER_MODEL], checksums[ENCODER_TOKENIZER])

    def rows_of(self, doc_id: str) -> list[int]:
        """Vector/passage rows of one document (in passage order)."""
        if isinstance(self.passages, PassageTable) and isinstance(self.documents, DocumentTable):
            doc_row = self.documents.position(doc_id)
            return [] if doc_row is None else self.passages.rows_of_document(doc_row)
        rows_by_doc = self._rows_by_doc
        if rows_by_doc is None:
            # Built aside and published in one assignment: threads sharing this store never see half of it.
            rows_by_doc = {}
            for i, p in enumerate(self.passages):
                rows_by_doc.setdefault(p.doc_id, []).append(i)
            self._rows_by_doc = rows_by_doc
        return rows_by_doc.get(doc_id, [])


# ---------------------------------------------------------------------------------------------- saving


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
        raise _write_error(index_dir, exc) from exc
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
def _holding(index_dir: Path, lock: IndexLock | None) -> Iterator[None]:
    """The caller's lock when it passed one (checked), else a lock taken for the block."""
    if lock is None:
        with index_lock(index_dir):
            yield
        return
    if lock.index_dir.resolve() != index_dir.resolve():
        raise ValueError(f"The lock is for {lock.index_dir}, not {index_dir}: pass the lock of the index written.")
    yield


def save_index(
    index_dir: str | Path,
    *,
    documents: list[Document],
    passages: list[Passage],
    vectors: np.ndarray,
    lexical: LexicalIndex,
    config: Config,
    build_seconds: float = 0.0,
    skipped_files: dict[str, str] | None = None,
    lock: IndexLock | None = None,
    extractors: dict[str, str] | None = None,
    query_encoder: QueryEncoderExport | None = None,
) -> str:
    """Write a new index version and make it live; returns its name. Keeps the previous version.

    ``skipped_files`` ({path: sha256}) records source files that were seen but not indexed, so a later
    status check does not take them for new files. ``extractors`` ({format: "library version"}) records what
    read the documents (qa.ingest.IngestResult.extractors). ``lock`` is the caller's :func:`index_lock` (a build
    holds it from start to end); without one the save takes the lock itself.
    status check does not take them for new files. ``lock`` is the caller's :func:`index_lock` (a build
    holds it from start to end); without one the save takes the lock itself. ``query_encoder`` (from
    ``qa.embed.export_query_encoder``; `qa build` always passes one) is stored in ``encoder/``: without it
    the index answers questions only with an encoder passed to the Retriever.

    Raises ValueError for inconsistent contents, IndexLockedError when another build holds the lock and
    IndexWriteError when a file cannot be written; on any error the previous version stays live.
    """
    index_dir = Path(index_dir)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    _check_contents(documents, passages, vectors, lexical)
    with _holding(index_dir, lock):
        try:
            previous = _read_current(index_dir)
        except IndexCorruptError:  # a damaged CURRENT must not stop the build that repairs it
            previous = None
        tmp = index_dir / f"{TMP_PREFIX}{secrets.token_hex(4)}"
        version = f"{VERSION_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"
        final = index_dir / version
        try:
            tmp.mkdir()
            _write_version(tmp, documents, passages, vectors, lexical, config, build_seconds, skipped_files,
                           previous, extractors, query_encoder)
            os.rename(tmp, final)
            _fsync_dir(index_dir)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            if isinstance(exc, OSError):
                raise _write_error(index_dir, exc) from exc
            raise
        try:
            _write_current(index_dir, version)
        except BaseException as exc:
            live = _current_or_none(index_dir)
            if live != version:  # the swap did not happen: the new version would be an orphan
                shutil.rmtree(final, ignore_errors=True)
            _best_effort_unlink(index_dir / f"{CURRENT}.tmp")
            if isinstance(exc, OSError):
                raise _write_error(index_dir, exc, unchanged=live != version) from exc
            raise
        logger.info("Saved index version %s (%d passages) in %s", version, len(passages), index_dir)
        _prune(index_dir, keep={version, previous})
    return version


def clean_stale(index_dir: str | Path) -> None:
    """Remove what interrupted saves left: ``.tmp-*`` directories, ``CURRENT.tmp``, and versions that never
    went live (neither the live one nor the previous one it records). Best effort: errors are logged.

    Call it only while holding :func:`index_lock`: a running save's ``.tmp-*`` directory looks the same.
    """
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        return
    try:
        entries = list(index_dir.iterdir())
    except OSError as exc:
        logger.warning("Cannot list %s to clean it: %s", index_dir, exc)
        return
    for entry in entries:
        if entry.name.startswith(TMP_PREFIX) and entry.is_dir():
            logger.info("Removing leftover of an interrupted save: %s", entry)
            shutil.rmtree(entry, ignore_errors=True)
    _best_effort_unlink(index_dir / f"{CURRENT}.tmp")
    live = _current_or_none(index_dir)
    if live is None or not (index_dir / live / MANIFEST).is_file():
        return  # without a readable live version, keep every version: someone may repair it by hand
    try:
        previous = json.loads((index_dir / live / MANIFEST).read_text(encoding="utf-8")).get("previous_version")
    except (OSError, ValueError, AttributeError):
        return
    for entry in entries:
        if entry.name.startswith(VERSION_PREFIX) and entry.name not in (live, previous) and entry.is_dir():
            logger.info("Removing index version %s: an interrupted save left it, it never went live", entry.name)
            shutil.rmtree(entry, ignore_errors=True)


def _best_effort_unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        logger.warning("Cannot remove %s: %s", path, exc)


_WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full (no space left on device)", "free some disk space"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some disk space"),
    errno.EROFS: ("the file system is read-only", "mount it read-write"),
    errno.EACCES: ("permission denied", "make the directory writable for this user"),
    errno.EPERM: ("the operation is not permitted", "make the directory writable for this user"),
}


def _write_error(index_dir: Path, exc: OSError, unchanged: bool = True) -> IndexWriteError:
    """An IndexWriteError saying what failed (disk full, read-only, ...) and what to do about it."""
    what, fix = _WRITE_ERRORS.get(exc.errno, (exc.strerror or str(exc), "check the disk and the directory"))
    where = f" (writing {exc.filename})" if exc.filename else ""
    state = (
        "The live index was not changed. " if unchanged
        else "The new version is live but may not be flushed to disk. "
    )
    return IndexWriteError(
        f"Cannot write the index in {index_dir}: {what}{where}. {state}"
        f"To fix it, {fix} or pass another --index directory, then run `qa build` again."
    )


def _check_contents(
    documents: list[Document], passages: list[Passage], vectors: np.ndarray, lexical: LexicalIndex
) -> None:
    if vectors.ndim != 2 or vectors.shape[0] != len(passages):
        raise ValueError(f"Got vectors of shape {vectors.shape} for {len(passages)} passages: one row each.")
    if len(lexical) != len(passages):
        raise ValueError(f"The BM25 index has {len(lexical)} rows for {len(passages)} passages.")
    if len(vectors) and not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
        raise ValueError("Vectors must be L2-normalised (the index compares them by inner product).")
    known = {d.doc_id for d in documents}
    orphans = {p.doc_id for p in passages} - known
    if orphans:
        raise ValueError(f"Passages refer to documents that are not saved: {sorted(orphans)[:5]}")


def _write_version(
    directory: Path,
    documents: list[Document],
    passages: list[Passage],
    vectors: np.ndarray,
    lexical: LexicalIndex,
    config: Config,
    build_seconds: float,
    skipped_files: dict[str, str] | None,
    previous: str | None = None,
    extractors: dict[str, str] | None = None,
    query_encoder: QueryEncoderExport | None = None,
) -> None:
    dimension = int(vectors.shape[1])
    if query_encoder is not None:
        if query_encoder.spec.model_name != config.model_name or query_encoder.spec.dimension != dimension:
            raise ValueError(f"The query encoder is {query_encoder.spec.model_name!r} of dimension "
                             f"{query_encoder.spec.dimension}, the index {config.model_name!r} of {dimension}.")
        (directory / ENCODER_MODEL).parent.mkdir()
        _link_or_copy(query_encoder.model, directory / ENCODER_MODEL)
        _link_or_copy(query_encoder.tokenizer, directory / ENCODER_TOKENIZER)
    # qa.ann picks the kind (exact flat for small corpora, HNSW above a threshold) unless config.index_type says.
    flat = ann.make_index(vectors, config.index_type)  # type: ignore[arg-type]
    described = ann.describe(flat)
    # Serialised here and written by Python, so a full disk raises OSError (faiss's own writer raises a
    # RuntimeError that does not say why).
    _write_bytes(directory / VECTORS_FAISS, faiss.serialize_index(flat).tobytes())
    with open(directory / VECTORS_NPY, "wb") as f:
        np.save(f, vectors, allow_pickle=False)
    doc_row = {d.doc_id: i for i, d in enumerate(documents)}
    tables = {
        PASSAGE_OFFSETS: _write_jsonl(directory / PASSAGES, (asdict(p) for p in passages)),
        PASSAGE_DOCS: np.fromiter((doc_row[p.doc_id] for p in passages), dtype=np.int64, count=len(passages)),
        DOCUMENT_OFFSETS: _write_jsonl(directory / DOCUMENTS, (asdict(d) for d in documents)),
    }
    for name, table in tables.items():
        with open(directory / name, "wb") as f:
            np.save(f, table, allow_pickle=False)
    lexical.save(directory / BM25_DIR)
    _fsync_tree(directory)
    packaged = config.model_name == MODEL_NAME
    manifest = {
        "format_version": FORMAT_VERSION,
        "model_name": config.model_name,
        "model_package": MODEL_PACKAGE if packaged else None,
        "model_package_version": model_package_version() if packaged else None,
        "dimension": dimension,
        "normalised": True,
        "index_type": described["index_type"],
        "index_params": described["params"],  # query-time ones (efSearch, nprobe) are re-applied on load
        "settings": config.index_settings(),
        "files": {d.doc_id: d.sha256 for d in documents},
        "skipped_files": dict(skipped_files or {}),
        "extractors": dict(sorted((extractors or {}).items())),
        "counts": {"documents": len(documents), "passages": len(passages)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(build_seconds, 3),
        "previous_version": previous,  # kept beside this one (for readers still on it); others are pruned
        "checksums": {name: _sha256(directory / name) for name in _relative_files(directory)},
    }
    if query_encoder is not None:
        manifest[QUERY_ENCODER] = {**query_encoder.spec.to_dict(),
                                   "files": {"model": ENCODER_MODEL, "tokenizer": ENCODER_TOKENIZER}}
    _write_bytes(directory / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    _fsync_dir(directory)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link when possible: every build of a model stores the same ~90 MB export, and linked versions
    (and the export cache) share it on disk. Neither side is ever written in place, only replaced."""
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed: a copy
        shutil.copyfile(source, target)


def _write_current(index_dir: Path, version: str) -> None:
    """Point CURRENT at ``version`` atomically: readers see the old or the new name, never half of one."""
    tmp = index_dir / f"{CURRENT}.tmp"
    _write_bytes(tmp, (version + "\n").encode("utf-8"))
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def _prune(index_dir: Path, keep: set[str | None]) -> None:
    """Delete versions other than the live and previous one, and leftovers of interrupted saves.

    Best effort: the new version is already live, so a failure here only leaves garbage for the next build.
    """
    try:
        entries = list(index_dir.iterdir())
    except OSError as exc:
        logger.warning("Cannot list %s to remove old versions: %s", index_dir, exc)
        return
    for entry in entries:
        if entry.is_dir() and entry.name.startswith(VERSION_PREFIX) and entry.name not in keep:
            logger.info("Removing old index version %s", entry.name)
            shutil.rmtree(entry, ignore_errors=True)
    clean_stale(index_dir)


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> np.ndarray:
    """Write one JSON record per line (UTF-8); returns the byte offset of every line and the file size."""
    offsets = [0]
    with open(path, "wb") as f:
        for record in records:
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            f.write(line)
            offsets.append(offsets[-1] + len(line))
    return np.array(offsets, dtype=np.int64)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_tree(directory: Path) -> None:
    for name in _relative_files(directory):
        with open(directory / name, "rb") as f:
            os.fsync(f.fileno())
    for sub in [p for p in directory.rglob("*") if p.is_dir()] + [directory]:
        _fsync_dir(sub)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _relative_files(directory: Path) -> list[str]:
    return sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------- loading


def read_manifest(index_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """The live version directory and its manifest, without reading anything else (cheap).

    Raises IndexNotFoundError when there is no index, IndexCorruptError when CURRENT or the manifest is bad.
    """
    index_dir = Path(index_dir)
    version = _read_current(index_dir)
    if version is None:
        raise IndexNotFoundError(f"No index at {index_dir}: run `qa build --seeds DIR --index {index_dir}`.")
    return index_dir / version, _read_manifest_file(index_dir, index_dir / version)


def _read_manifest_file(index_dir: Path, version_dir: Path) -> dict[str, Any]:
    manifest_path = version_dir / MANIFEST
    if not manifest_path.is_file():
        raise IndexCorruptError(
            f"Index at {index_dir} is damaged: {CURRENT} names {version_dir.name!r} but {manifest_path} is "
            "missing; run `qa build` to repair it."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(
            f"Index at {index_dir} is damaged: {manifest_path} is not valid JSON ({exc}); "
            "run `qa build` to repair it."
        ) from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"{manifest_path} does not hold a JSON object: run `qa build` to repair it.")
    return manifest


def manifest_problems(
    manifest: dict[str, Any], config: Config, expected_dimension: int | None = None
) -> list[str]:
    """How the stored index differs from what ``config`` asks for ([] when it matches).

    Never raises, even on a damaged manifest (``manifest_shape_problems`` reports those).
    """
    problems = []
    if manifest.get("format_version") != FORMAT_VERSION:
        problems.append(
            f"index format version {manifest.get('format_version')!r}, this qa reads version {FORMAT_VERSION}"
        )
        return problems  # other fields may mean something else in another format
    if manifest.get("model_name") != config.model_name:
        problems.append(f"model {manifest.get('model_name')!r}, the configuration asks for {config.model_name!r}")
    expected_dimension = expected_dimension or KNOWN_DIMENSIONS.get(config.model_name)
    if expected_dimension is not None and manifest.get("dimension") != expected_dimension:
        problems.append(
            f"vector dimension {manifest.get('dimension')!r}, {config.model_name} produces {expected_dimension}"
        )
    if manifest.get("index_type") not in ann.INDEX_TYPES or manifest.get("normalised") is not True:
        problems.append(
            f"index type {manifest.get('index_type')!r} (normalised={manifest.get('normalised')!r}), "
            f"expected one of {ann.INDEX_TYPES} over normalised vectors"
        )
    stored = manifest.get("settings")
    stored = stored if isinstance(stored, dict) else {}
    wanted = config.index_settings()
    for key in sorted(set(stored) | set(wanted), key=str):
        if key != "model_name" and stored.get(key) != wanted.get(key):
            problems.append(f"{key}={stored.get(key)!r}, the configuration has {key}={wanted.get(key)!r}")
    return problems


def query_encoder_problems(manifest: dict[str, Any], config: Config) -> list[str]:
    """Why the index's stored query encoder cannot answer questions for ``config`` ([] when it can)."""
    if QUERY_ENCODER not in manifest:
        return ["it has no query encoder (it was built before qa stored one in the index)"]
    try:
        spec = QueryEncoderSpec.from_dict(manifest[QUERY_ENCODER])
    except (ValueError, TypeError) as exc:
        return [f"its query encoder record is damaged ({exc})"]
    if spec.model_name != config.model_name:
        return [f"its query encoder is {spec.model_name!r}, the configuration asks for {config.model_name!r}"]
    checksums = manifest.get("checksums")
    missing = [n for n in (ENCODER_MODEL, ENCODER_TOKENIZER) if not isinstance(checksums, dict) or n not in checksums]
    if missing:
        return [f"its query encoder files {missing} are not listed in the manifest"]
    return []


_MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "model_name": str,
    "dimension": int,
    "normalised": bool,
    "index_type": str,
    "settings": dict,
    "files": dict,
    "counts": dict,
    "checksums": dict,
}


def manifest_shape_problems(manifest: dict[str, Any]) -> list[str]:
    """Fields of a current-format manifest that are missing or of the wrong type (a damaged manifest)."""
    problems = []
    for key, kind in _MANIFEST_FIELDS.items():
        value = manifest.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{MANIFEST} field {key!r} is {value!r}, expected a {kind.__name__}")  # type: ignore[union-attr]
    counts = manifest.get("counts")
    if isinstance(counts, dict):
        for key in ("documents", "passages"):
            if not isinstance(counts.get(key), int) or isinstance(counts.get(key), bool) or counts[key] < 0:
                problems.append(f"{MANIFEST} counts[{key!r}] is {counts.get(key)!r}, expected a count")
    for key in ("files", "skipped_files"):
        value = manifest.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append(f"{MANIFEST} field {key!r} is not a mapping of file names to hashes")
    value = manifest.get("extractors", {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problems.append(f"{MANIFEST} field 'extractors' is not a mapping of formats to readers")
    if QUERY_ENCODER in manifest:
        try:
            QueryEncoderSpec.from_dict(manifest[QUERY_ENCODER])
        except (ValueError, TypeError) as exc:
            problems.append(f"{MANIFEST} field {QUERY_ENCODER!r} is damaged ({exc})")
    checksums = manifest.get("checksums")
    if isinstance(checksums, dict):
        if not checksums:
            problems.append(f"{MANIFEST} lists no checksums")
        for name, digest in checksums.items():
            if not _safe_relative(name) or not (isinstance(digest, str) and len(digest) == 64):
                problems.append(f"{MANIFEST} has a bad checksum entry {name!r}: {digest!r}")
    return problems


def _safe_relative(name: object) -> bool:
    """A plain relative path inside the version directory (the manifest must not point elsewhere)."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def file_problems(version_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Missing, truncated or altered files (checksum mismatch) in a version directory."""
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        return [f"{version_dir / MANIFEST} has no checksums"]
    problems = []
    required = [VECTORS_FAISS, VECTORS_NPY, PASSAGES, PASSAGE_OFFSETS, PASSAGE_DOCS, DOCUMENTS, DOCUMENT_OFFSETS]
    if QUERY_ENCODER in manifest:
        required += [ENCODER_MODEL, ENCODER_TOKENIZER]
    for name in required:
        if name not in checksums:
            problems.append(f"{name} is not listed in the manifest")
    for name, expected in sorted(checksums.items()):
        if not _safe_relative(name):
            problems.append(f"the manifest lists {name!r}, which is not a file of the index")
            continue
        path = version_dir / name
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        try:
            actual = _sha256(path)
        except OSError as exc:
            problems.append(f"{path} cannot be read ({exc.strerror or exc})")
            continue
        if actual != expected:
            problems.append(f"{path} does not match its checksum (truncated or edited)")
    return problems


def _unlisted_files(version_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Files in the version directory that the manifest does not list (added or renamed by hand)."""
    checksums = manifest.get("checksums")
    listed = set(checksums) if isinstance(checksums, dict) else set()
    try:
        return [f"{version_dir / name} is not listed in the manifest (added by hand?)"
                for name in _relative_files(version_dir) if name not in listed]
    except OSError:
        return []


def load_index(
    index_dir: str | Path, config: Config, *, expected_dimension: int | None = None, mmap: bool = True
) -> IndexStore:
    """Load and check the live index version.

    Passages and articles are read by row from disk (:class:`PassageTable`, :class:`DocumentTable`) and the
    BM25 arrays are memory-mapped. ``mmap`` memory-maps ``vectors.npy`` too (the default: the FAISS index
    holds its own copy for search; the raw vectors are only read by incremental builds and checks).

    Raises IndexNotFoundError (no index), IndexMismatchError (built with another format version, model,
    dimension or settings) or IndexCorruptError (file missing, altered or inconsistent); each message says
    to run `qa build`. When a concurrent build makes another version live (and prunes this one) while it is
    being read, the load starts again on the new version.
    """
    index_dir = Path(index_dir)
    for attempt in range(1, LOAD_ATTEMPTS + 1):
        version = _read_current(index_dir)
        if version is None:
            raise IndexNotFoundError(f"No index at {index_dir}: run `qa build --seeds DIR --index {index_dir}`.")
        try:
            return _load_version(index_dir, index_dir / version, config, expected_dimension, mmap)
        except IndexCorruptError:
            if attempt == LOAD_ATTEMPTS or _current_or_none(index_dir) in (version, None):
                raise  # the version did not change under us: it is really damaged
            logger.info("Index %s: %s was replaced while loading; loading the new version", index_dir, version)
    raise AssertionError("unreachable")  # pragma: no cover


def _load_version(
    index_dir: Path, version_dir: Path, config: Config, expected_dimension: int | None, mmap: bool
) -> IndexStore:
    manifest = _read_manifest_file(index_dir, version_dir)
    _raise_for_manifest(index_dir, manifest, config, expected_dimension)
    _warn_package_version(manifest)
    problems = file_problems(version_dir, manifest)
    if problems:
        raise _corrupt(index_dir, problems)
    store = _read_version(index_dir, version_dir, manifest, mmap)
    problems = _consistency_problems(store)
    if problems:
        raise _corrupt(index_dir, problems)
    logger.info("Loaded index %s: %d passages", version_dir, len(store.passages))
    return store


def _raise_for_manifest(
    index_dir: Path, manifest: dict[str, Any], config: Config, expected_dimension: int | None
) -> None:
    if manifest.get("format_version") == FORMAT_VERSION:
        problems = manifest_shape_problems(manifest)
        if problems:
            raise _corrupt(index_dir, problems)
    problems = manifest_problems(manifest, config, expected_dimension)
    if problems:
        raise IndexMismatchError(
            f"Index at {index_dir} was built with {'; '.join(problems)}. "
            f"Run `qa build --seeds DIR --index {index_dir}` to rebuild it with the current settings."
        )


@dataclass
class IndexCheck:
    """What `qa check` found: the live version, what it holds, the files checked, and every problem."""

    index_dir: Path
    version: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    files_checked: list[str] = field(default_factory=list)  # relative to the version directory
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """What `qa check` prints: version, model, counts, files checked, then each problem and the fix."""
        m = self.manifest
        out = [f"index: {self.index_dir}"]
        if self.version:
            out.append(f"version: {self.version} (created {m.get('created', '?')}, "
                       f"built in {m.get('build_seconds', '?')} s, format {m.get('format_version', '?')})")
            package = f" ({m['model_package']} {m.get('model_package_version')})" if m.get("model_package") else ""
            out.append(f"model: {m.get('model_name', '?')}{package}, dimension {m.get('dimension', '?')}")
            encoder = m.get(QUERY_ENCODER)
            if isinstance(encoder, dict):
                out.append(f"query encoder: {ENCODER_MODEL} ({encoder.get('runtime')} {encoder.get('precision')}, "
                           f"max {encoder.get('max_seq_length')} tokens)")
            counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
            out.append(f"contents: {counts.get('documents', '?')} documents, {counts.get('passages', '?')} passages")
        if self.files_checked:
            out.append(f"files checked: {len(self.files_checked)} ({', '.join(self.files_checked)})")
        if self.ok:
            out.append("problems: none (checksums, manifest, counts and cross-references agree)")
            return out
        out.append(f"problems: {len(self.problems)}")
        out += [f"  - {problem}" for problem in self.problems]
        out.append(f"Run `qa build --seeds DIR --index {self.index_dir}` to repair the index.")
        return out


def check_index(index_dir: str | Path, config: Config) -> IndexCheck:
    """Check the live index as thoroughly as a load does, and more (unlisted files), without raising."""
    report = IndexCheck(Path(index_dir))
    try:
        version_dir, manifest = read_manifest(report.index_dir)
    except (IndexNotFoundError, IndexCorruptError) as exc:
        report.problems.append(str(exc))
        return report
    report.version, report.manifest = version_dir.name, manifest
    shape = manifest_shape_problems(manifest) if manifest.get("format_version") == FORMAT_VERSION else []
    report.problems += manifest_problems(manifest, config) + shape
    if not shape:
        report.problems += query_encoder_problems(manifest, config)
    checksums = manifest.get("checksums")
    if isinstance(checksums, dict):
        report.files_checked = [MANIFEST] + sorted(str(name) for name in checksums)
    report.problems += file_problems(version_dir, manifest) + _unlisted_files(version_dir, manifest)
    if report.problems:
        return report
    try:
        store = _read_version(report.index_dir, version_dir, manifest, mmap=True)
    except IndexCorruptError as exc:
        report.problems.append(str(exc))
        return report
    report.problems += _consistency_problems(store)
    return report


def verify_index(index_dir: str | Path, config: Config) -> list[str]:
    """Every problem found with the index ([] when it is healthy)."""
    return check_index(index_dir, config).problems


def _read_current(index_dir: Path) -> str | None:
    """The live version's name; None when there is no CURRENT; IndexCorruptError when it is garbage."""
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(
            f"{index_dir / CURRENT} cannot be read ({exc}): run `qa build` to repair the index."
        ) from exc
    if not name.startswith(VERSION_PREFIX) or "/" in name or "\\" in name or "\n" in name:
        raise IndexCorruptError(
            f"{index_dir / CURRENT} holds {name[:80]!r}, not a version name: run `qa build` to repair the index."
        )
    return name


def _current_or_none(index_dir: Path) -> str | None:
    try:
        return _read_current(index_dir)
    except IndexCorruptError:
        return None


_PASSAGE_FIELDS = {"passage_id": str, "doc_id": str, "title": str, "text": str, "start": int, "end": int,
                   "pages": list, "page_breaks": list}
_DOCUMENT_FIELDS = {"doc_id": str, "title": str, "text": str, "sha256": str, "pages": list, "author": str,
                    "date": str}
_PARAGRAPH_FIELDS = {"start": int, "end": int, "boilerplate": bool, "reason": str}


def _typed(record: Any, fields: dict[str, type], what: str) -> dict[str, Any]:
    """``record`` if it is an object with exactly these fields of these types; ValueError otherwise."""
    if not isinstance(record, dict) or set(record) != set(fields):
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"a {what} record has fields {keys}, expected {sorted(fields)}")
    for key, kind in fields.items():
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            raise ValueError(f"a {what} record has {key}={record[key]!r}, expected a {kind.__name__}")
        if kind is list and not all(isinstance(n, int) and not isinstance(n, bool) for n in record[key]):
            raise ValueError(f"a {what} record has {key}={record[key]!r}, expected a list of numbers")
    return record


def _passage(record: Any) -> Passage:
    return Passage(**_typed(record, _PASSAGE_FIELDS, "passage"))


def _document(record: Any) -> Document:
    if not isinstance(record, dict):
        raise TypeError(f"a document record is a {type(record).__name__}, expected an object")
    record = dict(record)
    paragraphs = record.pop("paragraphs", [])
    if not isinstance(paragraphs, list):
        raise TypeError("a document record's paragraphs is not a list")
    paras = tuple(Paragraph(**_typed(p, _PARAGRAPH_FIELDS, "paragraph")) for p in paragraphs)
    return Document(**_typed(record, _DOCUMENT_FIELDS, "document"), paragraphs=paras)


def _read_version(index_dir: Path, version_dir: Path, manifest: dict[str, Any], mmap: bool) -> IndexStore:
    def fail(name: str, exc: BaseException) -> IndexCorruptError:
        return _corrupt(index_dir, [f"{version_dir / name} cannot be read ({type(exc).__name__}: {exc})"])

    def table(name: str) -> np.ndarray:
        try:
            return np.load(version_dir / name, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise fail(name, exc) from exc

    files = manifest.get("files")
    doc_ids = [str(k) for k in files] if isinstance(files, dict) else []
    try:
        documents = DocumentTable(_JsonlRows(version_dir / DOCUMENTS, table(DOCUMENT_OFFSETS)), doc_ids)
    except (OSError, ValueError) as exc:
        raise fail(DOCUMENTS, exc) from exc
    doc_rows = table(PASSAGE_DOCS)
    try:
        rows = _JsonlRows(version_dir / PASSAGES, table(PASSAGE_OFFSETS))
        if doc_rows.dtype != np.int64 or doc_rows.shape != (len(rows),):
            raise ValueError(f"{PASSAGE_DOCS} has shape {doc_rows.shape} and type {doc_rows.dtype}, expected "
                             f"({len(rows)},) int64")
        if len(doc_rows) and (int(doc_rows.min()) < 0 or int(doc_rows.max()) >= len(documents)):
            raise ValueError(f"{PASSAGE_DOCS} refers to articles beyond the {len(documents)} of {DOCUMENTS}")
        passages = PassageTable(rows, doc_rows, len(documents))
    except (OSError, ValueError) as exc:
        raise fail(PASSAGES, exc) from exc
    try:
        vectors = np.load(version_dir / VECTORS_NPY, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise fail(VECTORS_NPY, exc) from exc
    try:
        flat = faiss.read_index(str(version_dir / VECTORS_FAISS))
    except RuntimeError as exc:
        raise fail(VECTORS_FAISS, exc) from exc
    params = manifest.get("index_params")
    ann.configure(flat, params if isinstance(params, dict) else {})
    try:  # always memory-mapped: BM25 reads a few postings lists per query
        lexical = LexicalIndex.load(version_dir / BM25_DIR, mmap=True)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise fail(BM25_DIR, exc) from exc
    return IndexStore(version_dir, version_dir.name, manifest, passages, documents, flat, vectors, lexical)


def _consistency_problems(store: IndexStore) -> list[str]:
    """Cross-checks between files whose checksums match: catches a manifest rewritten to fit edited files."""
    n = len(store.passages)
    dimension = store.manifest.get("dimension")
    counts = store.manifest.get("counts") or {}
    problems = []
    vectors_ok = False
    if store.vectors.ndim != 2 or store.vectors.shape[0] != n:
        problems.append(f"{VECTORS_NPY} has shape {store.vectors.shape} for {n} passages")
    elif store.vectors.shape[1] != dimension:
        problems.append(f"{VECTORS_NPY} has dimension {store.vectors.shape[1]}, the manifest says {dimension}")
    elif store.vectors.dtype != np.float32:
        problems.append(f"{VECTORS_NPY} holds {store.vectors.dtype} numbers, expected float32")
    else:
        vectors_ok = True
    if store.faiss_index.ntotal != n or store.faiss_index.d != dimension:
        problems.append(f"{VECTORS_FAISS} holds {store.faiss_index.ntotal} vectors of dimension "
                        f"{store.faiss_index.d} for {n} passages of dimension {dimension}")
        vectors_ok = False
    elif store.faiss_index.metric_type != faiss.METRIC_INNER_PRODUCT:
        problems.append(f"{VECTORS_FAISS} does not rank by inner product (metric {store.faiss_index.metric_type})")
    if vectors_ok:
        problems += _vector_problems(store)
    if len(store.lexical) != n:
        problems.append(f"{BM25_DIR}/ indexes {len(store.lexical)} rows for {n} passages")
    if counts.get("passages") != n or counts.get("documents") != len(store.documents):
        problems.append(f"the manifest counts {counts} differ from the files "
                        f"({len(store.documents)} documents, {n} passages)")
    try:
        problems += _record_problems(store)
    except IndexCorruptError as exc:  # a line that is not a valid record
        problems.append(str(exc).split(": run `qa build`")[0])
    return problems


def _record_problems(store: IndexStore) -> list[str]:
    """Every document and passage read once, in row order (one article in memory at a time)."""
    problems = []
    documents = store.documents
    files = store.manifest.get("files") or {}
    hashes: dict[str, str] = {}
    for doc_id in documents:
        doc = documents[doc_id]
        if doc.doc_id != doc_id:
            problems.append(f"{DOCUMENTS} holds {doc.doc_id!r} where the manifest lists {doc_id!r}")
            break
        hashes[doc_id] = doc.sha256
    if hashes != files:
        problems.append(f"the manifest's article list differs from {DOCUMENTS}")
    passages = store.passages
    table = passages if isinstance(passages, PassageTable) and isinstance(documents, DocumentTable) else None
    ids: set[str] = set()
    repeated, missing, wrong, misfiled = False, set(), [], 0
    doc_id, doc = None, None
    for row in range(len(passages)):
        p = table.read(row) if table is not None else passages[row]
        if p.passage_id in ids:
            repeated = True
        ids.add(p.passage_id)
        if p.doc_id != doc_id:
            doc_id, doc = p.doc_id, documents.get(p.doc_id)
        if doc is None:
            missing.add(p.doc_id)
            continue
        if doc.text[p.start : p.end] != p.text:
            wrong.append(p.passage_id)
        if table is not None and int(table.doc_rows[row]) != documents.position(p.doc_id):  # type: ignore[attr-defined]
            misfiled += 1
    if missing:
        problems.append(f"{PASSAGES} refers to documents missing from {DOCUMENTS}: {sorted(missing)[:5]}")
    if repeated:
        problems.append(f"{PASSAGES} repeats passage ids")
    if wrong:
        problems.append(f"{len(wrong)} passages do not match their article's text at their offsets "
                        f"(e.g. {wrong[0]!r})")
    if misfiled:
        problems.append(f"{PASSAGE_DOCS} points {misfiled} passages at another article than theirs")
    return problems


def _vector_problems(store: IndexStore, chunk: int = 8192) -> list[str]:
    """NaN/unnormalised vectors, or a faiss index holding other vectors than vectors.npy."""
    for start in range(0, len(store.vectors), chunk):
        rows = np.asarray(store.vectors[start : start + chunk])
        if not np.isfinite(rows).all():
            return [f"{VECTORS_NPY} holds NaN or infinite numbers (rows from {start})"]
        if not np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-3):
            return [f"{VECTORS_NPY} holds vectors that are not L2-normalised (rows from {start})"]
        if not isinstance(store.faiss_index, faiss.IndexFlat):
            continue  # approximate indexes (HNSW, IVF-PQ) do not give back their vectors exactly
        stored = store.faiss_index.reconstruct_n(start, len(rows))
        if not np.allclose(stored, rows, atol=1e-6):
            return [f"{VECTORS_FAISS} and {VECTORS_NPY} hold different vectors (rows from {start})"]
    return []


def _corrupt(index_dir: Path, problems: list[str]) -> IndexCorruptError:
    return IndexCorruptError(
        f"Index at {index_dir} is damaged: {'; '.join(problems)}. "
        f"Run `qa build --seeds DIR --index {index_dir}` to repair it."
    )


def _warn_package_version(manifest: dict[str, Any]) -> None:
    stored = manifest.get("model_package_version")
    installed = model_package_version() if manifest.get("model_package") == MODEL_PACKAGE else None
    if stored and installed and stored != installed:
        logger.warning(
            "Index was embedded with %s %s, %s is installed: run `qa build` if results look off.",
            MODEL_PACKAGE, stored, installed,
        )
