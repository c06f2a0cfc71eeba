"""The benchmark harness runs end to end on a tiny slice, so it cannot rot between full benchmark runs.

The SQuAD- and BEIR-shaped inputs are made from the seed files (same formats as ../shared/eval/); every
system the scripts compare that needs no extra package runs (Haystack and matplotlib are bench-only extras:
`--no-haystack`, and plots are skipped when matplotlib is missing). Nothing is written under bench/.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
GOLD = REPO / "eval" / "seeds_qa_dev.jsonl"

pytestmark = pytest.mark.slow

QUESTIONS = [  # (question, answer, seed file that states it)
    ("Who is the Syrian prime minister?", "Wail al-Halqi", "003_0ccbed5b938370f4.txt"),
    ("Which nerve agent was the regime accused of using?", "sarin", "002_b421f2b8e3e2ac47.txt"),
    ("How many countries joined the Friends of Syria against the regime?", "150", "001_e8f425aa3e78842d.txt"),
]


@pytest.fixture(scope="module")
def shaped(tmp_path_factory) -> Path:
    """squad/ and scifact/ folders in the shared formats, whose documents are the seed files."""
    root = tmp_path_factory.mktemp("bench-data")
    files = sorted(SEEDS.glob("*.txt"))
    squad, scifact = root / "squad", root / "scifact"
    (scifact / "qrels").mkdir(parents=True)
    squad.mkdir()
    with (squad / "paragraphs.jsonl").open("w") as pars, (scifact / "corpus.jsonl").open("w") as corpus:
        for f in files:
            title, _, body = f.read_text(encoding="utf-8").partition("\n")
            pars.write(json.dumps({"pid": f.name, "title": title, "context": body}) + "\n")
            corpus.write(json.dumps({"_id": f.name, "title": title, "text": body}) + "\n")
    with (squad / "questions_dev.jsonl").open("w") as qs, (scifact / "queries.jsonl").open("w") as queries:
        for i, (question, answer, pid) in enumerate(QUESTIONS):
            qs.write(json.dumps({"id": f"q{i}", "question": question, "answers": [answer], "pid": pid}) + "\n")
            queries.write(json.dumps({"_id": f"q{i}", "text": question}) + "\n")
    (scifact / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\t{pid}\t1\n" for i, (_, _, pid) in enumerate(QUESTIONS))
    )
    return root


def _run(script: str, args: list[str], cache: Path) -> None:
    # PYTHONPATH: the scripts import this checkout's qa, not whichever qa is installed (python bench/x.py puts
    # bench/, not the repository, first on sys.path).
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "QA_BENCH_CACHE": str(cache),
           "PYTHONPATH": pythonpath}
    proc = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"bench/{script} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


def test_retrieval_benchmark_runs_on_a_tiny_slice(shaped: Path, tmp_path: Path):
    _run("retrieval.py", ["--datasets", "seeds,squad,scifact", "--squad", str(shaped / "squad"),
                          "--scifact", str(shaped / "scifact"), "--gold", str(GOLD), "--no-haystack",
                          "--latency-queries", "2", "--out", str(tmp_path), "--name", "smoke"],
         tmp_path / "cache")
    results = json.loads((tmp_path / "smoke.json").read_text())
    text = (tmp_path / "smoke.md").read_text()
    for system in ("bm25 (qa sparse)", "dense (qa, exact FAISS)", "qa hybrid (RRF)", "bm25s default"):
        assert system in text, system
    assert json.dumps(results)  # the full results are valid JSON
    for dataset in ("seeds", "squad", "scifact"):
        assert f"## {dataset} (" in text, dataset
    assert not (REPO / "bench" / "results" / "smoke.json").exists()


def test_answers_benchmark_runs_on_a_tiny_slice(shaped: Path, tmp_path: Path):
    _run("answers.py", ["--datasets", "seeds,squad", "--modes", "hybrid,sparse", "--squad", str(shaped / "squad"),
                        "--gold", str(GOLD), "--squad-limit", "3", "--peer", "none", "--out", str(tmp_path),
                        "--name", "smoke"],
         tmp_path / "cache")
    text = (tmp_path / "smoke.md").read_text()
    results = json.loads((tmp_path / "smoke.json").read_text())
    assert "hybrid" in text and "sparse" in text
    assert "answer@1" in text and ("em" in text.lower())
    assert results


def _have_haystack_reader() -> bool:
    try:
        return importlib.util.find_spec("haystack_integrations.components.readers.transformers") is not None
    except ModuleNotFoundError:
        return False


def test_answers_benchmark_peer_row_beside_ours(shaped: Path, tmp_path: Path):
    """The Haystack reader row runs our weights beside our row; without Haystack it is skipped with a note."""
    _run("answers.py", ["--datasets", "seeds,squad", "--modes", "hybrid", "--squad", str(shaped / "squad"),
                        "--gold", str(GOLD), "--squad-limit", "3", "--peer", "plain", "--out", str(tmp_path),
                        "--name", "smoke"],
         tmp_path / "cache")
    results = json.loads((tmp_path / "smoke.json").read_text())
    text = (tmp_path / "smoke.md").read_text()
    assert "hybrid + reader" in text
    if not _have_haystack_reader():
        assert "Peer rows skipped" in text
        assert set(results["seeds"]) == {"hybrid"}
        return
    n_gold = sum(1 for line in GOLD.read_text().splitlines() if line.strip())
    peer = results["seeds"]["peer"]
    assert peer["overall"]["n"] == n_gold == results["seeds"]["hybrid"]["overall"]["n"]
    assert "haystack reader (same weights)" in text
    # Same weights: the assembled transformers model gives our model's logits on the same input ids.
    check = results["peer"]["logits_check"]
    assert check["same_input_ids"] is True
    assert check["max_abs_vs_fp32"] < 1e-3
    assert check["max_abs_segment_wrapper"] < 1e-5  # the '+ segment ids' row gives the tokenizer's segment ids
    # Answers come back as qa answers citing the seed files, and are scored like ours.
    answered = [q for q in peer["questions"] if q["answer"]]
    assert answered and all(q["sources"] for q in answered)
    assert {s for q in answered for s in q["sources"]} <= {f.name for f in SEEDS.glob("*.txt")}
    assert results["squad"]["peer"]["overall"]["n"] == 3
