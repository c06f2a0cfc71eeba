"""Reading article files and JSONL corpora into Documents: normalisation, titles, errors, file selection."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import pytest

from qa.config import DEFAULT_CONFIG, Config
from qa.errors import IngestError
from qa.ingest import (
    IngestResult,
    Skipped,
    file_hashes,
    load_corpus,
    load_folder,
    load_jsonl,
    make_document,
    normalise_text,
    read_article,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
STRICT = Config(strict=True)
ARTICLE = "A title\n\nFirst paragraph of the story.\n\nSecond paragraph, with more words.\n"


def _write(folder: Path, name: str, data: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _paragraph_texts(doc) -> list[str]:
    return [doc.text[p.start : p.end] for p in doc.paragraphs]


# --- normalisation -----------------------------------------------------------------------------


def test_normalise_spaces_nfkc_and_invisible_characters() -> None:
    raw = "a\u00a0b\u2003c\u202fd\u3000e\tf\u205fg  h \ufb01ne \uff21 zero\u200bwidth soft\u00adhyphen\ufeff"
    assert normalise_text(raw) == "a b c d e f g h fine A zerowidth softhyphen"


def test_normalise_line_endings_and_blank_lines() -> None:
    raw = "  one  \r\ntwo\rthree\n\n\n\n\nfour \u2028five\n"
    assert normalise_text(raw) == "one\ntwo\nthree\n\nfour\nfive"


def test_normalise_is_idempotent_on_seeds() -> None:
    paths = sorted(SEEDS.glob("*.txt"))
    assert paths, f"no seed articles in {SEEDS}"
    for path in paths:
        once = normalise_text(path.read_text(encoding="utf-8"))
        assert normalise_text(once) == once
        assert "\u00a0" not in once and "  " not in once


# --- one article -------------------------------------------------------------------------------


def test_title_is_first_non_empty_line_and_body_keeps_paragraphs(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.txt", "\n\n  " + ARTICLE)
    doc = read_article(path, "a.txt", DEFAULT_CONFIG)
    assert doc.title == "A title"
    assert doc.text == "First paragraph of the story.\n\nSecond paragraph, with more words."
    assert _paragraph_texts(doc) == ["First paragraph of the story.", "Second paragraph, with more words."]
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_single_newline_paragraphs(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.txt", "Title\nOne sentence here.\nAnother one here.\n")
    assert _paragraph_texts(read_article(path, "a.txt", DEFAULT_CONFIG)) == ["One sentence here.", "Another one here."]


def test_nbsp_in_seed_is_normalised() -> None:
    doc = read_article(SEEDS / "000_c16d11af959cac43.txt", "000", DEFAULT_CONFIG)
    assert doc.title == "Inside Syria"
    assert "won an important battle against the rebels after long and intense fighting." in doc.text
    assert "\u00a0" not in doc.text
    assert all(doc.text[p.start : p.end].strip() == doc.text[p.start : p.end] for p in doc.paragraphs)


def test_bom_crlf_and_mixed_line_endings(tmp_path: Path) -> None:
    raw = "\ufeffThe title\r\n\r\nFirst line.\r\nSecond line.\rThird line.\n".encode()
    path = _write(tmp_path, "bom.txt", raw)
    doc = read_article(path, "bom.txt", DEFAULT_CONFIG)
    assert doc.title == "The title"
    assert doc.text == "First line.\nSecond line.\nThird line."
    assert doc.sha256 == hashlib.sha256(raw).hexdigest()


def test_markdown_title_loses_hashes(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.md", "# A heading title\n\nBody text of the note.\n")
    assert read_article(path, "a.md", DEFAULT_CONFIG).title == "A heading title"


def test_seed_paragraph_offsets_point_into_text() -> None:
    paths = sorted(SEEDS.glob("*.txt"))
    assert paths, f"no seed articles in {SEEDS}"
    for path in paths:
        doc = read_article(path, path.name, DEFAULT_CONFIG)
        assert doc.paragraphs, path
        for para in doc.paragraphs:
            chunk = doc.text[para.start : para.end]
            assert chunk and "\n" not in chunk
            assert para.boilerplate == bool(para.reason)


# --- errors ------------------------------------------------------------------------------------

BAD_FILES = {
    "empty.txt": (b"", "empty"),
    "blank.txt": (b"  \n\t\n \xc2\xa0\n", "empty"),
    "title_only.txt": (b"Just a title\n\n", "no body"),
    "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
    "controls.txt": (b"Title\n" + bytes(range(1, 9)) * 20, "binary"),
    "latin1.txt": ("Title\n\nCaf\u00e9 society.\n".encode("latin-1"), "not valid UTF-8 (byte 0xe9 at offset 10)"),
    "utf16.txt": ("Title\n\nBody.\n".encode("utf-16"), "UTF-16"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_raises_naming_file_and_reason(tmp_path: Path, name: str) -> None:
    data, reason = BAD_FILES[name]
    path = _write(tmp_path, name, data)
    with pytest.raises(IngestError) as info:
        read_article(path, name, DEFAULT_CONFIG)
    assert name in str(info.value) and reason in str(info.value)


def test_latin1_message_says_how_to_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, "latin1.txt", BAD_FILES["latin1.txt"][0])
    with pytest.raises(IngestError, match=r"re-save it as UTF-8"):
        read_article(path, "latin1.txt", DEFAULT_CONFIG)


def test_too_large_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.txt", ARTICLE * 10)
    with pytest.raises(IngestError, match=r"big\.txt.*larger than max_file_bytes \(100\)"):
        read_article(path, "big.txt", Config(max_file_bytes=100))


def test_bad_files_are_skipped_with_reasons_or_raise_when_strict(tmp_path: Path, caplog) -> None:
    _write(tmp_path, "good.txt", ARTICLE)
    for name, (data, _) in BAD_FILES.items():
        _write(tmp_path, name, data)
    _write(tmp_path, "big.txt", ARTICLE * 100)
    config = Config(max_file_bytes=2000)
    with caplog.at_level(logging.WARNING, logger="qa.ingest"):
        result = load_folder(tmp_path, config)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == set(BAD_FILES) | {"big.txt"}
    for name, (_, reason) in BAD_FILES.items():
        assert reason in reasons[name]
    assert "max_file_bytes" in reasons["big.txt"]
    assert "latin1.txt" in caplog.text
    with pytest.raises(IngestError, match=r"big\.txt|binary\.txt"):  # sorted: big.txt comes first
        load_folder(tmp_path, Config(max_file_bytes=2000, strict=True))


# --- folders -----------------------------------------------------------------------------------


def test_load_seeds() -> None:
    result = load_corpus(SEEDS, DEFAULT_CONFIG)
    assert isinstance(result, IngestResult) and result.skipped == []
    assert [d.doc_id for d in result.documents] == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert result.documents[2].title.startswith("Syria: President Assad’s forces plan to re-take Aleppo")


def test_recursive_sorted_posix_ids_spaces_and_unicode(tmp_path: Path) -> None:
    for name in ["b.txt", "a dir/z note.md", "a dir/é ü 日本.txt", "c.TXT", ".hidden.txt", ".git/x.txt"]:
        _write(tmp_path, name, ARTICLE)
    result = load_folder(tmp_path, DEFAULT_CONFIG)
    assert [d.doc_id for d in result.documents] == ["a dir/z note.md", "a dir/é ü 日本.txt", "b.txt", "c.TXT"]
    assert result.skipped == []
    assert set(file_hashes(tmp_path, DEFAULT_CONFIG)) == {d.doc_id for d in result.documents}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlinks_outside_folder_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _write(outside, "secret.txt", ARTICLE)
    corpus = tmp_path / "corpus"
    _write(corpus, "real.txt", ARTICLE)
    (corpus / "link.txt").symlink_to(outside / "secret.txt")
    (corpus / "linkdir").symlink_to(outside, target_is_directory=True)
    (corpus / "inside.txt").symlink_to(corpus / "real.txt")
    result = load_folder(corpus, STRICT)  # not following a link is not an error, even when strict
    assert [d.doc_id for d in result.documents] == ["inside.txt", "real.txt"]
    assert {s.path for s in result.skipped} == {"link.txt", "linkdir"}
    assert all("outside" in s.reason and "not followed" in s.reason for s in result.skipped)
    assert set(file_hashes(corpus, DEFAULT_CONFIG)) == {"inside.txt", "real.txt"}


def test_file_hashes_match_document_hashes(tmp_path: Path) -> None:
    _write(tmp_path, "a.txt", ARTICLE)
    _write(tmp_path, "bad.txt", b"\x00\x01")
    hashes = file_hashes(tmp_path, DEFAULT_CONFIG)
    doc = load_folder(tmp_path, DEFAULT_CONFIG).documents[0]
    assert hashes["a.txt"] == doc.sha256
    assert hashes["bad.txt"] == hashlib.sha256(b"\x00\x01").hexdigest()  # skipped files are hashed too
    seeds = load_folder(SEEDS, DEFAULT_CONFIG).documents
    assert file_hashes(SEEDS, DEFAULT_CONFIG) == {d.doc_id: d.sha256 for d in seeds}


def test_only_boilerplate_file_is_kept_without_content(tmp_path: Path) -> None:
    _write(tmp_path, "f.txt",
           "Footer page\n\nCopyright © 2024 Example News. All rights reserved.\n\neditor@example.com\n")
    (doc,) = load_folder(tmp_path, DEFAULT_CONFIG).documents
    assert doc.paragraphs and doc.content_paragraphs() == []


def test_load_corpus_rejects_other_paths(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        load_corpus(tmp_path / "nope", DEFAULT_CONFIG)
    single = _write(tmp_path, "a.txt", ARTICLE)
    with pytest.raises(IngestError, match="neither a folder nor a .jsonl file"):
        load_corpus(single, DEFAULT_CONFIG)


# --- JSONL -------------------------------------------------------------------------------------


def _jsonl(tmp_path: Path, lines: list[str]) -> Path:
    return _write(tmp_path, "corpus.jsonl", "\n".join(lines) + "\n")


def test_jsonl_ids_titles_and_text_keys(tmp_path: Path) -> None:
    records = [
        {"id": "a", "title": "Alpha", "text": "First line.\nSecond\u00a0line."},
        {"_id": 7, "title": "", "text": "Seven."},
        {"pid": "p1", "context": "A SQuAD-style context."},
    ]
    path = _jsonl(tmp_path, [json.dumps(r) for r in records] + [""])
    result = load_corpus(path, DEFAULT_CONFIG)
    assert result.skipped == []
    a, seven, p1 = result.documents
    assert (a.doc_id, a.title, a.text) == ("a", "Alpha", "First line.\nSecond line.")
    assert (seven.doc_id, seven.title) == ("7", "")
    assert (p1.doc_id, p1.title, p1.text) == ("p1", "", "A SQuAD-style context.")
    canonical = json.dumps(records[0], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert a.sha256 == hashlib.sha256(canonical.encode()).hexdigest()
    assert len(a.paragraphs) == 2


def test_jsonl_never_marks_boilerplate(tmp_path: Path) -> None:
    text = "Subscribe to our newsletter.\nCopyright © 2015 BBC.\nResearch shows a 20% effect."
    (doc,) = load_jsonl(_jsonl(tmp_path, [json.dumps({"id": 1, "text": text})]), DEFAULT_CONFIG).documents
    assert len(doc.paragraphs) == 3 and all(not p.boilerplate for p in doc.paragraphs)


def test_jsonl_bad_lines_are_skipped_or_raise(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, [
        json.dumps({"id": "ok", "text": "Fine."}),
        '{"id": "broken", "text": ',
        json.dumps({"title": "no id", "text": "x"}),
        json.dumps({"id": "empty", "text": "  "}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": "ok", "text": "Duplicate."}),
    ])
    result = load_jsonl(path, DEFAULT_CONFIG)
    assert [d.doc_id for d in result.documents] == ["ok"]
    assert [s.path for s in result.skipped] == [f"corpus.jsonl:{n}" for n in (2, 3, 4, 5, 6)]
    assert "not valid JSON" in result.skipped[0].reason
    assert "'id'" in result.skipped[1].reason
    assert "duplicate id" in result.skipped[4].reason
    with pytest.raises(IngestError, match=r"corpus\.jsonl, line 2: not valid JSON"):
        load_jsonl(path, STRICT)


def test_skipped_is_a_plain_record() -> None:
    assert Skipped("a.txt", "empty") == Skipped(path="a.txt", reason="empty")


def test_make_document_marks_boilerplate() -> None:
    doc = make_document("x", " T ", "Real sentence one here, it is long enough.\ncontact@example.org", "0" * 64)
    assert doc.title == "T"
    assert [p.boilerplate for p in doc.paragraphs] == [False, True]


# --- files that are not plain articles ----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_skipped_not_read(tmp_path: Path) -> None:
    """Reading a FIFO would block the build forever; it is skipped with a reason, and never hashed."""
    _write(tmp_path, "good.txt", ARTICLE)
    os.mkfifo(tmp_path / "pipe.txt")
    result = load_folder(tmp_path, DEFAULT_CONFIG)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    assert result.skipped == [Skipped("pipe.txt", result.skipped[0].reason)]
    assert "not a regular file" in result.skipped[0].reason
    assert set(file_hashes(tmp_path, DEFAULT_CONFIG)) == {"good.txt"}
    with pytest.raises(IngestError, match=r"pipe\.txt.*not a regular file"):
        load_folder(tmp_path, STRICT)


def test_file_name_that_is_not_utf8_is_skipped_with_a_printable_name(tmp_path: Path) -> None:
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text(ARTICLE, encoding="utf-8")
    _write(tmp_path, "ok.txt", ARTICLE)
    result = load_folder(tmp_path, DEFAULT_CONFIG)
    assert [d.doc_id for d in result.documents] == ["ok.txt"]
    (skipped,) = result.skipped
    assert skipped.path == "caf\ufffd.txt" and "name is not valid UTF-8" in skipped.reason
    skipped.path.encode("utf-8")  # printable and storable, unlike the surrogate-escaped name
    assert set(file_hashes(tmp_path, DEFAULT_CONFIG)) == {"ok.txt"}


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_dangling_symlink_is_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    _write(tmp_path, "ok.txt", ARTICLE)
    result = load_folder(tmp_path, DEFAULT_CONFIG)
    assert [s.path for s in result.skipped] == ["gone.txt"] and "cannot be read" in result.skipped[0].reason


def test_size_limit_is_checked_on_the_bytes_read(tmp_path: Path, monkeypatch) -> None:
    """A file that grows between stat() and read() is still held to the limit."""
    path = _write(tmp_path, "grows.txt", ARTICLE * 10)
    real_stat = Path.stat

    def small_stat(self, *args, **kwargs):
        result = real_stat(self, *args, **kwargs)
        if self.name != "grows.txt":
            return result
        fields = list(result)
        fields[6] = 10  # st_size
        return os.stat_result(fields)

    monkeypatch.setattr(Path, "stat", small_stat)
    with pytest.raises(IngestError, match=r"larger than max_file_bytes \(100\)"):
        read_article(path, "grows.txt", Config(max_file_bytes=100))


def test_jsonl_lone_surrogates_are_dropped_from_text_and_refused_in_ids(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, ['{"id": "a", "title": "T\\ud800", "text": "Broken \\udc00escape here."}',
                             '{"id": "\\ud800", "text": "Fine text."}'])
    result = load_jsonl(path, DEFAULT_CONFIG)
    (doc,) = result.documents
    assert (doc.title, doc.text) == ("T", "Broken escape here.")
    assert "lone surrogate" in result.skipped[0].reason
    json.dumps(doc.__dict__ | {"paragraphs": []}, ensure_ascii=False).encode("utf-8")
