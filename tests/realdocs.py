"""Real documents for the ingest tests, made on the spot: news web pages with their furniture, PDFs printed
by headless Chromium, Word files written by python-docx. Shared by the tests and bench/extract_speed.py."""

from __future__ import annotations

import html
import io
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

from qa.ingest import docx as docx_reader

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"

# Page furniture around the article of news_page(): none of it may ever be indexed or answered from.
FURNITURE = {
    "cookie": "We use cookies to improve your experience on our site. By continuing to browse you agree to our "
              "use of cookies.",
    "most_read": [
        "Zebra crossing painted purple in Oslo after mayor loses bet with schoolchildren",
        "Chef Marguerite Olsen wins the Golden Ladle award for the third year running",
        "Scientists find that the glacier in Patagonia retreated eleven kilometres since 1990",
    ],
    "related": [
        "Harbour festival in Bergen draws record crowd of 40,000 visitors",
        "Railway line to Tromsø reopens after landslide",
    ],
    "newsletter": "Sign up to our newsletter and get the day's top stories delivered to your inbox every morning.",
    "footer": "The Daily Example is edited by Harold Finch from offices at 12 Quayside Road, Newcastle.",
}


def seed(name_start: str) -> tuple[str, list[str]]:
    """(title, paragraphs) of the seed article whose file name starts with ``name_start`` ("001")."""
    (path,) = SEEDS.glob(f"{name_start}_*.txt")
    title, _, body = path.read_text(encoding="utf-8").partition("\n")
    return title.strip(), [line.strip() for line in body.split("\n") if line.strip()]


def news_page(title: str, paragraphs: list[str], author: str = "Jane Doe", date: str = "2013-06-10") -> str:
    """A news web page: the article inside navigation, a cookie banner, a "most read" sidebar, related
    links, a newsletter box and a footer, as a saved page of a news site looks."""
    e = html.escape
    body = "\n".join(f"<p>{e(p)}</p>" for p in paragraphs)
    most_read = "".join(f'<li><a href="/m{i}">{e(t)}</a></li>' for i, t in enumerate(FURNITURE["most_read"]))
    related = "".join(f'<li><a href="/r{i}">{e(t)}</a></li>' for i, t in enumerate(FURNITURE["related"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)} | The Daily Example</title>
<meta name="author" content="{e(author)}">
<meta property="article:published_time" content="{date}T08:00:00Z">
<meta property="og:title" content="{e(title)}">
<style>nav li {{ display: inline; margin-right: 1em; }}</style></head>
<body>
<div id="cookie-banner" class="cookie-consent"><p>{e(FURNITURE["cookie"])}</p><button>Accept all cookies</button></div>
<header><nav class="main-nav"><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/politics">Politics</a></li><li><a href="/sport">Sport</a></li><li><a href="/culture">Culture</a></li>
</ul></nav></header>
<main>
<article>
<h1>{e(title)}</h1>
<p class="byline">By <span class="author">{e(author)}</span>, <time datetime="{date}">{date}</time></p>
{body}
</article>
<aside class="most-read"><h2>Most read</h2><ol>{most_read}</ol></aside>
<section class="related"><h2>Related stories</h2><ul>{related}</ul></section>
<div class="newsletter-signup"><h3>Get our morning briefing</h3><p>{e(FURNITURE["newsletter"])}</p>
<form><input type="email" placeholder="Your email"><button>Subscribe</button></form></div>
</main>
<footer class="site-footer"><p>{e(FURNITURE["footer"])}</p>
<p>© 2024 The Daily Example Ltd. All rights reserved. <a href="/privacy">Privacy policy</a> ·
<a href="/terms">Terms of use</a></p></footer>
</body></html>"""


def print_page(title: str, paragraphs: list[str], break_before: int | None = None, style: str = "") -> str:
    """A plain printable page; ``break_before``: index of the paragraph that starts a new page (CSS)."""
    e = html.escape
    page_break = ' style="break-before: page"'
    parts = [f"<p{page_break if i == break_before else ''}>{e(p)}</p>" for i, p in enumerate(paragraphs)]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>body {{ font: 12pt serif; {style} }}</style></head>"
            f"<body><h1>{e(title)}</h1>{''.join(parts)}</body></html>")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def print_pdf(page_html: str, out: Path, work: Path) -> Path:
    """``page_html`` printed to ``out`` by headless Chromium (with its default date/title header and
    URL/page-number footer, as a user's "Print to PDF" gives)."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"{out.stem}.html"
    source.write_text(page_html, encoding="utf-8")
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={work / 'profile'}",
         f"--print-to-pdf={out}", source.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return out


def write_docx(path: Path, title: str, paragraphs: list[str], *, heading_every: int = 0, author: str = "") -> Path:
    """A Word file: the title as a Title-styled heading, then the paragraphs (a Heading 2 before every
    ``heading_every``-th one when set)."""
    import docx

    document = docx.Document()
    document.add_heading(title, level=0)
    for i, text in enumerate(paragraphs):
        if heading_every and i and i % heading_every == 0:
            document.add_heading(f"Part {i // heading_every + 1}", level=2)
        document.add_paragraph(text)
    if author:
        document.core_properties.author = author
    document.save(str(path))
    return path


# --- bad files ------------------------------------------------------------------------------


def docx_bytes(tmp_path: Path, extra: dict[str, bytes] | None = None) -> bytes:
    title, paragraphs = seed("000")
    path = write_docx(tmp_path / "base.docx", title, paragraphs)
    if extra:
        with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in extra.items():
                archive.writestr(name, data)
    return path.read_bytes()


def scanned_pdf() -> bytes:
    """A scan: pages that are pictures of text, as a scanner writes them (Pillow), with no text layer."""
    from PIL import Image, ImageDraw

    pages = []
    for n in range(2):
        image = Image.new("L", (850, 1100), 255)
        draw = ImageDraw.Draw(image)
        for i in range(30):
            draw.text((60, 60 + 32 * i), f"Page {n + 1}, line {i + 1}: Qusayr lies near the Lebanese border.", fill=0)
        pages.append(image)
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:], resolution=100)
    return out.getvalue()


def encrypted_pdf(pdf: Path, user_password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(pdf))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def bad_files(tmp_path: Path, pdf: Path) -> dict[str, tuple[bytes, str]]:
    """{file name: (bytes, the reason it must be skipped with)}: every kind of bad file."""
    raw_pdf = pdf.read_bytes()
    rng = random.Random(0)
    return {
        "encrypted.pdf": (encrypted_pdf(pdf, "reader-secret"), "it is encrypted (a password is needed"),
        "scanned.pdf": (scanned_pdf(), "no text layer: run OCR first"),
        "truncated.pdf": (raw_pdf[: len(raw_pdf) // 2], "it is truncated"),
        "corrupt.pdf": (b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", "it is damaged"),
        "truncated.docx": (docx_bytes(tmp_path)[:20_000], "it is truncated or damaged"),
        "ratio-bomb.docx": (docx_bytes(tmp_path, {"word/media/fill.bin": bytes(30_000_000)}),
                            f"more than the limit of {docx_reader.MAX_RATIO} for Word files (a zip bomb?)"),
        "size-bomb.docx": (docx_bytes(tmp_path, {"word/media/noise.bin": rng.randbytes(2_000_000),
                                                  "word/media/fill.bin": bytes(99_000_000)}),
                           f"more than the {docx_reader.MAX_UNPACKED_BYTES:,}-byte limit for Word files"),
        "menu.html": (("<html><head><title>Sections</title></head><body><nav><ul>"
                       + "".join(f'<li><a href="/s{i}">Section {i}</a></li>' for i in range(30))
                       + "</ul></nav></body></html>").encode(), "no main text found"),
        "notes.odt": (b"PK\x03\x04 an OpenDocument file", "unsupported format (.odt files)"),
        "README": (b"Read me first.\n", "unsupported format (files without a suffix)"),
        "corpus.jsonl": (b'{"id": "a", "text": "A record."}\n', "a .jsonl corpus is read on its own"),
    }
