"""The `qa` command: build, ask, check, serve (and eval, see qa.evaluate)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from qa.config import DEFAULT_CONFIG, Config, cli_settings
from qa.errors import QAError
from qa.logs import configure as configure_logs
from qa.passages import sentence_around
from qa.search import DEFAULT_MODE, MODES

logger = logging.getLogger("qa")

EXAMPLES = """examples:
  qa build                                  # index seeds/ into index/ (incremental)
  qa build --engine ray --address auto      # the same, embedded on a Ray cluster (pip install -e '.[ray]')
  qa ask "Who backed the rebels?"           # short answers with their sources
  qa ask "Who backed the rebels?" --json    # the full response as JSON
  qa check                                  # verify the index files and manifest
  qa serve --port 7860                      # the web UI on http://127.0.0.1:7860
"""


def _add_config_flags(p: argparse.ArgumentParser, command: str) -> None:
    """One flag per Config field offered to ``command`` (qa.config.setting): its help and default live there."""
    g = p.add_argument_group("settings (defaults from qa.config.Config)")
    for f in cli_settings(command):
        flag, default, kind = "--" + f.name.replace("_", "-"), getattr(DEFAULT_CONFIG, f.name), f.metadata["type"]
        if kind is bool:
            g.add_argument(flag, action="store_true", default=None, help=f.metadata["help"])
        else:
            shown = "" if default is None else f" ({default})"
            g.add_argument(flag, type=kind, metavar=f.name.upper(), help=f.metadata["help"] + shown)


def _config(args: argparse.Namespace) -> Config:
    """The default Config with the settings given on the command line (unset flags are None: ignored)."""
    return DEFAULT_CONFIG.with_overrides(**{f.name: getattr(args, f.name, None) for f in cli_settings(args.command)})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qa", description="Answers questions from a folder of articles, with sources.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log progress details (-vv: debug details and other libraries' logs)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", help="build or update the index from the article files",
                       description="Build the index incrementally: only added or changed files are embedded.")
    b.add_argument("--articles", default="seeds",
                   help="articles folder (.txt .md .html .pdf .docx) or a .jsonl corpus (default: seeds)")
    b.add_argument("--seeds", dest="articles", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    b.add_argument("--index", default="index", help="index directory (default: index)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="where passages are split and embedded: this process, or a Ray cluster (default: local)")
    b.add_argument("--address", help="Ray cluster address for --engine ray (default: start a local Ray)")
    b.add_argument("--workers", type=int, help="Ray workers for --engine ray (default: one per cluster CPU)")
    _add_config_flags(b, "build")

    a = sub.add_parser("ask", help="answer a question from the index",
                       description="Print short answers with confidence and sources, or say there is no answer.")
    a.add_argument("question")
    a.add_argument("--index", default="index", help="index directory (default: index)")
    a.add_argument("-k", type=int, default=3, help="number of answers (default: 3)")
    a.add_argument("--json", action="store_true", help="print the full response as JSON")
    _add_config_flags(a, "ask")

    c = sub.add_parser("check", help="verify an index (checksums, manifest, counts)")
    c.add_argument("--index", default="index", help="index directory (default: index)")
    _add_config_flags(c, "check")

    s = sub.add_parser("serve", help="start the web UI (builds the index first if missing or stale)")
    s.add_argument("--articles", default="seeds", help="articles folder the app serves (default: seeds)")
    s.add_argument("--seeds", dest="articles", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # old name
    s.add_argument("--index", default="index", help="index directory (default: index)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    s.add_argument("--port", type=int, default=7860, help="port (default: 7860)")

    e = sub.add_parser("eval", help="score the system on a gold set or a benchmark (see qa.evaluate)",
                       description="Seeds gold set (--gold), SQuAD open (--squad) or BEIR (--beir); prints a table.")
    what = e.add_mutually_exclusive_group()
    what.add_argument("--gold", help="seeds gold questions .jsonl (default, when no --squad/--beir: "
                                     "eval/seeds_qa_dev.jsonl), asked against --index (default: index)")
    what.add_argument("--squad", help="SQuAD paragraphs.jsonl: indexed, then --questions are asked")
    what.add_argument("--beir", help="BEIR dataset folder with corpus.jsonl and queries.jsonl (needs --qrels)")
    e.add_argument("--questions", help="SQuAD questions .jsonl (with --squad)")
    e.add_argument("--qrels", help="BEIR qrels .tsv (with --beir)")
    e.add_argument("--index", help="index directory (default: index for --gold, else EVAL_CACHE_DIR/<name>)")
    e.add_argument("--limit", type=int, default=0, help="questions to use, evenly spread (default: all)")
    e.add_argument("--mode", default=DEFAULT_MODE, choices=MODES,
                   help=f"retrieval mode of the questions (qa.search.REGISTRY; default: {DEFAULT_MODE})")
    e.add_argument("-k", type=int, default=3, help="answers per question (default: 3)")
    e.add_argument("--json", nargs="?", const="-", metavar="PATH",
                   help="write the full results as JSON to PATH ('-' or no value: stdout, table to stderr)")
    _add_config_flags(e, "eval")
    return p


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` on one line for a terminal list: runs of whitespace (blank lines included) become one space;
    cut at a word boundary with an ellipsis when longer than ``limit`` characters."""
    flat = " ".join(text.split())
    if limit is None or len(flat) <= limit:
        return flat
    cut = flat[:limit]
    if " " in cut and not flat[limit].isspace():
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def _print_response(res, as_json: bool) -> None:
    if as_json:
        print(json.dumps(res.to_dict(), ensure_ascii=False, indent=2))
        return
    if res.notice:
        print(f"note: {res.notice}")
    if res.abstained:
        others = res.suggestions
        if res.on_topic and res.suggestions:
            # Shown as what it is: the best candidate, below the abstention threshold (still an abstention).
            best, others = res.suggestions[0], res.suggestions[1:]
            print(f"Low-confidence answer ({best.confidence:.2f}): {one_line(best.text)}")
            _print_sources(best)
            print("The articles may not answer this: no passage gives a confident answer.")
        elif res.on_topic:
            print("No confident answer: the articles do not clearly answer this.")
        else:
            print("Nothing in the articles is about this.")
        if others:
            print("Other low-confidence candidates:" if len(others) < len(res.suggestions)
                  else "Low-confidence candidates:")
            for ans in others:
                src = ans.sources[0]
                print(f"  ? {one_line(ans.text)}  (confidence {ans.confidence:.2f})"
                      f" — {one_line(src.title)} — {src.doc_id}")
        if res.passages:
            print("Closest passages:")
        for hit in res.passages[:3]:
            p = hit.passage
            print(f"  - {one_line(p.title)} ({p.doc_id}): {one_line(p.text, 160)}")
        return
    if res.conflict:
        print("Sources disagree:")
    sides = res.conflict  # a conflict response lists its sides first (qa.answer.answer_from_hits)
    for i, ans in enumerate(res.answers, start=1):
        if sides and not ans.conflicts_with:
            print("Other answers:")  # not a side of the disagreement, only a weaker candidate
            sides = False
        flag = f"  [disagrees with {', '.join(str(j + 1) for j in ans.conflicts_with)}]" if ans.conflicts_with else ""
        print(f"{i}. {one_line(ans.text)}  (confidence {ans.confidence:.2f}){flag}")
        _print_sources(ans)
    print(f"({res.timings_ms.get('total', 0):.0f} ms)")


def _print_sources(ans) -> None:
    """Every source of an answer, the first with the sentence it was read in: a reader checks an answer there."""
    for n, src in enumerate(ans.sources):
        print(f"     {_source_line(src)}")
        if n == 0:
            a, b = sentence_around(src.passage_text, src.start, src.end)
            print(f"     “{one_line(src.passage_text[a:b], 300)}”")


def _source_line(src) -> str:
    """Where an answer was read: title — file, page [offsets in the article]."""
    page = f", p. {src.page}" if src.page else ""
    return f"{one_line(src.title)} — {src.doc_id}{page} [{src.doc_start}:{src.doc_end}]"


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader went away


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logs(args.verbose)
    try:
        if args.command == "build":
            from qa.index.build import build_index

            engine = args.engine
            if engine == "ray":
                from qa.index.ray import RayEngine

                engine = RayEngine(address=args.address, workers=args.workers)
            elif args.address or args.workers:
                raise ValueError("--address and --workers go with --engine ray.")
            report = build_index(args.articles, args.index, _config(args), progress=not args.no_progress,
                                 engine=engine)
            for skipped in report.skipped:
                print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
            print(report.summary())
        elif args.command == "ask":
            from qa.pipeline import Pipeline

            res = Pipeline.load(args.index, _config(args)).ask(args.question, k=args.k)
            _print_response(res, args.json)
        elif args.command == "check":
            from qa.index.check import check_index

            checked = check_index(Path(args.index), _config(args))
            print("\n".join(checked.lines()))
            return 0 if checked.ok else 1
        elif args.command == "eval":
            from qa.evaluate import format_table, run_eval

            results = run_eval(gold=args.gold, squad=args.squad, questions=args.questions, beir=args.beir,
                               qrels=args.qrels, index=args.index, limit=args.limit, mode=args.mode, k=args.k,
                               config=_config(args), progress=sys.stderr.isatty())
            print(format_table(results), file=sys.stderr if args.json == "-" else sys.stdout)
            if args.json:
                text = json.dumps(results, ensure_ascii=False, indent=2)
                if args.json == "-":
                    print(text)
                else:
                    Path(args.json).write_text(text + "\n", encoding="utf-8")
        elif args.command == "serve":
            from qa.ui import main as serve  # imports Gradio: only for this command

            return serve(["--articles", args.articles, "--index", args.index,
                          "--host", args.host, "--port", str(args.port)] + ["-v"] * args.verbose)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Whoever read the output stopped early (`qa ask ... | head -3`): stop quietly, as other tools do. The
        # rest of stdout goes nowhere, so that flushing it at exit does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
