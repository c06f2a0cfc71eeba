"""What each answer-stage change bought: the seeds dev set and SQuAD open, one row per change.

Each row is a reader plus a confidence fit (a report written by training/calibrate.py, which holds the fitted
weights and threshold for some subset of the answer stage's features) plus the answer stage's own switches
(``list_answers``). Rows are asked through the shipped pipeline with the fit passed as Config overrides, so
nothing but the named change differs between two rows. Fits must come from SQuAD only (training/calibrate.py);
the seeds are only measured here, never fitted.

    python bench/answer_ablation.py --rows bench/ablation_rows.json --seeds-index /tmp/seeds-index \
        --squad-index bench/.cache/squad --limit 300

--rows is a JSON list of {"name", "reader" (a model directory, default the shipped one), "fit" (a
training/calibrate.py report; default the shipped calibration), "list_answers" (default false), "config" (other
Config overrides, e.g. {"reader_passages": 5}), "mode" (the retrieval mode, default hybrid)}. Writes
bench/results/<--name>.{json,md} (default answer_ablation).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import (
    RESULTS,
    SEEDS_GOLD,
    SHARED_EVAL,
    finish_machine_info,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)

SEEDS_METRICS = ("answer@1", "f1@1", "source@1", "abstain_accuracy", "false_abstain", "conflict_all_sides")
SQUAD_METRICS = ("em", "f1", "em_answered", "abstain_rate")


def overrides(fit: dict) -> dict:
    """Config overrides for a fit: its features, weights, bias and threshold in place of the shipped ones."""
    return {"calibration_features": tuple(fit["features"]), "calibration_weights": tuple(fit["calibration_weights"]),
            "calibration_bias": fit["calibration_bias"], "abstain_threshold": fit["abstain_threshold"],
            "calibration_spread": (fit.get("spread_weight", 0.0), fit.get("spread_scale", 1.0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=Path, required=True)
    ap.add_argument("--seeds-index", required=True)
    ap.add_argument("--squad-index", default=None, help="an index of SQuAD dev paragraphs (skip SQuAD if absent)")
    ap.add_argument("--limit", type=int, default=300, help="SQuAD dev questions, evenly spread")
    ap.add_argument("--name", default="answer_ablation", help="results file name under bench/results/")
    ap.add_argument("--title", default="Answer-stage ablation", help="the report's heading")
    args = ap.parse_args()
    offline_env()
    from qa import DEFAULT_CONFIG, Pipeline
    from qa.answer import answer_calibration
    from qa.evaluate import evaluate_seeds, evaluate_squad
    from qa.reader import load_reader

    info, started = machine_info(), time.perf_counter()
    results = []
    for row in json.loads(args.rows.read_text()):
        fit = json.loads(Path(row["fit"]).read_text()) if row.get("fit") else None
        config = DEFAULT_CONFIG.with_overrides(**(overrides(fit) if fit else {}), **row.get("config", {}),
                                               list_answers=row.get("list_answers", False))
        mode = row.get("mode", "hybrid")
        reader = load_reader(Path(row["reader"])) if row.get("reader") else None
        calibration = answer_calibration(config)
        out = {"name": row["name"], "reader": row.get("reader") or "shipped", "fit": row.get("fit") or "shipped",
               "features": list(calibration.features), "threshold": calibration.abstain_threshold,
               "list_answers": config.list_answers, "config": row.get("config", {}), "mode": mode}
        t = time.perf_counter()
        seeds = evaluate_seeds(Pipeline.load(args.seeds_index, config, reader=reader), SEEDS_GOLD, mode=mode)
        out["seeds"] = {m: seeds["overall"].get(m) for m in SEEDS_METRICS}
        if args.squad_index:
            squad = evaluate_squad(Pipeline.load(args.squad_index, config, reader=reader),
                                   SHARED_EVAL / "squad" / "questions_dev.jsonl", limit=args.limit, mode=mode)
            out["squad"] = {m: squad["overall"].get(m) for m in SQUAD_METRICS}
        out["seconds"] = round(time.perf_counter() - t, 1)
        print(json.dumps(out), flush=True)
        results.append(out)
    header = ["change", "threshold", *(f"seeds {m}" for m in SEEDS_METRICS), *(f"SQuAD {m}" for m in SQUAD_METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r["name"], r["threshold"], *(r["seeds"].get(m) for m in SEEDS_METRICS),
                 *(r.get("squad", {}).get(m) for m in SQUAD_METRICS)]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    finish_machine_info(info, started)
    md = "\n".join([
        f"# {args.title}", "",
        f"Command: `python bench/answer_ablation.py --rows {args.rows} --seeds-index {args.seeds_index} "
        f"--squad-index {args.squad_index} --limit {args.limit} --name {args.name}`", "",
        machine_md(info), "", f"SQuAD open: {args.limit} dev questions evenly spread, all 2,067 paragraphs indexed.",
        "", *lines, ""])
    write_results(RESULTS, args.name, {"machine": info, "rows": results}, md)
    print(md)


if __name__ == "__main__":
    main()
