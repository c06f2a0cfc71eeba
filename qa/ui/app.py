"""The web UI: a thin Gradio layer over the public ``qa`` API and the article library.

    python app.py --articles seeds --index index               # http://127.0.0.1:7860
    qa serve --articles seeds --index index                    # the same, from an installed package
    QA_APP_PASSWORD=... python app.py --host 0.0.0.0         # other machines: a password is required

On start the index is built (incrementally) when it is missing or stale. Besides the page, the app serves
one JSON endpoint for scripts::

    gradio_client.Client(url).predict("Who backed the rebels?", 3, api_name="/ask")  # Response.to_dict()

This module only wires components to functions: the markup is qa.ui.render, the look qa.ui.style, and every
change to the articles folder (checks, rollback, kept copies of removed articles) is qa.library, which the
buttons call and nothing here re-implements.
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from qa import DEFAULT_CONFIG, Config, QAError, Retriever
from qa.ingest import article_suffixes
from qa.library import CurrentRetriever, Library, max_upload_bytes, prepare_index
from qa.logs import configure as configure_logs
from qa.ui.render import HINT, message, render_details, render_index_info, render_response, upload_help
from qa.ui.style import CSS, theme

# Named rather than __name__: the app's messages have always been "qa.app" in logs and filters.
log = logging.getLogger("qa.app")

# One of each thing the page shows: an answer, sources that disagree, a reason, no answer. An example answered
# wrongly teaches a new user to distrust the rest: "Which city are Assad's forces preparing to attack next?"
# was one, answered "Syria" at 76% (bench/results/answer_ceiling.md).
EXAMPLES = (
    "Who backed the rebels?",
    "How many people have died in the Syrian conflict?",
    "Why is Qusayr strategically important?",
    "What is the capital of France?",
)
MAX_ANSWERS = 5
# Questions answered at once. On 2 cores, bench/load_test.py (50 distinct questions) gave 4.33 answers/s,
# p95 9.95 s with 2 and 4.24 answers/s, p95 10.41 s with 4: one read per core.
ASK_CONCURRENCY = 2
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class QABlocks(gr.Blocks):
    """The app's page. Gradio 6 takes the theme in ``launch()``, not in the constructor: launching with
    the app's theme by default means every launcher (``main``, tests, scripts) serves the same fonts."""

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("theme", theme())
        # Gradio checks that its own server answers with one 3-second HEAD request and, if it does not, refuses
        # to start ("a shareable link must be created"). On 2 cores busy with a build or a test run the first
        # answer can take longer (16 app tests failed so in one full run), so the check waits up to 60 s here.
        from gradio import networking

        quick_check = networking.url_ok
        networking.url_ok = _patient_url_ok
        try:
            return super().launch(*args, **kwargs)
        finally:
            networking.url_ok = quick_check


def _patient_url_ok(url: str, deadline_s: float = 60.0) -> bool:
    """Gradio's url_ok, retried until ``deadline_s``: True once the server answers its own page."""
    import httpx

    stop = time.monotonic() + deadline_s
    while True:
        try:
            if httpx.head(url, timeout=10, verify=False).status_code in (200, 401, 301, 302, 303, 307, 308):
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() >= stop:
            return False
        time.sleep(0.5)


def _json_safe(value: Any) -> Any:
    """Response.to_dict() as plain JSON types (numpy scalars become floats)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def build_app(seeds: Path, index: Path, config: Config = DEFAULT_CONFIG, auth_required: bool = False,
              prepare: bool = True, announce: Callable[[str], None] | None = None,
              progress: bool = False) -> gr.Blocks:
    """The Gradio app over ``seeds``; builds ``index`` first when it is missing or stale.

    The start-up check is made here and only here (``prepare_index``, once): ``announce`` receives its lines
    (default: the log at INFO; ``main`` prints them) and ``progress`` shows the build's progress bar.
    ``prepare=False`` skips it, for callers that have just built the index themselves.
    ``auth_required`` says the app will be served behind a password (``main`` passes ``auth`` to launch);
    the page then shows a "Log out" link.
    """
    seeds, index = Path(seeds), Path(index)
    if prepare:
        for line in prepare_index(seeds, index, config, progress=progress):
            (announce or (lambda text: log.info("%s", text)))(line)
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
            return message(str(exc), "error"), ""
        return render_response(res, retriever.store.documents), render_details(res)

    def refresh() -> tuple[str, Any]:
        return render_index_info(library), gr.update(choices=article_choices(), value=None)

    def after_change(action, clear_upload: bool = False) -> tuple[str, str, Any, Any]:
        """Run an index change; the message, the refreshed panel, and the upload box.

        ``clear_upload`` empties the box whether the files were added or refused: a refused file left in it
        would be sent again with the next files (the message names the refused files).
        """
        try:
            text, kind = action(), "ok"
        except (ValueError, QAError, OSError) as exc:
            text, kind = str(exc), "error"
        info, choices = refresh()
        return message(text, kind), info, choices, (None if clear_upload else gr.update())

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
    """Gradio's auth callback: any user name, this password, compared in constant time."""
    def check(_username: str, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8"))

    return check


def parser() -> argparse.ArgumentParser:
    """The app's flags; ``qa serve`` passes its own through (qa.cli)."""
    p = argparse.ArgumentParser(description="The web UI: ask questions of a folder of articles.")
    p.add_argument("--articles", default="seeds", help="articles folder (default: seeds)")
    p.add_argument("--seeds", dest="articles", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    p.add_argument("--index", default="index", help="index directory (default: index)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--password", help="require this password (any user name); prefer the QA_APP_PASSWORD "
                                      "environment variable, which other users cannot see in the process list")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log details: index loading and changes (-vv: debug details and other libraries' logs)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python app.py`` and ``qa serve``: check the host and password, build the index if needed, serve."""
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
    seeds, index = Path(args.articles), Path(args.index)
    if not seeds.exists():
        print(f"error: the articles folder {seeds} does not exist: pass --articles DIR.", file=sys.stderr)
        return 2
    try:
        demo = build_app(seeds, index, DEFAULT_CONFIG, auth_required=password is not None,
                         announce=print, progress=True)
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
