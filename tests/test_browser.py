"""The page in a real headless Chromium: ask by pressing Enter, answer cards, escaping, abstention, phone width.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium chromium-driver`); CI installs them.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
XSS = "<img src=x onerror=alert(1)>"
WAIT = 240  # seconds; the first question loads the models on a CPU shared with training


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    import torch

    torch.set_num_threads(1)  # the CPU is shared with training
    root = tmp_path_factory.mktemp("browser-app")
    shutil.copytree(REPO / "seeds", root / "seeds")
    from qa.ui import build_app

    demo = build_app(root / "seeds", root / "index")
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def driver(url, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1280,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def _ask(driver, question: str) -> None:
    """Type the question in the box and press Enter; wait until the answer area shows this question."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    box = driver.find_element(By.CSS_SELECTOR, "#qa-question textarea, #qa-question input")
    box.clear()
    box.send_keys(question)
    box.send_keys(Keys.ENTER)

    def shown(d):
        metas = d.find_elements(By.CSS_SELECTOR, "#qa-answers .qa-meta")
        return bool(metas) and question in metas[0].text

    WebDriverWait(driver, WAIT).until(shown)


def _answers(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "#qa-answers")


def _open(driver, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#qa-question textarea, #qa-question input")
    )


def test_the_card_question_highlights_saudi_arabia_in_its_source(driver, url):
    """The card question is answered (not a labelled low-confidence candidate): the first answer card is
    "Saudi Arabia, Qatar and Turkey", with 004's file named and the span marked in its passage."""
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, "Who backed the rebels?")
    area = _answers(driver)
    # Kept with the other tests' pictures; the README's docs/screenshot.png is made by docs/make_screenshot.py.
    driver.save_screenshot(str(_artefact("card-question.png")))
    assert not area.find_elements(By.CSS_SELECTOR, ".qa-weak"), f"shown as low-confidence: {area.text[:500]!r}"
    assert "The articles may not answer this." not in area.text, area.text[:500]
    cards = area.find_elements(By.CSS_SELECTOR, ".qa-card")
    assert cards, f"no answer card; answer area: {area.text[:500]!r}"
    top = cards[0]
    assert "Saudi Arabia, Qatar and Turkey" in top.text, top.text[:300]
    files = {c.text for c in top.find_elements(By.CSS_SELECTOR, "code.qa-file")}
    marks = [m.text for m in top.find_elements(By.CSS_SELECTOR, "mark")]
    assert "004_84efbc475e867d2d.txt" in files, files
    assert any("Saudi Arabia" in m for m in marks), marks


def test_enter_submits_and_the_answer_card_names_its_source_file(driver, url):
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, "Which Sunni powers armed and funded the rebels?")
    area = _answers(driver)
    seeds = {p.name for p in (REPO / "seeds").iterdir()}
    files = {c.text for c in area.find_elements(By.CSS_SELECTOR, "code.qa-file")}
    assert files & seeds, f"no source file name shown; answer area: {area.text[:500]!r}"

    cards = area.find_elements(By.CSS_SELECTOR, ".qa-card")
    assert cards, f"no answer card; answer area: {area.text[:500]!r}"
    card_files = {c.text for c in cards[0].find_elements(By.CSS_SELECTOR, "code.qa-file")}
    assert card_files & seeds, f"the first answer card names no source file: {cards[0].text[:300]!r}"


def test_a_question_that_is_html_is_shown_literally(driver, url):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, XSS)
    try:
        driver.switch_to.alert.dismiss()
        pytest.fail("an alert opened: the question was rendered as HTML")
    except NoAlertPresentException:
        pass
    area = _answers(driver)
    assert not area.find_elements(By.TAG_NAME, "img")
    assert XSS in area.find_element(By.CSS_SELECTOR, ".qa-meta").text


def test_an_unanswerable_question_shows_the_no_answer_state(driver, url):
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, "What is the capital of France?")
    area = _answers(driver)
    abstain = area.find_elements(By.CSS_SELECTOR, ".qa-abstain")
    assert abstain, f"expected the no-answer state; answer area: {area.text[:300]!r}"
    assert "Nothing in the articles is about this." in abstain[0].text  # the seeds are about Syria
    assert not area.find_elements(By.CSS_SELECTOR, ".qa-weak")
    assert abstain[0].find_elements(By.CSS_SELECTOR, "code.qa-file"), "no closest passages shown"


def test_phone_width_has_no_horizontal_scroll(driver, url):
    from selenium.webdriver.common.by import By

    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        _open(driver, url)
        _ask(driver, "How many people have died in the Syrian conflict?")
        for summary in _answers(driver).find_elements(By.CSS_SELECTOR, "details.qa-article > summary")[:2]:
            driver.execute_script("arguments[0].click()", summary)  # open "Show article" too
        widths = driver.execute_script(
            "const e = document.documentElement;"
            "return [e.scrollWidth, e.clientWidth, document.body.scrollWidth, window.innerWidth];"
        )
        scroll_width, client_width, body_width, inner = widths
        assert inner == 390
        assert scroll_width <= client_width + 1 and body_width <= client_width + 1, widths
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _card_with_file(area, name: str):
    """The first answer card (or low-confidence answer) that lists ``name`` among its sources, or None."""
    from selenium.webdriver.common.by import By

    for card in area.find_elements(By.CSS_SELECTOR, ".qa-weak, .qa-card"):
        if name in {c.text for c in card.find_elements(By.CSS_SELECTOR, "code.qa-file")}:
            return card
    return None


def test_disagreeing_sources_are_shown_side_by_side_with_their_files(driver, url):
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, "How many people have died in the Syrian conflict?")
    area = _answers(driver)
    panels = area.find_elements(By.CSS_SELECTOR, ".qa-conflict")
    assert panels, f"no 'sources disagree' panel; answer area: {area.text[:500]!r}"
    sides = {}
    for side in panels[0].find_elements(By.CSS_SELECTOR, ".qa-side"):
        text = side.find_element(By.CSS_SELECTOR, ".qa-answer-text").text
        sides[text] = {c.text for c in side.find_elements(By.CSS_SELECTOR, "code.qa-file")}
    driver.save_screenshot(str(_artefact("conflict.png")))
    by_figure = {figure: files for figure in ("80,000", "94,000") for text, files in sides.items() if figure in text}
    assert set(by_figure) == {"80,000", "94,000"}, sides
    assert "002_b421f2b8e3e2ac47.txt" in by_figure["80,000"], sides
    assert "004_84efbc475e867d2d.txt" in by_figure["94,000"], sides


def _artefact(name: str) -> Path:
    """Screenshots of every browser test are kept (CI artefacts) under tests/artifacts/."""
    folder = REPO / "tests" / "artifacts"
    folder.mkdir(exist_ok=True)
    return folder / name


def _index_tab(driver):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tab = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']")
               if "Articles and index" in b.text)
    tab.click()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "qa-add").is_displayed())


def _ask_tab(driver):
    from selenium.webdriver.common.by import By

    next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text.strip() == "Ask").click()


def _upload(driver, path: Path) -> str:
    """Choose ``path`` in the upload box, press "Add to the articles", return the status message."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, "#qa-upload input[type=file]").send_keys(str(path))
    WebDriverWait(driver, 60).until(  # the file is uploaded: its name is listed in the box
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#qa-upload td.filename[aria-label='{path.name}']"))

    def message(d):  # the new verdict, not Gradio's "processing" overlay or the previous message
        found = d.find_elements(By.CSS_SELECTOR, "#qa-index-status .qa-ok, #qa-index-status .qa-error")
        return found and found[0].get_attribute("data-stale") is None and found[0].text

    old = driver.find_elements(By.CSS_SELECTOR, "#qa-index-status .qa-ok, #qa-index-status .qa-error")
    for element in old:
        driver.execute_script("arguments[0].setAttribute('data-stale', '1')", element)
    driver.find_element(By.ID, "qa-add").click()
    return WebDriverWait(driver, WAIT).until(message)


def _index_info(driver) -> str:
    """The index panel's whole text, the collapsed list of articles included."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "qa-index-info").get_attribute("textContent")


NEW_ARTICLE = (
    "Lighthouse on Sule Skerry is automated\n\n"
    "The lighthouse on Sule Skerry, a remote island west of Orkney, was built in 1895 by the engineer "
    "David Alan Stevenson. Its last keepers left in 1982, when the light was automated by the Northern "
    "Lighthouse Board.\n"
)


def test_an_uploaded_article_is_answered_from_at_once(driver, url, tmp_path):
    from selenium.webdriver.common.by import By

    article = tmp_path / "sule_skerry.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    _open(driver, url)
    _index_tab(driver)
    message = _upload(driver, article)
    driver.save_screenshot(str(_artefact("upload.png")))
    assert "Added sule_skerry.txt" in message, message
    assert "sule_skerry.txt" in _index_info(driver)

    _ask_tab(driver)
    _ask(driver, "Who built the lighthouse on Sule Skerry?")
    area = _answers(driver)
    driver.save_screenshot(str(_artefact("uploaded-answer.png")))
    card = _card_with_file(area, "sule_skerry.txt")
    assert card is not None, f"no answer from the uploaded article; answer area: {area.text[:500]!r}"
    assert "Stevenson" in card.find_element(By.CSS_SELECTOR, ".qa-answer-text").text


def test_a_binary_upload_is_refused_with_a_message_and_changes_nothing(driver, url, tmp_path):
    binary = tmp_path / "photo.txt"  # the right extension, but not text
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    _open(driver, url)
    _index_tab(driver)
    articles_before = _index_info(driver)
    message = _upload(driver, binary)
    driver.save_screenshot(str(_artefact("binary-upload.png")))
    assert "Nothing was added" in message and "Cannot add photo.txt: it looks binary" in message, message
    assert "photo.txt" not in _index_info(driver)
    assert _index_info(driver) == articles_before


def _upload_box_files(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [td.get_attribute("aria-label") for td in driver.find_elements(By.CSS_SELECTOR, "#qa-upload td.filename")]


HARBOUR_ARTICLE = (
    "Harbour wall at Port Ellen is rebuilt\n\n"
    "The harbour wall at Port Ellen on Islay was rebuilt in 2019 by the contractor Marine Works Ltd. "
    "Storms in the winter of 2017 had breached the old wall in two places.\n"
)


def test_a_refused_upload_is_cleared_and_not_sent_again(driver, url, tmp_path):
    """A refused file used to stay in the upload box, so the next "Add" sent it again with the new file and
    was refused again. Now the box is emptied after every verdict."""
    from selenium.webdriver.support.ui import WebDriverWait

    refused = tmp_path / "scan.txt"
    refused.write_bytes(b"\xff\xfe\x00binary\x00" + bytes(range(256)))
    good = tmp_path / "port_ellen.txt"
    good.write_text(HARBOUR_ARTICLE, encoding="utf-8")
    _open(driver, url)
    _index_tab(driver)
    message = _upload(driver, refused)
    assert "Nothing was added" in message and "scan.txt" in message, message
    WebDriverWait(driver, 30).until(lambda d: not _upload_box_files(d))  # the refused file is gone from the box

    message = _upload(driver, good)
    driver.save_screenshot(str(tmp_path / "after-refused-upload.png"))
    assert "Added port_ellen.txt" in message and "scan.txt" not in message, message
    WebDriverWait(driver, 30).until(lambda d: not _upload_box_files(d))  # emptied after success too
    info = _index_info(driver)
    assert "port_ellen.txt" in info and "scan.txt" not in info


def test_the_conflict_panel_words_follow_the_answers_confidence(driver, url):
    """The panel called a 7%-confidence answer "well-supported"; it now names the cards' confidence words."""
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, "How many people have died in the Syrian conflict?")
    panels = _answers(driver).find_elements(By.CSS_SELECTOR, ".qa-conflict")
    assert panels, f"no 'sources disagree' panel; answer area: {_answers(driver).text[:500]!r}"
    levels = set()
    for meter in panels[0].find_elements(By.CSS_SELECTOR, ".qa-side .qa-conf"):
        levels |= {c.removeprefix("qa-") for c in meter.get_attribute("class").split()} & {"high", "medium", "low"}
    summary = panels[0].find_element(By.CSS_SELECTOR, ".qa-conflict-summary").text
    words = " and ".join(w for w in ("high", "medium", "low") if w in levels)
    assert f"({words} confidence)" in summary, (levels, summary)
    assert "well-supported" not in panels[0].text.lower() or levels == {"high"}, panels[0].text


def test_the_page_uses_system_fonts_and_fetches_none(driver, url, tmp_path):
    """Gradio's default theme served a "Source Sans Pro" SemiBold file holding only A, B and some Cyrillic:
    in bold text those letters came from it and the rest from a fallback face (a thin "A" in "Ask the
    articles"). The app's theme names system fonts only: no web font is fetched, from Google or from Gradio."""
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, "Who backed the rebels?")
    shot = tmp_path / "fonts.png"
    driver.save_screenshot(str(shot))  # looked at by eye when this test was written; kept out of the repo
    for selector in ("h1", "#qa-ask", "#qa-answers .qa-answer-text, #qa-answers .qa-title", "code.qa-file"):
        family = driver.execute_script(
            "return getComputedStyle(document.querySelector(arguments[0])).fontFamily", selector)
        expected = "ui-monospace" if selector.startswith("code") else "system-ui"
        assert family.startswith(expected), f"{selector}: {family}"
        assert "Source Sans" not in family and "IBM Plex" not in family, f"{selector}: {family}"
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    fonts = [u for u in fetched if "fonts.googleapis.com" in u or "fonts.gstatic.com" in u
             or "/static/fonts/" in u or u.endswith((".woff2", ".woff", ".ttf"))]
    assert not fonts, fonts
    faces = driver.execute_script("return Array.from(document.fonts).map(f => f.family)")
    assert not [f for f in faces if "Source Sans" in f or "IBM Plex" in f], faces
    links = [e.get_attribute("href") or "" for e in driver.find_elements(By.CSS_SELECTOR, "link")]
    assert not [h for h in links if "fonts.googleapis.com" in h or "fonts.gstatic.com" in h], links


def test_a_question_with_no_words_shows_a_notice(driver, url):
    from selenium.webdriver.common.by import By

    _open(driver, url)
    _ask(driver, "?!?... ,;:!!")
    area = _answers(driver)
    notices = [n.text for n in area.find_elements(By.CSS_SELECTOR, ".qa-notice")]
    assert any(n.startswith("The question has no words") for n in notices), area.text[:500]
    assert not area.find_elements(By.CSS_SELECTOR, ".qa-error, .qa-card")


# --- uploads of the other formats: a news web page, a printed PDF, a Word file (made with tests/realdocs.py)

FERRY = ("Fair Isle ferry returns to service", [
    "The ferry between Grutness and Fair Isle returned to service on Monday after a winter in dry dock.",
    "The new vessel, the Good Shepherd V, was built by the shipyard Ailsa Troon and carries twelve passengers "
    "and one car on the crossing of about two and a half hours.",
    "Islanders said the old boat had become unreliable in heavy seas.",
])
MILL = ("Kelso mill restored after ten years", [
    "The water mill on the Tweed at Kelso has turned again for the first time since 2014.",
    "Its wheel had stood still after the flood of that winter broke the sluice and silted the lade.",
    "A trust of local residents bought the building in 2016 and raised the money for its repair.",
    # page 2 (break_before=3)
    "The restoration was led by the architect Fiona Maclaren, who rebuilt the wheel from oak felled on the "
    "Floors estate.",
    "The mill will grind flour for the town's bakers from the spring.",
], 3)
OBSERVATORY = ("Ben Nevis summit observatory reopens", [
    "The weather observatory on the summit of Ben Nevis, closed since 1904, has reopened as a research station.",
    "The station was reopened by the meteorologist Tomas Lindqvist, who will record the wind and the cloud "
    "on the mountain through the winter.",
    "Its instruments send their readings to Fort William every ten minutes.",
])


def _make_upload(kind: str, folder: Path) -> Path:
    """One article file of ``kind`` (html, pdf, docx), as users keep them."""
    import realdocs as docs  # tests/ is on sys.path, as for test_real_documents.py

    if kind == "html":
        path = folder / "fair_isle_ferry.html"
        path.write_text(docs.news_page(*FERRY), encoding="utf-8")
        return path
    if kind == "pdf":
        title, paragraphs, break_before = MILL
        return docs.print_pdf(docs.print_page(title, paragraphs, break_before=break_before),
                              folder / "kelso_mill.pdf", folder / "print")
    title, paragraphs = OBSERVATORY
    return docs.write_docx(folder / "ben_nevis.docx", title, paragraphs)


def _card_answering(driver, question: str, name: str):
    """Ask ``question``; the first answer card (or low-confidence candidate, opened) with ``name`` as a source."""
    from selenium.webdriver.common.by import By

    _ask(driver, question)
    area = _answers(driver)
    for summary in area.find_elements(By.CSS_SELECTOR, "details.qa-suggestions > summary"):
        driver.execute_script("arguments[0].click()", summary)
    return area, _card_with_file(area, name)


@pytest.mark.parametrize(("kind", "question", "answer", "page"), [
    ("html", "Which shipyard built the Good Shepherd V?", "Ailsa Troon", None),
    ("pdf", "Who led the restoration of the Kelso mill?", "Fiona Maclaren", 2),
    ("docx", "Who reopened the Ben Nevis observatory?", "Tomas Lindqvist", None),
])
def test_an_uploaded_web_page_pdf_or_word_file_is_answered_from(driver, url, tmp_path, kind, question, answer,
                                                                 page):
    """Each new format goes through the upload box as a user's file would; the answer card cites it, and a
    PDF's card says on which page the answer is ("p. 2"), as the CLI does."""
    from selenium.webdriver.common.by import By

    upload = _make_upload(kind, tmp_path)
    _open(driver, url)
    _index_tab(driver)
    message = _upload(driver, upload)
    assert f"Added {upload.name}" in message, message
    assert upload.name in _index_info(driver)

    _ask_tab(driver)
    area, card = _card_answering(driver, question, upload.name)
    driver.save_screenshot(str(_artefact(f"uploaded-{kind}-answer.png")))
    assert card is not None, f"no answer from {upload.name}; answer area: {area.text[:500]!r}"
    assert answer in card.find_element(By.CSS_SELECTOR, ".qa-answer-text").text, card.text[:300]
    source = next(s for s in card.find_elements(By.CSS_SELECTOR, ".qa-source")
                  if s.find_element(By.CSS_SELECTOR, "code.qa-file").text == upload.name)
    pages = [p.text for p in source.find_elements(By.CSS_SELECTOR, ".qa-source-head .qa-page")]
    assert pages == ([f"p. {page}"] if page else []), (pages, source.text[:300])


def test_a_corrupt_pdf_upload_is_refused_with_its_reason_and_changes_nothing(driver, url, tmp_path):
    """A binary format is not checked as UTF-8 text: the PDF reader's own check names what is wrong."""
    corrupt = tmp_path / "annual_report.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    _open(driver, url)
    _index_tab(driver)
    articles_before = _index_info(driver)
    message = _upload(driver, corrupt)
    driver.save_screenshot(str(_artefact("corrupt-pdf-upload.png")))
    assert "Nothing was added" in message and "Cannot add annual_report.pdf: it is damaged" in message, message
    assert "UTF-8" not in message, message
    assert _index_info(driver) == articles_before
    assert "annual_report.pdf" not in articles_before
