"""Extraction speed per file format (documents and pages per CPU-second) and its share of a build.

Generates a few hundred files from the five seed articles (tests/realdocs.py makes them as the tests do):
news web pages with their furniture, PDFs printed by headless Chromium (one print of all five seeds, each
from a new page, split into one PDF per article with pypdf; copies differ in their Title property so each
file has its own hash), Word files written by python-docx, and the plain .txt seeds as the baseline. Then:

1. every file is read once through qa's format registry (``qa.ingest.read_article``), per format, after one
   warm-up file (which pays for importing the format's library);
2. a folder holding ``--build-per-format`` files of each format is built into a fresh index (real encoder),
   and rebuilt with nothing changed (which reuses the PDF, Word and web-page extractions stored in the
   index); reading all the files is compared with the whole build's CPU time.

Times are CPU seconds of this process (``time.process_time``, all threads), not wall time: the machine is
shared, and wall time would measure the neighbours.

    python bench/extract_speed.py [--per-format 100] [--build-per-format 10] [--out bench/results]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    REPO,
    RESULTS,
    finish_machine_info,
    log,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)

offline_env()
sys.path.insert(0, str(REPO / "tests"))  # realdocs: the same document makers as the tests

from realdocs import news_page, print_page, print_pdf, seed, write_docx

from qa.config import DEFAULT_CONFIG
from qa.ingest import load_folder, read_article

SEED_IDS = ("000", "001", "002", "003", "004")


def make_corpus(root: Path, per_format: int) -> dict[str, list[Path]]:
    """``per_format`` files of each format under root/<format>/, cycling through the seeds."""
    import pypdf

    files: dict[str, list[Path]] = {name: [] for name in ("txt", "html", "pdf", "docx")}
    for name in files:
        (root / name).mkdir(parents=True, exist_ok=True)
    seeds = [seed(s) for s in SEED_IDS]
    # One Chromium print of the five seeds, each starting a page; split where each seed's title starts a page.
    html = "".join(print_page(t, p).split("<body>")[1].split("</body>")[0] for t, p in seeds)
    html = html.replace("<h1>", '<h1 style="break-before: page">')
    whole = print_pdf(print_page("all seeds", []).replace("<h1>all seeds</h1>", html), root / "all.pdf", root / "work")
    reader = pypdf.PdfReader(whole)
    firsts = [next(i for i, page in enumerate(reader.pages) if t[:40] in (page.extract_text() or "")[:400])
              for t, _ in seeds]
    bounds = list(zip(firsts, firsts[1:] + [len(reader.pages)], strict=True))
    for i in range(per_format):
        k = i % len(seeds)
        title, paragraphs = seeds[k]
        (root / "txt" / f"{i:04d}.txt").write_text(f"{title} ({i})\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
        (root / "html" / f"{i:04d}.html").write_text(news_page(f"{title} ({i})", paragraphs), encoding="utf-8")
        write_docx(root / "docx" / f"{i:04d}.docx", f"{title} ({i})", paragraphs)
        writer = pypdf.PdfWriter()
        for page in reader.pages[bounds[k][0] : bounds[k][1]]:
            writer.add_page(page)
        writer.add_metadata({"/Title": f"{title} ({i})"})
        with open(root / "pdf" / f"{i:04d}.pdf", "wb") as out:
            writer.write(out)
    for name in files:
        files[name] = sorted((root / name).iterdir())
    return files


def extraction(files: dict[str, list[Path]]) -> list[dict[str, Any]]:
    rows = []
    for name, paths in files.items():
        read_article(paths[0], paths[0].name, DEFAULT_CONFIG)  # warm-up: imports the format's library
        t0 = time.process_time()
        docs = [read_article(p, p.name, DEFAULT_CONFIG) for p in paths]
        cpu = time.process_time() - t0
        pages = sum(len(d.pages) for d in docs) or None
        mb = sum(p.stat().st_size for p in paths) / 1e6
        row = {"format": name, "files": len(paths), "pages": pages, "megabytes": round(mb, 1),
               "cpu_seconds": round(cpu, 2), "documents_per_cpu_second": round(len(paths) / cpu, 1),
               "pages_per_cpu_second": round(pages / cpu, 1) if pages else None,
               "ms_per_document": round(1000 * cpu / len(paths), 1)}
        log(f"  {name:5s} {row['documents_per_cpu_second']:7.1f} documents/CPU-s"
            + (f", {row['pages_per_cpu_second']:.1f} pages/CPU-s" if pages else ""))
        rows.append(row)
    return rows


def build_share(files: dict[str, list[Path]], per_format: int, work: Path) -> dict[str, Any]:
    from qa.embed import get_encoder
    from qa.index.build import build_index

    folder = work / "build"
    for name, paths in files.items():
        (folder / name).mkdir(parents=True)
        for path in paths[:per_format]:
            shutil.copy(path, folder / name / path.name)
    encoder = get_encoder(DEFAULT_CONFIG.model_name)
    encoder.encode_passages(["warm"], ["up"], batch_size=1, progress=False)
    t0 = time.process_time()
    load_folder(folder, DEFAULT_CONFIG)
    ingest = time.process_time() - t0
    t0 = time.process_time()
    report = build_index(folder, work / "index", DEFAULT_CONFIG, progress=False, encoder=encoder)
    build = time.process_time() - t0
    t0 = time.process_time()
    again = build_index(folder, work / "index", DEFAULT_CONFIG, progress=False, encoder=encoder)
    rebuild = time.process_time() - t0
    assert again.up_to_date
    log(f"  build of {report.n_documents} documents: ingest {ingest:.1f} of {build:.1f} CPU-s; "
        f"unchanged rebuild {rebuild:.1f} CPU-s")
    return {"documents": report.n_documents, "passages": report.n_passages, "ingest_cpu_seconds": round(ingest, 2),
            "build_cpu_seconds": round(build, 2), "ingest_share_of_build": round(ingest / build, 3),
            "unchanged_rebuild_cpu_seconds": round(rebuild, 2)}


def markdown(rows: list[dict[str, Any]], share: dict[str, Any], info: dict[str, Any]) -> str:
    lines = ["# Extraction speed per format", "",
             ("CPU time of this process (`time.process_time`), not wall time: the machine was shared with other "
             "work during the run (see the load figures below), so wall-clock rates would understate it."), "",
             "| format | files | pages | MB | CPU s | documents / CPU-s | pages / CPU-s | ms / document |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['format']} | {r['files']} | {r['pages'] or '-'} | {r['megabytes']} | {r['cpu_seconds']} | "
                     f"{r['documents_per_cpu_second']} | {r['pages_per_cpu_second'] or '-'} | {r['ms_per_document']} |")
    lines += ["", (f"Build of {share['documents']} documents ({share['passages']} passages, every format alike): "
              f"reading the files took {share['ingest_cpu_seconds']} of {share['build_cpu_seconds']} CPU-s "
              f"({100 * share['ingest_share_of_build']:.1f}%); a rebuild with nothing changed took "
              f"{share['unchanged_rebuild_cpu_seconds']} CPU-s (it reads the .txt files again and takes the "
              "PDF, Word and web-page extractions over from the index, as `qa build` does)."), "",
              machine_md(info)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-format", type=int, default=100, help="files generated per format (default 100)")
    parser.add_argument("--build-per-format", type=int, default=10, help="files per format in the timed build")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder (default bench/results)")
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="qa-extract-") as tmp:
        work = Path(tmp)
        log(f"generating {args.per_format} files per format")
        files = make_corpus(work / "corpus", args.per_format)
        rows = extraction(files)
        share = build_share(files, min(args.build_per_format, args.per_format), work)
    info = finish_machine_info(info, started)
    write_results(args.out, "extract_speed", {"formats": rows, "build": share, "machine": info},
                  markdown(rows, share, info))


if __name__ == "__main__":
    main()
