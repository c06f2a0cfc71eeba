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

from qa.build import build_index

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
