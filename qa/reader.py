"""Extractive reader: finds the answer span of a question in passages, with a no-answer score.

The model is our own MiniLM fine-tuned for span extraction (training/train_reader.py), shipped in
qa/models/reader/ as int8 ONNX and run with ONNX Runtime: no torch at question time. Long passages are read
in overlapping token windows; all windows of all passages go through the model in one batch.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.errors import ModelLoadError
from qa.files import sha256_file
from qa.onnx_session import cpu_session

READER_DIR = Path(__file__).resolve().parent / "models" / "reader"
CLS_ID, SEP_ID, PAD_ID = 101, 102, 0
MAX_QUESTION_TOKENS = 40
SAME_BATCH_LENGTH = 0.8  # a window shorter than this share of its batch's first starts a new batch


@dataclass(frozen=True)
class Span:
    start: int  # character offsets into the passage text
    end: int
    text: str
    score: float  # start logit + end logit
    prob: float  # softmax(start) * softmax(end) within its window, [CLS] included


@dataclass(frozen=True)
class Reading:
    """What the reader found in one passage: its best spans and how strongly it says "no answer"."""

    spans: list[Span]  # best first
    null_score: float  # start + end logit of [CLS], the lowest over the passage's windows


class Reader(Protocol):
    def read(self, question: str, passages: list[str], top_n: int = 3,
             max_answer_tokens: int | None = None) -> list[Reading]: ...


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max()
    return x - m - np.log(np.exp(x - m).sum())


class OnnxReader:
    """The shipped reader. Construct with `load_reader()`, which caches one instance per directory.

    Safe to share between threads. A read that runs alone uses ``threads`` threads (lower latency when the
    other core is free); reads that overlap others run on one thread each, in a second session made the
    first time that happens: with every core busy anyway, extra threads only cost CPU (0.64 against 0.54
    CPU-seconds per question over the 50 load-test questions, identical readings).
    """

    def __init__(self, model_dir: Path = READER_DIR, threads: int | None = None, stride: int = 64,
                 max_answer_tokens: int = 12, spin: bool = False) -> None:
        from tokenizers import Tokenizer

        meta_path = model_dir / "reader.json"
        if not meta_path.exists():
            raise ModelLoadError(
                f"No reader model at {model_dir} (reader.json missing). Reinstall qa from the repository "
                "(`pip install -e .`) or train one with training/train_reader.py and export_reader.py."
            )
        self.meta = json.loads(meta_path.read_text())
        for name in ("reader.onnx", "tokenizer.json"):
            expected = self.meta["sha256"][name]
            actual = sha256_file(model_dir / name)
            if actual != expected:
                raise ModelLoadError(
                    f"Reader file {model_dir / name} is corrupt (sha256 {actual[:12]}…, expected "
                    f"{expected[:12]}…). Restore it with `git checkout -- {model_dir}` or re-export it."
                )
        self.max_len = int(self.meta["max_len"])
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self._path, self._spin = model_dir / "reader.onnx", spin
        self.threads = threads or min(4, os.cpu_count() or 1)
        self.session = self._session(self.threads)
        self._solo: Any = None  # the one-thread session for overlapping reads
        self._reading = 0  # reads in progress
        self._lock = threading.Lock()

    def _session(self, threads: int) -> Any:
        # Idle worker threads sleep instead of spinning unless asked: when another request or a rebuild holds
        # the other core, spinning threads steal its time slices (bench/results/ask_threads.md).
        return cpu_session(self._path, threads, spin=self._spin)

    @contextmanager
    def _claim_session(self) -> Iterator[Any]:
        """The session for one read: the multi-thread one when no other read runs, else the one-thread one."""
        with self._lock:
            self._reading += 1
            crowded = self._reading > 1 and self.threads > 1
            if crowded and self._solo is None:
                self._solo = self._session(1)
            session = self._solo if crowded else self.session
        try:
            yield session
        finally:
            with self._lock:
                self._reading -= 1

    def _windows(self, q_ids: list[int], n_ctx: int) -> list[tuple[int, int]]:
        budget = self.max_len - len(q_ids) - 3
        spans, lo = [], 0
        while True:
            hi = min(n_ctx, lo + budget)
            spans.append((lo, hi))
            if hi >= n_ctx:
                return spans
            lo = hi - self.stride if hi - self.stride > lo else hi

    def read(self, question: str, passages: list[str], top_n: int = 3,
             max_answer_tokens: int | None = None, batch_size: int = 32) -> list[Reading]:
        """Best spans per passage (at most max_answer_tokens long) and the passage's no-answer score."""
        if not passages:
            return []
        max_answer_tokens = max_answer_tokens or self.max_answer_tokens
        q_ids = self.tokenizer.encode(question, add_special_tokens=False).ids[:MAX_QUESTION_TOKENS]
        encs = self.tokenizer.encode_batch(passages, add_special_tokens=False)
        rows: list[tuple[int, int, int]] = []  # (passage index, window lo, window hi)
        for p, enc in enumerate(encs):
            rows += [(p, lo, hi) for lo, hi in self._windows(q_ids, len(enc.ids))]
        head = [CLS_ID, *q_ids, SEP_ID]
        with self._claim_session() as session:
            logits = self._logits(session, head, encs, rows, batch_size)
        return self._readings(passages, encs, rows, logits, len(head), top_n, max_answer_tokens)

    @staticmethod
    def _logits(session: Any, head: list[int], encs: list[Any], rows: list[tuple[int, int, int]],
                batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Start and end logits of every window, in ``rows`` order.

        Windows run in batches of similar length, longest first: a passage's last window is often much shorter
        than a full one, and padding it to the batch's longest costs as much as reading. A new batch starts
        when a window is shorter than ``SAME_BATCH_LENGTH`` of the batch's first. It also reads better: the int8
        model quantises each activation tensor with one scale for the whole batch, and padded positions widened
        it (seeds dev answer@1 0.500 -> 0.611 with it; SQuAD open EM level, MODEL_CARD.md).
        """
        lengths = [len(head) + hi - lo + 1 for _, lo, hi in rows]
        batches: list[list[int]] = []
        for i in sorted(range(len(rows)), key=lambda i: -lengths[i]):
            full = bool(batches) and len(batches[-1]) >= batch_size
            if not batches or full or lengths[i] < SAME_BATCH_LENGTH * lengths[batches[-1][0]]:
                batches.append([])
            batches[-1].append(i)
        found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for batch in batches:
            chunk = [rows[i] for i in batch]
            seqs = [head + encs[p].ids[lo:hi] + [SEP_ID] for p, lo, hi in chunk]
            n = max(len(s) for s in seqs)
            ids = np.full((len(seqs), n), PAD_ID, dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for i, s in enumerate(seqs):
                ids[i, : len(s)] = s
                mask[i, : len(s)] = 1
                types[i, len(head) : len(s)] = 1
            start, end = session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )
            for i, (row, s) in enumerate(zip(batch, seqs, strict=True)):
                found[row] = (start[i, : len(s)], end[i, : len(s)])
        return [found[i] for i in range(len(rows))]

    def _readings(self, passages: list[str], encs: list[Any], rows: list[tuple[int, int, int]],
                  logits: list[tuple[np.ndarray, np.ndarray]], offset: int, top_n: int,
                  max_answer_tokens: int) -> list[Reading]:
        per_passage: list[list[Span]] = [[] for _ in passages]
        null_scores = [float("inf")] * len(passages)
        for (p, lo, hi), (s_log, e_log) in zip(rows, logits, strict=True):
            null_scores[p] = min(null_scores[p], float(s_log[0] + e_log[0]))
            s_lp, e_lp = _log_softmax(s_log), _log_softmax(e_log)
            ctx_s, ctx_e = s_log[offset : offset + hi - lo], e_log[offset : offset + hi - lo]
            cand_s = np.argsort(-ctx_s)[:20]
            cand_e = np.argsort(-ctx_e)[:20]
            offs = encs[p].offsets
            for i in cand_s:
                for j in cand_e:
                    if j < i or j - i + 1 > max_answer_tokens:
                        continue
                    c_start, c_end = offs[lo + i][0], offs[lo + j][1]
                    score = float(ctx_s[i] + ctx_e[j])
                    prob = float(np.exp(s_lp[offset + i] + e_lp[offset + j]))
                    per_passage[p].append(Span(c_start, c_end, passages[p][c_start:c_end], score, prob))
        readings = []
        for p, spans in enumerate(per_passage):
            best: dict[tuple[int, int], Span] = {}
            for sp in spans:
                if (sp.start, sp.end) not in best or best[(sp.start, sp.end)].score < sp.score:
                    best[(sp.start, sp.end)] = sp
            ranked = sorted(best.values(), key=lambda s: -s.score)[:top_n]
            readings.append(Reading(ranked, null_scores[p]))
        return readings


@lru_cache(maxsize=4)
def load_reader(model_dir: Path = READER_DIR, threads: int | None = None, spin: bool = False) -> OnnxReader:
    """Load the shipped reader once per process (checksums verified).

    Two threads that sleep when idle by default: on 2 cores a full ask on the seeds took p50 268 ms with the
    other core idle and 293 ms with it busy, against 318 / 310 ms for one thread, and 258 / 358 ms for two
    spinning threads (2026-11-24; a slower host on 2026-11-30 kept the ranking: 345 / 439, 447 / 446,
    344 / 528 ms; bench/results/ask_threads.md). Reads that overlap (a server answering several questions at
    once) run on one thread each (``OnnxReader``).
    """
    return OnnxReader(model_dir, threads=threads or min(2, os.cpu_count() or 1), spin=spin)
