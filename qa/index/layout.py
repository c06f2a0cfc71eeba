"""Every name in an index directory, in one place: which version is live, and what a version holds.

Layout::

    index_dir/
      CURRENT                  one line: the name of the live version directory
      CURRENT.tmp              the next CURRENT while it is written (renamed over CURRENT)
      v-<UTC time>-<random>/   one complete, immutable index version
        manifest.json          format, model, dimension, settings, file hashes, readers, counts, checksums
        vectors.faiss          faiss index over L2-normalised float32 vectors (inner product = cosine): exact
                               IndexFlatIP, or HNSW above qa.index.ann.FLAT_MAX_PASSAGES (Config.index_type)
        vectors.npy            the same vectors, raw, reused by incremental builds (memory-mapped on load)
        passages.jsonl         one Passage per line, in vector row order
        passages.offsets.npy   int64 byte offset of every line of passages.jsonl, and its size (n + 1 values)
        passages.docs.npy      int64 per passage: the line of its document in documents.jsonl
        documents.jsonl        one Document per line, paragraphs included (the UI shows whole articles), in
                               the order of the manifest's ``files``
        documents.offsets.npy  int64 byte offset of every line of documents.jsonl, and its size
        bm25/                  LexicalIndex.save (bm25s JSON + .npy), memory-mapped on load and searched
                               without importing bm25s (qa.index.lexical.Postings)
        encoder/model.onnx     the query encoder: the embedding model exported to ONNX (fp32) at build time,
        encoder/tokenizer.json with its tokenizer; described by the manifest's ``query_encoder`` and
                               checksummed like every file, so an index holds everything a question needs
                               and questions never load torch (qa.embed.load_query_encoder)
      .tmp-<random>/           a version being written (renamed to v-* when whole); removed if a save died
      build.lock               held (fcntl.flock) by the one build that may write here (qa.index.lock)
      .partial/<key>/          the local engine's embedded chunks of an unfinished build (qa.index.resume)
      ray-shards/<key>.npz     the Ray engine's finished shards of an unfinished build (qa.index.ray)

Format version 3 (this one) reads passages and documents lazily (qa.index.tables); older versions (1:
everything read into memory; 2: no pages) are refused with IndexMismatchError and `qa build` rebuilds them.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from qa.errors import IndexCorruptError

# 1: passages/documents read whole into memory; 2: + offset tables, read lazily by row; 3: + pages of passages
# and documents (PDF), document author/date, the manifest's "extractors"
FORMAT_VERSION = 3

CURRENT = "CURRENT"
CURRENT_TMP = f"{CURRENT}.tmp"
VERSION_PREFIX = "v-"
TMP_PREFIX = ".tmp-"
LOCK = "build.lock"
RESUME_DIR = ".partial"  # index_dir/.partial/<settings key>/: embedded chunks of an unfinished local build
SHARD_DIR = "ray-shards"  # index_dir/ray-shards/<key>.npz: finished shards of an unfinished Ray build

# The files of one version.
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
QUERY_ENCODER = "query_encoder"  # manifest key: the QueryEncoderSpec and the two files above
# Every version has these (an index with a query encoder has ENCODER_MODEL and ENCODER_TOKENIZER too).
REQUIRED_FILES = (VECTORS_FAISS, VECTORS_NPY, PASSAGES, PASSAGE_OFFSETS, PASSAGE_DOCS, DOCUMENTS, DOCUMENT_OFFSETS)


def new_version_name() -> str:
    """A fresh version directory name: sorts by creation time, unique even for two saves in one second."""
    return f"{VERSION_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


def new_tmp_name() -> str:
    """A fresh name for a version being written."""
    return f"{TMP_PREFIX}{secrets.token_hex(4)}"


def read_current(index_dir: Path) -> str | None:
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


def current_or_none(index_dir: Path) -> str | None:
    """The live version's name, or None when there is none or CURRENT is damaged."""
    try:
        return read_current(index_dir)
    except IndexCorruptError:
        return None


def version_files(directory: Path) -> list[str]:
    """The files of a version directory (relative POSIX paths, sorted), the manifest itself left out."""
    return sorted(
        p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST
    )


def safe_relative(name: object) -> bool:
    """A plain relative path inside the version directory (the manifest must not point elsewhere)."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))
