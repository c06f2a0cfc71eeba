"""Source files -> Documents with clean text, a title, pages where the format has them, and marked boilerplate.

One owner per step: ``registry`` maps a suffix to its format (reader, size limit, checks); ``text``,
``html``, ``pdf``, ``docx`` and ``jsonl`` read one format each; ``documents`` holds what they share
(canonical text, boilerplate marking); ``folder`` walks an articles folder and turns unreadable files into
skips. Adding a format: a reader module returning :class:`Extracted`, and one entry in ``registry.FORMATS``.
"""

from qa.ingest.documents import (
    Extracted,
    IngestResult,
    Reuse,
    Skipped,
    make_document,
    normalise_text,
    normalize_text,
)
from qa.ingest.folder import article_files, file_hashes, load_corpus, load_folder, read_article
from qa.ingest.jsonl import ID_KEYS, TEXT_KEYS, load_jsonl
from qa.ingest.registry import FORMATS, Format, article_suffixes, check_upload, extractor_changes, format_for

__all__ = [
    "FORMATS",
    "ID_KEYS",
    "TEXT_KEYS",
    "Extracted",
    "Format",
    "IngestResult",
    "Reuse",
    "Skipped",
    "article_files",
    "article_suffixes",
    "check_upload",
    "extractor_changes",
    "file_hashes",
    "format_for",
    "load_corpus",
    "load_folder",
    "load_jsonl",
    "make_document",
    "normalise_text",
    "normalize_text",
    "read_article",
]
