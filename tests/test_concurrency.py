"""Concurrent use: answers given during rebuilds come from one whole index version; builds exclude each other.

The version an answer came from is told apart by object identity: every load makes new Passage objects,
so the passages of one response must all be objects of one loaded store (all stores are kept alive, so
ids are never reused). A response that mixed two versions would hold objects of two stores.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from qa.config import DEFAULT_CONFIG
from qa.errors import IndexLockedError
from qa.index.build import build_index
from qa.index.check import verify_index
from qa.index.load import IndexStore, load_index
from qa.index.lock import index_lock
from qa.retrieve import Retriever

REPO = Path(__file__).resolve().parent.parent
SEEDS = sorted((REPO / "seeds").glob("*.txt"))
QUESTIONS = [
    "Who backed the rebels?",
    "Which town did government forces retake?",
    "How many people have died?",
    "What did Hezbollah do?",
    "Where did the aid convoy go?",
]


def _corpus(folder: Path, variant: str) -> Path:
    """Variant A: three seed articles. B: one of them changed and one article added (a real rebuild)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.txt"):
        path.unlink()
    for path in SEEDS[2:]:
        text = path.read_text(encoding="utf-8")
        if variant == "B" and path == SEEDS[2]:
            text += "\n\nLate update: the aid convoy reached Homs after the truce.\n"
        (folder / path.name).write_text(text, encoding="utf-8")
    if variant == "B":
        (folder / "zz_convoy.txt").write_text(
            "Aid convoy reaches Homs\n\nA United Nations aid convoy reached the old city of Homs on Sunday.\n\n"
            "Volunteers unloaded food and medicine while a local truce held.\n", encoding="utf-8")
    return folder


@pytest.mark.slow
def test_eight_threads_ask_while_the_index_is_rebuilt_and_reloaded(tmp_path, encoder):
    from qa.reader import load_reader

    source, index_dir = tmp_path / "articles", tmp_path / "index"
    build_index(_corpus(source, "A"), index_dir, DEFAULT_CONFIG, progress=False, encoder=encoder)
    retriever = Retriever.load(index_dir, DEFAULT_CONFIG, encoder=encoder, reader=load_reader())
    stores = [retriever.store]  # every version the retriever served, kept alive
    loads: list[IndexStore] = []  # versions loaded from disk by a concurrent loader
    responses: list = []
    errors: list[BaseException] = []
    rebuilt = threading.Event()
    lock = threading.Lock()

    def asker(n: int) -> None:
        asked = 0
        try:
            while asked < 3 or not rebuilt.is_set():
                res = retriever.ask(QUESTIONS[(n + asked) % len(QUESTIONS)], k=2)
                with lock:
                    responses.append(res)
                asked += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def loader() -> None:
        try:
            while not rebuilt.is_set():
                loaded = load_index(index_dir, DEFAULT_CONFIG)
                with lock:
                    loads.append(loaded)
                time.sleep(0.02)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def rebuilder() -> None:
        try:
            for variant in ("B", "A", "B", "A"):
                build_index(_corpus(source, variant), index_dir, DEFAULT_CONFIG, progress=False, encoder=encoder)
                new = load_index(index_dir, DEFAULT_CONFIG)
                with lock:
                    stores.append(new)
                retriever.store = new  # the reload: the next questions use the new version
                time.sleep(0.05)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            rebuilt.set()

    threads = [threading.Thread(target=asker, args=(n,)) for n in range(8)]
    threads += [threading.Thread(target=loader), threading.Thread(target=rebuilder)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors

    objects = [{id(p) for p in s.passages} for s in stores]
    values = [{(p.passage_id, p.text) for p in s.passages} for s in stores]
    served = Counter()
    sources_checked = 0
    for res in responses:
        ids = {id(h.passage) for h in res.passages}
        versions = [i for i, objs in enumerate(objects) if ids <= objs]
        assert len(versions) == 1, "a response mixed passages of two index versions"
        v = versions[0]
        for answer in [*res.answers, *res.suggestions]:  # abstentions offer candidates: check those too
            for src in answer.sources:
                assert (src.passage_id, src.passage_text) in values[v]
                sources_checked += 1
        served[v] += 1
    assert len(responses) >= 8 * 3 and len(stores) == 5
    assert sources_checked, "no response had an answer or a candidate: the sources' version was never checked"
    assert len(served) >= 2, f"every answer came from one version; the test did not overlap: {served}"
    docs_a = set(stores[0].documents)
    docs_b = set(stores[1].documents)
    assert docs_a != docs_b and "zz_convoy.txt" in docs_b
    for loaded in loads:  # each concurrent load is one whole version: A or B, checks passed
        assert set(loaded.documents) in (docs_a, docs_b)
        assert len(loaded.passages) == loaded.faiss_index.ntotal == len(loaded.lexical)
    assert verify_index(index_dir, DEFAULT_CONFIG) == []
    print(f"{len(responses)} answers from {len(served)} versions {dict(served)}, {len(loads)} concurrent loads")


def test_a_reload_in_the_middle_of_a_question_does_not_mix_versions(tmp_path, encoder):
    """The reload lands exactly between the sparse and the dense stage of one question (deterministic)."""
    source, index_dir = tmp_path / "articles", tmp_path / "index"
    build_index(_tiny(source), index_dir, DEFAULT_CONFIG, progress=False, encoder=encoder)
    old = load_index(index_dir, DEFAULT_CONFIG)
    build_index(_tiny(source, "Rebels withdrew from Qusayr."), index_dir, DEFAULT_CONFIG, progress=False,
                encoder=encoder)
    new = load_index(index_dir, DEFAULT_CONFIG)

    class ReloadingEncoder(GatedEncoder):
        def encode_queries(self, texts, **kwargs):
            retriever.store = new  # sparse has run on the old version; now the reload happens
            return self.inner.encode_queries(texts, **kwargs)

    retriever = Retriever(old, DEFAULT_CONFIG, encoder=ReloadingEncoder(encoder))
    hits = retriever.search("Who retook Qusayr?", k=5)
    assert hits and all(any(h.passage is p for p in old.passages) for h in hits)
    assert retriever.store is new  # the next question uses the new version
    assert all(any(h.passage is p for p in new.passages) for h in retriever.search("Who retook Qusayr?", k=5))


class GatedEncoder:
    """The real encoder, stopping inside encode_passages until ``go`` is set (a build held mid-way)."""

    def __init__(self, inner) -> None:
        self.inner, self.model_name, self.dimension = inner, inner.model_name, inner.dimension
        self.entered, self.go = threading.Event(), threading.Event()

    def encode_passages(self, titles, texts, **kwargs):
        self.entered.set()
        assert self.go.wait(timeout=120)
        return self.inner.encode_passages(titles, texts, **kwargs)

    def encode_queries(self, texts, **kwargs):
        return self.inner.encode_queries(texts, **kwargs)


def _tiny(folder: Path, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text("Qusayr\n\nGovernment forces retook the town of Qusayr in June.\n" + extra,
                                  encoding="utf-8")
    (folder / "b.txt").write_text("Homs\n\nAn aid convoy reached the old city of Homs.\n", encoding="utf-8")
    return folder


def test_a_second_build_into_the_same_index_is_refused_not_interleaved(tmp_path, encoder):
    source, index_dir = _tiny(tmp_path / "src"), tmp_path / "index"
    gated = GatedEncoder(encoder)
    outcome: dict = {}

    def first() -> None:
        try:
            outcome["report"] = build_index(source, index_dir, DEFAULT_CONFIG, progress=False, encoder=gated)
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert gated.entered.wait(timeout=120)  # the first build is embedding, holding the lock
        with pytest.raises(IndexLockedError, match=r"Another build is running on .*index \(process \d+\)"):
            build_index(_tiny(tmp_path / "other", "More."), index_dir, DEFAULT_CONFIG, progress=False,
                        encoder=encoder)
        with pytest.raises(IndexLockedError, match="wait for it to finish"), index_lock(index_dir):
            pass
    finally:
        gated.go.set()
        thread.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert verify_index(index_dir, DEFAULT_CONFIG) == []
    assert not list(index_dir.glob(".tmp-*"))
    again = build_index(source, index_dir, DEFAULT_CONFIG, progress=False, encoder=encoder)  # lock released
    assert again.up_to_date


LOCK_HOLDER = """
import sys, time
from qa.index.lock import index_lock
with index_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_build_in_another_process_is_refused_and_its_death_frees_the_lock(tmp_path, encoder):
    source, index_dir = _tiny(tmp_path / "src"), tmp_path / "index"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(index_dir)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=rf"\(process {holder.pid}\)"):
            build_index(source, index_dir, DEFAULT_CONFIG, progress=False, encoder=encoder)
    finally:
        holder.kill()  # SIGKILL: no chance to unlock; the kernel drops the flock with the process
        holder.wait()
    report = build_index(source, index_dir, DEFAULT_CONFIG, progress=False, encoder=encoder)
    assert report.n_documents == 2 and verify_index(index_dir, DEFAULT_CONFIG) == []
