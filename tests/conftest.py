"""Shared fixtures. Tests run offline: models come from installed packages, never from the hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test imports transformers/huggingface_hub, so nothing tries the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parent.parent
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
