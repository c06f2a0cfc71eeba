"""Answer benchmark: the full pipeline (hybrid retrieval + reader) and two retrieval ablations, through `ask`.

Rows
- ``hybrid + reader``: ``Retriever.ask`` as shipped (RRF of BM25 and dense, current qa.config).
- ``bm25 passages + reader`` / ``dense passages + reader``: the same Retriever asked with ``mode="sparse"`` /
  ``mode="dense"`` (qa.evaluate's runners pass it on), everything else unchanged. The answer confidence uses the
  passage's dense similarity as a feature; BM25-only hits carry none (0.0), so that row abstains more: that
  is what the shipped calibration does with such hits, not a separate tuning.
- ``hybrid + reader, abstention off`` (with the peer rows): the same with the abstention threshold at 0, so the
  top answer is always given, as the peer gives it: the two answer stages' rankings compared on equal terms.
- ``haystack reader (same weights)`` / ``haystack reader + segment ids`` (``--peer``): the peer's answer
  stage beside ours: the passages ``Retriever.ask`` gives our reader, read by Haystack's extractive reader
  running our reader's own weights (bench/peer_reader.py; needs the bench-only Haystack packages, skipped
  with a note when they are missing). The second row adds the BERT segment ids that Haystack's reader does
  not pass to the model.

Datasets
- seeds gold set (README metrics; answer metrics over answerable questions, abstain_accuracy over
  none + boilerplate), through the seeds index built from seeds/.
- SQuAD open: EM/F1 of the top answer (abstention = wrong), EM/F1 over answered questions, abstain rate,
  recall@5 of the gold paragraph; ``--squad-limit`` questions evenly spread over the dev questions.

Latency: p50/p95 wall-clock ms of one ``ask`` (retrieval + reader), after one untimed warm-up question.

    python bench/answers.py --squad-limit 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
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

from peer_reader import (
    PeerRetriever,
    PeerSettings,
    check_same_passages,
    have_haystack,
    logits_check,
    peer_model_dir,
    real_pairs,
)

from qa.evaluate import evaluate_seeds, evaluate_squad, ms, read_jsonl, render_table, spread
from qa.reader import READER_DIR

VARIANTS = {"hybrid": "hybrid + reader", "sparse": "bm25 passages + reader", "dense": "dense passages + reader"}
# The peer never abstains, so our answer stage is also shown with abstention off: the ranking alone, compared.
NO_ABSTAIN = {"hybrid-no-abstain": "hybrid + reader, abstention off"}
PEERS = {"peer": "haystack reader (same weights)", "peer+segments": "haystack reader + segment ids"}
LABELS = {**VARIANTS, **NO_ABSTAIN, **PEERS}
PEER_CHOICES = {"none": (), "plain": ("peer",), "segments": ("peer+segments",), "both": ("peer", "peer+segments")}
SEED_KEYS = ("answer@1", "f1@1", "answer@3", "source@1", "recall@5", "abstain_accuracy", "false_abstain",
             "conflict_all_sides", "latency_ms_p50", "latency_ms_p95")
SQUAD_KEYS = ("em", "f1", "em_answered", "f1_answered", "abstain_rate", "recall@5", "latency_ms_p50",
              "latency_ms_p95")


def peer_notes(settings: PeerSettings) -> list[str]:
    """What the peer rows are, with the settings they ran with."""
    threshold = "none, as in Haystack" if settings.score_threshold is None else settings.score_threshold
    return [
        ("Peer rows (bench/peer_reader.py): Haystack's extractive reader (TransformersExtractiveReader of "
         "transformers-haystack, the ExtractiveReader of haystack-ai 2.x) on a transformers "
         "BertForQuestionAnswering directory assembled from our reader's weights (qa/models/reader/"
         "reader.safetensors, fp16 -> fp32, plus the base model's frozen word embeddings), run in fp32 torch "
         "on the CPU; ours runs the same weights as int8 ONNX (see the logits check)."),
        ("Peer input: for each question the passages Retriever.ask gives our reader (search, then diverse(): "
         "checked against ask on the first questions of each dataset). Reader settings: "
         f"max_seq_length {settings.max_seq_length}, stride {settings.stride} (our reader's window and "
         f"overlap), top_k {settings.top_k} (the answers ask returns), no_answer=True, Haystack's defaults "
         "otherwise (calibration_factor 0.1, overlap_threshold 0.01, no maximum answer length)."),
        ("Peer abstention: Haystack's no-answer answer (score = product of (1 - score) over its top_k "
         f"answers) ranked first, or no answer left above score_threshold ({threshold}). Confidence = "
         "Haystack's answer score, sigmoid(0.1 x (start + end logit)). No grouping of equal answers across "
         "passages, no calibration, no conflicts."),
        ("Haystack's reader calls the model with input_ids and attention_mask only, so a BERT model reads the "
         "passage with the question's segment embedding; our reader was trained with segment ids. The "
         "'+ segment ids' row wraps the model to add them (1 after the first [SEP]), as our reader passes "
         "them."),
    ]


def compact(res: dict[str, Any]) -> None:
    """Compact per-question SQuAD rows keep the committed JSON small."""
    res["questions"] = [{k: q.get(k) for k in ("id", "pid", "gold_rank", "answer", "confidence", "abstained",
                                               "em", "f1", "latency_ms")} for q in res["questions"]]


def reader_info() -> dict[str, Any]:
    meta_path = READER_DIR / "reader.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return {
        "dir": str(READER_DIR),
        "sha256_onnx": meta.get("sha256", {}).get("reader.onnx"),
        **{k: v for k, v in meta.items() if k != "sha256"},
    }


def cell(summary: dict[str, Any], key: str) -> Any:
    return ms(summary.get(key)) if key.startswith("latency") else summary.get(key)


def markdown(result: dict[str, Any]) -> str:
    parts = ["# Answer benchmark", "", "Command: `" + result["command"] + "`", "", machine_md(result["machine"]),
             f"- Reader: {json.dumps(result['reader'])}", ""]
    if result.get("seeds"):
        rows = [[LABELS[m], r["answerable"]["n"], *(cell(r["overall"], k) for k in SEED_KEYS)]
                for m, r in result["seeds"].items()]
        parts += [f"## Seeds gold set ({next(iter(result['seeds'].values()))['overall']['n']} questions)", "",
                  render_table(["pipeline", "answerable", *SEED_KEYS], rows), ""]
        full = result["seeds"].get("hybrid")
        if full:
            rows = [[kind, s["n"], *(cell(s, k) for k in SEED_KEYS)] for kind, s in full["by_kind"].items()]
            parts += ["Full pipeline by kind:", "", render_table(["kind", "n", *SEED_KEYS], rows), ""]
            if full["failures"]:
                parts += ["Full pipeline, questions with problems:", ""]
                parts += [f"- {f['id']} [{f['kind']}] {f['question']} -> {f['answer']!r}: "
                          f"{'; '.join(f['problems'])}" for f in full["failures"]]
                parts.append("")
    if result.get("squad"):
        n = next(iter(result["squad"].values()))["overall"]["n"]
        rows = [[LABELS[m], *(cell(r["overall"], k) for k in SQUAD_KEYS)] for m, r in result["squad"].items()]
        parts += [f"## SQuAD v1.1 dev, open setting ({n} questions over all 2,067 paragraphs)", "",
                  render_table(["pipeline", *SQUAD_KEYS], rows), "",
                  ("Reference (README): given the gold paragraph, distilbert-base-cased-distilled-squad "
                   "EM 79.6 / F1 87.0, DrQA reader EM 69.4 / F1 78.9."), ""]
    if result.get("peer"):
        check = result["peer"]["logits_check"]
        parts += ["## Peer model check", "",
                  (f"Start/end logits of the assembled BertForQuestionAnswering on {check['pairs']} real "
                   f"question/passage windows ({result['peer']['logits_check_pairs']}; {check['tokens']} "
                   f"tokens; same input ids as our "
                   f"reader: {check['same_input_ids']}): max |diff| {check['max_abs_vs_fp32']:.2g} against our "
                   f"model in fp32 (training/train_reader.py SpanReader, same safetensors); against the "
                   f"shipped int8 ONNX reader max {check['max_abs_vs_onnx_int8']:.3f}, mean "
                   f"{check['mean_abs_vs_onnx_int8']:.3f}, best start and end token equal in "
                   f"{check['same_argmax_vs_onnx_int8']:.0%} of windows (logits up to {check['max_logit']:.1f}); "
                   f"called without segment ids, as Haystack calls it: max |diff| "
                   f"{check['max_abs_without_segment_ids']:.3f} (with the segment ids the '+ segment ids' row "
                   f"adds: {check['max_abs_segment_wrapper']:.2g})."), ""]
    parts += ["## Notes", "", *[f"- {n}" for n in result["notes"]], ""]
    return "\n".join(parts)


def plot(result: dict[str, Any], path: Path) -> bool:
    if not have_matplotlib():
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if result.get("seeds"):
        panels.append(("seeds (answerable)", result["seeds"], ("answer@1", "f1@1", "source@1", "recall@5")))
    if result.get("squad"):
        panels.append(("SQuAD open", result["squad"], ("em", "f1", "abstain_rate", "recall@5")))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5.2 * (len(panels) + 1), 4))
    for ax, (title, res, keys) in zip(axes, panels, strict=False):
        modes = list(res)
        width = 0.8 / len(modes)
        for i, m in enumerate(modes):
            vals = [res[m]["overall"][k] or 0.0 for k in keys]
            ax.bar([x + i * width for x in range(len(keys))], vals, width, label=LABELS[m])
        ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(keys))], keys)
        ax.set_ylim(0, 1)
        ax.set_title(title)
        ax.legend(fontsize=8)
    ax = axes[-1]
    labels, p50, p95 = [], [], []
    for title, res, _ in panels:
        for m in res:
            labels.append(f"{title.split()[0]} {m}")
            p50.append(res[m]["overall"]["latency_ms_p50"])
            p95.append(res[m]["overall"]["latency_ms_p95"])
    ax.barh(labels, p95, color="#cccccc", label="p95")
    ax.barh(labels, p50, color="#4c72b0", label="p50")
    ax.invert_yaxis()
    ax.set_xlabel("ms per ask")
    ax.set_title("latency")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def our_rows(retriever: Any, modes: list[str], peers: tuple[str, ...]) -> list[tuple[str, Any, str]]:
    """(row, pipeline, retrieval mode) of our rows: one per mode, plus hybrid with abstention off beside peers."""
    rows = [(mode, retriever, mode) for mode in modes]
    if peers and "hybrid" in modes:
        rows.append(("hybrid-no-abstain", retriever.with_config(abstain_threshold=0.0), "hybrid"))
    return rows


def peer_rows(choice: str, notes: list[str]) -> tuple[str, ...]:
    """The peer rows to run: none when Haystack is not installed (a note says so)."""
    rows = PEER_CHOICES[choice]
    if not rows:
        return ()
    if not have_haystack():
        notes.append("Peer rows skipped: haystack-ai / transformers-haystack are not installed "
                     "(bench/requirements.txt).")
        log("peer rows skipped: Haystack is not installed")
        return ()
    return rows


def peers_beside(retriever: Any, dataset: str, rows: tuple[str, ...], threshold: float | None,
                 questions: list[str], result: dict[str, Any]) -> dict[str, Any]:
    """PeerRetrievers over ``retriever``'s index, checked to read the passages ``ask`` gives our reader;
    the first call also records the model directory, the settings and the logits check in ``result``."""
    model_dir = peer_model_dir()
    peers = {row: PeerRetriever.beside(retriever, model_dir,
                                       PeerSettings(segment_ids=row == "peer+segments", score_threshold=threshold))
             for row in rows}
    for peer in peers.values():
        check_same_passages(peer, questions[:3])
    if "peer" not in result:
        result["peer"] = {
            "model_dir": str(model_dir),
            "settings": {row: asdict(peer.settings) for row, peer in peers.items()},
            "logits_check": logits_check(model_dir, real_pairs(retriever, questions[:4])).to_dict(),
            "logits_check_pairs": f"{dataset}: the first 2 passages read for each of its first 4 questions",
        }
        log(f"peer logits check: {json.dumps(result['peer']['logits_check'])}")
    return peers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="seeds,squad", help="comma-separated subset")
    p.add_argument("--modes", default="hybrid,sparse,dense", help="retrieval modes feeding the reader")
    p.add_argument("--gold", type=Path, default=SEEDS_GOLD)
    p.add_argument("--squad", type=Path, default=SHARED_EVAL / "squad")
    p.add_argument("--squad-limit", type=int, default=1000, help="SQuAD questions, evenly spread (0: all)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: bench/results)")
    p.add_argument("--name", default="answers", help="results file name under bench/results/")
    p.add_argument("--peer", choices=tuple(PEER_CHOICES), default="both",
                   help="Haystack reader rows with our weights (plain: as Haystack calls the model; segments: "
                        "with BERT segment ids); needs the bench-only Haystack packages")
    p.add_argument("--peer-threshold", type=float, default=None,
                   help="Haystack's score_threshold for the peer rows (default: none, Haystack's default)")
    args = p.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    started = time.perf_counter()
    info = machine_info()
    result: dict[str, Any] = {
        "command": " ".join(["python bench/answers.py", *(sys.argv[1:] if argv is None else argv)]),
        "reader": reader_info(),
        "notes": [
            "Answer metrics follow ../shared/eval/README.md (qa.evaluate); abstentions count as wrong.",
            "Ablations fix the retrieval mode of the same Retriever; reader, calibration and threshold unchanged.",
            ("Every passage the reader reads has its question-passage cosine (the confidence feature 'dense'), "
             "whichever mode found it (Pipeline.with_passage_similarity)."),
            ("With N SQuAD questions one question is 100/N points: with 300, a difference of 2 points between rows "
             "is within noise."),
            ("Latency is wall-clock time on a shared machine: compare it with the busy processes listed above "
             "before reading it as the pipeline's speed on an idle machine."),
        ],
    }
    peers = peer_rows(args.peer, result["notes"])
    if peers:
        result["notes"] += peer_notes(PeerSettings(score_threshold=args.peer_threshold))
    if "seeds" in datasets:
        r, _ = cached_retriever(SEEDS, "seeds")
        result["seeds"] = {}
        for row, ours, mode in our_rows(r, modes, peers):
            res = evaluate_seeds(ours, args.gold, mode=mode)
            result["seeds"][row] = res
            log(f"seeds {row}: {json.dumps({k: res['overall'][k] for k in SEED_KEYS})}")
        if peers:
            questions = [g["question"] for g in read_jsonl(args.gold)]
            for row, peer in peers_beside(r, "seeds", peers, args.peer_threshold, questions, result).items():
                res = evaluate_seeds(peer, args.gold)
                result["seeds"][row] = res
                log(f"seeds {row}: {json.dumps({k: res['overall'][k] for k in SEED_KEYS})}")
    if "squad" in datasets:
        r, _ = cached_retriever(args.squad / "paragraphs.jsonl", "squad")
        result["squad"] = {}
        for row, ours, mode in our_rows(r, modes, peers):
            res = evaluate_squad(ours, args.squad / "questions_dev.jsonl", limit=args.squad_limit, mode=mode)
            compact(res)
            result["squad"][row] = res
            log(f"squad {row}: {json.dumps({k: res['overall'][k] for k in SQUAD_KEYS})}")
        if peers:
            questions = [q["question"] for q in spread(read_jsonl(args.squad / "questions_dev.jsonl"),
                                                        args.squad_limit)]
            for row, peer in peers_beside(r, "squad", peers, args.peer_threshold, questions, result).items():
                res = evaluate_squad(peer, args.squad / "questions_dev.jsonl", limit=args.squad_limit)
                compact(res)
                result["squad"][row] = res
                log(f"squad {row}: {json.dumps({k: res['overall'][k] for k in SQUAD_KEYS})}")
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
