"""The manifest of an index version: what it records when written, and every check made of it when read.

The manifest says what a version was built from (format, model and its package version, dimension,
settings, source file hashes, readers) and holds the checksum of every other file. Load, `qa check` and the
staleness check all judge an index by the functions here, so the three agree on what "damaged" (a
malformed manifest, a file that does not match its checksum: IndexCorruptError) and "built differently"
(another format, model, dimension or settings: IndexMismatchError) mean.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa import files
from qa.config import MODEL_NAME, MODEL_PACKAGE, Config
from qa.embed import KNOWN_DIMENSIONS, QueryEncoderSpec, model_package_version
from qa.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.index import ann
from qa.index.layout import (
    CURRENT,
    ENCODER_MODEL,
    ENCODER_TOKENIZER,
    FORMAT_VERSION,
    MANIFEST,
    QUERY_ENCODER,
    REQUIRED_FILES,
    read_current,
    safe_relative,
    version_files,
)

logger = logging.getLogger(__name__)


def new_manifest(
    directory: Path,
    config: Config,
    *,
    dimension: int,
    described: dict[str, Any],
    source_files: dict[str, str],
    skipped_files: dict[str, str] | None,
    extractors: dict[str, str] | None,
    counts: dict[str, int],
    build_seconds: float,
    previous: str | None,
    query_encoder: QueryEncoderSpec | None,
) -> dict[str, Any]:
    """The manifest of the version written in ``directory`` (every other file already there: it is hashed)."""
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
        "files": source_files,
        "skipped_files": dict(skipped_files or {}),
        "extractors": dict(sorted((extractors or {}).items())),
        "counts": counts,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(build_seconds, 3),
        "previous_version": previous,  # kept beside this one (for readers still on it); others are pruned
        "checksums": {name: files.sha256_file(directory / name) for name in version_files(directory)},
    }
    if query_encoder is not None:
        manifest[QUERY_ENCODER] = {**query_encoder.to_dict(),
                                   "files": {"model": ENCODER_MODEL, "tokenizer": ENCODER_TOKENIZER}}
    return manifest


def read_manifest(index_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """The live version directory and its manifest, without reading anything else (cheap).

    Raises IndexNotFoundError when there is no index, IndexCorruptError when CURRENT or the manifest is bad.
    """
    index_dir = Path(index_dir)
    version = read_current(index_dir)
    if version is None:
        raise IndexNotFoundError(f"No index at {index_dir}: run `qa build --articles DIR --index {index_dir}`.")
    return index_dir / version, read_manifest_file(index_dir, index_dir / version)


def read_manifest_file(index_dir: Path, version_dir: Path) -> dict[str, Any]:
    """The manifest of ``version_dir`` as a dict; IndexCorruptError when it is missing or not a JSON object."""
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
            if not safe_relative(name) or not (isinstance(digest, str) and len(digest) == 64):
                problems.append(f"{MANIFEST} has a bad checksum entry {name!r}: {digest!r}")
    return problems


def file_problems(version_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Missing, truncated or altered files (checksum mismatch) in a version directory."""
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        return [f"{version_dir / MANIFEST} has no checksums"]
    problems = []
    required = list(REQUIRED_FILES)
    if QUERY_ENCODER in manifest:
        required += [ENCODER_MODEL, ENCODER_TOKENIZER]
    for name in required:
        if name not in checksums:
            problems.append(f"{name} is not listed in the manifest")
    for name, expected in sorted(checksums.items()):
        if not safe_relative(name):
            problems.append(f"the manifest lists {name!r}, which is not a file of the index")
            continue
        path = version_dir / name
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        try:
            actual = files.sha256_file(path)
        except OSError as exc:
            problems.append(f"{path} cannot be read ({exc.strerror or exc})")
            continue
        if actual != expected:
            problems.append(f"{path} does not match its checksum (truncated or edited)")
    return problems


def missing_files(version_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Files the manifest lists that are missing (existence only, cheap; ``file_problems`` hashes them)."""
    checksums = manifest.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        return file_problems(version_dir, manifest)
    return [f"{version_dir / name} is missing" for name in sorted(checksums) if not (version_dir / name).is_file()]


def unlisted_files(version_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Files in the version directory that the manifest does not list (added or renamed by hand)."""
    checksums = manifest.get("checksums")
    listed = set(checksums) if isinstance(checksums, dict) else set()
    try:
        return [f"{version_dir / name} is not listed in the manifest (added by hand?)"
                for name in version_files(version_dir) if name not in listed]
    except OSError:
        return []


def raise_for_manifest(
    index_dir: Path, manifest: dict[str, Any], config: Config, expected_dimension: int | None
) -> None:
    """IndexCorruptError for a malformed manifest, IndexMismatchError for one of another build; else nothing."""
    if manifest.get("format_version") == FORMAT_VERSION:
        problems = manifest_shape_problems(manifest)
        if problems:
            raise corrupt(index_dir, problems)
    problems = manifest_problems(manifest, config, expected_dimension)
    if problems:
        raise IndexMismatchError(
            f"Index at {index_dir} was built with {'; '.join(problems)}. "
            f"Run `qa build --articles DIR --index {index_dir}` to rebuild it with the current settings."
        )


def corrupt(index_dir: Path, problems: list[str]) -> IndexCorruptError:
    """The IndexCorruptError for ``problems`` found in ``index_dir``, saying how to repair it."""
    return IndexCorruptError(
        f"Index at {index_dir} is damaged: {'; '.join(problems)}. "
        f"Run `qa build --articles DIR --index {index_dir}` to repair it."
    )


def warn_package_version(manifest: dict[str, Any]) -> None:
    """Log a warning when the vectors were made with another version of the packaged model than installed."""
    stored = manifest.get("model_package_version")
    installed = model_package_version() if manifest.get("model_package") == MODEL_PACKAGE else None
    if stored and installed and stored != installed:
        logger.warning(
            "Index was embedded with %s %s, %s is installed: run `qa build` if results look off.",
            MODEL_PACKAGE, stored, installed,
        )
