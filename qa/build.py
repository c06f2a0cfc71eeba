"""Build or update the index from a folder of articles (or a .jsonl corpus), incrementally.

Documents whose file hash is unchanged keep their passages and vectors from the previous index version, so
only added or changed documents are split and embedded. The BM25 index is rebuilt over all passages every
time (it takes milliseconds). A build with nothing to do writes nothing.

A build holds the index directory's lock (``qa.store.index_lock``) from start to end: a second build into
the same directory fails at once with IndexLockedError rather than racing the first one.

Splitting and embedding the new documents is the engine's job: ``split_and_embed`` in this process (the
default, ``engine="local"``), or Ray workers across a cluster (``engine="ray"``, see qa.distributed). Either
way the rest of the build (reuse, BM25, the atomic save and its manifest) is this module's.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from qa.config import DEFAULT_CONFIG, Config
from qa.embed import Encoder, get_encoder, model_package_version
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IngestError
from qa.ingest import IngestResult, Skipped, file_hashes, load_corpus
from qa.lexical import LexicalIndex
from qa.passages import split_passages
from qa.store import (
    IndexLock,
    IndexStore,
    clean_stale,
    file_problems,
    index_lock,
    load_index,
    manifest_problems,
    manifest_shape_problems,
    read_manifest,
    save_index,
)
from qa.types import Document, Passage

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")

# New documents -> their passages (in document order) and one L2-normalised float32 vector per passage.
SplitAndEmbed = Callable[[list[Document]], tuple[list[Passage], np.ndarray]]


@dataclass
class BuildReport:
    """What a build did; ``summary()`` is the line `qa build` prints."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    no_text: list[str] = field(default_factory=list)  # indexed articles that gave no passage (all boilerplate)
    passages_embedded: int = 0
    n_documents: int = 0
    n_passages: int = 0
    seconds: float = 0.0
    version: str = ""  # the live index version after the build
    up_to_date: bool = False  # nothing changed, so no new version was written

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        if self.no_text:
            names = ", ".join(self.no_text[:3]) + (", ..." if len(self.no_text) > 3 else "")
            skipped += f", {len(self.no_text)} with no indexable text ({names})"
        if self.up_to_date:
            return (
                f"index is up to date: {self.n_documents} documents{skipped}, {self.n_passages} passages, "
                f"0 embedded, {self.seconds:.1f} s"
            )
        return (
            f"{self.n_documents} documents ({len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {len(self.unchanged)} unchanged{skipped}), "
            f"{self.n_passages} passages, {self.passages_embedded} embedded, {self.seconds:.1f} s"
        )


@dataclass
class IndexStatus:
    """Whether the index reflects the source files, from hashes only (no model, no vectors read)."""

    current: bool
    reason: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def build_index(
    source: str | Path,
    index_dir: str | Path,
    config: Config = DEFAULT_CONFIG,
    progress: bool = True,
    encoder: Encoder | None = None,
    *,
    engine: str | Any = "local",
    ray_address: str | None = None,
) -> BuildReport:
    """Index ``source`` (a folder of articles or a .jsonl corpus) into ``index_dir``, reusing what it can.

    ``engine="ray"`` splits and embeds on a Ray cluster (``ray_address``, default: a local one) instead of in
    this process, with the same result; pass a ``qa.distributed.RayEngine`` for more options (workers,
    shard directory). ``encoder`` is used by the local engine only.

    Raises IngestError when no document can be read (or, with ``config.strict``, on the first unreadable
    file), ModelLoadError when the embedding model is missing, IndexLockedError when another build is
    writing to ``index_dir`` and IndexWriteError when the index cannot be written (disk full, read-only).
    The previous index stays live on any failure, including the process being killed.
    """
    start = time.perf_counter()
    source, index_dir = Path(source), Path(index_dir)
    if encoder is not None and encoder.model_name != config.model_name:
        raise ValueError(
            f"The encoder is {encoder.model_name!r} but the configuration asks for {config.model_name!r}: "
            "pass a matching encoder or set config.model_name."
        )
    if engine == "ray":
        from qa.distributed import RayEngine

        engine = RayEngine(address=ray_address)
    if engine != "local" and not hasattr(engine, "session"):
        raise ValueError(f"engine must be one of {ENGINES} or a qa.distributed.RayEngine, got {engine!r}.")
    corpus = load_corpus(source, config)  # reads only the source: no lock needed yet
    if not corpus.documents:
        raise IngestError(
            f"No readable articles in {source} ({len(corpus.skipped)} skipped): "
            "add UTF-8 text files (title on the first line) or pass another --seeds folder."
        )
    _check_unique(corpus.documents)
    with index_lock(index_dir) as lock:
        clean_stale(index_dir)  # safe: no other build can be writing here while we hold the lock
        with _engine_session(engine, index_dir, config, encoder, progress) as embed:
            report = _build_locked(source, index_dir, corpus, config, embed, lock, start)
    report.seconds = time.perf_counter() - start
    logger.info("Built %s: %s", index_dir, report.summary())
    return report


def split_and_embed(
    documents: list[Document], config: Config, encoder: Encoder | None = None, progress: bool = True
) -> tuple[list[Passage], np.ndarray]:
    """The passages of ``documents`` in order and their vectors: the local engine, also run by Ray workers."""
    passages = [passage for doc in documents for passage in split_passages(doc, config)]
    encoder = encoder or get_encoder(config.model_name)
    logger.info("Embedding %d passages", len(passages))
    vectors = encoder.encode_passages(
        [p.title for p in passages], [p.text for p in passages],
        batch_size=config.embed_batch_size, progress=progress,
    )
    return passages, vectors


def _engine_session(
    engine: str | Any, index_dir: Path, config: Config, encoder: Encoder | None, progress: bool
) -> AbstractContextManager[SplitAndEmbed]:
    if engine == "local":
        return nullcontext(partial(split_and_embed, config=config, encoder=encoder, progress=progress))
    return engine.session(index_dir, config, progress=progress)


def _build_locked(
    source: Path,
    index_dir: Path,
    corpus: IngestResult,
    config: Config,
    embed: SplitAndEmbed,
    lock: IndexLock,
    start: float,
) -> BuildReport:
    documents = corpus.documents
    skipped_files = _skipped_hashes(source, config, documents)
    previous = _previous_index(index_dir, config)
    old_docs = previous.documents if previous else {}

    report = BuildReport(skipped=list(corpus.skipped), n_documents=len(documents))
    for doc in documents:
        old = old_docs.get(doc.doc_id)
        if old is None:
            report.added.append(doc.doc_id)
        elif old == doc:
            report.unchanged.append(doc.doc_id)
        else:  # new hash, or same hash but ingest now reads it differently: re-split and re-embed
            report.changed.append(doc.doc_id)
    report.removed = sorted(set(old_docs) - {d.doc_id for d in documents})

    if (
        previous is not None
        and not (report.added or report.changed or report.removed)
        and previous.manifest.get("skipped_files", {}) == skipped_files
    ):
        report.up_to_date, report.version = True, previous.version
        report.n_passages = len(previous.passages)
        report.no_text = _without_passages(documents, previous.passages)
        logger.info("Index %s is up to date", index_dir)
        return report

    unchanged = set(report.unchanged)
    passages, vectors, report.passages_embedded = _passages_and_vectors(documents, unchanged, previous, embed)
    lexical = LexicalIndex.build([f"{p.title}. {p.text}" for p in passages])
    report.n_passages = len(passages)
    report.no_text = _without_passages(documents, passages)
    report.version = save_index(
        index_dir,
        documents=documents,
        passages=passages,
        vectors=vectors,
        lexical=lexical,
        config=config,
        build_seconds=time.perf_counter() - start,
        skipped_files=skipped_files,
        lock=lock,
    )
    return report


def _without_passages(documents: list[Document], passages: list[Passage]) -> list[str]:
    """Articles that were read but yield no passage (every paragraph is boilerplate): said, not hidden."""
    with_text = {p.doc_id for p in passages}
    return [d.doc_id for d in documents if d.doc_id not in with_text]


def index_status(source: str | Path, index_dir: str | Path, config: Config = DEFAULT_CONFIG) -> IndexStatus:
    """Compare the source files' hashes with the manifest; used to rebuild a stale index at start-up."""
    source, index_dir = Path(source), Path(index_dir)
    try:
        version_dir, manifest = read_manifest(index_dir)
    except IndexNotFoundError:
        return IndexStatus(False, f"no index at {index_dir} yet")
    except IndexCorruptError as exc:
        return IndexStatus(False, str(exc))
    problems = manifest_problems(manifest, config)
    if problems:
        return IndexStatus(False, "the index was built with " + "; ".join(problems))
    problems = manifest_shape_problems(manifest)
    if problems:
        return IndexStatus(False, "the index is damaged: " + "; ".join(problems))
    missing = _missing_files(version_dir, manifest)
    if missing:
        return IndexStatus(False, "the index is damaged: " + "; ".join(missing))
    hashes = _source_hashes(source, config)
    known = {**manifest.get("skipped_files", {}), **manifest.get("files", {})}
    added = sorted(set(hashes) - set(known))
    removed = sorted(set(known) - set(hashes))
    changed = sorted(k for k in set(hashes) & set(known) if hashes[k] != known[k])
    if added or changed or removed:
        reason = f"{len(added)} added, {len(changed)} changed, {len(removed)} removed since the last build"
        return IndexStatus(False, reason, added, changed, removed)
    return IndexStatus(True, "index is up to date")


def _missing_files(version_dir: Path, manifest: dict) -> list[str]:
    """Files the manifest lists that are missing (existence only; ``store.file_problems`` hashes them)."""
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        return file_problems(version_dir, manifest)
    return [f"{version_dir / name} is missing" for name in sorted(checksums) if not (version_dir / name).is_file()]


def _previous_index(index_dir: Path, config: Config) -> IndexStore | None:
    """The live index if it can be reused; otherwise None, with the reason logged."""
    try:
        store = load_index(index_dir, config)
    except IndexNotFoundError:
        logger.info("No index at %s yet: building from scratch", index_dir)
        return None
    except (IndexMismatchError, IndexCorruptError) as exc:
        logger.warning("Rebuilding from scratch: %s", exc)
        return None
    stored, installed = store.manifest.get("model_package_version"), model_package_version()
    if stored and installed and stored != installed:
        logger.warning("Rebuilding from scratch: vectors were made with model package %s, %s is installed",
                       stored, installed)
        return None
    return store


def _passages_and_vectors(
    documents: list[Document],
    unchanged: set[str],
    previous: IndexStore | None,
    embed: SplitAndEmbed,
) -> tuple[list[Passage], np.ndarray, int]:
    """All passages in document order with their vectors; only new documents go through ``embed``."""
    new_docs = [doc for doc in documents if previous is None or doc.doc_id not in unchanged]
    fresh: list[Passage] = []
    if new_docs:
        fresh, fresh_vectors = embed(new_docs)
        dimension = int(fresh_vectors.shape[1])
    else:
        dimension = int(previous.vectors.shape[1])
    passages: list[Passage] = []
    old_rows: list[int] = []  # previous-index row for each reused passage
    reused_at: list[int] = []  # its position in ``passages``
    new_at: list[int] = []
    fresh_by_doc: dict[str, list[Passage]] = {}
    for passage in fresh:
        fresh_by_doc.setdefault(passage.doc_id, []).append(passage)
    for doc in documents:
        if previous is not None and doc.doc_id in unchanged:
            for row in previous.rows_of(doc.doc_id):
                reused_at.append(len(passages))
                old_rows.append(row)
                passages.append(previous.passages[row])
        else:
            for passage in fresh_by_doc.get(doc.doc_id, []):
                new_at.append(len(passages))
                passages.append(passage)
    vectors = np.zeros((len(passages), dimension), dtype=np.float32)
    if old_rows:
        vectors[reused_at] = previous.vectors[old_rows]
    if len(new_at) != len(fresh) or (new_docs and fresh_vectors.shape[0] != len(fresh)):
        raise ValueError(f"The engine returned {len(fresh)} passages for {len(new_at)} rows: a bug in the engine.")
    if new_at:
        vectors[new_at] = fresh_vectors
    return passages, vectors, len(new_at)


def _source_hashes(source: Path, config: Config) -> dict[str, str]:
    """{doc_id: sha256} of the source: file hashes for a folder; record hashes for a .jsonl corpus
    (parsing JSON lines is cheap next to embedding, and gives per-record changes)."""
    if source.is_dir():
        return file_hashes(source, config)
    return {d.doc_id: d.sha256 for d in load_corpus(source, config).documents}


def _skipped_hashes(source: Path, config: Config, documents: list[Document]) -> dict[str, str]:
    """Hashes of source files that were not indexed, so status checks don't report them as new each time."""
    if not source.is_dir():
        return {}
    indexed = {d.doc_id for d in documents}
    return {k: v for k, v in file_hashes(source, config).items() if k not in indexed}


def _check_unique(documents: list[Document]) -> None:
    duplicates = sorted(doc_id for doc_id, n in Counter(d.doc_id for d in documents).items() if n > 1)
    if duplicates:
        raise IngestError(f"Duplicate document ids {duplicates[:5]}: give every article a unique id.")
