"""Build or update the index from a folder of articles (or a .jsonl corpus), incrementally.

Documents whose file hash is unchanged keep their passages and vectors from the previous index version, so
only added or changed documents are split and embedded. The BM25 index is rebuilt over all passages every
time (it takes milliseconds). A build with nothing to do writes nothing.

A build holds the index directory's lock (``qa.store.index_lock``) from start to end: a second build into
the same directory fails at once with IndexLockedError rather than racing the first one.

Every new version stores the query encoder (``qa.embed.export_query_encoder``: the embedding model in
ONNX, so questions never load torch). It is taken from the previous version when that one is current, from
the export cache otherwise (exported once per model version, with torch). An index built before qa stored
query encoders is not up to date: the next build writes a version that adds it and re-embeds nothing.

Splitting and embedding the new documents is the engine's job: ``split_and_embed`` in this process (the
default, ``engine="local"``), or Ray workers across a cluster (``engine="ray"``, see qa.distributed). Either
way the rest of the build (reuse, BM25, the atomic save and its manifest) is this module's.

The local engine embeds in chunks of ``embed_batch_size * embed_chunk_batches`` passages (longest first, so
batches pad little), with a progress bar and ETA, and persists each finished chunk in a resume area::

    index_dir/.partial/<settings key>/chunk-<n>-<content hash>.npy

written whole or not at all (fsynced temporary file, then a hard link to the final name). A build that is
killed (or fails to save) leaves its finished chunks there; the next build with the same model, encoder and
batch size reuses every chunk whose passages are unchanged and embeds only the rest. The area is removed
once a build has saved its index, and areas of other settings are removed when a build starts.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa import store as index_store
from qa.config import DEFAULT_CONFIG, Config
from qa.embed import (
    PROGRESS_MIN_PASSAGES,
    Encoder,
    QueryEncoderExport,
    QueryEncoderSpec,
    export_query_encoder,
    get_encoder,
    model_package_version,
    passage_input,
    query_encoder_spec,
)
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IngestError, ModelLoadError
from qa.ingest import (
    IngestResult,
    Reuse,
    Skipped,
    article_suffixes,
    extractor_changes,
    file_hashes,
    load_corpus,
)
from qa.lexical import LexicalIndex
from qa.passages import split_passages
from qa.store import (
    ENCODER_MODEL,
    ENCODER_TOKENIZER,
    QUERY_ENCODER,
    IndexLock,
    IndexStore,
    clean_stale,
    file_problems,
    index_lock,
    load_index,
    manifest_problems,
    manifest_shape_problems,
    query_encoder_problems,
    read_manifest,
    save_index,
)
from qa.types import Document, Passage

logger = logging.getLogger(__name__)

ENGINES = ("local", "ray")
RESUME_DIR = ".partial"  # index_dir/.partial/<settings key>/: embedded chunks of an unfinished build

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
    passages_embedded: int = 0  # passages run through the model by this build
    passages_resumed: int = 0  # new passages whose vectors came from an interrupted build's resume area
    n_documents: int = 0
    n_passages: int = 0
    seconds: float = 0.0
    version: str = ""  # the live index version after the build
    up_to_date: bool = False  # nothing changed, so no new version was written
    encoder_stored: bool = False  # the previous version had no current query encoder; this one stores it

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        if self.no_text:
            names = ", ".join(self.no_text[:3]) + (", ..." if len(self.no_text) > 3 else "")
            skipped += f", {len(self.no_text)} with no indexable text ({names})"
        resumed = f" ({self.passages_resumed} more resumed from an interrupted build)" if self.passages_resumed else ""
        if self.up_to_date:
            return (
                f"index is up to date: {self.n_documents} documents{skipped}, {self.n_passages} passages, "
                f"0 embedded, {self.seconds:.1f} s"
            )
        encoder = ", query encoder stored" if self.encoder_stored else ""
        return (
            f"{self.n_documents} documents ({len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed, {len(self.unchanged)} unchanged{skipped}), "
            f"{self.n_passages} passages, {self.passages_embedded} embedded{resumed}{encoder}, {self.seconds:.1f} s"
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
    # Both only read (an index is read without the lock, as `qa ask` does): the lock is taken to write. PDF,
    # Word and HTML files unchanged since the previous index are not read again: their extraction is reused.
    previous = _previous_index(index_dir, config)
    corpus = load_corpus(source, config, _reuse(previous))
    if not corpus.documents:
        raise IngestError(
            f"No readable articles in {source} ({len(corpus.skipped)} skipped): "
            f"add article files ({', '.join(article_suffixes())}) or pass another --seeds folder."
        )
    _check_unique(corpus.documents)
    with index_lock(index_dir) as lock:
        clean_stale(index_dir)  # safe: no other build can be writing here while we hold the lock
        with _engine_session(engine, index_dir, config, encoder, progress) as embed:
            report = _build_locked(source, index_dir, corpus, previous, config, embed, lock, start)
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


class ResumableEngine:
    """The local engine of one build: splits, then embeds through the resume area of ``index_dir``.

    Same result as ``split_and_embed``; ``embedded``/``resumed`` count the passages of the last call that went
    through the model and that came from the resume area.
    """

    def __init__(self, index_dir: Path, config: Config, encoder: Encoder | None, progress: bool) -> None:
        self.index_dir, self.config, self.encoder, self.progress = index_dir, config, encoder, progress
        self.embedded = self.resumed = 0

    def __call__(self, documents: list[Document]) -> tuple[list[Passage], np.ndarray]:
        passages = [passage for doc in documents for passage in split_passages(doc, self.config)]
        encoder = self.encoder or get_encoder(self.config.model_name)
        vectors, self.resumed = embed_resumable(passages, encoder, self.index_dir, self.config, self.progress)
        self.embedded = len(passages) - self.resumed
        return passages, vectors


def embed_resumable(
    passages: list[Passage], encoder: Encoder, index_dir: Path, config: Config, progress: bool = True
) -> tuple[np.ndarray, int]:
    """Vectors of ``passages`` (rows in their order) and how many came from ``index_dir``'s resume area.

    Chunks are embedded longest first and each is persisted before the next starts, so memory beyond the
    result is one chunk's. Call it while holding the build lock of ``index_dir``. Raises IndexWriteError
    when the resume area cannot be written (disk full, read-only): failing early beats failing at the save.
    """
    n, dimension = len(passages), encoder.dimension
    out = np.zeros((n, dimension), dtype=np.float32)
    if not n:
        return out, 0
    area = _resume_area(index_dir, encoder, config)
    lengths = [len(p.title) + len(p.text) for p in passages]
    order = sorted(range(n), key=lambda i: -lengths[i])  # stable: ties keep passage order
    size = max(1, config.embed_batch_size) * max(1, config.embed_chunk_batches)
    todo, resumed = [], 0
    for number, start in enumerate(range(0, n, size)):
        rows = order[start : start + size]
        digest = hashlib.sha256()
        for i in rows:
            digest.update(passage_input(passages[i].title, passages[i].text).encode("utf-8") + b"\0")
        name = f"chunk-{number:06d}-{digest.hexdigest()[:16]}.npy"
        done = _read_chunk(area / name, len(rows), dimension)
        if done is None:
            todo.append((rows, name))
        else:
            out[rows] = done
            resumed += len(rows)
    if resumed:
        logger.info("Resuming: %d of %d passages were embedded by an interrupted build", resumed, n)
    logger.info("Embedding %d passages in %d chunks of up to %d", n - resumed, len(todo), size)
    from tqdm.auto import tqdm

    bar = tqdm(total=n, initial=resumed, unit="passage", desc="Embedding passages", smoothing=0.05,
               disable=not progress or n - resumed <= PROGRESS_MIN_PASSAGES)
    if resumed:
        bar.set_postfix_str(f"{resumed} resumed")
    try:
        for rows, name in todo:
            vectors = np.asarray(encoder.encode_passages(
                [passages[i].title for i in rows], [passages[i].text for i in rows],
                batch_size=config.embed_batch_size, progress=False,
            ), dtype=np.float32)
            if vectors.shape != (len(rows), dimension):
                raise ValueError(f"The encoder returned vectors of shape {vectors.shape} for {len(rows)} passages.")
            _write_chunk(index_dir, area / name, vectors)
            out[rows] = vectors
            bar.update(len(rows))
    finally:
        bar.close()
    return out, resumed


def _resume_area(index_dir: Path, encoder: Encoder, config: Config) -> Path:
    """This build's resume directory (created); areas left by builds with other settings are removed."""
    settings = {
        "model_name": encoder.model_name,
        "encoder": type(encoder).__qualname__,
        "model_package_version": model_package_version(),
        "dimension": encoder.dimension,
        "batch_size": config.embed_batch_size,  # batch composition changes vectors in the last bits
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    root = index_dir / RESUME_DIR
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name != key:
                logger.info("Removing the resume area of a build with other settings: %s", entry)
                shutil.rmtree(entry, ignore_errors=True)
    area = root / key
    try:
        area.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise index_store._write_error(index_dir, exc) from exc
    return area


def _read_chunk(path: Path, n_rows: int, dimension: int) -> np.ndarray | None:
    """A persisted chunk if it is whole and sane; None (and the file removed) otherwise."""
    if not path.is_file():
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
        if (vectors.shape == (n_rows, dimension) and vectors.dtype == np.float32 and np.isfinite(vectors).all()
                and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)):
            return vectors
    except (OSError, ValueError, EOFError):
        pass
    logger.warning("Ignoring a damaged resume chunk %s: it is embedded again", path)
    path.unlink(missing_ok=True)
    return None


def _write_chunk(index_dir: Path, path: Path, vectors: np.ndarray) -> None:
    """Persist one chunk: the final name appears only with the whole, fsynced file behind it."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, vectors, allow_pickle=False)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        index_store._write_bytes(tmp, buffer.getvalue())
        path.unlink(missing_ok=True)
        os.link(tmp, path)
        os.unlink(tmp)
    except OSError as exc:
        raise index_store._write_error(index_dir, exc) from exc


def remove_resume_area(index_dir: Path) -> None:
    """Drop ``index_dir``'s resume area (after a successful build). Best effort."""
    root = Path(index_dir) / RESUME_DIR
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)


def _engine_session(
    engine: str | Any, index_dir: Path, config: Config, encoder: Encoder | None, progress: bool
) -> AbstractContextManager[SplitAndEmbed]:
    if engine == "local":
        return nullcontext(ResumableEngine(index_dir, config, encoder, progress))
    return engine.session(index_dir, config, progress=progress)


def _build_locked(
    source: Path,
    index_dir: Path,
    corpus: IngestResult,
    previous: IndexStore | None,
    config: Config,
    embed: SplitAndEmbed,
    lock: IndexLock,
    start: float,
) -> BuildReport:
    documents = corpus.documents
    skipped_files = _skipped_hashes(source, config, documents)
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
    encoder = _stored_query_encoder(previous, config)
    report.encoder_stored = previous is not None and encoder is None

    if (
        previous is not None
        and encoder is not None
        and not (report.added or report.changed or report.removed)
        and previous.manifest.get("skipped_files", {}) == skipped_files
        and previous.manifest.get("extractors", {}) == corpus.extractors
    ):
        report.up_to_date, report.version = True, previous.version
        report.n_passages = len(previous.passages)
        report.no_text = [d.doc_id for d in documents if not previous.rows_of(d.doc_id)]
        logger.info("Index %s is up to date", index_dir)
        remove_resume_area(index_dir)  # a killed build of a corpus that has since been reverted
        return report

    unchanged = set(report.unchanged)
    passages, vectors, report.passages_embedded = _passages_and_vectors(documents, unchanged, previous, embed)
    encoder = encoder or export_query_encoder(config.model_name)
    report.passages_resumed = int(getattr(embed, "resumed", 0))
    report.passages_embedded -= report.passages_resumed
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
        extractors=corpus.extractors,
        query_encoder=encoder,
    )
    remove_resume_area(index_dir)
    return report


def _stored_query_encoder(previous: IndexStore | None, config: Config) -> QueryEncoderExport | None:
    """The previous version's query encoder when it is current (same spec as an export made today), to be
    stored again (hard-linked) in the next version; None when the build must take a fresh export."""
    if previous is None or query_encoder_problems(previous.manifest, config):
        return None
    stored = QueryEncoderSpec.from_dict(previous.manifest[QUERY_ENCODER])
    if stored != query_encoder_spec(config.model_name):
        return None
    return QueryEncoderExport(stored, previous.path / ENCODER_MODEL, previous.path / ENCODER_TOKENIZER)


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
    readers = extractor_changes(manifest.get("extractors", {}))
    if readers:  # the same files may now read differently: the build re-reads them all
        return IndexStatus(False, "; ".join(readers))
    problems = query_encoder_problems(manifest, config)
    if problems:
        return IndexStatus(False, "the index needs a build: " + "; ".join(problems))
    try:
        current = query_encoder_spec(config.model_name)
    except ModelLoadError as exc:
        return IndexStatus(False, str(exc))
    if QueryEncoderSpec.from_dict(manifest[QUERY_ENCODER]) != current:
        return IndexStatus(False, "the index's query encoder was exported from another model version or format")
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


def _reuse(previous: IndexStore | None) -> Reuse | None:
    """The previous index's documents, whose extraction ingest may take over for unchanged files."""
    if previous is None:
        return None
    extractors = previous.manifest.get("extractors")
    return Reuse(previous.documents, extractors if isinstance(extractors, dict) else {})


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
