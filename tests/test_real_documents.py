"""Issue 17's acceptance: a folder holding a seed article as a news web page, another as a 2-page PDF and a third
as a Word file builds with nothing skipped; questions are answered from each, an answer from page 2 of the PDF
cites page 2, and the page's teasers and footer are never answered from. Incremental rebuilds, reader versions
in the manifest, and `qa build --strict` on every kind of bad file."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from realdocs import FURNITURE, bad_files, chromium, news_page, print_page, print_pdf, seed, write_docx

from qa.cli import main
from qa.config import DEFAULT_CONFIG
from qa.index.build import build_index, index_status
from qa.index.check import verify_index
from qa.index.load import load_index
from qa.ingest import FORMATS, registry
from qa.retrieve import Retriever

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium() is None, reason="needs chromium")]

PAGE_BREAK = 9  # seed 001's paragraph that starts page 2 of its PDF
ON_PAGE_2 = "How many countries joined the Friends of Syria against the regime?"  # "150", paragraph 14


def _print_seed_pdf(path: Path, work: Path, countries: str = "150") -> Path:
    title, paragraphs = seed("001")
    paragraphs = [p.replace("150 countries", f"{countries} countries") for p in paragraphs]
    return print_pdf(print_page(title, paragraphs, break_before=PAGE_BREAK), path, work)


def _make_folder(folder: Path, work: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    title, paragraphs = seed("000")
    (folder / "inside-syria.html").write_text(news_page(title, paragraphs), encoding="utf-8")
    _print_seed_pdf(folder / "after-qusayr.pdf", work)
    title, paragraphs = seed("002")
    write_docx(folder / "aleppo.docx", title, paragraphs, author="A. Reporter")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory, encoder) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("real")
    folder = _make_folder(root / "articles", root / "work")
    report = build_index(folder, root / "index", DEFAULT_CONFIG, progress=False, encoder=encoder)
    assert report.skipped == [] and report.no_text == [] and report.n_documents == 3
    return folder, root / "index"


@pytest.fixture(scope="module")
def retriever(built) -> Retriever:
    return Retriever.load(built[1], DEFAULT_CONFIG)


@pytest.mark.parametrize(("question", "answer", "doc_id", "page"), [
    (ON_PAGE_2, "150", "after-qusayr.pdf", 2),
    ("How much humanitarian aid has the UN asked for in total this year?", "$5.4bn", "inside-syria.html", None),
    ("Which hardline Islamist group sent volunteers to defend Qusayr?", "Jabhat al-Nusra", "aleppo.docx", None),
])
def test_questions_are_answered_from_each_format(retriever, question, answer, doc_id, page) -> None:
    res = retriever.ask(question, k=3)
    assert not res.abstained
    best = res.answers[0]
    source = best.sources[0]
    assert answer in best.text and source.doc_id == doc_id and source.page == page
    assert res.to_dict()["answers"][0]["sources"][0]["page"] == page


def test_pages_survive_the_index_and_the_cli_shows_them(built, retriever, capsys) -> None:
    _, index_dir = built
    doc = retriever.store.documents["after-qusayr.pdf"]
    assert len(doc.pages) == 2
    source = retriever.ask(ON_PAGE_2, k=1).answers[0].sources[0]
    assert doc.page_at(source.doc_start) == 2 and doc.text[source.doc_start : source.doc_end] == "150"
    passages = [p for p in retriever.store.passages if p.doc_id == "after-qusayr.pdf"]
    assert {p.pages for p in passages} >= {(1,), (2,)} or any(p.pages == (1, 2) for p in passages)
    assert all(p.page_at(p.start) == doc.page_at(p.start) for p in passages)
    assert main(["ask", ON_PAGE_2, "--index", str(index_dir), "-k", "1"]) == 0
    assert "after-qusayr.pdf, p. 2 [" in capsys.readouterr().out
    assert main(["ask", ON_PAGE_2, "--index", str(index_dir), "-k", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["answers"][0]["sources"][0]["page"] == 2


@pytest.mark.parametrize("question", [
    "Who edits The Daily Example?",
    "Which chef won the Golden Ladle award?",
    "How far did the glacier in Patagonia retreat?",
    "How many visitors did the harbour festival in Bergen draw?",
    "Where are the offices of The Daily Example?",
])
def test_teasers_and_footer_are_never_answered_from(retriever, question) -> None:
    furniture = [FURNITURE["footer"], FURNITURE["cookie"], FURNITURE["newsletter"], *FURNITURE["most_read"],
                 *FURNITURE["related"]]
    res = retriever.ask(question, k=3)
    for answer in res.answers + res.suggestions:
        for source in answer.sources:
            assert not any(source.passage_text in f or f in source.passage_text for f in furniture)
    assert not any(f[:30] in p.text for p in retriever.store.passages for f in furniture)


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The formats of the files that builds really read (not reused from the previous index), in order."""
    seen: list[str] = []
    for suffix, fmt in list(registry._BY_SUFFIX.items()):
        if fmt.read is not None:
            def read(raw, _fmt=fmt):
                seen.append(_fmt.name)
                return _fmt.read(raw)

            monkeypatch.setitem(registry._BY_SUFFIX, suffix, dataclasses.replace(fmt, read=read))
    return seen


def test_a_changed_pdf_is_reread_and_reembedded_and_unchanged_files_are_not(built, tmp_path, encoder, reads) -> None:
    folder, index_dir = built
    copy, index_copy = tmp_path / "articles", tmp_path / "index"
    shutil.copytree(folder, copy)
    shutil.copytree(index_dir, index_copy)
    again = build_index(copy, index_copy, DEFAULT_CONFIG, progress=False, encoder=encoder)
    assert again.up_to_date and again.passages_embedded == 0 and reads == []  # nothing read again
    _print_seed_pdf(copy / "after-qusayr.pdf", tmp_path / "work", countries="120")
    assert index_status(copy, index_copy).changed == ["after-qusayr.pdf"]
    report = build_index(copy, index_copy, DEFAULT_CONFIG, progress=False, encoder=encoder)
    assert reads == ["pdf"]
    assert report.changed == ["after-qusayr.pdf"] and sorted(report.unchanged) == ["aleppo.docx", "inside-syria.html"]
    loaded = load_index(index_copy, DEFAULT_CONFIG)
    assert report.passages_embedded == len(loaded.rows_of("after-qusayr.pdf"))
    best = Retriever.load(index_copy, DEFAULT_CONFIG).ask(ON_PAGE_2, k=1).answers[0]
    assert "120" in best.text and best.sources[0].page == 2


def test_an_index_read_by_other_reader_versions_is_stale_and_rebuilt(built, tmp_path, encoder, reads) -> None:
    folder, index_dir = built
    index_copy = tmp_path / "index"
    shutil.copytree(index_dir, index_copy)
    manifest_path = index_copy / (index_copy / "CURRENT").read_text().strip() / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    installed = {fmt.name: fmt.extractor() for fmt in FORMATS}
    assert manifest["extractors"] == {name: installed[name] for name in ("docx", "html", "pdf")}
    manifest["extractors"]["pdf"] = "pypdf 3.0.0"
    manifest_path.write_text(json.dumps(manifest))
    status = index_status(folder, index_copy)
    assert not status.current
    assert f"pdf files were read with pypdf 3.0.0, this qa uses {installed['pdf']}" in status.reason
    report = build_index(folder, index_copy, DEFAULT_CONFIG, progress=False, encoder=encoder)
    assert reads == ["pdf"]  # read again by the installed reader; the others are reused
    assert not report.up_to_date and report.passages_embedded == 0  # the same text is not re-embedded
    assert index_status(folder, index_copy).current


def test_strict_build_fails_on_each_bad_file_and_keeps_the_index(built, tmp_path, capsys) -> None:
    folder, index_dir = built
    index_copy = tmp_path / "index"
    shutil.copytree(index_dir, index_copy)
    live = (index_copy / "CURRENT").read_text()
    bad = bad_files(tmp_path, folder / "after-qusayr.pdf")
    for name, (data, reason) in bad.items():
        source = tmp_path / f"src-{name}"
        shutil.copytree(folder, source)
        (source / name).write_bytes(data)
        assert main(["build", "--seeds", str(source), "--index", str(index_copy), "--strict", "--no-progress"]) == 1
        err = capsys.readouterr().err
        assert f"Cannot ingest {source / name}: " in err and reason in err, (name, err)
        assert (index_copy / "CURRENT").read_text() == live
    assert verify_index(index_copy, DEFAULT_CONFIG) == []
    assert "150" in Retriever.load(index_copy, DEFAULT_CONFIG).ask(ON_PAGE_2, k=1).answers[0].text
    # Without --strict the same files are skipped, each with its reason, and the good ones are kept.
    source = tmp_path / "all"
    shutil.copytree(folder, source)
    for name, (data, _) in bad.items():
        (source / name).write_bytes(data)
    assert main(["build", "--seeds", str(source), "--index", str(index_copy), "--no-progress"]) == 0
    out = capsys.readouterr()
    for name, (_, reason) in bad.items():
        assert f"skipped {name}: " in out.err and reason in out.err
    assert "3 documents" in out.out and f"{len(bad)} skipped" in out.out


def test_extract_speed_bench_runs_on_a_tiny_slice(tmp_path) -> None:
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "bench/extract_speed.py", "--per-format", "3", "--build-per-format", "1",
                           "--out", str(tmp_path)], cwd=repo, env=env, capture_output=True, text=True, timeout=900,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "extract_speed.json").read_text())
    assert [r["format"] for r in results["formats"]] == ["txt", "html", "pdf", "docx"]
    assert results["formats"][2]["pages"] >= 3 and results["build"]["documents"] == 4
    assert "| pdf | 3 |" in (tmp_path / "extract_speed.md").read_text()
