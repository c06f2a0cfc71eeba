"""Index build throughput: local vs Ray with 1 and 2 workers on this machine, and a projection for N machines.

Every configuration builds the same corpus from scratch into its own index directory (a fresh temporary
directory, so nothing is reused), end to end through ``qa.index.build.build_index``:

- ``local``: the default engine, one process (torch with the machine's threads), model loaded in the run;
- ``ray, W workers``: ``RayEngine(workers=W)`` on a local Ray cluster (``ray.init(num_cpus=2)``, started
  before the timings, as a real cluster would be): W actors of 1 CPU each load the model, then split and
  embed shards; the driver merges.

For each Ray run the engine's own timings split the build into workers' start (model load), embedding and
the driver's share (ingest, merge, BM25, FAISS, save = total - start - embed). The projection for N machines
of this kind (2 workers each) is ``start + passages / (N * rate_2) + driver_seconds_per_passage * passages``:
embedding scales out, the driver's merge does not (it also holds every vector in memory).

Timings mean something only on a quiet machine: the script records the load average and other busy processes.

    python bench/ray_build.py [--corpus PATH] [--limit N] [--out DIR --name NAME]

Default corpus: the 2,067 SQuAD dev paragraphs (``../shared/eval/squad/paragraphs.jsonl``); ``--limit``
keeps the first N documents (for a smoke run). The ~32k-passage scale corpus is
``bench/.cache/scale/corpus.jsonl`` (made by bench/scale_corpus.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    REPO,
    RESULTS,
    SHARED_EVAL,
    finish_machine_info,
    log,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)

offline_env()

import numpy as np

from qa.config import DEFAULT_CONFIG
from qa.evaluate import render_table
from qa.index.build import build_index
from qa.index.load import load_index
from qa.index.ray import RayEngine, import_ray

MACHINES = (1, 2, 4, 8, 16, 32, 64)
PROJECT_PASSAGES = (40_000, 1_000_000, 10_000_000)


def _subset(corpus: Path, limit: int, workdir: Path) -> Path:
    if not limit:
        return corpus
    if corpus.is_dir():
        raise SystemExit("--limit needs a .jsonl corpus")
    out = workdir / f"{corpus.stem}-{limit}.jsonl"
    with open(corpus, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if n >= limit:
                break
            dst.write(line)
    return out


def _run(name: str, corpus: Path, index_dir: Path, engine: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    report = build_index(corpus, index_dir, DEFAULT_CONFIG, progress=False, engine=engine)
    seconds = time.perf_counter() - t0
    row: dict[str, Any] = {"config": name, "passages": report.n_passages, "seconds": round(seconds, 1),
                           "passages_per_s": round(report.n_passages / seconds, 2)}
    if isinstance(engine, RayEngine):
        start, embed = engine.timings.get("workers_ready", 0.0), engine.timings.get("embed", 0.0)
        row.update(workers=engine.stats["workers"], shards=engine.stats["shards"],
                   workers_start_s=round(start, 1), embed_s=round(embed, 1),
                   embed_passages_per_s=round(report.n_passages / embed, 2) if embed else None,
                   driver_s=round(seconds - start - embed, 1))
    log(f"{name}: {report.summary()} -> {row['passages_per_s']} passages/s")
    return row


def _agreement(local_dir: Path, other_dir: Path) -> dict[str, Any]:
    a, b = load_index(local_dir, DEFAULT_CONFIG), load_index(other_dir, DEFAULT_CONFIG)
    same = [p.passage_id for p in a.passages] == [p.passage_id for p in b.passages]
    cosine = float(np.min(np.sum(np.asarray(a.vectors) * np.asarray(b.vectors), axis=1))) if same else None
    return {"same_passage_ids_in_order": same, "min_cosine": cosine}


def _table(rows: list[dict[str, Any]], keys: list[str]) -> str:
    return render_table(keys, [[row.get(k, "") for k in keys] for row in rows])


def projection(row2: dict[str, Any]) -> list[dict[str, Any]]:
    rate = row2["embed_passages_per_s"]  # one machine, 2 workers
    driver_per_passage = row2["driver_s"] / row2["passages"]
    rows = []
    for passages in PROJECT_PASSAGES:
        for n in MACHINES:
            seconds = row2["workers_start_s"] + passages / (n * rate) + driver_per_passage * passages
            rows.append({"passages": passages, "machines": n, "hours": round(seconds / 3600, 2),
                         "passages_per_s": round(passages / seconds, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=SHARED_EVAL / "squad" / "paragraphs.jsonl")
    ap.add_argument("--limit", type=int, default=0, help="first N documents only (smoke runs)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--name", default="ray_build")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    info = machine_info()
    ray = import_ray()
    with tempfile.TemporaryDirectory(prefix="ray-bench-") as tmp:
        work = Path(tmp)
        corpus = _subset(args.corpus, args.limit, work)
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
        try:
            rows = [_run("local", corpus, work / "local", "local")]
            for workers in (1, 2):
                name = f"ray, {workers} worker{'s' * (workers > 1)}"
                rows.append(_run(name, corpus, work / f"ray{workers}", RayEngine(workers=workers)))
                rows[-1].update(_agreement(work / "local", work / f"ray{workers}"))
        finally:
            ray.shutdown()
    projected = projection(rows[-1])
    info = finish_machine_info(info, started)
    data = {"corpus": str(args.corpus), "limit": args.limit, "runs": rows, "projection": projected,
            "machine": info}
    runs_table = _table(rows, ["config", "passages", "seconds", "passages_per_s", "workers_start_s", "embed_s",
                               "embed_passages_per_s", "driver_s", "same_passage_ids_in_order", "min_cosine"])
    proj_table = _table(projected, ["passages", "machines", "hours", "passages_per_s"])
    limit = f" --limit {args.limit}" if args.limit else ""
    md = "\n\n".join([
        "# Index builds: local vs Ray (1 and 2 workers)",
        (f"Reproduce: `python bench/ray_build.py --corpus {os.path.relpath(args.corpus, REPO)}{limit}`"
        " (see its docstring). Every run builds from scratch; Ray runs on a local cluster of 2 CPUs started"
        " before the timings; `workers_start_s` is the actors' model load, `driver_s` the driver's share"
        " (ingest, merge, BM25, FAISS, save)."),
        runs_table,
        "## Projection for N machines like this one (2 workers each)",
        ("`start + passages / (N x embed rate with 2 workers) + driver seconds per passage x passages`: embedding"
        " scales out; the driver's merge (and its memory for every vector) does not. The driver's share is"
        " measured at this corpus size with qa's exact flat index; above qa.ann.FLAT_MAX_PASSAGES the merge"
        " builds HNSW, which costs more per passage (bench/results/scale.md), so large-N rows are optimistic"
        " there and assume workers scale linearly (no shared bottleneck but the driver)."),
        proj_table,
        "## Machine",
        machine_md(info),
    ])
    print(runs_table)
    print(proj_table)
    write_results(args.out, args.name, data, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
