"""The ONNX runtime of the encoder: each index's query encoder, and the opt-in int8 builder backend.

Builds embed passages with sentence-transformers (torch, ``qa.embed.encoders``), the reference. Questions,
and the sentences the answer stage compares with them, are embedded by the index's own **query encoder**:
the same weights exported to ONNX in fp32 when the index is built (``export_query_encoder``), stored in the
index version (``encoder/``, checksummed in the manifest) and run by onnxruntime with the ``tokenizers``
package (``load_query_encoder``). Its vectors match sentence-transformers' (cosine >= 0.9999, checked when
the export is made and in tests/test_embed.py), and answering a question then imports neither torch,
transformers nor sentence-transformers: a cold `qa ask` starts in about a second instead of seven. So this
module imports torch, transformers and onnx only inside the export functions (build time).

The builder's other backend, ``onnx-int8`` (``qa.embed.get_encoder(model, "onnx-int8")``): the same
weights exported to ONNX and dynamically quantised to int8 (``MatMulInteger``), run by onnxruntime; about
twice as fast on CPU for a small quality cost (bench/results/embed_speed.md). The quantised file is made
once from the packaged weights (needs torch and transformers, about a minute) and cached under
``$QA_CACHE_DIR`` (default ``~/.cache/qa``, ``cache_dir``). Its vectors differ slightly from the fp32
ones, so the backend is part of the encoder's ``model_name`` (``<model>+onnx-int8``) and an index embedded
with one backend is never silently extended with the other.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from qa import files
from qa.config import MODEL_NAME
from qa.embed.encoders import (
    KNOWN_DIMENSIONS,
    QUERY_THREADS,
    Encoder,
    _BatchedEncoder,
    _model_dir,
    backend_model_name,
    model_package_version,
    sentence_transformer_encoder,
)
from qa.errors import ModelLoadError
from qa.onnx_session import cpu_session

logger = logging.getLogger(__name__)

ONNX_INT8_FILE = "model-int8.onnx"
ONNX_FP32_FILE = "model-fp32.onnx"
MAX_SEQ_LENGTH = 256  # tokens, as the packaged sentence-transformers config truncates
RECENT_TEXTS = 8192  # vectors OnnxEncoder.encode_queries keeps for reuse (~12.6 MB at 384 dimensions)
# Bump when the query encoder export changes (graph, opset, inputs): builds then export and store it again.
QUERY_ENCODER_FORMAT = 2  # 2: exported with eager attention (no SDPA NaN guards)
QUERY_ENCODER_MIN_COSINE = 0.9999  # an export whose vectors differ more from sentence-transformers' is refused
_EXPORT_CHECK_TEXTS = (  # short and long (truncated at max_seq_length) texts the export is checked on
    "Who backed the rebels?",
    "Government forces retook the town of Qusayr from the rebels after a three-week siege.",
    "Qusayr. " + "The town lies on the road from Damascus to the coast, close to the Lebanese border, and the "
    "rebels used it to smuggle weapons and fighters from Lebanon. " * 12,
)


class OnnxEncoder(_BatchedEncoder):
    """An ONNX export of a BERT-style sentence encoder run by onnxruntime: mean pooling, then L2 norm.

    Inputs are tokenised with the model's own ``tokenizer.json`` and truncated to ``max_seq_length`` tokens
    like sentence-transformers does.
    """

    def __init__(self, session: object, tokenizer: object, model_name: str, dimension: int,
                 max_seq_length: int = MAX_SEQ_LENGTH) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._model_name = model_name
        self._dimension = dimension
        self._max_seq_length = max_seq_length
        self._input_names = {i.name for i in session.get_inputs()}  # type: ignore[attr-defined]
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()  # text -> vector, least recently used first
        self._recent_lock = threading.Lock()

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 1) -> np.ndarray:
        """Embed questions (and the answer stage's sentences) one text per run, unpadded.

        A batch pads every text to its longest: the question and the ~10 sentences the answer stage embeds
        per seeds question came to 700 tokens instead of 370, and single runs took 36% less CPU (one thread,
        where batching saves nothing else). Each vector is then also independent of the batch it came in,
        which is what lets the last ``RECENT_TEXTS`` vectors be reused exactly: the answer stage embeds the
        sentences of the passages it reads, and the same passages come back for many questions (and the
        question itself was embedded by the search a moment before).
        """
        texts = list(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        missing: list[int] = []
        with self._recent_lock:
            for i, text in enumerate(texts):
                vector = self._recent.get(text)
                if vector is None:
                    missing.append(i)
                else:
                    self._recent.move_to_end(text)
                    out[i] = vector
        if missing:
            fresh = self._encode([texts[i] for i in missing], batch_size, False)
            with self._recent_lock:
                for i, vector in zip(missing, fresh, strict=True):
                    out[i] = vector
                    self._recent[texts[i]] = vector.copy()
                    self._recent.move_to_end(texts[i])
                while len(self._recent) > RECENT_TEXTS:
                    self._recent.popitem(last=False)
        return out

    def _prepare(self, inputs: list[str]) -> Sequence[Any]:
        return self._tokenizer.encode_batch(inputs)  # type: ignore[attr-defined]

    def _length(self, item: Any) -> int:
        return len(item.ids)

    def _embed(self, prepared: Sequence[Any], rows: list[int]) -> np.ndarray:
        width = len(prepared[rows[0]].ids)  # longest first, so the first row is the widest
        ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for j, i in enumerate(rows):
            row_ids = prepared[i].ids
            ids[j, : len(row_ids)] = row_ids
            mask[j, : len(row_ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._input_names})[0]  # type: ignore[attr-defined]
        weights = mask[:, :, None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


def _onnx_tokenizer(path: Path, max_seq_length: int) -> Any:
    """The model's fast tokenizer, truncating like sentence-transformers (longest first, max_seq_length tokens
    with [CLS]/[SEP]) and padding nothing (the encoder pads each batch itself)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_seq_length)
    tokenizer.no_padding()
    return tokenizer


def _session(path: Path, threads: int) -> Any:
    # Idle threads sleep rather than spin: the other core is busy with another request or the reader.
    return cpu_session(path, threads, spin=False)


@dataclass(frozen=True)
class QueryEncoderSpec:
    """What an index's query encoder is, recorded in its manifest as ``query_encoder`` (with its files).

    A build compares the stored spec with ``query_encoder_spec(model_name)`` and stores a new export when
    they differ (another model package version, or a new ``QUERY_ENCODER_FORMAT``).
    """

    model_name: str
    model_package_version: str | None
    dimension: int
    max_seq_length: int
    format: int = QUERY_ENCODER_FORMAT
    runtime: str = "onnxruntime"
    precision: str = "fp32"
    pooling: str = "mean"  # over the attention mask, then L2-normalised

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> QueryEncoderSpec:
        """The spec a manifest records; TypeError/ValueError when it is not one (a damaged manifest)."""
        if not isinstance(data, dict):
            raise TypeError(f"query_encoder is {type(data).__name__}, expected an object")
        names = [f.name for f in fields(cls)]
        missing = sorted(set(names) - set(data))
        if missing:
            raise ValueError(f"query_encoder lacks {missing}")
        values = {name: data[name] for name in names}
        for name, value in values.items():
            if name in ("dimension", "max_seq_length", "format"):
                ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
            else:
                ok = isinstance(value, str) or (name == "model_package_version" and value is None)
            if not ok:
                raise ValueError(f"query_encoder field {name!r} is {value!r}")
        return cls(**values)


@dataclass(frozen=True)
class QueryEncoderExport:
    """An exported query encoder, ready to be stored in an index version (``qa.index.save.save_index``)."""

    spec: QueryEncoderSpec
    model: Path  # the ONNX file (last_hidden_state of the transformer, pooled by OnnxEncoder)
    tokenizer: Path  # the model's tokenizer.json


def query_encoder_spec(model_name: str = MODEL_NAME) -> QueryEncoderSpec:
    """The spec an export of ``model_name`` has today, from the model's config files (no torch).

    Raises ModelLoadError when the model is missing or is not a mean-pooling sentence-transformers model
    (the only kind the ONNX query encoder reproduces).
    """
    model_dir = _model_dir(model_name)
    try:
        st_config = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{model_dir} is not a sentence-transformers model directory ({exc}).") from exc
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode_") and v}
    if modes != {"pooling_mode_mean_tokens"}:
        raise ModelLoadError(f"{model_name} pools with {sorted(modes)}; the ONNX query encoder does mean pooling "
                             "only: use a mean-pooling sentence-transformers model.")
    version = model_package_version() if model_name == MODEL_NAME else None
    return QueryEncoderSpec(model_name, version, int(pooling["word_embedding_dimension"]),
                            int(st_config.get("max_seq_length") or MAX_SEQ_LENGTH))


def export_query_encoder(model_name: str = MODEL_NAME) -> QueryEncoderExport:
    """The fp32 ONNX export of ``model_name`` for an index's query encoder, made once and cached.

    Made with torch (build time only) under ``cache_dir()/onnx/``, and kept only if its vectors match
    sentence-transformers' on short and truncated long texts (cosine >= QUERY_ENCODER_MIN_COSINE). A cached
    export is reused while its recorded spec and sha256 still hold; otherwise it is made again. Raises
    ModelLoadError when torch/transformers/onnx are missing or the export does not match.
    """
    spec = query_encoder_spec(model_name)
    model_dir = _model_dir(model_name)
    version = spec.model_package_version or _weights_key(model_dir)
    folder = cache_dir() / "onnx" / f"{Path(model_name).name}-{version}"
    target, record = folder / ONNX_FP32_FILE, folder / f"{ONNX_FP32_FILE}.json"
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        if stored.get("spec") == spec.to_dict() and stored.get("sha256") == files.sha256_file(target):
            return QueryEncoderExport(spec, target, model_dir / "tokenizer.json")
    except (OSError, ValueError, AttributeError):
        pass
    import warnings

    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes: not for users
        warnings.simplefilter("ignore")
        _export_onnx(model_dir, target, quantize=False)
    reference = sentence_transformer_encoder(model_name)
    exported = OnnxEncoder(_session(target, 1), _onnx_tokenizer(model_dir / "tokenizer.json", spec.max_seq_length),
                           model_name, spec.dimension, spec.max_seq_length)
    texts = list(_EXPORT_CHECK_TEXTS)
    cosine = np.sum(exported.encode_queries(texts) * reference.encode_queries(texts), axis=1)
    if float(cosine.min()) < QUERY_ENCODER_MIN_COSINE:
        target.unlink(missing_ok=True)
        raise ModelLoadError(
            f"The ONNX export of {model_name} gives other vectors than sentence-transformers (cosine "
            f"{float(cosine.min()):.6f} < {QUERY_ENCODER_MIN_COSINE}): check the torch/onnxruntime versions "
            "against pyproject.toml."
        )
    files.write_atomic(record, json.dumps({"spec": spec.to_dict(), "sha256": files.sha256_file(target),
                                           "min_cosine": round(float(cosine.min()), 7)}).encode("utf-8"))
    logger.info("Exported the query encoder of %s to %s (min cosine to sentence-transformers %.6f)",
                model_name, target, float(cosine.min()))
    return QueryEncoderExport(spec, target, model_dir / "tokenizer.json")


def _weights_key(model_dir: Path) -> str:
    """A cache key for a local model directory: the hash of its weights and config."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"):
        if (model_dir / name).is_file():
            digest.update(name.encode() + files.sha256_file(model_dir / name).encode())
    return "local-" + digest.hexdigest()[:16]


_QUERY_ENCODERS: dict[tuple[str, str, QueryEncoderSpec], OnnxEncoder] = {}
_QUERY_ENCODERS_LOCK = threading.Lock()


def load_query_encoder(model: Path, tokenizer: Path, spec: QueryEncoderSpec, model_sha256: str,
                       tokenizer_sha256: str) -> Encoder:
    """The ONNX query encoder stored in an index version; one per distinct file content per process.

    ``model_sha256``/``tokenizer_sha256`` are the checksums the manifest records (verified by the index
    load): versions that share an export (every build of one model) share one loaded session. One thread per
    call: query batches are small, and concurrent questions each keep a core busy. Raises ModelLoadError
    when onnxruntime cannot read the file.
    """
    key = (model_sha256, tokenizer_sha256, spec)
    with _QUERY_ENCODERS_LOCK:
        encoder = _QUERY_ENCODERS.get(key)
        if encoder is None:
            try:
                session = _session(model, QUERY_THREADS)
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelLoadError(f"Could not load the query encoder {model} ({exc}): run `qa build` to "
                                     "store it again.") from exc
            encoder = OnnxEncoder(session, _onnx_tokenizer(tokenizer, spec.max_seq_length), spec.model_name,
                                  spec.dimension, spec.max_seq_length)
            _QUERY_ENCODERS[key] = encoder
    return encoder


def cache_dir() -> Path:
    """Where derived model files (the int8 ONNX export) are kept: ``$QA_CACHE_DIR`` or ``~/.cache/qa``."""
    return Path(os.environ.get("QA_CACHE_DIR") or Path.home() / ".cache" / "qa")


def export_onnx_int8(model_dir: Path, target: Path) -> Path:
    """Export the transformer of ``model_dir`` to ONNX and quantise its weights to int8 (dynamic, per channel).

    Writes through a temporary file and renames, so a crash never leaves a half-written model behind.
    """
    return _export_onnx(model_dir, target, quantize=True)


def _export_onnx(model_dir: Path, target: Path, quantize: bool) -> Path:
    """Export the transformer of ``model_dir`` (its last hidden state) to ONNX at ``target``, in fp32 or
    dynamically quantised to int8; through a temporary file and a rename, so a crash leaves no half file."""
    try:
        import torch
        from transformers import AutoModel

        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic
        import onnx  # noqa: F401 - torch.onnx.export needs it to write the model
    except ImportError as exc:
        raise ModelLoadError(
            "Exporting the ONNX encoder needs torch, transformers, onnx and onnxruntime: "
            "`pip install torch transformers onnx onnxruntime`."
        ) from exc

    class _LastHidden(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    target.parent.mkdir(parents=True, exist_ok=True)
    fp32 = target.with_name(f".{target.stem}-fp32-{os.getpid()}.onnx")
    tmp = target.with_name(f".{target.stem}-{os.getpid()}.tmp.onnx")
    logger.info("Exporting %s to %s ONNX at %s (once)", model_dir, "int8" if quantize else "fp32", target)
    try:
        # Eager attention: the default (SDPA) exports NaN guards (IsNaN/Where) around every softmax, which cost
        # the reader ~8.5% CPU per window (training/export_reader.py); the math is the same.
        model = _LastHidden(AutoModel.from_pretrained(str(model_dir), local_files_only=True,
                                                      attn_implementation="eager")).eval()
        dummy = torch.ones((2, 8), dtype=torch.long)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        with torch.no_grad():
            torch.onnx.export(
                model, (dummy, dummy, torch.zeros_like(dummy)), str(fp32), input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
                opset_version=17, dynamo=False,
            )
        if quantize:
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        else:
            os.replace(fp32, tmp)
        os.replace(tmp, target)
    finally:
        fp32.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return target


def onnx_int8_encoder(model_name: str, model_dir: Path) -> Encoder:
    """The int8 builder encoder of ``model_name`` (``qa.embed.get_encoder(model_name, "onnx-int8")``, which
    caches it): exported once to ``cache_dir()/onnx/`` and reused. Raises ModelLoadError when onnxruntime or
    tokenizers is missing or the cached file cannot be loaded."""
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError("the onnx-int8 encoder backend needs onnxruntime and tokenizers: "
                             "`pip install onnxruntime tokenizers`.") from exc
    version = model_package_version() if model_name == MODEL_NAME else "local"
    path = cache_dir() / "onnx" / f"{Path(model_name).name}-{version}" / ONNX_INT8_FILE
    if not path.is_file():
        export_onnx_int8(model_dir, path)
    tokenizer = _onnx_tokenizer(model_dir / "tokenizer.json", MAX_SEQ_LENGTH)
    try:
        session = cpu_session(path)
    except Exception as exc:  # a damaged cached file: say where it is so it can be deleted
        raise ModelLoadError(f"Could not load the int8 ONNX encoder {path} ({exc}); delete it to re-export.") from exc
    dimension = int(session.get_outputs()[0].shape[-1] or KNOWN_DIMENSIONS.get(model_name, 0))
    if not dimension:
        raise ModelLoadError(f"{path} does not report an embedding dimension; delete it to re-export.")
    return OnnxEncoder(session, tokenizer, backend_model_name(model_name, "onnx-int8"), dimension)
