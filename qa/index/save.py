"""Saving an index version atomically, and removing what old or interrupted saves left behind.

A save writes a hidden ``.tmp-*`` directory, fsyncs it, renames it to ``v-*`` and only then swaps
``CURRENT`` (written whole with ``qa.files.write_atomic``): a crash at any point leaves the previous version
live, and the next build removes what the crash left behind. Nothing is pickled.

Promises, each proven by fault injection in tests/test_faults.py and tests/test_concurrency.py:

- a build killed at any moment leaves the complete old or the complete new index (never half of one);
- a write error (full disk, read-only directory) raises IndexWriteError and changes nothing;
- a second build into the same directory raises IndexLockedError (qa.index.lock) instead of deleting the
  first one's temporary files;
- the live version and the one before it are kept (readers still on the old one keep working); older
  versions are pruned.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from qa import files
from qa.config import Config
from qa.embed import QueryEncoderExport
from qa.errors import IndexCorruptError, IndexWriteError
from qa.index import ann
from qa.index.layout import (
    BM25_DIR,
    CURRENT,
    CURRENT_TMP,
    DOCUMENT_OFFSETS,
    DOCUMENTS,
    ENCODER_MODEL,
    ENCODER_TOKENIZER,
    MANIFEST,
    PASSAGE_DOCS,
    PASSAGE_OFFSETS,
    PASSAGES,
    TMP_PREFIX,
    VECTORS_FAISS,
    VECTORS_NPY,
    VERSION_PREFIX,
    current_or_none,
    new_tmp_name,
    new_version_name,
    read_current,
)
from qa.index.lexical import LexicalIndex
from qa.index.lock import IndexLock, holding
from qa.index.manifest import new_manifest
from qa.types import Document, Passage

logger = logging.getLogger(__name__)


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
    read the documents (qa.ingest.IngestResult.extractors). ``lock`` is the caller's ``index_lock`` (a build
    holds it from start to end); without one the save takes the lock itself. ``query_encoder`` (from
    ``qa.embed.export_query_encoder``; `qa build` always passes one) is stored in ``encoder/``: without it
    the index answers questions only with an encoder passed to the Retriever.

    Raises ValueError for inconsistent contents, IndexLockedError when another build holds the lock and
    IndexWriteError when a file cannot be written; on any error the previous version stays live.
    """
    index_dir = Path(index_dir)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    _check_contents(documents, passages, vectors, lexical)
    with holding(index_dir, lock):
        try:
            previous = read_current(index_dir)
        except IndexCorruptError:  # a damaged CURRENT must not stop the build that repairs it
            previous = None
        tmp = index_dir / new_tmp_name()
        version = new_version_name()
        final = index_dir / version
        try:
            tmp.mkdir()
            _write_version(tmp, documents, passages, vectors, lexical, config, build_seconds, skipped_files,
                           previous, extractors, query_encoder)
            os.rename(tmp, final)
            files.fsync_dir(index_dir)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(final, ignore_errors=True)
            if isinstance(exc, OSError):
                raise IndexWriteError.from_os_error(index_dir, exc) from exc
            raise
        try:
            _write_current(index_dir, version)
        except BaseException as exc:
            live = current_or_none(index_dir)
            if live != version:  # the swap did not happen: the new version would be an orphan
                shutil.rmtree(final, ignore_errors=True)
            _best_effort_unlink(index_dir / CURRENT_TMP)
            if isinstance(exc, OSError):
                raise IndexWriteError.from_os_error(index_dir, exc, unchanged=live != version) from exc
            raise
        logger.info("Saved index version %s (%d passages) in %s", version, len(passages), index_dir)
        _prune(index_dir, keep={version, previous})
    return version


def clean_stale(index_dir: str | Path) -> None:
    """Remove what interrupted saves left: ``.tmp-*`` directories, ``CURRENT.tmp``, and versions that never
    went live (neither the live one nor the previous one it records). Best effort: errors are logged.

    Call it only while holding ``index_lock``: a running save's ``.tmp-*`` directory looks the same.
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
    _best_effort_unlink(index_dir / CURRENT_TMP)
    live = current_or_none(index_dir)
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
        # Hard links: every build of a model stores the same ~90 MB export, and linked versions (and the
        # export cache) share it on disk. Neither side is ever written in place, only replaced.
        files.link_or_copy(query_encoder.model, directory / ENCODER_MODEL)
        files.link_or_copy(query_encoder.tokenizer, directory / ENCODER_TOKENIZER)
    # qa.index.ann picks the kind (exact flat for small corpora, HNSW above a threshold) unless config says.
    flat = ann.make_index(vectors, config.index_type)  # type: ignore[arg-type]
    described = ann.describe(flat)
    # Serialised here and written by Python, so a full disk raises OSError (faiss's own writer raises a
    # RuntimeError that does not say why).
    files.write_synced(directory / VECTORS_FAISS, faiss.serialize_index(flat).tobytes())
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
    files.fsync_tree(directory)
    manifest = new_manifest(
        directory, config, dimension=dimension, described=described,
        source_files={d.doc_id: d.sha256 for d in documents}, skipped_files=skipped_files, extractors=extractors,
        counts={"documents": len(documents), "passages": len(passages)}, build_seconds=build_seconds,
        previous=previous, query_encoder=query_encoder.spec if query_encoder is not None else None,
    )
    files.write_synced(directory / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    files.fsync_dir(directory)


def _write_current(index_dir: Path, version: str) -> None:
    """Point CURRENT at ``version`` atomically: readers see the old or the new name, never half of one."""
    files.write_atomic(index_dir / CURRENT, (version + "\n").encode("utf-8"), tmp=index_dir / CURRENT_TMP,
                       sync_dir=True)


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
