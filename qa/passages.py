"""Document -> overlapping, sentence-aligned passages with exact character offsets into ``Document.text``.

Passages are built only from content paragraphs and never bridge a boilerplate paragraph, so site
furniture cannot leak into the index. Within a run of content paragraphs, sentences are packed up to
about ``passage_target_words`` (never more than ``passage_max_words`` unless one sentence is longer),
preferring paragraph ends as break points, and consecutive passages share
``passage_overlap_sentences`` sentences so an answer that straddles a break is still found whole.
A passage of a paged document (PDF) records the pages it spans, so an answer can cite its page.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from qa.config import Config
from qa.types import Document, Paragraph, Passage

logger = logging.getLogger(__name__)

PARAGRAPH_BREAK_SLACK = 0.75  # a paragraph end counts as "near the target" from this fraction of it


@functools.cache
def _segmenter() -> Any:
    """pysbd's rule-based English segmenter (knows "Mr.", "U.S.", "Gen."); built once, on first use."""
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=False)


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the sentences in ``text[start:end]``, without surrounding whitespace.

    A sentence never crosses a line break (paragraphs are lines). The spans are aligned on the text
    itself rather than taken from pysbd's char_span, whose search-based offsets can drift when a
    sentence repeats; every non-space character of the range lies in exactly one span.
    """
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise ValueError(f"start={start}, end={end} is not a range inside a text of {len(text)} characters")
    spans: list[tuple[int, int]] = []
    line_start = start
    while line_start < end:
        line_end = text.find("\n", line_start, end)
        line_end = end if line_end < 0 else line_end
        line = text[line_start:line_end]
        if line.strip():
            spans.extend((line_start + a, line_start + b) for a, b in _align(line, _segment(line)))
        line_start = line_end + 1
    return spans


@functools.lru_cache(maxsize=4096)
def passage_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """``split_sentences`` of a whole passage, remembered for the last 4,096 passages.

    The answer stage splits every passage it reads, and a server reads the same passages for many questions:
    on the seeds, re-splitting cost ~0.04 CPU-seconds per question (pysbd is regex-heavy). Builds split whole
    documents with ``split_sentences`` and do not fill this cache.
    """
    return tuple(split_sentences(text))


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the sentence (or sentences) of ``text`` holding ``text[start:end]``: what a low-confidence
    answer shows around its words. ``(start, end)`` itself when no sentence overlaps it."""
    touched = [(a, b) for a, b in passage_sentences(text) if a < max(end, start + 1) and start < b]
    if not touched:
        return start, end
    return min(touched[0][0], start), max(touched[-1][1], end)


def _segment(line: str) -> list[str]:
    try:
        return list(_segmenter().segment(line))
    except Exception as exc:  # noqa: BLE001 - a segmenter bug on odd text must not fail a build
        logger.warning("Sentence splitter failed (%s); keeping a %d-character line whole", exc, len(line))
        return [line]


def _align(line: str, pieces: list[str]) -> list[tuple[int, int]]:
    """Spans of ``pieces`` (consecutive sentences as the segmenter returned them) inside ``line``."""
    spans: list[tuple[int, int]] = []
    pos, n = 0, len(line)
    for piece in pieces:
        sentence = piece.strip()
        if not sentence:
            continue
        while pos < n and line[pos].isspace():
            pos += 1
        if line.startswith(sentence, pos):
            stop = pos + len(sentence)
        else:  # the segmenter altered the text: take as many non-space characters, ending at a word end
            need, stop = sum(not c.isspace() for c in sentence), pos
            while stop < n and need:
                need -= not line[stop].isspace()
                stop += 1
            while stop < n and not line[stop].isspace():
                stop += 1
        if stop > pos:
            spans.append((pos, stop))
            pos = stop
    rest = line[pos:]
    if rest.strip():  # text the segmenter dropped is kept as a sentence of its own
        spans.append((pos + len(rest) - len(rest.lstrip()), len(line.rstrip())))
    return spans


@dataclass(frozen=True)
class _Sentence:
    start: int
    end: int
    words: int
    ends_paragraph: bool


def split_passages(doc: Document, config: Config) -> list[Passage]:
    """Passages of ``doc``'s content paragraphs; ``passage.text == doc.text[start:end]`` always."""
    _check(config)
    passages: list[Passage] = []
    for run in _content_runs(doc):
        sentences: list[_Sentence] = []
        for para in run:
            spans = split_sentences(doc.text, para.start, para.end)
            for k, (a, b) in enumerate(spans):
                sentences.append(_Sentence(a, b, len(doc.text[a:b].split()), k == len(spans) - 1))
        for i, k in _pack(sentences, config):
            a, b = sentences[i].start, sentences[k - 1].end
            pages, breaks = _pages(doc, a, b)
            passages.append(Passage(f"{doc.doc_id}#{len(passages)}", doc.doc_id, doc.title, doc.text[a:b], a, b,
                                    pages, breaks))
    return passages


def _pages(doc: Document, start: int, end: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The pages that ``doc.text[start:end]`` spans and the offsets where the second and later ones begin."""
    if not doc.pages:
        return (), ()
    first, last = doc.page_at(start), doc.page_at(end - 1)
    pages = tuple(range(first, last + 1))  # type: ignore[operator]
    return pages, tuple(doc.pages[n - 1] for n in pages[1:])


def _check(config: Config) -> None:
    if config.passage_target_words < 1 or config.passage_max_words < config.passage_target_words:
        raise ValueError(
            f"passage_target_words={config.passage_target_words} and passage_max_words="
            f"{config.passage_max_words}: need 1 <= target <= max; fix the configuration."
        )
    if config.passage_overlap_sentences < 0:
        raise ValueError(f"passage_overlap_sentences={config.passage_overlap_sentences} must be >= 0.")


def _content_runs(doc: Document) -> list[list[Paragraph]]:
    """Maximal runs of consecutive content paragraphs; a boilerplate paragraph ends a run."""
    paragraphs = doc.paragraphs
    if not paragraphs and doc.text.strip():  # a hand-made Document without paragraphs: its lines
        paragraphs, pos = [], 0
        for line in doc.text.split("\n"):
            if line.strip():
                paragraphs.append(Paragraph(pos, pos + len(line)))
            pos += len(line) + 1
    runs: list[list[Paragraph]] = [[]]
    for para in paragraphs:
        if para.boilerplate:
            runs.append([])
        else:
            runs[-1].append(para)
    return [run for run in runs if run]


def _pack(sentences: list[_Sentence], config: Config) -> list[tuple[int, int]]:
    """Sentence ranges [i, k) of the passages of one run, in order, overlapping by up to N sentences."""
    target, limit = config.passage_target_words, config.passage_max_words
    cum = [0]
    for s in sentences:
        cum.append(cum[-1] + s.words)

    def words(i: int, k: int) -> int:
        return cum[k] - cum[i]

    n, i, out = len(sentences), 0, []
    while i < n:
        if words(i, n) <= limit:  # the rest fits: one passage (a small remainder is merged, not orphaned)
            out.append((i, n))
            break
        low = out[-1][1] + 1 if out else i + 1  # at least one sentence the previous passage lacks
        # Aim at half the rest when fewer than two full passages remain, so the last two are balanced.
        aim = target if words(i, n) >= 2 * target else max(words(i, n) / 2, 1)
        fits = [k for k in range(low, n) if words(i, k) <= limit] or [low]
        at_paragraph = [k for k in fits
                        if sentences[k - 1].ends_paragraph and words(i, k) >= PARAGRAPH_BREAK_SLACK * aim]
        k = min(at_paragraph or fits, key=lambda k: (abs(words(i, k) - aim), -k))
        out.append((i, k))
        nxt = max(k - config.passage_overlap_sentences, i + 1)
        while nxt < k and words(nxt, k + 1) > limit:  # drop overlap that would push the next one over
            nxt += 1
        i = nxt
    return out
