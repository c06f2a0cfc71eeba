"""How far the confidence model can take the seeds sets: the shipped answer stage against the same stage with
abstention off, on the dev, probe and holdout questions.

With abstention off every answerable question is answered with the reader's top-ranked answer, so its answer@1
is what a perfect abstention rule could reach at most: the rest is ranking (the reader and the confidence
model's order), which no threshold fixes. answer@3 is what a perfect re-ranking of the shown answers could
reach.

    python bench/answer_ceiling.py --seeds-index /tmp/seeds-index

Writes bench/results/answer_ceiling.{json,md}.
"""

from __future__ import annotations

import argparse
import time

from common import REPO, RESULTS, finish_machine_info, machine_info, machine_md, offline_env, write_results

SETS = ("dev", "probe", "holdout", "holdout2")
METRICS = ("answer@1", "answer@3", "source@1", "false_abstain", "abstain_accuracy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds-index", required=True, help="an index of seeds/ (qa build --articles seeds)")
    args = ap.parse_args()
    offline_env()
    from qa import Pipeline
    from qa.answer import answer_calibration
    from qa.evaluate import evaluate_seeds

    info, started = machine_info(), time.perf_counter()
    shipped = Pipeline.load(args.seeds_index)
    threshold = answer_calibration(shipped.config).abstain_threshold
    stages = [(f"shipped (threshold {threshold:.2f})", shipped),
              ("abstention off", shipped.with_config(abstain_threshold=0.0))]
    rows = []
    for label, pipeline in stages:
        for name in SETS:
            report = evaluate_seeds(pipeline, REPO / "eval" / f"seeds_qa_{name}.jsonl")
            answerable = [q for q in report["questions"] if q["answer@1"] is not None]
            rows.append({
                "stage": label, "set": name, "answerable": len(answerable),
                "right@1": sum(q["answer@1"] for q in answerable), "right@3": sum(q["answer@3"] for q in answerable),
                **{m: report["overall"].get(m) for m in METRICS},
            })
            print(rows[-1], flush=True)
    finish_machine_info(info, started)
    header = ["answer stage", "set", "answerable", "right@1", "right@3", *METRICS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["stage"], r["set"], r["answerable"], r["right@1"], r["right@3"], *(r[m] for m in METRICS)]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    md = "\n".join([
        "# The seeds sets with abstention off: what ranking allows", "",
        f"Command: `python bench/answer_ceiling.py --seeds-index {args.seeds_index}`", "",
        machine_md(info), "", *lines, ""])
    write_results(RESULTS, "answer_ceiling", {"machine": info, "rows": rows}, md)
    print(md)


if __name__ == "__main__":
    main()
