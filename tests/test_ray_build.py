"""Distributed builds on a real local Ray cluster (2 CPUs): same index as a local build, resumable shards."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.config import DEFAULT_CONFIG
from qa.errors import RayNotInstalledError
from qa.index import save as index_save
from qa.index.build import build_index
from qa.index.check import verify_index
from qa.index.layout import SHARD_DIR
from qa.index.load import load_index
from qa.index.ray import RayEngine, import_ray, plan_shards
from qa.ingest import load_folder
from qa.reader import load_reader
from qa.retrieve import Retriever

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "seeds_qa_dev.jsonl"


@pytest.fixture(scope="module")
def ray_cluster():
    ray = import_ray()
    ray.init(num_cpus=2, object_store_memory=100 * 1024**2, include_dashboard=False,
             logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_build_resumes_from_its_shards_and_matches_a_local_build(
    ray_cluster, seeds_copy: Path, tmp_path: Path, encoder, monkeypatch, answers_of
):
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    build_index(seeds_copy, local_dir, DEFAULT_CONFIG, progress=False, encoder=encoder)
    engine = RayEngine(workers=4)  # capped at the 2 CPUs the cluster has (more would wait forever)
    shards = plan_shards(load_folder(seeds_copy, DEFAULT_CONFIG).documents, DEFAULT_CONFIG)
    assert len(shards) == 5  # the 5 seed articles, one shard each (small corpora are cut finely)

    # 1. The build dies while saving: the index is not written, the finished shards stay on disk.
    def crash(*args, **kwargs):
        raise RuntimeError("killed while saving")

    with monkeypatch.context() as patched:
        patched.setattr(index_save, "_write_current", crash)
        with pytest.raises(RuntimeError, match="killed while saving"):
            build_index(seeds_copy, ray_dir, DEFAULT_CONFIG, progress=False, engine=engine)
    assert engine.stats == {"shards": 5, "reused": 0, "workers": 2}
    files = sorted((ray_dir / SHARD_DIR).glob("*.npz"))
    assert [f.stem for f in files] == sorted(s.key for s in shards)
    assert not (ray_dir / "CURRENT").exists()

    # 2. One shard lost and one damaged: only those two are embedded again, on the workers.
    files[0].unlink()
    files[1].write_bytes(files[1].read_bytes()[:100])
    report = build_index(seeds_copy, ray_dir, DEFAULT_CONFIG, progress=False, engine=engine)
    assert engine.stats == {"shards": 5, "reused": 3, "workers": 2}
    assert report.passages_embedded == report.n_passages and not (ray_dir / SHARD_DIR).exists()

    # 3. Same index as the local build: manifest, passages in the same order, vectors, answers.
    assert verify_index(ray_dir, DEFAULT_CONFIG) == []
    local, ray = load_index(local_dir, DEFAULT_CONFIG), load_index(ray_dir, DEFAULT_CONFIG)
    assert [p.passage_id for p in ray.passages] == [p.passage_id for p in local.passages]
    assert ray.passages == local.passages and ray.documents == local.documents
    cosines = np.sum(np.asarray(ray.vectors) * np.asarray(local.vectors), axis=1)
    assert cosines.min() >= 0.9999
    for key in ("format_version", "model_name", "model_package_version", "dimension", "settings", "files",
                "counts", "index_type"):
        assert ray.manifest[key] == local.manifest[key], key
    questions = [json.loads(line)["question"] for line in DEV.read_text(encoding="utf-8").splitlines() if line]
    reader = load_reader()
    assert answers_of(Retriever(ray, DEFAULT_CONFIG, encoder=encoder, reader=reader), questions) == answers_of(
        Retriever(local, DEFAULT_CONFIG, encoder=encoder, reader=reader), questions
    )


def test_a_ray_build_without_ray_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # as if Ray were not installed
    source = tmp_path / "seeds"
    shutil.copytree(REPO / "seeds", source)
    with pytest.raises(RayNotInstalledError, match=r"pip install -e '\.\[ray\]'"):
        build_index(source, tmp_path / "index", DEFAULT_CONFIG, progress=False, engine="ray")
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_shard_keys_follow_the_documents_and_settings(seeds_copy):
    docs = load_folder(seeds_copy, DEFAULT_CONFIG).documents
    keys = [s.key for s in plan_shards(docs, DEFAULT_CONFIG)]
    assert keys == [s.key for s in plan_shards(docs, DEFAULT_CONFIG)] and len(set(keys)) == len(keys)
    assert [s.key for s in plan_shards(docs, DEFAULT_CONFIG.with_overrides(passage_target_words=100))] != keys
    assert len(plan_shards(docs, DEFAULT_CONFIG, shard_chars=10**9)) == 1
