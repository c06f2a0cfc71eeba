"""Fit the answer-confidence model and the abstention threshold on SQuAD dev, open setting.

Each sampled question is asked three times against an index of all 2,067 SQuAD dev paragraphs: as is (the
open setting); with its own article's passages removed (the unanswerable variant of ../shared/eval/README.md);
and with only the passages that do not contain a gold answer (on-topic text that does not answer, like a
question about the seeds' war that the articles never address). Every candidate span the reader proposes is
a training row: features from qa.answer.FEATURES, label 1 when its SQuAD token-F1 against a gold answer is
>= 0.5 (never in the unanswerable settings). A logistic regression (numpy, Newton steps, small L2) is fitted
on half of the questions to rank candidates; then, because the answer shown is the best of many candidates
(a selection that makes a per-candidate fit under-confident for it), a one-feature Platt scaling of the top
candidate's score is fitted on the same half and folded into the weights. The other half gives the
reliability table of the *top* answer and picks the threshold (MAX_ANSWERED). Writes a JSON report and, with
--write, the calibration the answer stage reads: calibration.json beside the reader (qa.calibration), with the
weights, the threshold, the reader's sha256 and where the fit came from.

The candidates are the pipeline's own: ``Pipeline.search`` in a mode of qa.search.REGISTRY, then
``Pipeline.passages_to_read`` and ``Pipeline.candidates``, the steps ``Pipeline.ask`` runs before calibration.

It also fits the on-topic rule (retrieval only; see "the on-topic rule" below), alone with --on-topic-only.

Usage: python training/calibrate.py [--index bench/.cache/squad] [--questions 1200] [--reader DIR]
       [--rows-cache FILE] [--out training/calibration.json] [--write] [--on-topic-only]
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from qa import files
from qa.calibration import CALIBRATION_FILE, Calibration, OnTopicRule, load_calibration, reader_sha256
from qa.config import DEFAULT_CONFIG
from qa.index.build import build_index
from qa.metrics import best_f1, normalize_answer
from qa.pipeline import Pipeline
from qa.reader import READER_DIR, load_reader
from qa.search import DEFAULT_MODE, MODES
from qa.topic import TOPIC_SCORES
from qa.types import Hit

# The features the shipped fit weighs, read from the shipped calibration so that the default refit reproduces it
# (to change them: --features ... --write). They leave out the answer-type features, which fitted on SQuAD bought
# nothing there and cost a must-abstain seeds question (bench/results/answer_ablation.md), and sentence_overlap,
# which synonym_overlap replaced on 2026-12-02 (bench/results/answer_ablation_synonyms.md; fitting both gives them
# opposite weights, collinear, for no gain).
SHIPPED_FEATURES = load_calibration().features
VARIANTS = ("open", "other_articles", "same_article")


def collect(pipeline: Pipeline, questions: list[dict], variant: str, mode: str = DEFAULT_MODE) -> list[dict]:
    """Candidate rows of each question asked in one setting.

    open: the whole corpus (label = the span matches a gold answer). other_articles: the README's unanswerable
    variant, the question's article removed. same_article: a harder unanswerable variant, only the passages
    that do not contain a gold answer, so the reader sees on-topic text that does not answer (as a question
    about the seeds' topic that the articles do not answer).
    """
    rows = []
    for qi, q in enumerate(tqdm(questions, desc=f"Candidates ({variant})", unit="question")):
        hits = pipeline.search(q["question"], k=pipeline.search_depth if variant == "open" else 60, mode=mode)
        if variant == "other_articles":
            hits = [h for h in hits if h.passage.title != q["title"]]
        elif variant == "same_article":
            golds = [normalize_answer(a) for a in q["answers"]]
            hits = [h for h in hits if h.passage.doc_id != q["pid"]
                    and not any(g and g in normalize_answer(h.passage.text) for g in golds)]
        for cand in pipeline.candidates(q["question"], pipeline.passages_to_read(hits)):
            label = float(best_f1(cand.span.text, q["answers"]) >= 0.5) if variant == "open" else 0.0
            rows.append({"q": qi, "variant": variant, "unanswerable": variant != "open",
                         "reworded": q.get("reworded", False), "features": cand.features, "y": label,
                         "text": cand.span.text, "from_list": cand.from_list, "question": q["question"]})
    return rows


def sample_questions(path: Path, n: int, seed: int) -> list[dict]:
    """The calibration's questions: ``n`` of the file's, in a shuffled order fixed by ``seed``."""
    qs = [json.loads(line) for line in path.open(encoding="utf-8")]
    random.Random(seed).shuffle(qs)
    return qs[:n]


def reworded(questions: list[dict], paragraphs: Path, fraction: float, seed: int) -> list[dict]:
    """The questions with ``fraction`` of them reworded: one word they share with their paragraph replaced by a
    WordNet synonym (training/augment.py, as the reader's training does), marked ``reworded``. SQuAD questions
    mostly reuse the paragraph's words; the news questions of the seeds do not ("backed" vs "supporter of"), and
    a calibration fitted only on the former learns how sure to be when the words match."""
    import augment  # training/augment.py: nltk and Debian's WordNet, needed only here

    context = {}
    for line in paragraphs.open(encoding="utf-8"):
        row = json.loads(line)
        context[row["pid"]] = row["context"]
    rng = random.Random(seed + 1)
    out = []
    for q in questions:
        other = augment.with_synonym(q["question"], augment.paragraph_words(context[q["pid"]]), rng) \
            if rng.random() < fraction else None
        out.append({**q, "question": other, "reworded": True} if other else q)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> np.ndarray:
    """Newton-Raphson logistic regression; column 0 of x is the bias."""
    w = np.zeros(x.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_conditional_logit(rows: list[dict], l2: float = 1e-2, iters: int = 100) -> np.ndarray:
    """Ranking weights [0, *weights] from a conditional logit: softmax over each answerable question's candidates.

    The per-candidate logistic fit learns "is this span right" across all questions; this one learns only
    "which of this question's spans is right", the choice the answer stage makes (an ablation: --ranking question).
    """
    groups: dict[int, list[dict]] = {}
    for r in rows:
        if r.get("variant", "open") == "open":
            groups.setdefault(r["q"], []).append(r)
    data = [(np.array([g["x"] for g in grp]), np.array([g["y"] for g in grp]))
            for grp in groups.values() if any(g["y"] for g in grp)]
    w = np.zeros(len(rows[0]["x"]))
    for _ in range(iters):
        grad, hess = l2 * w, l2 * np.eye(len(w))
        for x, y in data:
            z = x @ w
            p = np.exp(z - z.max())
            p /= p.sum()
            grad = grad + x.T @ (p - y / y.sum())
            mean = x.T @ p
            hess = hess + (x * p[:, None]).T @ x - np.outer(mean, mean)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return np.r_[0.0, w]


def _questions(rows: list[dict]) -> dict[tuple[int, str], list[dict]]:
    """The rows of each question in each setting: the candidates one ``Pipeline.ask`` scores together."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["q"], r.get("variant", "other_articles" if r["unanswerable"] else "open")), []).append(r)
    return groups


def spread_of(group: list[dict], w: np.ndarray, features: list[str], scale: float = 1.0) -> float:
    """The answer stage's own Calibration.spread over a question's rows, for weights ``w`` = [bias, *weights]
    (spread_weight 1 only switches the computation on; the fit decides the real weight)."""
    calibration = Calibration(tuple(features), tuple(float(v) for v in w[1:]), float(w[0]), 0.0,
                              spread_weight=1.0, spread_scale=scale)
    return calibration.spread([dict(zip(features, g["x"], strict=True)) for g in group])


def fit_confidence(rows: list[dict], ranking: str = "candidate", features: list[str] | None = None,
                   spread: bool = False) -> tuple[np.ndarray, float, float]:
    """Candidate ranking weights with Platt scaling of the top candidate folded in: ([bias, *weights],
    spread_weight, spread_scale).

    With ``spread`` the Platt step also weighs the question's candidate spread (qa.calibration.Calibration): the
    ranking weights say which span is best, the spread how closely the others follow it. Ranking is unchanged
    (the spread is the same for every candidate of a question); only the confidence of the best one moves.
    """
    if ranking == "question":
        w = fit_conditional_logit(rows)
    else:
        w = fit_logistic(np.array([[1.0, *r["x"]] for r in rows]), np.array([r["y"] for r in rows]))
    tops = []
    for group in _questions(rows).values():
        z = [float(w[0] + np.dot(w[1:], r["x"])) for r in group]
        i = int(np.argmax(z))
        tops.append((z[i], spread_of(group, w, features or []) if spread else 0.0, group[i]["y"]))
    z, s, y = np.array(tops).T
    if not spread:
        a0, a1 = fit_logistic(np.c_[np.ones_like(z), z], y)  # confidence = sigmoid(a1 * z + a0)
        return np.r_[a1 * w[0] + a0, a1 * w[1:]], 0.0, 1.0
    a0, a1, a2 = fit_logistic(np.c_[np.ones_like(z), z, s], y)  # confidence = sigmoid(a1 * z + a2 * spread + a0)
    # Folded: the spread is recomputed from the folded weights, so its scale undoes a1.
    return np.r_[a1 * w[0] + a0, a1 * w[1:]], float(a2), float(1 / a1)


def top_answers(rows: list[dict], w: np.ndarray, spread: tuple[float, float] = (0.0, 1.0),
                features: list[str] | None = None) -> list[tuple[float, float, str]]:
    """(confidence, correct, variant) of the best candidate of each question in each setting; ``spread`` =
    (spread_weight, spread_scale) of the fit."""
    out = []
    for (_, variant), group in _questions(rows).items():
        term = spread[0] * spread_of(group, w, features or [], spread[1]) if spread[0] else 0.0
        confs = [float(1 / (1 + np.exp(-(w[0] + np.dot(w[1:], r["x"]) + term)))) for r in group]
        i = int(np.argmax(confs))
        out.append((confs[i], group[i]["y"], variant))
    return out


def reliability(tops: list[tuple[float, float, bool]], bins: int = 10) -> list[dict]:
    table = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        sel = [t for t in tops if lo <= t[0] < hi or (b == bins - 1 and t[0] == 1.0)]
        if sel:
            table.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": len(sel),
                          "mean_confidence": round(float(np.mean([t[0] for t in sel])), 3),
                          "accuracy": round(float(np.mean([t[1] for t in sel])), 3)})
    return table


# Users' worst complaint is a confident answer the documents do not support. At most 2% of questions whose
# article is absent may be answered; on-topic text that does not answer is harder (the reader finds a
# plausible span of the right type), and a 2% cap there would abstain on about 3 answerable questions in 4,
# so it is capped at 10%.
MAX_ANSWERED = {"other_articles": 0.02, "same_article": 0.10}


def choose_threshold(tops: list[tuple[float, float, str]]) -> tuple[float, list[dict]]:
    """The lowest threshold within MAX_ANSWERED for every unanswerable setting (fewest false abstentions).

    The grid also reports decision accuracy (answered right, or abstained when wrong or absent).
    """
    grid = []
    variants = sorted({v for _, _, v in tops} - {"open"})
    for t in np.arange(0.05, 0.96, 0.01):
        right = sum((c >= t and y == 1) or (c < t and y == 0) for c, y, _ in tops)
        answered = [c for c, _, v in tops if v == "open"]
        row = {"threshold": round(float(t), 2), "decision_accuracy": round(right / len(tops), 3),
               "abstain_rate_answerable": round(sum(c < t for c in answered) / max(1, len(answered)), 3)}
        for variant in variants:
            unans = [c for c, _, v in tops if v == variant]
            row[f"abstain_accuracy_{variant}"] = round(sum(c < t for c in unans) / max(1, len(unans)), 3)
        grid.append(row)
    ok = [g for g in grid
          if all(g[f"abstain_accuracy_{v}"] >= 1 - MAX_ANSWERED.get(v, 0.02) for v in variants)]
    best = ok[0] if ok else max(grid, key=lambda g: g["decision_accuracy"])
    return best["threshold"], grid


# ------------------------------------------------------------------------------------ the on-topic rule
# Whether the retrieved passages are about the question at all, decided by a linear rule over two retrieval
# scores (qa.topic: the best hit's cosine and the IDF coverage of the question's terms) fitted here on SQuAD
# dev (never on the seeds): each sampled question is searched as is (its article is in the index: on topic) and
# against the index without its article (the other_articles variant: not about it). Retrieval only, no reader:
# a minute for 1,200 questions. The pipeline labels an abstention "on topic" when the rule holds
# (qa.calibration.Calibration.on_topic); the presentation then shows the best low-confidence candidate as such
# instead of "Nothing in the articles is about this".
#
# A question asked without its article may still be about another SQuAD article of the same subject; that is
# fine: the rule separates the two settings, it does not say what a question is truly about.

# The rule: the lowest threshold at which at most this share of questions asked without their article count as
# on topic. A wrong "on topic" shows an unrelated low-confidence candidate (labelled, still an abstention for
# every metric), milder than a wrong answer, so the cap is the one the abstention threshold allows for on-topic
# text that does not answer (MAX_ANSWERED["same_article"]), not its 2% for absent articles.
MAX_ON_TOPIC_WITHOUT_ARTICLE = 0.10


def _max_dense(hits: list[Hit]) -> float:
    return max((h.scores["dense"] for h in hits if "dense" in h.scores), default=-1.0)


# The scores compared: the pipeline's own (qa.topic.TOPIC_SCORES, weighed together by the shipped rule: a logistic
# fit on both, its threshold set by the rule above) and, for comparison, these others, each (pipeline, hits) -> float.
OTHER_SCORES: dict[str, Callable[[Pipeline, list[Hit]], float]] = {
    "read_max_dense": lambda pipeline, hits: _max_dense(pipeline.passages_to_read(hits)),  # of the passages read
    "max_dense": lambda pipeline, hits: _max_dense(hits),  # of every passage retrieved
}
ON_TOPIC_SCORES = (*TOPIC_SCORES, *OTHER_SCORES)


class _WithoutRows:
    """An IndexStore seen as if ``rows`` were not indexed: both searches fetch more and drop those rows, so
    ``Pipeline.search`` returns what an index without them would (BM25's term weights still count them)."""

    def __init__(self, store: Any, rows: frozenset[int]) -> None:
        self._store, self._rows = store, rows
        self.lexical = SimpleNamespace(search=lambda query, k: [
            (r, s) for r, s in store.lexical.search(query, k + len(rows)) if r not in rows][:k])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def dense_search(self, query_vecs: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        return [[(r, s) for r, s in found if r not in self._rows][:k]
                for found in self._store.dense_search(query_vecs, k + len(self._rows))]


def on_topic_rows(pipeline: Pipeline, questions: list[dict], mode: str = DEFAULT_MODE) -> list[dict]:
    """Each question's scores (ON_TOPIC_SCORES) searched as is ("on") and without its article ("off")."""
    rows_of_title: dict[str, set[int]] = {}
    for row, passage in enumerate(pipeline.store.passages):
        rows_of_title.setdefault(passage.title, set()).add(row)
    rows = []
    for qi, q in enumerate(tqdm(questions, desc="On-topic scores", unit="question")):
        without = Pipeline(_WithoutRows(pipeline.store, frozenset(rows_of_title.get(q["title"], ()))),
                           pipeline.config, encoder=pipeline.encoder)
        on = pipeline.search(q["question"], k=pipeline.search_depth, mode=mode)
        off = without.search(q["question"], k=pipeline.search_depth, mode=mode)
        assert all(h.passage.title != q["title"] for h in off)
        rows.append({"q": qi, **{side: {name: round(float(value), 5) for name, value in {
            **pipeline.topic_scores(q["question"], hits),
            **{name: score(pipeline, hits) for name, score in OTHER_SCORES.items()}}.items()}
            for side, hits in (("on", on), ("off", off))}})
    return rows


def auc(positives: list[float], negatives: list[float]) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    pos, neg = np.sort(np.asarray(positives)), np.sort(np.asarray(negatives))
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(pos) * len(neg)))


def on_topic_threshold(off: list[float], max_on: float = MAX_ON_TOPIC_WITHOUT_ARTICLE) -> float:
    """The lowest observed score t with at most ``max_on`` of ``off`` at or above it (the rule above)."""
    for t in sorted(set(off)):
        if np.mean(np.asarray(off) >= t) <= max_on:
            return t
    return max(off) + 1e-6


def _rates(on: list[float], off: list[float], t: float) -> dict[str, float]:
    return {"on_topic_with_article": round(float(np.mean(np.asarray(on) >= t)), 3),
            "on_topic_without_article": round(float(np.mean(np.asarray(off) >= t)), 3)}


def _fit_rule(rows: list[dict]) -> tuple[np.ndarray, float]:
    """Logistic weights [bias, *weights] over TOPIC_SCORES (with article = 1, without = 0) and the threshold on
    their sum that the rule (MAX_ON_TOPIC_WITHOUT_ARTICLE) sets."""
    x = np.array([[1.0, *(r[side][n] for n in TOPIC_SCORES)] for r in rows for side in ("on", "off")])
    y = np.array([1.0, 0.0] * len(rows))
    w = fit_logistic(x, y)
    return w, on_topic_threshold(_rule_values(rows, w, "off"))


def _rule_values(rows: list[dict], w: np.ndarray, side: str) -> list[float]:
    return [float(w @ [1.0, *(r[side][n] for n in TOPIC_SCORES)]) for r in rows]


def fit_on_topic(rows: list[dict]) -> dict:
    """The separation of each score alone (AUC; threshold fitted on even questions, rates on odd ones and on all)
    and of the rule the pipeline ships: a logistic fit over TOPIC_SCORES (fitted on even questions and checked on
    odd ones, then refitted on all), thresholded by MAX_ON_TOPIC_WITHOUT_ARTICLE."""
    scores = {}
    fit = [r for r in rows if r["q"] % 2 == 0]
    held = [r for r in rows if r["q"] % 2 == 1]
    for name in ON_TOPIC_SCORES:
        on, off = ([r[side][name] for r in rows] for side in ("on", "off"))
        t_half = on_topic_threshold([r["off"][name] for r in fit])
        t_all = on_topic_threshold(off)
        scores[name] = {
            "auc": round(auc(on, off), 4),
            "threshold_even_half": round(t_half, 4),
            "heldout_odd_half": _rates([r["on"][name] for r in held], [r["off"][name] for r in held], t_half),
            "threshold": round(t_all, 4),
            "all": _rates(on, off, t_all),
            "quantiles": {side: [round(float(v), 3) for v in np.quantile(vals, [0.05, 0.25, 0.5, 0.75, 0.95])]
                          for side, vals in (("on", on), ("off", off))},
            "grid": [{"threshold": round(float(t), 2), **_rates(on, off, t)} for t in np.arange(0.2, 0.71, 0.05)],
        }
    w_half, t_half = _fit_rule(fit)
    w_all, t_all = _fit_rule(rows)
    held_on, held_off = _rule_values(held, w_half, "on"), _rule_values(held, w_half, "off")
    all_on, all_off = _rule_values(rows, w_all, "on"), _rule_values(rows, w_all, "off")
    rule = {
        "scores": list(TOPIC_SCORES),
        "weights": [round(float(v), 4) for v in w_all[1:]],
        "bias": round(float(w_all[0] - t_all), 4),  # the threshold folded in: on topic when bias + w.s >= 0
        "heldout_auc": round(auc(held_on, held_off), 4),
        "heldout_odd_half": _rates(held_on, held_off, t_half),
        "auc": round(auc(all_on, all_off), 4),
        "all": _rates(all_on, all_off, t_all),
    }
    return {"questions": len(rows), "rule": f"logistic fit over {' and '.join(TOPIC_SCORES)}, thresholded where at "
            f"most {MAX_ON_TOPIC_WITHOUT_ARTICLE:.0%} of questions asked without their article count as on topic",
            "on_topic_rule": rule, "scores": scores}


def on_topic_markdown(report: dict) -> str:
    """The separation table of the on-topic report, for training/results/on_topic.md."""
    lines = [
        "# The on-topic rule: are the retrieved passages about the question?", "",
        f"{report['questions']} SQuAD dev questions, each searched as is (its article indexed: on topic) and "
        "without its article (not about it); retrieval only. Rule: " + report["rule"] + ".", "",
        f"Command: `{report['command']}`", "",
        "| score | AUC | threshold (all) | on topic, with article | on topic, without article | "
        "threshold (even half) | held-out odd half: with / without |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, s in report["scores"].items():
        held = s["heldout_odd_half"]
        lines.append(f"| {name} alone | {s['auc']:.3f} | {s['threshold']:.3f} | {s['all']['on_topic_with_article']:.1%}"
                     f" | {s['all']['on_topic_without_article']:.1%} | {s['threshold_even_half']:.3f} | "
                     f"{held['on_topic_with_article']:.1%} / {held['on_topic_without_article']:.1%} |")
    r = report["on_topic_rule"]
    lines.append(f"| **{' + '.join(r['scores'])} (used)** | {r['auc']:.3f} (held out: {r['heldout_auc']:.3f}) | "
                 f"bias {r['bias']}, weights {r['weights']} | {r['all']['on_topic_with_article']:.1%} | "
                 f"{r['all']['on_topic_without_article']:.1%} | (fitted on the even half) | "
                 f"{r['heldout_odd_half']['on_topic_with_article']:.1%} / "
                 f"{r['heldout_odd_half']['on_topic_without_article']:.1%} |")
    lines += [
        "", "AUC: the chance that a question asked with its article scores above one asked without it. The "
        "thresholds are fitted on the even-numbered questions and checked on the odd ones, then refitted on all "
        "(the shipped one). top_dense is the dense cosine of the best retrieved passage; coverage the largest "
        "IDF-weighted share of the question's terms that one of the first five hits holds (qa/topic.py); the "
        "max_dense scores take the best cosine of the passages read or of all retrieved. The rule used is a "
        "logistic fit over top_dense and coverage, thresholded by the same rule, written to calibration.json as "
        "weights and a bias with the threshold folded in. Raw BM25 scores are not compared: their scale depends "
        "on the corpus (its size, its words), so a threshold fitted on SQuAD would not carry over to other "
        "articles; coverage is a share, whatever the corpus.", "",
        "Caveat: a question asked without its article may still be about another SQuAD article of the same "
        "subject, and counts as 'not about it' here: the rule separates the two settings, it does not say what "
        "is truly about the question. The article is removed by dropping its rows from both searches (BM25's "
        "term weights still count them).",
    ]
    grid = report["scores"]["top_dense"]["grid"]
    lines += ["", "top_dense alone: share counted on topic at each threshold", "",
              "| threshold | with article | without article |", "| --- | --- | --- |"]
    lines += [f"| {g['threshold']:.2f} | {g['on_topic_with_article']:.1%} | {g['on_topic_without_article']:.1%} |"
              for g in grid]
    return "\n".join(lines) + "\n"


def on_topic_rule(report: dict) -> OnTopicRule:
    """The shipped form of a fit_on_topic report's rule."""
    rule = report["on_topic_rule"]
    return OnTopicRule(tuple(rule["scores"]), tuple(rule["weights"]), rule["bias"])


def on_topic_provenance(report: dict, by: str) -> dict:
    """Where the on-topic rule came from, as both writers of the calibration file record it."""
    return {"by": by, "date": datetime.date.today().isoformat(), "rule": report.get("rule", ""),
            "questions": report.get("questions"), "report": report.get("out", "")}


def write_on_topic(target: Path, report: dict) -> Calibration:
    """Set only the on-topic rule (and its provenance) in the calibration file ``target``; the rest is kept."""
    data = json.loads(target.read_text(encoding="utf-8"))
    calibration = Calibration.from_dict(data, str(target))
    fitted = {**calibration.fitted,
              "on_topic": on_topic_provenance(report, "training/calibrate.py --on-topic-only")}
    updated = replace(calibration, on_topic_rule=on_topic_rule(report), fitted=fitted)
    files.write_atomic(target, (_compact_lists(json.dumps(updated.to_dict(), indent=2)) + "\n").encode("utf-8"))
    return updated


def _compact_lists(text: str) -> str:
    """Indented JSON with each list of numbers or names on one line, as the shipped calibration.json has them."""
    return re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paragraphs", type=Path, default=Path("../shared/eval/squad/paragraphs.jsonl"))
    p.add_argument("--questions-file", type=Path, default=Path("../shared/eval/squad/questions_dev.jsonl"))
    p.add_argument("--index", type=Path, default=Path("bench/.cache/squad"))
    p.add_argument("--questions", type=int, default=1200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=Path("training/calibration.json"))
    p.add_argument("--rows-cache", type=Path, default=None, help="reuse/save the collected candidate rows here")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"settings to ask in: {', '.join(VARIANTS)}")
    p.add_argument("--reader", type=Path, default=None, help="reader model directory (default: the shipped one)")
    p.add_argument("--features", default=",".join(SHIPPED_FEATURES),
                   help="features to fit (default: %(default)s; any of qa.answer.FEATURES, from the rows cache, to "
                        "compare)")
    p.add_argument("--ranking", choices=("candidate", "question"), default="candidate",
                   help="rank candidates by a per-candidate logistic fit (shipped) or a per-question conditional "
                        "logit (an ablation, bench/results/answer_ablation.md)")
    p.add_argument("--spread", action="store_true",
                   help="also weigh how closely the other candidates follow the best one (the question's candidate "
                        "spread, qa.calibration.Calibration) in the confidence")
    p.add_argument("--list-answers", action="store_true",
                   help="collect with the whole-list candidates on (Config.list_answers; for the ablation)")
    p.add_argument("--no-lists", action="store_true",
                   help="fit without the whole-list candidates (an ablation; needs rows collected with them)")
    p.add_argument("--reader-passages", type=int, default=None,
                   help="passages read per question (default: Config.reader_passages; the fit is only valid for "
                        "the setting it was collected with)")
    p.add_argument("--mode", default=DEFAULT_MODE, choices=MODES, help="retrieval mode (default: %(default)s)")
    p.add_argument("--reword", type=float, default=0.0, metavar="FRACTION",
                   help="ask this share of the questions with a word they share with their paragraph replaced by a "
                        "WordNet synonym (training/augment.py), as news readers word questions unlike the text "
                        "(default: %(default)s; the on-topic rule always sees the questions as written)")
    p.add_argument("--write", action="store_true",
                   help=f"write the fit to {CALIBRATION_FILE} beside the reader (--reader, default: the shipped "
                        "one), where the answer stage reads it")
    p.add_argument("--on-topic-only", action="store_true",
                   help="fit only the on-topic rule (retrieval only, no reader); with --write, set only its field "
                        f"in {CALIBRATION_FILE}")
    p.add_argument("--on-topic-out", type=Path, default=Path("training/results/on_topic.json"),
                   help="the on-topic report (and its table beside it as .md; default: %(default)s), written "
                        "with --write or --on-topic-only")
    args = p.parse_args(argv)

    config = DEFAULT_CONFIG.with_overrides(list_answers=args.list_answers or None, reader_passages=args.reader_passages)
    build_index(args.paragraphs, args.index, config)
    reader = load_reader(args.reader) if args.reader else None
    pipeline = Pipeline.load(args.index, config, reader=reader)
    qs = sample_questions(args.questions_file, args.questions, args.seed)
    on_topic = fit_on_topic(on_topic_rows(pipeline, qs, args.mode))
    on_topic.update(command=recorded_command(argv if argv is not None else sys.argv[1:]),
                    out=str(args.on_topic_out))
    if args.on_topic_only or args.write:  # a trial fit (--out elsewhere) leaves the committed report alone
        args.on_topic_out.write_text(json.dumps(on_topic, indent=2) + "\n", encoding="utf-8")
        args.on_topic_out.with_suffix(".md").write_text(on_topic_markdown(on_topic), encoding="utf-8")
    print(on_topic_markdown(on_topic))
    if args.on_topic_only:
        if args.write:
            target = (args.reader or READER_DIR) / CALIBRATION_FILE
            write_on_topic(target, on_topic)
            print(f"Wrote the on-topic rule {on_topic['on_topic_rule']} to {target}")
        return 0
    if args.rows_cache and args.rows_cache.exists():
        rows = json.loads(args.rows_cache.read_text())  # every feature of every candidate: fit any subset
    else:
        asked = reworded(qs, args.paragraphs, args.reword, args.seed) if args.reword else qs
        rows = [row for variant in args.variants.split(",") for row in collect(pipeline, asked, variant, args.mode)]
        if args.rows_cache:
            args.rows_cache.write_text(json.dumps(rows))
    if args.no_lists:  # ablation: the answer stage without whole-list candidates
        rows = [r for r in rows if not r.get("from_list")]
    features = args.features.split(",")
    for r in rows:
        r["x"] = [r["features"][n] for n in features]
    fit_q = {i for i in range(len(qs)) if i % 2 == 0}
    train = [r for r in rows if r["q"] in fit_q]
    held = [r for r in rows if r["q"] not in fit_q]
    w, *spread_half = fit_confidence(train, args.ranking, features, args.spread)
    tops = top_answers(held, w, tuple(spread_half), features)
    threshold, grid = choose_threshold(tops)
    # Final weights: refit on all questions (the held-out half has done its job of checking calibration).
    w_all, spread_weight, spread_scale = fit_confidence(rows, args.ranking, features, args.spread)
    answerable = [t for t in tops if t[2] == "open"]
    report = {
        "questions": len(qs),
        "candidates": len(rows),
        "reader_passages": config.reader_passages,
        "features": features,
        "weights_half": [round(float(v), 4) for v in w],
        "calibration_bias": round(float(w_all[0]), 4),
        "calibration_weights": [round(float(v), 4) for v in w_all[1:]],
        "spread_weight": round(spread_weight, 4),
        "spread_scale": round(spread_scale, 4),
        "abstain_threshold": threshold,
        "heldout_reliability_top_answer": reliability(tops),
        "heldout_reliability_by_variant": {v: reliability([t for t in tops if t[2] == v])
                                           for v in sorted({t[2] for t in tops})},
        "heldout_top1_correct_answerable": round(float(np.mean([t[1] for t in answerable])), 3),
        # At the chosen threshold, answerable held-out questions: answered with the right span / abstained.
        "heldout_answered_right_answerable": round(
            float(np.mean([c >= threshold and y == 1 for c, y, _ in answerable])), 3),
        "heldout_abstained_answerable": round(float(np.mean([c < threshold for c, _, _ in answerable])), 3),
        "reworded_questions": len({r["q"] for r in rows if r.get("reworded")}),
        "threshold_grid": grid,
        "on_topic": {k: v for k, v in on_topic.items() if k != "scores"},
    }
    if any(r.get("reworded") for r in held):  # is the fit as reliable on reworded questions as on the rest?
        for name, sel in (("as_written", False), ("reworded", True)):
            report[f"heldout_reliability_{name}"] = reliability(
                top_answers([r for r in held if r.get("reworded", False) == sel], w, tuple(spread_half), features))
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "threshold_grid"}, indent=2))
    if args.write:
        model_dir = args.reader or READER_DIR
        target = model_dir / CALIBRATION_FILE
        text = _compact_lists(json.dumps(fitted_calibration(report, args, model_dir).to_dict(), indent=2))
        files.write_atomic(target, (text + "\n").encode("utf-8"))
        print(f"Wrote {target}")
    return 0


def recorded_command(argv: list[str]) -> str:
    """The command as anyone can rerun it: ``--rows-cache FILE`` only saves collecting again and names a scratch
    file of this machine, so it is left out and said in words."""
    kept, cached = [], False
    args = iter(argv)
    for arg in args:
        if arg == "--rows-cache":
            cached = bool(next(args, None))
        elif arg.startswith("--rows-cache="):
            cached = True
        else:
            kept.append(arg)
    command = " ".join(["python training/calibrate.py", *kept])
    return command + (" (candidate rows collected once with --rows-cache and reused)" if cached else "")


def fitted_calibration(report: dict, args: argparse.Namespace, model_dir: Path) -> Calibration:
    """The shipped form of a fit: what the answer stage needs, the reader it belongs to, where it came from."""
    return Calibration(
        features=tuple(report["features"]), weights=tuple(report["calibration_weights"]),
        bias=report["calibration_bias"], abstain_threshold=report["abstain_threshold"],
        spread_weight=report.get("spread_weight", 0.0), spread_scale=report.get("spread_scale", 1.0),
        reader_sha256=reader_sha256(model_dir), on_topic_rule=on_topic_rule(report["on_topic"]),
        fitted={"by": "training/calibrate.py", "date": datetime.date.today().isoformat(),
                "data": f"SQuAD dev open setting ({args.paragraphs} indexed), {report['questions']} questions of "
                        f"{args.questions_file} (seed {args.seed}), asked in {args.variants} ({args.mode} retrieval, "
                        f"{report['reader_passages']} passages read); "
                        f"{report['candidates']} candidate spans"
                        + ("; whole-list candidates dropped (--no-lists)" if args.no_lists else "")
                        + (f"; {report.get('reworded_questions', 0)} of them asked with a word replaced by a WordNet "
                           f"synonym (--reword {args.reword})" if args.reword else ""),
                "command": report["on_topic"].get("command", ""),
                "report": str(args.out),
                "on_topic": on_topic_provenance(report["on_topic"], "training/calibrate.py")},
    )


if __name__ == "__main__":
    raise SystemExit(main())
