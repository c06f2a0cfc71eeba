"""Resumable builds (issue 9): a build killed while embedding resumes without embedding finished chunks again.

The kill test runs a real build process over the seeds with tiny chunks (2 passages each), SIGKILLs it once
60% of the chunks are persisted, and checks that the next build embeds only the remaining passages and writes
exactly the index an uninterrupted build writes (every file's checksum equal).
"""

from __future__ import annotations

import errno
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from stubs import StubEncoder

from qa import files
from qa.config import DEFAULT_CONFIG
from qa.errors import IndexWriteError
from qa.index.build import build_index
from qa.index.check import verify_index
from qa.index.layout import RESUME_DIR
from qa.index.manifest import read_manifest
from qa.index.resume import embed_resumable
from qa.types import Passage

REPO = Path(__file__).resolve().parent.parent
TINY = DEFAULT_CONFIG.with_overrides(embed_batch_size=2, embed_chunk_batches=1)  # 34 seed passages: 17 chunks


CHILD = '''
import re, sys, time, zlib
import numpy as np
from qa.config import DEFAULT_CONFIG, MODEL_NAME
from qa.index.build import build_index

{stub_source}

config = DEFAULT_CONFIG.with_overrides(embed_batch_size=2, embed_chunk_batches=1)
build_index(sys.argv[1], sys.argv[2], config, progress=False, encoder=StubEncoder(delay=float(sys.argv[3])))
print("done", flush=True)
'''


def _chunks(index_dir: Path) -> list[Path]:
    return sorted((index_dir / RESUME_DIR).glob("*/chunk-*.npy"))


def _checksums(index_dir: Path) -> dict[str, str]:
    return read_manifest(index_dir)[1]["checksums"]


def test_a_build_killed_at_60_percent_resumes_without_embedding_finished_chunks(seeds_copy, tmp_path):
    n_chunks = 17
    script = tmp_path / "child.py"
    script.write_text(CHILD.replace("{stub_source}", inspect.getsource(StubEncoder)), encoding="utf-8")
    index_dir = tmp_path / "index"
    env = {**os.environ, "OMP_NUM_THREADS": "1",  # the child script is in tmp_path: import this checkout's qa
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen([sys.executable, str(script), str(seeds_copy), str(index_dir), "0.15"], cwd=REPO,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while len(_chunks(index_dir)) < 0.6 * n_chunks and child.poll() is None:
            assert time.monotonic() < deadline, "the build never got to 60%"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        status = child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert status == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    assert not (index_dir / "CURRENT").exists()  # nothing was saved: the kill came while embedding
    done = _chunks(index_dir)
    done_rows = sum(np.load(p).shape[0] for p in done)
    assert 0.6 * n_chunks <= len(done) < n_chunks, len(done)

    rerun = StubEncoder()
    report = build_index(seeds_copy, index_dir, TINY, progress=False, encoder=rerun)
    assert report.n_passages == 34
    assert report.passages_resumed == done_rows and rerun.embedded == report.passages_embedded == 34 - done_rows
    assert f"{34 - done_rows} embedded ({done_rows} more resumed from an interrupted build)" in report.summary()
    assert not (index_dir / RESUME_DIR).exists()  # cleaned up after the save
    assert verify_index(index_dir, TINY) == []

    reference = tmp_path / "reference"
    uninterrupted = StubEncoder()
    build_index(seeds_copy, reference, TINY, progress=False, encoder=uninterrupted)
    assert uninterrupted.embedded == 34
    assert _checksums(index_dir) == _checksums(reference)  # the very same index, file for file


def _seed_passages() -> list[Passage]:
    from qa.ingest import load_folder
    from qa.passages import split_passages

    return [p for d in load_folder(REPO / "seeds", DEFAULT_CONFIG).documents for p in split_passages(d, TINY)]


class Crash(Exception):
    pass


class CrashingStub(StubEncoder):
    def __init__(self, after_calls: int) -> None:
        super().__init__()
        self.calls, self.after = 0, after_calls

    def encode_passages(self, titles, texts, **kwargs):
        self.calls += 1
        if self.calls > self.after:
            raise Crash("killed")
        return super().encode_passages(titles, texts, **kwargs)


def test_damaged_or_stale_chunks_are_embedded_again(tmp_path):
    passages = _seed_passages()
    with pytest.raises(Crash):
        embed_resumable(passages, CrashingStub(after_calls=10), tmp_path, TINY, progress=False)
    chunks = _chunks(tmp_path)
    assert len(chunks) == 10 and not list((tmp_path / RESUME_DIR).glob("*/.*.tmp"))
    chunks[0].write_bytes(chunks[0].read_bytes()[:-8])  # torn (cannot happen with link-after-fsync, but)
    np.save(chunks[1], np.full((2, 384), np.nan, dtype=np.float32))  # garbage
    other = tmp_path / RESUME_DIR / "0123456789abcdef"  # a build with other settings left this
    other.mkdir()
    stub = CrashingStub(after_calls=999)  # the same encoder (its class is part of the resume settings)
    vectors, resumed = embed_resumable(passages, stub, tmp_path, TINY, progress=False)
    assert resumed == 16 and stub.embedded == len(passages) - 16 and not other.exists()
    expected, _ = embed_resumable(passages, StubEncoder(), tmp_path / "fresh", TINY, progress=False)
    np.testing.assert_array_equal(vectors, expected)
    # A changed passage invalidates its chunk only: the chunk name carries a hash of its passages' text.
    edited = [*passages[:-1], Passage(**{**passages[-1].__dict__, "text": passages[-1].text + " Extra words."})]
    again = CrashingStub(after_calls=999)
    embed_resumable(edited, again, tmp_path, TINY, progress=False)
    assert 0 < again.embedded <= 2 * TINY.embed_batch_size


def test_progress_bar_shows_passages_and_eta(tmp_path, capsys):
    passages = _seed_passages() * 10  # 340 passages: above the size that gets a progress bar
    embed_resumable(passages, StubEncoder(), tmp_path, DEFAULT_CONFIG.with_overrides(embed_batch_size=20,
                                                                                   embed_chunk_batches=1))
    err = capsys.readouterr().err
    assert "Embedding passages" in err and "340/340" in err and "passage/s" in err and "<" in err  # "<" ETA


def test_a_full_disk_in_the_resume_area_fails_early_and_keeps_the_index(seeds_copy, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    first = tmp_path / "first"
    first.mkdir()
    shutil.copy(seeds_copy / "000_c16d11af959cac43.txt", first)  # then four articles are added
    build_index(first, index_dir, TINY, progress=False, encoder=StubEncoder())
    before = (index_dir / "CURRENT").read_text()
    real_write = files.write_synced
    calls = []

    def full(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, data)

    monkeypatch.setattr(files, "write_synced", full)
    stub = StubEncoder()
    with pytest.raises(IndexWriteError, match=r"disk is full.*\.partial.*was not changed.*qa build"):
        build_index(seeds_copy, index_dir, TINY, progress=False, encoder=stub)
    assert (index_dir / "CURRENT").read_text() == before and stub.embedded == 6  # failed at the 3rd chunk
    monkeypatch.setattr(files, "write_synced", real_write)
    report = build_index(seeds_copy, index_dir, TINY, progress=False, encoder=StubEncoder())
    assert report.passages_resumed == 4 and not (index_dir / RESUME_DIR).exists()
    assert json.loads((read_manifest(index_dir)[0] / "manifest.json").read_text())["counts"]["documents"] == 5
