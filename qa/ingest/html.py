"""Web pages (.html, .htm): the article's main text, found by trafilatura.

trafilatura is built for news pages: it drops navigation, cookie banners, "most read" teasers, related
links, newsletter boxes and footers, and reads the title, author and date from the page's metadata. Our
own boilerplate step (qa.boilerplate) still runs on what it keeps. The page's encoding is taken from the
page itself (meta charset, or detected), not assumed to be UTF-8.
"""

from __future__ import annotations

import logging

from qa.ingest.documents import Extracted, Unreadable, normalize_line

logger = logging.getLogger(__name__)


def read_html(raw: bytes) -> Extracted:
    try:
        import trafilatura
    except ImportError:
        raise Unreadable("reading web pages needs trafilatura: pip install trafilatura lxml_html_clean") from None
    try:
        # Precision mode: a page of links and menus gives no text rather than its menus as text.
        page = trafilatura.bare_extraction(raw, with_metadata=True, include_comments=False, include_tables=True,
                                           include_images=False, include_links=False, favor_precision=True)
    except Exception as exc:  # noqa: BLE001 - lxml and trafilatura raise many kinds of errors on odd markup
        raise Unreadable(f"it cannot be parsed as a web page ({type(exc).__name__}: {exc})") from None
    text = (page.text or "") if page is not None else ""
    if not text.strip():
        raise Unreadable(
            "no main text found: the page holds only navigation, links or scripts (or is not HTML); "
            "save the article's own page, or copy its text into a .txt file"
        )
    title = normalize_line(page.title or "")
    lines = text.split("\n")
    if title and normalize_line(lines[0]).casefold() == title.casefold():
        lines = lines[1:]  # the headline, kept by trafilatura as the first line
    if not any(line.strip() for line in lines):
        raise Unreadable("no main text found: the page holds a headline but no article text; save the article's page")
    return Extracted(title, "\n".join(lines), author=normalize_line(page.author or ""), date=page.date or "")
