"""Retrieval stages and the Retriever, qa's Python entry point.

Every stage returns ``list[Hit]``: ``sparse`` (BM25), ``dense`` (FAISS inner product over normalised
MiniLM vectors) and ``fuse`` (weighted reciprocal rank fusion). ``Retriever.ask`` adds the answer stage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from qa.answer import answer_from_hits
from qa.config import DEFAULT_CONFIG, Config
from qa.embed import Encoder
from qa.index.load import IndexStore, load_index
from qa.index.manifest import query_encoder_problems
from qa.reader import Reader, load_reader
from qa.types import Hit, Response

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "sparse"]
NO_WORDS_NOTICE = ("The question has no words, only punctuation or symbols: "
                   "type a question, e.g. 'Who backed the rebels?'")
MODES: tuple[Mode, ...] = ("hybrid", "dense", "sparse")


def sparse(store: IndexStore, question: str, depth: int) -> list[Hit]:
    return [
        Hit(store.passages[row], score, {"bm25": score, "bm25_rank": rank})
        for rank, (row, score) in enumerate(store.lexical.search(question, depth), start=1)
    ]


def dense(store: IndexStore, encoder: Encoder, question: str, depth: int) -> list[Hit]:
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


class Retriever:
    """Answers questions from one built index. Models load lazily, once, on first use.

    ``store`` (the loaded IndexStore: documents, passages, manifest, version) is public and read-only.
    Questions are embedded by the index's stored ONNX query encoder (``IndexStore.query_encoder``) unless an
    ``encoder`` is passed: no torch on the question path.
    """

    def __init__(self, store: IndexStore, config: Config = DEFAULT_CONFIG,
                 encoder: Encoder | None = None, reader: Reader | None = None) -> None:
        self.store = store
        self.config = config
        self._encoder = encoder
        self._reader = reader

    @classmethod
    def load(cls, index_dir: str | Path = "index", config: Config = DEFAULT_CONFIG, **kwargs) -> Retriever:
        """Open an index built by `qa build` (raises IndexNotFoundError / IndexMismatchError / IndexCorruptError).

        Without an ``encoder`` argument the index must hold its query encoder: an index built before qa
        stored one raises IndexMismatchError here (run `qa build`, which adds it), not at the first question.
        """
        store = load_index(Path(index_dir), config)
        if kwargs.get("encoder") is None and query_encoder_problems(store.manifest, config):
            store.query_encoder(config)  # raises IndexMismatchError saying what to run
        return cls(store, config, **kwargs)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = self.store.query_encoder(self.config)
        return self._encoder

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = load_reader()
        return self._reader

    def _check_question(self, question: str) -> tuple[str, str]:
        if not isinstance(question, str):
            raise TypeError(f"question must be a str, got {type(question).__name__}")
        cleaned = "".join(ch if ch.isprintable() else " " for ch in question)
        cleaned = " ".join(cleaned.split())
        if not cleaned:
            raise ValueError("The question is empty: type a question, e.g. 'Who backed the rebels?'")
        notice = ""
        if len(cleaned) > self.config.max_question_chars:
            cleaned = cleaned[: self.config.max_question_chars]
            notice = f"The question was truncated to {self.config.max_question_chars} characters."
        return cleaned, notice

    def search(self, question: str, k: int = 10, mode: Mode = "hybrid") -> list[Hit]:
        """Top-k passages for a question by one retrieval mode."""
        question, _ = self._check_question(question)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        cfg = self.config
        store = self.store  # one index version for the whole question, even if a reload swaps it meanwhile
        if mode == "sparse":
            return sparse(store, question, max(k, cfg.sparse_depth))[:k]
        if mode == "dense":
            return dense(store, self.encoder, question, max(k, cfg.dense_depth))[:k]
        if mode != "hybrid":
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        runs = {
            "sparse": sparse(store, question, cfg.sparse_depth),
            "dense": dense(store, self.encoder, question, cfg.dense_depth),
        }
        weights = {"sparse": cfg.sparse_weight, "dense": cfg.dense_weight}
        return fuse(runs, weights, cfg.rrf_k, max(k, cfg.dense_depth))[:k]

    def ask(self, question: str, k: int = 3) -> Response:
        """Short answers (best first) with calibrated confidence and sources, or an abstention."""
        question, notice = self._check_question(question)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not any(ch.isalnum() for ch in question):  # "?!?...": nothing to search for, yet not an error
            notice = " ".join(filter(None, (notice, NO_WORDS_NOTICE)))
            return Response(question, answers=[], abstained=True, passages=[], notice=notice,
                            timings_ms={"total": 0.0})
        t0 = time.perf_counter()
        hits = self.search(question, k=max(self.config.reader_passages * 4, 10))
        t1 = time.perf_counter()
        to_read = diverse(hits, self.config.reader_passages, self.config.reader_passages_per_doc)
        result = answer_from_hits(question, to_read, self.reader, self.encoder, self.config, k)
        t2 = time.perf_counter()
        return Response(
            question=question,
            answers=result.answers,
            abstained=result.abstained,
            passages=hits[: max(k, 5)],
            conflict=result.conflict,
            suggestions=result.suggestions,
            notice=notice,
            timings_ms={"retrieve": 1000 * (t1 - t0), "read": 1000 * (t2 - t1), "total": 1000 * (t2 - t0)},
        )
