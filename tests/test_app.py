"""The web UI (qa.ui): the HTML it renders (pure functions), the article-folder rules (qa.library), and the
live app via gradio_client; `python app.py`, the checkout's launcher, runs in a subprocess."""

from __future__ import annotations

import html
import shutil
import socket
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa import DEFAULT_CONFIG
from qa import library as lib
from qa.types import Answer, Document, Hit, Passage, Response, Source
from qa.ui import app, render

REPO = Path(__file__).resolve().parent.parent
REBELS_DOC = "004_84efbc475e867d2d.txt"
XSS = "<img src=x onerror=alert(1)>"


# ------------------------------------------------------------------------------------ rendering (no models)


def _passage(doc_id: str = "a.txt", title: str = "T", text: str = "The rebels were backed by Qatar.",
             start: int = 0) -> Passage:
    return Passage(f"{doc_id}#0", doc_id, title, text, start, start + len(text))


def _source(p: Passage, span: str) -> Source:
    s = p.text.index(span)
    return Source(p.doc_id, p.title, p.passage_id, p.text, s, s + len(span), p.start + s, p.start + s + len(span))


def _response(**kw) -> Response:
    base = {"question": "Who?", "answers": [], "abstained": True, "passages": [], "timings_ms": {"total": 12.0}}
    return Response(**{**base, **kw})


def test_highlight_escapes_the_three_parts_separately():
    text = "a<b> & <i>x</i> 'c'"
    out = render.highlight(text, 7, 15)
    assert out == "a&lt;b&gt; &amp; <mark>&lt;i&gt;x&lt;/i&gt;</mark> &#x27;c&#x27;"
    assert render.highlight(text, 3, 99) == html.escape(text)  # bad offsets: no mark, still escaped


@pytest.mark.parametrize(("confidence", "words"), [(0.95, "high"), (0.7, "high"), (0.69, "medium"),
                                                   (0.4, "medium"), (0.39, "low"), (0.0, "low")])
def test_confidence_words(confidence, words):
    assert render.confidence_words(confidence) == words


def test_answer_card_escapes_article_text_and_marks_the_span():
    doc_text = f"Intro. {XSS} said the rebels were backed by Qatar & <b>Turkey</b>."
    p = _passage(title=f"Title {XSS}", text=doc_text[7:], start=7)
    doc = Document("a.txt", f"Title {XSS}", doc_text, "0" * 64)
    ans = Answer("Qatar & <b>Turkey</b>", 0.82, (_source(p, "Qatar & <b>Turkey</b>"),))
    out = render.render_response(_response(question=XSS, answers=[ans], abstained=False, passages=[Hit(p, 1.0)]),
                              {"a.txt": doc})
    assert "<img" not in out and "<b>" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert out.count("<mark>Qatar &amp; &lt;b&gt;Turkey&lt;/b&gt;</mark>") == 2  # passage and whole article
    assert 'class="qa-card"' in out and "82% &middot; high confidence" in out
    assert "<code class=\"qa-file\">a.txt</code>" in out and "Show article" in out
    assert "answered in 0.01 s" in out


def test_abstention_shows_the_closest_passages():
    p = _passage(doc_id="b.txt", text="Nothing about Paris here.")
    off = render.render_response(_response(passages=[Hit(p, 0.5)]), {})
    on = render.render_response(_response(passages=[Hit(p, 0.5)], on_topic=True), {})
    assert "Nothing in the articles is about this." in off and "The articles do not answer this." not in off
    assert "The articles do not answer this." in on and "Nothing in the articles" not in on
    for out in (off, on):
        assert "Nothing about Paris here." in out and "b.txt" in out
        assert 'class="qa-card"' not in out and "qa-weak" not in out


def _weak_response(on_topic: bool) -> Response:
    text = f"Rebels held the town. {XSS} said Qatar & Turkey armed the rebels. Aid waited."
    p = _passage(text=text)
    best = Answer("Qatar & Turkey", 0.21, (_source(p, "Qatar & Turkey"),))
    other = Answer("the town", 0.06, (_source(p, "the town"),))
    return _response(passages=[Hit(p, 1.0)], suggestions=[best, other], on_topic=on_topic)


def test_an_abstention_on_topic_shows_its_best_candidate_as_a_labelled_low_confidence_answer():
    out = render.render_response(_weak_response(on_topic=True), {})
    assert out.count('class="qa-weak"') == 1 and '<p class="qa-weak-label">Low-confidence answer</p>' in out
    card = out[out.index('class="qa-weak"'):out.index('class="qa-abstain"')]  # the card, above the note
    assert '<p class="qa-answer-text">Qatar &amp; Turkey</p>' in card and "21% &middot; low confidence" in card
    sentence = ('<mark class="qa-sentence">&lt;img src=x onerror=alert(1)&gt; said <mark>Qatar &amp; Turkey</mark>'
                " armed the rebels.</mark>")
    assert sentence in card and "<img" not in out
    assert "<h3>The articles may not answer this.</h3>" in out
    assert "The articles do not answer this." not in out and "Nothing in the articles" not in out
    # The other candidates stay collapsed, numbered after the card.
    assert '<details class="qa-suggestions"><summary>Other low-confidence candidates (1)</summary>' in out
    assert out.count('class="qa-card"') == 1 and '<span class="qa-rank">2.</span>the town' in out


def test_an_abstention_off_topic_says_nothing_is_about_it_and_keeps_candidates_collapsed():
    out = render.render_response(_weak_response(on_topic=False), {})
    assert "<h3>Nothing in the articles is about this.</h3>" in out and "qa-weak" not in out
    assert "qa-sentence" not in out and "The articles may not answer this." not in out
    assert '<details class="qa-suggestions"><summary>Low-confidence candidates (2)</summary>' in out


def test_conflict_panel_lists_each_conflicting_answer_with_its_sources():
    p1, p2 = _passage("a.txt", text="Deaths: 80,000 people."), _passage("b.txt", text="Deaths: 93,000 people.")
    answers = [Answer("80,000", 0.8, (_source(p1, "80,000"),), conflicts_with=(1,)),
               Answer("93,000", 0.75, (_source(p2, "93,000"),), conflicts_with=(0,))]
    out = render.render_response(_response(answers=answers, abstained=False, conflict=True), {})
    panel = out[out.index("Sources disagree"):out.index("</section>")]
    assert panel.count('class="qa-side"') == 2
    assert "a.txt" in panel and "b.txt" in panel and "<mark>80,000</mark>" in panel
    assert "Disagrees with answer 2" in out


@pytest.mark.parametrize(("confidences", "words"), [
    ((0.82, 0.07), "(high and low confidence)"),
    ((0.45, 0.07), "(medium and low confidence)"),
    ((0.9, 0.75), "(high confidence)"),
    ((0.2, 0.07), "(low confidence)"),
])
def test_conflict_panel_words_follow_the_confidence(confidences, words):
    """A 7%-confidence rival was called "well-supported"; the panel now uses the cards' confidence words."""
    p1, p2 = _passage("a.txt", text="Deaths: 80,000 people."), _passage("b.txt", text="Deaths: 93,000 people.")
    answers = [Answer("80,000", confidences[0], (_source(p1, "80,000"),), conflicts_with=(1,)),
               Answer("93,000", confidences[1], (_source(p2, "93,000"),), conflicts_with=(0,))]
    out = render.render_response(_response(answers=answers, abstained=False, conflict=True), {})
    panel = out[out.index("Sources disagree"):out.index("</section>")]
    assert f"Answers from different articles do not match {words}. Check each source." in panel, panel
    assert "well-supported" not in panel.lower()


def test_details_show_scores_per_stage_and_per_answer():
    p = _passage()
    hit = Hit(p, 0.03, {"bm25": 3.5, "bm25_rank": 1, "dense": 0.61, "dense_rank": 2, "fused": 0.0325})
    ans = Answer("Qatar", 0.5, (_source(p, "Qatar"),), scores={"span": 7.25, "no_answer": -1.5})
    out = render.render_details(_response(answers=[ans], abstained=False, passages=[hit]))
    assert "3.5000 (#1)" in out and "0.6100 (#2)" in out and "0.0325" in out
    assert "<th>no_answer</th>" in out and "7.2500" in out


@pytest.mark.parametrize("name", ["../x.txt", "a/b.txt", "..\\x.txt", ".hidden.txt", "x.exe", "x.txt\n",
                                  "", "..", "-rf.txt", "x.txt.sh", "a\x00.txt"])
def test_unsafe_article_names_are_refused(name):
    with pytest.raises(ValueError):
        lib.check_article_name(name)


@pytest.mark.parametrize("name", ["report.txt", "Syria report (2).md", "été 2013.TXT"])
def test_plain_article_names_are_accepted(name):
    assert lib.check_article_name(name) == name


def test_read_upload_refuses_non_utf8_empty_and_large_files(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Title\n\ncaf\xe9 latin-1 text\n")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        lib.read_upload("bad.txt", bad, DEFAULT_CONFIG)
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b" \n")
    with pytest.raises(ValueError, match="empty"):
        lib.read_upload("empty.txt", empty, DEFAULT_CONFIG)
    with pytest.raises(ValueError, match="larger than max_file_bytes"):
        lib.read_upload("bad.txt", bad, replace(DEFAULT_CONFIG, max_file_bytes=10))


def test_uploads_of_the_new_formats_are_checked_by_their_own_rules(tmp_path):
    """Bytes that are not UTF-8 are fine in a PDF or a Word file (they are binary formats); each format's
    own checks refuse what a build would skip, with the build's reason."""
    import realdocs

    title, paragraphs = realdocs.seed("000")
    docx = realdocs.write_docx(tmp_path / "story.docx", title, paragraphs)
    assert lib.read_upload("story.docx", docx, DEFAULT_CONFIG) == docx.read_bytes()
    page = tmp_path / "story.html"
    page.write_text(realdocs.news_page(title, paragraphs), encoding="utf-8")
    assert lib.read_upload("story.htm", page, DEFAULT_CONFIG) == page.read_bytes()
    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    with pytest.raises(ValueError, match="Cannot add corrupt.pdf: it is damaged"):
        lib.read_upload("corrupt.pdf", corrupt, DEFAULT_CONFIG)
    truncated = tmp_path / "truncated.docx"
    truncated.write_bytes(docx.read_bytes()[:20_000])
    with pytest.raises(ValueError, match="truncated or damaged"):
        lib.read_upload("truncated.docx", truncated, DEFAULT_CONFIG)


def test_accepted_types_come_from_the_ingest_registry():
    from qa.ingest import article_suffixes

    assert {".txt", ".md", ".html", ".htm", ".pdf", ".docx"} <= set(article_suffixes())
    for suffix in article_suffixes():
        assert lib.check_article_name(f"story{suffix.upper()}") == f"story{suffix.upper()}"
    with pytest.raises(ValueError, match=r"only \.txt, \.md, .*\.pdf"):
        lib.check_article_name("corpus.jsonl")  # a corpus, not an article: qa build --articles corpus.jsonl


def test_upload_help_lists_the_registry_formats_and_limits():
    from qa.ingest import FORMATS, article_suffixes

    text = render.upload_help(DEFAULT_CONFIG)
    assert all(f"`{suffix}`" in text for suffix in article_suffixes())
    assert "`.jsonl`" not in text  # a corpus, not an article
    assert "`.pdf` up to 50 MB" in text and "`.txt` up to 5 MB" in text
    utf8 = ", ".join(f"`{s}`" for fmt in FORMATS if fmt.utf8 and fmt.read for s in fmt.suffixes)
    assert f"Text files ({utf8}) are UTF-8" in text and utf8 == "`.txt`, `.md`"


def test_the_source_line_shows_the_page_of_a_pdf_answer():
    p = _passage("report.pdf", text="Qusayr fell on 5 June after a three-week siege.")
    src = _source(p, "5 June")
    doc = Document("report.pdf", "Report", p.text, "0" * 64)
    paged = render.render_response(_response(answers=[Answer("5 June", 0.8, (replace(src, page=2),))],
                                          abstained=False), {"report.pdf": doc})
    assert '<span class="qa-page">p. 2</span>' in paged
    plain = render.render_response(_response(answers=[Answer("5 June", 0.8, (src,))], abstained=False),
                                {"report.pdf": doc})
    assert "qa-page" not in plain and "p. " not in plain


def test_remove_accepts_only_articles_in_the_folder(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("A\n\nBody.\n", encoding="utf-8")
    (seeds / "b.txt").write_text("B\n\nBody.\n", encoding="utf-8")
    (tmp_path / "outside.txt").write_text("Keep me\n\nBody.\n", encoding="utf-8")
    library = lib.Library(seeds, tmp_path / "index", DEFAULT_CONFIG)
    assert library.articles() == ["a.txt", "b.txt"]
    for name in ("../outside.txt", str(tmp_path / "outside.txt"), "a.txt/../../outside.txt", "", None):
        with pytest.raises(ValueError):
            library.remove(name)
    assert (tmp_path / "outside.txt").exists() and library.articles() == ["a.txt", "b.txt"]


def test_kept_copies_from_the_index_directory_move_beside_the_articles(tmp_path):
    """Older versions kept removed articles in <index>/removed-articles/, deleted with the index: opening the
    library moves them to <articles>/.qa-removed/, a hidden folder that builds and the article list ignore."""
    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    (seeds / "a.txt").write_text("A\n\nBody.\n", encoding="utf-8")
    legacy = index / lib.LEGACY_KEPT_DIR
    legacy.mkdir(parents=True)
    (legacy / "20240101T000000-old.txt").write_bytes(b"Old\n\nKept body.\n")
    library = lib.Library(seeds, index, DEFAULT_CONFIG)
    assert library.kept_dir == seeds / ".qa-removed"
    assert (library.kept_dir / "20240101T000000-old.txt").read_bytes() == b"Old\n\nKept body.\n"
    assert not legacy.exists()
    assert library.articles() == ["a.txt"]
    from qa.ingest import file_hashes

    assert set(file_hashes(seeds, DEFAULT_CONFIG)) == {"a.txt"}  # a build does not read kept copies


def test_main_refuses_a_public_host_without_a_password(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("QA_APP_PASSWORD", raising=False)
    code = app.main(["--host", "0.0.0.0", "--seeds", str(tmp_path), "--index", str(tmp_path / "i")])
    assert code != 0
    assert "refusing to serve on 0.0.0.0 without a password" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()  # refused before building anything


# ------------------------------------------------------------------------------------------ the live app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """app.py on a free local port over a private copy of seeds/, its index built by the app's start-up path."""
    import torch
    from gradio_client import Client

    torch.set_num_threads(1)  # the CPU is shared with training
    root = tmp_path_factory.mktemp("app")
    seeds, index = root / "seeds", root / "index"
    shutil.copytree(REPO / "seeds", seeds)
    demo = app.build_app(seeds, index)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    try:
        url = demo.local_url
        yield SimpleNamespace(url=url, client=Client(url, verbose=False), seeds=seeds, index=index, root=root)
    finally:
        demo.close()


def _refusal(client, *args, api_name: str) -> str:
    """The status message of an index change, or the error Gradio raised refusing the input itself."""
    from gradio_client.exceptions import AppError

    try:
        status, *_ = client.predict(*args, api_name=api_name)
    except AppError as exc:  # e.g. a file type not in file_types, a value not among the dropdown's choices
        return f"refused by Gradio: {exc}"
    return status


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_start_up_builds_the_index(live):
    assert (live.index / "CURRENT").is_file()
    from qa import index_status

    assert index_status(live.seeds, live.index).current


def test_ask_endpoint_returns_the_response_as_a_dict(live):
    res = live.client.predict("Who backed the rebels?", 3, api_name="/ask")
    assert isinstance(res, dict)
    assert {"answers", "abstained", "passages", "question", "conflict", "timings_ms"} <= set(res)
    assert res["passages"], "retrieval returned no passages"
    offered = res["answers"] or res["suggestions"]  # the same fields either way
    assert offered, "neither answers nor low-confidence candidates"
    for ans in offered:
        assert {"text", "confidence", "sources"} <= set(ans)
        assert ans["sources"], ans["text"]
        for src in ans["sources"]:
            assert {"doc_id", "title", "start", "end", "doc_start", "doc_end"} <= set(src)
            assert 0 <= src["start"] < src["end"] <= len(src["passage_text"])
            assert src["doc_end"] - src["doc_start"] == src["end"] - src["start"]


def test_who_backed_the_rebels_cites_the_qusayr_article(live):
    res = live.client.predict("Who backed the rebels?", 3, api_name="/ask")
    cited = {s["doc_id"] for a in res["answers"][:3] for s in a["sources"]}
    retrieved = {h["passage"]["doc_id"] for h in res["passages"][:3]}
    assert REBELS_DOC in cited | retrieved


def test_the_card_question_is_answered_with_the_three_backers_from_004(live):
    """The card question is answered above the SQuAD-fitted threshold, not offered as a low-confidence
    candidate: "Saudi Arabia, Qatar and Turkey", the whole list, from the 004 article."""
    res = live.client.predict("Who backed the rebels?", 3, api_name="/ask")
    assert not res["abstained"], [(a["text"], a["confidence"]) for a in res["suggestions"]]
    top = res["answers"][0]
    assert top["text"] == "Saudi Arabia, Qatar and Turkey", [a["text"] for a in res["answers"]]
    assert top["sources"][0]["doc_id"] == REBELS_DOC


def test_the_example_questions_show_an_answer_a_disagreement_a_reason_and_no_answer(live):
    """The page's example questions are what a new user tries first: each shows what its place in
    app.EXAMPLES promises, and none is answered with a wrong span (the old third example answered "Syria"
    to "Which city ...?" at 76%)."""
    backed, died, why, france = (live.client.predict(q, 3, api_name="/ask") for q in app.EXAMPLES)
    assert not backed["abstained"] and backed["answers"][0]["text"] == "Saudi Arabia, Qatar and Turkey"
    assert not died["abstained"] and died["conflict"]
    assert {a["text"] for a in died["answers"]} >= {"94,000", "80,000"}, [a["text"] for a in died["answers"]]
    assert not why["abstained"] and "smuggle weapons" in why["answers"][0]["text"], why["answers"][:1]
    assert france["abstained"] and not france["answers"] and not france["on_topic"]


def test_a_question_with_no_words_abstains_with_a_notice(live):
    res = live.client.predict("?!?... ,;:!!", 3, api_name="/ask")
    assert res["abstained"] and res["answers"] == [] and res["notice"].startswith("The question has no words")
    page = render.render_response(Response(**{**res, "answers": [], "passages": []}), {})
    assert '<p class="qa-notice">The question has no words' in page


def test_ask_endpoint_rejects_an_empty_question_and_bad_k(live):
    with pytest.raises(Exception, match="empty"):
        live.client.predict("   ", 3, api_name="/ask")
    with pytest.raises(Exception, match="k must be between 1 and 5"):
        live.client.predict("Who backed the rebels?", 9, api_name="/ask")


def test_uploading_a_non_utf8_file_changes_nothing(live, tmp_path):
    from gradio_client import handle_file

    before, version = _snapshot(live.seeds), (live.index / "CURRENT").read_text()
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Réfugiés\n\nLes rebelles à Qusayr.\n".encode("latin-1"))
    status, *_ = live.client.predict([handle_file(bad)], False, api_name="/add_articles")
    assert "Nothing was added" in status and "latin1.txt: not valid UTF-8" in status, status
    assert _snapshot(live.seeds) == before
    assert (live.index / "CURRENT").read_text() == version


def test_an_upload_that_ingest_refuses_is_rolled_back(live, tmp_path):
    """UTF-8 but not an article (a title and no body): ingest skips it, so the app puts everything back."""
    from gradio_client import handle_file

    from qa import index_status

    before = _snapshot(live.seeds)
    title_only = tmp_path / "title_only.txt"
    title_only.write_text("Just a title\n", encoding="utf-8")
    status, *_ = live.client.predict([handle_file(title_only)], False, api_name="/add_articles")
    assert "Nothing was added" in status and "title_only.txt" in status, status
    assert _snapshot(live.seeds) == before
    assert index_status(live.seeds, live.index).current


def test_uploads_with_unsafe_names_are_refused(live, tmp_path):
    from gradio_client import handle_file

    before = _snapshot(live.seeds)
    hidden = tmp_path / ".hidden.txt"
    hidden.write_text("Title\n\nBody text.\n", encoding="utf-8")
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n", encoding="utf-8")
    for upload in (hidden, script):
        status = _refusal(live.client, [handle_file(upload)], False, api_name="/add_articles")
        assert "Nothing was added" in status or "refused by Gradio" in status, status
    assert _snapshot(live.seeds) == before


def test_removing_a_path_outside_the_folder_is_refused(live):
    outside = live.root / "outside.txt"
    outside.write_text("Keep me\n\nI am not an article.\n", encoding="utf-8")
    before = _snapshot(live.seeds)
    for name in ("../outside.txt", str(outside), "..", REBELS_DOC + "/../../outside.txt"):
        status = _refusal(live.client, name, api_name="/remove_article")
        assert "Removed" not in status and ("not an article" in status or "refused by Gradio" in status), status
    assert outside.exists() and _snapshot(live.seeds) == before


def test_upload_ask_and_remove_an_article(live, tmp_path):
    """A new article is answered from at once (the Retriever is swapped), and removing it takes it away."""
    from gradio_client import handle_file

    before = _snapshot(live.seeds)
    new = tmp_path / "zz_lighthouse.txt"
    new.write_text(
        "Lighthouse keeper rescues stranded kayakers\n\n"
        "The lighthouse keeper of Skarvik, Ingrid Holm, rescued four kayakers on Tuesday after a storm "
        "stranded them on the rocks below the Skarvik lighthouse. Holm used the station's rowing boat.\n",
        encoding="utf-8",
    )
    status, info, *_ = live.client.predict([handle_file(new)], False, api_name="/add_articles")
    assert "Added zz_lighthouse.txt" in status, status
    assert (live.seeds / "zz_lighthouse.txt").read_bytes() == new.read_bytes()
    assert "zz_lighthouse.txt" in info

    again, *_ = live.client.predict([handle_file(new)], False, api_name="/add_articles")
    assert "already exists" in again and "Overwrite" in again

    res = live.client.predict("Who rescued the kayakers at Skarvik?", 3, api_name="/ask")
    assert res["passages"][0]["passage"]["doc_id"] == "zz_lighthouse.txt"

    status, info, *_ = live.client.predict("zz_lighthouse.txt", api_name="/remove_article")
    assert "Removed zz_lighthouse.txt" in status, status
    assert _snapshot(live.seeds) == before
    # The kept copy is beside the articles, not in the index directory (deleting the index keeps it).
    kept = list((live.seeds / ".qa-removed").glob("*-zz_lighthouse.txt"))
    assert [k.read_bytes() for k in kept] == [new.read_bytes()], kept
    assert str(kept[0]) in status
    assert not list(live.index.rglob("*zz_lighthouse.txt"))
    res = live.client.predict("Who rescued the kayakers at Skarvik?", 3, api_name="/ask")
    assert all(h["passage"]["doc_id"] != "zz_lighthouse.txt" for h in res["passages"])


def test_abstentions_from_the_real_index_on_and_off_topic(live):
    """A seeds question the passages are about, forced to abstain (threshold 0.99, whatever the reader): its best
    candidate is a labelled card with its sentence marked; a question about nothing in the seeds: no card."""
    from qa import Retriever

    retriever = Retriever.load(live.index, DEFAULT_CONFIG.with_overrides(abstain_threshold=0.99))
    res = retriever.ask("Which Sunni powers armed and funded the rebels?", k=3)
    assert res.abstained and not res.answers and res.on_topic and res.suggestions, res
    out = render.render_response(res, retriever.store.documents)
    src = res.suggestions[0].sources[0]
    assert out.count('class="qa-weak"') == 1 and "The articles may not answer this." in out
    assert f"<mark>{html.escape(src.passage_text[src.start:src.end])}</mark>" in out.split('class="qa-abstain"')[0]
    assert out.count('<mark class="qa-sentence">') == len(res.suggestions[0].sources)

    res = retriever.ask("What is the boiling point of mercury?", k=3)
    assert res.abstained and not res.on_topic and res.passages
    out = render.render_response(res, retriever.store.documents)
    assert "Nothing in the articles is about this." in out and "qa-weak" not in out


def test_answer_cards_from_the_real_index(live):
    """Real answers rendered: forced past abstention (threshold 0) so cards exist whatever the reader."""
    from qa import Retriever

    retriever = Retriever.load(live.index, DEFAULT_CONFIG.with_overrides(abstain_threshold=0.0))
    # A question without disagreeing sources: the conflict panel (tested separately) repeats sources.
    res = retriever.ask("Which hardline Islamist group sent volunteers to defend Qusayr?", k=3)
    assert res.answers and not res.abstained and not res.conflict
    for ans in res.answers:
        for src in ans.sources:
            doc = retriever.store.documents[src.doc_id]
            assert doc.text[src.doc_start:src.doc_end] == src.passage_text[src.start:src.end]
    data = app._json_safe(res.to_dict())
    assert all({"doc_id", "title", "start", "end"} <= set(s) for a in data["answers"] for s in a["sources"])
    out = render.render_response(res, retriever.store.documents)
    assert out.count('class="qa-card"') == len(res.answers)
    src = res.answers[0].sources[0]
    assert f'<code class="qa-file">{src.doc_id}</code>' in out
    assert f"<mark>{html.escape(src.passage_text[src.start:src.end])}</mark>" in out
    assert out.count("Show article") == sum(len(a.sources) for a in res.answers)


def test_a_password_protects_the_app(live):
    """`python app.py` with QA_APP_PASSWORD: the API refuses anonymous clients and admits the password."""
    import os
    import subprocess
    import time

    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    port = _free_port()
    env = {**os.environ, "QA_APP_PASSWORD": "s3cret-test"}
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--articles", str(live.seeds), "--index", str(live.index),
         "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)
        with pytest.raises((AuthenticationError, ValueError)):
            Client(url, auth=("anyone", "wrong"), verbose=False)
        client = Client(url, auth=("anyone", "s3cret-test"), verbose=False)
        assert "/ask" in client.view_api(print_info=False, return_format="str")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_app_start_prints_its_index_status_once_and_nothing_else(live, tmp_path):
    """`python app.py` at the default verbosity: the index status (once), the address, and nothing more:
    no library logs (httpx, bm25s, faiss), model-loading bars or warnings, even after a question."""
    import os
    import subprocess
    import time

    from gradio_client import Client

    port = _free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_DISABLE_PROGRESS_BARS", "PYTHONWARNINGS")}
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--articles", str(live.seeds), "--index", str(live.index),
             "--port", str(port)], env=env, stdout=stdout, stderr=stderr, text=True, cwd=REPO,
        )
    try:
        deadline = time.monotonic() + 180
        while "Serving on" not in out.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, out.read_text() + err.read_text()
            time.sleep(0.5)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        assert client.predict("Who backed the rebels?", 3, api_name="/ask")["passages"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = out.read_text().splitlines()
    assert [line for line in lines if line.startswith("Index ")] == [
        f"Index {live.index} is up to date with {live.seeds}."], lines
    assert lines[-1] == f"Serving on http://127.0.0.1:{port}/ (Ctrl+C to stop)", lines
    assert len(lines) == 2, lines
    assert err.read_text() == "", err.read_text()[:2000]


def test_build_app_checks_the_index_once(live, monkeypatch):
    """Start-up makes one index check (issue 16: it used to run twice); its lines go to ``announce``."""
    calls, lines = [], []

    def counted(*args, **kwargs):
        calls.append(args)
        return lib.prepare_index(*args, **kwargs)

    monkeypatch.setattr(app, "prepare_index", counted)
    demo = app.build_app(live.seeds, live.index, announce=lines.append)
    demo.close()
    assert len(calls) == 1, calls
    assert lines == [f"Index {live.index} is up to date with {live.seeds}."]


def test_page_serves_the_ui(live):
    import urllib.request

    with urllib.request.urlopen(live.url, timeout=30) as resp:
        page = resp.read().decode("utf-8")
    assert "Ask the articles" in page


def test_launch_waits_for_a_slow_server_instead_of_refusing_to_start():
    """Gradio's own start-up check gives its server one 3-second request; ours retries until a deadline."""
    import http.server
    import threading

    from qa.ui.app import _patient_url_ok

    class Slow(http.server.BaseHTTPRequestHandler):
        calls = 0

        def do_HEAD(self):  # noqa: N802 (http.server's name)
            Slow.calls += 1
            self.send_response(503 if Slow.calls < 3 else 200)  # not ready twice, then up
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _patient_url_ok(f"http://127.0.0.1:{server.server_port}/", deadline_s=30)
        assert Slow.calls == 3
    finally:
        server.shutdown()
    assert not _patient_url_ok(f"http://127.0.0.1:{_free_port()}/", deadline_s=1)
