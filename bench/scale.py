"""Scale benchmark: FAISS index kinds (qa.index.ann) from 10k real to 1M synthetic passages on this machine.

Corpus (bench/scale_corpus.py): SQuAD v1.1 train contexts + SQuAD dev paragraphs + SciFact abstracts + the seeds,
split by qa and embedded for real with qa's encoder (cached under bench/.cache/scale/).

Sizes
- ``10k``: 10,000 real passages (an even spread over the corpus); ``real``: all real passages.
- ``100k`` and ``1M``: SYNTHETIC. The real vectors plus noisy copies of randomly drawn real vectors: Gaussian
  noise, re-normalised, with a noise level chosen so that a copy's cosine to its source equals the median
  nearest-neighbour cosine of the real corpus (copies are as far from their source as real neighbours are from
  each other). Only the search side is measured on them; no text, so no BM25 and no hybrid retrieval there.

Queries: real SQuAD dev questions embedded with qa's encoder, one at a time (the query-embedding latency).

Measured for each size and index kind: build seconds, resident memory added by the index (RSS delta), index
size on disk (``faiss.write_index``), dense search latency p50/p95 per single query (k=50, qa's dense depth),
query embedding + dense search p50/p95, and recall@10 against exact search (overlap of the top-10 rows with
exact ``IndexFlatIP``'s top-10, averaged over the questions). HNSW is swept over efSearch and IVF-PQ over nprobe.
At the real sizes, full hybrid retrieval (``Retriever.search``: query embedding + dense + BM25 + RRF, no reader)
is timed with the chosen default index, and the gold SQuAD paragraph's recall@10 is compared with exact search.

    python bench/scale_corpus.py          # once: split + embed the real corpus (tens of minutes on 2 cores)
    python bench/scale.py                 # writes bench/results/scale.{json,md,png}
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    RESULTS,
    finish_machine_info,
    have_matplotlib,
    log,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)
from scale_corpus import (
    SCALE_CACHE,
    available_real,
    embed_passages,
    embedding_stats,
    load_documents_and_passages,
    squad_questions,
)

offline_env()

import faiss

from qa.embed import l2_normalise
from qa.evaluate import percentile, render_table
from qa.index import ann

DEPTH = 50  # qa's dense_depth: what Retriever.search asks FAISS for
EF_SEARCH = [16, 32, 64, 128, 256, 512, 1024]
NPROBE = (8, 16, 32, 64)
IVFFLAT_NPROBE = [16, 32, 64, 128, 256]
HNSW_BUILDS = [(ann.HNSW_M, ann.HNSW_EF_CONSTRUCTION)]  # (M, efConstruction) graphs to build; --hnsw
TARGET_RECALL = 0.95


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def median_nn_cosine(vectors: np.ndarray, sample: int = 2000, seed: int = 0) -> float:
    """Median cosine between a real vector and its nearest other real vector."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, ids = index.search(vectors[rows], 2)
    nn = np.where(ids[:, 0] == rows, scores[:, 1], scores[:, 0])
    return float(np.median(nn))


def synthetic(real: np.ndarray, size: int, cosine: float, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """``real`` followed by noisy, re-normalised copies of random real rows up to ``size`` rows.

    Noise of standard deviation s per dimension has norm about s * sqrt(d), nearly orthogonal to the unit
    source vector, so the copy's cosine to its source is about 1 / sqrt(1 + s^2 d); s is solved for ``cosine``.
    """
    n, d = real.shape
    sigma = float(np.sqrt((1 / cosine**2 - 1) / d))
    out = np.empty((size, d), dtype=np.float32)
    out[:n] = real
    rng = np.random.default_rng(seed)
    for start in range(n, size, chunk):
        stop = min(size, start + chunk)
        src = rng.integers(0, n, size=stop - start)
        out[start:stop] = l2_normalise(real[src] + rng.normal(scale=sigma, size=(stop - start, d)).astype(np.float32))
    return out


def timed_queries(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[float]]:
    """Search one query at a time (as a user does), returning the top-k rows and per-query milliseconds."""
    for q in queries[:5]:  # warm-up
        index.search(q[None, :], k)
    rows, ms = np.empty((len(queries), k), dtype=np.int64), []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        _, r = index.search(q[None, :], k)
        ms.append(1000 * (time.perf_counter() - t0))
        rows[i] = r[0]
    return rows, ms


def recall_at_10(rows: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(rows, exact, strict=True)]))


def on_disk_mb(index: faiss.Index) -> float:
    with tempfile.TemporaryDirectory(dir=SCALE_CACHE) as tmp:
        path = Path(tmp) / "index.faiss"
        faiss.write_index(index, str(path))
        return os.path.getsize(path) / 2**20


def measure_kind(kind: str, vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray,
                 embed_ms: list[float], size_label: str, synthetic_flag: bool,
                 build_params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Build one index kind over ``vectors`` and measure it at each query-time setting."""
    gc.collect()
    before = rss_mb()
    t0 = time.perf_counter()
    index = ann.make_index(vectors, kind, **(build_params or {}))  # type: ignore[arg-type]
    build_s = time.perf_counter() - t0
    gc.collect()
    rss_delta = rss_mb() - before
    disk = on_disk_mb(index)
    base = {"size": size_label, "n": len(vectors), "synthetic": synthetic_flag, "kind": kind,
            "build_s": round(build_s, 2), "rss_delta_mb": round(rss_delta, 1), "disk_mb": round(disk, 1)}
    settings: list[dict[str, int]] = [{}]
    if kind == "hnsw":
        settings = [{"efSearch": ef} for ef in EF_SEARCH]
    elif kind == "ivfpq":
        settings = [{"nprobe": p} for p in NPROBE]
    elif kind == "ivfflat":
        settings = [{"nprobe": p} for p in IVFFLAT_NPROBE]
    out = []
    for params in settings:
        ann.configure(index, params)
        rows, ms = timed_queries(index, queries, DEPTH)
        total = [a + b for a, b in zip(embed_ms, ms, strict=True)]
        row = {**base, "load1": round(os.getloadavg()[0], 2), "params": ann.describe(index)["params"],
               "embed_p50_ms": round(percentile(embed_ms, 50), 2),
               "search_p50_ms": round(percentile(ms, 50), 2), "search_p95_ms": round(percentile(ms, 95), 2),
               "dense_p50_ms": round(percentile(total, 50), 2), "dense_p95_ms": round(percentile(total, 95), 2),
               "recall@10": round(recall_at_10(rows, exact), 4)}
        log(f"  {size_label:>5s} {kind:6s} {row['params']} build {build_s:.1f} s, +{rss_delta:.0f} MB RSS, "
            f"{disk:.0f} MB disk, search p50 {row['search_p50_ms']} ms, recall@10 {row['recall@10']}")
        out.append(row)
    del index
    gc.collect()
    return out


def hybrid_latency(passages: list[Any], vectors: np.ndarray, questions: list[dict[str, Any]], encoder: Any,
                   size_label: str) -> dict[str, Any]:
    """Full hybrid retrieval (no reader) through qa.retrieve.Retriever over an in-memory store."""
    from qa.config import DEFAULT_CONFIG
    from qa.index.lexical import LexicalIndex
    from qa.index.load import IndexStore
    from qa.retrieve import Retriever

    t0 = time.perf_counter()
    lexical = LexicalIndex.build([f"{p.title}. {p.text}" for p in passages])
    bm25_s = time.perf_counter() - t0
    out: dict[str, Any] = {"size": size_label, "n": len(passages), "bm25_build_s": round(bm25_s, 1),
                           "load1": round(os.getloadavg()[0], 2)}
    for kind in ("flat", "auto-default"):
        index = ann.make_index(vectors, "flat" if kind == "flat" else "hnsw")
        store = IndexStore(Path("."), "bench", {"model_name": encoder.model_name}, passages, {}, index, vectors,
                           lexical)
        retriever = Retriever(store, DEFAULT_CONFIG, encoder=encoder, reader=None)
        for q in questions[:3]:
            retriever.search(q["question"], k=10)
        ms, hits10 = [], []
        for q in questions:
            t = time.perf_counter()
            hits = retriever.search(q["question"], k=10, mode="hybrid")
            ms.append(1000 * (time.perf_counter() - t))
            hits10.append(any(h.passage.doc_id == q["gold"] for h in hits))
        name = "flat" if kind == "flat" else f"hnsw {ann.describe(index)['params']}"
        out[name] = {"p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
                     "gold_recall@10": round(float(np.mean(hits10)), 4)}
        log(f"  hybrid {size_label} {name}: {out[name]}")
    return out


def bm25_proxy(passages: list[Any], n: int) -> Any:
    """BM25 over the real passages repeated up to ``n`` rows (cached): a LATENCY proxy for BM25 at ``n``.

    Synthetic sizes have no text; repeating the real passages gives postings lists as long as a real corpus
    of ``n`` passages would have for the same words (its term statistics are those of duplicates, so only
    its cost is meaningful, not its ranking).
    """
    import bm25s

    from qa.index.lexical import LexicalIndex, tokenize

    directory = SCALE_CACHE / f"bm25-proxy-{n}"
    if (directory / "qa_lexical.json").is_file():
        return LexicalIndex.load(directory, mmap=True)
    t0 = time.perf_counter()
    tokens = [tokenize(f"{p.title}. {p.text}") for p in passages]
    bm25 = bm25s.BM25(method="lucene", idf_method="lucene")
    bm25.index([tokens[i % len(tokens)] for i in range(n)], show_progress=False)
    LexicalIndex(bm25, n).save(directory)
    log(f"  BM25 proxy over {n:,} rows built in {time.perf_counter() - t0:.0f} s")
    return LexicalIndex.load(directory, mmap=True)


def hybrid_latency_proxy(passages: list[Any], vectors: np.ndarray, questions: list[dict[str, Any]], encoder: Any,
                         size_label: str) -> dict[str, Any]:
    """``Retriever.search`` latency at a synthetic size: the real query embedding, dense search over the
    synthetic vectors with the index qa's ``auto`` picks, BM25 over :func:`bm25_proxy`, and RRF fusion.

    Rows are paired with repeated real passages only so that hits have a Passage: latency, not quality.
    """
    from qa.config import DEFAULT_CONFIG
    from qa.index.load import IndexStore
    from qa.retrieve import Retriever

    n = len(vectors)
    lexical = bm25_proxy(passages, n)
    rows = [passages[i % len(passages)] for i in range(n)]
    t0 = time.perf_counter()
    index = ann.make_index(vectors, "auto")
    build_s = time.perf_counter() - t0
    store = IndexStore(Path("."), "bench", {"model_name": encoder.model_name}, rows, {}, index, vectors, lexical)
    retriever = Retriever(store, DEFAULT_CONFIG, encoder=encoder, reader=None)
    for q in questions[:3]:
        retriever.search(q["question"], k=10)
    ms = []
    for q in questions:
        t = time.perf_counter()
        retriever.search(q["question"], k=10, mode="hybrid")
        ms.append(1000 * (time.perf_counter() - t))
    sparse_ms = []
    for q in questions:
        t = time.perf_counter()
        lexical.search(q["question"], DEFAULT_CONFIG.sparse_depth)
        sparse_ms.append(1000 * (time.perf_counter() - t))
    described = ann.describe(index)
    name = f"{described['index_type']} {described['params']} + BM25 proxy"
    out = {"size": size_label, "n": n, "proxy": True, "load1": round(os.getloadavg()[0], 2),
           "auto_index_build_s": round(build_s, 1),
           name: {"p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
                  "bm25_p50_ms": round(percentile(sparse_ms, 50), 1),
                  "bm25_p95_ms": round(percentile(sparse_ms, 95), 1), "gold_recall@10": None}}
    log(f"  hybrid (proxy) {size_label} {name}: {out[name]}")
    return out


def _same_build(row: dict[str, Any], size: str, kind: str, build: dict[str, Any]) -> bool:
    """Whether ``row`` was measured on the index that ``build`` (make_index keywords) makes at ``size``."""
    p = row["params"]
    return (row["size"] == size and row["kind"] == kind and p.get("M") == build.get("hnsw_m", p.get("M"))
            and p.get("efConstruction") == build.get("ef_construction", p.get("efConstruction"))
            and p.get("nlist") == build.get("nlist", p.get("nlist")))


def pick_defaults(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per index kind and size: the smallest efSearch / nprobe measured with recall@10 >= TARGET_RECALL
    (None when no measured setting reaches it)."""
    picks: dict[str, Any] = {}
    for kind, key in (("hnsw", "efSearch"), ("ivfflat", "nprobe"), ("ivfpq", "nprobe")):
        by_size: dict[str, Any] = {}
        for r in rows:
            if r["kind"] != kind:
                continue
            label = r["size"] + (f" M={r['params']['M']}" if kind == "hnsw" and r["params"]["M"] != ann.HNSW_M else "")
            ok = r["recall@10"] >= TARGET_RECALL
            best = by_size.get(label)
            if ok and (best is None or r["params"][key] < best):
                by_size[label] = r["params"][key]
            else:
                by_size.setdefault(label, None)
        if by_size:
            picks[kind] = {key: by_size}
    return picks


def write_plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [r for r in rows if r["kind"] == "flat"
              or (r["kind"] == "hnsw" and r["params"]["efSearch"] == ann.HNSW_EF_SEARCH)
              or (r["kind"] == "ivfpq" and r["params"]["nprobe"] == ann.IVFPQ_NPROBE)
              or (r["kind"] == "ivfflat" and r["params"]["nprobe"] == ann.IVFFLAT_NPROBE)]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    panels = (("search_p50_ms", "dense search p50 (ms, one query)"), ("recall@10", "recall@10 vs exact"),
              ("build_s", "build time (s)"), ("disk_mb", "index size on disk (MB)"))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for kind, marker in (("flat", "o"), ("hnsw", "s"), ("ivfflat", "D"), ("ivfpq", "^")):
            pts = sorted((r["n"], r[key]) for r in chosen if r["kind"] == kind
                         and r["params"].get("M", ann.HNSW_M) == ann.HNSW_M)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker=marker, label=kind)
        ax.set_xscale("log")
        if key != "recall@10":
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("passages (100k and 1M synthetic)")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"qa.ann on this machine: flat, HNSW (efSearch={ann.HNSW_EF_SEARCH}), "
                 f"IVF-Flat (nprobe={ann.IVFFLAT_NPROBE}), IVF-PQ (nprobe={ann.IVFPQ_NPROBE})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"wrote {path}")


def render(data: dict[str, Any]) -> str:
    c, e, rv = data["corpus"], data["embedding"], data["real_vectors"]
    lines = [
        "# Scale: index kinds from 10k real to 1M synthetic passages",
        "",
        ("Reproduce: `python bench/scale_corpus.py && python bench/scale.py` (see the docstring of bench/scale.py); "
         f"the last run was `{data.get('command', 'python bench/scale.py')}` (--resume keeps rows of earlier runs; "
         "the load column is the 1-minute load average when a row was measured)."),
        "",
        (f"Real corpus: {c['documents']:,} documents ({c['by_source']}) split by qa into {c['passages']:,} "
         f"passages, {e['passages_embedded']:,} of them embedded for real (bench/scale_corpus.py, over several "
         f"sessions and mostly on a shared CPU, {e['passages_per_s']} passages/s wall on average: not the "
         "machine's throughput, see embed_speed.md and index_footprint.md). "
         f"**Real vectors used: {rv['n']:,}** ({rv['sources']})"
         + ("; the whole corpus was not embedded, so the real sizes here are this subset. "
            if rv["n"] < c["passages"] else ". ") +
         f"**100k and 1M are synthetic**: the real vectors plus noisy copies (noise sigma "
         f"{data['synthetic']['sigma']:.4f}/dim, cosine to source {data['synthetic']['cosine_to_source']:.3f} = "
         "median real nearest-neighbour cosine)."),
        (f"Queries: {data['n_queries']} real SQuAD dev questions, one at a time; query embedding p50 "
        f"{data['query_embed_ms']['p50']} ms / p95 {data['query_embed_ms']['p95']} ms (torch fp32). "
        f"Recall@10 is the overlap with exact search's top 10. Search asks for k={DEPTH} (qa's dense depth)."),
        "",
        "## Dense search by size and index kind",
        "",
    ]
    header = ["size", "n", "kind", "params", "build s", "RSS +MB", "disk MB", "search p50/p95 ms",
              "embed+search p50/p95 ms", "recall@10", "load"]
    table = [[r["size"] + (" (syn)" if r["synthetic"] else ""), f"{r['n']:,}", r["kind"],
              ", ".join(f"{k}={v}" for k, v in r["params"].items()
                        if k in ("efSearch", "nprobe", "nlist") or (k in ("M", "efConstruction") and r["params"].get(k)
                                                                     not in (32, 80))) or "-",
              r["build_s"], r["rss_delta_mb"], r["disk_mb"], f"{r['search_p50_ms']} / {r['search_p95_ms']}",
              f"{r['dense_p50_ms']} / {r['dense_p95_ms']}", r["recall@10"], r.get("load1", "7-12")]
             for r in data["rows"]]
    lines.append(render_table(header, table))
    if data.get("hybrid"):
        lines += ["", ("## Full hybrid retrieval (Retriever.search: embed + dense + BM25 + RRF, no reader; "
                  "at 1M with a BM25 latency proxy, see bm25_proxy in bench/scale.py)"), ""]
        rows = []
        for h in data["hybrid"]:
            for name, v in h.items():
                if isinstance(v, dict):
                    size = h["size"] + (" (syn, BM25 proxy)" if h.get("proxy") else "")
                    recall = v["gold_recall@10"] if v["gold_recall@10"] is not None else "- (latency only)"
                    rows.append([size, f"{h['n']:,}", name, v["p50_ms"], v["p95_ms"], recall,
                                 h.get("load1", "-")])
        lines.append(render_table(["size", "n", "dense index", "p50 ms", "p95 ms", "gold paragraph recall@10",
                                   "load"], rows))
    lines += ["", "## Defaults", "", (f"Smallest setting measured with recall@10 >= {TARGET_RECALL}, by size: "
              f"{data['picks']}. qa.ann's auto kind: exact flat up to {ann.FLAT_MAX_PASSAGES:,} passages, HNSW "
              f"(M={ann.HNSW_M}, efSearch={ann.HNSW_EF_SEARCH}) up to {ann.IVFFLAT_MIN_PASSAGES:,}, IVF-Flat "
              f"(nlist ~ sqrt(n), nprobe={ann.IVFFLAT_NPROBE}) above; IVF-PQ (nprobe={ann.IVFPQ_NPROBE}) on request."),
              "", "## Machine", "", machine_md(data["machine"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,real,100k,1M")
    parser.add_argument("--kinds", default="flat,hnsw,ivfpq")
    parser.add_argument("--queries", type=int, default=1000, help="SQuAD dev questions (spread over articles)")
    parser.add_argument("--hybrid-queries", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--ef", default=",".join(map(str, EF_SEARCH)), help="HNSW efSearch values to sweep")
    parser.add_argument("--resume", action="store_true", help="keep rows measured by an earlier run")
    parser.add_argument("--hnsw", default=f"{ann.HNSW_M}x{ann.HNSW_EF_CONSTRUCTION}",
                        help="HNSW graphs to build, as MxefConstruction, e.g. 32x80,48x200")
    parser.add_argument("--ivf-nprobe", default=",".join(map(str, IVFFLAT_NPROBE)),
                        help="IVF-Flat nprobe values to sweep")
    parser.add_argument("--ivf-nlist", type=int, default=None, help="IVF-Flat cells (default: qa.index.ann's)")
    parser.add_argument("--max-real", type=int, default=None,
                        help="use only the first N real vectors (8485 = the set of the first 1M runs)")
    parser.add_argument("--render-only", action="store_true",
                        help="re-render scale.md/png from scale.json (+ scale-notes.md) without measuring")
    parser.add_argument("--hybrid-proxy", action="store_true",
                        help="at synthetic sizes, also time Retriever.search with a BM25 latency proxy")
    parser.add_argument("--embed-all", action="store_true",
                        help="embed the whole corpus first (default: use the real vectors already cached)")
    args = parser.parse_args(argv)
    if args.render_only:  # after a change to the tables: the measurements of the last run, rendered again
        data = json.loads((args.out / "scale.json").read_text())
        data["picks"] = pick_defaults(data["rows"])
        write_results(args.out, "scale", data, render(data) + (args.out / "scale-notes.md").read_text()
                      if (args.out / "scale-notes.md").is_file() else render(data))
        if have_matplotlib():
            write_plot(data["rows"], args.out / "scale.png")
        return 0
    started = time.perf_counter()
    EF_SEARCH[:] = [int(x) for x in args.ef.split(",")]
    IVFFLAT_NPROBE[:] = [int(x) for x in args.ivf_nprobe.split(",")]
    HNSW_BUILDS[:] = [(int(m), int(efc)) for m, efc in (x.split("x") for x in args.hnsw.split(","))]
    info = machine_info()
    import torch

    from qa.embed import get_encoder

    torch.set_num_threads(2)
    encoder = get_encoder()
    _, all_passages, counts = load_documents_and_passages()
    embed_stats = embedding_stats(all_passages)
    if args.embed_all:
        real, _ = embed_passages(all_passages, encoder)
        passages, sources = all_passages, {"scale corpus (all)": len(all_passages)}
    else:
        passages, real, sources = available_real(all_passages)
    if args.max_real and args.max_real < len(real):
        passages, real = passages[: args.max_real], np.ascontiguousarray(real[: args.max_real])
        left, kept = args.max_real, {}
        for name, count in sources.items():  # available_real concatenates the sources in this order
            if left > 0:
                kept[name] = min(count, left)
                left -= kept[name]
        sources = kept

    questions = squad_questions(args.queries)
    for q in questions[:5]:
        encoder.encode_queries([q["question"]])
    embed_ms, qvecs = [], []
    for q in questions:
        t0 = time.perf_counter()
        qvecs.append(encoder.encode_queries([q["question"]])[0])
        embed_ms.append(1000 * (time.perf_counter() - t0))
    queries = np.stack(qvecs)
    log(f"query embedding p50 {percentile(embed_ms, 50):.1f} ms")

    cosine = median_nn_cosine(real)
    sigma = float(np.sqrt((1 / cosine**2 - 1) / real.shape[1]))
    sizes = {"10k": 10_000, "real": len(real), "100k": 100_000, "1M": 1_000_000}
    # Trial runs (--out elsewhere) keep their rows apart from the committed run's.
    partial_path = SCALE_CACHE / "scale-partial.json" if args.out == RESULTS else args.out / "scale-partial.json"
    partial_path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(partial_path.read_text()) if args.resume and partial_path.is_file() else {}
    kinds = args.kinds.split(",")
    rows: list[dict[str, Any]] = previous.get("rows", [])
    hybrid: list[dict[str, Any]] = previous.get("hybrid", [])
    for label in args.sizes.split(","):
        n = sizes[label]
        if n > len(real) and label in ("10k", "real"):
            log(f"skipping {label}: only {len(real):,} real vectors")
            continue
        if n <= len(real):
            pick = np.linspace(0, len(real) - 1, n).astype(int) if n < len(real) else np.arange(len(real))
            vectors, syn = np.ascontiguousarray(real[pick]), False
        else:
            vectors, syn = synthetic(real, n, cosine), True
        log(f"size {label}: {len(vectors):,} vectors{' (synthetic)' if syn else ''}")
        exact_index = faiss.IndexFlatIP(vectors.shape[1])
        exact_index.add(vectors)
        _, exact = exact_index.search(queries, 10)
        del exact_index
        for kind in kinds:
            if kind.startswith("ivf") and n < 10_000:
                continue
            builds: list[dict[str, Any]] = [{}]
            if kind == "hnsw":
                builds = [{"hnsw_m": m, "ef_construction": efc} for m, efc in HNSW_BUILDS]
            elif kind == "ivfflat" and args.ivf_nlist:
                builds = [{"nlist": args.ivf_nlist}]
            for build in builds:
                rows = [r for r in rows if not _same_build(r, label, kind, build)]
                rows.extend(measure_kind(kind, vectors, queries, exact, embed_ms, label, syn, build))
                partial_path.write_text(json.dumps({"rows": rows, "hybrid": hybrid}, indent=1))
        if syn and args.hybrid_proxy and args.hybrid_queries:
            hybrid = [h for h in hybrid if h["size"] != label]
            hybrid.append(hybrid_latency_proxy(all_passages, vectors, questions[: args.hybrid_queries], encoder,
                                               label))
            partial_path.write_text(json.dumps({"rows": rows, "hybrid": hybrid}, indent=1))
        if not syn and args.hybrid_queries:
            hybrid = [h for h in hybrid if h["size"] != label]
            hybrid.append(hybrid_latency([passages[i] for i in pick], vectors,
                                         questions[: args.hybrid_queries], encoder, label))
            partial_path.write_text(json.dumps({"rows": rows, "hybrid": hybrid}, indent=1))
        del vectors
        gc.collect()
    order = {k: i for i, k in enumerate(sizes)}
    rows.sort(key=lambda r: (order[r["size"]], ("flat", "hnsw", "ivfflat", "ivfpq").index(r["kind"]),
                             r["params"].get("M", 0), r["params"].get("efConstruction", 0)))

    data = {
        "command": "python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": encoder.model_name,
        "corpus": counts,
        "real_vectors": {"n": len(real), "sources": sources},
        "embedding": embed_stats,
        "synthetic": {"cosine_to_source": round(cosine, 4), "sigma": round(sigma, 5)},
        "n_queries": len(questions),
        "query_embed_ms": {"p50": round(percentile(embed_ms, 50), 2), "p95": round(percentile(embed_ms, 95), 2)},
        "defaults": {"flat_max": ann.FLAT_MAX_PASSAGES, "hnsw": {"M": ann.HNSW_M, "efConstruction":
                     ann.HNSW_EF_CONSTRUCTION, "efSearch": ann.HNSW_EF_SEARCH},
                     "ivfpq": {"pq_m": ann.IVFPQ_M, "nprobe": ann.IVFPQ_NPROBE}},
        "picks": pick_defaults(rows),
        "rows": rows,
        "hybrid": hybrid,
        "machine": finish_machine_info(info, started),
    }
    write_results(args.out, "scale", data, render(data))
    if have_matplotlib():
        write_plot(rows, args.out / "scale.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
