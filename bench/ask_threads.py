"""Latency of a full `ask` on the seeds by reader threading, with the other core idle and busy.

Why: a question on 2 cores can use both, but the app serves several at once and rebuilds run beside it.
Each setting runs in a fresh process (24 seeds questions x 2 after one warm-up); "busy" runs a pure-Python
CPU burner on the other core meanwhile. The query and sentence embeddings stay on one torch thread.

Usage: python bench/ask_threads.py [--index index]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REPO,
    RESULTS,
    SEEDS_GOLD,
    finish_machine_info,
    log,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)

PROBE = """
import json, statistics, sys
from pathlib import Path
from qa import Retriever
from qa.reader import OnnxReader
r = Retriever.load(sys.argv[1], reader=OnnxReader(threads=int(sys.argv[2]), spin=sys.argv[3] == "1"))
qs = [json.loads(l)["question"] for l in open(sys.argv[4])]
r.ask(qs[0])
total, read = [], []
for q in qs * 2:
    t = r.ask(q).timings_ms
    total.append(t["total"]); read.append(t["read"])
total.sort()
print(json.dumps({"p50": round(statistics.median(total), 1), "p95": round(total[int(0.95 * len(total))], 1),
                  "read_p50": round(statistics.median(read), 1), "n": len(total)}))
"""
SETTINGS = [(1, False), (2, False), (2, True)]


def main() -> int:
    offline_env()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", type=Path, default=REPO / "index")
    p.add_argument("--gold", type=Path, default=SEEDS_GOLD)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    info, started = machine_info(), time.perf_counter()
    rows = []
    for load in ("idle", "busy"):
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
        try:
            for threads, spin in SETTINGS:
                out = subprocess.run([sys.executable, "-c", PROBE, str(args.index), str(threads), "1" if spin else "0",
                                      str(args.gold)], capture_output=True, text=True, check=True, cwd=REPO)
                row = {"other_core": load, "reader_threads": threads, "spinning": spin,
                       **json.loads(out.stdout.strip().splitlines()[-1])}
                log(str(row))
                rows.append(row)
        finally:
            if burner:
                burner.kill()
    finish_machine_info(info, started)
    head = "| other core | reader threads | spinning | ask p50 ms | ask p95 ms | read p50 ms | asks |"
    table = [head, "|---|---|---|---|---|---|---|"] + [
        f"| {r['other_core']} | {r['reader_threads']} | {r['spinning']} | {r['p50']} | {r['p95']} | {r['read_p50']} "
        f"| {r['n']} |" for r in rows]
    md = "\n".join(["# Ask latency by reader threading", "", "Command: `python bench/ask_threads.py`", "",
                    machine_md(info), "", *table, "",
                    "- read = reader over the 6 passages + embedding the candidate sentences (one torch thread).",
                    "- Default (qa.reader.load_reader): 2 threads, not spinning."])
    write_results(args.out, "ask_threads", {"command": " ".join(sys.argv), "rows": rows, "machine": info}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
