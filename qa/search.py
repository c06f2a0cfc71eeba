"""Retrieval: the stages that find passages for a question, and the registry of retrieval modes.

Every stage returns ``list[Hit]``, best first: ``sparse`` (BM25 over the lexical index), ``dense`` (FAISS inner
product over normalised MiniLM vectors), ``fuse`` (weighted reciprocal rank fusion of several runs) and
``diverse`` (at most a few passages per article, for the reader).

A retrieval *mode* is one function ``(store, encoder, question, k, config) -> list[Hit]`` registered in
``REGISTRY`` under its name. ``REGISTRY`` is the only place mode names live: the pipeline, `qa eval --mode`,
qa.evaluate and training/calibrate.py all read it. A new mode is one function here plus one registry entry.
``encoder`` is a zero-argument callable so that a mode that does not embed the question (``sparse``) never
loads the query encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from qa.config import Config
from qa.types import Hit

if TYPE_CHECKING:  # annotations only: importing the registry (e.g. for the CLI's --mode choices) stays cheap
    from qa.embed import Encoder
    from qa.index.load import IndexStore

Mode = str  # a key of REGISTRY
DEFAULT_MODE: Mode = "hybrid"


def sparse(store: IndexStore, question: str, depth: int) -> list[Hit]:
    """The ``depth`` best passages by BM25; scores keep ``bm25`` and ``bm25_rank`` for the answer stage and UI."""
    return [
        Hit(store.passages[row], score, {"bm25": score, "bm25_rank": rank})
        for rank, (row, score) in enumerate(store.lexical.search(question, depth), start=1)
    ]


def dense(store: IndexStore, encoder: Encoder, question: str, depth: int) -> list[Hit]:
    """The ``depth`` passages nearest the question's vector; ``dense`` (cosine) is a confidence feature."""
    query = encoder.encode_queries([question])
    return [
        Hit(store.passages[row], score, {"dense": score, "dense_rank": rank})
        for rank, (row, score) in enumerate(store.dense_search(query, depth)[0], start=1)
    ]


def fuse(runs: Mapping[str, list[Hit]], weights: Mapping[str, float], rrf_k: int, depth: int) -> list[Hit]:
    """Weighted reciprocal rank fusion: score = sum over runs of weight / (rrf_k + rank)."""
    fused: dict[str, float] = {}
    scores: dict[str, dict[str, float]] = {}
    passages = {}
    for name, hits in runs.items():
        for rank, hit in enumerate(hits, start=1):
            pid = hit.passage.passage_id
            fused[pid] = fused.get(pid, 0.0) + weights.get(name, 1.0) / (rrf_k + rank)
            scores.setdefault(pid, {}).update(hit.scores)
            passages[pid] = hit.passage
    ranked = sorted(fused, key=lambda pid: -fused[pid])[:depth]
    return [Hit(passages[pid], fused[pid], {**scores[pid], "fused": fused[pid]}) for pid in ranked]


def diverse(hits: list[Hit], n: int, per_doc: int) -> list[Hit]:
    """The best n hits with at most per_doc from one article, so that answers from several sources (and
    disagreements between them) can be seen; falls back to the plain order when articles run out."""
    counts: dict[str, int] = {}
    chosen = []
    for hit in hits:
        if counts.get(hit.passage.doc_id, 0) < per_doc:
            chosen.append(hit)
            counts[hit.passage.doc_id] = counts.get(hit.passage.doc_id, 0) + 1
        if len(chosen) == n:
            return chosen
    return chosen + [h for h in hits if h not in chosen][: n - len(chosen)]


# ------------------------------------------------------------------------------------------------- modes


class SearchMode(Protocol):
    """One retrieval mode: the top ``k`` passages for a cleaned, non-empty question."""

    def __call__(self, store: IndexStore, encoder: Callable[[], Encoder], question: str, k: int,
                 config: Config) -> list[Hit]: ...


def sparse_mode(store: IndexStore, encoder: Callable[[], Encoder], question: str, k: int,
                config: Config) -> list[Hit]:
    """BM25 only (no query embedding)."""
    return sparse(store, question, max(k, config.sparse_depth))[:k]


def dense_mode(store: IndexStore, encoder: Callable[[], Encoder], question: str, k: int,
               config: Config) -> list[Hit]:
    """Dense vectors only."""
    return dense(store, encoder(), question, max(k, config.dense_depth))[:k]


def hybrid_mode(store: IndexStore, encoder: Callable[[], Encoder], question: str, k: int,
                config: Config) -> list[Hit]:
    """BM25 and dense fused by weighted RRF (the default: better recall than either alone)."""
    runs = {
        "sparse": sparse(store, question, config.sparse_depth),
        "dense": dense(store, encoder(), question, config.dense_depth),
    }
    weights = {"sparse": config.sparse_weight, "dense": config.dense_weight}
    return fuse(runs, weights, config.rrf_k, max(k, config.dense_depth))[:k]


REGISTRY: dict[Mode, SearchMode] = {
    "hybrid": hybrid_mode,
    "dense": dense_mode,
    "sparse": sparse_mode,
}
MODES: tuple[Mode, ...] = tuple(REGISTRY)  # the names, default first (argparse choices, error messages)


def search_mode(mode: Mode) -> SearchMode:
    """The registered function of ``mode``; ValueError naming the known modes otherwise."""
    try:
        return REGISTRY[mode]
    except (KeyError, TypeError):
        raise ValueError(f"mode must be one of {tuple(REGISTRY)}, got {mode!r}") from None
