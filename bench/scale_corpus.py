"""The real scale-test corpus, split and embedded once with qa's own pipeline; cached under bench/.cache/scale/.

Documents (ids prefixed by source so they never collide):
- ``squad-train:<n>``: the unique contexts of SQuAD v1.1 train (``../shared/train/squad_v1.1``), titled by article;
- ``squad-dev:<pid>``: the 2,067 SQuAD v1.1 dev paragraphs (``../shared/eval/squad/paragraphs.jsonl``);
- ``scifact:<_id>``: the 5,183 SciFact abstracts (``../shared/eval/scifact/corpus.jsonl``);
- ``seeds/<file>``: the seed articles.

JSONL records go through ``qa.ingest.load_jsonl`` and the seeds through ``load_folder``; passages come from
``qa.passages.split_passages`` with the default config, and vectors from ``qa.embed``'s encoder. Vectors are
written in chunks (``emb/chunk-*.npy``) with their timings, so an interrupted run resumes where it stopped.

    nice -n 10 python bench/scale_corpus.py        # prepare + embed (tens of minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import CACHE, REPO, SEEDS, SHARED_EVAL, log, offline_env

offline_env()

SHARED_TRAIN = REPO.parent / "shared" / "train" / "squad_v1.1" / "train-v1.1.reconstructed.jsonl.gz"
SCALE_CACHE = CACHE / "scale"
CHUNK = 2048  # passages per cached embedding chunk


def corpus_jsonl() -> Path:
    """Write (once) the combined JSONL of SQuAD train contexts, SQuAD dev paragraphs and SciFact abstracts."""
    out = SCALE_CACHE / "corpus.jsonl"
    if out.is_file():
        return out
    SCALE_CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    seen: set[str] = set()
    with tmp.open("w", encoding="utf-8") as f:
        with gzip.open(SHARED_TRAIN, "rt", encoding="utf-8") as src:
            for line in src:
                r = json.loads(line)
                if r["context"] in seen:
                    continue
                seen.add(r["context"])
                rec = {"id": f"squad-train:{len(seen) - 1:05d}", "title": r["title"].replace("_", " "),
                       "text": r["context"]}
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for line in (SHARED_EVAL / "squad" / "paragraphs.jsonl").open(encoding="utf-8"):
            r = json.loads(line)
            rec = {"id": f"squad-dev:{r['pid']}", "title": r["title"].replace("_", " "), "text": r["context"]}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        for line in (SHARED_EVAL / "scifact" / "corpus.jsonl").open(encoding="utf-8"):
            r = json.loads(line)
            rec = {"id": f"scifact:{r['_id']}", "title": r.get("title") or "", "text": r["text"]}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def load_documents_and_passages() -> tuple[list[Any], list[Any], dict[str, Any]]:
    """Documents and passages of the scale corpus (qa's ingest and splitter, default config)."""
    from qa.config import DEFAULT_CONFIG
    from qa.ingest import load_folder, load_jsonl
    from qa.passages import split_passages
    from qa.types import Passage

    t0 = time.perf_counter()
    docs = list(load_jsonl(corpus_jsonl(), DEFAULT_CONFIG).documents)
    docs += [dataclasses.replace(d, doc_id=f"seeds/{d.doc_id}") for d in load_folder(SEEDS, DEFAULT_CONFIG).documents]
    t1 = time.perf_counter()
    # Splitting 26k documents with pysbd takes minutes: cache the passages, keyed by corpus and split settings.
    key = hashlib.sha256(json.dumps([sorted(d.sha256 for d in docs), DEFAULT_CONFIG.index_settings()]).encode())
    cached = SCALE_CACHE / f"passages-{key.hexdigest()[:16]}.jsonl"
    if cached.is_file():
        with cached.open(encoding="utf-8") as f:
            passages = [Passage(**json.loads(line)) for line in f]
    else:
        passages = [p for d in docs for p in split_passages(d, DEFAULT_CONFIG)]
        tmp = cached.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.writelines(json.dumps(dataclasses.asdict(p), ensure_ascii=False) + "\n" for p in passages)
        tmp.replace(cached)
    t2 = time.perf_counter()
    counts = {
        "documents": len(docs),
        "passages": len(passages),
        "by_source": {src: sum(d.doc_id.startswith(src) for d in docs)
                      for src in ("squad-train:", "squad-dev:", "scifact:", "seeds/")},
        "ingest_seconds": round(t1 - t0, 1),
        "split_seconds": round(t2 - t1, 1),
    }
    log(f"scale corpus: {counts}")
    return docs, passages, counts


def _digest(passages: list[Any]) -> str:
    h = hashlib.sha256()
    for p in passages:
        h.update(f"{p.passage_id}\x00{p.title}\x00{p.text}\x01".encode())
    return h.hexdigest()[:16]


def embed_passages(passages: list[Any], encoder: Any, batch_size: int = 64) -> tuple[np.ndarray, dict[str, Any]]:
    """Vectors of all passages, embedded chunk by chunk (resumable) with ``encoder``; plus throughput."""
    directory = SCALE_CACHE / f"emb-{_digest(passages)}"
    directory.mkdir(parents=True, exist_ok=True)
    timings_path = directory / "timings.json"
    timings: dict[str, float] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    chunks = []
    for c, start in enumerate(range(0, len(passages), CHUNK)):
        path = directory / f"chunk-{c:05d}.npy"
        part = passages[start : start + CHUNK]
        if not path.is_file():
            t0 = time.perf_counter()
            vecs = encoder.encode_passages([p.title for p in part], [p.text for p in part],
                                           batch_size=batch_size, progress=False)
            timings[path.name] = time.perf_counter() - t0
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vecs, allow_pickle=False)
            tmp.replace(path)
            timings_path.write_text(json.dumps(timings, indent=1))
            done = start + len(part)
            rate = sum(len(passages[i * CHUNK:(i + 1) * CHUNK]) for i in range(c + 1)
                       if f"chunk-{i:05d}.npy" in timings) / sum(timings.values())
            eta_min = (len(passages) - done) / rate / 60
            log(f"embedded {done}/{len(passages)} passages ({rate:.1f}/s, ETA {eta_min:.1f} min)")
        chunks.append(np.load(path, allow_pickle=False))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dimension), np.float32)
    seconds = sum(timings.values())
    stats = {"seconds": round(seconds, 1), "passages_per_s": round(len(passages) / seconds, 1) if seconds else None,
             "chunks_timed": len(timings), "cache": str(directory.relative_to(REPO))}
    return vectors, stats


def embedding_stats(passages: list[Any]) -> dict[str, Any]:
    """Wall-clock throughput of the chunks embedded so far (from their recorded timings)."""
    directory = SCALE_CACHE / f"emb-{_digest(passages)}"
    path = directory / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    n = sum(len(passages[int(name[6:11]) * CHUNK:(int(name[6:11]) + 1) * CHUNK]) for name in timings)
    seconds = sum(timings.values())
    return {"passages_embedded": n, "seconds": round(seconds, 1),
            "passages_per_s": round(n / seconds, 1) if seconds else None, "of": len(passages)}


def _cached_index(name: str) -> tuple[list[Any], np.ndarray] | None:
    """Passages and vectors of another benchmark's cached qa index (bench/.cache/<name>), read-only."""
    from qa.types import Passage

    root = CACHE / name
    try:
        version = (root / "CURRENT").read_text().strip()
        manifest = json.loads((root / version / "manifest.json").read_text())
        vectors = np.load(root / version / "vectors.npy", allow_pickle=False)
        with (root / version / "passages.jsonl").open(encoding="utf-8") as f:
            passages = [Passage(**json.loads(line)) for line in f if line.strip()]
    except (OSError, ValueError, KeyError):
        return None
    if len(passages) != len(vectors) or manifest.get("model_name") != "sentence-transformers/all-MiniLM-L6-v2":
        return None
    return passages, vectors


def available_real(passages: list[Any]) -> tuple[list[Any], np.ndarray, dict[str, Any]]:
    """Every real passage that has a real fp32 vector now, without embedding anything.

    The finished chunks of this corpus's cache, plus the SQuAD dev and SciFact indexes that bench/retrieval.py
    caches (bench/.cache/squad, bench/.cache/scifact; same model and splitter; their SQuAD titles keep the
    underscores of the source, e.g. "Super_Bowl_50"). Used when the whole corpus could not be embedded in time.
    """
    directory = SCALE_CACHE / f"emb-{_digest(passages)}"
    out_p: list[Any] = []
    out_v: list[np.ndarray] = []
    sources: dict[str, int] = {}
    for c, start in enumerate(range(0, len(passages), CHUNK)):
        path = directory / f"chunk-{c:05d}.npy"
        if path.is_file():
            chunk = passages[start : start + CHUNK]
            keep = [i for i, p in enumerate(chunk) if not p.doc_id.startswith(("squad-dev:", "scifact:"))]
            part = [chunk[i] for i in keep]
            out_p += part
            out_v.append(np.load(path, allow_pickle=False)[keep])
            sources["scale chunks (squad-train)"] = sources.get("scale chunks (squad-train)", 0) + len(part)
    for name, prefix in (("squad", "squad-dev:"), ("scifact", "scifact:")):
        cached = _cached_index(name)
        if cached is None:
            continue
        ps, vs = cached
        out_p += [dataclasses.replace(p, doc_id=prefix + p.doc_id, passage_id=prefix + p.passage_id) for p in ps]
        out_v.append(vs)
        sources[f"bench/.cache/{name}"] = len(ps)
    vectors = np.ascontiguousarray(np.concatenate(out_v), dtype=np.float32)
    log(f"real vectors available: {len(out_p):,} ({sources})")
    return out_p, vectors, sources


def squad_questions(limit: int) -> list[dict[str, Any]]:
    from qa.evaluate import read_jsonl, spread

    qs = spread(read_jsonl(SHARED_EVAL / "squad" / "questions_dev.jsonl"), limit)
    return [{"question": q["question"], "gold": f"squad-dev:{q['pid']}"} for q in qs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    from qa.embed import get_encoder

    torch.set_num_threads(args.threads)
    _, passages, _counts = load_documents_and_passages()
    vectors, stats = embed_passages(passages, get_encoder())
    log(f"{vectors.shape} vectors; {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
