"""BM25 over passages (bm25s), with a tokenizer that lets spelling variants of names find each other.

Tokenizer, in order (the same for passages and queries):

1. Unicode NFKD, accents dropped, lowercased ("Quṣayr" -> "qusayr").
2. Apostrophes: a possessive "'s" is dropped, other apostrophes are removed inside words, so
   "Shi'a" == "Shia" and "Assad's" == "Assad".
3. Numbers: a comma followed by exactly three digits is a thousands separator and is removed, so
   "94,000" == "94000". Other punctuation splits ("3.5" -> "3", "5"; "al-Assad" -> "al", "assad").
4. Split on anything that is not a letter or digit; stopwords (Lucene's English list) removed.
5. Snowball English stem.
6. Variant folding: for alphabetic words of 5+ characters also emit "~" + the consonant skeleton of
   the stem (y -> i, vowels after the first letter dropped, doubled letters collapsed):
   "Qusayr"/"Qusair" -> "~qsr", "Hizbollah"/"Hezbollah" -> "~hzblh". An exact spelling matches both the
   stem and the key, so it still outranks a variant, which matches only the key. Unrelated words that
   share a skeleton match weakly too; that is the price of a general method over a list of names.

IDF is bm25s's Lucene variant, log(1 + (N - df + 0.5) / (df + 0.5)), which stays positive even for a term
in every document of a 2-document corpus.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

logger = logging.getLogger(__name__)

TOKENIZER_VERSION = 1  # bump when tokenisation changes: saved indexes must then be rebuilt
VARIANT_MARKER = "~"
VARIANT_MIN_CHARS = 5  # shorter words give skeletons that collide too often ("rat", "riot", "route")
_META_FILE = "qa_lexical.json"

_STOPWORDS = frozenset(STOPWORDS_EN)
_POSSESSIVE = re.compile(r"['’ʼ]s\b")
_APOSTROPHE = re.compile(r"(?<=\w)['’ʼ‘`](?=\w)")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_WORD = re.compile(r"[^\W_]+")  # letters and digits only
_VOWELS = re.compile(r"[aeiou]")
_DOUBLES = re.compile(r"(.)\1+")
_stemmer = Stemmer.Stemmer("english")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def skeleton(word: str) -> str:
    """Consonant skeleton of a lowercase word: y->i, vowels after the first letter dropped, no doubles."""
    word = word.replace("y", "i")
    return _DOUBLES.sub(r"\1", word[0] + _VOWELS.sub("", word[1:]))


def words(text: str) -> list[str]:
    """Steps 1-4: normalised, lowercased words without stopwords (not stemmed)."""
    text = _fold(text)
    text = _POSSESSIVE.sub("", text)
    text = _APOSTROPHE.sub("", text)
    text = _THOUSANDS.sub("", text)
    return [w for w in _WORD.findall(text) if w not in _STOPWORDS]


def tokenize(text: str) -> list[str]:
    """Index/query tokens: Snowball stems plus variant keys for longer alphabetic words."""
    ws = words(text)
    tokens: list[str] = []
    for word, stem in zip(ws, _stemmer.stemWords(ws), strict=True):
        tokens.append(stem)
        if len(word) >= VARIANT_MIN_CHARS and word.isalpha():
            key = skeleton(stem)  # of the stem, so inflections share a key ("militias" ~ "militia")
            if len(key) >= 3:
                tokens.append(VARIANT_MARKER + key)
    return tokens


class LexicalIndex:
    """A BM25 index over a list of texts; search returns (row, score) pairs with score > 0, best first."""

    def __init__(self, bm25: bm25s.BM25 | None, n_docs: int) -> None:
        self._bm25 = bm25  # None for an empty corpus
        self.n_docs = n_docs

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index the texts; row i of search results is texts[i]."""
        corpus_tokens = [tokenize(t) for t in texts]
        if not texts:
            return cls(None, 0)
        if not any(corpus_tokens):
            # bm25s needs a non-empty vocabulary; this token can never come out of tokenize().
            corpus_tokens[0] = ["\x00"]
        bm25 = bm25s.BM25(method="lucene", idf_method="lucene")
        bm25.index(corpus_tokens, show_progress=False)
        return cls(bm25, len(texts))

    def __len__(self) -> int:
        return self.n_docs

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top-k rows for the query; fewer when fewer rows match; [] when the query has no indexed words."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        if self._bm25 is None:
            return []
        ids = self._bm25.get_tokens_ids(tokenize(query))
        if not ids:
            return []
        scores = self._bm25.get_scores_from_ids(ids)
        hits = np.flatnonzero(scores > 0)
        matched = scores[hits]
        if len(hits) > k:  # keep the k best and every tie of the k-th (a full sort of 1M hits takes ~100 ms)
            kth = np.partition(matched, len(matched) - k)[len(matched) - k]
            keep = matched >= kth
            hits, matched = hits[keep], matched[keep]
        best = hits[np.argsort(-matched, kind="stable")][:k]  # ties in row order, as a full stable sort
        return [(int(i), float(scores[i])) for i in best]

    def save(self, directory: str | Path) -> None:
        """Write bm25s's own plain files (JSON + .npy, no pickle) plus our tokenizer version."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(directory, show_progress=False)
        meta = {"tokenizer_version": TOKENIZER_VERSION, "n_docs": self.n_docs}
        (directory / _META_FILE).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = False) -> LexicalIndex:
        """Load an index written by ``save``; raises ValueError if it was tokenised differently."""
        directory = Path(directory)
        meta = json.loads((directory / _META_FILE).read_text(encoding="utf-8"))
        if meta.get("tokenizer_version") != TOKENIZER_VERSION:
            raise ValueError(
                f"The BM25 index in {directory} uses tokenizer version {meta.get('tokenizer_version')}, "
                f"this code uses {TOKENIZER_VERSION}: rebuild the index with `qa build`."
            )
        n_docs = int(meta["n_docs"])
        if n_docs == 0:
            return cls(None, 0)
        bm25 = bm25s.BM25.load(directory, mmap=mmap, show_progress=False)
        if bm25.scores["num_docs"] != n_docs:
            raise ValueError(
                f"The BM25 index in {directory} holds {bm25.scores['num_docs']} rows, expected {n_docs}: "
                "rebuild the index with `qa build`."
            )
        return cls(bm25, n_docs)
