"""Evaluation behind `qa eval`: the seeds gold set, SQuAD open retrieval + answers, and BEIR (SciFact).

Every metric follows ../shared/eval/README.md and is built on qa.metrics (SQuAD normalisation, token F1,
containment, recall/MRR/nDCG). Fractions are in [0, 1]; a metric that is undefined for a subset (e.g.
``abstain_accuracy`` on factoid questions) is ``None`` (JSON null). Latencies are wall-clock milliseconds of
one ``Retriever.ask`` (or ``search`` for BEIR) call per question, so they include query embedding; one
untimed warm-up call first loads the models.

Results are plain dicts (JSON-ready)::

    {"dataset": ..., "meta": {...}, "overall": {"n": ..., metric: value, ...}, "questions": [...], ...}

Seeds results also have ``by_kind`` and ``failures``. ``format_table`` renders any of them as text.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.metrics import best_f1, contains_answer, exact_match, hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from qa.retrieve import MODES, Mode, Retriever
from qa.types import Answer, Hit, Response

log = logging.getLogger(__name__)

ANSWERABLE = ("card", "factoid", "paraphrase", "conflict")
MUST_ABSTAIN = ("none", "boilerplate")
SEED_KINDS = (*ANSWERABLE, *MUST_ABSTAIN)
SEED_METRICS = (
    "answer@1", "f1@1", "answer@3", "source@1", "recall@5",
    "abstain_accuracy", "false_abstain", "conflict_all_sides",
)
SQUAD_RECALL_KS = (1, 5, 20)
BEIR_PASSAGE_DEPTH = 300  # passages retrieved per query, deduplicated to >= 100 documents for recall@100
# The 24 seeds dev questions, kept in the repository (a byte-identical copy of ../shared/eval/seeds_qa_dev.jsonl)
# so that `qa eval` and the tests work in a clone without ../shared. Relative, like the CLI's seeds/ and index/.
DEFAULT_GOLD = Path("eval") / "seeds_qa_dev.jsonl"


# ----------------------------------------------------------------------------------------- small helpers


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file (blank lines skipped)."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def spread(items: Sequence[Any], limit: int) -> list[Any]:
    """``limit`` items evenly spaced over ``items`` (all when limit <= 0), so a subset covers every article."""
    if limit <= 0 or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation, as numpy), or None for no values."""
    return float(np.percentile(values, q)) if len(values) else None


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the defined values, or None when there are none."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def dedupe_docs(hits: Sequence[Hit]) -> list[str]:
    """Document ids in rank order, each kept at its best (first) passage."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.passage.doc_id, None)
    return list(seen)


def with_mode(retriever: Retriever, mode: Mode = "hybrid", **overrides: Any) -> Retriever:
    """A Retriever over the same index whose ``search`` (and so ``ask``) uses ``mode``; config fields may be
    overridden (e.g. ``dense_depth=300``). Models are shared: ``get_encoder``/``load_reader`` cache them.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    config = retriever.config.with_overrides(**overrides)
    if mode == "hybrid" and config == retriever.config and not isinstance(retriever, FixedModeRetriever):
        return retriever
    return FixedModeRetriever(retriever.store, config, mode=mode)


class FixedModeRetriever(Retriever):
    """A Retriever whose default retrieval mode is fixed, for ablations (BM25-only / dense-only answers)."""

    def __init__(self, *args: Any, mode: Mode = "hybrid", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode

    def search(self, question: str, k: int = 10, mode: Mode | None = None) -> list[Hit]:
        return super().search(question, k, mode or self.mode)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, 1000 * (time.perf_counter() - t0)


def _latency(ms: Sequence[float]) -> dict[str, float | None]:
    p50, p95 = percentile(ms, 50), percentile(ms, 95)
    return {
        "latency_ms_p50": None if p50 is None else round(p50, 1),
        "latency_ms_p95": None if p95 is None else round(p95, 1),
    }


# ----------------------------------------------------------------------------------------------- seeds


def side_covered(answers: Sequence[Answer], side: dict[str, Any]) -> bool:
    """One conflict side is shown: some answer contains one of its answers and cites one of its files."""
    docs = set(side["docs"])
    return any(
        contains_answer(a.text, side["answers"]) and any(s.doc_id in docs for s in a.sources) for a in answers
    )


def score_seed(res: Response, gold: dict[str, Any]) -> dict[str, float | bool | None]:
    """Per-question flags for one seeds question (README definitions); None where a metric does not apply.

    ``answer@1``/``f1@1``/``answer@3``/``source@1``/``recall@5``/``false_abstain`` apply to answerable
    kinds, ``abstain_accuracy`` to none/boilerplate, ``conflict_all_sides`` to conflict questions.
    An abstention is a miss for every answer metric (its ``res.answers`` is empty).
    """
    kind = gold["kind"]
    if kind not in SEED_KINDS:
        raise ValueError(f"Unknown question kind {kind!r} in {gold.get('id')}: expected one of {SEED_KINDS}")
    flags: dict[str, float | bool | None] = dict.fromkeys(SEED_METRICS)
    answers = [] if res.abstained else list(res.answers)
    if kind in MUST_ABSTAIN:
        flags["abstain_accuracy"] = res.abstained
        return flags
    golds, gold_docs = gold["answers"], set(gold["docs"])
    top = answers[0] if answers else None
    flags["answer@1"] = top is not None and contains_answer(top.text, golds)
    flags["f1@1"] = best_f1(top.text, golds) if top is not None else 0.0
    flags["answer@3"] = any(contains_answer(a.text, golds) for a in answers[:3])
    flags["source@1"] = top is not None and any(s.doc_id in gold_docs for s in top.sources)
    flags["recall@5"] = any(h.passage.doc_id in gold_docs for h in res.passages[:5])
    flags["false_abstain"] = res.abstained
    if kind == "conflict":
        sides = gold.get("sides") or []
        flags["conflict_all_sides"] = bool(sides) and all(side_covered(answers, s) for s in sides)
    return flags


def summarize_seeds(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate per-question rows (each with the SEED_METRICS flags and ``latency_ms``)."""
    out: dict[str, Any] = {"n": len(rows)}
    for metric in SEED_METRICS:
        value = mean(r[metric] for r in rows)
        out[metric] = None if value is None else round(value, 4)
    out.update(_latency([r["latency_ms"] for r in rows]))
    return out


def _seed_problems(flags: dict[str, Any], res: Response, gold: dict[str, Any]) -> list[str]:
    top = res.answers[0].text if res.answers and not res.abstained else None
    if gold["kind"] in MUST_ABSTAIN:
        return [] if flags["abstain_accuracy"] else [f"answered {top!r} instead of abstaining"]
    problems = []
    if flags["false_abstain"]:
        problems.append("abstained on an answerable question")
    elif not flags["answer@1"]:
        problems.append(f"top answer {top!r} contains none of {gold['answers']}")
    if top is not None and not flags["source@1"]:
        problems.append("top answer cites no gold file")
    if not flags["recall@5"]:
        problems.append(f"no gold file {gold['docs']} among the top 5 passages")
    if flags["conflict_all_sides"] is False:
        problems.append("not every side of the conflict is shown with its source")
    return problems


def evaluate_seeds(retriever: Retriever, gold_path: str | Path, k: int = 3) -> dict[str, Any]:
    """Ask every seeds question and score it (README metrics), overall and per kind."""
    golds = read_jsonl(gold_path)
    rows, failures = [], []
    if golds:
        retriever.ask(golds[0]["question"], k=k)  # untimed warm-up: loads the embedder and the reader
    for gold in golds:
        res, ms = _timed(lambda g=gold: retriever.ask(g["question"], k=k))
        flags = score_seed(res, gold)
        top = res.answers[0] if res.answers and not res.abstained else None
        rows.append({
            "id": gold.get("id"),
            "kind": gold["kind"],
            "question": gold["question"],
            "answer": top.text if top else None,
            "confidence": top.confidence if top else None,
            "abstained": res.abstained,
            "conflict": res.conflict,
            "answers": [a.text for a in res.answers],
            "sources": sorted({s.doc_id for s in top.sources}) if top else [],
            "passages": [h.passage.doc_id for h in res.passages[:5]],
            "gold_answers": gold["answers"],
            "gold_docs": gold["docs"],
            **flags,
            "latency_ms": round(ms, 1),
        })
        problems = _seed_problems(flags, res, gold)
        if problems:
            failures.append({"id": gold.get("id"), "kind": gold["kind"], "question": gold["question"],
                             "answer": rows[-1]["answer"], "problems": problems})
    by_kind = {kind: summarize_seeds([r for r in rows if r["kind"] == kind])
               for kind in SEED_KINDS if any(r["kind"] == kind for r in rows)}
    answerable = [r for r in rows if r["kind"] in ANSWERABLE]
    return {
        "dataset": "seeds",
        "meta": _meta(retriever, gold=str(gold_path), k=k, mode=getattr(retriever, "mode", "hybrid")),
        "overall": summarize_seeds(rows),
        "answerable": summarize_seeds(answerable),
        "by_kind": by_kind,
        "questions": rows,
        "failures": failures,
    }


# ----------------------------------------------------------------------------------------------- SQuAD


def evaluate_squad(
    retriever: Retriever,
    questions_path: str | Path,
    limit: int = 0,
    k: int = 3,
    mode: Mode = "hybrid",
    answers: bool = True,
) -> dict[str, Any]:
    """SQuAD open setting over an index of all paragraphs (doc_id = pid).

    Retrieval: recall@1/5/20 (a top-k passage comes from the gold paragraph) and MRR@10 over passages.
    Answers (``answers=True``): ``ask`` with passages from ``mode``; EM/F1 of the top answer, best over the
    gold answers, an abstention scoring 0; also EM/F1 over answered questions and the abstain rate.
    ``limit`` takes that many questions evenly spread over the file.
    """
    questions = spread(read_jsonl(questions_path), limit)
    r = with_mode(retriever, mode)
    depth = max(SQUAD_RECALL_KS)
    rows = []
    if questions:  # untimed warm-up: loads the models
        r.search(questions[0]["question"], k=depth)
        if answers:
            r.ask(questions[0]["question"], k=k)
    for q in questions:
        hits, search_ms = _timed(lambda q=q: r.search(q["question"], k=depth))
        ranked = [h.passage.doc_id for h in hits]
        gold = {q["pid"]}
        row: dict[str, Any] = {"id": q.get("id"), "question": q["question"], "pid": q["pid"],
                               "gold_rank": ranked.index(q["pid"]) + 1 if q["pid"] in ranked else None,
                               **{f"recall@{n}": hit_at_k(ranked, gold, n) for n in SQUAD_RECALL_KS},
                               "mrr@10": mrr_at_k(ranked, gold, 10), "search_ms": round(search_ms, 1)}
        if answers:
            res, ms = _timed(lambda q=q: r.ask(q["question"], k=k))
            pred = res.answers[0].text if res.answers and not res.abstained else None
            row.update({
                "answer": pred,
                "confidence": res.answers[0].confidence if pred is not None else None,
                "abstained": res.abstained,
                "em": exact_match(pred, q["answers"]) if pred is not None else 0.0,
                "f1": best_f1(pred, q["answers"]) if pred is not None else 0.0,
                "gold_answers": q["answers"],
                "latency_ms": round(ms, 1),
            })
        rows.append(row)

    overall: dict[str, Any] = {"n": len(rows)}
    for key in (*(f"recall@{n}" for n in SQUAD_RECALL_KS), "mrr@10"):
        overall[key] = _round(mean(r_[key] for r_ in rows))
    if answers:
        answered = [r_ for r_ in rows if not r_["abstained"]]
        overall.update({
            "em": _round(mean(r_["em"] for r_ in rows)),
            "f1": _round(mean(r_["f1"] for r_ in rows)),
            "em_answered": _round(mean(r_["em"] for r_ in answered)),
            "f1_answered": _round(mean(r_["f1"] for r_ in answered)),
            "abstain_rate": _round(mean(r_["abstained"] for r_ in rows)),
            **_latency([r_["latency_ms"] for r_ in rows]),
        })
    search = _latency([r_["search_ms"] for r_ in rows])
    overall["search_ms_p50"], overall["search_ms_p95"] = search["latency_ms_p50"], search["latency_ms_p95"]
    return {
        "dataset": "squad",
        "meta": _meta(r, questions=str(questions_path), limit=limit, k=k, mode=mode),
        "overall": overall,
        "questions": rows,
    }


# ------------------------------------------------------------------------------------------------ BEIR


def read_qrels(path: str | Path) -> dict[str, dict[str, float]]:
    """BEIR qrels TSV (query-id, corpus-id, score; header optional) -> {query: {doc: gain}}, gain > 0 only."""
    qrels: dict[str, dict[str, float]] = {}
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or (n == 0 and parts[0] == "query-id"):
                continue
            query, doc, score = parts[0], parts[1], float(parts[2])
            if score > 0:
                qrels.setdefault(query, {})[doc] = score
    return qrels


def beir_queries(corpus_dir: str | Path, qrels: dict[str, dict[str, float]], limit: int = 0) -> list[dict]:
    """Queries of ``corpus_dir``/queries.jsonl that have judgements, in file order (spread by ``limit``)."""
    records = read_jsonl(Path(corpus_dir) / "queries.jsonl")
    return spread([q for q in records if str(q["_id"]) in qrels], limit)


def evaluate_beir(
    retriever: Retriever,
    corpus_dir: str | Path,
    qrels_path: str | Path,
    limit: int = 0,
    mode: Mode = "hybrid",
    depth: int = BEIR_PASSAGE_DEPTH,
) -> dict[str, Any]:
    """nDCG@10 and recall@100 over documents (BEIR definitions) for queries with judgements.

    ``depth`` passages are retrieved per query and deduplicated to their documents (best rank kept); the
    hybrid fusion takes ``depth`` candidates from each retriever too, so recall@100 is not capped by the
    default fusion depth.
    """
    qrels = read_qrels(qrels_path)
    queries = beir_queries(corpus_dir, qrels, limit)
    r = with_mode(retriever, mode, dense_depth=depth, sparse_depth=depth)
    rows = []
    if queries:
        r.search(queries[0]["text"], k=depth)  # untimed warm-up: loads the embedder
    for q in queries:
        qid = str(q["_id"])
        hits, ms = _timed(lambda q=q: r.search(q["text"], k=depth))
        ranked = dedupe_docs(hits)
        gains = qrels[qid]
        rows.append({
            "id": qid, "query": q["text"], "n_relevant": len(gains),
            "ndcg@10": ndcg_at_k(ranked, gains, 10),
            "recall@100": recall_at_k(ranked, set(gains), 100),
            "top10": ranked[:10],
            "latency_ms": round(ms, 1),
        })
    overall: dict[str, Any] = {"n": len(rows)}
    overall["ndcg@10"] = _round(mean(r_["ndcg@10"] for r_ in rows))
    overall["recall@100"] = _round(mean(r_["recall@100"] for r_ in rows))
    overall.update(_latency([r_["latency_ms"] for r_ in rows]))
    return {
        "dataset": Path(corpus_dir).name or "beir",
        "meta": _meta(r, corpus=str(corpus_dir), qrels=str(qrels_path), limit=limit, mode=mode,
                      passage_depth=depth),
        "overall": overall,
        "questions": rows,
    }


# ---------------------------------------------------------------------------------------------- output


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _meta(retriever: Retriever, **extra: Any) -> dict[str, Any]:
    store = retriever.store
    cfg = retriever.config
    return {
        "index": str(store.path),
        "index_version": store.version,
        "passages": len(store.passages),
        "index_type": store.manifest.get("index_type"),
        "documents": len(store.documents),
        "model_name": cfg.model_name,
        "rrf_k": cfg.rrf_k,
        "dense_weight": cfg.dense_weight,
        "sparse_weight": cfg.sparse_weight,
        "dense_depth": cfg.dense_depth,
        "sparse_depth": cfg.sparse_depth,
        "reader_passages": cfg.reader_passages,
        "abstain_threshold": cfg.abstain_threshold,
        **extra,
    }


def _cell(value: Any) -> str:
    """Fractions with 3 decimals; strings (pre-formatted cells) as they are; None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def ms(value: float | None) -> str:
    """A latency cell: milliseconds with one decimal."""
    return "-" if value is None else f"{value:.1f}"


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain, aligned text table (also valid GitHub markdown)."""
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def format_table(results: dict[str, Any]) -> str:
    """Human-readable summary of any result dict from this module."""
    overall = results["overall"]
    if results["dataset"] == "seeds":
        keys = ["n", *SEED_METRICS, "latency_ms_p50", "latency_ms_p95"]
        subsets = {"overall": overall, **({"answerable": results["answerable"]} if "answerable" in results else {}),
                   **results["by_kind"]}
        rows = [[name, *(ms(s.get(k)) if k.startswith("latency") else s.get(k) for k in keys)]
                for name, s in subsets.items()]
        text = render_table(["subset", *keys], rows)
        fails = results.get("failures") or []
        if fails:
            text += f"\n\n{len(fails)} questions with problems:\n" + "\n".join(
                f"  {f['id']} [{f['kind']}] {f['question']}: {'; '.join(f['problems'])}" for f in fails
            )
        return text
    keys = [k for k in overall if k != "n"]
    meta = results.get("meta", {})
    title = f"{results['dataset']} ({meta.get('mode', 'hybrid')}, {overall['n']} questions)"
    row = [ms(overall[k]) if k.startswith(("latency", "search_ms")) else overall[k] for k in keys]
    return title + "\n" + render_table(keys, [row])


# ------------------------------------------------------------------------------------------------- CLI


def default_index_dir(squad: str | Path | None = None, beir: str | Path | None = None) -> Path:
    """Where `qa eval` keeps the index of a benchmark corpus: bench/.cache/<name>."""
    name = Path(squad).resolve().parent.name if squad else Path(beir).resolve().name if beir else "seeds"
    return Path("bench") / ".cache" / name


def run_eval(
    *,
    gold: str | Path | None = None,
    squad: str | Path | None = None,
    questions: str | Path | None = None,
    beir: str | Path | None = None,
    qrels: str | Path | None = None,
    index: str | Path | None = None,
    limit: int = 0,
    mode: Mode = "hybrid",
    k: int = 3,
    config: Any = None,
    progress: bool = False,
) -> dict[str, Any]:
    """What `qa eval` does: pick the benchmark, build or reuse its index (SQuAD/BEIR), evaluate.

    With none of ``gold``, ``squad`` or ``beir`` it scores the seeds dev questions, ``DEFAULT_GOLD``.
    Raises ValueError on a wrong combination of arguments or a missing gold file, and the index/model errors
    of qa.
    """
    from qa.config import DEFAULT_CONFIG

    config = config or DEFAULT_CONFIG
    chosen = [name for name, value in (("--gold", gold), ("--squad", squad), ("--beir", beir)) if value]
    if len(chosen) > 1:
        raise ValueError("Give at most one of --gold FILE, --squad PARAGRAPHS or --beir DIR.")
    if mode not in MODES:
        raise ValueError(f"--mode must be one of {MODES}, got {mode!r}")
    if not chosen:
        gold = DEFAULT_GOLD
    if gold:
        if not Path(gold).is_file():
            raise ValueError(f"Gold questions {gold} not found: pass --gold FILE, or run from the repository's "
                             f"root (the default, {DEFAULT_GOLD}, is relative to it).")
        return evaluate_seeds(Retriever.load(index or "index", config), gold, k=k)

    from qa.index.build import build_index

    if squad and not questions:
        raise ValueError("--squad needs --questions FILE (e.g. ../shared/eval/squad/questions_dev.jsonl).")
    if beir and not qrels:
        raise ValueError("--beir needs --qrels FILE (e.g. ../shared/eval/scifact/qrels/train.tsv).")
    source = Path(squad) if squad else Path(beir) / "corpus.jsonl"
    index_dir = Path(index) if index else default_index_dir(squad, beir)
    report = build_index(source, index_dir, config, progress=progress)
    log.info("Index %s: %s", index_dir, report.summary())
    retriever = Retriever.load(index_dir, config)
    if squad:
        results = evaluate_squad(retriever, questions, limit=limit, k=k, mode=mode)
    else:
        results = evaluate_beir(retriever, beir, qrels, limit=limit, mode=mode)
    results["meta"]["build"] = report.summary()
    return results
