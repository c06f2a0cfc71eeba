"""Write bench/RESULTS.md: the headline numbers of one benchmark run, then every table, from results/*.json|md.

Run after `bench/run_all.sh` (which calls this last). It only reads the result files, so the page always
shows exactly what the committed JSON says; the machine, date, commit and load of each run come from there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine_md

OUT = RESULTS.parent / "RESULTS.md"
DETAILS = (  # (results name, section title)
    ("retrieval", "Retrieval: qa vs BM25, dense and Haystack"),
    ("answers", "Answers: hybrid + reader and its ablations"),
    ("answer_ablation", "Answer-stage ablation (issue 18)"),
    ("answer_ablation_seg2", "Answer-stage ablation: reader v3 segment 2"),
    ("answer_ablation_seg3", "Answer-stage ablation: reader v3 segment 3 against segment 2"),
    ("answer_ablation_reword", "Answer-stage ablation: a calibration fitted with reworded SQuAD questions"),
    ("answer_ablation_seg45", "Answer-stage ablation: reader segments 3-5, sentence_overlap, checkpoint averaging"),
    ("answer_ablation_synonyms", "Answer-stage ablation: synonym_overlap (WordNet synonyms) against sentence_overlap"),
    ("answer_ablation_synonyms_1000", "Answer-stage ablation: synonym_overlap on 1,000 SQuAD open questions"),
    ("answer_ablation_seg7", "Answer-stage ablation: reader v3 segment 7 with its own synonym_overlap fit"),
    ("answer_ablation_seg8", "Answer-stage ablation: reader v3 segment 8"),
    ("answer_ablation_seg8_1000", "Answer-stage ablation: reader v3 segment 8 on 1,000 SQuAD open questions"),
    ("answer_ablation_seg9", "Answer-stage ablation: reader v3 segment 9"),
    ("answer_ablation_seg11", "Answer-stage ablation: reader v3 segment 11"),
    ("answer_ablation_seg11_1000", "Answer-stage ablation: reader v3 segment 11 on 1,000 SQuAD open questions"),
    ("answer_ablation_seg13_1000", "Answer-stage ablation: reader v3 segment 13 on 1,000 SQuAD open questions"),
    ("answer_ablation_spread_1000", "Answer-stage ablation: the candidate spread in the confidence"),
    ("answer_ablation_sides_1000",
     "Answer-stage ablation: the candidate spread shipped, disagreeing sides answered together"),
    ("answer_ceiling", "The seeds sets with abstention off: what ranking allows"),
    ("answer_ablation_densefix", "Answer-stage ablation: every read passage's dense score; WordNet head-noun types"),
    ("answer_ablation_lists", "Answer-stage ablation: a list of names cut before its end completed"),
    ("answer_ablation_types", "Answer-stage ablation: answer types in the confidence fit"),
    ("answer_ablation_types_1000", "Answer-stage ablation: answer types on 1,000 SQuAD open questions"),
    ("answer_ablation_heads", "Answer-stage ablation: WordNet head nouns with the answer-type fit (a replication)"),
    ("reader_passages", "What the reader reads: retrieval mode and passages read"),
    ("reader_passages_v3", "What the reader reads, reader v3: retrieval mode and passages read"),
    ("reader_passages_10_1000", "What the reader reads: 10 passages on 1,000 SQuAD open questions"),
    ("answer_ablation_mode_1000", "What the reader reads: hybrid against BM25 on 1,000 SQuAD open questions"),
    ("reader_windows", "Reader windows"),
    ("index_footprint", "Index build cost, size and memory"),
    ("ask_threads", "Ask latency by reader threading"),
    ("ask_threads_rivals", "Ask latency with the rival-passage check"),
    ("ask_threads_spread", "Ask latency with the candidate spread and the sides rule"),
    ("scale", "Scale: index types from 10k to 1M passages"),
    ("embed_speed", "Embedding speed: fp32 vs int8"),
    ("ray_build", "Distributed builds on Ray"),
    ("load_test", "Load test of the web app"),
    ("cold_start", "Cold start and per-question cost"),
)


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _fmt(value, column: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if "ms" in column else f"{value:.3f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v, h) for v, h in zip(row, header, strict=True)) + " |" for row in rows]
    return "\n".join(lines)


def _body(name: str) -> str:
    """The detailed markdown of one result, its title line dropped and headings pushed one level down."""
    text = (RESULTS / f"{name}.md").read_text().splitlines()
    out = []
    for line in text[1:] if text and text[0].startswith("# ") else text:
        out.append("#" + line if line.startswith("#") else line)
    body = "\n".join(out).strip()
    return body.replace("](", "](results/").replace("](results/http", "](http")


def headline(retrieval: dict | None, answers: dict | None) -> str:
    parts = []
    if retrieval:
        ds = retrieval["datasets"]
        rows = []
        for system in ds["scifact"]["systems"] if "scifact" in ds else []:
            sq = ds.get("squad", {}).get("systems", {}).get(system, {})
            sf = ds["scifact"]["systems"][system]
            rows.append([system, sf.get("ndcg@10"), sf.get("recall@100"), sq.get("recall@1"), sq.get("recall@5"),
                         sq.get("recall@20"), sq.get("latency_ms_p50"), sq.get("latency_ms_p95")])
        if rows:
            parts.append("Retrieval (SciFact train queries; SQuAD v1.1 dev, open setting over all 2,067 "
                         "paragraphs; latency = one SQuAD question, query embedding included):\n\n" + _table(
                             ["system", "SciFact nDCG@10", "SciFact R@100", "SQuAD R@1", "SQuAD R@5", "SQuAD R@20",
                              "p50 ms", "p95 ms"], rows))
    if answers:
        keys = ["answer@1", "f1@1", "answer@3", "source@1", "recall@5", "abstain_accuracy", "false_abstain",
                "conflict_all_sides", "latency_ms_p50", "latency_ms_p95"]
        rows = [[mode] + [answers["seeds"][mode]["overall"].get(k) for k in keys] for mode in answers["seeds"]]
        parts.append("Answers on the seeds gold questions (`../shared/eval/seeds_qa_dev.jsonl`):\n\n"
                     + _table(["retrieval + reader"] + keys, rows))
        skeys = ["em", "f1", "em_answered", "f1_answered", "abstain_rate", "recall@5", "latency_ms_p50",
                 "latency_ms_p95"]
        rows = [[mode, answers["squad"][mode]["overall"].get("n")] + [answers["squad"][mode]["overall"].get(k)
                                                                       for k in skeys] for mode in answers["squad"]]
        parts.append("Answers on SQuAD v1.1 dev, open setting (abstention counts as wrong):\n\n"
                     + _table(["retrieval + reader", "questions"] + skeys, rows))
    return "\n\n".join(parts)


def main() -> int:
    retrieval, answers = _load("retrieval"), _load("answers")
    lines = ["# Benchmark results", "",
             "Reproduce everything with `bench/run_all.sh` on an otherwise idle machine (set-up: bench/README.md); "
             "each section below names its command, machine, date, commit and the load while it ran.", ""]
    for data, label in ((retrieval, "retrieval.py"), (answers, "answers.py")):
        if data:
            lines += [f"**{label}** ({data['command']})", "", machine_md(data["machine"]), ""]
    lines += ["## Headline", "", "What these numbers mean, where we lose and why: [README.md#findings](README.md).", "",
              headline(retrieval, answers), ""]
    for name, title in DETAILS:
        if (RESULTS / f"{name}.md").exists():
            lines += [f"## {title}", "", f"Files: `results/{name}.json`, `results/{name}.md`.", "", _body(name), ""]
    OUT.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
