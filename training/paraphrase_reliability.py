"""Is the answer confidence honest on questions worded unlike their text, when the rewording is not WordNet's?

Why: the shipped calibration is fitted on SQuAD questions of which some are reworded with WordNet synonyms
(training/augment.py), and its synonym_overlap feature sees through exactly those synonyms
(qa/models/synonyms.tsv.gz). Its weight may then be optimistic for real paraphrases, which WordNet's first
senses do not cover ("nerve agent" vs "sarin"). SQuAD has real paraphrases too: questions, as their writers
wrote them, that share few words with the sentence holding their answer. This script splits the calibration's
held-out questions (the odd half, which the half-fit never saw) by that: the share of the question's content
terms found in the gold answer's sentence of its paragraph (without synonyms), and reports, per group, how sure
the top answer is against how often it is right, with the half-fit of each feature set.

Input: a rows cache of `training/calibrate.py --reword 1.0 --ranking question --rows-cache FILE` (every feature
of every candidate), and the same sampling (--seed, --questions) to know which question each row asked.

Usage: python training/paraphrase_reliability.py --rows ROWS.json [--out training/results/paraphrase_reliability]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "training"))

import calibrate  # noqa: E402

from qa.answer import question_terms, sentence_overlap  # noqa: E402
from qa.calibration import load_calibration  # noqa: E402
from qa.passages import passage_sentences  # noqa: E402

SHIPPED = ("margin", "log_prob", "dense", "log_rank", "sentence_dense", "log_support", "synonym_overlap")
BEFORE = ("margin", "log_prob", "dense", "log_rank", "sentence_dense", "log_support", "sentence_overlap")
LOW = 0.5  # below this share of the question's terms in the answer's sentence: worded unlike the text


def gold_sentence_overlap(question: str, context: str, start: int) -> float:
    sentence = next((context[a:b] for a, b in passage_sentences(context) if a <= start < b), context)
    return sentence_overlap(question_terms(question), sentence)


def summary(tops: list[tuple[float, float]], threshold: float) -> dict:
    conf = np.array([c for c, _ in tops])
    right = np.array([y for _, y in tops])
    answered = conf >= threshold
    return {"questions": len(tops), "mean_confidence": round(float(conf.mean()), 3),
            "top1_right": round(float(right.mean()), 3),
            "gap": round(float(conf.mean() - right.mean()), 3),
            "answered": round(float(answered.mean()), 3),
            "right_when_answered": round(float(right[answered].mean()), 3) if answered.any() else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=Path, required=True)
    p.add_argument("--paragraphs", type=Path, default=Path("../shared/eval/squad/paragraphs.jsonl"))
    p.add_argument("--questions-file", type=Path, default=Path("../shared/eval/squad/questions_dev.jsonl"))
    p.add_argument("--questions", type=int, default=1200)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--reword", type=float, default=1.0)
    p.add_argument("--out", type=Path, default=ROOT / "training" / "results" / "paraphrase_reliability")
    args = p.parse_args(argv)

    qs = calibrate.sample_questions(args.questions_file, args.questions, args.seed)
    asked = calibrate.reworded(qs, args.paragraphs, args.reword, args.seed) if args.reword else qs
    context = {}
    for line in args.paragraphs.open(encoding="utf-8"):
        row = json.loads(line)
        context[row["pid"]] = row["context"]
    overlap = [gold_sentence_overlap(q["question"], context[q["pid"]], q["answer_starts"][0]) for q in asked]
    group = ["reworded (WordNet)" if q.get("reworded") else
             f"as written, answer's sentence holds < {LOW:.0%} of the question's terms" if o < LOW else
             f"as written, >= {LOW:.0%}" for q, o in zip(asked, overlap, strict=True)]

    rows = json.loads(args.rows.read_text())  # all three settings: the fit's Platt step needs the unanswerable ones
    threshold = load_calibration().abstain_threshold
    report = {"rows": str(args.rows), "threshold": threshold, "low": LOW, "fits": {}}
    for name, features in (("synonym_overlap (shipped features)", SHIPPED), ("sentence_overlap (before)", BEFORE)):
        for r in rows:
            r["x"] = [r["features"][n] for n in features]
        w, *_ = calibrate.fit_confidence([r for r in rows if r["q"] % 2 == 0], "question")  # the half-fit (no spread)
        best: dict[int, tuple[float, float]] = {}
        for r in rows:
            if r["q"] % 2 and r["variant"] == "open":
                conf = float(1 / (1 + np.exp(-(w[0] + np.dot(w[1:], r["x"])))))
                if r["q"] not in best or conf > best[r["q"]][0]:
                    best[r["q"]] = (conf, r["y"])
        report["fits"][name] = {g: summary([best[q] for q in best if group[q] == g], threshold)
                                for g in sorted(set(group))}
        report["fits"][name]["all held-out"] = summary(list(best.values()), threshold)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Confidence on questions worded unlike their text\n\n"
             f"Command: `python training/paraphrase_reliability.py --rows {args.rows}`\n\n"
             f"Held-out half of the calibration's SQuAD questions (open setting: the question's article is indexed), "
             f"each fit made on the other half (conditional logit + Platt, as shipped); threshold {threshold}.\n",
             "| features | questions | n | mean confidence | top-1 right | confidence - right | answered "
             "| right when answered |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, groups in report["fits"].items():
        for g, s in groups.items():
            lines.append(f"| {name} | {g} | {s['questions']} | {s['mean_confidence']} | {s['top1_right']} | "
                         f"{s['gap']:+.3f} | {s['answered']} | {s['right_when_answered']} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
