"""Property tests (hypothesis) on random input: ingest and the passage splitter keep their promises.

- read_article on random bytes returns a Document or raises IngestError naming the file, nothing else;
- load_jsonl on random lines never raises (skips with a reason), or only IngestError when strict;
- a Document from random Unicode (all categories, lone surrogates, every line break) is clean and can be
  stored, and its passages keep ``doc.text[start:end] == passage.text``, cover every sentence of every
  content paragraph and never touch a boilerplate paragraph.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.config import DEFAULT_CONFIG, Config
from qa.errors import IngestError
from qa.ingest import load_jsonl, make_document, normalise_text, read_article
from qa.passages import split_passages, split_sentences
from qa.types import Document

SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
SMALL = Config(passage_target_words=6, passage_max_words=9, passage_overlap_sentences=1)

# Pieces that trip decoders and splitters: BOMs, CR/LF mixes, Unicode line breaks, NUL, Latin-1 bytes,
# zero-width and direction characters, combining marks, ligatures, abbreviations.
_TRICKY_BYTES = [b"\xef\xbb\xbf", b"\xff\xfe", b"\r\n", b"\r", b"\n\n", b"\x00", b"\xe9", b"\xc3", b"\x85",
                 "\u2028\u2029\u200b\u202e\u0301\ufb01".encode(), b"Mr. U.S. e.g. ", b"Title\n", b"# ", b". ", b"? "]
RANDOM_BYTES = st.one_of(
    st.binary(max_size=3000),
    st.text(max_size=1500).map(lambda s: s.encode("utf-8")),
    st.lists(st.one_of(st.sampled_from(_TRICKY_BYTES), st.text(max_size=40).map(str.encode)), max_size=60)
    .map(b"".join),
)
_SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
RANDOM_TEXT = st.lists(
    st.one_of(st.text(max_size=60), _SURROGATE,
              st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x85", "\x0c", "\n\n", ". ", "? ", "Mr. ", "\t"]),
              st.sampled_from(["Government forces retook Qusayr.", "Follow us on Twitter.", "© 2024 News Ltd.",
                               "editor@example.com", "Rebels, backed by Qatar, withdrew!"])),
    max_size=40,
).map("".join)


def _check_document(doc: Document) -> None:
    """What every ingested Document promises, whatever the input was."""
    assert normalise_text(doc.text) == doc.text  # already canonical
    assert "\r" not in doc.text and "\n" not in doc.title and doc.title == doc.title.strip()
    for para in doc.paragraphs:
        chunk = doc.text[para.start : para.end]
        assert chunk and chunk == chunk.strip() and "\n" not in chunk
        assert para.boilerplate == bool(para.reason)
    assert [p.start for p in doc.paragraphs] == sorted(p.start for p in doc.paragraphs)
    json.dumps(asdict(doc), ensure_ascii=False).encode("utf-8")  # can be written to documents.jsonl


def _check_passages(doc: Document, config: Config) -> None:
    passages = split_passages(doc, config)
    assert [p.passage_id for p in passages] == [f"{doc.doc_id}#{i}" for i in range(len(passages))]
    for p in passages:
        assert doc.text[p.start : p.end] == p.text and p.text == p.text.strip() and p.text
        assert all(b.end <= p.start or b.start >= p.end for b in doc.paragraphs if b.boilerplate)
    for para in doc.content_paragraphs():
        spans = split_sentences(doc.text, para.start, para.end)
        # The sentences partition the paragraph's non-space characters ...
        joined = "".join(doc.text[a:b] for a, b in spans)
        assert "".join(joined.split()) == "".join(doc.text[para.start : para.end].split())
        # ... and every sentence lies whole inside some passage.
        for a, b in spans:
            assert any(p.start <= a and b <= p.end for p in passages), (a, b, doc.text[a:b])


@SETTINGS
@given(data=RANDOM_BYTES, suffix=st.sampled_from([".txt", ".md"]))
def test_read_article_on_random_bytes_returns_a_document_or_raises_ingest_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"random article{suffix}"
        path.write_bytes(data)
        try:
            doc = read_article(path, path.name, DEFAULT_CONFIG)
        except IngestError as exc:
            assert str(path) in str(exc)  # names the file (and says why)
            return
    _check_document(doc)
    _check_passages(doc, DEFAULT_CONFIG)


@SETTINGS
@given(lines=st.lists(st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),
    st.dictionaries(st.sampled_from(["id", "_id", "pid", "title", "text", "context", "x"]),
                    st.one_of(st.none(), st.integers(), st.text(max_size=80), _SURROGATE, st.lists(st.integers())),
                    max_size=5).map(lambda d: json.dumps(d).encode("utf-8")),
), max_size=12))
def test_load_jsonl_on_random_lines_skips_with_reasons_and_never_raises(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        path.write_bytes(b"\n".join(lines))
        result = load_jsonl(path, DEFAULT_CONFIG)
        assert len(result.documents) + len(result.skipped) == sum(1 for line in lines if line.strip())
        for skipped in result.skipped:
            assert skipped.path.startswith("corpus.jsonl:") and skipped.reason
        for doc in result.documents:
            _check_document(doc)
            json.dumps(doc.doc_id, ensure_ascii=False).encode("utf-8")
        try:
            load_jsonl(path, Config(strict=True))
        except IngestError as exc:
            assert "corpus.jsonl, line" in str(exc)


@SETTINGS
@given(body=RANDOM_TEXT, title=st.text(max_size=30))
def test_passages_of_random_unicode_keep_offsets_and_cover_every_sentence(body: str, title: str) -> None:
    doc = make_document("doc.txt", title, body, "0" * 64)
    _check_document(doc)
    _check_passages(doc, SMALL)
    _check_passages(doc, DEFAULT_CONFIG)


@SETTINGS
@given(text=RANDOM_TEXT)
def test_normalise_text_is_idempotent_and_always_encodable(text: str) -> None:
    once = normalise_text(text)
    assert normalise_text(once) == once
    once.encode("utf-8")
