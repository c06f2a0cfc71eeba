"""Dense encoders: an ``Encoder`` protocol and the packaged sentence-transformers model, on two runtimes.

Two modules, one per runtime, because they are used at different times and must not drag each other's
dependencies along:

- ``qa.embed.encoders``: the ``Encoder`` protocol, what every encoder shares (passage input, batching,
  L2 norm, the model's local directory and version) and the sentence-transformers (torch) encoder that
  builds embed passages with.
- ``qa.embed.onnx``: the ONNX runtime: the query encoder exported into each index version, which answers
  questions without torch, and the opt-in ``onnx-int8`` builder backend.

``get_encoder`` (here, as it picks between the two) is the one entry point for a builder's encoder. The
public names of both modules are re-exported, so ``from qa.embed import X`` is all callers need; importing
this package loads no model and imports neither torch nor sentence-transformers.
"""

from __future__ import annotations

import functools

from qa.config import MODEL_NAME
from qa.embed.encoders import (
    EMBED_BACKENDS,
    KNOWN_DIMENSIONS,
    PROGRESS_MIN_PASSAGES,
    QUERY_THREADS,
    EmbedBackend,
    Encoder,
    SentenceTransformerEncoder,
    _check_backend,
    _model_dir,
    backend_model_name,
    l2_normalise,
    model_package_version,
    passage_input,
    sentence_transformer_encoder,
)
from qa.embed.onnx import (
    MAX_SEQ_LENGTH,
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    QUERY_ENCODER_FORMAT,
    QUERY_ENCODER_MIN_COSINE,
    OnnxEncoder,
    QueryEncoderExport,
    QueryEncoderSpec,
    cache_dir,
    export_onnx_int8,
    export_query_encoder,
    load_query_encoder,
    onnx_int8_encoder,
    query_encoder_spec,
)

__all__ = [
    "EMBED_BACKENDS",
    "KNOWN_DIMENSIONS",
    "MAX_SEQ_LENGTH",
    "ONNX_FP32_FILE",
    "ONNX_INT8_FILE",
    "PROGRESS_MIN_PASSAGES",
    "QUERY_ENCODER_FORMAT",
    "QUERY_ENCODER_MIN_COSINE",
    "QUERY_THREADS",
    "EmbedBackend",
    "Encoder",
    "OnnxEncoder",
    "QueryEncoderExport",
    "QueryEncoderSpec",
    "SentenceTransformerEncoder",
    "backend_model_name",
    "cache_dir",
    "export_onnx_int8",
    "export_query_encoder",
    "get_encoder",
    "l2_normalise",
    "load_query_encoder",
    "model_package_version",
    "passage_input",
    "query_encoder_spec",
]


@functools.lru_cache(maxsize=4)
def get_encoder(model_name: str = MODEL_NAME, backend: str = "torch") -> Encoder:
    """Load the encoder once per process (GPU when available for torch); later calls return the same object.

    ``backend`` is ``"torch"`` or ``"onnx-int8"`` (opt-in, chosen by the caller: Config no longer has a field
    for it; bench/embed_speed.py compares the two); the int8 encoder's ``model_name`` is
    ``backend_model_name(model_name, "onnx-int8")``. Raises ModelLoadError when the model
    or a runtime is missing, ValueError for an unknown backend.
    """
    _check_backend(backend)
    if backend == "onnx-int8":
        return onnx_int8_encoder(model_name, _model_dir(model_name))
    return sentence_transformer_encoder(model_name)
