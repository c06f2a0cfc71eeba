"""Resumable embedding: the work of a build that dies is kept on disk, and the next build takes it back.

Both engines persist finished work under the index directory, each file written whole or not at all
(``qa.files.write_atomic``) and named by :func:`content_key`, a hash of everything its contents depend on:

- the local engine (:func:`embed_resumable`) embeds passages in chunks of ``embed_batch_size *
  embed_chunk_batches`` (longest first, so batches pad little) and keeps each finished chunk as
  ``.partial/<settings key>/chunk-<n>-<content key>.npy``. The settings key covers the encoder (name, class,
  model package version, dimension) and the batch size (batch composition changes vectors in the last
  bits); the content key covers the chunk's passage inputs. Passages are already split here, so the split
  settings need not be in the key, and a stub encoder passed in by tests gets an area of its own.
- the Ray engine (qa.index.ray) can only key what the driver has before the workers split: a run of
  documents. Its ``ray-shards/<key>.npz`` key covers the shard's documents, the split settings, the
  model package and the qa version (workers always load the packaged model, so the encoder class is fixed).

The two keep their own file names and contents (a chunk holds vectors of passages in length order; a shard
holds a document run's passages and vectors), because what each can key differs as above; the recipe
that turns settings and contents into a key is this module's, once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from qa import files
from qa.config import Config
from qa.embed import PROGRESS_MIN_PASSAGES, Encoder, model_package_version, passage_input
from qa.errors import IndexWriteError
from qa.index.layout import RESUME_DIR
from qa.types import Passage

logger = logging.getLogger(__name__)


def content_key(settings: Mapping[str, Any] | None, parts: Iterable[bytes] = (), length: int = 16) -> str:
    """The first ``length`` hex digits of sha256 over ``settings`` (as sorted JSON) and each part + NUL."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8") if settings is not None else b"")
    for part in parts:
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:length]


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
        key = content_key(None, (passage_input(passages[i].title, passages[i].text).encode("utf-8") for i in rows))
        name = f"chunk-{number:06d}-{key}.npy"
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
    key = content_key({
        "model_name": encoder.model_name,
        "encoder": type(encoder).__qualname__,
        "model_package_version": model_package_version(),
        "dimension": encoder.dimension,
        "batch_size": config.embed_batch_size,  # batch composition changes vectors in the last bits
    })
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
        raise IndexWriteError.from_os_error(index_dir, exc) from exc
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
    try:
        files.write_atomic(path, buffer.getvalue(), tmp=path.with_name(f".{path.name}.tmp"))
    except OSError as exc:
        raise IndexWriteError.from_os_error(index_dir, exc) from exc


def remove_resume_area(index_dir: Path) -> None:
    """Drop ``index_dir``'s resume area (after a successful build). Best effort."""
    root = Path(index_dir) / RESUME_DIR
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
