"""JSONL corpora: one record per line, id from id/_id/pid, optional title, text from text/context.

External corpora (SQuAD paragraphs, SciFact abstracts) are clean, so every paragraph is content. A bad
line is skipped with a reason naming the file and line (or raises with ``config.strict``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from qa.config import Config
from qa.errors import IngestError
from qa.ingest.documents import IngestResult, Skipped, Unreadable, make_document, valid_utf8
from qa.types import Document

logger = logging.getLogger(__name__)

ID_KEYS = ("id", "_id", "pid")
TEXT_KEYS = ("text", "context")


def load_jsonl(path: str | Path, config: Config) -> IngestResult:
    """Every record of a ``.jsonl`` corpus as a Document (see the module docstring)."""
    path = Path(path)
    result = IngestResult()
    seen: dict[str, int] = {}
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise IngestError(f"Cannot read {path} ({exc.strerror or exc}); check the path and permissions.") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                doc = _record(line, number, config)
                if doc.doc_id in seen:
                    raise Unreadable(f"duplicate id {doc.doc_id!r} (first on line {seen[doc.doc_id]}); "
                                     "ids must be unique")
                seen[doc.doc_id] = number
                result.documents.append(doc)
            except Unreadable as exc:
                message = f"{path}, line {number}: {exc}"
                if config.strict:
                    raise IngestError(message) from None
                logger.warning("Skipping %s", message)
                result.skipped.append(Skipped(f"{path.name}:{number}", str(exc)))
    return result


def _record(line: bytes, number: int, config: Config) -> Document:
    try:
        record = json.loads(line.decode("utf-8-sig" if number == 1 else "utf-8"))
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not valid UTF-8 (byte 0x{line[exc.start]:02x}); re-save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise Unreadable(f"not valid JSON ({exc.msg} at column {exc.colno}); fix or delete the line") from None
    if not isinstance(record, dict):
        raise Unreadable(f"expected a JSON object, got {type(record).__name__}")
    doc_id = _first(record, ID_KEYS)
    text = _first(record, TEXT_KEYS)
    if doc_id is None:
        raise Unreadable("no 'id', '_id' or 'pid' field; give every record an id")
    if not valid_utf8(str(doc_id)):
        raise Unreadable("the id holds a lone surrogate escape (e.g. \\ud800); give the record a valid id")
    if not isinstance(text, str) or not text.strip():
        raise Unreadable("no text: put the passage in a non-empty 'text' (or 'context') string")
    if len(text.encode("utf-8", "surrogatepass")) > config.max_file_bytes:
        raise Unreadable(f"text is larger than max_file_bytes ({config.max_file_bytes:,}); split the record")
    title = record.get("title") or ""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    sha = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()  # "\ud800" escapes
    return make_document(str(doc_id), str(title), text, sha, detect_boilerplate=False)


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((record[k] for k in keys if record.get(k) is not None), None)
