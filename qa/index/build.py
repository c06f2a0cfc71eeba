"""Build or update the index from a folder of articles (or a .jsonl corpus), incrementally.

Documents whose file hash is unchanged keep their passages and vectors from the previous index version, so
only added or changed documents are split and embedded. The BM25 index is rebuilt over all passages every
time (it takes milliseconds). A build with nothing to do writes nothing.

A build holds the index directory's lock (``qa.index.lock.index_lock``) from start to end: a second build
into the same directory fails at once with IndexLockedError rather than racing the first one.

Every new version stores the query encoder (``qa.embed.export_query_encoder``: the embedding model in
ONNX, so questions never load torch). It is taken from the previous version when that one is current, from
the export cache otherwise (exported once per model version, with torch). An index built before qa stored
query encoders is not up to date: the next build writes a version that adds it and re-embeds nothing.

Splitting and embedding the new documents is the engine's job (qa.index.engine): this process by default
(``engine="local"``, resumable through ``.partial/``: qa.index.resume), or Ray workers across a cluster
(``engine="ray"``: qa.index.ray). Either way the rest of the build (reuse, BM25, the atomic save and its
manifest) is this module's. Whether an index is current without building is qa.index.status.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.config import DEFAULT_CONFIG, Config
from qa.embed import (
    Encoder,
    QueryEncoderExport,
    QueryEncoderSpec,
    export_query_encoder,
    model_package_version,
    query_encoder_spec,
)
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError, IngestError
from qa.index.engine import Engine, EngineName, LocalEngine, SplitAndEmbed
from qa.index.layout import ENCODER_MODEL, ENCODER_TOKENIZER, QUERY_ENCODER
from qa.index.lexical import LexicalIndex
from qa.index.load import IndexStore, load_index
from qa.index.lock import IndexLock, index_lock
from qa.index.manifest import query_encoder_problems
from qa.index.resume import remove_resume_area
from qa.index.save import clean_stale, save_index
from qa.index.status import IndexStatus, index_status
from qa.ingest import IngestResult, Reuse, Skipped, article_suffixes, file_hashes, load_corpus
from qa.types import Document, Passage

__all__ = ["ENGINES", "BuildReport", "IndexStatus", "build_index", "engine_named", "index_status"]

logger = logging.getLogger(__name__)

ENGINES: tuple[EngineName, ...] = ("local", "ray")


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


def build_index(
    source: str | Path,
    index_dir: str | Path,
    config: Config = DEFAULT_CONFIG,
    progress: bool = True,
    encoder: Encoder | None = None,
    *,
    engine: EngineName | Engine = "local",
    ray_address: str | None = None,
) -> BuildReport:
    """Index ``source`` (a folder of articles or a .jsonl corpus) into ``index_dir``, reusing what it can.

    ``engine="ray"`` splits and embeds on a Ray cluster (``ray_address``, default: a local one) instead of in
    this process, with the same result; pass a ``qa.index.ray.RayEngine`` (or any qa.index.engine.Engine)
    for more options (workers, shard directory). ``encoder`` is used by the local engine only.

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
    if isinstance(engine, str):
        engine = engine_named(engine, ray_address=ray_address)
    elif not isinstance(engine, Engine):
        raise ValueError(f"engine must be one of {ENGINES} or a qa.index.engine.Engine, got {engine!r}.")
    # Both only read (an index is read without the lock, as `qa ask` does): the lock is taken to write. PDF,
    # Word and HTML files unchanged since the previous index are not read again: their extraction is reused.
    previous = _previous_index(index_dir, config)
    corpus = load_corpus(source, config, _reuse(previous))
    if not corpus.documents:
        raise IngestError(
            f"No readable articles in {source} ({len(corpus.skipped)} skipped): "
            f"add article files ({', '.join(article_suffixes())}) or pass another --articles folder."
        )
    _check_unique(corpus.documents)
    with index_lock(index_dir) as lock:
        clean_stale(index_dir)  # safe: no other build can be writing here while we hold the lock
        with engine.session(index_dir, config, encoder=encoder, progress=progress) as embed:
            report = _build_locked(source, index_dir, corpus, previous, config, embed, lock, start)
    report.seconds = time.perf_counter() - start
    logger.info("Built %s: %s", index_dir, report.summary())
    return report


def engine_named(name: str, *, ray_address: str | None = None) -> Engine:
    """The engine called ``name`` (one of ENGINES); ``ray_address`` is the Ray cluster (None: a local Ray)."""
    if name == "local":
        return LocalEngine()
    if name == "ray":
        from qa.index.ray import RayEngine  # Ray is optional: imported when a Ray build starts

        return RayEngine(address=ray_address)
    raise ValueError(f"engine must be one of {ENGINES} or a qa.index.engine.Engine, got {name!r}.")


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
    passages, vectors, fresh, report.passages_resumed = _passages_and_vectors(documents, unchanged, previous, embed)
    encoder = encoder or export_query_encoder(config.model_name)
    report.passages_embedded = fresh - report.passages_resumed
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
) -> tuple[list[Passage], np.ndarray, int, int]:
    """All passages in document order with their vectors, how many are new, and how many of those were
    resumed (not embedded by this build); only new documents go through ``embed``."""
    new_docs = [doc for doc in documents if previous is None or doc.doc_id not in unchanged]
    fresh: list[Passage] = []
    resumed = 0
    if new_docs:
        embedded = embed(new_docs)
        fresh, fresh_vectors, resumed = embedded.passages, embedded.vectors, embedded.resumed
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
    return passages, vectors, len(new_at), resumed


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
