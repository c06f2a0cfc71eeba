"""What every reader shares: canonical text, the extracted-file record, and Documents with marked boilerplate.

Nothing is removed from ``Document.text``: boilerplate paragraphs are only flagged, so offsets stay valid
and the UI can show the whole article. Paragraphs are the non-empty lines of the text, whatever the format:
each reader turns its format's blocks (PDF text lines, HTML paragraphs, Word paragraphs) into lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from qa.boilerplate import classify_paragraphs
from qa.types import Document, Paragraph

# Spaces that NFKC leaves alone or that we want as a plain space; zero-width and format characters
# (category Cf: BOM, zero-width space/joiners, soft hyphen, direction marks) are removed instead.
_LINE_BREAKS = re.compile(r"\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except newline (tabs, nbsp, \u2000-\u200a, \u3000...)
_BLANK_RUNS = re.compile(r"\n{3,}")
_PARAGRAPH = re.compile(r"[^\n]+")


class Unreadable(Exception):
    """The reason one file (or JSONL record) cannot be ingested, e.g. "it is encrypted; ...".

    Readers raise it with a reason that says what to do; the folder walk turns it into a skip (or an
    IngestError naming the file, with ``Config.strict``).
    """


@dataclass(frozen=True)
class Skipped:
    """A source that was not indexed, and why (shown by `qa build`)."""

    path: str
    reason: str


@dataclass
class IngestResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Reader of each format the documents came from, as recorded in the index manifest.
    extractors: dict[str, str] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # doc_ids whose extraction was taken from Reuse (not re-read)


@dataclass(frozen=True)
class Reuse:
    """What a previous index already extracted, for a build to take over instead of reading files again.

    A file's extraction is reused when its bytes hash the same as the stored document's and its format's
    reader (``Format.extractor()``) is the one recorded; boilerplate is marked again, so rule changes apply.
    Only formats read by a library (PDF, Word, web pages) are reused: text files cost less to read than to look up.
    """

    documents: Mapping[str, Document]  # by doc_id (the index's lazy DocumentTable will do)
    extractors: Mapping[str, str]  # {format: reader} as recorded in the index manifest


@dataclass(frozen=True)
class Extracted:
    """One file as its reader understood it, before boilerplate marking.

    ``text`` holds one paragraph per line. When ``pages`` is given (offsets in ``text`` where each page
    starts), ``text`` must already be canonical (``normalize_text(text) == text``) so the offsets survive.
    """

    title: str
    text: str
    pages: tuple[int, ...] = ()
    author: str = ""
    date: str = ""


def normalize_text(raw: str) -> str:
    """Canonical text: NFKC, plain spaces, LF line ends, trimmed lines, at most one blank line in a row.

    Non-breaking and other odd spaces break tokenisers and exact matching; invisible characters (BOM,
    zero-width space, soft hyphen) would split words for the index without showing in the UI.
    """
    text = _LINE_BREAKS.sub("\n", raw)
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not _invisible(ch))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def normalize_line(raw: str) -> str:
    """One paragraph as a single canonical line (inner line breaks become spaces)."""
    return " ".join(normalize_text(raw).split())


# The British spellings these had before qa settled on US spelling (normalize_answer, normalize_text): public
# through qa.ingest, so kept for existing callers.
normalise_text = normalize_text
normalise_line = normalize_line


def _invisible(ch: str) -> bool:
    """Format and control characters other than newline and tab, and lone surrogates (from JSON escapes
    such as "\\ud800": they cannot be written as UTF-8)."""
    if ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cf", "Cc", "Cs")


def valid_utf8(name: str) -> bool:
    """False for strings holding surrogate escapes (file names whose bytes are not UTF-8, JSON "\\ud800")."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def make_document(
    doc_id: str,
    title: str,
    body: str,
    sha256: str,
    *,
    detect_boilerplate: bool = True,
    pages: tuple[int, ...] = (),
    author: str = "",
    date: str = "",
) -> Document:
    """A Document from an already split title and body; paragraphs are marked (or all kept for clean corpora).

    ``pages`` are offsets into ``body``, which must then be canonical already (a reader's bug otherwise).
    """
    text = normalize_text(body)
    if pages and text != body:
        raise ValueError(f"{doc_id}: a paged body must be normalised by its reader, or its page offsets move")
    spans = [(m.start(), m.end()) for m in _PARAGRAPH.finditer(text)]
    if detect_boilerplate:
        labels = classify_paragraphs([text[a:b] for a, b in spans])
    else:
        labels = [(False, "")] * len(spans)
    paragraphs = tuple(Paragraph(a, b, bad, reason) for (a, b), (bad, reason) in zip(spans, labels, strict=True))
    return Document(doc_id, normalize_line(title), text, sha256, paragraphs, tuple(pages),
                    normalize_line(author), date)


def from_extracted(doc_id: str, extracted: Extracted, sha256: str) -> Document:
    """The Document of one article file read by its format's reader."""
    return make_document(doc_id, extracted.title, extracted.text, sha256, pages=extracted.pages,
                         author=extracted.author, date=extracted.date)


def extracted_of(doc: Document) -> Extracted:
    """What the reader had extracted for ``doc`` (its text is canonical already), to be marked again."""
    return Extracted(doc.title, doc.text, doc.pages, doc.author, doc.date)
