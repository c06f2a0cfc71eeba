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

bm25s builds and saves the index; a loaded index is searched by :class:`Postings`, which reads bm25s's saved
arrays and scores exactly as bm25s does, so answering a question never imports bm25s (whose import pulls in
scipy: about half a second of a cold `qa ask`).
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import Stemmer

logger = logging.getLogger(__name__)

TOKENIZER_VERSION = 1  # bump when tokenisation changes: saved indexes must then be rebuilt
VARIANT_MARKER = "~"
VARIANT_MIN_CHARS = 5  # shorter words give skeletons that collide too often ("rat", "riot", "route")
_META_FILE = "qa_lexical.json"
# bm25s's file names (BM25.save / BM25.load defaults).
_DATA, _INDICES, _INDPTR = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy"
_VOCAB, _PARAMS, _NONOCCURRENCE = "vocab.index.json", "params.index.json", "nonoccurrence_array.index.npy"

# bm25s.stopwords.STOPWORDS_EN (Lucene's English list), copied: importing bm25s pulls in scipy (tests check
# that the two lists agree).
STOPWORDS_EN = (
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not",
    "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was",
    "will", "with",
)
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


@dataclass(frozen=True)
class Postings:
    """bm25s's eager index, read from its saved files: per token, the rows that hold it and their BM25 term
    scores (a CSC matrix: ``data[indptr[t]:indptr[t + 1]]`` at rows ``indices[...]``), computed at build time.

    A query's score per row is the sum of its tokens' term scores, added in the same order and type as
    ``bm25s.BM25.get_scores_from_ids``, so rankings and scores are bm25s's to the last bit.
    """

    vocab: dict[str, int]
    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    n_docs: int
    dtype: np.dtype
    nonoccurrence: np.ndarray | None = None  # only BM25L/BM25+ have one (not Lucene's method)

    @classmethod
    def of(cls, bm25: Any) -> Postings:
        """The postings of a ``bm25s.BM25`` that was just indexed."""
        scores = bm25.scores
        return cls(dict(bm25.vocab_dict), scores["data"], scores["indices"], scores["indptr"],
                   int(scores["num_docs"]), np.dtype(bm25.dtype), getattr(bm25, "nonoccurrence_array", None))

    @classmethod
    def load(cls, directory: Path, mmap: bool) -> Postings:
        """Read the files ``bm25s.BM25.save`` wrote (arrays memory-mapped when ``mmap``)."""
        params = json.loads((directory / _PARAMS).read_text(encoding="utf-8"))
        vocab = json.loads((directory / _VOCAB).read_text(encoding="utf-8"))
        mode = "r" if mmap else None

        def array(name: str) -> np.ndarray:
            return np.load(directory / name, mmap_mode=mode, allow_pickle=False)

        nonoccurrence = array(_NONOCCURRENCE) if (directory / _NONOCCURRENCE).is_file() else None
        return cls(vocab, array(_DATA), array(_INDICES), array(_INDPTR), int(params["num_docs"]),
                   np.dtype(params.get("dtype", "float32")), nonoccurrence)

    def scores(self, tokens: list[str]) -> np.ndarray | None:
        """BM25 score of every row for the query tokens; None when no token is in the vocabulary."""
        ids = np.asarray([self.vocab[t] for t in tokens if t in self.vocab], dtype=np.int32)
        if not len(ids):
            return None
        starts, ends = self.indptr[ids], self.indptr[ids + 1]
        scores = np.zeros(self.n_docs, dtype=self.dtype)
        for start, end in zip(starts, ends, strict=True):
            np.add.at(scores, self.indices[start:end], self.data[start:end])
        if self.nonoccurrence is not None:
            scores += self.nonoccurrence[ids].sum()
        return scores


class LexicalIndex:
    """A BM25 index over a list of texts; search returns (row, score) pairs with score > 0, best first."""

    def __init__(self, postings: Postings | None, n_docs: int, bm25: Any = None) -> None:
        self.postings = postings  # None for an empty corpus
        self.n_docs = n_docs
        self._bm25 = bm25  # the bm25s.BM25 of a build, which writes the files; None once loaded

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        """Index the texts; row i of search results is texts[i]."""
        import bm25s  # build time only: see the module docstring

        corpus_tokens = [tokenize(t) for t in texts]
        if not texts:
            return cls(None, 0)
        if not any(corpus_tokens):
            # bm25s needs a non-empty vocabulary; this token can never come out of tokenize().
            corpus_tokens[0] = ["\x00"]
        bm25 = bm25s.BM25(method="lucene", idf_method="lucene")
        bm25.index(corpus_tokens, show_progress=False)
        return cls(Postings.of(bm25), len(texts), bm25)

    def __len__(self) -> int:
        return self.n_docs

    def idf(self, token: str) -> float:
        """Lucene's inverse document frequency of a token of ``tokenize`` (as BM25 weighs it here): high for a
        token few rows hold, highest for one none holds."""
        df = 0
        if self.postings is not None and (v := self.postings.vocab.get(token)) is not None:
            df = int(self.postings.indptr[v + 1] - self.postings.indptr[v])
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top-k rows for the query; fewer when fewer rows match; [] when the query has no indexed words."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}.")
        if self.postings is None:
            return []
        scores = self.postings.scores(tokenize(query))
        if scores is None:
            return []
        hits = np.flatnonzero(scores > 0)
        matched = scores[hits]
        if len(hits) > k:  # keep the k best and every tie of the k-th (a full sort of 1M hits takes ~100 ms)
            kth = np.partition(matched, len(matched) - k)[len(matched) - k]
            keep = matched >= kth
            hits, matched = hits[keep], matched[keep]
        best = hits[np.argsort(-matched, kind="stable")][:k]  # ties in row order, as a full stable sort
        return [(int(i), float(scores[i])) for i in best]

    def save(self, directory: str | Path) -> None:
        """Write bm25s's own plain files (JSON + .npy, no pickle) plus our tokenizer version.

        Only a built index is saved (a loaded one is already on disk): ValueError otherwise.
        """
        if self.postings is not None and self._bm25 is None:
            raise ValueError("This BM25 index was loaded from disk; save the one LexicalIndex.build returns.")
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
        postings = Postings.load(directory, mmap)
        if postings.n_docs != n_docs:
            raise ValueError(
                f"The BM25 index in {directory} holds {postings.n_docs} rows, expected {n_docs}: "
                "rebuild the index with `qa build`."
            )
        if len(postings.data) != len(postings.indices) or int(postings.indptr[-1]) != len(postings.data):
            raise ValueError(f"The BM25 index in {directory} has inconsistent arrays: rebuild it with `qa build`.")
        return cls(postings, n_docs)
