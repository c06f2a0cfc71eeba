"""Loading an index version: :class:`IndexStore`, and the checks that make a damaged index fail loudly.

A load reads the live version named by CURRENT, checks its manifest (qa.index.manifest) and every file's
checksum, opens the files (vectors and BM25 memory-mapped, passages and articles by row: qa.index.tables),
then cross-checks the files against each other, which catches a manifest rewritten to fit edited files.
Any problem raises IndexCorruptError (or IndexMismatchError for another model, dimension or format) saying
what is wrong and to run `qa build`. A reader that loads while a build swaps versions gets one whole
version: it retries when its version was pruned under it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.config import Config
from qa.embed import Encoder, QueryEncoderSpec, load_query_encoder
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.index import ann
from qa.index.layout import (
    BM25_DIR,
    DOCUMENT_OFFSETS,
    DOCUMENTS,
    ENCODER_MODEL,
    ENCODER_TOKENIZER,
    PASSAGE_DOCS,
    PASSAGE_OFFSETS,
    PASSAGES,
    QUERY_ENCODER,
    VECTORS_FAISS,
    VECTORS_NPY,
    current_or_none,
    read_current,
)
from qa.index.lexical import LexicalIndex
from qa.index.manifest import (
    corrupt,
    file_problems,
    query_encoder_problems,
    raise_for_manifest,
    read_manifest_file,
    warn_package_version,
)
from qa.index.tables import DocumentTable, JsonlRows, PassageTable
from qa.types import Document, Passage

logger = logging.getLogger(__name__)

LOAD_ATTEMPTS = 3  # a load retries when a concurrent build made another version live while it read


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
                f"Index at {index_dir}: {'; '.join(problems)}. Run `qa build --articles DIR --index {index_dir}` "
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

    def row_of(self, passage_id: str) -> int:
        """The row (in ``vectors``, ``faiss_index``, ``lexical``) of a passage of this index; KeyError otherwise."""
        doc_id, _, position = passage_id.rpartition("#")  # f"{doc_id}#{n}": the article's n-th passage
        rows = self.rows_of(doc_id)
        if position.isdigit() and int(position) < len(rows):
            row = rows[int(position)]
            if self.passages[row].passage_id == passage_id:
                return row
        raise KeyError(f"passage {passage_id!r} is not in the index at {self.path}")



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
        version = read_current(index_dir)
        if version is None:
            raise IndexNotFoundError(f"No index at {index_dir}: run `qa build --articles DIR --index {index_dir}`.")
        try:
            return _load_version(index_dir, index_dir / version, config, expected_dimension, mmap)
        except IndexCorruptError:
            if attempt == LOAD_ATTEMPTS or current_or_none(index_dir) in (version, None):
                raise  # the version did not change under us: it is really damaged
            logger.info("Index %s: %s was replaced while loading; loading the new version", index_dir, version)
    raise AssertionError("unreachable")  # pragma: no cover


def _load_version(
    index_dir: Path, version_dir: Path, config: Config, expected_dimension: int | None, mmap: bool
) -> IndexStore:
    manifest = read_manifest_file(index_dir, version_dir)
    raise_for_manifest(index_dir, manifest, config, expected_dimension)
    warn_package_version(manifest)
    problems = file_problems(version_dir, manifest)
    if problems:
        raise corrupt(index_dir, problems)
    store = read_version(index_dir, version_dir, manifest, mmap)
    problems = consistency_problems(store)
    if problems:
        raise corrupt(index_dir, problems)
    logger.info("Loaded index %s: %d passages", version_dir, len(store.passages))
    return store


def read_version(index_dir: Path, version_dir: Path, manifest: dict[str, Any], mmap: bool) -> IndexStore:
    """Open the files of ``version_dir`` (checksums already checked); IndexCorruptError when one cannot be read."""
    def fail(name: str, exc: BaseException) -> IndexCorruptError:
        return corrupt(index_dir, [f"{version_dir / name} cannot be read ({type(exc).__name__}: {exc})"])

    def table(name: str) -> np.ndarray:
        try:
            return np.load(version_dir / name, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise fail(name, exc) from exc

    files = manifest.get("files")
    doc_ids = [str(k) for k in files] if isinstance(files, dict) else []
    try:
        documents = DocumentTable(JsonlRows(version_dir / DOCUMENTS, table(DOCUMENT_OFFSETS)), doc_ids)
    except (OSError, ValueError) as exc:
        raise fail(DOCUMENTS, exc) from exc
    doc_rows = table(PASSAGE_DOCS)
    try:
        rows = JsonlRows(version_dir / PASSAGES, table(PASSAGE_OFFSETS))
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


def consistency_problems(store: IndexStore) -> list[str]:
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

