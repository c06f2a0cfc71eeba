"""Build cost and footprint of the benchmark indexes: build time and passages/s (from each manifest), size on
disk, time to load, and resident memory after loading and after answering one question, each index in a fresh
process. Complements retrieval.py (quality, latency), whose run built these indexes in bench/.cache/.

Usage: python bench/index_footprint.py [--names seeds,squad,scifact]
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
    CACHE,
    RESULTS,
    finish_machine_info,
    log,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)

PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
from qa.retrieve import Retriever
r = Retriever.load(sys.argv[1])
loaded = time.perf_counter() - t0
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
r.search("Which city are Assad's forces preparing to attack next?", k=10)
rss_search = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
r.ask("Which city are Assad's forces preparing to attack next?")
rss_ask = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load_s": round(loaded, 2), "peak_rss_mb_loaded": round(rss_loaded),
                  "peak_rss_mb_search": round(rss_search), "peak_rss_mb_ask": round(rss_ask)}))
"""


def footprint(index_dir: Path) -> dict:
    version = index_dir / (index_dir / "CURRENT").read_text().strip()
    manifest = json.loads((version / "manifest.json").read_text())
    passages, seconds = manifest["counts"]["passages"], manifest["build_seconds"]
    size = sum(p.stat().st_size for p in version.rglob("*") if p.is_file())
    proc = subprocess.run([sys.executable, "-c", PROBE, str(index_dir)], capture_output=True, text=True, check=True)
    return {"passages": passages, "documents": manifest["counts"]["documents"], "index_type": manifest["index_type"],
            "build_seconds": seconds, "passages_per_second": round(passages / seconds, 1) if seconds else None,
            "disk_mb": round(size / 1e6, 1), **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> int:
    offline_env()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--names", default="seeds,squad,scifact")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    info, started = machine_info(), time.perf_counter()
    rows = {}
    for name in args.names.split(","):
        log(f"{name} ...")
        rows[name] = footprint(CACHE / name)
        log(f"{name}: {rows[name]}")
    finish_machine_info(info, started)
    keys = ["documents", "passages", "index_type", "build_seconds", "passages_per_second", "disk_mb", "load_s",
            "peak_rss_mb_loaded", "peak_rss_mb_search", "peak_rss_mb_ask"]
    table = ["| index | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 1)]
    table += [f"| {n} | " + " | ".join(str(r[k]) for k in keys) + " |" for n, r in rows.items()]
    md = "\n".join([
        "# Index build cost and footprint", "", f"Command: `python bench/index_footprint.py --names {args.names}`",
        "", machine_md(info), "", *table, "",
        "- build_seconds / passages_per_second: the manifest of the build in bench/.cache (embedding with the "
        "fp32 torch encoder on 2 threads dominates; an incremental rebuild of unchanged files embeds nothing).",
        "- peak_rss_mb: peak resident memory of a fresh process after loading the index, after one search "
        "(the embedder loaded), and after one ask (the reader loaded).",
        "- Haystack's InMemoryDocumentStore keeps documents and vectors in Python objects and writes nothing to "
        "disk; retrieval.py reuses qa's vectors for it, so it has no build time of its own to compare.",
    ])
    write_results(args.out, "index_footprint", {"command": " ".join(sys.argv), "indexes": rows, "machine": info}, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
