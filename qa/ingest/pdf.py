"""PDF files: the text layer of each page (pypdf), rebuilt into paragraphs that know their pages.

PDF text comes as positioned lines, not paragraphs. The reader:

1. takes each page's text in pypdf's layout mode, which keeps vertical gaps as blank lines (paragraph
   breaks) and indentation; a page whose lines show a wide inner gap (two or more columns side by side)
   is taken in plain mode instead, which reads column by column;
2. drops running headers and footers (lines that repeat at the top or bottom of most pages, digits
   ignored: "Page 3 of 9", a printed date and URL) and lone page numbers;
3. joins the lines of a paragraph, undoing end-of-line hyphenation ("negoti-" + "ations"), and joins a
   paragraph that runs on over a page break, so sentences survive line and page breaks;
4. records where each page starts in the resulting text (``Extracted.pages``).

The title is the document's Title property when it is a real title (not a file name or "Untitled"), else
the first line of the first page; a first line equal to the title is not repeated in the body.

Refused, with the fix: encrypted files that need a password, files without a text layer (scans: "run OCR
first"), truncated or damaged files.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from typing import Any

from qa.ingest.documents import Extracted, Unreadable, normalize_line, normalize_text

logger = logging.getLogger(__name__)

MIN_LETTERS_PER_PAGE = 20  # fewer on average and the file is a scan (or images of text): no text layer
EDGE_LINES = 2  # lines at the top and at the bottom of a page that may be a running header or footer
_COLUMN_GAP = re.compile(r"\S {4,}\S")
_COLUMN_LINE_SHARE = 0.3  # this share of a page's lines with a wide inner gap: columns side by side
SHORT_LINE = 0.85  # in plain mode, a sentence end on a line shorter than this share of a full one ends a paragraph
_PAGE_NUMBER = re.compile(r"(?:page\s*)?[-–—(\[]?\s*\d{1,4}\s*[-–—)\]]?(?:\s*(?:/|of)\s*\d{1,4})?", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?:;…][\"'’”»)\]]*$")
_HYPHENATED = re.compile(r"[^\W\d_]-$")
_FILE_NAME_TITLE = re.compile(r"\.(?:docx?|pdf|indd|tex|odt|rtf|pages|qxp|html?)$|^untitled\b|^microsoft word\b",
                              re.IGNORECASE)


def read_pdf(raw: bytes) -> Extracted:
    reader = _open(raw)
    try:
        page_texts = [_page_text(page) for page in reader.pages]
        title = _metadata_title(reader)
    except Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on damaged content streams
        raise Unreadable(f"it is damaged ({type(exc).__name__}: {exc}); re-export or re-download the PDF") from None
    pages = _strip_running_lines([text.split("\n") for text in page_texts])
    letters = sum(ch.isalpha() for lines in pages for line in lines for ch in line)
    if letters < MIN_LETTERS_PER_PAGE * len(pages):
        raise Unreadable(
            f"no text layer: run OCR first (e.g. `ocrmypdf in.pdf out.pdf`); its {len(pages)} page(s) hold "
            f"{letters} letters of text besides headers and footers, so it is a scan or holds images of text"
        )
    paragraphs = [_paragraphs(lines) for lines in pages]
    if not title:
        first = next((p for page in paragraphs for p in page), "")
        title = first if len(first.split()) <= 20 else ""
    if paragraphs and paragraphs[0] and paragraphs[0][0].casefold() == normalize_line(title).casefold():
        paragraphs[0] = paragraphs[0][1:]  # the title printed as the first line
    text, starts = _join_pages(paragraphs)
    if not text:
        raise Unreadable("it holds only a title, no body text; add the PDF the article is in")
    if normalize_text(text) != text:  # never expected; offsets would not survive normalisation
        logger.warning("PDF text is not canonical after joining: page numbers are dropped for this file")
        return Extracted(title, normalize_text(text))
    return Extracted(title, text, starts)


def _open(raw: bytes) -> Any:
    try:
        import pypdf
    except ImportError:
        raise Unreadable("reading PDF files needs pypdf: pip install pypdf") from None
    if b"%PDF-" not in raw[:1024]:
        raise Unreadable("it is not a PDF (no %PDF header); check the file, or rename it to its real type")
    if b"%%EOF" not in raw[-2048:]:
        raise Unreadable("it is truncated (no end-of-file marker); download or copy the PDF again")
    try:
        reader = pypdf.PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise Unreadable(
                "it is encrypted (a password is needed to open it); save or print an unprotected copy and add that"
            )
        n_pages = len(reader.pages)  # reads the page tree: a damaged one fails here
    except Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on damaged files
        if "cryptography" in str(exc) or type(exc).__name__ == "DependencyError":
            raise Unreadable(
                "it is encrypted with AES, which needs the cryptography package: pip install cryptography"
            ) from None
        raise Unreadable(f"it is damaged ({type(exc).__name__}: {exc}); re-export or re-download the PDF") from None
    if not n_pages:
        raise Unreadable("it has no pages; re-export the PDF")
    return reader


def _page_text(page: Any) -> str:
    """One page's text, in layout mode unless the page is set in columns.

    Plain mode (content-stream order, column by column) has no blank lines between paragraphs: a line that
    ends a sentence well short of the column's width ends its paragraph, and a blank line is put after it.
    """
    text = page.extract_text(extraction_mode="layout")
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines or sum(bool(_COLUMN_GAP.search(line.strip())) for line in lines) <= _COLUMN_LINE_SHARE * len(lines):
        return text
    lines = [line.strip() for line in page.extract_text().split("\n")]
    widths = sorted(len(line) for line in lines if line)
    full = widths[int(0.9 * (len(widths) - 1))] if widths else 0
    out = []
    for line in lines:
        out.append(line)
        if line and _SENTENCE_END.search(line) and len(line) < SHORT_LINE * full:
            out.append("")
    return "\n".join(out)


def _metadata_title(reader: Any) -> str:
    meta = reader.metadata
    title = normalize_line(str(meta.title or "")) if meta is not None else ""
    return "" if not title or _FILE_NAME_TITLE.search(title) else title


def _strip_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Pages without running headers/footers and lone page numbers (blank lines kept: they part paragraphs)."""
    def key(line: str) -> str:
        return re.sub(r"\d+", "#", " ".join(line.split())).casefold()

    def edges(lines: list[str]) -> list[int]:
        filled = [i for i, line in enumerate(lines) if line.strip()]
        return sorted(set(filled[:EDGE_LINES] + filled[-EDGE_LINES:]))

    seen = Counter(k for lines in pages for k in {key(lines[i]) for i in edges(lines)})
    repeated = {k for k, n in seen.items() if len(pages) >= 2 and n >= max(2, len(pages) / 2)}
    out = []
    for lines in pages:
        drop = {i for i in edges(lines) if key(lines[i]) in repeated or _PAGE_NUMBER.fullmatch(lines[i].strip())}
        out.append([line for i, line in enumerate(lines) if i not in drop])
    return out


def _paragraphs(lines: list[str]) -> list[str]:
    """A page's lines -> canonical paragraphs: a blank line or a deeper indent starts a new one."""
    filled = [line for line in lines if line.strip()]
    margin = min((len(line) - len(line.lstrip()) for line in filled), default=0)
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if not line.strip():
            if current:
                paragraphs.append(current)
            current = []
            continue
        indented = len(line) - len(line.lstrip()) >= margin + 2
        if current and indented:
            paragraphs.append(current)
            current = []
        current.append(normalize_line(line))
    if current:
        paragraphs.append(current)
    return [p for p in (_join_lines(lines) for lines in paragraphs) if p]


def _join_lines(lines: list[str]) -> str:
    out = ""
    for line in lines:
        out = _join(out, line) if out else line
    return out


def _join(left: str, right: str) -> str:
    """Two pieces of one paragraph: "negoti-" + "ations" -> "negotiations", but "al-" + "Assad" -> "al-Assad"."""
    if _HYPHENATED.search(left):
        return left[:-1] + right if right[:1].islower() else left + right
    return f"{left} {right}"


def _join_pages(pages: list[list[str]]) -> tuple[str, tuple[int, ...]]:
    """The text (one paragraph per line) and the offset where each page starts in it.

    A paragraph that does not end a sentence is continued by the next page's first paragraph when that one
    starts in lower case: the page break fell inside it.
    """
    paragraphs: list[str] = []
    starts: list[int | None] = []
    length = 0  # len("\n".join(paragraphs))
    for page in pages:
        page = list(page)
        if page and paragraphs and not _SENTENCE_END.search(paragraphs[-1]) and page[0][:1].islower():
            joined = _join(paragraphs[-1], page[0])
            starts.append(length - len(paragraphs[-1]) + len(joined) - len(page[0]))
            length += len(joined) - len(paragraphs[-1])
            paragraphs[-1] = joined
            page = page[1:]
        else:
            starts.append(length + (1 if paragraphs and page else 0) if page else None)
        for paragraph in page:
            length += len(paragraph) + (1 if paragraphs else 0)
            paragraphs.append(paragraph)
    filled: list[int] = []
    following = length
    for start in reversed(starts):  # a page without text starts where the next one does
        following = following if start is None else start
        filled.append(following)
    return "\n".join(paragraphs), tuple(reversed(filled))
