"""Make the README's screenshot (docs/screenshot.png): the web UI asked the card question, in headless Chromium.

Run it from the repository's root after a change to the UI or to the answers, look at the picture, and commit
it with that change (the tests never write it)::

    python docs/make_screenshot.py                 # writes docs/screenshot.png
    python docs/make_screenshot.py --out /tmp/ui.png --question "How many people have died?"

It serves the app (qa.ui, what app.py runs) on a free local port over a temporary copy of seeds/ (its
index is built there, so nothing in the checkout changes but --out), and drives /usr/bin/chromium with a
new, empty profile. Needs the test extras (selenium) and Debian's chromium + chromium-driver
(`apt-get install chromium chromium-driver`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # this checkout's qa, as `python app.py` run from the root imports it
    sys.path.insert(1, str(REPO))
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run")
WAIT = 240  # seconds for the answer: the first question loads the models


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chrome(profile: Path, width: int, height: int, chromium: Path, chromedriver: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(chromedriver)))


def _ask_and_shoot(driver, url: str, question: str, out: Path) -> None:
    """Ask by pressing Enter, wait for this question's answer, open the low-confidence candidates, save."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.set_page_load_timeout(60)
    driver.get(url)
    box_css = "#qa-question textarea, #qa-question input"
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, box_css))
    box = driver.find_element(By.CSS_SELECTOR, box_css)
    box.send_keys(question)
    box.send_keys(Keys.ENTER)

    def shown(d) -> bool:
        metas = d.find_elements(By.CSS_SELECTOR, "#qa-answers .qa-meta")
        return bool(metas) and question in metas[0].text

    WebDriverWait(driver, WAIT).until(shown)
    area = driver.find_element(By.CSS_SELECTOR, "#qa-answers")
    for summary in area.find_elements(By.CSS_SELECTOR, "details.qa-suggestions > summary"):
        driver.execute_script("arguments[0].click()", summary)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise RuntimeError(f"Chromium could not write the screenshot to {out}.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png",
                   help="PNG to write (default: docs/screenshot.png)")
    p.add_argument("--question", default="Who backed the rebels?", help="what to ask (default: the card question)")
    p.add_argument("--width", type=int, default=1280, help="window width in pixels (default: 1280, a laptop)")
    p.add_argument("--height", type=int, default=1000, help="window height in pixels (default: 1000)")
    p.add_argument("--chromium", type=Path, default=Path("/usr/bin/chromium"))
    p.add_argument("--chromedriver", type=Path, default=Path("/usr/bin/chromedriver"))
    args = p.parse_args(argv)
    for tool in (args.chromium, args.chromedriver):
        if not tool.exists():
            print(f"error: {tool} is missing: apt-get install chromium chromium-driver", file=sys.stderr)
            return 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    with tempfile.TemporaryDirectory(prefix="qa-screenshot-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "seeds", root / "seeds")
        from qa.ui import build_app

        demo = build_app(root / "seeds", root / "index")
        demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=_free_port(), quiet=True)
        try:
            driver = _chrome(root / "chromium-profile", args.width, args.height, args.chromium, args.chromedriver)
            try:
                _ask_and_shoot(driver, demo.local_url, args.question, args.out.resolve())
            finally:
                driver.quit()
        finally:
            demo.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
