"""The web UI: a thin Gradio layer over the public ``qa`` API.

    python app.py --seeds seeds --index index               # http://127.0.0.1:7860
    QA_APP_PASSWORD=... python app.py --host 0.0.0.0         # other machines: a password is required

On start the index is built (incrementally) when it is missing or stale. Besides the page, the app serves
one JSON endpoint for scripts::

    gradio_client.Client(url).predict("Who backed the rebels?", 3, api_name="/ask")  # Response.to_dict()

Every piece of article text, title, file name and question that reaches the page goes through
``html.escape``: the answer area is raw HTML (``gr.HTML`` sets ``innerHTML``).
"""

from __future__ import annotations

import argparse
import hmac
import html
import json
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from qa import (
    DEFAULT_CONFIG,
    Answer,
    Config,
    Document,
    Hit,
    QAError,
    Response,
    Retriever,
    Source,
    build_index,
    index_status,
)
from qa.errors import IngestError
from qa.files import write_atomic
from qa.ingest import Format, article_suffixes, check_upload, format_for
from qa.logs import configure as configure_logs

if TYPE_CHECKING:  # not in qa.__all__; only its summary() and fields are used
    from qa.index.build import BuildReport

# Named rather than __name__: the app runs as __main__ or as `qa serve`'s "qa_app", and its messages
# belong with the rest of qa's logging.
log = logging.getLogger("qa.app")

EXAMPLES = (
    "Who backed the rebels?",
    "How many people have died in the Syrian conflict?",
    "Which city are Assad's forces preparing to attack next?",
    "What is the capital of France?",
)
MAX_ANSWERS = 5
ASK_CONCURRENCY = 4  # questions answered at once (2 cores: more only queues inside the models)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
REMOVED_DIR = "removed-articles"  # inside the index directory: removed articles are kept, not deleted
# A plain file name: starts with a letter or digit (so never hidden, never "..") and has no separators.
_SAFE_NAME = re.compile(r"[^\W_][\w .,()'&+-]{0,150}", re.UNICODE)
HINT = '<p class="qa-hint">Type a question and press Enter. Answers come with the articles they were read in.</p>'

# Scoped to each gr.HTML component by Gradio (css_template); it is evaluated as a JS template literal, so no
# backticks, backslashes or dollar-brace sequences here. Colours use the theme's variables (dark mode).
CSS = """
font-size: 15px; line-height: 1.5;
* { box-sizing: border-box; }
h1 { font-size: 1.6rem; margin: 0 0 .2rem; }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
p { margin: .3rem 0; }
code { font-family: var(--font-mono); font-size: .85em; overflow-wrap: anywhere; }
mark { background: #fde68a; color: #111; padding: 0 .1em; border-radius: 2px; }
.qa-hint, .qa-meta, .qa-muted { color: var(--body-text-color-subdued); }
.qa-meta { font-size: .9rem; margin-bottom: .6rem; overflow-wrap: anywhere; }
.qa-notice { border-left: 4px solid #d97706; padding: .3rem .7rem; margin: .5rem 0; }
.qa-error { border-left: 4px solid #dc2626; padding: .3rem .7rem; margin: .5rem 0; }
.qa-ok { border-left: 4px solid #16a34a; padding: .3rem .7rem; margin: .5rem 0; }
.qa-card, .qa-abstain, .qa-conflict {
  border: 1px solid var(--border-color-primary); border-radius: 10px; padding: .9rem 1rem;
  margin: 0 0 .9rem; background: var(--background-fill-primary); max-width: 100%;
}
.qa-abstain { border-left: 5px solid #6b7280; }
.qa-conflict { border-left: 5px solid #dc2626; }
.qa-answer-text { font-size: 1.45rem; font-weight: 700; overflow-wrap: anywhere; margin: 0 0 .3rem; }
.qa-rank { color: var(--body-text-color-subdued); font-size: .9rem; font-weight: 400; margin-right: .3rem; }
.qa-conf { display: flex; align-items: center; gap: .6rem; flex-wrap: wrap; font-size: .9rem; }
.qa-bar { width: 10rem; max-width: 50%; height: .55rem; border-radius: 99px; overflow: hidden;
  background: var(--background-fill-secondary); border: 1px solid var(--border-color-primary); }
.qa-bar > span { display: block; height: 100%; }
.qa-high .qa-bar > span { background: #16a34a; }
.qa-medium .qa-bar > span { background: #d97706; }
.qa-low .qa-bar > span { background: #dc2626; }
.qa-flag { color: #dc2626; font-size: .85rem; font-weight: 600; }
.qa-source { border-top: 1px solid var(--border-color-primary); padding-top: .6rem; margin-top: .6rem; }
.qa-source-head { display: flex; flex-wrap: wrap; gap: .2rem .6rem; align-items: baseline; }
.qa-title { font-weight: 600; overflow-wrap: anywhere; }
.qa-passage { margin: .4rem 0; padding: .3rem .7rem; border-left: 3px solid var(--border-color-primary);
  white-space: pre-line; overflow-wrap: anywhere; }
details.qa-article > summary { cursor: pointer; color: var(--link-text-color, #2563eb); font-size: .9rem; }
.qa-article-text { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 28rem; overflow-y: auto;
  padding: .5rem .7rem; background: var(--background-fill-secondary); border-radius: 6px; }
.qa-sides { display: flex; flex-wrap: wrap; gap: .8rem; }
.qa-side { flex: 1 1 16rem; min-width: 0; border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .6rem .8rem; }
.qa-table-wrap { overflow-x: auto; max-width: 100%; margin-bottom: .8rem; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { border-bottom: 1px solid var(--border-color-primary); padding: .25rem .45rem; text-align: left;
  vertical-align: top; }
td.qa-num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.qa-stats { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; margin: .3rem 0 .6rem; }
.qa-stats b { font-size: 1.1rem; }
@media (max-width: 600px) { .qa-answer-text { font-size: 1.2rem; } .qa-bar { width: 6rem; } }
"""


# The system's own sans-serif and monospace faces: nothing is fetched, and every letter of a word comes from
# the same face. (Gradio's default theme serves a "Source Sans Pro" SemiBold file that maps only A, B and some
# Cyrillic letters: bold text took its A and B from it and every other letter from a fallback face, so the A
# of "Ask the articles" and "Assad" looked thinner than the rest of the word.)
SANS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Noto Sans", "Liberation Sans",
        "Arial", "sans-serif")
MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "DejaVu Sans Mono",
        "monospace")


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=list(SANS), font_mono=list(MONO))


class QABlocks(gr.Blocks):
    """The app's page. Gradio 6 takes the theme in ``launch()``, not in the constructor: launching with
    the app's theme by default means every launcher (``main``, tests, scripts) serves the same fonts."""

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("theme", theme())
        return super().launch(*args, **kwargs)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# --------------------------------------------------------------------------------------- the live retriever


class CurrentRetriever:
    """The Retriever the app answers from. Rebuilds swap in a new one; an ask keeps the one it started with."""

    def __init__(self, retriever: Retriever) -> None:
        self._lock = threading.Lock()
        self._retriever = retriever

    def get(self) -> Retriever:
        with self._lock:
            return self._retriever

    def swap(self, retriever: Retriever) -> None:
        with self._lock:
            self._retriever = retriever


def prepare_index(seeds: Path, index: Path, config: Config = DEFAULT_CONFIG, progress: bool = False) -> list[str]:
    """Build the index when it is missing or stale; returns what was done, one line per item, for the log."""
    status = index_status(seeds, index, config)
    if status.current:
        return [f"Index {index} is up to date with {seeds}."]
    lines = [f"Index {index}: {status.reason}; building from {seeds} ..."]
    report = build_index(seeds, index, config, progress=progress)
    for label, names in (("added", report.added), ("changed", report.changed), ("removed", report.removed)):
        lines += [f"  {label}: {name}" for name in names]
    lines += [f"  skipped {s.path}: {s.reason}" for s in report.skipped]
    lines.append(report.summary())
    return lines


# ------------------------------------------------------------------------------------------------ rendering


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


def _source_html(src: Source, documents: Mapping[str, Document]) -> str:
    return (
        f'<div class="qa-source">{_source_head(src.title, src.doc_id, src.page)}'
        f'<blockquote class="qa-passage">{highlight(src.passage_text, src.start, src.end)}</blockquote>'
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
    """The answer area: answer cards, or the abstention state with the closest passages."""
    meta = f"&ldquo;{_e(res.question)}&rdquo; &middot; answered in {_e(_timing(res))}"
    out = [f'<div class="qa-results"><p class="qa-meta">{meta}</p>']
    if res.notice:
        out.append(f'<p class="qa-notice">{_e(res.notice)}</p>')
    if res.abstained or not res.answers:
        hits = "".join(_hit_html(h, documents) for h in res.passages)
        maybe = ""
        if res.suggestions:
            cards = "".join(_answer_card(i, a, documents) for i, a in enumerate(res.suggestions))
            maybe = ('<details class="qa-suggestions"><summary>Low-confidence candidates '
                     f"({len(res.suggestions)})</summary>{cards}</details>")
        out.append(
            '<section class="qa-abstain"><h3>The articles do not answer this.</h3>'
            "<p>No passage gives a confident answer. The closest passages are below.</p>"
            f'{maybe}{hits or "<p>No passages were found.</p>"}</section>'
        )
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


def _message(text: str, kind: str = "ok") -> str:
    return f'<div class="qa-{kind}">{_e(text).replace(chr(10), "<br>")}</div>'


def _json_safe(value: Any) -> Any:
    """Response.to_dict() as plain JSON types (numpy scalars become floats)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


# ------------------------------------------------------------------------------------ the articles folder


def accepted_types() -> str:
    """The article suffixes an upload may have, as the messages list them (".txt, .md, .html, ...")."""
    return ", ".join(article_suffixes())


def check_article_name(name: str) -> str:
    """Return ``name`` if it is a safe file name of an article format; raise ValueError saying what is wrong.

    The name is checked here (it becomes a path in the folder); which suffixes are articles is the ingest
    registry's answer, so the upload accepts exactly what ``qa build`` reads.
    """
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a plain file name: upload a file, not a path.")
    if name.startswith("."):
        raise ValueError(f"{name!r} is a hidden file: hidden files are not accepted.")
    if Path(name).suffix.lower() not in article_suffixes():
        raise ValueError(f"{name!r}: only {accepted_types()} files are accepted.")
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r}: use a name of letters, digits, spaces and . , - _ ( ) ' & + only (at most 150 characters)."
        )
    return name


def read_upload(name: str, path: Path, config: Config) -> bytes:
    """The uploaded file's bytes if a build would read them as an article; ValueError with the reason otherwise.

    ``name`` has passed check_article_name. Its format's size limit is checked before the bytes are read;
    the rest (UTF-8 for the text formats, an encrypted or scanned PDF, a Word zip bomb, a page with no main
    text...) is ``qa.ingest.check_upload``, the checks of the build itself.
    """
    fmt = format_for(name)
    if fmt is None or fmt.read is None:  # check_article_name refuses these; kept so this never reads one
        raise ValueError(f"{name!r}: only {accepted_types()} files are accepted.")
    limit = fmt.limit(config)
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"Cannot add {name}: {fmt.too_large(size, config)}")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)  # check_upload refuses it if it grew past the limit since stat()
    try:
        check_upload(name, data, config)
    except IngestError as exc:
        raise ValueError(str(exc)) from None
    return data


class Library:
    """The articles folder and its index: rebuild, add and remove articles. One change at a time."""

    def __init__(self, seeds: Path, index: Path, config: Config, current: CurrentRetriever) -> None:
        self.seeds, self.index, self.config, self.current = seeds, index, config, current
        self._lock = threading.Lock()

    def articles(self) -> list[str]:
        """Article files in the folder (relative paths), hidden files and folders excluded."""
        if not self.seeds.is_dir():
            return []
        found, suffixes = [], article_suffixes()
        for path in self.seeds.rglob("*"):
            rel = path.relative_to(self.seeds)
            if (path.is_file() and path.suffix.lower() in suffixes
                    and not any(part.startswith(".") for part in rel.parts)):
                found.append(rel.as_posix())
        return sorted(found)

    def _rebuild_locked(self, progress: bool) -> BuildReport:
        report = build_index(self.seeds, self.index, self.config, progress=progress)
        if report.version != self.current.get().store.version:
            self.current.swap(Retriever.load(self.index, self.config))
        log.info("Rebuilt %s: %s", self.index, report.summary())
        return report

    def rebuild(self, progress: bool = False) -> str:
        with self._lock:
            return _describe(self._rebuild_locked(progress))

    def add(self, uploads: Sequence[Path], overwrite: bool, progress: bool = False) -> str:
        """Copy uploaded files into the folder and rebuild; on any problem nothing changes (ValueError)."""
        if not self.seeds.is_dir():
            raise ValueError(f"The articles source {self.seeds} is not a folder: files cannot be added to it.")
        if not uploads:
            raise ValueError(f"Choose one or more article files ({accepted_types()}) first.")
        with self._lock:
            problems, accepted, seen = [], [], set()
            for upload in uploads:
                name = Path(upload).name  # Gradio keeps the uploaded file's base name
                try:
                    check_article_name(name)
                    data = read_upload(name, Path(upload), self.config)
                except ValueError as exc:
                    problems.append(str(exc))
                    continue
                target = self.seeds / name
                if name in seen:
                    problems.append(f"{name} was uploaded twice.")
                elif target.is_symlink() or (target.exists() and not target.is_file()):
                    problems.append(f"{name} exists in the folder and is not a plain file.")
                elif target.exists() and not overwrite:
                    problems.append(f"{name} already exists: tick 'Overwrite' to replace it.")
                seen.add(name)
                accepted.append((target, data))
            if problems:
                raise ValueError("Nothing was added.\n" + "\n".join(problems))

            backups = {t: (t.read_bytes() if t.exists() else None) for t, _ in accepted}
            for target, data in accepted:
                _write_atomically(target, data)
            try:
                report = self._rebuild_locked(progress)
                names = {t.name for t, _ in accepted}
                refused = [s for s in report.skipped if Path(str(s.path)).name in names]
                if refused:
                    raise ValueError("Nothing was added.\n" + "\n".join(
                        f"{Path(str(s.path)).name}: {s.reason}" for s in refused))
            except BaseException:
                self._restore(backups)
                raise
        return f"Added {', '.join(t.name for t, _ in accepted)}.\n{_describe(report)}"

    def _restore(self, backups: Mapping[Path, bytes | None]) -> None:
        for target, data in backups.items():
            if data is None:
                target.unlink(missing_ok=True)
            else:
                _write_atomically(target, data)
        try:
            self._rebuild_locked(progress=False)
        except Exception:  # the restored folder built before; log and keep the live index
            log.exception("Rebuild after restoring %s failed", self.seeds)

    def remove(self, name: str | None, progress: bool = False) -> str:
        """Move an article out of the folder (into the index's removed-articles/) and rebuild."""
        with self._lock:
            articles = self.articles()
            if not name:
                raise ValueError("Choose an article to remove first.")
            if name not in articles:  # a whitelist: also refuses paths such as ../x.txt
                raise ValueError(f"{name!r} is not an article in the folder.")
            if len(articles) == 1:
                raise ValueError("This is the last article: the index needs at least one.")
            source = self.seeds / name
            trash = self.index / REMOVED_DIR
            trash.mkdir(parents=True, exist_ok=True)
            kept = trash / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{source.name}"
            shutil.move(source, kept)
            try:
                report = self._rebuild_locked(progress)
            except BaseException:
                shutil.move(kept, source)
                self._restore({})
                raise
        return f"Removed {name} (a copy is kept in {kept}).\n{_describe(report)}"


def _describe(report: BuildReport) -> str:
    return report.summary() + "".join(f"\nSkipped {s.path}: {s.reason}" for s in report.skipped)


def _write_atomically(target: Path, data: bytes) -> None:
    write_atomic(target, data, tmp=target.with_name(f".upload-{os.getpid()}-{threading.get_ident()}.tmp"))


def render_index_info(library: Library) -> str:
    """The index panel's summary: counts, model, build time, whether it is current, and the articles."""
    store = library.current.get().store
    m = store.manifest
    counts = m.get("counts", {})
    try:
        status = index_status(library.seeds, library.index, library.config)
        state = (_message("Up to date with the articles folder.") if status.current
                 else _message(f"Out of date: {status.reason}. Press Rebuild.", "notice"))
    except (OSError, QAError) as exc:
        state = _message(f"Cannot check the articles folder: {exc}", "error")
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


# ------------------------------------------------------------------------------------------------- the app


def max_upload_bytes(config: Config) -> int:
    """The largest file Gradio takes in: the largest format's limit (read_upload applies each format's own)."""
    return max(fmt.limit(config) for fmt in _article_formats())


def _article_formats() -> list[Format]:
    """The registry's formats of the accepted suffixes, in its order, each once."""
    found = (format_for(f"article{suffix}") for suffix in article_suffixes())
    return list(dict.fromkeys(fmt for fmt in found if fmt is not None))


def upload_help(config: Config) -> str:
    """The upload box's text: each accepted format with its size limit, from the ingest registry."""
    kinds = "; ".join(f"{'/'.join(f'`{s}`' for s in fmt.suffixes)} up to {fmt.limit(config) / 1e6:g} MB"
                      for fmt in _article_formats())
    return (f"Article files: {kinds}. Text files (`.txt`, `.md`) are UTF-8 with the title on the first line. "
            "The index is updated at once.")


def build_app(seeds: Path, index: Path, config: Config = DEFAULT_CONFIG, auth_required: bool = False,
              prepare: bool = True) -> gr.Blocks:
    """The Gradio app over ``seeds``; builds ``index`` first when it is missing or stale.

    ``auth_required`` says the app will be served behind a password (``main`` passes ``auth`` to launch);
    the page then shows a "Log out" link. ``prepare=False`` skips the index check when the caller has just
    made it (``main`` prints its outcome once).
    """
    seeds, index = Path(seeds), Path(index)
    if prepare:
        for line in prepare_index(seeds, index, config):
            log.info("%s", line)
    current = CurrentRetriever(Retriever.load(index, config))
    library = Library(seeds, index, config, current)

    def article_choices() -> list[tuple[str, str]]:
        docs = current.get().store.documents
        return [(f"{docs[name].title} ({name})" if name in docs else name, name) for name in library.articles()]

    def ask_json(question: str, k: int = 3) -> dict[str, Any]:
        """Short answers with confidence and sources (Response.to_dict()), or an abstention.

        k: number of answers, 1 to 5.
        """
        try:
            k = int(k)
            if not 1 <= k <= MAX_ANSWERS:
                raise ValueError(f"k must be between 1 and {MAX_ANSWERS}, got {k}.")
            return _json_safe(current.get().ask(question, k=k).to_dict())
        except (ValueError, TypeError, QAError) as exc:
            raise gr.Error(str(exc)) from None

    def ask_page(question: str, k: float) -> tuple[str, str]:
        retriever = current.get()  # answer and articles from the same index version
        try:
            res = retriever.ask(question or "", k=int(k))
        except (ValueError, TypeError, QAError) as exc:
            return _message(str(exc), "error"), ""
        return render_response(res, retriever.store.documents), render_details(res)

    def refresh() -> tuple[str, Any]:
        return render_index_info(library), gr.update(choices=article_choices(), value=None)

    def after_change(action, clear_upload: bool = False) -> tuple[str, str, Any, Any]:
        """Run an index change; the message, the refreshed panel, and the upload box.

        ``clear_upload`` empties the box whether the files were added or refused: a refused file left in it
        would be sent again with the next files (the message names the refused files).
        """
        try:
            message, kind = action(), "ok"
        except (ValueError, QAError, OSError) as exc:
            message, kind = str(exc), "error"
        info, choices = refresh()
        return _message(message, kind), info, choices, (None if clear_upload else gr.update())

    def rebuild(progress=gr.Progress(track_tqdm=True)) -> tuple[str, str, Any, Any]:  # noqa: B008 (Gradio API)
        return after_change(lambda: library.rebuild(progress=True))

    def add_articles(files: list[str] | None, overwrite: bool,
                     progress=gr.Progress(track_tqdm=True)) -> tuple[str, str, Any, Any]:  # noqa: B008
        paths = [Path(f) for f in files or []]
        return after_change(lambda: library.add(paths, bool(overwrite), progress=True), clear_upload=True)

    def remove_article(name: str | None,
                       progress=gr.Progress(track_tqdm=True)) -> tuple[str, str, Any, Any]:  # noqa: B008
        return after_change(lambda: library.remove(name, progress=True))

    logout = '<a href="/logout" class="qa-muted">Log out</a>' if auth_required else ""
    with QABlocks(title="Ask the articles", analytics_enabled=False) as demo:
        gr.HTML(
            f"<h1>Ask the articles</h1><p class='qa-muted'>Short answers from your articles, each with the "
            f"passage and file it was read in. {logout}</p>",
            css_template=CSS, js_on_load=None,
        )
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"):
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label="Question", placeholder="e.g. Who backed the rebels?", lines=1, max_lines=1,
                        scale=4, min_width=240, autofocus=True, elem_id="qa-question",
                    )
                    k = gr.Slider(1, MAX_ANSWERS, value=3, step=1, label="Number of answers", scale=1,
                                  min_width=160, elem_id="qa-k")
                with gr.Row():
                    ask_btn = gr.Button("Ask", variant="primary", elem_id="qa-ask")
                    clear_btn = gr.Button("Clear", elem_id="qa-clear")
                gr.Examples([[q] for q in EXAMPLES], inputs=[question], label="Example questions")
                answers = gr.HTML(HINT, elem_id="qa-answers", css_template=CSS, js_on_load=None)
                with gr.Accordion("Details: scores per stage", open=False, elem_id="qa-details-box"):
                    details = gr.HTML("", elem_id="qa-details", css_template=CSS, js_on_load=None)
            with gr.Tab("Articles and index", id="index"):
                info = gr.HTML(render_index_info(library), label="Index", elem_id="qa-index-info",
                               css_template=CSS, js_on_load=None)
                status = gr.HTML("", label="Status", elem_id="qa-index-status", css_template=CSS, js_on_load=None)
                rebuild_btn = gr.Button("Rebuild index", elem_id="qa-rebuild")
                with gr.Accordion("Add articles", open=True):
                    gr.Markdown(upload_help(config))
                    upload = gr.File(label="Article files", file_count="multiple",
                                     file_types=list(article_suffixes()), type="filepath", elem_id="qa-upload")
                    overwrite = gr.Checkbox(label="Overwrite files with the same name", value=False)
                    add_btn = gr.Button("Add to the articles", variant="primary", elem_id="qa-add")
                with gr.Accordion("Remove an article", open=False):
                    to_remove = gr.Dropdown(choices=article_choices(), value=None, label="Article",
                                            elem_id="qa-remove-choice")
                    remove_btn = gr.Button("Remove article", variant="stop")

        # The page's event chain renders HTML; scripts use the separate /ask endpoint below.
        # The Retriever is safe to share between threads (tests/test_concurrency.py); Gradio's default of one
        # question at a time made 50 concurrent requests wait in line (bench/results/load_test.md).
        asking = {"concurrency_id": "ask", "concurrency_limit": ASK_CONCURRENCY}
        for trigger in (question.submit, ask_btn.click):
            trigger(ask_page, [question, k], [answers, details], api_visibility="private", **asking)
        clear_btn.click(lambda: ("", HINT, ""), None, [question, answers, details], api_visibility="private")
        gr.api(ask_json, api_name="ask", **asking)

        outputs = [status, info, to_remove, upload]
        # One index change at a time, whichever button started it (Library also holds a lock).
        shared = {"concurrency_id": "index", "concurrency_limit": 1}
        rebuild_btn.click(rebuild, None, outputs, api_name="rebuild", **shared)
        add_btn.click(add_articles, [upload, overwrite], outputs, api_name="add_articles", **shared)
        remove_btn.click(remove_article, [to_remove], outputs, api_name="remove_article", **shared)
        demo.load(refresh, None, [info, to_remove], api_visibility="private")
    return demo


def _check_password(password: str):
    def check(_username: str, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))

    return check


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="The web UI: ask questions of a folder of articles.")
    p.add_argument("--seeds", default="seeds", help="articles folder (default: seeds)")
    p.add_argument("--index", default="index", help="index directory (default: index)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--password", help="require this password (any user name); prefer the QA_APP_PASSWORD "
                                      "environment variable, which other users cannot see in the process list")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log details: index loading and changes (-vv: debug details and other libraries' logs)")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    args = parser().parse_args(argv)
    password = args.password or os.environ.get("QA_APP_PASSWORD") or None
    if args.host not in LOCAL_HOSTS and not password:
        print(
            f"error: refusing to serve on {args.host} without a password: anyone who can reach this machine "
            "could read and change the articles. Set QA_APP_PASSWORD (or pass --password), or bind 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    configure_logs(args.verbose)
    seeds, index = Path(args.seeds), Path(args.index)
    if not seeds.exists():
        print(f"error: the articles folder {seeds} does not exist: pass --seeds DIR.", file=sys.stderr)
        return 2
    try:
        for line in prepare_index(seeds, index, DEFAULT_CONFIG, progress=True):
            print(line)
        demo = build_app(seeds, index, DEFAULT_CONFIG, auth_required=password is not None, prepare=False)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    auth = _check_password(password) if password else None
    try:
        # quiet: Gradio's own start-up lines include advice on share links; the address is printed below.
        demo.launch(
            server_name=args.host, server_port=args.port, auth=auth,
            auth_message="Enter the app's password (any user name)." if auth else None,
            max_file_size=max_upload_bytes(DEFAULT_CONFIG), footer_links=["api"], quiet=True,
            prevent_thread_lock=True,
        )
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"Serving on {demo.local_url} (Ctrl+C to stop)", flush=True)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
