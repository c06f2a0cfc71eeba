"""Is the question about the articles at all? The retrieval scores the on-topic rule weighs.

Why: when qa abstains, the user should learn whether the articles talk about the question without answering it
(then the best candidate is shown as a labelled low-confidence answer) or say nothing about it. Two scores, both
free of the corpus's scale so that a rule fitted on SQuAD (training/calibrate.py) carries over to other articles:

- ``top_dense``: the cosine of the question's and the best hit's vectors (the sentence-transformers similarity);
- ``coverage``: the share of the question's content terms, weighted by the index's IDF, that one of the first
  COVERAGE_PASSAGES hits holds (in its text or title). A news question worded unlike its articles ("When did
  Qusayr fall?") has a low cosine with a long passage that still names every rare term of it; a question about
  something else shares the corpus's common words, not its rare ones.

On SQuAD dev (1,200 questions with and without their article; training/results/on_topic.md) the cosine alone
separates the two with AUC 0.948, the IDF coverage 0.933 and the two together 0.977.
"""

from __future__ import annotations

from collections.abc import Sequence

from qa.answer import question_terms
from qa.index.lexical import LexicalIndex, tokenize
from qa.types import Hit

TOPIC_SCORES = ("top_dense", "coverage")
COVERAGE_PASSAGES = 5


def coverage(question: str, hits: Sequence[Hit], lexical: LexicalIndex, passages: int = COVERAGE_PASSAGES) -> float:
    """The largest IDF-weighted share of the question's terms that one of the first ``passages`` hits holds."""
    terms = question_terms(question)  # stems and spelling keys, the wh-words and auxiliaries left out
    if not terms or not hits:
        return 0.0
    weight = {t: lexical.idf(t) for t in terms}
    total = sum(weight.values())
    best = 0.0
    for hit in hits[:passages]:
        held = set(tokenize(f"{hit.passage.title} {hit.passage.text}"))
        best = max(best, sum(w for t, w in weight.items() if t in held) / total)
    return best


def topic_scores(question: str, hits: Sequence[Hit], lexical: LexicalIndex) -> dict[str, float] | None:
    """The scores of TOPIC_SCORES for a retrieval (``hits[0]`` must carry its ``dense`` cosine: see
    ``Pipeline.with_passage_similarity``); None when nothing was retrieved."""
    if not hits:
        return None
    return {"top_dense": hits[0].scores["dense"], "coverage": coverage(question, hits, lexical)}
