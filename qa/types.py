"""Typed records at the seams of the pipeline.

ingest -> Document -> passages -> Passage -> retrieve -> Hit -> answer -> Answer / Response.
All offsets are character offsets into ``Document.text`` (the normalised body, title excluded).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of a document; boilerplate paragraphs are kept in the text but never indexed."""

    start: int
    end: int
    boilerplate: bool = False
    reason: str = ""  # why it was judged boilerplate ("" when kept)


@dataclass(frozen=True)
class Document:
    doc_id: str  # path relative to the articles folder, or the record id of a JSONL corpus
    title: str
    text: str  # normalised body (title excluded); all offsets point into this
    sha256: str  # of the raw file bytes (or of the record's JSON for JSONL corpora)
    paragraphs: tuple[Paragraph, ...] = ()

    def content_paragraphs(self) -> list[Paragraph]:
        return [p for p in self.paragraphs if not p.boilerplate]


@dataclass(frozen=True)
class Passage:
    passage_id: str  # stable: f"{doc_id}#{index}" where index counts passages within the document
    doc_id: str
    title: str
    text: str  # == document.text[start:end]
    start: int
    end: int


@dataclass(frozen=True)
class Hit:
    """One retrieved passage. Every retrieval stage (sparse, dense, fused, reranked) returns these."""

    passage: Passage
    score: float
    scores: dict[str, float] = field(default_factory=dict)  # per-stage scores: bm25, dense, fused, ...


@dataclass(frozen=True)
class Source:
    """Where an answer was read: the file, its title, the passage, and offsets of the span."""

    doc_id: str
    title: str
    passage_id: str
    passage_text: str
    start: int  # span offsets inside passage_text
    end: int
    doc_start: int  # span offsets inside Document.text
    doc_end: int


@dataclass(frozen=True)
class Answer:
    text: str
    confidence: float  # calibrated probability in [0, 1] that the answer is right
    sources: tuple[Source, ...]
    scores: dict[str, float] = field(default_factory=dict)  # reader span / no-answer / retrieval scores
    conflicts_with: tuple[int, ...] = ()  # indexes into Response.answers of answers this one disagrees with


@dataclass(frozen=True)
class Response:
    question: str
    answers: list[Answer]  # best first; empty when abstained
    abstained: bool
    passages: list[Hit]  # top retrieved passages (shown as "closest passages" when abstaining)
    conflict: bool = False  # true when answers from different articles state different figures
    suggestions: list[Answer] = field(default_factory=list)  # when abstained: low-confidence candidates
    notice: str = ""  # e.g. "question truncated to 1000 characters"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
