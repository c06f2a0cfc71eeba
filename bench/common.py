"""Shared helpers of the benchmark scripts: paths, cached indexes, machine info, result files, plots."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Measure this checkout's qa, the one the results name (commit, uncommitted files): a script run as
# `python bench/x.py` would otherwise import whichever qa is installed (e.g. another worktree's, editable).
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))
SHARED_EVAL = REPO.parent / "shared" / "eval"
SEEDS_GOLD = REPO / "eval" / "seeds_qa_dev.jsonl"  # the repository's copy of SHARED_EVAL's seeds questions
# git-ignored: built benchmark indexes (QA_BENCH_CACHE moves it, e.g. for the smoke test in tests/)
CACHE = Path(os.environ.get("QA_BENCH_CACHE", REPO / "bench" / ".cache"))
RESULTS = REPO / "bench" / "results"
SEEDS = REPO / "seeds"
TRAIN_DONE = REPO / "training" / "runs" / "reader" / "train_log.json"

# 50 distinct questions about the seeds articles (answerable, unanswerable, and odd inputs), for benchmarks
# that ask many at once: distinct, so no cache in front of the answers could make them look faster.
SEEDS_QUESTIONS = [
    "Who backed the rebels?",
    "How many people have died in the Syrian conflict?",
    "Which city are Assad's forces preparing to attack next?",
    "What is the capital of France?",
    "Who retook Qusayr?",
    "What role did Hezbollah play in Qusayr?",
    "<script>alert(1)</script> Who supported the rebels?",
    "¿Quién apoyó a los rebeldes?",
    "Which powers armed the rebels? " * 75,  # 2,300 characters: truncated, with a notice
    "?!",
    "When will the Geneva conference take place?",
    "Who is the UN special representative for Syria?",
    "When did the EU weapons embargo end?",
    "How much extra humanitarian aid does the UN want for Syrian refugees?",
    "Who is the UN's humanitarian aid chief?",
    "Who presents Inside Syria?",
    "Which member of the opposition SNC spoke to Al Jazeera?",
    "Why did the Free Syrian Army withdraw from Qusayr?",
    "What was the population of Qusayr before the attack?",
    "How long did the battle of Qusayr last?",
    "Who leads Hezbollah?",
    "Who is the head of the Free Syrian Army?",
    "Where did residents celebrate the fall of Qusayr?",
    "Which countries revived the issue of chemical weapons?",
    "Who set the red line on chemical weapons?",
    "What did the Syrian prime minister call the ousting of rebels from Qusair?",
    "Which district of Homs did government forces overrun last year?",
    "Where does Hezbollah hold sway in Lebanon?",
    "Which countries are the key allies of Damascus?",
    "Where is the Syrian political opposition based?",
    "Where did Phil Sands report from?",
    "Who is the spokeswoman of the Red Cross?",
    "Which rebel commander is based in Idlib province?",
    "What is Jabhat al-Nusra?",
    "How many Shi'a jihadis have flocked to Damascus?",
    "Which Libyan cities did British and French aircraft bomb?",
    "Which cities do opposition forces control?",
    "Which country is the regime's biggest opponent?",
    "Who is pushing for Iran to take part in the talks?",
    "How many people have been wounded in Qusayr?",
    "When did the conflict in Syria erupt?",
    "Which community is based on the Mediterranean coast?",
    "What did the US and Europe impose on the Syrian regime?",
    "How much financial aid has Iran given the Assad regime?",
    "Where are Hizbollah fighters massing?",
    "Who won the 2014 World Cup?",
    "What is the price of a barrel of oil?",
    "Who is the mayor of London?",
    "What are the symptoms of the flu?",
    "How many American troops are stationed in Syria?",
]

PACKAGES = ("qa", "torch", "sentence-transformers", "transformers", "faiss-cpu", "bm25s", "PyStemmer",
            "onnxruntime", "numpy", "haystack-ai", "sentence-transformers-haystack", "matplotlib")


def offline_env() -> None:
    """No hub, no telemetry: every model comes from installed packages (set before importing libraries)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")  # what the int8 reader's speed hangs on


def _cpu_model() -> str:
    """Model name plus family/model, clock and SIMD flags: hosts named alike ("AMD EPYC") can differ in speed."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break  # the first processor is enough
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or "unknown"
    flags = [f for f in SIMD_FLAGS if f in fields.get("flags", "").split()]
    mhz = fields.get("cpu MHz", "?").split(".")[0]
    return (f"{fields['model name']} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')}, "
            f"{mhz} MHz; {' '.join(flags) or 'no avx2'})")


def _versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_ticks() -> dict[int, int]:
    """utime + stime of every process, in clock ticks, from /proc."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, ...
        ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
    return ticks


def busy_processes(min_cpu: float = 5.0, window: float = 0.5) -> list[str]:
    """Other processes using CPU right now (measured over ``window`` seconds), to record what ran concurrently.

    ps's %CPU is a lifetime average: a training run stopped with SIGSTOP for a timing still showed 100% there.
    """
    before = _cpu_ticks()
    time.sleep(window)
    after = _cpu_ticks()
    hz = os.sysconf("SC_CLK_TCK")
    mine = {os.getpid(), os.getppid()}
    busy = []
    for pid, ticks in after.items():
        if pid in mine or pid not in before:
            continue
        cpu = 100.0 * (ticks - before[pid]) / hz / window
        if cpu < min_cpu:
            continue
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            elapsed = subprocess.run(["ps", "-o", "etime=", "-p", str(pid)], capture_output=True,
                                     text=True).stdout.strip()
        except OSError:
            continue
        busy.append((cpu, f"pid {pid} {cpu:.0f}% cpu, up {elapsed}: {args[:100]}"))
    return [line for _, line in sorted(busy, reverse=True)[:10]]


def machine_info() -> dict[str, Any]:
    import torch

    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": _versions(),
        "reader_training_finished": TRAIN_DONE.exists(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "busy_processes_at_start": busy_processes(),
        "git_commit": _git_head(),
        "uncommitted_qa_files": _dirty(),
    }


def finish_machine_info(info: dict[str, Any], started: float) -> dict[str, Any]:
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    info["busy_processes_at_end"] = busy_processes()
    info["wall_seconds"] = round(time.perf_counter() - started, 1)
    info["concurrent"] = (
        "none observed" if not (info["busy_processes_at_start"] or info["busy_processes_at_end"])
        else "see busy_processes_at_start/end"
    )
    return info


def _git_head() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _dirty() -> list[str]:
    """Files of the qa package that differ from the commit (the run used the working tree)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "status", "--short", "--", "qa"], capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line[3:] for line in out.splitlines()]


def machine_md(info: dict[str, Any]) -> str:
    pk = info["packages"]
    lines = [
        (f"- Machine: {info['cpu_model']}, {info['cores']} cores, {info['memory_gb']} GiB, torch threads "
         f"{info['torch_threads']}; Python {info['python']}; run {info['date_utc']} UTC at commit "
         f"{info['git_commit']}, {info['wall_seconds']} s wall; uncommitted qa files in the working tree: "
         f"{', '.join(info.get('uncommitted_qa_files') or []) or 'none'}."),
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v),
        (f"- Load average at start/end: {info['loadavg_at_start']} / {info['loadavg_at_end']}; "
         f"reader training finished: {info['reader_training_finished']}."),
        "- Other busy processes at start: " + ("; ".join(info["busy_processes_at_start"]) or "none") + ".",
        "- Other busy processes at end: " + ("; ".join(info["busy_processes_at_end"]) or "none") + ".",
    ]
    return "\n".join(lines)


def cached_retriever(source: Path, name: str, config=None, progress: bool = True):
    """Build (incrementally) or reuse bench/.cache/<name> for ``source`` and open it with the shared encoder."""
    from qa.config import DEFAULT_CONFIG
    from qa.embed import get_encoder
    from qa.index.build import build_index
    from qa.retrieve import Retriever

    config = config or DEFAULT_CONFIG
    index_dir = CACHE / name
    encoder = get_encoder(config.model_name)
    t0 = time.perf_counter()
    report = build_index(source, index_dir, config, progress=progress, encoder=encoder)
    log(f"index {name}: {report.summary()} ({time.perf_counter() - t0:.1f} s)")
    return Retriever.load(index_dir, config, encoder=encoder), report


def write_results(out: Path, name: str, data: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{name}.json", out / f"{name}.md"
    js.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md.write_text(markdown.rstrip() + "\n", encoding="utf-8")
    log(f"wrote {js} and {md}")
    return js, md


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
