"""Plain-text articles (.txt, .md): UTF-8, title on the first non-empty line, the body below it.

- A leading Markdown ``#`` is dropped from the title of ``.md`` files; the rest of the Markdown is kept as
  written (it reads as text).
- A file with a title but no body is rejected: it has nothing to answer from.
- Paragraphs are non-empty lines, whether the article separates them with blank lines or single newlines.
- Bytes that are not UTF-8 text are refused with the fix (UTF-16, Latin-1, binary files).
"""

from __future__ import annotations

import re

from qa.ingest.documents import Extracted, Unreadable, normalize_text

_BINARY_SAMPLE = 8192
_MAX_CONTROL_RATIO = 0.05  # more control bytes than this (besides tab/newline/CR/FF) and it is not text


def read_txt(raw: bytes) -> Extracted:
    return _article(decode_text(raw))


def read_markdown(raw: bytes) -> Extracted:
    return _article(re.sub(r"\A#+ *", "", decode_text(raw)))


def _article(text: str) -> Extracted:
    title, _, body = text.partition("\n")
    if not body.strip():
        raise Unreadable("it has a title line but no body text; put the article text below the title")
    return Extracted(title, body)


def decode_text(raw: bytes) -> str:
    """Raw bytes -> normalised text, or Unreadable saying what is wrong and how to fix it."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unreadable("it is UTF-16 encoded; re-save it as UTF-8")
    if not raw.strip():
        raise Unreadable("it is empty; add a title line and the article text")
    sample = raw[:_BINARY_SAMPLE]
    if b"\x00" in sample:
        raise Unreadable("it looks binary (contains NUL bytes); only UTF-8 text articles can be indexed")
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13) or b == 127)
    if control > _MAX_CONTROL_RATIO * len(sample):
        raise Unreadable(
            f"it looks binary ({control} control bytes in the first {len(sample)}); "
            "only UTF-8 text articles can be indexed"
        )
    try:
        decoded = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); re-save it as UTF-8"
        ) from None
    text = normalize_text(decoded)
    if not text:
        raise Unreadable("it is empty (only whitespace or invisible characters); add the article text")
    return text
