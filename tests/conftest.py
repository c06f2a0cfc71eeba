"""Shared fixtures. Tests run offline: models come from installed packages, never from the hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test imports transformers/huggingface_hub, so nothing tries the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent

# Test tiers (markers unit / integration / system, given by file; `python -m pytest -m unit` is the fast
# command, under a minute). unit: pure code and real small files, no model loaded; integration: the real
# packaged encoder, reader, FAISS and index builds; system: the `qa` command, the app and a real browser as a
# user meets them. A slow test in a unit file counts as integration, a browser test as system.
TIERS = {
    **dict.fromkeys(["test_answer_features.py", "test_answer_types.py", "test_boilerplate.py", "test_formats.py",
                     "test_ingest.py", "test_layout.py", "test_lexical.py", "test_passages.py",
                     "test_properties.py"], "unit"),
    **dict.fromkeys(["test_ann.py", "test_build.py", "test_concurrency.py", "test_embed.py", "test_evaluate.py",
                     "test_faults.py", "test_question_path.py", "test_ray_build.py", "test_reader.py",
                     "test_real_documents.py", "test_resume.py", "test_search_pipeline.py", "test_store.py",
                     "test_training.py"], "integration"),
    **dict.fromkeys(["test_app.py", "test_bench_smoke.py", "test_browser.py", "test_cli.py",
                     "test_ray_real_corpus.py"], "system"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = Path(str(item.fspath)).name
        tier = TIERS.get(name)
        if tier is None:
            raise pytest.UsageError(f"{name} has no test tier: add it to TIERS in tests/conftest.py")
        if item.get_closest_marker("browser"):
            tier = "system"
        elif tier == "unit" and item.get_closest_marker("slow"):
            tier = "integration"
        item.add_marker(getattr(pytest.mark, tier))

SEEDS = REPO / "seeds"


@pytest.fixture(scope="session")
def encoder():
    """The real packaged MiniLM encoder, loaded once per test session (one thread: the CPU is shared)."""
    import torch

    from qa.embed import get_encoder

    torch.set_num_threads(1)
    return get_encoder()


@pytest.fixture(scope="session")
def answers_of():
    """What ask() returns for each question, in a comparable form (abstained; text, confidence, passage)."""

    def answers_of(retriever, questions: list[str]) -> list[tuple]:
        out = []
        for question in questions:
            res = retriever.ask(question, k=3)
            out.append((res.abstained,
                        [(a.text, round(a.confidence, 2), a.sources[0].passage_id) for a in res.answers]))
        return out

    return answers_of


@pytest.fixture
def seeds_copy(tmp_path: Path) -> Path:
    """A private copy of seeds/ that a test may edit."""
    import shutil

    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target
