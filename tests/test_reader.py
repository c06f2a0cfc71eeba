"""The shipped reader: loads offline with its checksum verified, finds spans, says no-answer when it should."""

import json
import shutil

import pytest

from qa.errors import ModelLoadError
from qa.reader import READER_DIR, OnnxReader, load_reader

PASSAGE_004 = (
    '"It is something of a crunch moment for the powers supporting the rebels - will they just keep talking '
    "and giving a few arms here and there, or will they now take real action and give the opposition the "
    'money and weapons they need to even up the balance? Saudi Arabia, Qatar and Turkey - Sunni powers - '
    "have been major supporter of the rebels, providing them with arms and cash, although not in sufficient "
    "volumes to break a military deadlock on the ground."
)
UNRELATED = (
    "The recipe calls for two cups of flour, a pinch of salt and three eggs. Bake the mixture for forty "
    "minutes until the crust is golden brown."
)


def test_reader_extracts_the_backers_span():
    reading = load_reader().read("Who backed the rebels?", [PASSAGE_004])[0]
    best = reading.spans[0]
    assert "Saudi Arabia" in best.text
    assert PASSAGE_004[best.start : best.end] == best.text
    assert best.score > reading.null_score  # it does answer


def test_reader_says_no_answer_for_an_unrelated_passage():
    reading = load_reader().read("Who backed the rebels?", [UNRELATED])[0]
    assert reading.null_score > reading.spans[0].score


def test_reader_reads_long_passages_in_windows():
    long_text = " ".join([UNRELATED] * 12 + [PASSAGE_004])
    reading = load_reader().read("Who backed the rebels?", [long_text])[0]
    assert "Saudi Arabia" in reading.spans[0].text
    assert long_text[reading.spans[0].start : reading.spans[0].end] == reading.spans[0].text


def test_windows_of_different_lengths_run_in_separate_batches_and_come_back_in_order(monkeypatch):
    """Short windows are not padded to a long one (padding changes the int8 activation scales and costs as
    much as reading); every passage still gets its own readings, in the order given."""
    reader = load_reader()
    widths = []
    real_session = reader._session

    class Spy:
        def __init__(self, session):
            self.session = session

        def run(self, names, feed):
            widths.append(feed["input_ids"].shape)
            return self.session.run(names, feed)

    monkeypatch.setattr(reader, "session", Spy(real_session(reader.threads)))
    short = "Qatar backed the rebels."
    passages = [UNRELATED, short, " ".join([UNRELATED] * 12 + [PASSAGE_004]), short]
    readings = reader.read("Who backed the rebels?", passages)
    assert len(widths) >= 2 and max(w[1] for w in widths) > 2 * min(w[1] for w in widths)
    assert readings[1].spans[0].text == "Qatar" == readings[3].spans[0].text
    assert "Saudi Arabia" in readings[2].spans[0].text
    assert readings[0].null_score > readings[0].spans[0].score
    for passage, reading in zip(passages, readings, strict=True):
        assert all(passage[s.start : s.end] == s.text for s in reading.spans)


def test_reader_rejects_a_corrupted_model(tmp_path):
    broken = tmp_path / "reader"
    shutil.copytree(READER_DIR, broken)
    with (broken / "reader.onnx").open("r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelLoadError, match="corrupt"):
        OnnxReader(broken)


def test_reader_missing_model_says_how_to_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="reader.json"):
        OnnxReader(tmp_path)


def test_reader_metadata_records_checksums():
    meta = json.loads((READER_DIR / "reader.json").read_text())
    assert set(meta["sha256"]) >= {"reader.onnx", "tokenizer.json"}


def test_overlapping_reads_run_on_one_thread_and_read_the_same():
    """A read alone uses the reader's threads; one that overlaps another gets the one-thread session, whose
    readings are identical (so how busy the server is never changes an answer)."""
    from pathlib import Path

    reader = OnnxReader(threads=2)
    with reader._claim_session() as first, reader._claim_session() as second:
        assert first is reader.session and second is reader._solo and second is not first
    with reader._claim_session() as alone:
        assert alone is reader.session
    seeds = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))
    passages = [p.read_text(encoding="utf-8")[:1500] for p in seeds] + [PASSAGE_004, UNRELATED]
    questions = ["Who backed the rebels?", "Which city is next?", "How many people have died?"]
    with reader._claim_session():  # every read below overlaps this claim: one thread
        crowded = [reader.read(q, passages, top_n=5) for q in questions]
    assert reader._reading == 0
    assert [reader.read(q, passages, top_n=5) for q in questions] == crowded
    single = OnnxReader(threads=1)
    with single._claim_session(), single._claim_session() as second:
        assert second is single.session and single._solo is None


def test_int8_sessions_multiply_exactly_on_every_x86_host(tmp_path):
    """u8 x s8 products that overflow 16 bits (255 * 127 * 2 > 32,767): without session.x64quantprecision,
    ONNX Runtime's kernel on AVX2 hosts without VNNI saturates them and the reader's logits depend on the host
    (qa/onnx_session.py). Here the exact sum is asked of a session opened the way the reader opens its own."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from qa.onnx_session import EXACT_INT8, cpu_session

    k = 64
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "overflow",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])],
        [helper.make_tensor("b", TensorProto.INT8, [k, 1], [127] * k)])
    path = tmp_path / "overflow.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    session = cpu_session(path, threads=1)
    assert session.get_session_options().get_session_config_entry(EXACT_INT8[0]) == EXACT_INT8[1]
    (y,) = session.run(None, {"a": np.full((1, k), 255, dtype=np.uint8)})
    assert int(y[0, 0]) == 255 * 127 * k

    reader = load_reader()
    assert reader.session.get_session_options().get_session_config_entry(EXACT_INT8[0]) == EXACT_INT8[1]
