"""Reader windows vs CPU and quality: is a longer window (fewer windows per passage) a free speed-up?

The load test (bench/load_test.py) is CPU-bound: the app spends ~0.7 CPU s per answer on this AVX2 host, most
of it in the int8 reader, which reads every passage in 176-token windows (a 180-word passage takes two).
This script asks the seeds dev questions and SQuAD open questions (an index built by `qa eval --squad`, or any
index of ../shared/eval/squad/paragraphs.jsonl) with the shipped reader at several window lengths and strides,
and prints CPU seconds per question (time.process_time, in one process) beside the answer metrics.

    python bench/reader_windows.py --seeds-index index --squad-index bench/.cache/squad --limit 200
"""

from __future__ import annotations

import argparse
import time

from common import SEEDS_GOLD, SHARED_EVAL, offline_env

SETTINGS = ((176, 64), (224, 48), (256, 64))  # (window tokens, stride); 176 is what the reader was trained at


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds-index", default="index")
    ap.add_argument("--squad-index", default=None, help="an index of SQuAD dev paragraphs (skip SQuAD if absent)")
    ap.add_argument("--limit", type=int, default=200, help="SQuAD questions, evenly spread")
    args = ap.parse_args()
    offline_env()
    from qa import DEFAULT_CONFIG, Pipeline
    from qa.evaluate import evaluate_seeds, evaluate_squad

    for max_len, stride in SETTINGS:
        row = [f"window {max_len} stride {stride}"]
        for name, index in (("seeds", args.seeds_index), ("squad", args.squad_index)):
            if index is None:
                continue
            pipeline = Pipeline.load(index, DEFAULT_CONFIG)
            pipeline.reader.max_len, pipeline.reader.stride = max_len, stride
            pipeline.ask("warm up?")
            t = time.process_time()
            if name == "seeds":
                out, n = evaluate_seeds(pipeline, SEEDS_GOLD), 24
                keys = ("answer@1", "f1@1", "source@1", "false_abstain", "conflict_all_sides")
            else:
                questions = SHARED_EVAL / "squad" / "questions_dev.jsonl"
                out, n = evaluate_squad(pipeline, questions, limit=args.limit), args.limit
                keys = ("em", "f1", "em_answered", "abstain_rate")
            cpu = (time.process_time() - t) / n
            row.append(f"{name}: {cpu:.3f} CPU s/q " + " ".join(f"{k} {out['overall'][k]:.3f}" for k in keys))
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
