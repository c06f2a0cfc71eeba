"""Typed records at the seams of the pipeline.

ingest -> Document -> passages -> Passage -> retrieve -> Hit -> answer -> Answer / Response.
All offsets are character offsets into ``Document.text`` (the normalised body, title excluded).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from typing import Any


def _tuple_fields(record: Any, *names: str) -> None:
    """Store list-valued fields as tuples: records read back from JSON then compare equal to fresh ones."""
    for name in names:
        value = getattr(record, name)
        if not isinstance(value, tuple):
            object.__setattr__(record, name, tuple(value))


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
    # Offset in ``text`` where each page starts (page n at pages[n - 1]); () for formats without pages. A page
    # with no text starts where the next one does.
    pages: tuple[int, ...] = ()
    author: str = ""  # from the file's metadata, when it has one (web pages, Word files)
    date: str = ""  # publication date as YYYY-MM-DD, when the metadata has one

    def __post_init__(self) -> None:
        _tuple_fields(self, "paragraphs", "pages")

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset`` of ``text``; None for formats without pages."""
        return max(1, bisect_right(self.pages, offset)) if self.pages else None

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
    pages: tuple[int, ...] = ()  # the 1-based pages the passage spans, in order; () without pages
    page_breaks: tuple[int, ...] = ()  # Document.text offsets where pages[1:] begin (one fewer than pages)

    def __post_init__(self) -> None:
        _tuple_fields(self, "pages", "page_breaks")

    def page_at(self, offset: int) -> int | None:
        """The page of ``Document.text[offset]`` for an offset inside this passage; None without pages."""
        return self.pages[bisect_right(self.page_breaks, offset)] if self.pages else None


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
    page: int | None = None  # 1-based page of the span's first character (PDF); None for formats without pages


@dataclass(frozen=True)
class Answer:
    text: str
    # Calibrated probability in [0, 1] that the answer is right; for a disagreeing side of a conflict (an answer
    # the best one ``conflicts_with``), that it is right as the answer of its own passage (qa.answer).
    confidence: float
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
    # Are the passages about the question (the calibration's on-topic rule, qa.calibration)? Only how an
    # abstention is shown depends on it: the first suggestion as a labelled low-confidence answer when true,
    # "nothing in the articles is about this" when false. It is still an abstention for every metric.
    on_topic: bool = False
    notice: str = ""  # e.g. "question truncated to 1000 characters"
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
