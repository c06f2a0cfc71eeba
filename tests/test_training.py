"""Smoke test of the reader's training and export scripts on a handful of examples (real model, CPU)."""

import gzip
import json
import math
import random
import sys
from pathlib import Path

import pytest

from qa.reader import OnnxReader

TRAINING = Path(__file__).resolve().parent.parent / "training"

CONTEXT_A = (
    "Saudi Arabia, Qatar and Turkey have been major supporters of the rebels. "
    "They provided arms and cash to the opposition fighters."
)
CONTEXT_B = "The town lies six miles from the Lebanese border. It had a population of 30,000 before the attack."


def _write_examples(path: Path) -> None:
    rows = [
        ("Who backed the rebels?", CONTEXT_A, "Saudi Arabia, Qatar and Turkey"),
        ("What did they provide?", CONTEXT_A, "arms and cash"),
        ("How far is the border?", CONTEXT_B, "six miles"),
        ("What was the population?", CONTEXT_B, "30,000"),
    ]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i, (q, c, a) in enumerate(rows):
            rec = {"id": f"t{i}", "title": "T", "context": c, "question": q,
                   "answers": {"text": [a], "answer_start": [c.index(a)]}, "answer_occurrences": 1}
            f.write(json.dumps(rec) + "\n")


@pytest.mark.slow
def test_train_and_export_smoke(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TRAINING))
    import export_reader
    import train_reader

    data = tmp_path / "train.jsonl.gz"
    _write_examples(data)
    out = tmp_path / "run"
    assert train_reader.main(["--train", str(data), "--out", str(out), "--questions", "4",
                              "--batch-size", "2", "--neg-fraction", "1.0", "--threads", "1", "--holdout", "0"]) == 0
    log = json.loads((out / "train_log.json").read_text())
    assert log["questions"] == 4 and log["no_answer_windows"] >= 1
    checkpoint = max(out.glob("step-*.safetensors"))
    meta = export_reader.export(checkpoint, tmp_path / "reader", max_len=128)
    assert meta["sha256"]["reader.onnx"]
    reading = OnnxReader(tmp_path / "reader").read("How far is the border?", [CONTEXT_B])[0]
    span = reading.spans[0]
    assert CONTEXT_B[span.start : span.end] == span.text
    del sys.modules["train_reader"], sys.modules["export_reader"]


def _wordnet(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(TRAINING))
    import augment

    if not (augment.DEBIAN_WORDNET / "data.noun").exists():
        pytest.skip("WordNet 3.0 is missing: apt-get install -y wordnet-base wordnet-sense-index")
    pytest.importorskip("nltk", reason="nltk is missing: pip install '.[test]'")
    augment.ensure_wordnet(tmp_path / "nltk_data")
    return augment


def test_synonyms_follow_the_common_sense_and_the_inflection(tmp_path, monkeypatch):
    augment = _wordnet(tmp_path, monkeypatch)
    assert augment.synonym("backed") == "supported"  # the verb "back" (from its -ed), not the body part
    assert augment.synonym("died") == "perished"
    assert augment.synonym("teams") == "squads"
    assert augment.synonym("built") is None  # an irregular form is not re-inflected
    assert augment.synonym("year") is None  # no rare synonym ("twelvemonth", "yr")
    assert augment.synonym("qusayr") is None


def test_question_augmentation_changes_one_word_of_the_paragraph(tmp_path, monkeypatch):
    augment = _wordnet(tmp_path, monkeypatch)
    rng = random.Random(3)
    paragraph = "Saudi Arabia, Qatar and Turkey backed the rebels with arms; the rebels died in Qusayr."
    words = augment.paragraph_words(paragraph)
    question = "Who backed the rebels before they died?"
    assert augment.with_synonym(question, words, rng) in {"Who supported the rebels before they died?",
                                                          "Who backed the rebels before they perished?"}
    donors = ["Which orchestras played the symphony?"]
    swapped = augment.with_swapped_word(question, words, donors, rng)
    changed = [(a, b) for a, b in zip(question.split(), swapped.split(), strict=True) if a != b]
    assert len(changed) == 1 and changed[0][0].strip("?").lower() in words
    assert changed[0][1].strip("?") in {"orchestras", "symphony"}
    assert augment.with_swapped_word("Who?", words, donors, rng) is None


def test_calibration_rows_can_be_asked_with_reworded_questions(tmp_path, monkeypatch):
    """training/calibrate.py --reword: a question that shares a word with its paragraph is asked with a synonym
    and marked; one without such a word is asked as written."""
    _wordnet(tmp_path, monkeypatch)
    import calibrate

    paragraphs = tmp_path / "paragraphs.jsonl"
    row = {"pid": "p1", "title": "T", "context": "Qatar backed the rebels in Qusayr."}
    paragraphs.write_text(json.dumps(row) + "\n")
    questions = [{"question": "Who backed the rebels?", "pid": "p1", "answers": ["Qatar"]},
                 {"question": "Where is Qusayr?", "pid": "p1", "answers": ["Syria"]}]
    asked = calibrate.reworded(questions, paragraphs, 1.0, seed=7)
    assert asked[0] == {**questions[0], "question": "Who supported the rebels?", "reworded": True}
    assert asked[1] == questions[1]
    assert calibrate.reworded(questions, paragraphs, 0.0, seed=7) == questions
    del sys.modules["calibrate"]


def test_calibration_records_a_command_anyone_can_rerun(monkeypatch):
    """A --rows-cache FILE is scratch space of one machine: the shipped calibration says it was used, not where."""
    monkeypatch.syspath_prepend(str(TRAINING))
    import calibrate

    argv = ["--reword", "1.0", "--rows-cache", "/scratch/rows.json", "--ranking", "question", "--write"]
    assert calibrate.recorded_command(argv) == ("python training/calibrate.py --reword 1.0 --ranking question --write"
                                                " (candidate rows collected once with --rows-cache and reused)")
    assert calibrate.recorded_command(["--write"]) == "python training/calibrate.py --write"
    del sys.modules["calibrate"]


def test_segments_average_tensor_by_tensor_in_their_own_dtype(tmp_path, monkeypatch):
    """training/average_segments.py: the mean of two fp16 files is fp16, and files of other models are refused."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    monkeypatch.syspath_prepend(str(TRAINING))
    import average_segments

    a, b, other = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "c.safetensors"
    save_file({"w": np.array([1.0, 2.0], dtype=np.float16)}, str(a))
    save_file({"w": np.array([3.0, 5.0], dtype=np.float16)}, str(b))
    save_file({"v": np.array([0.0], dtype=np.float16)}, str(other))
    out = tmp_path / "mean.safetensors"
    assert average_segments.main([str(a), str(b), "--out", str(out)]) == 0
    mean = load_file(str(out))["w"]
    assert mean.dtype == np.float16 and mean.tolist() == [2.0, 3.5]
    with pytest.raises(SystemExit, match="other tensors"):
        average_segments.main([str(a), str(other), "--out", str(out)])
    del sys.modules["average_segments"]


def test_the_spread_fit_keeps_the_ranking_and_matches_the_answer_stage(monkeypatch):
    """training/calibrate.py --spread: on questions where a best candidate followed closely by others is less often
    right, the fitted spread weight is negative; the best candidate is the same with and without it; and the
    confidence the fit reports for it is the one qa.calibration computes from the written weights."""
    monkeypatch.syspath_prepend(str(TRAINING))
    import calibrate

    from qa.calibration import Calibration

    rng = random.Random(3)
    rows, features = [], ["margin", "sentence_dense"]
    for q in range(400):
        close = q % 2 == 1  # half the questions: three candidates at nearly the best one's score
        best = rng.uniform(0.0, 4.0)  # a higher best score is more often right, a close field less often
        right = rng.random() < 1 / (1 + math.exp(-(best - 2.0 + (-1.0 if close else 1.0))))
        scores = [best] + ([best - rng.uniform(0.0, 0.3) for _ in range(3)] if close else [best - 4.0, best - 5.0])
        for i, s in enumerate(scores):
            rows.append({"q": q, "variant": "open", "unanswerable": False, "y": float(right and i == 0),
                         "x": [s, rng.uniform(-0.1, 0.1)]})
    plain, *_ = calibrate.fit_confidence(rows, "question", features)
    w, spread_weight, spread_scale = calibrate.fit_confidence(rows, "question", features, spread=True)
    assert spread_weight < 0
    for q in range(0, 400, 37):
        group = [r for r in rows if r["q"] == q]
        assert max(group, key=lambda r: w @ [1.0, *r["x"]]) is max(group, key=lambda r: plain @ [1.0, *r["x"]])
    cal = Calibration(tuple(features), tuple(w[1:]), float(w[0]), 0.5, spread_weight=spread_weight,
                      spread_scale=spread_scale)
    tops = calibrate.top_answers(rows, w, (spread_weight, spread_scale), features)
    group = [r for r in rows if r["q"] == 1]
    named = [dict(zip(features, r["x"], strict=True)) for r in group]
    assert tops[1][0] == pytest.approx(max(cal.confidence(f, cal.spread(named)) for f in named))
    del sys.modules["calibrate"]
