"""The one map from a file's suffix to its reader, with each format's checks and size limit.

`qa build` and ``build_index`` (through the folder walk), the UI's upload and its article list all ask this
module, so a new file format is one reader module plus one entry in :data:`FORMATS`. Readers import their
library (pypdf, trafilatura, python-docx) only when a file of their format is read: asking questions never
loads them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qa.config import Config
from qa.errors import IngestError
from qa.ingest import docx, html, pdf, text
from qa.ingest.documents import Extracted, IngestResult, Reuse, Unreadable, extracted_of, from_extracted
from qa.ingest.jsonl import load_jsonl
from qa.types import Document

HTML_MAX_BYTES = 10_000_000  # a saved page with inline scripts and styles; images are not read
PDF_MAX_BYTES = 50_000_000
DOCX_MAX_BYTES = 20_000_000  # compressed; the unpacked size and ratio are checked too (qa.ingest.docx)


@dataclass(frozen=True)
class Format:
    """One file format: the suffixes it is known by, how it is read, and its limits."""

    name: str
    suffixes: tuple[str, ...]  # lower case, with the dot
    library: str  # the distribution that reads it, recorded with its version in the manifest ("" = qa's code)
    max_bytes: int | None  # larger files are skipped; None = Config.max_file_bytes (the text formats)
    read: Callable[[bytes], Extracted] | None = None  # one article per file
    load: Callable[[Path, Config], IngestResult] | None = None  # a corpus: many records per file (JSONL)
    utf8: bool = False  # plain UTF-8 text (uploads are checked as such); the others carry their own encoding
    # qa's side of the reader: bump it when a change to the reader module changes what it extracts, so
    # indexes whose files it read are re-read (builds reuse the extraction of unchanged files: Reuse).
    revision: int = 1

    def limit(self, config: Config) -> int:
        return config.max_file_bytes if self.max_bytes is None else self.max_bytes

    def extractor(self) -> str:
        """What reads this format, as recorded in the manifest: "pypdf 7.1.1, qa reader 1", or "qa" for text."""
        return f"{self.library} {_version(self.library)}, qa reader {self.revision}" if self.library else "qa"

    def reuses(self, reuse: Reuse) -> bool:
        """Whether a build may take this format's extractions over from ``reuse`` (same reader, costly to read)."""
        return bool(self.library) and reuse.extractors.get(self.name) == self.extractor()

    def too_large(self, size: int, config: Config) -> str:
        """The skip reason of a file of ``size`` bytes over the limit."""
        if self.max_bytes is None:
            return (f"it is {size:,} bytes, larger than max_file_bytes ({config.max_file_bytes:,}); "
                    "split the article or raise --max-file-bytes")
        return (f"it is {size:,} bytes, larger than the {self.max_bytes:,}-byte limit for {self.name.upper()} "
                "files; split it into smaller files")


FORMATS: tuple[Format, ...] = (
    Format("text", (".txt",), "", None, read=text.read_txt, utf8=True),
    Format("markdown", (".md",), "", None, read=text.read_markdown, utf8=True),
    Format("html", (".html", ".htm"), "trafilatura", HTML_MAX_BYTES, read=html.read_html),
    Format("pdf", (".pdf",), "pypdf", PDF_MAX_BYTES, read=pdf.read_pdf),
    Format("docx", (".docx",), "python-docx", DOCX_MAX_BYTES, read=docx.read_docx),
    Format("jsonl", (".jsonl",), "", None, load=load_jsonl, utf8=True),
)
_BY_SUFFIX = {suffix: fmt for fmt in FORMATS for suffix in fmt.suffixes}


def format_for(name: str | Path) -> Format | None:
    """The format of a file name (by its suffix, case-insensitive); None when qa cannot read it."""
    return _BY_SUFFIX.get(Path(name).suffix.lower())


def article_suffixes() -> tuple[str, ...]:
    """Suffixes of the formats that hold one article per file: what a folder of articles (and an upload) may hold."""
    return tuple(s for fmt in FORMATS if fmt.read is not None for s in fmt.suffixes)


def unsupported(name: str) -> str:
    """The skip reason of a file qa cannot read, with the list of what it can."""
    suffix = Path(name).suffix.lower()
    fmt = _BY_SUFFIX.get(suffix)
    if fmt is not None and fmt.read is None:
        return (f"a {suffix} corpus is read on its own, not inside a folder of articles: "
                f"pass it as the source (qa build --articles {Path(name).name})")
    what = f"{suffix} files" if suffix else "files without a suffix"
    return f"unsupported format ({what}); qa reads {', '.join(article_suffixes())}"


def read_file_bytes(fmt: Format, raw: bytes, doc_id: str, config: Config, reuse: Reuse | None = None) -> Document:
    """The Document of one article file's bytes; Unreadable (a reason that says what to do) if it has none.

    With ``reuse``, a file whose bytes and reader are those of the stored document is not read again.
    """
    if fmt.read is None:
        raise Unreadable(unsupported(doc_id))
    if len(raw) > fmt.limit(config):
        raise Unreadable(fmt.too_large(len(raw), config))
    sha256 = hashlib.sha256(raw).hexdigest()
    stored = reusable(fmt, reuse, doc_id, sha256)
    return from_extracted(doc_id, extracted_of(stored) if stored else fmt.read(raw), sha256)


def reusable(fmt: Format, reuse: Reuse | None, doc_id: str, sha256: str) -> Document | None:
    """The stored document whose extraction a build takes over for this file, if any (see Reuse)."""
    if reuse is None or not fmt.reuses(reuse) or doc_id not in reuse.documents:
        return None
    stored = reuse.documents[doc_id]
    return stored if stored.sha256 == sha256 else None


def check_upload(name: str, data: bytes, config: Config) -> Document:
    """Validate an uploaded article file (suffix, size, the format's own checks) by reading it as a build would.

    Returns the Document it would give (its title, and whether any paragraph is more than boilerplate).
    Raises IngestError naming the file and the reason: an unsupported suffix, a file over its format's size
    limit, text that is not UTF-8, an encrypted or scanned PDF, a DOCX zip bomb, a page with no main text...
    """
    fmt = format_for(name)
    try:
        if fmt is None or fmt.read is None:
            raise Unreadable(unsupported(name))
        return read_file_bytes(fmt, data, name, config)
    except Unreadable as exc:
        raise IngestError(f"Cannot add {name}: {exc}") from None


def extractor_changes(recorded: dict[str, str]) -> list[str]:
    """How the readers recorded in an index manifest differ from the installed ones ([] when none does)."""
    by_name = {fmt.name: fmt for fmt in FORMATS}
    changes = []
    for name, was in sorted(recorded.items()):
        fmt = by_name.get(name)
        now = fmt.extractor() if fmt else "no reader"
        if now != was:
            changes.append(f"{name} files were read with {was}, this qa uses {now}")
    return changes


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"
