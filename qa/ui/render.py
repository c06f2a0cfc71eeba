"""HTML of the page's panels: answer cards, the abstention and conflict states, per-stage scores, the index panel.

Pure functions of a Response (or a Library) to a string, so the markup is tested without a server or a model
(tests/test_app.py) and the same response always gives the same HTML. The answer area is raw HTML
(``gr.HTML`` sets ``innerHTML``): every piece of article text, title, file name and question goes through
``_e`` (html.escape) here, and nowhere else builds markup from user text. The classes are styled in qa.ui.style.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from qa.config import Config
from qa.errors import QAError
from qa.library import article_formats
from qa.passages import sentence_around
from qa.types import Answer, Document, Hit, Response, Source

if TYPE_CHECKING:
    from qa.library import Library

HINT = '<p class="qa-hint">Type a question and press Enter. Answers come with the articles they were read in.</p>'


def _e(text: object) -> str:
    """``text`` as HTML text: &, <, >, " and ' escaped."""
    return html.escape(str(text), quote=True)


CONFIDENCE_WORDS = ("high", "medium", "low")


def confidence_words(confidence: float) -> str:
    return "high" if confidence >= 0.7 else "medium" if confidence >= 0.4 else "low"


def conflict_summary(confidences: Sequence[float]) -> str:
    """The conflict panel's sentence, in the answer cards' confidence words: answers the cards call "low"
    must not be called well-supported here."""
    found = {confidence_words(c) for c in confidences}
    words = " and ".join(w for w in CONFIDENCE_WORDS if w in found)
    return f"Answers from different articles do not match ({words} confidence). Check each source."


def highlight(text: str, start: int, end: int) -> str:
    """``text`` escaped, with ``text[start:end]`` in <mark>; the three parts are escaped separately."""
    if not 0 <= start <= end <= len(text) or start == end:
        return _e(text)
    return f"{_e(text[:start])}<mark>{_e(text[start:end])}</mark>{_e(text[end:])}"


def highlight_sentence(text: str, sentence: tuple[int, int], start: int, end: int) -> str:
    """``text`` escaped, its ``sentence`` in <mark class="qa-sentence"> holding ``text[start:end]`` in <mark>:
    how a low-confidence answer shows the sentence it was read in. Plain ``highlight`` when the sentence does
    not hold the span."""
    a, b = sentence
    if not 0 <= a <= start < end <= b <= len(text):
        return highlight(text, start, end)
    return (f'{_e(text[:a])}<mark class="qa-sentence">{highlight(text[a:b], start - a, end - a)}</mark>'
            f"{_e(text[b:])}")


def _confidence_html(confidence: float) -> str:
    pct = max(0, min(100, round(100 * confidence)))
    words = confidence_words(confidence)
    return (
        f'<div class="qa-conf qa-{words}"><div class="qa-bar" role="meter" aria-label="confidence" '
        f'aria-valuemin="0" aria-valuemax="100" aria-valuenow="{pct}"><span style="width: {pct}%"></span></div>'
        f"<span>{pct}% &middot; {words} confidence</span></div>"
    )


def _article_html(doc: Document | None, start: int, end: int) -> str:
    """A collapsed <details> with the whole article, the passage or answer marked."""
    if doc is None:
        return ""
    return (
        f'<details class="qa-article"><summary>Show article</summary><div class="qa-article-text">'
        f"<strong>{_e(doc.title)}</strong>\n\n{highlight(doc.text, start, end)}</div></details>"
    )


def _source_head(title: str, doc_id: str, page: int | None = None) -> str:
    """The source line: title, file, and the page for paged formats (PDF), as the CLI prints it."""
    where = f'<span class="qa-page">p. {int(page)}</span>' if page else ""
    return (
        f'<div class="qa-source-head"><span class="qa-title">{_e(title)}</span>'
        f'<code class="qa-file">{_e(doc_id)}</code>{where}</div>'
    )


def _source_html(src: Source, documents: Mapping[str, Document], *, sentence: bool = False) -> str:
    """A source of an answer: its head, the passage with the span marked (and, with ``sentence``, the sentence
    holding it), and the whole article collapsed."""
    passage = (highlight_sentence(src.passage_text, sentence_around(src.passage_text, src.start, src.end),
                                  src.start, src.end) if sentence
               else highlight(src.passage_text, src.start, src.end))
    return (
        f'<div class="qa-source">{_source_head(src.title, src.doc_id, src.page)}'
        f'<blockquote class="qa-passage">{passage}</blockquote>'
        f"{_article_html(documents.get(src.doc_id), src.doc_start, src.doc_end)}</div>"
    )


def _hit_html(hit: Hit, documents: Mapping[str, Document]) -> str:
    p = hit.passage
    return (
        f'<div class="qa-source">{_source_head(p.title, p.doc_id)}'
        f'<blockquote class="qa-passage">{_e(p.text)}</blockquote>'
        f"{_article_html(documents.get(p.doc_id), p.start, p.end)}</div>"
    )


def _answer_card(i: int, ans: Answer, documents: Mapping[str, Document]) -> str:
    flag = ""
    if ans.conflicts_with:
        others = ", ".join(str(j + 1) for j in ans.conflicts_with)
        flag = f'<p class="qa-flag">Disagrees with answer {_e(others)}</p>'
    n = len(ans.sources)
    sources = "".join(_source_html(s, documents) for s in ans.sources)
    return (
        f'<article class="qa-card"><p class="qa-answer-text"><span class="qa-rank">{i + 1}.</span>'
        f"{_e(ans.text)}</p>{_confidence_html(ans.confidence)}{flag}"
        f'<p class="qa-muted">{n} source{"" if n == 1 else "s"}</p>{sources}</article>'
    )


def _weak_card(ans: Answer, documents: Mapping[str, Document]) -> str:
    """The best candidate of an abstention on topic, shown as what it is: labelled, muted, its sentence marked."""
    n = len(ans.sources)
    sources = "".join(_source_html(s, documents, sentence=True) for s in ans.sources)
    return (
        f'<article class="qa-weak"><p class="qa-weak-label">Low-confidence answer</p>'
        f'<p class="qa-answer-text">{_e(ans.text)}</p>{_confidence_html(ans.confidence)}'
        f'<p class="qa-muted">Not confident enough to count as an answer: check it in its source'
        f'{"" if n == 1 else "s"}.</p>{sources}</article>'
    )


def _abstain_html(res: Response, documents: Mapping[str, Document]) -> str:
    """An abstention: on topic with a candidate, that candidate as a labelled low-confidence answer above a short
    note; on topic without one, "The articles do not answer this."; otherwise "Nothing in the articles is about
    this.". The other candidates stay collapsed; the closest passages follow."""
    hits = "".join(_hit_html(h, documents) for h in res.passages) or "<p>No passages were found.</p>"
    others, weak = res.suggestions, ""
    if res.on_topic and res.suggestions:
        weak, others = _weak_card(res.suggestions[0], documents), res.suggestions[1:]
        head, note = ("The articles may not answer this.",
                      "No passage gives a confident answer; above is the best candidate. The closest passages "
                      "are below.")
    elif res.on_topic:
        head, note = ("The articles do not answer this.",
                      "No passage gives a confident answer. The closest passages are below.")
    else:
        head, note = ("Nothing in the articles is about this.",
                      "The closest passages are below; none is close to the question.")
    maybe = ""
    if others:
        label = "Other low-confidence candidates" if weak else "Low-confidence candidates"
        cards = "".join(_answer_card(i, a, documents) for i, a in enumerate(others, start=1 if weak else 0))
        maybe = f'<details class="qa-suggestions"><summary>{label} ({len(others)})</summary>{cards}</details>'
    return f'{weak}<section class="qa-abstain"><h3>{_e(head)}</h3><p>{_e(note)}</p>{maybe}{hits}</section>'


def _conflict_html(res: Response, documents: Mapping[str, Document]) -> str:
    involved = sorted(
        {i for i, a in enumerate(res.answers) if a.conflicts_with}
        | {j for a in res.answers for j in a.conflicts_with if 0 <= j < len(res.answers)}
    ) or list(range(len(res.answers)))
    sides = []
    for i in involved:
        ans = res.answers[i]
        sources = "".join(_source_html(s, documents) for s in ans.sources)
        sides.append(
            f'<div class="qa-side"><p class="qa-answer-text"><span class="qa-rank">{i + 1}.</span>'
            f"{_e(ans.text)}</p>{_confidence_html(ans.confidence)}{sources}</div>"
        )
    summary = conflict_summary([res.answers[i].confidence for i in involved])
    return (
        '<section class="qa-conflict"><h3>Sources disagree</h3>'
        f'<p class="qa-conflict-summary">{_e(summary)}</p>'
        f'<div class="qa-sides">{"".join(sides)}</div></section>'
    )


def _timing(res: Response) -> str:
    t = res.timings_ms
    total = t.get("total", 0.0) / 1000
    parts = [f"{label} {t[key] / 1000:.2f} s" for key, label in (("retrieve", "search"), ("read", "reading"))
             if key in t]
    return f"{total:.2f} s" + (f" ({', '.join(parts)})" if parts else "")


def render_response(res: Response, documents: Mapping[str, Document]) -> str:
    """The answer area: answer cards, or the abstention state (qa.ui.render._abstain_html)."""
    meta = f"&ldquo;{_e(res.question)}&rdquo; &middot; answered in {_e(_timing(res))}"
    out = [f'<div class="qa-results"><p class="qa-meta">{meta}</p>']
    if res.notice:
        out.append(f'<p class="qa-notice">{_e(res.notice)}</p>')
    if res.abstained or not res.answers:
        out.append(_abstain_html(res, documents))
    else:
        if res.conflict:
            out.append(_conflict_html(res, documents))
        out += [_answer_card(i, a, documents) for i, a in enumerate(res.answers)]
    out.append("</div>")
    return "".join(out)


def _num(value: float | None, rank: float | None = None) -> str:
    if value is None:
        return "&mdash;"
    return f"{value:.4f}" + (f" (#{int(rank)})" if rank is not None else "")


def render_details(res: Response) -> str:
    """Per-stage scores: each retrieved passage (bm25, dense, fused) and each answer (Answer.scores)."""
    rows = []
    for i, hit in enumerate(res.passages, start=1):
        s = hit.scores
        rows.append(
            f"<tr><td>{i}</td><td>{_e(hit.passage.title)}<br><code>{_e(hit.passage.passage_id)}</code></td>"
            f'<td class="qa-num">{_num(s.get("bm25"), s.get("bm25_rank"))}</td>'
            f'<td class="qa-num">{_num(s.get("dense"), s.get("dense_rank"))}</td>'
            f'<td class="qa-num">{_num(s.get("fused"))}</td></tr>'
        )
    head = "<tr><th>#</th><th>Passage</th><th>bm25</th><th>dense</th><th>fused</th></tr>"
    legend = "Scores per retrieval stage (rank in brackets); &mdash; means the stage did not retrieve it."
    out = [
        f"<h3>Retrieved passages</h3><p class='qa-muted'>{legend}</p>",
        f'<div class="qa-table-wrap"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></div>',
    ]
    if res.answers:
        keys = sorted({key for a in res.answers for key in a.scores} - {"confidence"})
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        body = "".join(
            f"<tr><td>{_e(a.text)}</td><td class='qa-num'>{a.confidence:.3f}</td>"
            + "".join(f'<td class="qa-num">{_num(a.scores.get(k))}</td>' for k in keys)
            + "</tr>"
            for a in res.answers
        )
        out.append(
            "<h3>Answers</h3>"
            f'<div class="qa-table-wrap"><table><thead><tr><th>Answer</th><th>confidence</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
    return "".join(out)


def message(text: str, kind: str = "ok") -> str:
    """A status line (kind: ok, notice or error), its line breaks kept."""
    return f'<div class="qa-{kind}">{_e(text).replace(chr(10), "<br>")}</div>'


def render_index_info(library: Library) -> str:
    """The index panel's summary: counts, model, build time, whether it is current, and the articles."""
    store = library.current.get().store
    m = store.manifest
    counts = m.get("counts", {})
    try:
        status = library.status()
        state = (message("Up to date with the articles folder.") if status.current
                 else message(f"Out of date: {status.reason}. Press Rebuild.", "notice"))
    except (OSError, QAError) as exc:
        state = message(f"Cannot check the articles folder: {exc}", "error")
    created = str(m.get("created", "?")).replace("T", " ").replace("+00:00", " UTC")
    stats = (
        f'<div class="qa-stats"><span><b>{_e(counts.get("documents", len(store.documents)))}</b> articles</span>'
        f'<span><b>{_e(counts.get("passages", len(store.passages)))}</b> passages</span>'
        f'<span>model <code>{_e(m.get("model_name", "?"))}</code></span>'
        f'<span>built {_e(created)} in {_e(m.get("build_seconds", "?"))} s</span></div>'
    )
    rows = "".join(
        f"<tr><td>{_e(doc.title)}</td><td><code>{_e(doc_id)}</code></td>"
        f'<td class="qa-num">{len(store.rows_of(doc_id))}</td></tr>'
        for doc_id, doc in sorted(store.documents.items())
    )
    table = (
        '<details><summary>Articles in the index</summary><div class="qa-table-wrap"><table><thead><tr>'
        f"<th>Title</th><th>File</th><th>Passages</th></tr></thead><tbody>{rows}</tbody></table></div></details>"
    )
    return (f"<p class='qa-muted'>Articles folder <code>{_e(library.seeds)}</code>, index "
            f"<code>{_e(library.index)}</code></p>{stats}{state}{table}")


def upload_help(config: Config) -> str:
    """The upload box's text: each accepted format with its size limit, from the ingest registry."""
    formats = article_formats()
    kinds = "; ".join(f"{'/'.join(f'`{s}`' for s in fmt.suffixes)} up to {fmt.limit(config) / 1e6:g} MB"
                      for fmt in formats)
    text = ", ".join(f"`{s}`" for fmt in formats if fmt.utf8 for s in fmt.suffixes)
    return (f"Article files: {kinds}. Text files ({text}) are UTF-8 with the title on the first line. "
            "The index is updated at once.")
