"""Incremental builds on a copy of seeds/: only added or changed articles are embedded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from qa.config import DEFAULT_CONFIG
from qa.errors import IngestError
from qa.index import save as index_save
from qa.index.build import build_index, index_status
from qa.index.check import verify_index
from qa.index.layout import ENCODER_MODEL, ENCODER_TOKENIZER, QUERY_ENCODER
from qa.index.load import load_index
from qa.index.lock import index_lock


class CountingEncoder:
    """The real encoder, counting how many passages it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.embedded = 0
        self.model_name = inner.model_name
        self.dimension = inner.dimension

    def encode_passages(self, titles, texts, **kwargs):
        self.embedded += len(texts)
        return self.inner.encode_passages(titles, texts, **kwargs)

    def encode_queries(self, texts, **kwargs):
        return self.inner.encode_queries(texts, **kwargs)


@pytest.fixture
def counting(encoder) -> CountingEncoder:
    return CountingEncoder(encoder)


def _build(source: Path, index_dir: Path, enc: CountingEncoder, config=DEFAULT_CONFIG):
    enc.embedded = 0
    return build_index(source, index_dir, config, progress=False, encoder=enc)


def _rows(index_dir: Path, doc_id: str) -> int:
    return sum(p.doc_id == doc_id for p in load_index(index_dir, DEFAULT_CONFIG).passages)


def test_incremental_builds(seeds_copy: Path, tmp_path: Path, counting: CountingEncoder):
    index_dir = tmp_path / "index"
    files = sorted(p.name for p in seeds_copy.iterdir())
    assert not index_status(seeds_copy, index_dir).current

    # 1. First build embeds everything.
    first = _build(seeds_copy, index_dir, counting)
    assert sorted(first.added) == files and not (first.changed or first.removed or first.unchanged)
    assert first.n_documents == len(files) and first.n_passages > len(files)
    assert first.passages_embedded == counting.embedded == first.n_passages
    assert f"{len(files)} documents ({len(files)} added" in first.summary()
    assert index_status(seeds_copy, index_dir).current
    before = load_index(index_dir, DEFAULT_CONFIG)

    # 2. Nothing changed: nothing embedded, no new version.
    second = _build(seeds_copy, index_dir, counting)
    assert second.up_to_date and counting.embedded == second.passages_embedded == 0
    assert second.version == first.version and sorted(second.unchanged) == files
    assert "index is up to date" in second.summary()

    # 3. One file changed: exactly its passages are embedded; the others keep their vectors.
    changed = files[1]
    with open(seeds_copy / changed, "a", encoding="utf-8") as f:
        f.write("\nA new closing paragraph about the ceasefire talks in Geneva and what they mean.\n")
    status = index_status(seeds_copy, index_dir)
    assert not status.current and status.changed == [changed] and not (status.added or status.removed)
    third = _build(seeds_copy, index_dir, counting)
    assert third.changed == [changed] and len(third.unchanged) == len(files) - 1
    assert third.passages_embedded == counting.embedded == _rows(index_dir, changed) > 0
    after = load_index(index_dir, DEFAULT_CONFIG)
    assert "ceasefire talks in Geneva" in after.documents[changed].text
    for doc_id in third.unchanged:
        old, new = before.rows_of(doc_id), after.rows_of(doc_id)
        assert [before.passages[i] for i in old] == [after.passages[i] for i in new]
        np.testing.assert_array_equal(before.vectors[old], after.vectors[new])
    assert index_status(seeds_copy, index_dir).current

    # 4. A file removed: its passages disappear, nothing is embedded.
    removed = files[0]
    (seeds_copy / removed).unlink()
    assert index_status(seeds_copy, index_dir).removed == [removed]
    fourth = _build(seeds_copy, index_dir, counting)
    assert fourth.removed == [removed] and counting.embedded == 0
    loaded = load_index(index_dir, DEFAULT_CONFIG)
    assert removed not in loaded.documents and all(p.doc_id != removed for p in loaded.passages)
    assert all(removed not in loaded.passages[row].doc_id for row, _ in loaded.lexical.search("Qusayr", 50))

    # 5. A file added: only its passages are embedded.
    added = "zz_new_article.txt"
    (seeds_copy / added).write_text(
        "Aid convoy reaches Homs\n\nA United Nations aid convoy reached the old city of Homs on Sunday.\n\n"
        "Volunteers unloaded food and medicine while a local truce held.\n",
        encoding="utf-8",
    )
    assert index_status(seeds_copy, index_dir).added == [added]
    fifth = _build(seeds_copy, index_dir, counting)
    assert fifth.added == [added] and fifth.passages_embedded == counting.embedded == _rows(index_dir, added)
    loaded = load_index(index_dir, DEFAULT_CONFIG)
    assert loaded.passages[loaded.lexical.search("convoy Homs", 1)[0][0]].doc_id == added
    assert len(list(index_dir.glob("v-*"))) == 2  # live + previous
    assert verify_index(index_dir, DEFAULT_CONFIG) == []


@pytest.fixture
def small_source(tmp_path: Path) -> Path:
    """Two seed articles: enough for the rebuild rules, cheap to embed."""
    source = tmp_path / "small"
    source.mkdir()
    for path in sorted((Path(__file__).parent.parent / "seeds").iterdir())[:2]:
        shutil.copy(path, source / path.name)
    return source


def test_leftover_tmp_dirs_are_cleaned_on_next_build(small_source, tmp_path, counting):
    index_dir = tmp_path / "index"
    _build(small_source, index_dir, counting)
    (index_dir / ".tmp-crashed").mkdir()
    (index_dir / ".tmp-crashed" / "vectors.npy").write_bytes(b"partial")
    report = _build(small_source, index_dir, counting)
    assert report.up_to_date and not (index_dir / ".tmp-crashed").exists()


def test_settings_change_forces_full_rebuild(small_source, tmp_path, counting):
    index_dir = tmp_path / "index"
    first = _build(small_source, index_dir, counting)
    config = DEFAULT_CONFIG.with_overrides(passage_target_words=60, passage_max_words=80)
    status = index_status(small_source, index_dir, config)
    assert not status.current and "passage_target_words" in status.reason
    second = _build(small_source, index_dir, counting, config)
    assert sorted(second.added) == sorted(first.added)  # treated as a fresh index
    assert second.passages_embedded == counting.embedded == second.n_passages
    assert load_index(index_dir, config).manifest["settings"]["passage_target_words"] == 60


def test_corrupt_index_is_rebuilt(small_source, tmp_path, counting):
    index_dir = tmp_path / "index"
    _build(small_source, index_dir, counting)
    vdir = index_dir / (index_dir / "CURRENT").read_text().strip()
    (vdir / "vectors.npy").write_bytes(b"garbage")
    report = _build(small_source, index_dir, counting)
    assert not report.up_to_date and report.passages_embedded == report.n_passages
    assert verify_index(index_dir, DEFAULT_CONFIG) == []


def test_failed_build_keeps_previous_index(small_source, tmp_path, counting, monkeypatch):
    index_dir = tmp_path / "index"
    first = _build(small_source, index_dir, counting)
    (small_source / "extra.txt").write_text("Extra\n\nSome more text about Aleppo.\n", encoding="utf-8")

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(index_save, "_write_current", crash)
    with pytest.raises(RuntimeError):
        _build(small_source, index_dir, counting)
    assert (index_dir / "CURRENT").read_text().strip() == first.version
    assert "extra.txt" not in load_index(index_dir, DEFAULT_CONFIG).documents


def test_empty_source_is_an_error(tmp_path, counting):
    (tmp_path / "empty").mkdir()
    with pytest.raises(IngestError, match="No readable articles"):
        _build(tmp_path / "empty", tmp_path / "index", counting)
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_status_of_missing_or_damaged_index(small_source, tmp_path, counting):
    index_dir = tmp_path / "index"
    assert "no index" in index_status(small_source, index_dir).reason
    _build(small_source, index_dir, counting)
    manifest = next(index_dir.glob("v-*")) / "manifest.json"
    (manifest.parent / "passages.jsonl").unlink()
    status = index_status(small_source, index_dir)
    assert not status.current and "passages.jsonl is missing" in status.reason
    manifest.write_text(json.dumps({"format_version": 7}))
    assert "format version 7" in index_status(small_source, index_dir).reason


def test_jsonl_corpus_is_incremental_per_record(tmp_path, counting):
    corpus = tmp_path / "corpus.jsonl"
    records = [
        {"id": "p1", "title": "Qusayr", "text": "Government forces retook Qusayr in June 2013."},
        {"id": "p2", "title": "Homs", "text": "An aid convoy reached the old city of Homs."},
    ]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    index_dir = tmp_path / "index"
    first = _build(corpus, index_dir, counting)
    assert first.added == ["p1", "p2"] and first.passages_embedded == first.n_passages == 2
    assert index_status(corpus, index_dir).current
    records[1]["text"] = "An aid convoy reached the old city of Homs on Sunday."
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert index_status(corpus, index_dir).changed == ["p2"]
    second = _build(corpus, index_dir, counting)
    assert second.changed == ["p2"] and second.unchanged == ["p1"] and counting.embedded == 1


def test_article_with_only_boilerplate_is_named_in_the_summary(small_source, tmp_path, counting):
    (small_source / "footer.txt").write_text(
        "Footer page\n\nCopyright © 2024 Example News. All rights reserved.\n\neditor@example.com\n", encoding="utf-8")
    report = _build(small_source, tmp_path / "index", counting)
    assert "footer.txt" in report.added and report.no_text == ["footer.txt"]
    assert "1 with no indexable text (footer.txt)" in report.summary()
    assert "footer.txt" not in {p.doc_id for p in load_index(tmp_path / "index", DEFAULT_CONFIG).passages}
    again = _build(small_source, tmp_path / "index", counting)
    assert again.up_to_date and "1 with no indexable text (footer.txt)" in again.summary()


def test_a_bad_source_creates_no_index_directory(tmp_path, counting):
    with pytest.raises(IngestError, match="does not exist"):
        _build(tmp_path / "missing", tmp_path / "index", counting)
    assert not (tmp_path / "index").exists()


def test_a_failed_build_releases_the_lock(small_source, tmp_path, counting, monkeypatch):
    index_dir = tmp_path / "index"

    def boom(*args, **kwargs):
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(counting, "encode_passages", boom)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        _build(small_source, index_dir, counting)
    monkeypatch.undo()
    with index_lock(index_dir):  # free again
        pass
    assert _build(small_source, index_dir, counting).n_documents == 2


def _strip_query_encoder(index_dir: Path) -> None:
    """Make the live version look like one built before qa stored query encoders: no encoder/, no record."""
    vdir = index_dir / (index_dir / "CURRENT").read_text().strip()
    manifest = json.loads((vdir / "manifest.json").read_text())
    del manifest[QUERY_ENCODER]
    for name in (ENCODER_MODEL, ENCODER_TOKENIZER):
        del manifest["checksums"][name]
        (vdir / name).unlink()
    (vdir / "encoder").rmdir()
    (vdir / "manifest.json").write_text(json.dumps(manifest))


def test_an_index_without_query_encoder_asks_for_a_build_that_adds_it(small_source, tmp_path, counting):
    from qa.errors import IndexMismatchError
    from qa.retrieve import Retriever

    index_dir = tmp_path / "index"
    _build(small_source, index_dir, counting)
    _strip_query_encoder(index_dir)
    with pytest.raises(IndexMismatchError, match=r"no query encoder.*qa build --articles DIR --index"):
        Retriever.load(index_dir)
    assert "no query encoder" in index_status(small_source, index_dir).reason
    assert any("no query encoder" in p for p in verify_index(index_dir, DEFAULT_CONFIG))

    report = _build(small_source, index_dir, counting)
    assert not report.up_to_date and report.encoder_stored and "query encoder stored" in report.summary()
    assert report.passages_embedded == counting.embedded == 0  # the vectors are reused
    assert index_status(small_source, index_dir).current and verify_index(index_dir, DEFAULT_CONFIG) == []
    retriever = Retriever.load(index_dir)
    assert retriever.search("Who retook Qusayr?", k=1, mode="dense")
    assert _build(small_source, index_dir, counting).up_to_date


def test_versions_share_one_query_encoder_file(small_source, tmp_path, counting):
    """Each version holds the ~90 MB export, hard-linked from the previous version rather than copied."""
    index_dir = tmp_path / "index"
    _build(small_source, index_dir, counting)
    (small_source / "extra.txt").write_text("Extra\n\nSome more text about Aleppo.\n", encoding="utf-8")
    _build(small_source, index_dir, counting)
    models = [v / ENCODER_MODEL for v in sorted(index_dir.glob("v-*"))]
    assert len(models) == 2 and models[0].stat().st_ino == models[1].stat().st_ino
    manifest = json.loads((models[1].parent.parent / "manifest.json").read_text())
    assert manifest[QUERY_ENCODER]["files"] == {"model": ENCODER_MODEL,
                                                      "tokenizer": ENCODER_TOKENIZER}
    assert manifest[QUERY_ENCODER]["precision"] == "fp32" and manifest["checksums"][ENCODER_MODEL]


def test_engines_are_chosen_by_name_or_passed_as_engines(small_source, tmp_path):
    from qa.index.build import engine_named
    from qa.index.engine import Engine, LocalEngine
    from qa.index.ray import RayEngine

    assert isinstance(engine_named("local"), LocalEngine)
    ray = engine_named("ray", ray_address="auto")  # constructing it neither imports nor starts Ray
    assert isinstance(ray, RayEngine) and ray.address == "auto"
    assert isinstance(ray, Engine) and isinstance(LocalEngine(), Engine)
    with pytest.raises(ValueError, match=r"engine must be one of \('local', 'ray'\).*got 'spark'"):
        build_index(small_source, tmp_path / "index", DEFAULT_CONFIG, progress=False, engine="spark")
    with pytest.raises(ValueError, match=r"engine must be one of .*got 42"):
        build_index(small_source, tmp_path / "index", DEFAULT_CONFIG, progress=False, engine=42)
    assert not (tmp_path / "index").exists()  # refused before anything is read or written
