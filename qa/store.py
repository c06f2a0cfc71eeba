"""The on-disk index: a directory of plain files with a checked manifest, saved atomically.

Layout::

    index_dir/
      CURRENT                  one line: the name of the live version directory
      v-<UTC time>-<random>/   one complete, immutable index version
        manifest.json          format, model, dimension, settings, file hashes, counts, checksums
        vectors.faiss          faiss IndexFlatIP over L2-normalised float32 vectors (inner product = cosine)
        vectors.npy            the same vectors, raw, reused by incremental builds
        passages.jsonl         one Passage per line, in vector row order
        documents.jsonl        one Document per line, paragraphs included (the UI shows whole articles)
        bm25/                  LexicalIndex.save (bm25s JSON + .npy)

A save writes a hidden ``.tmp-*`` directory, fsyncs it, renames it to ``v-*`` and only then swaps
``CURRENT`` with ``os.replace``: a crash at any point leaves the previous version live. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa.config import MODEL_NAME, MODEL_PACKAGE, Config
from qa.embed import KNOWN_DIMENSIONS, model_package_version
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.lexical import LexicalIndex
from qa.types import Document, Paragraph, Passage

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_TYPE = "flat-ip"
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS_FAISS = "vectors.faiss"
VECTORS_NPY = "vectors.npy"
PASSAGES = "passages.jsonl"
DOCUMENTS = "documents.jsonl"
BM25_DIR = "bm25"
TMP_PREFIX = ".tmp-"
VERSION_PREFIX = "v-"


@dataclass
class IndexStore:
    """One loaded index version. Row i of ``vectors``/``faiss_index``/``lexical`` is ``passages[i]``."""

    path: Path  # the version directory
    version: str
    manifest: dict[str, Any]
    passages: list[Passage]
    documents: dict[str, Document]
    faiss_index: faiss.Index
    vectors: np.ndarray
    lexical: LexicalIndex
    _rows_by_doc: dict[str, list[int]] = field(default_factory=dict, repr=False)

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

    def rows_of(self, doc_id: str) -> list[int]:
        """Vector/passage rows of one document (in passage order)."""
        if not self._rows_by_doc:
            for i, p in enumerate(self.passages):
                self._rows_by_doc.setdefault(p.doc_id, []).append(i)
        return self._rows_by_doc.get(doc_id, [])


# ---------------------------------------------------------------------------------------------- saving


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
) -> str:
    """Write a new index version and make it live; returns its name. Keeps the previous version.

    ``skipped_files`` ({path: sha256}) records source files that were seen but not indexed, so a later
    status check does not take them for new files.
    """
    index_dir = Path(index_dir)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    _check_contents(documents, passages, vectors, lexical)
    index_dir.mkdir(parents=True, exist_ok=True)
    previous = _read_current(index_dir)
    tmp = index_dir / f"{TMP_PREFIX}{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        _write_version(tmp, documents, passages, vectors, lexical, config, build_seconds, skipped_files)
        version = f"{VERSION_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        os.rename(tmp, index_dir / version)
        _fsync_dir(index_dir)
        _write_current(index_dir, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # best effort; the next build also removes leftovers
        raise
    logger.info("Saved index version %s (%d passages) in %s", version, len(passages), index_dir)
    _prune(index_dir, keep={version, previous})
    return version


def clean_stale(index_dir: str | Path) -> None:
    """Remove leftovers of interrupted saves (``.tmp-*`` directories, ``CURRENT.tmp``)."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        return
    for entry in index_dir.iterdir():
        if entry.name.startswith(TMP_PREFIX) and entry.is_dir():
            logger.info("Removing leftover of an interrupted save: %s", entry)
            shutil.rmtree(entry, ignore_errors=True)
    (index_dir / f"{CURRENT}.tmp").unlink(missing_ok=True)


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
) -> None:
    dimension = int(vectors.shape[1])
    flat = faiss.IndexFlatIP(dimension)
    flat.add(vectors)
    faiss.write_index(flat, str(directory / VECTORS_FAISS))
    with open(directory / VECTORS_NPY, "wb") as f:
        np.save(f, vectors, allow_pickle=False)
    _write_jsonl(directory / PASSAGES, (asdict(p) for p in passages))
    _write_jsonl(directory / DOCUMENTS, (asdict(d) for d in documents))
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
        "index_type": INDEX_TYPE,
        "settings": config.index_settings(),
        "files": {d.doc_id: d.sha256 for d in documents},
        "skipped_files": dict(skipped_files or {}),
        "counts": {"documents": len(documents), "passages": len(passages)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(build_seconds, 3),
        "checksums": {name: _sha256(directory / name) for name in _relative_files(directory)},
    }
    _write_bytes(directory / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    _fsync_dir(directory)


def _write_current(index_dir: Path, version: str) -> None:
    """Point CURRENT at ``version`` atomically: readers see the old or the new name, never half of one."""
    tmp = index_dir / f"{CURRENT}.tmp"
    _write_bytes(tmp, (version + "\n").encode("utf-8"))
    os.replace(tmp, index_dir / CURRENT)
    _fsync_dir(index_dir)


def _prune(index_dir: Path, keep: set[str | None]) -> None:
    """Delete versions other than the live and previous one, and leftovers of interrupted saves."""
    for entry in index_dir.iterdir():
        if entry.is_dir() and entry.name.startswith(VERSION_PREFIX) and entry.name not in keep:
            logger.info("Removing old index version %s", entry.name)
            shutil.rmtree(entry, ignore_errors=True)
    clean_stale(index_dir)


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


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
    version_dir = index_dir / version
    manifest_path = version_dir / MANIFEST
    if not manifest_path.is_file():
        raise IndexCorruptError(
            f"Index at {index_dir} is damaged: {CURRENT} names {version!r} but {manifest_path} is missing; "
            "run `qa build` to repair it."
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
    return version_dir, manifest


def manifest_problems(
    manifest: dict[str, Any], config: Config, expected_dimension: int | None = None
) -> list[str]:
    """How the stored index differs from what ``config`` asks for ([] when it matches)."""
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
    if manifest.get("index_type") != INDEX_TYPE or manifest.get("normalised") is not True:
        problems.append(
            f"index type {manifest.get('index_type')!r} (normalised={manifest.get('normalised')!r}), "
            f"expected {INDEX_TYPE!r} over normalised vectors"
        )
    stored = manifest.get("settings") or {}
    wanted = config.index_settings()
    for key in sorted(set(stored) | set(wanted)):
        if key != "model_name" and stored.get(key) != wanted.get(key):
            problems.append(f"{key}={stored.get(key)!r}, the configuration has {key}={wanted.get(key)!r}")
    return problems


def file_problems(version_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Missing, truncated or altered files (checksum mismatch) in a version directory."""
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        return [f"{version_dir / MANIFEST} has no checksums"]
    problems = []
    required = [VECTORS_FAISS, VECTORS_NPY, PASSAGES, DOCUMENTS]
    for name in required:
        if name not in checksums:
            problems.append(f"{name} is not listed in the manifest")
    for name, expected in sorted(checksums.items()):
        path = version_dir / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif _sha256(path) != expected:
            problems.append(f"{path} does not match its checksum (truncated or edited)")
    return problems


def load_index(
    index_dir: str | Path, config: Config, *, expected_dimension: int | None = None, mmap: bool = False
) -> IndexStore:
    """Load and check the live index version.

    Raises IndexNotFoundError (no index), IndexMismatchError (built with another format version, model,
    dimension or settings) or IndexCorruptError (file missing, altered or inconsistent); each message says
    to run `qa build`.
    """
    index_dir = Path(index_dir)
    version_dir, manifest = read_manifest(index_dir)
    problems = manifest_problems(manifest, config, expected_dimension)
    if problems:
        raise IndexMismatchError(
            f"Index at {index_dir} was built with {'; '.join(problems)}. "
            f"Run `qa build --seeds DIR --index {index_dir}` to rebuild it with the current settings."
        )
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


def verify_index(index_dir: str | Path, config: Config) -> list[str]:
    """Every problem found with the index ([] when it is healthy); for `qa check`."""
    index_dir = Path(index_dir)
    try:
        version_dir, manifest = read_manifest(index_dir)
    except (IndexNotFoundError, IndexCorruptError) as exc:
        return [str(exc)]
    problems = manifest_problems(manifest, config) + file_problems(version_dir, manifest)
    if problems:
        return problems
    try:
        store = _read_version(index_dir, version_dir, manifest, mmap=True)
    except IndexCorruptError as exc:
        return [str(exc)]
    return _consistency_problems(store)


def _read_current(index_dir: Path) -> str | None:
    try:
        name = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not name.startswith(VERSION_PREFIX) or "/" in name or "\\" in name:
        raise IndexCorruptError(
            f"{index_dir / CURRENT} holds {name!r}, not a version name: run `qa build` to repair the index."
        )
    return name


def _read_version(index_dir: Path, version_dir: Path, manifest: dict[str, Any], mmap: bool) -> IndexStore:
    def fail(name: str, exc: BaseException) -> IndexCorruptError:
        return _corrupt(index_dir, [f"{version_dir / name} cannot be read ({type(exc).__name__}: {exc})"])

    try:
        passages = [Passage(**r) for r in _read_jsonl(version_dir / PASSAGES)]
    except (OSError, ValueError, TypeError) as exc:
        raise fail(PASSAGES, exc) from exc
    try:
        documents = {d.doc_id: d for d in (_document(r) for r in _read_jsonl(version_dir / DOCUMENTS))}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise fail(DOCUMENTS, exc) from exc
    try:
        vectors = np.load(version_dir / VECTORS_NPY, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise fail(VECTORS_NPY, exc) from exc
    try:
        flat = faiss.read_index(str(version_dir / VECTORS_FAISS))
    except RuntimeError as exc:
        raise fail(VECTORS_FAISS, exc) from exc
    try:
        lexical = LexicalIndex.load(version_dir / BM25_DIR, mmap=mmap)
    except (OSError, ValueError, KeyError) as exc:
        raise fail(BM25_DIR, exc) from exc
    return IndexStore(version_dir, version_dir.name, manifest, passages, documents, flat, vectors, lexical)


def _consistency_problems(store: IndexStore) -> list[str]:
    n = len(store.passages)
    counts = store.manifest.get("counts") or {}
    problems = []
    if store.vectors.ndim != 2 or store.vectors.shape[0] != n:
        problems.append(f"{VECTORS_NPY} has shape {store.vectors.shape} for {n} passages")
    elif store.vectors.shape[1] != store.manifest.get("dimension"):
        problems.append(f"{VECTORS_NPY} has dimension {store.vectors.shape[1]}, the manifest says "
                        f"{store.manifest.get('dimension')}")
    if store.faiss_index.ntotal != n or store.faiss_index.d != store.manifest.get("dimension"):
        problems.append(f"{VECTORS_FAISS} holds {store.faiss_index.ntotal} vectors of dimension "
                        f"{store.faiss_index.d} for {n} passages")
    if len(store.lexical) != n:
        problems.append(f"{BM25_DIR}/ indexes {len(store.lexical)} rows for {n} passages")
    if counts.get("passages") != n or counts.get("documents") != len(store.documents):
        problems.append(f"the manifest counts {counts} differ from the files "
                        f"({len(store.documents)} documents, {n} passages)")
    missing = {p.doc_id for p in store.passages} - set(store.documents)
    if missing:
        problems.append(f"{PASSAGES} refers to documents missing from {DOCUMENTS}: {sorted(missing)[:5]}")
    return problems


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


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _document(record: dict[str, Any]) -> Document:
    paragraphs = tuple(Paragraph(**p) for p in record.pop("paragraphs", ()))
    return Document(**record, paragraphs=paragraphs)
