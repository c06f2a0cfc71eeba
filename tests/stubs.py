"""The one stub encoder of the test suite: a hashed bag of words, L2-normalised.

Deterministic, no model, microseconds per passage. It stands in for MiniLM where a test needs many builds
(kill trials, write errors, corruption, resumable embedding); it claims MiniLM's name and dimension, so the
index it makes is a valid index for the default configuration. Tests that need real vectors use the
``encoder`` fixture (the real packaged model) instead.

Child processes of the kill tests get this class's source with ``inspect.getsource(StubEncoder)``: keep it
self-contained (only ``re``, ``time``, ``zlib``, ``numpy as np`` and ``MODEL_NAME``).
"""

from __future__ import annotations

import re
import time
import zlib

import numpy as np

from qa.config import MODEL_NAME


class StubEncoder:
    """Hashed bag of words; ``delay`` seconds per batch stretches embedding for kill trials, ``on_batch(start)``
    marks each batch, ``embedded`` counts the passages embedded."""

    model_name = MODEL_NAME
    dimension = 384

    def __init__(self, delay: float = 0.0, on_batch=None) -> None:
        self.delay = delay
        self.on_batch = on_batch
        self.embedded = 0

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            vec[zlib.crc32(word.encode("utf-8")) % self.dimension] += 1.0
        if not vec.any():
            vec[0] = 1.0
        return vec / np.linalg.norm(vec)

    def encode_passages(self, titles, texts, *, batch_size=64, progress=True):
        rows = []
        for start in range(0, len(texts), batch_size):
            if self.on_batch:
                self.on_batch(start)
            if self.delay:
                time.sleep(self.delay)
            rows += [self._vector(f"{t}. {x}") for t, x in
                     zip(titles[start:start + batch_size], texts[start:start + batch_size], strict=True)]
        self.embedded += len(texts)
        return np.array(rows, dtype=np.float32).reshape(len(texts), self.dimension)

    def encode_queries(self, texts, *, batch_size=64):
        return np.array([self._vector(t) for t in texts], dtype=np.float32).reshape(len(texts), self.dimension)
