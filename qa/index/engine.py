"""Engines: who splits and embeds a build's new documents (this process, or a Ray cluster).

A build (qa.index.build) decides which documents are new, then asks its engine for their passages and
vectors; everything else (reuse of unchanged documents, BM25, the atomic save) is the build's, so every
engine gives the same index. An :class:`Engine` opens a ``session`` for one build and yields a
:data:`SplitAndEmbed` function. Two exist: :class:`LocalEngine` (here) and ``qa.index.ray.RayEngine``;
``qa.index.build.engine_named`` picks one by name ("local" or "ray").

This module imports no engine but its own, and the Ray engine imports :func:`split_and_embed` from here
(its workers run it), so the dependency runs one way: build -> ray -> engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from qa.config import Config
from qa.embed import Encoder, get_encoder
from qa.index.resume import embed_resumable
from qa.passages import split_passages
from qa.types import Document, Passage

logger = logging.getLogger(__name__)

EngineName = Literal["local", "ray"]


@dataclass(frozen=True)
class Embedded:
    """The passages of some documents, in document order, and one L2-normalised float32 vector per passage."""

    passages: list[Passage]
    vectors: np.ndarray
    resumed: int = 0  # passages whose vectors came from an interrupted build's resume area, not the model


# New documents -> their passages and vectors.
SplitAndEmbed = Callable[[list[Document]], Embedded]


@runtime_checkable
class Engine(Protocol):
    """Splits and embeds the new documents of one build."""

    def session(
        self, index_dir: Path, config: Config, *, encoder: Encoder | None = None, progress: bool = True
    ) -> AbstractContextManager[SplitAndEmbed]:
        """Set up for one build into ``index_dir`` (called while holding its lock) and yield the function
        that splits and embeds; tear down when the build ends. ``encoder`` may be ignored by engines that
        load their own model (Ray workers)."""
        ...


def split_all(documents: list[Document], config: Config) -> list[Passage]:
    """The passages of ``documents``, document after document (the order of the index's rows)."""
    return [passage for doc in documents for passage in split_passages(doc, config)]


def split_and_embed(
    documents: list[Document], config: Config, encoder: Encoder | None = None, progress: bool = True
) -> tuple[list[Passage], np.ndarray]:
    """The passages of ``documents`` in order and their vectors, in one go (what Ray workers run per shard)."""
    passages = split_all(documents, config)
    encoder = encoder or get_encoder(config.model_name)
    logger.info("Embedding %d passages", len(passages))
    vectors = encoder.encode_passages(
        [p.title for p in passages], [p.text for p in passages],
        batch_size=config.embed_batch_size, progress=progress,
    )
    return passages, vectors


@dataclass(frozen=True)
class LocalEngine:
    """Splits and embeds in this process, through the resume area of the index (qa.index.resume), so a
    killed build's finished chunks are not embedded again. The default engine."""

    @contextmanager
    def session(
        self, index_dir: Path, config: Config, *, encoder: Encoder | None = None, progress: bool = True
    ) -> Iterator[SplitAndEmbed]:
        def run(documents: list[Document]) -> Embedded:
            passages = split_all(documents, config)
            vectors, resumed = embed_resumable(passages, encoder or get_encoder(config.model_name), index_dir,
                                               config, progress)
            return Embedded(passages, vectors, resumed)

        yield run
