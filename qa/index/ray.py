"""Distributed index builds on Ray: splitting and embedding run on a cluster's workers, in resumable shards.

``build_index(source, index, engine="ray", ray_address=ADDR)`` (or ``qa build --engine ray``) does what a
local build does, except that the new documents are split and embedded by a pool of Ray actors
(``EmbedWorker``), each loading the packaged model once and running ``qa.index.engine.split_and_embed`` on
one shard at a time. Everything else (ingest, reuse of unchanged documents, BM25, the atomic save with its
manifest) is the build's own code (qa.index.build), so the index has the same format and the same passages.

Shards are runs of consecutive documents (about ``shard_chars`` characters). Each finished shard is written
by the driver, atomically, to ``<index>/ray-shards/<key>.npz`` (vectors plus passages as JSON; nothing is
pickled), where the key (``qa.index.resume.content_key``) hashes the shard's documents, the split settings,
the model and the qa version. A build that dies keeps its finished shards, and the next build with the same
inputs takes them from disk instead of embedding them again. The shard directory is removed once the index
is saved.

Ray is optional (``pip install -e '.[ray]'``) and imported only here, when a Ray build starts.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import shutil
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa import files
from qa.config import Config
from qa.embed import Encoder, model_package_version
from qa.errors import QAError, RayNotInstalledError
from qa.index.engine import Embedded, SplitAndEmbed, split_and_embed
from qa.index.layout import SHARD_DIR
from qa.index.resume import content_key
from qa.types import Document, Passage
from qa.version import __version__

logger = logging.getLogger(__name__)

RAY_VERSION = "2.60.0"  # the version pinned by the `ray` extra; the cluster must run the same one
SHARD_FORMAT = 1
MAX_SHARD_CHARS = 200_000  # about 300 passages: ~15 s on one core, so a crash loses little
TARGET_SHARDS = 64  # smaller corpora are cut finer, so that every worker has work


def import_ray() -> Any:
    """The ``ray`` module; RayNotInstalledError saying what to install when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise RayNotInstalledError(
            f"Distributed builds need Ray: install it with `pip install -e '.[ray]'` (ray=={RAY_VERSION}), "
            "on the driver and on every node of the cluster, or build locally without --engine ray."
        ) from exc
    return ray


@dataclass(frozen=True)
class Shard:
    key: str
    documents: list[Document]


def plan_shards(documents: list[Document], config: Config, shard_chars: int | None = None) -> list[Shard]:
    """Consecutive runs of documents of about ``shard_chars`` characters (default: the corpus cut in
    ``TARGET_SHARDS``, at most ``MAX_SHARD_CHARS``), each keyed by a hash of everything its result depends on."""
    if shard_chars is None:
        total = sum(len(d.text) for d in documents)
        shard_chars = min(MAX_SHARD_CHARS, max(1, math.ceil(total / TARGET_SHARDS)))
    settings = {"format": SHARD_FORMAT, "qa": __version__, "model_package": model_package_version(),
                "settings": config.index_settings(), "batch_size": config.embed_batch_size}
    shards: list[Shard] = []
    run: list[Document] = []
    size = 0
    for doc in documents:
        run.append(doc)
        size += len(doc.text)
        if size >= shard_chars:
            shards.append(_shard(run, settings))
            run, size = [], 0
    if run:
        shards.append(_shard(run, settings))
    return shards


def _shard(documents: list[Document], settings: dict[str, Any]) -> Shard:
    parts = (json.dumps(asdict(doc), sort_keys=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
             for doc in documents)
    return Shard(content_key(settings, parts, length=32), list(documents))


def write_shard(path: Path, passages: list[Passage], vectors: np.ndarray) -> None:
    """Write a shard atomically: a temporary file, fsynced, then renamed over ``path``."""
    records = "".join(json.dumps(asdict(p), ensure_ascii=False) + "\n" for p in passages)
    buffer = io.BytesIO()
    np.savez(buffer, vectors=np.asarray(vectors, dtype=np.float32),
             passages=np.frombuffer(records.encode("utf-8", "surrogatepass"), dtype=np.uint8))
    files.write_atomic(path, buffer.getvalue())


def read_shard(path: Path) -> tuple[list[Passage], np.ndarray] | None:
    """A finished shard, or None when it is missing or damaged (it is then embedded again)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            vectors = np.array(data["vectors"], dtype=np.float32)
            text = data["passages"].tobytes().decode("utf-8", "surrogatepass")
        passages = [Passage(**json.loads(line)) for line in text.splitlines() if line]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        logger.warning("Shard %s is damaged (%s): embedding it again", path, exc)
        return None
    if vectors.ndim != 2 or len(vectors) != len(passages):
        logger.warning("Shard %s holds %s vectors for %d passages: embedding it again", path, vectors.shape,
                       len(passages))
        return None
    return passages, vectors


def _versions() -> dict[str, str | None]:
    return {"qa": __version__, "model_package": model_package_version()}


@functools.cache
def _worker_class() -> Any:
    ray = import_ray()

    @ray.remote
    class EmbedWorker:
        """One per worker slot: loads the packaged model once, then splits and embeds shard after shard."""

        def __init__(self, config: Config, threads: int) -> None:
            import torch

            from qa.embed import get_encoder

            torch.set_num_threads(threads)
            self.config = config
            self.encoder = get_encoder(config.model_name)

        def versions(self) -> dict[str, str | None]:
            return _versions()

        def run(self, key: str, documents: list[Document]) -> tuple[str, list[Passage], np.ndarray]:
            passages, vectors = split_and_embed(documents, self.config, self.encoder, progress=False)
            return key, passages, vectors

    return EmbedWorker


@dataclass
class RayEngine:
    """The Ray engine (a qa.index.engine.Engine); pass one as ``build_index(..., engine=RayEngine(...))``.

    ``address``: the cluster (``"auto"``, ``"HOST:6379"`` or ``"ray://HOST:10001"``); None starts a local Ray
    (unless one is already running in this process). ``workers``: actors, default one per ``threads`` CPUs
    of the cluster (at most that many). ``shard_dir``: default ``<index>/ray-shards`` on the driver.
    ``keep_shards``: leave the shards after a successful build (to inspect them).
    """

    address: str | None = None
    workers: int | None = None
    threads: int = 1  # torch threads (and Ray CPUs) per worker
    shard_dir: Path | None = None
    shard_chars: int | None = None
    keep_shards: bool = False
    stats: dict[str, int] = field(default_factory=dict)  # what the last build did: shards, reused, workers
    timings: dict[str, float] = field(default_factory=dict)  # its seconds: workers_ready, embed, merge

    @contextmanager
    def session(
        self, index_dir: Path, config: Config, *, encoder: Encoder | None = None, progress: bool = True
    ) -> Iterator[SplitAndEmbed]:
        """A Ray connection for one build; yields its split-and-embed function. Shards are removed when the
        build succeeds and kept when it fails, so that the next build resumes from them. ``encoder`` is not
        used: every worker loads the packaged model."""
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray"
                raise QAError(f"Cannot start or reach {where} ({exc}). Check --address (e.g. `auto` on a node "
                              "started with `ray start`), or leave it out to start a local Ray.") from exc
        shard_dir = Path(self.shard_dir or Path(index_dir) / SHARD_DIR)
        try:
            yield functools.partial(self._split_and_embed, ray, shard_dir, config, progress)
        finally:
            if started:
                ray.shutdown()
        if not self.keep_shards:
            shutil.rmtree(shard_dir, ignore_errors=True)

    def _split_and_embed(
        self, ray: Any, shard_dir: Path, config: Config, progress: bool, documents: list[Document]
    ) -> Embedded:
        shard_dir.mkdir(parents=True, exist_ok=True)
        self.timings = {}
        shards = plan_shards(documents, config, self.shard_chars)
        done = {s.key: found for s in shards if (found := read_shard(shard_dir / f"{s.key}.npz")) is not None}
        todo = [s for s in shards if s.key not in done]
        slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads)
        if self.workers and self.workers > slots:  # more would wait forever for CPUs the cluster does not have
            logger.warning("The Ray cluster has room for %d workers of %d CPUs, not %d: using %d",
                           slots, self.threads, self.workers, slots)
        workers = min(len(todo), self.workers or slots, slots)
        self.stats = {"shards": len(shards), "reused": len(done), "workers": workers}
        logger.info("Ray build: %d shards, %d done before, %d to embed on %d workers",
                    len(shards), len(done), len(todo), workers)
        if todo:
            self._run(ray, todo, workers, shard_dir, config, progress, done)
        start = time.perf_counter()
        results = [done[s.key] for s in shards]
        passages = [p for shard_passages, _ in results for p in shard_passages]
        vectors = np.concatenate([v for _, v in results], axis=0)
        self.timings["merge"] = time.perf_counter() - start
        return Embedded(passages, vectors)

    def _run(self, ray: Any, todo: list[Shard], n_workers: int, shard_dir: Path, config: Config,
             progress: bool, done: dict[str, tuple[list[Passage], np.ndarray]]) -> None:
        from ray.util import ActorPool

        start = time.perf_counter()
        worker = _worker_class().options(num_cpus=self.threads)
        actors = [worker.remote(config, self.threads) for _ in range(n_workers)]
        try:
            mine = _versions()
            for theirs in ray.get([a.versions.remote() for a in actors]):
                if theirs != mine:
                    raise QAError(f"A Ray worker runs {theirs}, the driver {mine}: install the same qa and "
                                  "model package versions on every node (see README, Distributed builds).")
            self.timings["workers_ready"] = time.perf_counter() - start
            start = time.perf_counter()
            pool = ActorPool(actors)
            results = pool.map_unordered(lambda actor, shard: actor.run.remote(shard.key, shard.documents), todo)
            if progress:
                from tqdm.auto import tqdm

                results = tqdm(results, total=len(todo), desc="Embedding shards on Ray", unit="shard")
            for key, passages, vectors in results:
                write_shard(shard_dir / f"{key}.npz", passages, vectors)
                done[key] = (passages, np.asarray(vectors, dtype=np.float32))
            self.timings["embed"] = time.perf_counter() - start
        finally:
            for actor in actors:
                ray.kill(actor)
