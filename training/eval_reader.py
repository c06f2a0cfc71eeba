"""SQuAD v1.1 dev EM/F1 of a reader given the gold paragraph (official normalisation), and its speed.

Usage: python training/eval_reader.py --model qa/models/reader [--limit N] [--json out.json]
       python training/eval_reader.py --model DIR --holdout 2000   # the held-out SQuAD *train* questions

--holdout measures on the last N questions of train_reader.py's seeded permutation, which no segment trains
on: design choices are made there, and SQuAD dev is kept for the figure of the model we ship.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from qa.metrics import best_f1, exact_match
from qa.reader import OnnxReader


def holdout_questions(train: Path, n: int, seed: int = 13) -> tuple[dict[str, str], list[dict]]:
    """The last n questions of train_reader.py's permutation (same filter, same seed), as (contexts, questions)."""
    import gzip
    import random

    with gzip.open(train, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    exact = [r for r in rows if r.get("answer_occurrences", 1) == 1]
    random.Random(seed).shuffle(exact)
    contexts, qs = {}, []
    for i, r in enumerate(exact[len(exact) - n :]):
        contexts[str(i)] = r["context"]
        qs.append({"question": r["question"], "answers": r["answers"]["text"], "pid": str(i)})
    return contexts, qs


def evaluate(model_dir: Path, paragraphs: Path, questions: Path, limit: int = 0, holdout: int = 0,
             train: Path | None = None) -> dict:
    if holdout:
        contexts, qs = holdout_questions(train, holdout)
    else:
        contexts = {}
        for line in paragraphs.open(encoding="utf-8"):
            rec = json.loads(line)
            contexts[rec["pid"]] = rec["context"]
        qs = [json.loads(line) for line in questions.open(encoding="utf-8")]
    if limit:
        qs = qs[:limit]
    reader = OnnxReader(model_dir)
    em = f1 = 0.0
    t0 = time.perf_counter()
    for q in qs:
        reading = reader.read(q["question"], [contexts[q["pid"]]], top_n=1)[0]
        pred = reading.spans[0].text if reading.spans else ""
        em += exact_match(pred, q["answers"])
        f1 += best_f1(pred, q["answers"])
    seconds = time.perf_counter() - t0
    n = len(qs)
    return {"n": n, "em": round(100 * em / n, 2), "f1": round(100 * f1 / n, 2),
            "ms_per_paragraph": round(1000 * seconds / n, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", type=Path, default=Path("qa/models/reader"))
    p.add_argument("--paragraphs", type=Path, default=Path("../shared/eval/squad/paragraphs.jsonl"))
    p.add_argument("--questions", type=Path, default=Path("../shared/eval/squad/questions_dev.jsonl"))
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--holdout", type=int, default=0, help="measure on the last N permutation questions of --train")
    p.add_argument("--train", type=Path,
                   default=Path("../shared/train/squad_v1.1/train-v1.1.reconstructed.jsonl.gz"))
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    res = evaluate(args.model, args.paragraphs, args.questions, args.limit, args.holdout, args.train)
    print(json.dumps(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
