"""The question path (load the index, embed the question and the answer sentences, search, read) in a fresh
process: it must not import torch, transformers or sentence-transformers (seconds of start-up), nor gradio,
bm25s or scipy. The index's ONNX query encoder and the ONNX reader answer instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.index.build import build_index

REPO = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "sentence_transformers", "transformers", "gradio", "bm25s", "scipy"}
ASK = """
import json, sys
from qa.cli import main
status = main(["ask", sys.argv[2], "--index", sys.argv[1], "--json"])
import qa
print("MODULES", json.dumps({"qa": qa.__file__, "modules": sorted(sys.modules)}))
sys.exit(status)
"""


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory, encoder) -> Path:
    index = tmp_path_factory.mktemp("question-path") / "index"
    build_index(REPO / "seeds", index, progress=False, encoder=encoder)
    return index


@pytest.mark.parametrize("question", ["Who backed the rebels?", "How many people have died in the Syrian conflict?"])
def test_qa_ask_imports_no_torch_transformers_gradio_or_bm25s(seeds_index, question):
    run = subprocess.run([sys.executable, "-c", ASK, str(seeds_index), question], cwd=REPO, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
    assert run.returncode == 0, run.stderr
    response, _, tail = run.stdout.partition("MODULES ")
    seen = json.loads(tail)
    assert Path(seen["qa"]).resolve().is_relative_to(REPO)  # this checkout's qa, not another install
    top_level = {name.split(".")[0] for name in seen["modules"]}
    assert not top_level & HEAVY, sorted(top_level & HEAVY)
    assert {"onnxruntime", "tokenizers", "faiss"} <= top_level
    answer = json.loads(response)
    assert answer["question"] == question and answer["passages"]  # a real answer (or abstention) came back
    assert answer["answers"] or answer["abstained"]


@pytest.mark.slow
def test_cold_start_benchmark_runs(seeds_index, tmp_path):
    """bench/cold_start.py end to end (one cold run of each command); results go to tmp_path, not bench/."""
    run = subprocess.run([sys.executable, "bench/cold_start.py", "--index", str(seeds_index), "--runs", "1",
                          "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((tmp_path / "cold_start.json").read_text())["cold_start"]
    assert results["cold"]["failed_asks"] == 0 and results["cold"]["ratio"] > 0
    assert results["in_process"]["heavy_modules_loaded"] == []
    assert results["in_process"]["warm_ask_ms"]["n"] == 100 and results["in_process"]["cpu_s_per_question"]["mean"] > 0
    text = (tmp_path / "cold_start.md").read_text()
    assert "| **ratio** |" in text and "CPU per question" in text


QUESTIONS = [
    "Who backed the rebels?", "How many people have died in the Syrian conflict?", "What is Defence Report?",
    "Which city are Assad's forces preparing to attack next?", "What does takfiri mean?", "Who retook Qusayr?",
    "How much extra humanitarian aid does the UN want for Syrian refugees?", "Who is the UN's humanitarian aid chief?",
    "Why did the Free Syrian Army withdraw from Qusayr?", "Which countries are the key allies of Damascus?",
    "How many Shi'a jihadis have flocked to Damascus?", "Which cities do opposition forces control?",
    "How many people have been wounded in Qusayr?", "What is the capital of France?",
]


def test_the_answer_stage_embeds_only_the_sentences_that_can_matter(seeds_index, monkeypatch):
    """Skipping the sentences of candidates that can never be shown changes nothing in any response."""
    from qa import answer
    from qa.retrieve import Retriever

    retriever = Retriever.load(seeds_index)
    encoder = retriever.encoder
    embedded = []
    real_encode = encoder.encode_queries
    monkeypatch.setattr(encoder, "encode_queries",
                        lambda texts, **kw: embedded.extend(texts) or real_encode(texts, **kw))

    def responses() -> list[dict]:
        embedded.clear()
        out = []
        for question in QUESTIONS:
            response = retriever.ask(question, k=3).to_dict()
            del response["timings_ms"]
            out.append(response)
        return out

    pruned, pruned_texts = responses(), len(embedded)
    real_candidates = answer.candidates
    monkeypatch.setattr(answer, "candidates", lambda *a, **kw: real_candidates(*a, **{**kw, "complete": True}))
    complete, complete_texts = responses(), len(embedded)
    assert pruned == complete  # answers, confidences, features, sources, suggestions: all equal
    assert any(r["answers"] for r in pruned) and any(r["suggestions"] for r in pruned)
    assert pruned_texts < 0.8 * complete_texts
