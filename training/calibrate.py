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

Usage: python training/calibrate.py [--index bench/.cache/squad] [--questions 1200] [--reader DIR]
       [--rows-cache FILE] [--out training/calibration.json] [--write]
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
from pathlib import Path

import numpy as np

from qa.answer import FEATURES
from qa.calibration import CALIBRATION_FILE, Calibration, reader_sha256
from qa.config import DEFAULT_CONFIG
from qa.index.build import build_index
from qa.metrics import best_f1, normalize_answer
from qa.pipeline import Pipeline
from qa.reader import READER_DIR, load_reader
from qa.search import DEFAULT_MODE, MODES

VARIANTS = ("open", "other_articles", "same_article")


def collect(pipeline: Pipeline, questions: list[dict], variant: str, mode: str = DEFAULT_MODE) -> list[dict]:
    """Candidate rows of each question asked in one setting.

    open: the whole corpus (label = the span matches a gold answer). other_articles: the README's unanswerable
    variant, the question's article removed. same_article: a harder unanswerable variant, only the passages
    that do not contain a gold answer, so the reader sees on-topic text that does not answer (as a question
    about the seeds' topic that the articles do not answer).
    """
    rows = []
    for qi, q in enumerate(questions):
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
                         "features": cand.features, "y": label,
                         "text": cand.span.text})
    return rows


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


def fit_confidence(rows: list[dict]) -> np.ndarray:
    """Candidate ranking weights with Platt scaling of the top candidate folded in: [bias, *weights]."""
    w = fit_logistic(np.array([[1.0, *r["x"]] for r in rows]), np.array([r["y"] for r in rows]))
    best: dict[tuple[int, bool], tuple[float, float]] = {}
    for r in rows:
        z = float(w[0] + np.dot(w[1:], r["x"]))
        key = (r["q"], r.get("variant", r["unanswerable"]))
        if key not in best or z > best[key][0]:
            best[key] = (z, r["y"])
    z, y = np.array(list(best.values())).T
    a0, a1 = fit_logistic(np.c_[np.ones_like(z), z], y)  # confidence = sigmoid(a1 * z + a0)
    return np.r_[a1 * w[0] + a0, a1 * w[1:]]


def top_answers(rows: list[dict], w: np.ndarray) -> list[tuple[float, float, str]]:
    """(confidence, correct, variant) of the best candidate of each question in each setting."""
    best: dict[tuple[int, str], tuple[float, float, str]] = {}
    for r in rows:
        conf = float(1 / (1 + np.exp(-(w[0] + np.dot(w[1:], r["x"])))))
        variant = r.get("variant", "other_articles" if r["unanswerable"] else "open")
        key = (r["q"], variant)
        if key not in best or conf > best[key][0]:
            best[key] = (conf, r["y"], variant)
    return list(best.values())


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
    p.add_argument("--features", default=",".join(FEATURES),
                   help="features to fit (default: qa.answer.FEATURES; others: from the rows cache, to compare)")
    p.add_argument("--mode", default=DEFAULT_MODE, choices=MODES, help="retrieval mode (default: %(default)s)")
    p.add_argument("--write", action="store_true",
                   help=f"write the fit to {CALIBRATION_FILE} beside the reader (--reader, default: the shipped "
                        "one), where the answer stage reads it")
    args = p.parse_args(argv)

    build_index(args.paragraphs, args.index, DEFAULT_CONFIG)
    reader = load_reader(args.reader) if args.reader else None
    pipeline = Pipeline.load(args.index, DEFAULT_CONFIG, reader=reader)
    qs = [json.loads(line) for line in args.questions_file.open(encoding="utf-8")]
    random.Random(args.seed).shuffle(qs)
    qs = qs[: args.questions]
    if args.rows_cache and args.rows_cache.exists():
        rows = json.loads(args.rows_cache.read_text())  # every feature of every candidate: fit any subset
    else:
        rows = [row for variant in args.variants.split(",") for row in collect(pipeline, qs, variant, args.mode)]
        if args.rows_cache:
            args.rows_cache.write_text(json.dumps(rows))
    features = args.features.split(",")
    for r in rows:
        r["x"] = [r["features"][n] for n in features]
    fit_q = {i for i in range(len(qs)) if i % 2 == 0}
    train = [r for r in rows if r["q"] in fit_q]
    held = [r for r in rows if r["q"] not in fit_q]
    w = fit_confidence(train)
    tops = top_answers(held, w)
    threshold, grid = choose_threshold(tops)
    # Final weights: refit on all questions (the held-out half has done its job of checking calibration).
    w_all = fit_confidence(rows)
    answerable = [t for t in tops if t[2] == "open"]
    report = {
        "questions": len(qs),
        "candidates": len(rows),
        "features": features,
        "weights_half": [round(float(v), 4) for v in w],
        "calibration_bias": round(float(w_all[0]), 4),
        "calibration_weights": [round(float(v), 4) for v in w_all[1:]],
        "abstain_threshold": threshold,
        "heldout_reliability_top_answer": reliability(tops),
        "heldout_reliability_by_variant": {v: reliability([t for t in tops if t[2] == v])
                                           for v in sorted({t[2] for t in tops})},
        "heldout_top1_correct_answerable": round(float(np.mean([t[1] for t in answerable])), 3),
        "threshold_grid": grid,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "threshold_grid"}, indent=2))
    if args.write:
        model_dir = args.reader or READER_DIR
        target = model_dir / CALIBRATION_FILE
        target.write_text(json.dumps(fitted_calibration(report, args, model_dir).to_dict(), indent=2) + "\n",
                          encoding="utf-8")
        print(f"Wrote {target}")
    return 0


def fitted_calibration(report: dict, args: argparse.Namespace, model_dir: Path) -> Calibration:
    """The shipped form of a fit: what the answer stage needs, the reader it belongs to, where it came from."""
    return Calibration(
        features=tuple(report["features"]), weights=tuple(report["calibration_weights"]),
        bias=report["calibration_bias"], abstain_threshold=report["abstain_threshold"],
        reader_sha256=reader_sha256(model_dir),
        fitted={"by": "training/calibrate.py", "date": datetime.date.today().isoformat(),
                "data": f"SQuAD dev open setting ({args.paragraphs} indexed), {report['questions']} questions of "
                        f"{args.questions_file} (seed {args.seed}), asked in {args.variants} ({args.mode} retrieval); "
                        f"{report['candidates']} candidate spans",
                "report": str(args.out)},
    )


if __name__ == "__main__":
    raise SystemExit(main())
