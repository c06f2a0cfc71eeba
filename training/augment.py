"""Question augmentation for the reader: WordNet synonyms that keep the answer, swapped words that remove it.

Why: a SQuAD-trained reader learns to find the paragraph's copy of the question's words. On news that breaks
both ways: "Who backed the rebels?" gets "Lebanon's Hezbollah" from "...with large-scale backing from Lebanon's
Hezbollah" (the predicate matches, its object does not), while "Saudi Arabia, Qatar and Turkey ... major
supporter of the rebels" (the meaning matches, the word does not) ranks lower with every SQuAD segment
(issue 18). Two contrasting augmentations, so that neither "a question word is missing" nor "a question word
is present" decides alone:

- **synonym positives**: a question word that also occurs in the paragraph is replaced by a common WordNet
  synonym of its most frequent sense for the part of speech its inflection shows ("backed" -> "supported",
  "leader" -> "drawing card" is refused: multi-word, rare); the answer is unchanged;
- **swapped negatives**: a content word of the question that occurs in the paragraph is replaced by a content
  word of another article's question, and the window holding the answer is labelled no-answer: the question
  now asks about something the paragraph does not say.

WordNet 3.0 comes from Debian (`apt-get install wordnet-base wordnet-sense-index`); nltk reads it only from an
nltk data path laid out as corpora/wordnet/ with a lexnames file, which ``ensure_wordnet`` makes once
(``LEXNAMES``).
"""

from __future__ import annotations

import random
import re
import warnings
from functools import cache
from pathlib import Path
from typing import Any

DEBIAN_WORDNET = Path("/usr/share/wordnet")
# The 45 lexicographer files, numbered as in lexnames(5WN) (Debian ships the list only in that man page, which
# slim images drop): nltk needs them as corpora/wordnet/lexnames.
LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
NLTK_DATA = Path.home() / "nltk_data"
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
_TOKEN = re.compile(r"[A-Za-z]+|[^A-Za-z]+")
_STOP = frozenset(
    "a an and are as at be been by can could did do does for from had has have how if in into is it its many "
    "much name of on or other that the their them then there these they this those to was were what when where "
    "which who whom whose why will with would year years called type kind".split()
)


@cache
def ensure_wordnet(data_dir: Path = NLTK_DATA) -> Any:
    """nltk's WordNet reader over Debian's WordNet 3.0 files, laid out under ``data_dir`` the first time
    (once per process: the swaps ask for it per question)."""
    import nltk

    target = data_dir / "corpora" / "wordnet"
    try:
        nltk.data.find("corpora/wordnet")
        laid_out = True  # on some nltk data path already (or laid out by an earlier call)
    except LookupError:
        laid_out = False
    if not laid_out and not (target / "lexnames").exists():
        if not (DEBIAN_WORDNET / "data.noun").exists():
            raise SystemExit("WordNet 3.0 is missing: apt-get install -y wordnet-base wordnet-sense-index")
        target.mkdir(parents=True, exist_ok=True)
        for src in DEBIAN_WORDNET.iterdir():
            if src.is_file() and not (target / src.name).exists():
                (target / src.name).symlink_to(src)
        (target / "lexnames").write_text("".join(f"{n:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}\n"
                                                 for n, name in enumerate(LEXNAMES)))
    if str(data_dir) not in nltk.data.path:
        nltk.data.path.insert(0, str(data_dir))
    from nltk.corpus import wordnet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": not used
        wordnet.ensure_loaded()
    return wordnet


def _inflect(base: str, word: str, lemma: str, pos: str) -> str | None:
    """``lemma`` inflected as ``word`` is inflected from ``base``; None for an irregular form ("built")."""
    if word == base:
        return lemma
    if word.endswith(("ed", "ing")) and re.search(r"[^aeiou][aeiou][^aeiouwxy]$", lemma):
        return None  # "hit" -> "hitting": consonant doubling is not guessed
    consonant_y = lemma.endswith("y") and len(lemma) > 2 and lemma[-2] not in "aeiou"
    if pos == "v" and word.endswith("ed"):
        return lemma[:-1] + "ied" if consonant_y else lemma + ("d" if lemma.endswith("e") else "ed")
    if pos == "v" and word.endswith("ing"):
        return (lemma[:-1] if lemma.endswith("e") and len(lemma) > 2 else lemma) + "ing"
    if word.endswith("s"):
        if consonant_y:
            return lemma[:-1] + "ies"
        return lemma + ("es" if lemma.endswith(("s", "x", "ch", "sh")) else "s")
    return None


@cache
def synonym(word: str) -> str | None:
    """A common synonym of ``word`` (lower case) in its most frequent sense, inflected alike; None if none.

    The part of speech is the one whose base form the inflection points to ("backed" -> verb "back"), else the
    first of noun, verb, adjective with a sense used at least twice; in it, the sense with the most tagged uses
    of the base (WordNet's SemCor counts), then its most used other single-word lemma, if used at least twice
    (no "twelvemonth" for "year").
    """
    wordnet = ensure_wordnet()
    best: tuple[int, str, str, Any] | None = None
    inflected = [pos for pos in ("v", "n") if (wordnet.morphy(word, pos) or word) != word]
    for pos in inflected or ("n", "v", "a"):  # the first part of speech with a common sense of the word
        base = wordnet.morphy(word, pos)
        for synset in wordnet.synsets(base, pos) if base else ():
            count = sum(lemma.count() for lemma in synset.lemmas() if lemma.name().lower() == base)
            if best is None or count > best[0]:
                best = (count, pos, base, synset)
        if best is not None and best[0] >= 2:
            break
    if best is None or best[0] < 2:
        return None
    _, pos, base, synset = best
    options = [(lemma.count(), lemma.name().lower()) for lemma in synset.lemmas()
               if lemma.name().isalpha() and len(lemma.name()) >= 3 and lemma.name().lower() != base
               and lemma.count() >= 2 and not lemma.name().lower().startswith(base[:4])]
    if not options:
        return None
    return _inflect(base, word, max(options)[1], pos)


def _content_positions(tokens: list[str], paragraph_words: set[str]) -> list[int]:
    return [i for i, t in enumerate(tokens) if t.isalpha() and len(t) >= 3 and t.lower() not in _STOP
            and t.lower() in paragraph_words]


def paragraph_words(paragraph: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-z]+", paragraph)}


def with_synonym(question: str, words: set[str], rng: random.Random) -> str | None:
    """``question`` with one word that the paragraph also holds replaced by its synonym; None if none has one."""
    tokens = _TOKEN.findall(question)
    spots = [i for i in _content_positions(tokens, words) if not tokens[i][0].isupper()]
    rng.shuffle(spots)
    for i in spots:
        other = synonym(tokens[i].lower())
        if other and other not in words:
            tokens[i] = other
            return "".join(tokens)
    return None


def with_swapped_word(question: str, words: set[str], donors: list[str], rng: random.Random) -> str | None:
    """``question`` with one of its lower-case words found in the paragraph replaced by a noun the paragraph
    lacks, taken from ``donors`` (other articles' questions): an unanswerable question on the same paragraph.

    Lower case only: a swapped name often leaves the question answerable in spirit ("... at Notre Chopin"),
    a swapped predicate or argument does not ("Who backed the rebels?" -> "Who backed the orchestras?").
    """
    wordnet = ensure_wordnet()
    tokens = _TOKEN.findall(question)
    spots = [i for i in _content_positions(tokens, words) if len(tokens[i]) >= 4 and tokens[i].islower()]
    if not spots or not donors:
        return None
    i = rng.choice(spots)
    donor = [t for t in _TOKEN.findall(rng.choice(donors)) if t.isalpha() and t.islower() and len(t) >= 4
             and t not in _STOP and t not in words and wordnet.synsets(t, "n")]
    if not donor:
        return None
    tokens[i] = rng.choice(donor)
    return "".join(tokens)
