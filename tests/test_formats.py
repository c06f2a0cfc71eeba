"""The format registry and its readers on real files made here: news web pages (trafilatura), PDFs printed by
headless Chromium (pypdf), Word files written by python-docx; and every kind of bad file, skipped with its own
reason or refused when strict."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from realdocs import (
    FURNITURE,
    bad_files,
    chromium,
    docx_bytes,
    encrypted_pdf,
    news_page,
    print_page,
    print_pdf,
    scanned_pdf,
    seed,
    write_docx,
)

from qa.config import DEFAULT_CONFIG, Config
from qa.errors import IngestError
from qa.ingest import (
    FORMATS,
    Reuse,
    article_suffixes,
    check_upload,
    file_hashes,
    format_for,
    load_folder,
    normalise_text,
    read_article,
    registry,
)
from qa.ingest import docx as docx_reader
from qa.ingest.pdf import _join_lines, _join_pages

STRICT = Config(strict=True)
needs_chromium = pytest.mark.skipif(chromium() is None, reason="needs chromium (apt-get install chromium)")


def _lines(text: str) -> list[str]:
    return text.split("\n")


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> dict[str, Path]:
    """Seed 001 printed by Chromium as a 2-page PDF (CSS page break), and the long seed 002 flowing over pages."""
    if chromium() is None:
        pytest.skip("needs chromium (apt-get install chromium)")
    work = tmp_path_factory.mktemp("printed")
    title, paragraphs = seed("001")
    long_title, long_paragraphs = _long_article()
    return {
        "two_pages": print_pdf(print_page(title, paragraphs, break_before=9), work / "two.pdf", work),
        "long": print_pdf(print_page(long_title, long_paragraphs), work / "long.pdf", work),
    }


def _long_article() -> tuple[str, list[str]]:
    """Seed 002 with its first 12 paragraphs run together: one paragraph longer than a page."""
    title, paragraphs = seed("002")
    return title, [" ".join(paragraphs[:12]), *paragraphs[12:]]


# --- the registry --------------------------------------------------------------------------------


def test_registry_maps_each_suffix_to_one_format() -> None:
    suffixes = [s for fmt in FORMATS for s in fmt.suffixes]
    assert len(suffixes) == len(set(suffixes))
    assert article_suffixes() == (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
    assert format_for("A/B/report.PDF").name == "pdf" and format_for("page.htm").name == "html"
    assert format_for("notes.odt") is None and format_for("README") is None
    assert format_for("corpus.jsonl").read is None  # a corpus, not an article
    assert format_for("x.pdf").extractor() == f"pypdf {registry._version('pypdf')}, qa reader 1"
    assert format_for("x.txt").extractor() == "qa"


def test_format_libraries_are_imported_only_when_a_file_of_their_format_is_read() -> None:
    code = (
        "import sys, qa, qa.ingest, qa.index.build, qa.retrieve, qa.index.load, qa.index.check\n"
        "print(sorted(m for m in ('pypdf', 'trafilatura', 'docx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]"


# --- web pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".html", ".htm"])
def test_news_page_gives_the_article_without_its_furniture(tmp_path: Path, suffix: str) -> None:
    title, paragraphs = seed("000")
    path = tmp_path / f"inside-syria{suffix}"
    path.write_text(news_page(title, paragraphs, author="Jane Doe", date="2013-06-10"), encoding="utf-8")
    doc = read_article(path, path.name, DEFAULT_CONFIG)
    assert (doc.title, doc.author, doc.date, doc.pages) == ("Inside Syria", "Jane Doe", "2013-06-10", ())
    lines = _lines(doc.text)
    assert [normalise_text(p) for p in paragraphs] == lines  # every paragraph, in order, nothing else
    furniture = [FURNITURE["cookie"], FURNITURE["newsletter"], FURNITURE["footer"], *FURNITURE["most_read"],
                 *FURNITURE["related"], "Accept all cookies", "Most read", "Politics", "Privacy policy"]
    assert not [f for f in furniture if f in doc.text]


def test_web_page_in_its_own_encoding_is_read(tmp_path: Path) -> None:
    title, paragraphs = seed("001")
    page = news_page(title, paragraphs).replace('charset="utf-8"', 'charset="windows-1252"')
    path = tmp_path / "cp1252.html"
    path.write_bytes(page.encode("cp1252", "replace"))
    doc = read_article(path, path.name, DEFAULT_CONFIG)
    assert doc.title == title and "captured Qusayr – a strategic city" in doc.text  # an en dash in cp1252


# --- PDF -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_page_pdf_keeps_paragraphs_and_pages(printed: dict[str, Path]) -> None:
    title, paragraphs = seed("001")
    doc = read_article(printed["two_pages"], "two.pdf", DEFAULT_CONFIG)
    assert doc.title == title
    # Lines joined back into whole paragraphs; Chromium's header (date, title) and footer (URL, "1/2") are gone.
    assert _lines(doc.text) == [normalise_text(p) for p in paragraphs]
    assert len(doc.pages) == 2 and doc.pages[0] == 0
    second = doc.text.index(normalise_text(paragraphs[9]))
    assert doc.pages[1] == second
    assert doc.page_at(second - 2) == 1 and doc.page_at(second) == 2 and doc.page_at(len(doc.text) - 1) == 2


@pytest.mark.slow
def test_paragraphs_that_run_over_a_page_break_are_joined(printed: dict[str, Path]) -> None:
    _, paragraphs = _long_article()
    doc = read_article(printed["long"], "long.pdf", DEFAULT_CONFIG)
    assert len(doc.pages) >= 3
    assert _lines(doc.text) == [normalise_text(p) for p in paragraphs]
    # A page break fell inside a paragraph (the lines above prove it was joined back): the page starts mid-line.
    assert any(doc.text[start - 1] == " " for start in doc.pages[1:])
    for number, start in enumerate(doc.pages, start=1):
        assert doc.page_at(start) == number


def test_line_joining_undoes_hyphenation_but_keeps_real_hyphens() -> None:
    assert _join_lines(["the negoti-", "ations went on", "for a week."]) == "the negotiations went on for a week."
    assert _join_lines(["President Bashar al-", "Assad said"]) == "President Bashar al-Assad said"
    text, starts = _join_pages([["First page ends mid sen-"], ["tence here.", "New paragraph."], [], ["Last."]])
    assert text == "First page ends mid sentence here.\nNew paragraph.\nLast."
    assert starts == (0, text.index("tence"), text.index("Last"), text.index("Last"))


# --- Word ----------------------------------------------------------------------------------------


def test_docx_headings_paragraphs_and_tables_in_order(tmp_path: Path) -> None:
    import docx

    title, paragraphs = seed("003")
    path = write_docx(tmp_path / "a.docx", title, paragraphs[:6], heading_every=3, author="A. Reporter")
    document = docx.Document(str(path))
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("City", "Held by"), ("Qusayr", "the government")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("A closing line after the table.")
    document.save(str(path))
    doc = read_article(path, "a.docx", DEFAULT_CONFIG)
    assert doc.title == title and doc.author == "A. Reporter"
    expected = [*paragraphs[:3], "Part 2", *paragraphs[3:6], "City | Held by", "Qusayr | the government",
                "A closing line after the table."]
    assert _lines(doc.text) == [normalise_text(p) for p in expected]


def test_docx_title_from_properties_when_it_starts_with_text(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Notes on Qusayr"
    document.add_paragraph("Qusayr lies six miles from the Lebanese border.")
    document.save(str(tmp_path / "notes.docx"))
    doc = read_article(tmp_path / "notes.docx", "notes.docx", DEFAULT_CONFIG)
    assert (doc.title, doc.text) == ("Notes on Qusayr", "Qusayr lies six miles from the Lebanese border.")


# --- bad files: one of each kind -----------------------------------------------------------------


@pytest.mark.slow
def test_every_bad_file_kind_is_skipped_with_its_reason_or_refused_when_strict(tmp_path, printed) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    title, paragraphs = seed("001")
    (folder / "good.txt").write_text(title + "\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    bad = bad_files(tmp_path, printed["two_pages"])
    for name, (data, _) in bad.items():
        (folder / name).write_bytes(data)
    result = load_folder(folder, DEFAULT_CONFIG)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == set(bad)
    for name, (_, reason) in bad.items():
        assert reason in reasons[name], (name, reasons[name])
        lone = tmp_path / f"strict-{name}"
        lone.mkdir()
        (lone / name).write_bytes(bad[name][0])
        with pytest.raises(IngestError, match="Cannot ingest .*" + name) as info:
            load_folder(lone, STRICT)
        assert reason in str(info.value)
    # Unsupported files are listed, not hashed: adding a picture to the folder does not make the index stale.
    hashes = file_hashes(folder, DEFAULT_CONFIG)
    assert "notes.odt" not in hashes and "encrypted.pdf" in hashes


@pytest.mark.slow
def test_a_pdf_protected_only_against_editing_is_read(tmp_path, printed) -> None:
    path = tmp_path / "owner-only.pdf"
    path.write_bytes(encrypted_pdf(printed["two_pages"], ""))
    assert read_article(path, path.name, DEFAULT_CONFIG).text == read_article(
        printed["two_pages"], "two.pdf", DEFAULT_CONFIG).text


@pytest.mark.parametrize("name", ["big.pdf", "big.docx", "big.html", "big.txt"])
def test_each_format_has_its_own_size_limit(tmp_path: Path, monkeypatch, name: str) -> None:
    fmt = format_for(name)
    if fmt.max_bytes is not None:
        monkeypatch.setitem(registry._BY_SUFFIX, Path(name).suffix, dataclasses.replace(fmt, max_bytes=1_000))
    (tmp_path / name).write_bytes(b"x" * 1_001)
    config = Config(max_file_bytes=1_000)
    (skipped,) = load_folder(tmp_path, config).skipped
    limit = "max_file_bytes (1,000)" if fmt.max_bytes is None else f"1,000-byte limit for {fmt.name.upper()} files"
    assert "1,001 bytes, larger than" in skipped.reason and limit in skipped.reason
    with pytest.raises(IngestError, match="larger than"):
        check_upload(name, b"x" * 1_001, config)


def test_registered_limits_are_those_the_readme_states() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for fmt in FORMATS:
        if fmt.max_bytes is not None:
            assert f"{fmt.max_bytes // 1_000_000} MB" in readme, fmt.name
    assert f"{docx_reader.MAX_UNPACKED_BYTES // 1_000_000} MB" in readme and f"{docx_reader.MAX_RATIO}×" in readme


# --- uploads (the UI asks the registry) ----------------------------------------------------------


def test_check_upload_reads_each_format_and_checks_utf8_only_for_text(tmp_path: Path) -> None:
    title, paragraphs = seed("000")
    assert check_upload("a.txt", (title + "\n\n" + paragraphs[2]).encode(), DEFAULT_CONFIG).title == title
    page = news_page(title, paragraphs).replace('charset="utf-8"', 'charset="latin-1"')
    assert check_upload("a.html", page.encode("latin-1", "replace"), DEFAULT_CONFIG).title == title
    assert check_upload("a.docx", docx_bytes(tmp_path), DEFAULT_CONFIG).title == title
    with pytest.raises(IngestError, match=r"Cannot add a\.txt: not valid UTF-8"):
        check_upload("a.txt", (title + "\n\nCafé.").encode("latin-1"), DEFAULT_CONFIG)
    with pytest.raises(IngestError, match=r"Cannot add a\.docx: it is truncated or damaged"):
        check_upload("a.docx", b"PK\x03\x04 not really", DEFAULT_CONFIG)
    with pytest.raises(IngestError, match=r"unsupported format \(\.exe files\); qa reads \.txt, \.md, \.html"):
        check_upload("setup.exe", b"MZ", DEFAULT_CONFIG)
    with pytest.raises(IngestError, match="read on its own"):
        check_upload("corpus.jsonl", b'{"id": 1, "text": "x"}\n', DEFAULT_CONFIG)


@needs_chromium
def test_check_upload_refuses_ascanned_pdf() -> None:
    with pytest.raises(IngestError, match=r"Cannot add scan\.pdf: no text layer: run OCR first"):
        check_upload("scan.pdf", scanned_pdf(), DEFAULT_CONFIG)


# --- reuse of a previous index's extractions -----------------------------------------------------


def test_builds_reuse_the_extraction_of_unchanged_files_read_by_the_same_reader(tmp_path: Path) -> None:
    title, paragraphs = seed("004")
    (tmp_path / "a.html").write_text(news_page(title, paragraphs), encoding="utf-8")
    write_docx(tmp_path / "b.docx", title, paragraphs)
    (tmp_path / "c.txt").write_text(title + "\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    first = load_folder(tmp_path, DEFAULT_CONFIG)
    assert first.reused == [] and set(first.extractors) == {"html", "docx", "text"}
    reuse = Reuse({d.doc_id: d for d in first.documents}, first.extractors)
    again = load_folder(tmp_path, DEFAULT_CONFIG, reuse)
    assert again.reused == ["a.html", "b.docx"] and again.documents == first.documents  # .txt: always read
    write_docx(tmp_path / "b.docx", title, paragraphs[:5])  # changed: read again
    assert load_folder(tmp_path, DEFAULT_CONFIG, reuse).reused == ["a.html"]
    other = Reuse(reuse.documents, {**first.extractors, "html": "trafilatura 1.0.0, qa reader 1"})
    assert load_folder(tmp_path, DEFAULT_CONFIG, other).reused == []  # another reader: read again
