"""Evaluation behind `qa eval`: the seeds gold set, SQuAD open retrieval + answers, and BEIR (SciFact).

Every metric follows ../shared/eval/README.md and is built on qa.metrics (SQuAD normalisation, token F1,
containment, recall/MRR/nDCG). Fractions are in [0, 1]; a metric that is undefined for a subset (e.g.
``abstain_accuracy`` on factoid questions) is ``None`` (JSON null). Latencies are wall-clock milliseconds of
one ``Pipeline.ask`` (or ``search`` for BEIR) call per question, so they include query embedding; one
untimed warm-up call first loads the models. Every runner takes a retrieval ``mode`` (qa.search.MODES) and
passes it to the pipeline.

Results are plain dicts (JSON-ready)::

    {"dataset": ..., "meta": {...}, "overall": {"n": ..., metric: value, ...}, "questions": [...], ...}

Seeds results also have ``by_kind`` and ``failures``. ``format_table`` renders any of them as text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qa.calibration import calibration_for
from qa.config import DEFAULT_CONFIG, Config
from qa.eval_helpers import (
    dedupe_docs,
    latency,
    mean,
    ms,
    percentile,  # noqa: F401 (re-exported: bench scripts import it from here)
    read_jsonl,
    render_table,
    round_or_none,
    spread,
    timed,
)
from qa.metrics import best_f1, contains_answer, exact_match, hit_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from qa.pipeline import Pipeline
from qa.search import DEFAULT_MODE, MODES, Mode
from qa.types import Answer, Response

logger = logging.getLogger(__name__)

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
    out.update(latency([r["latency_ms"] for r in rows]))
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


def evaluate_seeds(retriever: Pipeline, gold_path: str | Path, k: int = 3,
                   mode: Mode = DEFAULT_MODE) -> dict[str, Any]:
    """Ask every seeds question and score it (README metrics), overall and per kind."""
    golds = read_jsonl(gold_path)
    rows, failures = [], []
    if golds:
        retriever.ask(golds[0]["question"], k=k, mode=mode)  # untimed warm-up: loads the embedder and the reader
    for gold in golds:
        res, ms = timed(lambda g=gold: retriever.ask(g["question"], k=k, mode=mode))
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
        "meta": _meta(retriever, gold=str(gold_path), k=k, mode=mode),
        "overall": summarize_seeds(rows),
        "answerable": summarize_seeds(answerable),
        "by_kind": by_kind,
        "questions": rows,
        "failures": failures,
    }


# ----------------------------------------------------------------------------------------------- SQuAD


def evaluate_squad(
    retriever: Pipeline,
    questions_path: str | Path,
    limit: int = 0,
    k: int = 3,
    mode: Mode = DEFAULT_MODE,
    answers: bool = True,
) -> dict[str, Any]:
    """SQuAD open setting over an index of all paragraphs (doc_id = pid).

    Retrieval: recall@1/5/20 (a top-k passage comes from the gold paragraph) and MRR@10 over passages.
    Answers (``answers=True``): ``ask`` with passages from ``mode``; EM/F1 of the top answer, best over the
    gold answers, an abstention scoring 0; also EM/F1 over answered questions and the abstain rate.
    ``limit`` takes that many questions evenly spread over the file.
    """
    questions = spread(read_jsonl(questions_path), limit)
    r = retriever
    depth = max(SQUAD_RECALL_KS)
    rows = []
    if questions:  # untimed warm-up: loads the models
        r.search(questions[0]["question"], k=depth, mode=mode)
        if answers:
            r.ask(questions[0]["question"], k=k, mode=mode)
    for q in questions:
        hits, search_ms = timed(lambda q=q: r.search(q["question"], k=depth, mode=mode))
        ranked = [h.passage.doc_id for h in hits]
        gold = {q["pid"]}
        row: dict[str, Any] = {"id": q.get("id"), "question": q["question"], "pid": q["pid"],
                               "gold_rank": ranked.index(q["pid"]) + 1 if q["pid"] in ranked else None,
                               **{f"recall@{n}": hit_at_k(ranked, gold, n) for n in SQUAD_RECALL_KS},
                               "mrr@10": mrr_at_k(ranked, gold, 10), "search_ms": round(search_ms, 1)}
        if answers:
            res, ms = timed(lambda q=q: r.ask(q["question"], k=k, mode=mode))
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
        overall[key] = round_or_none(mean(r_[key] for r_ in rows))
    if answers:
        answered = [r_ for r_ in rows if not r_["abstained"]]
        overall.update({
            "em": round_or_none(mean(r_["em"] for r_ in rows)),
            "f1": round_or_none(mean(r_["f1"] for r_ in rows)),
            "em_answered": round_or_none(mean(r_["em"] for r_ in answered)),
            "f1_answered": round_or_none(mean(r_["f1"] for r_ in answered)),
            "abstain_rate": round_or_none(mean(r_["abstained"] for r_ in rows)),
            **latency([r_["latency_ms"] for r_ in rows]),
        })
    search = latency([r_["search_ms"] for r_ in rows])
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
    retriever: Pipeline,
    corpus_dir: str | Path,
    qrels_path: str | Path,
    limit: int = 0,
    mode: Mode = DEFAULT_MODE,
    depth: int = BEIR_PASSAGE_DEPTH,
) -> dict[str, Any]:
    """nDCG@10 and recall@100 over documents (BEIR definitions) for queries with judgements.

    ``depth`` passages are retrieved per query and deduplicated to their documents (best rank kept); the
    hybrid fusion takes ``depth`` candidates from each retriever too, so recall@100 is not capped by the
    default fusion depth.
    """
    qrels = read_qrels(qrels_path)
    queries = beir_queries(corpus_dir, qrels, limit)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    r = retriever.with_config(dense_depth=depth, sparse_depth=depth)
    rows = []
    if queries:
        r.search(queries[0]["text"], k=depth, mode=mode)  # untimed warm-up: loads the embedder
    for q in queries:
        qid = str(q["_id"])
        hits, ms = timed(lambda q=q: r.search(q["text"], k=depth, mode=mode))
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
    overall["ndcg@10"] = round_or_none(mean(r_["ndcg@10"] for r_ in rows))
    overall["recall@100"] = round_or_none(mean(r_["recall@100"] for r_ in rows))
    overall.update(latency([r_["latency_ms"] for r_ in rows]))
    return {
        "dataset": Path(corpus_dir).name or "beir",
        "meta": _meta(r, corpus=str(corpus_dir), qrels=str(qrels_path), limit=limit, mode=mode,
                      passage_depth=depth),
        "overall": overall,
        "questions": rows,
    }


# ---------------------------------------------------------------------------------------------- output


def _meta(retriever: Pipeline, **extra: Any) -> dict[str, Any]:
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
        "abstain_threshold": calibration_for(cfg).abstain_threshold,
        **extra,
    }


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


def default_index_dir(squad: str | Path | None = None, beir: str | Path | None = None,
                      cache_dir: str | Path = DEFAULT_CONFIG.eval_cache_dir) -> Path:
    """Where `qa eval` keeps the index of a benchmark corpus: ``cache_dir``/<name> (Config.eval_cache_dir)."""
    name = Path(squad).resolve().parent.name if squad else Path(beir).resolve().name if beir else "seeds"
    return Path(cache_dir) / name


def run_eval(
    *,
    gold: str | Path | None = None,
    squad: str | Path | None = None,
    questions: str | Path | None = None,
    beir: str | Path | None = None,
    qrels: str | Path | None = None,
    index: str | Path | None = None,
    limit: int = 0,
    mode: Mode = DEFAULT_MODE,
    k: int = 3,
    config: Config | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """What `qa eval` does: pick the benchmark, build or reuse its index (SQuAD/BEIR), evaluate.

    With none of ``gold``, ``squad`` or ``beir`` it scores the seeds dev questions, ``DEFAULT_GOLD``.
    Raises ValueError on a wrong combination of arguments or a missing gold file, and the index/model errors
    of qa.
    """
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
        return evaluate_seeds(Pipeline.load(index or "index", config), gold, k=k, mode=mode)

    from qa.index.build import build_index

    if squad and not questions:
        raise ValueError("--squad needs --questions FILE (e.g. ../shared/eval/squad/questions_dev.jsonl).")
    if beir and not qrels:
        raise ValueError("--beir needs --qrels FILE (e.g. ../shared/eval/scifact/qrels/train.tsv).")
    source = Path(squad) if squad else Path(beir) / "corpus.jsonl"
    index_dir = Path(index) if index else default_index_dir(squad, beir, config.eval_cache_dir)
    report = build_index(source, index_dir, config, progress=progress)
    logger.info("Index %s: %s", index_dir, report.summary())
    retriever = Pipeline.load(index_dir, config)
    if squad:
        results = evaluate_squad(retriever, questions, limit=limit, k=k, mode=mode)
    else:
        results = evaluate_beir(retriever, beir, qrels, limit=limit, mode=mode)
    results["meta"]["build"] = report.summary()
    return results
