"""Load test of the web app: N distinct questions at once to a locally started app.py, over its /ask API.

    python bench/load_test.py                       # 50 concurrent requests, results in bench/results/
    python bench/load_test.py --requests 20 --deadline 300

What it does, in order:

1. starts ``app.py`` on a free localhost port over a private copy of seeds/ (the app builds the index at
   start-up, as `qa serve` does) and waits until the page answers;
2. sends one warm-up question, not one of the measured ones (models load lazily on the first one);
3. sends ``--requests`` distinct questions (``common.SEEDS_QUESTIONS``: no question is asked twice, so no
   cache of answers, in the app or in front of it, could serve one) at once through gradio_client (one
   worker per request, so all are in flight together) and times each from submit to result;
4. stops the app, always, and writes bench/results/load_test.json and load_test.md (p50/p95/max). The
   report states the app's concurrency limit for questions as the app defines it (``qa.ui.app.ASK_CONCURRENCY``).

Acceptance (issue 15, on 2 idle cores): 50/50 answered, >= 4 answers/s, p95 <= 12 s. Take it on a quiet
machine: the machine section lists the load average and the other busy processes.

Bounded and self-stopping: a hard ``--deadline`` covers the whole run; what is still pending then is
cancelled and counted as failed, and the app process is terminated (then killed) in any case.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    REPO,
    RESULTS,
    SEEDS,
    SEEDS_QUESTIONS,
    finish_machine_info,
    log,
    machine_info,
    offline_env,
    write_results,
)

QUESTIONS = SEEDS_QUESTIONS  # 50 distinct questions
WARM_UP = "What happened in Qusayr?"  # not among QUESTIONS


def ask_concurrency() -> int:
    """How many questions the app answers at once: the app's own setting, read from its module (qa.ui.app)."""
    from qa.ui.app import ASK_CONCURRENCY

    return int(ASK_CONCURRENCY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, app: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise RuntimeError(f"app.py exited with status {app.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"app.py did not answer at {url} before the deadline")


def _stop(app: subprocess.Popen) -> None:
    """Ctrl-C, then SIGTERM, then SIGKILL: the app is gone when this returns."""
    for sig, grace in ((signal.SIGINT, 10), (signal.SIGTERM, 5)):
        if app.poll() is not None:
            return
        app.send_signal(sig)
        try:
            app.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    if app.poll() is None:
        app.kill()
        app.wait()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run(requests: int, deadline_s: float, workdir: Path) -> dict[str, Any]:
    from gradio_client import Client

    end = time.monotonic() + deadline_s
    seeds, index = workdir / "seeds", workdir / "index"
    shutil.copytree(SEEDS, seeds)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    app_log = open(workdir / "app.log", "w")  # noqa: SIM115 - closed in finally
    app = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--articles", str(seeds), "--index", str(index),
                            "--port", str(port)], stdout=app_log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    out: dict[str, Any] = {"requests": requests, "distinct_questions": len(set(QUESTIONS[:requests])), "url": url,
                           "nice": os.nice(0), "ask_concurrency": ask_concurrency()}
    try:
        t0 = time.monotonic()
        _wait_until_up(url, app, end)
        out["startup_s"] = round(time.monotonic() - t0, 2)
        log(f"app up at {url} after {out['startup_s']} s")
        client = Client(url, verbose=False, max_workers=requests, analytics_enabled=False)
        t0 = time.monotonic()
        client.predict(WARM_UP, 3, api_name="/ask")
        out["warmup_s"] = round(time.monotonic() - t0, 2)

        started: dict[Any, float] = {}
        latencies: dict[int, float] = {}
        results: dict[int, dict[str, Any]] = {}
        failures: dict[int, str] = {}
        cpu_app, cpu_client = _cpu_s(app.pid), _cpu_s()
        t_all = time.monotonic()
        jobs = {}
        for i in range(requests):
            job = client.submit(QUESTIONS[i], 3, api_name="/ask")
            started[job] = time.monotonic()
            jobs[job.future] = (i, job)
        pending = set(jobs)
        while pending and time.monotonic() < end:
            done, pending = wait(pending, timeout=min(5.0, max(0.1, end - time.monotonic())),
                                 return_when=FIRST_COMPLETED)
            for future in done:
                i, job = jobs[future]
                latencies[i] = time.monotonic() - started[job]
                try:
                    results[i] = future.result()
                except Exception as exc:  # noqa: BLE001 - recorded per request
                    failures[i] = f"{type(exc).__name__}: {exc}"[:300]
        for future in pending:  # the deadline passed: give up on the rest
            i, job = jobs[future]
            job.cancel()
            failures[i] = "not answered before the deadline"
        out["wall_s"] = round(time.monotonic() - t_all, 2)
        app_now = _cpu_s(app.pid)
        if cpu_app is not None and app_now is not None:  # while the questions were answered only
            out["app_cpu_s"] = round(app_now - cpu_app, 2)
        out["client_cpu_s"] = round(_cpu_s() - cpu_client, 2)
        ok = [latencies[i] for i in results]
        out["answered"] = len(results)
        out["failed"] = len(failures)
        out["failures"] = [f"request {i}: {why}" for i, why in sorted(failures.items())][:20]
        out["abstained"] = sum(1 for r in results.values() if r.get("abstained"))
        out["truncation_notices"] = sum(1 for r in results.values() if "truncated" in (r.get("notice") or ""))
        if ok:
            out["latency_s"] = {
                "p50": round(statistics.median(ok), 3),
                "p95": round(percentile(ok, 95), 3),
                "max": round(max(ok), 3),
                "min": round(min(ok), 3),
                "mean": round(statistics.fmean(ok), 3),
            }
            out["throughput_per_s"] = round(len(ok) / out["wall_s"], 2) if out["wall_s"] else None
            server = [r.get("timings_ms", {}).get("total", 0.0) / 1000 for r in results.values()]
            out["server_time_s"] = {"p50": round(statistics.median(server), 3),
                                    "p95": round(percentile(server, 95), 3)}
    finally:
        _stop(app)
        app_log.close()
    out["app_exit_status"] = app.returncode
    return out


def _cpu_s(pid: int | None = None) -> float | None:
    """CPU seconds (user + system, all threads) used so far by process ``pid`` (None: this one)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:  # Linux: fields 14 and 15 of /proc/<pid>/stat, after the command name in parentheses
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per(total: float | None, n: int | None) -> str:
    return f"{total / n:.3f}" if total is not None and n else "?"


def markdown(out: dict[str, Any], info: dict[str, Any]) -> str:
    from common import machine_md

    lat = out.get("latency_s", {})
    server = out.get("server_time_s", {})
    lines = [
        "# Web app load test",
        "",
        (f"`python bench/load_test.py --requests {out['requests']}`: app.py started locally on seeds/ "
        f"(index built at start-up in {out.get('startup_s', '?')} s, first question {out.get('warmup_s', '?')} s), "
        f"then {out['requests']} questions ({out.get('distinct_questions', '?')} distinct: none asked twice) sent "
        "at once to its `/ask` API with gradio_client."),
        "",
        "| requests | answered | failed | p50 (s) | p95 (s) | max (s) | wall (s) | answers/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {out['requests']} | {out.get('answered', 0)} | {out.get('failed', 0)} | {lat.get('p50', '-')} | "
        f"{lat.get('p95', '-')} | {lat.get('max', '-')} | {out.get('wall_s', '-')} | "
        f"{out.get('throughput_per_s', '-')} |"),
        "",
        (f"Latency is per request, from submit to result, so it includes queueing: the app answers at most "
        f"{out.get('ask_concurrency', '?')} questions at once (`ASK_CONCURRENCY` in qa/ui/app.py, the `/ask` event's "
        f"Gradio concurrency limit); the others wait in Gradio's queue (the app and this script ran at nice "
        f"{out.get('nice', 0)}). Time spent answering inside the app (Response.timings_ms): p50 "
        f"{server.get('p50', '-')} s, p95 {server.get('p95', '-')} s. {out.get('abstained', 0)} of the answered "
        f"requests abstained; {out.get('truncation_notices', 0)} carried the truncation notice (the "
        "2,300-character question)."),
        "",
        (f"CPU while the questions were answered: the app {out.get('app_cpu_s', '?')} s "
         f"({_per(out.get('app_cpu_s'), out.get('answered'))} s per answer), this client (gradio_client, "
         f"{out['requests']} workers) {out.get('client_cpu_s', '?')} s; both share the machine's cores."),
        "",
    ]
    if out.get("failures"):
        lines += ["Failures:", ""] + [f"- {f}" for f in out["failures"]] + [""]
    lines += ["## Machine", "", machine_md(info)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=50, help="questions sent at once (default: 50)")
    p.add_argument("--deadline", type=float, default=900, help="hard limit for the whole run, s (default: 900)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: bench/results)")
    args = p.parse_args(argv)
    if not 1 <= args.requests <= len(QUESTIONS):
        p.error(f"--requests must be between 1 and {len(QUESTIONS)} (the distinct questions in common.py)")
    offline_env()
    started = time.perf_counter()
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="qa-load-") as tmp:
        out = run(args.requests, args.deadline, Path(tmp))
    info = finish_machine_info(info, started)
    data = {"load_test": out, "machine": info}
    write_results(args.out, "load_test", data, markdown(out, info))
    print(json.dumps({k: out.get(k) for k in ("requests", "answered", "failed", "latency_s")}, indent=2))
    return 0 if out.get("answered") == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
