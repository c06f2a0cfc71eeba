"""The retrieval-mode registry, the Pipeline's steps and mode argument, the calibration shipped beside the
reader, and the CLI settings generated from Config."""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import tomllib
from dataclasses import fields, replace
from pathlib import Path

import pytest

from qa import calibration
from qa.calibration import CALIBRATION_PATH, Calibration, OnTopicRule, calibration_for, load_calibration
from qa.config import DEFAULT_CONFIG, Config, cli_settings
from qa.errors import ModelLoadError
from qa.search import MODES, REGISTRY, sparse_mode

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, encoder):
    from qa.index.build import build_index
    from qa.pipeline import Pipeline

    index = tmp_path_factory.mktemp("pipeline") / "index"
    build_index(REPO / "seeds", index, progress=False, encoder=encoder)
    return Pipeline.load(index, encoder=encoder)


# ------------------------------------------------------------------------------------------------ modes


def test_the_registry_is_where_mode_names_come_from():
    from qa.cli import parser

    assert MODES == tuple(REGISTRY) and MODES[0] == "hybrid" and set(MODES) == {"hybrid", "dense", "sparse"}
    sub = next(a for a in parser()._actions if a.dest == "command").choices
    mode = next(a for a in sub["eval"]._actions if a.dest == "mode")
    assert tuple(mode.choices) == MODES


def test_old_names_still_import():
    import qa
    from qa.pipeline import Pipeline
    from qa.retrieve import MODES as OLD_MODES
    from qa.retrieve import Retriever, fuse

    assert qa.Retriever is Retriever is Pipeline is qa.Pipeline and OLD_MODES == MODES and callable(fuse)


def test_ask_takes_a_mode_and_a_new_mode_is_one_registry_entry(pipeline, monkeypatch):
    question = "Which nerve agent was the regime accused of using?"
    sparse_only = pipeline.ask(question, mode="sparse")
    assert sparse_only.passages and all("dense" not in h.scores for h in sparse_only.passages)
    assert all("fused" in h.scores for h in pipeline.ask(question).passages)

    calls = []

    def first_mode(store, encoder, q, k, config):  # BM25, recorded: a mode is a function and an entry
        calls.append(k)
        return sparse_mode(store, encoder, q, k, config)

    monkeypatch.setitem(REGISTRY, "recorded", first_mode)
    res = pipeline.ask(question, mode="recorded")
    assert calls == [pipeline.search_depth]
    assert [h.passage.passage_id for h in res.passages] == [h.passage.passage_id for h in sparse_only.passages]
    with pytest.raises(ValueError, match="mode must be one of .*'recorded'.*got 'bm25'"):
        pipeline.search(question, mode="bm25")
    with pytest.raises(ValueError, match="mode must be one of"):
        pipeline.ask("?!", mode="bm25")


def test_the_pipeline_steps_are_what_ask_reads(pipeline):
    question = "Who backed the rebels?"
    hits = pipeline.search(question, k=pipeline.search_depth)
    to_read = pipeline.passages_to_read(hits)
    assert len(to_read) == pipeline.config.reader_passages
    found = pipeline.candidates(question, to_read)
    assert found and all(c.features["sentence_dense"] > -1.0 for c in found)  # every feature is computed
    calibration = calibration_for(pipeline.config)
    spread = calibration.spread([c.features for c in found])  # the question's candidate spread
    best = max(calibration.confidence(c.features, spread) for c in found)
    res = pipeline.ask(question)
    shown = res.answers or res.suggestions
    assert shown and shown[0].confidence == round(best, 4)


def test_every_passage_read_has_its_dense_score_whichever_mode_found_it(pipeline):
    # The confidence model weighs the passage's cosine; BM25 hits have none until the pipeline fills it in.
    question = "Who backed the rebels?"
    everything = pipeline.search(question, k=len(pipeline.store.passages), mode="dense")
    cosine = {h.passage.passage_id: h.scores["dense"] for h in everything}
    to_read = pipeline.passages_to_read(pipeline.search(question, k=pipeline.search_depth, mode="sparse"))
    assert to_read and all("dense" not in h.scores for h in to_read)
    filled = pipeline.with_passage_similarity(question, to_read)
    assert [h.passage for h in filled] == [h.passage for h in to_read]
    assert all(h.scores["bm25"] == t.scores["bm25"] for h, t in zip(filled, to_read, strict=True))
    for hit in filled:
        assert hit.scores["dense"] == pytest.approx(cosine[hit.passage.passage_id], abs=1e-5)
    found = pipeline.candidates(question, to_read)
    assert found and all(c.features["dense"] == c.hit.scores["dense"] > 0 for c in found)
    assert pipeline.with_passage_similarity(question, filled) == filled  # nothing left to fill: unchanged
    with pytest.raises(KeyError, match="not in the index"):
        pipeline.store.row_of("no-such-article.txt#0")


def test_with_config_shares_the_index_and_models(pipeline):
    deeper = pipeline.with_config(dense_depth=80)
    assert deeper.store is pipeline.store and deeper.encoder is pipeline.encoder
    assert deeper.config.dense_depth == 80 and pipeline.config.dense_depth == DEFAULT_CONFIG.dense_depth


# ------------------------------------------------------------------------------------------ calibration


def test_the_shipped_calibration_is_the_fit_config_used_to_hold():
    from qa.answer import FEATURES

    shipped = load_calibration()
    assert set(shipped.features) <= set(FEATURES)
    assert shipped.features == ("margin", "log_prob", "dense", "log_rank", "sentence_dense", "log_support",
                                "synonym_overlap", "number_match", "number_mismatch")
    assert shipped.weights == (0.5614, -0.1995, 8.1922, -0.9521, 1.262, 1.0904, 6.2165, 0.563, -1.0122)
    assert (shipped.bias, shipped.abstain_threshold) == (-1.0623, 0.29)
    assert (shipped.spread_weight, shipped.spread_scale) == (-1.9125, 0.3601)  # training/calibrate.py --spread
    assert shipped.on_topic_rule == OnTopicRule(("top_dense", "coverage"), (16.2859, 9.1601), -12.0794)  # on_topic.md
    meta = json.loads((CALIBRATION_PATH.parent / "reader.json").read_text())
    assert shipped.reader_sha256 == meta["sha256"]["reader.onnx"]
    assert shipped.fitted["by"] == "training/calibrate.py"
    assert calibration_for(DEFAULT_CONFIG) == shipped


def test_questions_that_ask_for_a_number_get_a_span_with_one_first(pipeline):
    """The answer types the calibration weighs, on the seeds: "long, long war" and "single" sit in the passage
    most like "How long was the fight for Qusayr?" and the reader prefers them there; a duration ("three weeks",
    002; "an 18-day battle", 004) must come first, answered or as the best low-confidence candidate."""
    from qa.answer_types import durations_in_days, numbers_in

    fight = pipeline.ask("How long was the fight for Qusayr?")
    first = (fight.answers or fight.suggestions)[0]
    assert durations_in_days(first.text), first.text
    days = pipeline.ask("How many days did the battle for Qusayr take?")
    first = (days.answers or days.suggestions)[0]
    assert 18 in numbers_in(first.text) and first.sources[0].doc_id.startswith("004_"), first


def test_the_battle_length_disagreement_is_shown_with_both_sources(pipeline):
    """seeds/002 says "three weeks of bitter fighting", seeds/004 "an 18-day battle", in a passage the reader
    does not read for this question (004's third): the rival passages (Config.rival_passages) are read because
    the best answer is a duration, and both sides are shown, each with its source."""
    from qa.answer_types import durations_in_days

    res = pipeline.ask("How long was the fight for Qusayr?")
    assert not res.abstained and res.conflict
    best = res.answers[0]
    sides = [best] + [res.answers[i] for i in best.conflicts_with]
    stated = {(round(min(durations_in_days(a.text))), a.sources[0].doc_id[:3]) for a in sides}
    assert {(21, "002"), (18, "004")} <= stated, [(a.text, a.sources[0].doc_id) for a in sides]
    read = pipeline.passages_to_read(pipeline.search(res.question, k=pipeline.search_depth))
    assert not any("18-day" in h.passage.text for h in read)  # 004's side is only in a rival passage
    # Off, the same question shows one side only (answered, or a low-confidence candidate): the check is what
    # finds the other.
    alone = pipeline.with_config(rival_passages=0).ask(res.question)
    assert not alone.conflict and (alone.answers or alone.suggestions)[0].text == best.text
    who = "Who backed the rebels?"  # not a quantity question: nothing more is read
    assert pipeline.rival_passages(who, pipeline.search(who, k=pipeline.search_depth), []) == []


def test_disagreeing_sides_are_answered_together_when_together_they_pass_the_threshold(pipeline):
    """A quantity question whose sources disagree is answered with both sides when 1 - (1 - best)(1 - rival)
    reaches the threshold, even if the best side alone does not; below that it abstains. The thresholds are
    set around the real confidences of the battle-length question, so this holds for any fitted calibration."""
    from qa.calibration import sides_confidence

    assert sides_confidence([0.4]) == pytest.approx(0.4)
    assert sides_confidence([0.2, 0.3]) == pytest.approx(1 - 0.8 * 0.7)
    question = "How long was the fight for Qusayr?"
    free = pipeline.with_config(abstain_threshold=0.0).ask(question)
    assert free.conflict
    best = free.answers[0]
    sides = [best.confidence] + [free.answers[i].confidence for i in best.conflicts_with]
    together = sides_confidence(sides)
    assert together > best.confidence
    between = pipeline.with_config(abstain_threshold=(best.confidence + together) / 2).ask(question)
    assert not between.abstained and between.conflict and between.answers[0].text == best.text
    assert [a.confidence for a in between.answers] == [a.confidence for a in free.answers]
    above = pipeline.with_config(abstain_threshold=min(0.99, together + 0.01)).ask(question)
    assert above.abstained and not above.answers and above.suggestions[0].text == best.text
    who = "Who backed the rebels?"  # not a quantity question: its best answer alone decides
    weak = pipeline.ask(who).answers[0].confidence
    assert pipeline.with_config(abstain_threshold=min(0.99, weak + 0.01)).ask(who).abstained


def test_config_fields_override_the_shipped_calibration():
    shipped = load_calibration()
    tuned = calibration_for(Config(abstain_threshold=0.5, calibration_bias=-1.0))
    assert (tuned.abstain_threshold, tuned.bias, tuned.weights) == (0.5, -1.0, shipped.weights)
    with pytest.raises(ValueError, match="one weight per feature"):
        calibration_for(Config(calibration_weights=(1.0, 2.0)))


def test_the_candidate_spread_lowers_a_best_answer_with_close_rivals():
    cal = Calibration(features=("margin", "sentence_dense"), weights=(2.0, 1.0), bias=-1.0, abstain_threshold=0.3,
                      spread_weight=-1.0, spread_scale=0.5)
    best = {"margin": 2.0, "sentence_dense": 0.5}
    alone, close = [best, {"margin": -3.0, "sentence_dense": 0.9}], [best, {"margin": 1.9, "sentence_dense": 0.1}]
    # sentence_dense is left out of the spread (SPREAD_EXCLUDES): log(e^2 + e^-3) and log(e^2 + e^1.9)
    assert cal.spread(alone) == pytest.approx(math.log(math.exp(2.0) + math.exp(-3.0)))
    assert cal.spread(close) == pytest.approx(math.log(math.exp(2.0) + math.exp(1.9)))
    assert cal.confidence(best, cal.spread(close)) < cal.confidence(best, cal.spread(alone))
    # Ranking within a question is unchanged: the spread is the same for all of its candidates.
    assert cal.confidence(close[0], 1.3) > cal.confidence(close[1], 1.3)
    # Off (a format-1 file has no spread) it changes nothing.
    assert cal.to_dict()["format_version"] == 2
    v1 = {k: v for k, v in cal.to_dict().items() if not k.startswith("spread_")} | {"format_version": 1}
    old = Calibration.from_dict(v1)
    assert old.spread(close) == 0.0 and old.confidence(best, 5.0) == cal.confidence(best)
    assert old.to_dict() == v1  # no spread: written as format 1, as before the spread existed
    assert Calibration.from_dict(json.loads(json.dumps(cal.to_dict()))) == cal
    # Override weights bring their own spread, or none (an older fit).
    assert calibration_for(Config(calibration_weights=load_calibration().weights)).spread_weight == 0.0
    assert calibration_for(Config(calibration_weights=load_calibration().weights,
                                  calibration_spread=(-1.5, 0.4))).spread_weight == -1.5


def test_a_damaged_or_missing_calibration_says_what_to_do(tmp_path, caplog):
    bad = tmp_path / "calibration.json"
    bad.write_text('{"format_version": 1, "features": ["margin"]}')
    with pytest.raises(ModelLoadError, match="calibrate.py --write"):
        load_calibration(bad)
    bad.write_text("{not json")
    with pytest.raises(ModelLoadError, match="calibrate.py --write"):
        load_calibration(bad)
    with pytest.raises(ModelLoadError, match="No answer calibration"):
        load_calibration(tmp_path / "absent.json")

    other = tmp_path / "other"
    other.mkdir()
    (other / "reader.json").write_text(json.dumps({"sha256": {"reader.onnx": "0" * 64}}))
    (other / "calibration.json").write_text(CALIBRATION_PATH.read_text())
    with caplog.at_level(logging.WARNING, logger=calibration.__name__):
        assert load_calibration(other / "calibration.json") == load_calibration()
    assert "fitted on another reader" in caplog.text


def test_calibration_round_trips_and_ships_as_package_data():
    shipped = load_calibration()
    assert Calibration.from_dict(json.loads(json.dumps(shipped.to_dict()))) == shipped
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["qa"]
    inside = CALIBRATION_PATH.relative_to(REPO / "qa").as_posix()
    assert any(fnmatch.fnmatch(inside, pattern) for pattern in data)


def test_the_on_topic_rule_is_a_linear_rule_over_the_topic_scores():
    rule = replace(load_calibration(), on_topic_rule=OnTopicRule(("top_dense", "coverage"), (10.0, 5.0), -8.0))
    assert rule.on_topic({"top_dense": 0.5, "coverage": 0.6})  # 5 + 3 - 8 = 0: on topic at the threshold
    assert not rule.on_topic({"top_dense": 0.5, "coverage": 0.5})
    assert rule.on_topic({"top_dense": 0.3, "coverage": 1.0})  # a low cosine, every rare term present
    assert not rule.on_topic(None)  # nothing retrieved
    no_rule = replace(rule, on_topic_rule=None)
    assert no_rule.on_topic({"top_dense": -0.2, "coverage": 0.0}) and not no_rule.on_topic(None)
    with pytest.raises(ValueError, match="one weight per score"):
        OnTopicRule(("top_dense", "coverage"), (1.0,), 0.0)


def test_the_topic_scores_of_a_real_index_in_every_mode(pipeline):
    from qa.topic import coverage

    lexical = pipeline.store.lexical
    assert lexical.idf("qusayr") < lexical.idf("nasrallah") < lexical.idf("no-such-token")  # rarer, higher
    for mode in ("hybrid", "sparse"):
        hits = pipeline.search("When did Qusayr fall?", k=pipeline.search_depth, mode=mode)
        scores = pipeline.topic_scores("When did Qusayr fall?", hits)
        assert set(scores) == {"top_dense", "coverage"} and scores["coverage"] == 1.0  # "qusayr" and "fall"
        assert 0.0 < scores["top_dense"] < 1.0  # filled in for BM25's best hit too
    eiffel = pipeline.search("How tall is the Eiffel Tower?", k=pipeline.search_depth)
    assert coverage("How tall is the Eiffel Tower?", eiffel, lexical) < 0.5
    assert pipeline.topic_scores("anything", []) is None


def test_the_on_topic_rule_round_trips_and_older_files_still_load(tmp_path):
    shipped = load_calibration()
    data = json.loads(json.dumps(shipped.to_dict()))
    assert data["on_topic"] == shipped.on_topic_rule.to_dict()
    assert Calibration.from_dict(data) == shipped
    # A calibration.json of the first rule (a threshold on the best hit's cosine) loads as that one-score rule.
    first = {**{k: v for k, v in data.items() if k != "on_topic"}, "on_topic_min_dense": 0.45}
    rule = Calibration.from_dict(first).on_topic_rule
    assert rule == OnTopicRule(("top_dense",), (1.0,), -0.45)
    assert rule.applies({"top_dense": 0.46}) and not rule.applies({"top_dense": 0.44})
    # One written before any rule existed: loads, with no rule.
    old = {k: v for k, v in data.items() if k != "on_topic"}
    (tmp_path / "calibration.json").write_text(json.dumps(old))
    loaded = load_calibration(tmp_path / "calibration.json")
    assert loaded.on_topic_rule is None and loaded == replace(shipped, on_topic_rule=None)
    with pytest.raises(ModelLoadError, match="calibrate.py --write"):
        Calibration.from_dict({**data, "on_topic": {"scores": ["top_dense"], "weights": ["high"], "bias": 0}})


def test_write_on_topic_sets_only_that_field(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "training"))
    import calibrate

    target = tmp_path / "calibration.json"
    before = CALIBRATION_PATH.read_text()
    target.write_text(before)
    fitted = {"scores": ["top_dense", "coverage"], "weights": [1.5, 2.5], "bias": -2.0}
    written = calibrate.write_on_topic(target, {"on_topic_rule": {**fitted, "auc": 0.9}, "rule": "a rule",
                                                "questions": 10, "out": "r"})
    after = load_calibration(target)
    rule = OnTopicRule(("top_dense", "coverage"), (1.5, 2.5), -2.0)
    assert after == written == replace(load_calibration(), on_topic_rule=rule)
    old, new = json.loads(before), json.loads(target.read_text())
    assert new.pop("on_topic") == fitted and new["fitted"].pop("on_topic")["rule"] == "a rule"
    old.pop("on_topic", None)
    old["fitted"].pop("on_topic", None)
    assert new == old
    weights = next(line for line in before.splitlines() if '"weights"' in line)
    assert weights in target.read_text().splitlines()  # the lists stay on one line: a small diff


def test_on_topic_threshold_follows_the_stated_rule(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "training"))
    import calibrate

    off = [float(i) for i in range(20)]
    assert calibrate.on_topic_threshold(off, max_on=0.10) == 18.0  # 2 of 20 at or above it; at 17.0, 3 of 20
    assert calibrate.on_topic_threshold(off, max_on=0.0) > 19.0
    assert calibrate.auc([1.0, 2.0], [0.0, 0.5]) == 1.0 and calibrate.auc([1.0], [1.0]) == 0.5
    assert calibrate.auc([0.0, 1.0], [0.5]) == 0.5


# ------------------------------------------------------------------------------------------------ config


def test_cli_settings_come_from_config_fields():
    from qa.cli import parser

    sub = next(a for a in parser()._actions if a.dest == "command").choices
    for command in ("build", "ask", "check", "eval"):
        flags = {opt for a in sub[command]._actions for opt in a.option_strings}
        wanted = {"--" + f.name.replace("_", "-") for f in cli_settings(command)}
        assert wanted and wanted <= flags
    assert {f.name for f in cli_settings("check")} == set(DEFAULT_CONFIG.index_settings()) - {"model_name"}
    assert all(f.metadata["help"] for f in fields(Config) if f.metadata)
    assert "embed_backend" not in {f.name for f in fields(Config)} and not hasattr(Config, "from_dict")


def test_check_takes_the_index_settings(pipeline, capsys):
    from qa.cli import main

    index = str(pipeline.store.path.parent)  # store.path is the version directory inside the index
    assert main(["check", "--index", index]) == 0
    assert main(["check", "--index", index, "--passage-target-words", "100"]) == 1
    assert "passage_target_words" in capsys.readouterr().out
