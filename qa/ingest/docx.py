"""Word files (.docx, python-docx): headings and paragraphs in document order, tables row by row.

The title is the first heading (a paragraph styled "Title" or "Heading N") when it comes before any body
text, else the Title of the document's properties; a heading used as the title is not repeated in the
body. Author and date come from the document's properties.

A .docx file is a zip archive, and a small archive can unpack to gigabytes (a "zip bomb"): the archive's
listing is checked before anything is unpacked, and a file that would unpack to more than
MAX_UNPACKED_BYTES, or more than MAX_RATIO times its own size, is refused.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from qa.ingest.documents import Extracted, Unreadable, normalize_line

MAX_UNPACKED_BYTES = 100_000_000
MAX_RATIO = 100  # unpacked / packed; Word's own files are around 3-20 (XML), about 1 with pictures


def read_docx(raw: bytes) -> Extracted:
    _check_archive(raw)
    try:
        import docx
    except ImportError:
        raise Unreadable("reading Word files needs python-docx: pip install python-docx") from None
    try:
        document = docx.Document(io.BytesIO(raw))
        blocks = list(_blocks(document))
        props = document.core_properties
        prop_title, author = normalize_line(props.title or ""), normalize_line(props.author or "")
        date = props.created.date().isoformat() if props.created else ""
    except Unreadable:
        raise
    except Exception as exc:  # noqa: BLE001 - python-docx and lxml raise many kinds of errors on damaged parts
        raise Unreadable(f"it is damaged or not a Word document ({type(exc).__name__}: {exc}); "
                         "open and save it again in Word or LibreOffice") from None
    title = ""
    if blocks and blocks[0][1]:  # a heading before any body text
        title = blocks.pop(0)[0]
    title = title or prop_title
    body = "\n".join(text for text, _ in blocks)
    if not body.strip():
        raise Unreadable("it holds no text (only pictures, or an empty document); add the article text")
    return Extracted(title, body, author=author, date=date)


def _check_archive(raw: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise Unreadable(f"it is truncated or damaged (not a readable zip archive: {exc}); "
                         "open and save it again in Word or LibreOffice") from None
    if not any(m.filename == "word/document.xml" for m in members):
        raise Unreadable("it is not a Word document (no word/document.xml); save it as .docx from Word")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise Unreadable(f"it would unpack to {unpacked:,} bytes, more than the {MAX_UNPACKED_BYTES:,}-byte limit "
                         "for Word files (a zip bomb?); save the text in a smaller file")
    if unpacked > MAX_RATIO * max(1, len(raw)):
        raise Unreadable(f"it would unpack to {unpacked / len(raw):.0f} times its size, more than the limit of "
                         f"{MAX_RATIO} for Word files (a zip bomb?); save the text in a new document")


def _blocks(document: Any) -> Any:
    """(text, is_heading) for each non-empty paragraph and table row, in document order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    # Style names by id, looked up once: Paragraph.style searches the styles part on every call (90% of the
    # reading time of a long document). A paragraph without a style id has the default style, not a heading.
    names = {style.style_id: style.name or "" for style in document.styles}
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = normalize_line(item.text)
            if text:
                style = names.get(item._p.style or "", "")
                yield text, style == "Title" or style.startswith("Heading")
        elif isinstance(item, Table):
            for row in item.rows:
                cells = []
                for cell in row.cells:
                    text = normalize_line(cell.text)
                    if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                        cells.append(text)
                if cells:
                    yield " | ".join(cells), False
