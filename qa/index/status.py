"""Is the index current? From hashes only: no model loaded, no vector read, so it is cheap at start-up.

The app and `qa serve` ask this before answering, and rebuild when the answer is no. An index is stale when
it was built with other settings or a damaged manifest, when its files are missing, when the readers of
its file formats changed, when its query encoder is missing or outdated, or when the source files' hashes
differ from those it records (added, changed, removed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qa.config import DEFAULT_CONFIG, Config
from qa.embed import QueryEncoderSpec, query_encoder_spec
from qa.errors import IndexCorruptError, IndexNotFoundError, ModelLoadError
from qa.index.layout import QUERY_ENCODER
from qa.index.manifest import (
    manifest_problems,
    manifest_shape_problems,
    missing_files,
    query_encoder_problems,
    read_manifest,
)
from qa.ingest import extractor_changes, file_hashes, load_corpus


@dataclass
class IndexStatus:
    """Whether the index reflects the source files, from hashes only (no model, no vectors read)."""

    current: bool
    reason: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


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
    missing = missing_files(version_dir, manifest)
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


def _source_hashes(source: Path, config: Config) -> dict[str, str]:
    """{doc_id: sha256} of the source: file hashes for a folder; record hashes for a .jsonl corpus
    (parsing JSON lines is cheap next to embedding, and gives per-record changes)."""
    if source.is_dir():
        return file_hashes(source, config)
    return {d.doc_id: d.sha256 for d in load_corpus(source, config).documents}
