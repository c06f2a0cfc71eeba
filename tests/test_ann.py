"""qa.index.ann: index kind by size, recall of the approximate indexes against exact search, manifest description."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from qa.embed import l2_normalise
from qa.index import ann

N_RANDOM = 2_000
DIM = 384


@pytest.fixture(scope="module")
def vectors(encoder) -> np.ndarray:
    """2,000 random unit vectors plus a few real passage embeddings (real vectors are not uniform)."""
    real = encoder.encode_passages(
        ["Syria", "Syria", "Cooking", "Football", "Physics"],
        [
            "Government forces retook the town of Qusayr from the rebels.",
            "Hezbollah fighters helped the army in the siege.",
            "Whisk the eggs and add flour.",
            "The Broncos beat the Panthers in Super Bowl 50.",
            "The photon has no rest mass.",
        ],
    )
    rng = np.random.default_rng(7)
    noise = l2_normalise(rng.normal(size=(N_RANDOM, DIM)).astype(np.float32))
    return np.concatenate([real, noise])


@pytest.fixture(scope="module")
def queries(encoder, vectors) -> np.ndarray:
    """Real questions and perturbed corpus vectors (so queries have close neighbours, as real ones do)."""
    real = encoder.encode_queries(["Who retook Qusayr?", "How do I make batter?", "Who won Super Bowl 50?"])
    rng = np.random.default_rng(8)
    near = l2_normalise(vectors[rng.choice(len(vectors), 97, replace=False)]
                        + rng.normal(scale=0.03, size=(97, DIM)).astype(np.float32))
    return np.concatenate([real, near])


def _recall_at_10(index: faiss.Index, exact: faiss.Index, queries: np.ndarray) -> float:
    _, got = index.search(queries, 10)
    _, want = exact.search(queries, 10)
    return float(np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)]))


def test_auto_picks_flat_below_the_threshold(vectors):
    index = ann.make_index(vectors)
    assert isinstance(faiss.downcast_index(index), faiss.IndexFlatIP)
    assert ann.describe(index) == {"index_type": ann.FLAT_TYPE, "params": {}}
    assert ann.choose_kind(ann.FLAT_MAX_PASSAGES) == "flat"
    assert ann.choose_kind(ann.FLAT_MAX_PASSAGES + 1) == "hnsw"
    assert ann.choose_kind(ann.IVFFLAT_MIN_PASSAGES) == "hnsw"
    assert ann.choose_kind(ann.IVFFLAT_MIN_PASSAGES + 1) == "ivfflat"
    assert ann.choose_kind(10, "ivfpq") == "ivfpq"


def test_auto_picks_hnsw_over_a_lowered_threshold(vectors):
    index = ann.make_index(vectors, flat_max=1_000)
    assert isinstance(faiss.downcast_index(index), faiss.IndexHNSWFlat)
    described = ann.describe(index)
    assert described["index_type"] == ann.HNSW_TYPE
    assert described["params"] == {"M": ann.HNSW_M, "efConstruction": ann.HNSW_EF_CONSTRUCTION,
                                   "efSearch": ann.HNSW_EF_SEARCH}
    assert index.ntotal == len(vectors)


def test_hnsw_recall_at_10_against_exact(vectors, queries):
    exact = ann.make_index(vectors, "flat")
    hnsw = ann.make_index(vectors, "hnsw")
    assert _recall_at_10(hnsw, exact, queries) >= 0.95
    # The real question finds the real passage first in both.
    assert hnsw.search(queries[:1], 1)[1][0, 0] == exact.search(queries[:1], 1)[1][0, 0] == 0


def test_ivfpq_is_compact_and_searches(vectors, queries):
    index = ann.make_index(vectors, "ivfpq", nlist=16, pq_m=48)
    described = ann.describe(index)
    assert described["index_type"] == ann.IVFPQ_TYPE
    assert described["params"] == {"nlist": 16, "pq_m": 48, "nbits": 8, "nprobe": 16}
    # 48 bytes per vector instead of 1,536; at 2k vectors the PQ codebooks (~0.4 MB) still dominate.
    assert ann.index_bytes(index) < ann.index_bytes(ann.make_index(vectors, "flat")) / 4
    _scores, rows = index.search(queries[:3], 5)
    assert (rows >= 0).all() and rows[0, 0] == 0  # PQ is lossy, but the obvious match stays on top


def test_ivfflat_keeps_exact_vectors_and_trades_nprobe_for_recall(vectors, queries):
    index = ann.make_index(vectors, "ivfflat", nlist=16, ivf_nprobe=4)
    assert ann.describe(index) == {"index_type": ann.IVFFLAT_TYPE, "params": {"nlist": 16, "nprobe": 4}}
    exact = ann.make_index(vectors, "flat")
    all_cells = ann.configure(faiss.deserialize_index(faiss.serialize_index(index)), {"nprobe": 16})
    assert ann.describe(all_cells)["params"]["nprobe"] == 16
    assert _recall_at_10(all_cells, exact, queries) == 1.0  # every cell visited: exact search
    assert _recall_at_10(index, exact, queries) <= 1.0 and index.search(queries[:1], 1)[1][0, 0] == 0
    with pytest.raises(ValueError, match="needs at least"):
        ann.make_index(vectors[:100], "ivfflat")


def test_query_time_params_survive_serialisation(vectors):
    index = ann.make_index(vectors, "hnsw", ef_search=40)
    copy = faiss.deserialize_index(faiss.serialize_index(index))
    copy = ann.configure(copy, {"efSearch": 200})
    assert ann.describe(copy)["params"]["efSearch"] == 200


def test_bad_inputs_are_rejected_with_a_fix(vectors):
    with pytest.raises(ValueError, match="L2-normalised"):
        ann.make_index(vectors * 2)
    with pytest.raises(ValueError, match="one vector per row"):
        ann.make_index(vectors[0])
    with pytest.raises(ValueError, match="must be one of"):
        ann.make_index(vectors, "annoy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must divide the vector dimension"):
        ann.make_index(vectors, "ivfpq", nlist=8, pq_m=50)
    with pytest.raises(ValueError, match="needs at least"):
        ann.make_index(vectors[:100], "ivfpq")


def test_empty_corpus_gives_an_empty_flat_index():
    index = ann.make_index(np.zeros((0, DIM), dtype=np.float32))
    assert index.ntotal == 0 and ann.describe(index)["index_type"] == ann.FLAT_TYPE


def _corpus(n: int) -> tuple[list, list]:
    from qa.types import Document, Paragraph, Passage

    lines = [f"Passage number {i} about topic {i % 17}." for i in range(n)]
    text = "\n\n".join(lines)
    starts = [sum(len(x) + 2 for x in lines[:0])]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 2)
    paragraphs = tuple(Paragraph(a, a + len(line)) for a, line in zip(starts, lines, strict=True))
    doc = Document("many.txt", "Many", text, "sha-many", paragraphs)
    passages = [Passage(f"many.txt#{i}", "many.txt", "Many", line, a, a + len(line))
                for i, (a, line) in enumerate(zip(starts, lines, strict=True))]
    return [doc], passages


@pytest.mark.parametrize(("index_type", "expected"), [("auto", ann.FLAT_TYPE), ("hnsw", ann.HNSW_TYPE),
                                                     ("ivfflat", ann.IVFFLAT_TYPE)])
def test_store_round_trip_keeps_the_index_type(tmp_path, vectors, queries, index_type, expected):
    from qa.config import DEFAULT_CONFIG
    from qa.index.lexical import LexicalIndex
    from qa.index.load import load_index
    from qa.index.save import save_index

    docs, passages = _corpus(len(vectors))
    config = DEFAULT_CONFIG.with_overrides(index_type=index_type)
    save_index(tmp_path / "index", documents=docs, passages=passages, vectors=vectors,
               lexical=LexicalIndex.build([p.text for p in passages]), config=config)
    loaded = load_index(tmp_path / "index", config)
    assert loaded.manifest["index_type"] == expected
    assert ann.describe(loaded.faiss_index) == {"index_type": expected, "params": loaded.manifest["index_params"]}
    exact = ann.make_index(vectors, "flat")
    assert _recall_at_10(loaded.faiss_index, exact, queries) >= 0.95
    assert loaded.dense_search(queries[:1], 3)[0][0][0] == 0
    # An index saved with one kind loads under a config that asks for another: the kind only affects builds.
    assert load_index(tmp_path / "index", DEFAULT_CONFIG).manifest["index_type"] == expected
