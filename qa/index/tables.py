"""Passages and articles of a loaded index version, read from their JSONL files one row at a time.

Format version 3 keeps no passage or article text in memory: ``IndexStore.passages`` and
``IndexStore.documents`` are a :class:`PassageTable` and a :class:`DocumentTable` that memory-map the JSONL
files and parse one line when a row is asked for, through a table of line offsets written beside each file.
Every record is checked field by field when it is parsed, so a damaged line raises IndexCorruptError
instead of giving a Passage with wrong types.
"""

from __future__ import annotations

import json
import mmap as _mmap
import operator
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import IndexCorruptError
from qa.types import Document, Paragraph, Passage


class JsonlRows:
    """Line ``i`` of a JSONL file, parsed on demand through a memory map and a table of line offsets."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        size = path.stat().st_size
        if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1:
            raise ValueError(f"its offset table has shape {offsets.shape} and type {offsets.dtype}, "
                             "expected one int64 per line and one more")
        if int(offsets[0]) != 0 or int(offsets[-1]) != size or (len(offsets) > 1 and not (np.diff(offsets) > 0).all()):
            raise ValueError(f"its offset table does not match the file ({size} bytes, {len(offsets) - 1} lines)")
        self.path = path
        self._offsets = offsets
        self._data: Any = b""
        if size:
            with open(path, "rb") as f:
                self._data = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
            ends = np.frombuffer(self._data, dtype=np.uint8)[np.asarray(offsets[1:]) - 1]
            if not (ends == ord("\n")).all():
                raise ValueError("its offset table does not match the file (a row does not end a line)")

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def record(self, row: int) -> Any:
        """The JSON value on line ``row`` (ValueError when the line is not JSON)."""
        return json.loads(self._data[int(self._offsets[row]) : int(self._offsets[row + 1])])


def _row(index: Any, n: int) -> int:
    row = operator.index(index)
    if row < 0:
        row += n
    if not 0 <= row < n:
        raise IndexError(f"row {index} is out of range for {n} rows")
    return row


class PassageTable(Sequence[Passage]):
    """The passages of an index version, read from ``passages.jsonl`` one row at a time (not held in memory).

    Behaves like the list it replaces: ``len``, indexing (negative and slices too), iteration, ``==`` with a
    list. While a Passage is in use elsewhere (a Hit, an answer's source), asking for its row again returns
    the same object, so identity checks across one index version keep working; rows nobody holds are freed.
    """

    def __init__(self, rows: JsonlRows, doc_rows: np.ndarray, n_documents: int) -> None:
        self._rows = rows
        self.doc_rows = doc_rows  # line in documents.jsonl of each passage's document
        self._n_documents = n_documents
        self._cache: weakref.WeakValueDictionary[int, Passage] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()
        self._groups: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        row = _row(index, len(self))
        with self._lock:
            passage = self._cache.get(row)
        if passage is None:
            passage = self.read(row)
            with self._lock:
                passage = self._cache.setdefault(row, passage)
        return passage

    def read(self, row: int) -> Passage:
        """Parse row ``row`` afresh (no cache); raises IndexCorruptError when the line is damaged."""
        try:
            return _passage(self._rows.record(row))
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"{self._rows.path} row {row} cannot be read ({exc}): run `qa build` to "
                                    "repair the index.") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PassageTable({self._rows.path}, {len(self)} passages)"

    def rows_of_document(self, doc_row: int) -> list[int]:
        """Passage rows (ascending) of the document on line ``doc_row`` of documents.jsonl."""
        groups = self._groups
        if groups is None:  # built aside and published in one assignment: safe to share between threads
            order = np.argsort(self.doc_rows, kind="stable")
            bounds = np.searchsorted(self.doc_rows[order], np.arange(self._n_documents + 1))
            groups = self._groups = (order, bounds)
        order, bounds = groups
        return [int(r) for r in order[bounds[doc_row] : bounds[doc_row + 1]]]


class DocumentTable(Mapping[str, Document]):
    """The articles of an index version by doc_id, read from ``documents.jsonl`` when asked for.

    Only the ids (from the manifest's ``files``, in line order) are held in memory.
    """

    def __init__(self, rows: JsonlRows, doc_ids: list[str]) -> None:
        if len(doc_ids) != len(rows):
            raise ValueError(f"the manifest lists {len(doc_ids)} articles for {len(rows)} lines")
        self._rows = rows
        self._ids = doc_ids
        self._position = {doc_id: i for i, doc_id in enumerate(doc_ids)}
        if len(self._position) != len(doc_ids):
            raise ValueError("the manifest repeats an article id")

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._position

    def __getitem__(self, doc_id: str) -> Document:
        return self.at(self._position[doc_id])

    def position(self, doc_id: str) -> int | None:
        """The line of ``doc_id`` in documents.jsonl (None when it is not in the index)."""
        return self._position.get(doc_id)

    def at(self, row: int) -> Document:
        try:
            return _document(self._rows.record(row))
        except (ValueError, TypeError) as exc:
            raise IndexCorruptError(f"{self._rows.path} row {row} cannot be read ({exc}): run `qa build` to "
                                    "repair the index.") from exc

    def __repr__(self) -> str:
        return f"DocumentTable({self._rows.path}, {len(self)} documents)"



_PASSAGE_FIELDS = {"passage_id": str, "doc_id": str, "title": str, "text": str, "start": int, "end": int,
                   "pages": list, "page_breaks": list}
_DOCUMENT_FIELDS = {"doc_id": str, "title": str, "text": str, "sha256": str, "pages": list, "author": str,
                    "date": str}
_PARAGRAPH_FIELDS = {"start": int, "end": int, "boilerplate": bool, "reason": str}

def _typed(record: Any, fields: dict[str, type], what: str) -> dict[str, Any]:
    """``record`` if it is an object with exactly these fields of these types; ValueError otherwise."""
    if not isinstance(record, dict) or set(record) != set(fields):
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"a {what} record has fields {keys}, expected {sorted(fields)}")
    for key, kind in fields.items():
        if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
            raise ValueError(f"a {what} record has {key}={record[key]!r}, expected a {kind.__name__}")
        if kind is list and not all(isinstance(n, int) and not isinstance(n, bool) for n in record[key]):
            raise ValueError(f"a {what} record has {key}={record[key]!r}, expected a list of numbers")
    return record


def _passage(record: Any) -> Passage:
    return Passage(**_typed(record, _PASSAGE_FIELDS, "passage"))


def _document(record: Any) -> Document:
    if not isinstance(record, dict):
        raise TypeError(f"a document record is a {type(record).__name__}, expected an object")
    record = dict(record)
    paragraphs = record.pop("paragraphs", [])
    if not isinstance(paragraphs, list):
        raise TypeError("a document record's paragraphs is not a list")
    paras = tuple(Paragraph(**_typed(p, _PARAGRAPH_FIELDS, "paragraph")) for p in paragraphs)
    return Document(**_typed(record, _DOCUMENT_FIELDS, "document"), paragraphs=paras)

