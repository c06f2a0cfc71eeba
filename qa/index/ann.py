"""FAISS index types by corpus size: exact search for small corpora, approximate search for large ones.

All indexes hold L2-normalised float32 vectors and compare them by inner product, which then equals cosine
similarity. Four kinds:

- ``flat``: ``IndexFlatIP``, exact. Search cost grows linearly with the corpus (about 1.5 KB and one dot
  product of 384 floats per passage per query), which is fine up to tens of thousands of passages.
- ``hnsw``: ``IndexHNSWFlat`` (inner product) with ``M=32`` links per node and ``efConstruction=80``. Keeps the
  full vectors plus about ``2 * M * 4`` bytes of graph per passage; search cost grows roughly with log(n).
  ``efSearch`` (the candidate list length at query time) trades latency for recall and is set on load.
- ``ivfflat``: ``IndexIVFFlat``: vectors are assigned to ``nlist`` k-means cells (about sqrt(n)) and kept
  exact; a query scans the ``nprobe`` cells nearest to it. Builds in about a minute at 1M passages on 2 cores
  (k-means on a sample, then one assignment pass), several times faster than an HNSW graph, and needs no
  graph memory (about 1.5 KB per passage, as flat).
- ``ivfpq``: ``IndexIVFPQ``: vectors are assigned to ``nlist`` k-means cells and compressed to ``pq_m`` bytes
  (product quantisation, 8 bits per sub-vector), so a 384-dim vector takes 48 bytes instead of 1,536. For
  when memory matters more than recall; ``nprobe`` cells are visited per query.

``auto`` picks ``flat`` up to ``FLAT_MAX_PASSAGES``, ``hnsw`` up to ``IVFFLAT_MIN_PASSAGES`` and ``ivfflat``
above. On this machine HNSW keeps recall@10 >= 0.95 of exact search up to 100k passages, but at 1M synthetic
passages M=32 reaches only 0.937 (efSearch=1024); IVF-Flat with nlist=1000 reaches 0.968 at nprobe=32 and
0.981 at nprobe=64 there (bench/results/scale.md). IVF-PQ without re-ranking stays below 0.7 and is only for
when memory matters more than recall.

``describe(index)`` gives the ``index_type`` and ``params`` recorded in the manifest; ``configure(index,
params)`` re-applies the query-time parameters after ``faiss.read_index``.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, get_args

import faiss
import numpy as np

logger = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw", "ivfflat", "ivfpq"]
INDEX_KINDS: tuple[str, ...] = get_args(IndexKind)

# Names recorded in the manifest. "flat-ip" is what every index written before qa.index.ann existed says.
FLAT_TYPE = "flat-ip"
HNSW_TYPE = "hnsw-ip"
IVFPQ_TYPE = "ivfpq-ip"
IVFFLAT_TYPE = "ivfflat-ip"
INDEX_TYPES: tuple[str, ...] = (FLAT_TYPE, HNSW_TYPE, IVFFLAT_TYPE, IVFPQ_TYPE)

# Exact search stays well under 10 ms per query below this many passages on 2 cores (bench/scale.py).
FLAT_MAX_PASSAGES = 50_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# efSearch by size (bench/results/scale.md): 128 gives recall@10 0.998 at 8.5k real and 0.988 at 100k synthetic
# passages; at 1M synthetic it gives 0.84 and 1024 gives 0.937 for 2.3 ms a query (query embedding takes ~40).
HNSW_EF_SEARCH = 128
HNSW_EF_SEARCH_LARGE = 1024
HNSW_LARGE_PASSAGES = 200_000  # above this many passages, HNSW_EF_SEARCH_LARGE
IVFPQ_M = 48  # bytes per vector; must divide the dimension (384 = 48 x 8)
IVFPQ_NBITS = 8
IVFPQ_NPROBE = 32
IVF_MIN_POINTS_PER_CELL = 39  # faiss warns below 39 training points per centroid
IVFFLAT_NPROBE = 64  # 1M synthetic, nlist=1000: recall@10 0.968 at 32, 0.981 at 64, 0.990 at 128
IVFFLAT_MIN_PASSAGES = 200_000  # auto: ivfflat above this many passages (HNSW M=32 falls below 0.95 there)


def choose_kind(n_vectors: int, kind: IndexKind = "auto", flat_max: int = FLAT_MAX_PASSAGES) -> str:
    """The concrete kind (``flat``, ``hnsw``, ``ivfflat`` or ``ivfpq``) for ``n_vectors`` passages."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}.")
    if kind != "auto":
        return kind
    if n_vectors <= flat_max:
        return "flat"
    return "hnsw" if n_vectors <= max(flat_max, IVFFLAT_MIN_PASSAGES) else "ivfflat"


def default_nlist(n_vectors: int) -> int:
    """IVF cells: about sqrt(n) (1,000 cells of ~1,000 vectors at 1M; k-means training stays minutes on 2
    cores), at least 1 and never fewer than 39 training points per cell."""
    return max(1, min(int(math.sqrt(n_vectors)), n_vectors // IVF_MIN_POINTS_PER_CELL))


def default_ef_search(n_vectors: int) -> int:
    """HNSW candidate list length at query time for a corpus of ``n_vectors`` (measured in bench/scale.py)."""
    return HNSW_EF_SEARCH if n_vectors <= HNSW_LARGE_PASSAGES else HNSW_EF_SEARCH_LARGE


def make_index(
    vectors: np.ndarray,
    kind: IndexKind = "auto",
    *,
    flat_max: int = FLAT_MAX_PASSAGES,
    hnsw_m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
    ef_search: int | None = None,
    nlist: int | None = None,
    pq_m: int = IVFPQ_M,
    nprobe: int = IVFPQ_NPROBE,
    ivf_nprobe: int | None = None,
    train_size: int = 64_000,
    seed: int = 0,
) -> faiss.Index:
    """Build a FAISS inner-product index over L2-normalised ``vectors`` (rows in passage order).

    ``kind="auto"`` picks exact ``flat`` search up to ``flat_max`` vectors, ``hnsw`` up to
    ``IVFFLAT_MIN_PASSAGES`` and ``ivfflat`` above. ``ivfpq`` and
    ``ivfflat`` train on at most ``train_size`` vectors (a seeded sample); ``nprobe`` is IVF-PQ's cells per
    query, ``ivf_nprobe`` IVF-Flat's. Raises ValueError for vectors that are not a
    2-D array of unit rows, for an unknown kind, or for an ``ivfpq`` whose ``pq_m`` does not divide the
    dimension or with fewer vectors than it needs to train.
    """
    vectors = _check_vectors(vectors)
    n, dimension = vectors.shape
    concrete = choose_kind(n, kind, flat_max)
    if concrete == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dimension)
    elif concrete == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search or default_ef_search(n)
    elif concrete == "ivfflat":
        index = _trained_ivfflat(vectors, nlist or default_nlist(n), ivf_nprobe or IVFFLAT_NPROBE, train_size, seed)
    else:
        index = _trained_ivfpq(vectors, nlist or default_nlist(n), pq_m, nprobe, train_size, seed)
    if n:
        index.add(vectors)
    params = ", ".join(f"{name}={value}" for name, value in describe(index)["params"].items())
    logger.info("Built a %s index over %d vectors%s", concrete, n, f" ({params})" if params else "")
    return index


def _training_sample(vectors: np.ndarray, nlist: int, train_size: int, seed: int) -> np.ndarray:
    n = len(vectors)
    needed = max(nlist * IVF_MIN_POINTS_PER_CELL, 2**IVFPQ_NBITS)
    if n < needed:
        raise ValueError(
            f"An IVF index with nlist={nlist} needs at least {needed} vectors to train, got {n}: "
            "use kind='flat' or 'hnsw' for a corpus this small."
        )
    if n <= train_size:
        return vectors
    rows = np.sort(np.random.default_rng(seed).choice(n, size=train_size, replace=False))
    return vectors[rows]


def _trained_ivfflat(vectors: np.ndarray, nlist: int, nprobe: int, train_size: int, seed: int) -> faiss.Index:
    dimension = vectors.shape[1]
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(_training_sample(vectors, nlist, max(train_size, nlist * IVF_MIN_POINTS_PER_CELL), seed))
    index.nprobe = min(nprobe, nlist)
    return index


def _trained_ivfpq(
    vectors: np.ndarray, nlist: int, pq_m: int, nprobe: int, train_size: int, seed: int
) -> faiss.Index:
    n, dimension = vectors.shape
    if dimension % pq_m:
        raise ValueError(f"pq_m={pq_m} must divide the vector dimension {dimension}: try 48, 32, 24 or 16.")
    needed = max(nlist * IVF_MIN_POINTS_PER_CELL, 2**IVFPQ_NBITS)
    if n < needed:
        raise ValueError(
            f"An ivfpq index with nlist={nlist} needs at least {needed} vectors to train, got {n}: "
            "use kind='flat' or 'hnsw' for a corpus this small."
        )
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFPQ(quantizer, dimension, nlist, pq_m, IVFPQ_NBITS, faiss.METRIC_INNER_PRODUCT)
    sample = vectors
    if n > train_size:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=train_size, replace=False))
        sample = vectors[rows]
    index.train(sample)
    index.nprobe = min(nprobe, nlist)
    return index  # faiss's Python wrapper keeps a reference to the quantizer on the index


def describe(index: faiss.Index) -> dict[str, Any]:
    """``{"index_type": ..., "params": {...}}`` for the manifest; raises ValueError for other index types."""
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSWFlat):
        return {
            "index_type": HNSW_TYPE,
            "params": {
                "M": int(inner.hnsw.nb_neighbors(1)),
                "efConstruction": int(inner.hnsw.efConstruction),
                "efSearch": int(inner.hnsw.efSearch),
            },
        }
    if isinstance(inner, faiss.IndexIVFFlat):
        return {"index_type": IVFFLAT_TYPE, "params": {"nlist": int(inner.nlist), "nprobe": int(inner.nprobe)}}
    if isinstance(inner, faiss.IndexIVFPQ):
        return {
            "index_type": IVFPQ_TYPE,
            "params": {
                "nlist": int(inner.nlist),
                "pq_m": int(inner.pq.M),
                "nbits": int(inner.pq.nbits),
                "nprobe": int(inner.nprobe),
            },
        }
    if isinstance(inner, faiss.IndexFlatIP):
        return {"index_type": FLAT_TYPE, "params": {}}
    raise ValueError(f"Unsupported FAISS index {type(inner).__name__}: qa writes only {INDEX_TYPES}.")


def configure(index: faiss.Index, params: dict[str, Any]) -> faiss.Index:
    """Apply the query-time parameters recorded in the manifest (``efSearch``, ``nprobe``) to a read index."""
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexHNSWFlat) and "efSearch" in params:
        inner.hnsw.efSearch = int(params["efSearch"])
    elif isinstance(inner, (faiss.IndexIVFPQ, faiss.IndexIVFFlat)) and "nprobe" in params:
        inner.nprobe = int(params["nprobe"])
    return index  # not ``inner``: the downcast wrapper does not own the C++ object, ``index`` does


def index_bytes(index: faiss.Index) -> int:
    """Size of the index as FAISS writes it to disk."""
    return int(faiss.serialize_index(index).nbytes)


def _check_vectors(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[1] == 0:
        raise ValueError(f"Expected a 2-D array with one vector per row, got shape {vectors.shape}.")
    if len(vectors):
        norms = np.linalg.norm(vectors[:: max(1, len(vectors) // 10_000)], axis=1)
        if not np.allclose(norms, 1.0, atol=1e-3):
            raise ValueError(
                "Vectors must be L2-normalised (inner product must equal cosine): use qa.embed.l2_normalise."
            )
    return vectors
