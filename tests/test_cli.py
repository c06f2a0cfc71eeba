"""The `qa` command as a user runs it: quiet by default, logs with -v, clean excerpts, a question with no words.

The command runs in a subprocess (``python -m qa.cli``), so that what reaches the terminal is what a user
sees: progress bars, library logs and Python warnings all go to the real stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from qa.cli import _print_response, one_line
from qa.retrieve import NO_WORDS_NOTICE, Retriever
from qa.types import Answer, Hit, Passage, Response, Source

REPO = Path(__file__).resolve().parent.parent
NO_WORDS = "?!?... ,;:!!"
# What must not reach a user at the default verbosity: library logs, model-loading bars, warnings, tqdm bars.
NOISE = re.compile(r"Loading weights|DEBUG|INFO|warning|it/s\]|\r|\d+%\|", re.IGNORECASE)


def run_qa(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)  # as on a user's machine: qa itself must turn the bars off
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """An index of a copy of seeds/ made by `qa -v build`, and that build's output."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(REPO / "seeds", root / "seeds")
    # cwd=REPO: `-m qa.cli` imports this checkout's qa package.
    done = run_qa("-v", "build", "--seeds", str(root / "seeds"), "--index", str(root / "index"), cwd=REPO)
    assert done.returncode == 0, done.stderr
    return root / "index", done


@pytest.mark.slow
def test_ask_into_a_pipe_closed_early_stops_quietly(built):
    """`qa ask ... | head -1`: the reader of stdout is gone before qa writes; no traceback, SIGPIPE's status."""
    index, _ = built
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "ask", "Who backed the rebels?", "--index", str(index)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before qa has loaded anything: its first print meets a closed pipe
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=600) == 141, stderr
    assert stderr == "", stderr


@pytest.mark.slow
def test_ask_prints_answers_and_nothing_else(built):
    index, _ = built
    done = run_qa("ask", "Who backed the rebels?", "--index", str(index), cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", f"stderr is not empty: {done.stderr[:2000]!r}"
    assert not NOISE.search(done.stdout), done.stdout
    assert "Saudi Arabia" in done.stdout
    # The README shows this output: it must stay what `qa ask` prints (all but the timing line). The confidence's
    # last digit may differ between CPUs (the int8 reader's kernels with and without VNNI), not the rest.
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = readme.split('$ qa ask "Who backed the rebels?"\n', 1)[1].split("```", 1)[0].splitlines()
    shown = re.compile(r"\(confidence \d\.\d\d\)")
    assert example and [shown.sub("(confidence …)", line) for line in done.stdout.splitlines()[:-1]] == [
        shown.sub("(confidence …)", line) for line in example], done.stdout


@pytest.mark.slow
def test_verbose_ask_shows_our_logs_but_not_other_libraries(built):
    index, _ = built
    done = run_qa("-v", "ask", "Who backed the rebels?", "--index", str(index), cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^INFO qa\.index\.load: Loaded index ", done.stderr, re.MULTILINE), done.stderr
    assert not re.search(r"Loading weights|^DEBUG|faiss\.loader|sentence_transformers", done.stderr, re.MULTILINE), \
        done.stderr


@pytest.mark.slow
def test_verbose_build_logs_its_steps_without_library_chatter(built):
    """Today's -v build printed ten faiss "Could not load library" lines, bm25s DEBUG lines and a stray {}."""
    _, build = built
    assert "INFO qa.index.build: Built " in build.stderr, build.stderr
    assert "INFO qa.index.ann: Built a flat index over 34 vectors\n" in build.stderr, build.stderr
    for noise in ("Could not load library", "DEBUG", "bm25s", "faiss.loader", "Loading weights", "{}"):
        assert noise not in build.stderr, f"{noise!r} in: {build.stderr}"
    assert re.fullmatch(r"5 documents \(5 added, .*\n", build.stdout), build.stdout


@pytest.mark.slow
def test_a_question_with_no_words_abstains_with_a_notice(built):
    index, _ = built
    done = run_qa("ask", NO_WORDS, "--index", str(index), cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("note: The question has no words"), done.stdout
    assert "Nothing in the articles is about this." in done.stdout and "Closest passages" not in done.stdout
    assert done.stderr == ""

    done = run_qa("ask", NO_WORDS, "--index", str(index), "--json", cwd=REPO)
    res = json.loads(done.stdout)
    assert res["abstained"] and res["answers"] == [] and res["notice"] == NO_WORDS_NOTICE


@pytest.mark.slow
def test_an_abstention_on_topic_shows_its_best_candidate_as_a_low_confidence_answer(built):
    """The passages are about the question (the calibration's on-topic rule) but no candidate reaches the
    abstention threshold (forced here: 0.99, so that a better reader keeps this test meaningful): the best
    candidate is printed first, labelled, with its source and sentence; it is still an abstention."""
    index, _ = built
    question = "Which Sunni powers armed and funded the rebels?"
    args = ("ask", question, "--index", str(index), "--abstain-threshold", "0.99")
    res = json.loads(run_qa(*args, "--json", cwd=REPO).stdout)
    assert res["abstained"] and res["answers"] == [] and res["on_topic"] is True and res["suggestions"], res
    best, src = res["suggestions"][0], res["suggestions"][0]["sources"][0]
    done = run_qa(*args, cwd=REPO)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"Low-confidence answer ({best['confidence']:.2f}): {best['text']}", lines
    assert lines[1] == f"     {src['title']} — {src['doc_id']} [{src['doc_start']}:{src['doc_end']}]", lines
    sentence = lines[2].strip()
    assert sentence.startswith("“") and sentence.endswith("”") and best["text"] in sentence, lines
    assert sentence[1:-1] in " ".join(src["passage_text"].split()) and len(sentence) < len(src["passage_text"])
    assert "The articles may not answer this: no passage gives a confident answer." in lines
    assert "Nothing in the articles is about this." not in done.stdout and "Closest passages:" in lines


@pytest.mark.slow
def test_a_question_nothing_in_the_articles_is_about_says_so(built):
    index, _ = built
    args = ("ask", "What is the boiling point of mercury?", "--index", str(index))
    res = json.loads(run_qa(*args, "--json", cwd=REPO).stdout)
    assert res["abstained"] and res["on_topic"] is False and res["passages"], res
    done = run_qa(*args, cwd=REPO)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("Nothing in the articles is about this.\n"), done.stdout
    assert "Low-confidence answer" not in done.stdout and "Closest passages:" in done.stdout


@pytest.mark.slow
def test_the_python_api_abstains_on_a_question_with_no_words(built):
    index, _ = built
    retriever = Retriever.load(index)
    for question in (NO_WORDS, "  ¿¡ — … « » ", "()[]{}"):
        res = retriever.ask(question)
        assert res.abstained and res.answers == [] and res.suggestions == [] and res.passages == []
        assert not res.on_topic
        assert res.notice == NO_WORDS_NOTICE and res.notice.startswith("The question has no words")
    assert retriever.ask("1995?").notice == ""  # a number is a word
    with pytest.raises(ValueError, match="empty"):
        retriever.ask(" \n\t ")  # no characters at all stays an error, as before


def test_excerpts_with_blank_lines_stay_on_their_bullet(capsys):
    text = "First paragraph ends here.\n\n\nSecond   paragraph\tstarts\n here. " + "More words. " * 20
    passage = Passage("a.txt#0", "a.txt", "A title\nwith a break", text, 0, len(text))
    res = Response("Who?", [], True, [Hit(passage, 1.0), Hit(passage, 0.5)], timings_ms={"total": 1.0})
    _print_response(res, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    bullets = lines[lines.index("Closest passages:") + 1:]
    assert len(bullets) == 2 and all(line.startswith("  - A title with a break (a.txt): First paragraph ends "
                                                     "here. Second paragraph starts here. More") for line in bullets)
    assert all(line.endswith("…") and len(line) < 200 for line in bullets), bullets


def test_an_abstention_says_which_of_its_three_cases_it_is(capsys):
    """On topic with a candidate: a labelled low-confidence answer; on topic without one: no confident answer;
    not on topic: nothing is about this, its candidates (if any) listed as before."""
    text = "Rebels held the town. Qatar and Turkey armed the rebels. Aid waited."
    passage = Passage("a.txt#0", "a.txt", "A", text, 0, len(text))
    src = Source("a.txt", "A", "a.txt#0", text, text.index("Qatar"), text.index(" armed"), 22, 38)
    guess = Answer("Qatar and Turkey", 0.21, (src,))
    base = Response("Who?", [], True, [Hit(passage, 1.0)], suggestions=[guess], timings_ms={"total": 1.0})
    printed = {}
    for name, res in (("weak", replace(base, on_topic=True)), ("none", replace(base, on_topic=True, suggestions=[])),
                      ("off", base)):
        _print_response(res, as_json=False)
        printed[name] = capsys.readouterr().out.splitlines()
    assert printed["weak"][:4] == ["Low-confidence answer (0.21): Qatar and Turkey", "     A — a.txt [22:38]",
                                   "     “Qatar and Turkey armed the rebels.”",
                                   "The articles may not answer this: no passage gives a confident answer."]
    assert printed["none"][0] == "No confident answer: the articles do not clearly answer this."
    assert printed["off"][:3] == ["Nothing in the articles is about this.", "Low-confidence candidates:",
                                  "  ? Qatar and Turkey  (confidence 0.21) — A — a.txt"]
    assert all("Low-confidence answer" not in line for name in ("none", "off") for line in printed[name])


def test_an_answer_shows_the_sentence_it_was_read_in_and_a_conflict_its_sides_first(capsys):
    """Each answer's first source is followed by its sentence; in a conflict, the answers that are not a side
    of the disagreement come under "Other answers:" (not listed as if they disagreed too)."""
    text = "The battle lasted three weeks. Others said 18 days. It was a single battle."
    passage = Passage("a.txt#0", "a.txt", "A", text, 0, len(text))

    def answer(span: str, confidence: float, conflicts: tuple[int, ...] = ()) -> Answer:
        start = text.index(span)
        src = Source("a.txt", "A", "a.txt#0", text, start, start + len(span), start, start + len(span))
        return Answer(span, confidence, (src,), conflicts_with=conflicts)

    answers = [answer("three weeks", 0.15, (1,)), answer("18 days", 0.36, (0,)), answer("single", 0.09)]
    _print_response(Response("How long?", answers, False, [Hit(passage, 1.0)], conflict=True,
                             timings_ms={"total": 5.0}), as_json=False)
    assert capsys.readouterr().out.splitlines() == [
        "Sources disagree:",
        "1. three weeks  (confidence 0.15)  [disagrees with 2]", "     A — a.txt [18:29]",
        "     “The battle lasted three weeks.”",
        "2. 18 days  (confidence 0.36)  [disagrees with 1]", "     A — a.txt [43:50]", "     “Others said 18 days.”",
        "Other answers:",
        "3. single  (confidence 0.09)", "     A — a.txt [61:67]", "     “It was a single battle.”",
        "(5 ms)",
    ]


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("a\n\nb", None, "a b"),
    ("  spaced \t out \n", None, "spaced out"),
    ("one two three", 13, "one two three"),
    ("one two three", 9, "one two…"),  # cut at a word boundary
    ("one two, three", 8, "one two…"),  # no dangling comma
    ("onetwothree", 5, "onetw…"),  # one long word: cut inside it
])
def test_one_line(text, limit, expected):
    assert one_line(text, limit) == expected


@pytest.mark.slow
def test_serve_works_from_a_non_editable_install(tmp_path):
    """`qa serve` imports the UI as a module of the installed package (qa.ui), not app.py from a checkout:
    installed (not editable) into a folder of its own and run from elsewhere, the UI imports, `qa serve
    --help` answers and `qa serve` reaches the UI's own checks. Built from a copy: the checkout gets no build/."""
    pytest.importorskip("setuptools")  # --no-build-isolation: the build backend comes from this environment
    src, site = tmp_path / "src", tmp_path / "site"
    shutil.copytree(REPO / "qa", src / "qa", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-compile", "--target", str(site), str(src)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    env.pop("QA_APP_PASSWORD", None)
    where = tmp_path / "elsewhere"
    where.mkdir()
    code = "import qa, qa.library, qa.ui.app, qa.ui.render, qa.ui.style; print(qa.ui.app.__file__)"
    imported = subprocess.run([sys.executable, "-c", code], cwd=where, env=env, capture_output=True, text=True,
                              timeout=300, check=False)
    assert imported.returncode == 0, imported.stderr
    assert Path(imported.stdout.strip()).is_relative_to(site), imported.stdout
    helped = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--help"], cwd=where, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert helped.returncode == 0, helped.stderr
    assert "usage: qa serve" in helped.stdout and "--articles" in helped.stdout
    # Past the parser: `qa serve` runs qa.ui's main, which refuses a public address without a password
    # before it reads or builds anything.
    refused = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--host", "0.0.0.0", "--seeds", "none"],
                             cwd=where, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 2, refused.stderr
    assert "refusing to serve on 0.0.0.0 without a password" in refused.stderr
    assert not (where / "index").exists()
