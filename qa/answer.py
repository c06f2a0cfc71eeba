"""The answer stage: short spans from the reader, calibrated confidence, grouping, abstention, conflicts.

Confidence is a logistic model over a few features of each candidate span (the reader's span-vs-no-answer
margin, its span probability, the passage's dense similarity and fused rank, the dense similarity of the
sentence holding the span to the question, how many of the question's words that sentence repeats or replaces
by a close synonym, and whether the span has the shape the question asks for: qa.answer_types). Its weights
are fitted on SQuAD dev questions in the open setting plus their unanswerable variants (training/calibrate.py)
and shipped beside the reader (qa.calibration), so that "0.8" means right about 80% of the time; the question's
candidate spread (how closely the other candidates follow the best one) lowers it. Below the calibration's
abstention threshold (which Config.abstain_threshold may override) we abstain, unless the question asks for a
quantity and disagreeing sources together pass it (answer_from_hits: then every side is shown).
"""

from __future__ import annotations

import functools
import gzip
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from qa.answer_types import (
    QUANTITY_KINDS,
    TYPE_FEATURES,
    list_around,
    list_items,
    question_shape,
    question_unit_days,
    type_features,
)
from qa.calibration import Calibration, calibration_for, sides_confidence, sigmoid
from qa.config import Config
from qa.conflicts import comparable, disagree
from qa.embed import Encoder
from qa.errors import ModelLoadError
from qa.index.lexical import skeleton, tokenize, words
from qa.metrics import normalize_answer
from qa.passages import passage_sentences
from qa.reader import Reader, Span
from qa.types import Answer, Hit, Source

FEATURES = ("margin", "log_prob", "dense", "log_rank", "sentence_dense", "log_support", "sentence_overlap",
            "synonym_overlap", *TYPE_FEATURES)
SYNONYMS_PATH = Path(__file__).parent / "models" / "synonyms.tsv.gz"  # made by training/make_synonyms.py

# Question words that a sentence answering the question need not repeat (the rest are Lucene's stopwords,
# which qa.index.lexical.words drops already).
_QUESTION_ONLY = frozenset("who whom whose what which when where why how do does did has have had".split())


def question_terms(question: str) -> frozenset[str]:
    """The question's content terms as the lexical index sees them (stems and spelling-variant keys)."""
    return frozenset(tokenize(" ".join(w for w in words(question) if w not in _QUESTION_ONLY)))


def sentence_overlap(terms: frozenset[str], sentence: str) -> float:
    """Share of the question's terms found in the sentence holding a span: low when the question is worded
    unlike the text ("backed" vs "supporter of"), where the reader's margin is lower for the same right answer."""
    return len(terms & set(tokenize(sentence))) / len(terms) if terms else 1.0


@functools.cache
def synonyms() -> dict[str, str]:
    """Stem -> its close WordNet synonyms' stems, space-separated (training/make_synonyms.py); read once, on
    first use, and split only when looked up (splitting all 35,000 lines up front costs a cold `qa ask` 0.3 s)."""
    try:
        text = gzip.decompress(SYNONYMS_PATH.read_bytes()).decode()
    except OSError as e:
        raise ModelLoadError(f"cannot read the synonym table {SYNONYMS_PATH}: {e}. Reinstall qa, or rebuild the "
                             "table with: python training/make_synonyms.py") from e
    return dict(line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#"))


def question_synonyms(question: str) -> tuple[frozenset[str], ...]:
    """Per content word of the question, the sentence tokens that count as it: its stem, its spelling-variant
    key, and the stems of its close WordNet synonyms and derived forms ("backed" ~ "supporters")."""
    table = synonyms()
    forms_of = []
    for word in words(question):
        if word not in _QUESTION_ONLY:
            forms = tokenize(word)  # its stem, and its key when it has one
            forms_of.append(frozenset(forms).union(table.get(forms[0], "").split() if forms else ()))
    return tuple(forms_of)


def synonym_overlap(word_forms: tuple[frozenset[str], ...], sentence: str) -> float:
    """Share of the question's content words (``question_synonyms``) that the sentence repeats or replaces by a
    close synonym: sentence_overlap for questions worded unlike the text, where the right sentence looks
    half-related."""
    if not word_forms:
        return 1.0
    present = set(tokenize(sentence))
    return sum(not forms.isdisjoint(present) for forms in word_forms) / len(word_forms)


_SPACED_DASH = re.compile(r"\s[-\u2013\u2014]\s")
_RANGE_END, _RANGE_START = re.compile(r"\d\S{0,3}$"), re.compile(r"[£$€]?\d")  # "£25,000 - £28,000", "5bn - 6bn"


def trim_appositive(span: Span) -> Span:
    """Cut a span at a spaced dash: "Saudi Arabia, Qatar and Turkey - Sunni powers" answers with the first part.

    News text uses spaced dashes for asides; SQuAD's gold answers almost never hold one (3 of 5,397). A range
    between numbers ("1990 - 2000", "£25,000 - £28,000") is kept whole.
    """
    m = _SPACED_DASH.search(span.text)
    if m is None:
        return span
    head, tail = span.text[: m.start()].rstrip(), span.text[m.end():]
    if not head or (_RANGE_END.search(head) and _RANGE_START.match(tail)):
        return span
    return replace(span, end=span.start + len(head), text=head)


def complete_list(text: str, span: Span, sentence: tuple[int, int]) -> Span:
    """A span that holds several items of a list of names but stops before its end ("Saudi Arabia, Qatar" of
    "Saudi Arabia, Qatar and Turkey") runs on to the list's end: a list cut before its last item is a boundary
    error of the reader, right neither as a list nor as an item.

    Only the end moves. A list's start is ambiguous with a clause before it ("... the American Revolutionary
    War, Washington and Thomas Gage ...": completing leftwards cost a right SQuAD answer), its end ("and X") is
    not. A single item is left alone (whether to offer its whole list is ``Config.list_answers``' question).
    """
    if len(list_items(span.text)) < 2:
        return span
    whole = list_around(text, span.start, span.end, sentence)
    if whole is None or whole[1] <= span.end:
        return span
    return replace(span, end=whole[1], text=text[span.start:whole[1]])


@dataclass(frozen=True)
class Candidate:
    hit: Hit
    span: Span
    features: dict[str, float]
    from_list: bool = False  # the whole list around a span the reader proposed (qa.answer_types.list_around)


def candidates(question: str, hits: list[Hit], reader: Reader, encoder: Encoder, config: Config,
               *, complete: bool = True, first_rank: int = 1) -> list[Candidate]:
    """Every span the reader proposes in the hits, with the features the confidence model uses.

    ``complete=False`` (the answer stage) embeds only the sentences that can change what ``answer_from_hits``
    returns (``_sentences_needed``); the other candidates get ``sentence_dense = -1`` (its lower bound). On
    the 83 questions of the three seeds sets that embeds 143 sentences instead of 749 (with the candidate spread,
    which lowers most confidences), with the same answers, sources and suggestions (tests/test_question_path.py
    compares both). Calibration (training/calibrate.py) needs every
    feature: the default. ``first_rank``: the retrieval rank of the first hit among those read (the
    ``log_rank`` feature), above 1 for passages read after the others (``rival_hits``).
    """
    readings = reader.read(question, [h.passage.text for h in hits], top_n=config.reader_spans_per_passage,
                           max_answer_tokens=config.max_answer_tokens)
    shape = question_shape(question)
    terms = question_terms(question)
    word_forms = question_synonyms(question)
    found: list[tuple[int, Hit, Span, float, tuple[int, int]]] = []
    grown: set[int] = set()  # indexes into found of whole lists
    for rank, (hit, reading) in enumerate(zip(hits, readings, strict=True), start=first_rank):
        text = hit.passage.text
        sentences = passage_sentences(text)
        seen: set[tuple[int, int]] = set()
        for span in reading.spans:
            span = trim_appositive(span)
            sentence = next(((a, b) for a, b in sentences if a <= span.start < b), (span.start, span.end))
            span = complete_list(text, span, sentence)
            spans = [span]
            wants_list = shape.wants_list and config.list_answers
            whole = list_around(text, span.start, span.end, sentence) if wants_list else None
            if whole is not None:  # the whole list too, with the reader's scores of the item it holds
                spans.append(replace(span, start=whole[0], end=whole[1], text=text[whole[0]:whole[1]]))
            for n, s in enumerate(spans):
                if (s.start, s.end) not in seen:
                    seen.add((s.start, s.end))
                    if n:
                        grown.add(len(found))
                    found.append((rank, hit, s, reading.null_score, sentence))
    if not found:
        return []
    # Answer aggregation: an answer the reader proposes in several passages is more likely right.
    passages_of: dict[str, set[str]] = {}
    for _, hit, span, _, _ in found:
        passages_of.setdefault(answer_key(span.text), set()).add(hit.passage.passage_id)
    sentence_texts = {hit.passage.text[a:b] for _, hit, _, _, (a, b) in found}
    overlap = {text: sentence_overlap(terms, text) for text in sentence_texts}
    synonym = {text: synonym_overlap(word_forms, text) for text in sentence_texts}
    features = [
        {
            "margin": span.score - null_score,
            "log_prob": math.log(max(span.prob, 1e-9)),
            "dense": hit.scores.get("dense", 0.0),
            "log_rank": math.log(rank),
            "sentence_dense": -1.0,  # filled in below
            "log_support": math.log(len(passages_of[answer_key(span.text)])),
            "sentence_overlap": overlap[hit.passage.text[a:b]],
            "synonym_overlap": synonym[hit.passage.text[a:b]],
            **type_features(shape, span.text, hit.passage.text[a:b]),
        }
        for rank, hit, span, null_score, (a, b) in found
    ]
    needed = range(len(found)) if complete else _sentences_needed(found, features, config)
    texts = sorted({found[i][1].passage.text[a:b] for i in needed for a, b in [found[i][4]]})
    similarity: dict[str, float] = {}
    if texts:
        vectors = encoder.encode_queries([question, *texts])
        # Row by row (not one matrix product, whose rounding depends on the number of rows): a sentence's
        # similarity depends only on the two vectors, whichever other sentences are embedded with it.
        similarity = dict(zip(texts, (vectors[1:] * vectors[0]).sum(axis=1).tolist(), strict=True))
    for i in needed:
        hit, (a, b) = found[i][1], found[i][4]
        features[i]["sentence_dense"] = similarity[hit.passage.text[a:b]]
    return [Candidate(hit, span, feats, i in grown)
            for i, ((_, hit, span, _, _), feats) in enumerate(zip(found, features, strict=True))]


def _sentences_needed(found: list[tuple[int, Hit, Span, float, tuple[int, int]]], features: list[dict[str, float]],
                      config: Config) -> list[int]:
    """The candidates whose sentence similarity can change the answer stage's result.

    Only groups whose best candidate reaches ``suggestion_min_confidence`` are ever shown, and a candidate's
    confidence cannot exceed its value with the largest possible sentence term (cosine 1) and the question's
    candidate spread (or its passage's, when smaller, for a span that can be a disagreeing side). The others
    (``low``) matter only through the shown groups: as further sources of an answer with the same key, or by
    hiding such a source (an overlapping span taken first). So the needed candidates are those that may reach
    the threshold, every candidate sharing a key with one of them, and, transitively, every candidate whose
    span overlaps a needed one in the same article; the rest never meet them, and whatever their order among
    themselves, each stays below the threshold.
    """
    calibration = answer_calibration(config)
    weights = calibration.weights_by_name()
    bound = abs(weights.get("sentence_dense", 0.0)) * (1.0 + 1e-3)  # |cosine| <= 1, with room for rounding
    keys = [answer_key(span.text) for _, _, span, _, _ in found]
    places = [(hit.passage.doc_id, hit.passage.start + span.start, hit.passage.start + span.end)
              for _, hit, span, _, _ in found]
    may_show = set()
    # The spread has no sentence_dense in it. A candidate is shown with the question's spread or, as a disagreeing
    # side (a span stating a quantity), with its own passage's (answer_from_hits): the larger term bounds both.
    passage_ids = [hit.passage.passage_id for _, hit, _, _, _ in found]
    question_spread = calibration.spread(features)
    passage_spread = _spread_by_passage(calibration, list(zip(passage_ids, features, strict=True)))
    for i, ((_, _, span, _, _), feats, pid) in enumerate(zip(found, features, passage_ids, strict=True)):
        spreads = (question_spread, passage_spread[pid]) if comparable(span.text) else (question_spread,)
        spread_term = max(calibration.spread_weight * spread for spread in spreads)
        z = calibration.bias + spread_term + sum(w * feats[n] for n, w in weights.items() if n != "sentence_dense")
        if sigmoid(z + bound) >= config.suggestion_min_confidence:
            may_show.add(i)
    shown_keys = {keys[i] for i in may_show}
    needed = may_show | {i for i, key in enumerate(keys) if key in shown_keys}
    todo = list(needed)
    while todo:
        doc, start, end = places[todo.pop()]
        for j, (d, s, e) in enumerate(places):
            if j not in needed and d == doc and s < end and start < e and (s, e) != (start, end):
                needed.add(j)
                todo.append(j)
    return sorted(needed)


def answer_calibration(config: Config) -> Calibration:
    """The shipped calibration with ``config``'s overrides, checked to weigh only features computed here.

    It may weigh a subset: every answer-type feature is computed for every candidate, and the shipped fit weighs
    only number_match / number_mismatch (bench/results/answer_ablation_types.md says why).
    """
    calibration = calibration_for(config)
    unknown = sorted(set(calibration.features) - set(FEATURES))
    if unknown:
        raise ModelLoadError(
            f"The answer calibration weighs features {unknown} that the answer stage does not compute ({FEATURES}): "
            "refit it with `python training/calibrate.py --write`."
        )
    return calibration


def _fold_spelling(token: str) -> str:
    """Spelling-variant key: "hizbollah"/"hezbollah" and "qusair"/"qusayr" meet; plurals fold to singular."""
    if token.isdigit():
        return token
    if len(token) >= 4 and token.endswith("s") and not token.endswith("ss"):
        token = token[:-1]
    return skeleton(token) if len(token) >= 3 else token


def answer_key(text: str) -> str:
    """Grouping key for equal answers ("18-day" ~ "18 days", "Hezbollah" = "Hizbollah")."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.replace("-", " "))
    return " ".join(_fold_spelling(t) for t in normalize_answer(text).split())


@dataclass(eq=False)  # groups compare by identity
class _Group:
    text: str
    confidence: float
    features: dict[str, float]
    sources: list[Source] = field(default_factory=list)


def _source(hit: Hit, span: Span) -> Source:
    p = hit.passage
    return Source(p.doc_id, p.title, p.passage_id, p.text, span.start, span.end,
                  p.start + span.start, p.start + span.end, p.page_at(p.start + span.start))


@dataclass(frozen=True)
class AnswerSet:
    answers: list[Answer]  # best first; empty when abstained
    abstained: bool
    conflict: bool
    suggestions: list[Answer]  # when abstained: the best candidates anyway, below the threshold


def _answer(g: _Group, partners: tuple[int, ...] = (), confidence: float | None = None) -> Answer:
    """An answer of group ``g``, with ``confidence`` in place of the group's when given (a conflict's rival side,
    scored as the answer of its own passage)."""
    confidence = g.confidence if confidence is None else confidence
    return Answer(g.text, round(confidence, 4), tuple(g.sources), {**g.features, "confidence": confidence},
                  partners)


def answer_from_hits(
    question: str, hits: list[Hit], reader: Reader, encoder: Encoder, config: Config, k: int,
    rival_hits: list[Hit] = (),
) -> AnswerSet:
    """Read the hits, score candidate spans, group equal answers, abstain or flag conflicts.

    ``rival_hits``: further passages read only when the best answer is a quantity, to find a source stating a
    different one (Config.rival_passages); they never change the best answer or its confidence, only (through
    the sides rule below) whether it is shown.

    A quantity question whose sources disagree is answered with every side when the sides together pass the
    abstention threshold (qa.calibration.sides_confidence), even if the best side alone does not: the
    disagreement is what is shown, and with the candidate spread in the confidence a best answer with a rival is
    by construction less sure than one alone.
    """
    if not hits:
        return AnswerSet([], True, False, [])
    calibration = answer_calibration(config)
    found = candidates(question, hits, reader, encoder, config, complete=False)
    spread = calibration.spread([c.features for c in found])
    ranked = _grouped(calibration, found, spread)
    if not ranked:
        return AnswerSet([], True, False, [])
    best = ranked[0]
    shape = question_shape(question)
    quantity = comparable(best.text)
    unsure = best.confidence < calibration.abstain_threshold
    if unsure and not (quantity and shape.kind in QUANTITY_KINDS
                       and best.confidence >= config.suggestion_min_confidence):
        return _abstention(ranked, k, config)

    # A disagreeing answer counts when its own passage states it: the reader prefers the span to "no answer"
    # there (margin > 0), and it is shown at all (suggestion_min_confidence). Its confidence is low by
    # construction (it is not the best answer), so the abstention threshold would hide every conflict.
    pool = ranked[1:]
    extra: list[Candidate] = []
    if rival_hits and quantity:
        known = {answer_key(g.text) for g in ranked}
        extra = candidates(question, list(rival_hits), reader, encoder, config, complete=False,
                           first_rank=len(hits) + 1)
        # Rivals are scored among the question's own candidates (its spread), not among themselves.
        pool += [g for g in _grouped(calibration, extra, spread) if answer_key(g.text) not in known]
    unit_days = question_unit_days(shape)  # "how many days": "18" is 18 days
    # A rival is judged, and shown, as the answer of its own passage (the spread of that passage's candidates
    # alone): among all the question's candidates it is by construction not the best, and their spread would
    # hide it.
    alone = _spread_by_passage(calibration, [(c.hit.passage.passage_id, c.features) for c in found + extra])
    own = {g: calibration.confidence(g.features, alone[g.sources[0].passage_id]) for g in pool}  # groups: by identity
    rivals = [
        g for g in pool
        if g.features["margin"] > 0 and disagree(best, g, unit_days) and own[g] >= config.suggestion_min_confidence
    ]
    if unsure and sides_confidence([best.confidence, *(own[g] for g in rivals)]) < calibration.abstain_threshold:
        return _abstention(ranked, k, config)
    # The disagreeing sides right after the best answer, then the other answers shown.
    others = [g for g in ranked[1:k] if g.confidence >= config.suggestion_min_confidence and g not in rivals]
    chosen = [best, *rivals, *others]
    rival_indexes = tuple(n for n, g in enumerate(chosen) if g in rivals)
    answers = [
        _answer(g, rival_indexes) if g is best else _answer(g, (0,), own[g]) if g in rivals else _answer(g)
        for g in chosen
    ]
    return AnswerSet(answers, False, bool(rivals), [])


def _abstention(ranked: list[_Group], k: int, config: Config) -> AnswerSet:
    """No answer; the best candidates that reach ``suggestion_min_confidence`` as suggestions."""
    shown = [_answer(g) for g in ranked[:k] if g.confidence >= config.suggestion_min_confidence]
    return AnswerSet([], True, False, shown)


def _spread_by_passage(calibration: Calibration, found: list[tuple[str, dict[str, float]]]) -> dict[str, float]:
    """Calibration.spread of each read passage's candidates alone, by passage id (``found``: passage id and
    features of each candidate)."""
    by_passage: dict[str, list[dict[str, float]]] = {}
    for passage_id, features in found:
        by_passage.setdefault(passage_id, []).append(features)
    return {pid: calibration.spread(feats) for pid, feats in by_passage.items()}


def _grouped(calibration: Calibration, found: list[Candidate], spread: float) -> list[_Group]:
    """Candidates grouped by answer (one group per normalised text, with every article stating it), best
    confidence first; a sub- or super-span of a better candidate at the same place is dropped. ``spread``: the
    question's (Calibration.spread)."""
    scored = sorted(((calibration.confidence(c.features, spread), c) for c in found), key=lambda pair: -pair[0])
    groups: dict[str, _Group] = {}
    taken: list[tuple[str, int, int]] = []  # (doc_id, start, end) already used by a better span
    for conf, cand in scored:
        hit, span, feats = cand.hit, cand.span, cand.features
        src = _source(hit, span)
        overlaps = [
            (d, s, e) for d, s, e in taken if d == src.doc_id and s < src.doc_end and src.doc_start < e
        ]
        if any((s, e) != (src.doc_start, src.doc_end) for _, s, e in overlaps):
            continue  # a sub- or super-span of a better answer at the same place in the same article
        taken.append((src.doc_id, src.doc_start, src.doc_end))
        key = answer_key(span.text)
        if not key:
            continue
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(span.text, conf, feats, [src])
        elif all((s.doc_id, s.doc_start) != (src.doc_id, src.doc_start) for s in group.sources):
            group.sources.append(src)
    return sorted(groups.values(), key=lambda g: -g.confidence)
