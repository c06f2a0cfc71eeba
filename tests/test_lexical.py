"""BM25 over passages: tokenizer, spelling variants, tiny corpora, save/load."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.index.lexical import LexicalIndex, tokenize

CORPUS = [
    "Syria. Government forces retook Qusayr from the rebels after weeks of fighting.",
    "Lebanon. Hezbollah fighters crossed the border to support the Syrian army.",
    "Iraq. Shi'a militias gathered in Baghdad; 94,000 people were displaced.",
    "Cooking. Whisk the eggs, add flour and bake for twenty minutes.",
]


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(CORPUS)


def test_tokenizer_normalises_case_stopwords_stems_and_numbers():
    assert tokenize("The Rebels are FIGHTING") == ["rebel", "~rbl", "fight", "~fght"]
    assert "94000" in tokenize("94,000 people") and "94000" in tokenize("94000 people")
    assert tokenize("Shi'a") == tokenize("Shia") == ["shia"]
    assert tokenize("Assad's forces")[:1] == ["assad"]
    assert tokenize("Quṣayr") == tokenize("Qusayr")


@pytest.mark.parametrize(
    ("query", "row"),
    [("Qusair", 0), ("Qusayr", 0), ("Hizbollah", 1), ("Hezbollah", 1), ("Shia", 2), ("Shi'a", 2)],
)
def test_spelling_variants_find_each_other(index, query, row):
    hits = index.search(query, k=2)
    assert hits and hits[0][0] == row


def test_exact_spelling_outranks_a_variant():
    idx = LexicalIndex.build(["News. Fighting in Qusair.", "News. Fighting in Qusayr."])
    hits = idx.search("Qusayr", k=2)
    assert [row for row, _ in hits] == [1, 0]
    assert hits[0][1] > hits[1][1] > 0


def test_idf_stays_positive_when_a_term_is_in_every_document():
    idx = LexicalIndex.build(["war in syria", "syria war news"])
    hits = idx.search("syria", k=5)
    assert [row for row, _ in hits] == [0, 1] or [row for row, _ in hits] == [1, 0]
    assert all(score > 0 for _, score in hits)
    three = LexicalIndex.build(["syria", "syria", "syria"])
    assert len(three.search("syria", k=3)) == 3


def test_only_matching_rows_and_k_larger_than_corpus(index):
    hits = index.search("eggs flour", k=100)
    assert [row for row, _ in hits] == [3]
    assert index.search("fighting", k=1)[0][0] in (0, 1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search("eggs", k=0)


def test_queries_without_indexed_tokens_return_nothing(index):
    assert index.search("", k=5) == []
    assert index.search("the of and", k=5) == []  # only stopwords
    assert index.search("zzzqqq", k=5) == []  # unknown word


def test_tiny_and_empty_corpora():
    assert LexicalIndex.build([]).search("war", k=3) == []
    assert LexicalIndex.build(["", "..."]).search("war", k=3) == []


def test_save_load_round_trip(index, tmp_path):
    index.save(tmp_path / "bm25")
    assert not list((tmp_path / "bm25").glob("*.pkl"))
    loaded = LexicalIndex.load(tmp_path / "bm25")
    for query in ["Qusair", "Hezbollah militias", "94,000", "bake"]:
        assert loaded.search(query, k=4) == index.search(query, k=4)
    mapped = LexicalIndex.load(tmp_path / "bm25", mmap=True)
    assert mapped.search("Qusair", k=4) == index.search("Qusair", k=4)


def test_empty_index_round_trip(tmp_path):
    LexicalIndex.build([]).save(tmp_path / "empty")
    assert LexicalIndex.load(tmp_path / "empty").search("war", k=1) == []


def test_top_k_keeps_ties_in_row_order():
    """Only the k best are sorted (not every hit), with the same result as a full stable sort."""
    texts = ["rebels attacked", "rebels attacked", "rebels rebels attacked", "rebels attacked", "convoy",
             "rebels attacked"]
    index = LexicalIndex.build(texts)
    full = index.search("rebels", k=10)
    assert [row for row, _ in full] == [2, 0, 1, 3, 5]
    for k in range(1, 6):
        assert index.search("rebels", k=k) == full[:k]


def test_stopwords_are_bm25s_list():
    from bm25s.stopwords import STOPWORDS_EN

    from qa.index.lexical import STOPWORDS_EN as ours

    assert ours == tuple(STOPWORDS_EN)


def test_loaded_postings_score_exactly_as_bm25s(tmp_path):
    """A loaded index is searched without bm25s: its scores must be bm25s's own, bit for bit."""
    import bm25s
    import numpy as np

    texts = [line for line in (Path(__file__).resolve().parent.parent / "seeds").glob("*.txt")
             for line in line.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(texts) > 50
    LexicalIndex.build(texts).save(tmp_path / "bm25")
    ours = LexicalIndex.load(tmp_path / "bm25", mmap=True)
    theirs = bm25s.BM25.load(tmp_path / "bm25", mmap=True, show_progress=False)
    for query in ["Who backed the rebels?", "Qusair Hizbollah", "94,000 displaced", "sarin nerve agent attack",
                  "the of and", "Syria Syria Syria rebels"]:
        ids = theirs.get_tokens_ids(tokenize(query))
        scores = ours.postings.scores(tokenize(query))
        if not ids:
            assert scores is None
            continue
        expected = theirs.get_scores_from_ids(ids)
        assert scores.dtype == expected.dtype and np.array_equal(scores, expected)


def test_a_loaded_index_is_not_saved_again(index, tmp_path):
    index.save(tmp_path / "bm25")
    with pytest.raises(ValueError, match="loaded from disk"):
        LexicalIndex.load(tmp_path / "bm25").save(tmp_path / "again")
