"""The Pipeline: qa's Python entry point, which answers questions from one built index.

A question goes through three steps, each a public method so that evaluation and calibration run the very
steps ``ask`` runs instead of copies of them:

1. ``search(question, k, mode)``: passages by a retrieval mode of qa.search.REGISTRY;
2. ``passages_to_read(hits)``: the few of them the reader reads (at most a couple per article);
3. ``candidates(question, to_read)``: every span the reader proposes, with the features of the confidence
   model (before calibration); ``ask`` turns them into answers (qa.answer: calibration, grouping, abstention,
   conflicts). Both give every passage read its question-passage cosine first (``with_passage_similarity``),
   whichever retrieval mode found it.

``Retriever`` is the old name of the class, kept as an alias: ``from qa import Retriever`` and
``Retriever.load(...)`` work as before.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qa import answer
from qa.answer_types import QUANTITY_KINDS, question_shape, states_quantity
from qa.config import DEFAULT_CONFIG, Config
from qa.embed import Encoder
from qa.index.load import IndexStore, load_index
from qa.index.manifest import query_encoder_problems
from qa.reader import Reader, load_reader
from qa.search import DEFAULT_MODE, Mode, diverse, search_mode
from qa.topic import topic_scores
from qa.types import Hit, Response

NO_WORDS_NOTICE = ("The question has no words, only punctuation or symbols: "
                   "type a question, e.g. 'Who backed the rebels?'")


class Pipeline:
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
    def load(cls, index_dir: str | Path = "index", config: Config = DEFAULT_CONFIG, **kwargs: Any) -> Pipeline:
        """Open an index built by `qa build` (raises IndexNotFoundError / IndexMismatchError / IndexCorruptError).

        Without an ``encoder`` argument the index must hold its query encoder: an index built before qa
        stored one raises IndexMismatchError here (run `qa build`, which adds it), not at the first question.
        """
        store = load_index(Path(index_dir), config)
        if kwargs.get("encoder") is None and query_encoder_problems(store.manifest, config):
            store.query_encoder(config)  # raises IndexMismatchError saying what to run
        return cls(store, config, **kwargs)

    def with_config(self, **overrides: Any) -> Pipeline:
        """A pipeline over the same index and models with some config fields replaced (e.g. ``dense_depth``)."""
        other = type(self).__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.config = replace(self.config, **overrides)
        return other

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

    # ------------------------------------------------------------------------------------------ steps

    def search(self, question: str, k: int = 10, mode: Mode = DEFAULT_MODE) -> list[Hit]:
        """Top-k passages for a question by one retrieval mode (a name in qa.search.MODES)."""
        question, _ = self._check_question(question)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        run = search_mode(mode)
        store = self.store  # one index version for the whole question, even if a reload swaps it meanwhile
        return run(store, lambda: self.encoder, question, k, self.config)

    @property
    def search_depth(self) -> int:
        """Passages ``ask`` retrieves: enough for the reader's pick and the passages shown beside the answers."""
        return max(self.config.reader_passages * 4, 10)

    def passages_to_read(self, hits: list[Hit]) -> list[Hit]:
        """The hits the reader reads: the best ``reader_passages`` with at most ``reader_passages_per_doc``
        from one article."""
        return diverse(hits, self.config.reader_passages, self.config.reader_passages_per_doc)

    def rival_passages(self, question: str, hits: list[Hit], to_read: list[Hit]) -> list[Hit]:
        """Retrieved but unread passages that state a quantity of the kind the question asks for ("how long":
        a duration): the reader reads them only when the best answer is a quantity, to find a source that
        disagrees (Config.rival_passages). Empty for other questions.

        Why: the seeds' battle length is "an 18-day battle" in 004's third-best passage and "three weeks of
        bitter fighting" in 002's headline, and the passages read (at most two per article) hold one of them.
        """
        n = self.config.rival_passages
        shape = question_shape(question)
        if n < 1 or shape.kind not in QUANTITY_KINDS:
            return []
        read = {h.passage.passage_id for h in to_read}
        pool = [h for h in hits if h.passage.passage_id not in read and states_quantity(h.passage.text, shape)]
        return self.with_passage_similarity(question, pool[:n])

    def with_passage_similarity(self, question: str, to_read: list[Hit]) -> list[Hit]:
        """The hits with their ``dense`` score (the cosine of question and passage vectors) filled in where
        retrieval gave none: every hit of BM25-only mode, and a passage only BM25 found in hybrid mode.

        Why: the confidence model weighs the passage's cosine (qa.answer.FEATURES "dense") and is fitted on
        hybrid hits, nearly all of which have one; a missing score read as 0 made BM25-only mode abstain on
        half of SQuAD. The passage vector is the index's own (``vectors.npy``), so the score is what the dense
        run would have returned for it with an exact index.
        """
        missing = [n for n, h in enumerate(to_read) if "dense" not in h.scores]
        if not missing:
            return to_read
        store = self.store
        query = self.encoder.encode_queries([question])[0]
        rows = [store.row_of(to_read[n].passage.passage_id) for n in missing]
        cosines = np.asarray(store.vectors[rows], dtype=np.float32) @ np.asarray(query, dtype=np.float32)
        filled = list(to_read)
        for n, cosine in zip(missing, cosines.tolist(), strict=True):
            hit = to_read[n]
            filled[n] = Hit(hit.passage, hit.score, {**hit.scores, "dense": cosine})
        return filled

    def topic_scores(self, question: str, hits: list[Hit]) -> dict[str, float] | None:
        """The retrieval scores the on-topic rule weighs (qa.topic), the best hit's cosine filled in when the
        retrieval mode gave none; None without hits."""
        if not hits:
            return None
        return topic_scores(question, self.with_passage_similarity(question, hits[:1]) + hits[1:],
                            self.store.lexical)

    def candidates(self, question: str, to_read: list[Hit]) -> list[answer.Candidate]:
        """Every span the reader proposes in ``to_read``, with all the confidence model's features (not yet
        calibrated): what training/calibrate.py fits the calibration on."""
        to_read = self.with_passage_similarity(question, to_read)
        return answer.candidates(question, to_read, self.reader, self.encoder, self.config)

    # -------------------------------------------------------------------------------------------- ask

    def ask(self, question: str, k: int = 3, mode: Mode = DEFAULT_MODE) -> Response:
        """Short answers (best first) with calibrated confidence and sources, or an abstention (with
        low-confidence ``suggestions``, and ``on_topic`` saying whether the passages are about the question).

        ``mode`` picks the retrieval mode that finds the passages (qa.search.MODES; ablations use it).
        """
        question, notice = self._check_question(question)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        search_mode(mode)  # an unknown mode is an error even for a question without words
        if not any(ch.isalnum() for ch in question):  # "?!?...": nothing to search for, yet not an error
            notice = " ".join(filter(None, (notice, NO_WORDS_NOTICE)))
            return Response(question, answers=[], abstained=True, passages=[], notice=notice,
                            timings_ms={"total": 0.0})
        t0 = time.perf_counter()
        hits = self.search(question, k=self.search_depth, mode=mode)
        t1 = time.perf_counter()
        to_read = self.with_passage_similarity(question, self.passages_to_read(hits))
        result = answer.answer_from_hits(question, to_read, self.reader, self.encoder, self.config, k,
                                         rival_hits=self.rival_passages(question, hits, to_read))
        # The best hit is read first (``diverse``) and its cosine is filled in there: no second encoding.
        topic_hits = [to_read[0], *hits[1:]] if to_read and to_read[0].passage == hits[0].passage else hits
        on_topic = answer.answer_calibration(self.config).on_topic(self.topic_scores(question, topic_hits))
        t2 = time.perf_counter()
        return Response(
            question=question,
            answers=result.answers,
            abstained=result.abstained,
            passages=hits[: max(k, 5)],
            conflict=result.conflict,
            suggestions=result.suggestions,
            on_topic=on_topic,
            notice=notice,
            timings_ms={"retrieve": 1000 * (t1 - t0), "read": 1000 * (t2 - t1), "total": 1000 * (t2 - t0)},
        )


Retriever = Pipeline  # the name before the pipeline had its own module; public, kept for compatibility
