"""Build qa/models/synonyms.tsv.gz: for each word stem, the stems of its close WordNet 3.0 synonyms.

Why: a news question is often worded unlike its answer's sentence ("Who backed the rebels?" vs "a major
supporter of the rebels"), and the answer stage's sentence_overlap feature then sees only half of the
question in the right sentence. qa.answer's synonym_overlap also counts a question term as present when the
sentence holds one of its synonyms from this table.

Which synonyms: for every single-word WordNet lemma, its first SENSES senses per part of speech (WordNet
orders senses by corpus frequency, so rare senses such as "back" = "rear" stay out for the verb), every
single-word lemma of those synsets, and those lemmas' derivationally related forms ("leader" from "lead",
"supporter" from "support"). Words are reduced to the lexical index's Snowball stems (qa.index.lexical), the
form the answer stage compares, so the table maps stem -> stems. Stopword stems are left out. The relation is
made symmetric.

WordNet 3.0 comes from Debian (training/augment.ensure_wordnet). WordNet's licence allows redistribution with
its notice, which the file's header line carries.

Usage: python training/make_synonyms.py [--senses 3] [--out qa/models/synonyms.tsv.gz]
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

from augment import ensure_wordnet  # noqa: E402

from qa.index.lexical import tokenize  # noqa: E402

NOTICE = ("# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. "
          "Derived by training/make_synonyms.py; WordNet licence: https://wordnet.princeton.edu/license-and-commercial-use")


def stem(word: str) -> str | None:
    """The lexical index's stem of a single word, or None for stopwords, numbers and multiword lemmas."""
    if "_" in word or "-" in word or not word.isalpha():
        return None
    tokens = [t for t in tokenize(word) if t.isalpha()]  # drops the variant keys (marked, not alphabetic)
    return tokens[0] if len(tokens) == 1 else None


def build(senses: int) -> dict[str, set[str]]:
    wordnet = ensure_wordnet()
    related: dict[str, set[str]] = defaultdict(set)
    for word in wordnet.all_lemma_names():
        s = stem(word)
        if s is None:
            continue
        for pos in ("n", "v", "a", "r"):
            for synset in wordnet.synsets(word, pos)[:senses]:
                for lemma in synset.lemmas():
                    forms = [lemma, *(lemma.derivationally_related_forms() if lemma.name() == word else ())]
                    for form in forms:
                        t = stem(form.name().lower())
                        if t is not None and t != s:
                            related[s].add(t)
    for s, others in list(related.items()):  # symmetric: "supporter" ~ "back" whichever the question uses
        for t in others:
            related[t].add(s)
    return related


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--senses", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "qa" / "models" / "synonyms.tsv.gz")
    args = p.parse_args()
    related = build(args.senses)
    lines = [NOTICE] + [f"{s}\t{' '.join(sorted(ts))}" for s, ts in sorted(related.items())]
    with gzip.GzipFile(args.out, "wb", mtime=0) as f:  # mtime 0: the same table gives the same bytes
        f.write(("\n".join(lines) + "\n").encode())
    pairs = sum(len(ts) for ts in related.values())
    print(f"{len(related)} stems, {pairs} related pairs, {args.out.stat().st_size / 1e6:.1f} MB -> {args.out}")


if __name__ == "__main__":
    main()
