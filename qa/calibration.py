"""The answer-confidence model: a logistic fit over the answer stage's features, shipped beside the reader.

The weights only mean something for the reader they were fitted with (its span scores are features), so
they live in ``qa/models/reader/calibration.json`` next to ``reader.onnx``, written by
``training/calibrate.py --write`` together with the abstention threshold it chose and where the fit came
from. Nothing is pasted into qa/config.py by hand; ``Config`` only holds optional overrides
(``calibration_weights``, ``calibration_bias``, ``abstain_threshold``: None = the shipped file).

The file is not in reader.json's checksums: reader.json is written by training/export_reader.py before any
calibration exists, and a damaged calibration.json cannot load silently (it is parsed and validated here,
raising ModelLoadError). Instead the file records the sha256 of the reader.onnx it was fitted on, and a
reader re-exported without a new fit is logged as a warning (answers still come, their confidences may be off).

The file also holds the on-topic rule (``on_topic``, an :class:`OnTopicRule`): whether the retrieved passages
are about the question at all, a linear rule over qa.topic's retrieval scores fitted on SQuAD dev questions
searched with and without their article (training/calibrate.py --on-topic-only). It decides how an abstention
is shown (the best candidate as a labelled low-confidence answer, or "Nothing in the articles is about this"),
never whether qa abstains. The field is optional: a file without it (written before the rule existed) loads,
and means "no rule": any retrieval with a hit counts as on topic. A file of the first rule
(``on_topic_min_dense``: a threshold on the best hit's cosine) loads as the equivalent one-score rule.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from qa.config import Config
from qa.errors import ModelLoadError
from qa.reader import READER_DIR

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
CALIBRATION_PATH = READER_DIR / CALIBRATION_FILE
FORMAT_VERSION = 2  # 2 added the candidate spread (spread_weight, spread_scale); version 1 files load without it
READABLE_VERSIONS = (1, 2)
# Left out of the candidate spread: the answer stage embeds the sentences of only the candidates that can change
# its result (qa.answer._sentences_needed), so the spread is computed from what every candidate has before that.
SPREAD_EXCLUDES = frozenset({"sentence_dense"})


@dataclass(frozen=True)
class OnTopicRule:
    """On topic when ``bias + sum(weight * score) >= 0``, scores (qa.topic.topic_scores) matched by name.

    The threshold is folded into ``bias``, so a rule is three small lists and a number in calibration.json."""

    scores: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def __post_init__(self) -> None:
        if not self.scores or len(self.scores) != len(self.weights):
            raise ValueError(f"{len(self.weights)} on-topic weights for scores {self.scores}: give one weight per "
                             "score.")

    def applies(self, scores: Mapping[str, float]) -> bool:
        return self.bias + sum(w * scores[n] for n, w in zip(self.scores, self.weights, strict=True)) >= 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_dict(cls, data: Any) -> OnTopicRule:
        return cls(tuple(str(n) for n in data["scores"]), tuple(float(w) for w in data["weights"]),
                   float(data["bias"]))


@dataclass(frozen=True)
class Calibration:
    """Confidence = sigmoid(bias + sum of weight * feature + spread_weight * spread), features matched by name in
    ``features`` order.

    ``spread`` is a property of the question, not of one candidate: log sum over the question's candidates j of
    exp(spread_scale * r_j), r_j their weighted features (without SPREAD_EXCLUDES). The ranking part says which
    span is best; the spread says how much the others compete with it: a best span far ahead of the rest is
    more often right than one of several close ones at the same score (training/calibrate.py --spread, fitted on
    SQuAD like the weights; spread_weight 0 turns it off).
    """

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    abstain_threshold: float  # chosen by training/calibrate.py on held-out questions (see its MAX_ANSWERED)
    reader_sha256: str | None = None  # the reader.onnx the fit was made with
    fitted: Mapping[str, Any] = field(default_factory=dict, compare=False)  # provenance: script, date, data
    # Are the retrieved passages about the question? (None = no rule: any hit counts as on topic)
    on_topic_rule: OnTopicRule | None = None
    spread_weight: float = 0.0
    spread_scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.features) != len(self.weights):
            raise ValueError(f"{len(self.weights)} calibration weights for {len(self.features)} features "
                             f"{self.features}: give one weight per feature.")

    def weights_by_name(self) -> dict[str, float]:
        return dict(zip(self.features, self.weights, strict=True))

    def spread(self, candidates: Sequence[Mapping[str, float]]) -> float:
        """The spread term of a question from the features of all its candidates (0.0 when not weighed)."""
        if not self.spread_weight or not candidates:
            return 0.0
        weighed = [(n, w) for n, w in zip(self.features, self.weights, strict=True) if n not in SPREAD_EXCLUDES]
        r = [self.spread_scale * sum(w * f[n] for n, w in weighed) for f in candidates]
        top = max(r)
        return top + math.log(sum(math.exp(v - top) for v in r))

    def confidence(self, features: Mapping[str, float], spread: float = 0.0) -> float:
        """The calibrated probability that a candidate with these features is right, among candidates with this
        ``spread`` (:meth:`spread`)."""
        z = self.bias + sum(w * features[name] for name, w in zip(self.features, self.weights, strict=True))
        return sigmoid(z + self.spread_weight * spread)

    def on_topic(self, scores: Mapping[str, float] | None) -> bool:
        """Are the retrieved passages about the question? ``scores`` are qa.topic.topic_scores (None: nothing
        was retrieved, never on topic); True when there is no rule."""
        if scores is None:
            return False
        return self.on_topic_rule is None or self.on_topic_rule.applies(scores)

    def to_dict(self) -> dict[str, Any]:
        # Without a spread the record is a format-1 one, readable by qa versions before the spread existed.
        spread = {"spread_weight": self.spread_weight, "spread_scale": self.spread_scale} if self.spread_weight else {}
        return {"format_version": FORMAT_VERSION if spread else 1, "features": list(self.features),
                "weights": list(self.weights), "bias": self.bias, "abstain_threshold": self.abstain_threshold,
                "reader_sha256": self.reader_sha256, **spread,
                "on_topic": None if self.on_topic_rule is None else self.on_topic_rule.to_dict(),
                "fitted": dict(self.fitted)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        """Parse a calibration.json record; ModelLoadError saying what to do when it is not one."""
        try:
            if data.get("format_version") not in READABLE_VERSIONS:
                raise ValueError(f"format_version {data.get('format_version')!r}, expected one of {READABLE_VERSIONS}")
            return cls(features=tuple(str(n) for n in data["features"]),
                       weights=tuple(float(w) for w in data["weights"]), bias=float(data["bias"]),
                       abstain_threshold=float(data["abstain_threshold"]), reader_sha256=data.get("reader_sha256"),
                       fitted=dict(data.get("fitted") or {}), on_topic_rule=_on_topic_rule(data),
                       spread_weight=float(data.get("spread_weight", 0.0)),
                       spread_scale=float(data.get("spread_scale", 1.0)))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(
                f"{source} is not a valid calibration ({exc}). Restore it with `git checkout -- {source}` or "
                "refit it with `python training/calibrate.py --write`."
            ) from None


def _on_topic_rule(data: Mapping[str, Any]) -> OnTopicRule | None:
    """The rule of a calibration.json record: ``on_topic``, or the first rule's ``on_topic_min_dense`` (a
    threshold t on the best hit's cosine, i.e. 1 * top_dense - t >= 0), or None."""
    if data.get("on_topic") is not None:
        return OnTopicRule.from_dict(data["on_topic"])
    if data.get("on_topic_min_dense") is not None:
        return OnTopicRule(("top_dense",), (1.0,), -float(data["on_topic_min_dense"]))
    return None


def sides_confidence(confidences: Sequence[float]) -> float:
    """The chance that at least one side of a disagreement is right, each side's confidence taken as independent:
    1 - prod(1 - c) (one side: its own confidence). The answer stage shows every side of a disagreement on a
    quantity, so it answers when this passes the abstention threshold (qa.answer.answer_from_hits)."""
    return 1.0 - math.prod(1.0 - c for c in confidences)


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@lru_cache(maxsize=4)
def load_calibration(path: Path = CALIBRATION_PATH) -> Calibration:
    """The calibration in ``path`` (read once per process), checked against the reader beside it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"No answer calibration at {path}. Reinstall qa from the repository (`pip install -e .`) or fit one "
            "with `python training/calibrate.py --write`."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"Cannot read the answer calibration {path} ({exc}). Restore it with "
                             f"`git checkout -- {path}` or refit it with `python training/calibrate.py --write`.") \
            from None
    calibration = Calibration.from_dict(data, str(path))
    fitted_on, shipped = calibration.reader_sha256, reader_sha256(path.parent)
    if fitted_on and shipped and fitted_on != shipped:
        logger.warning("The answer calibration %s was fitted on another reader (reader.onnx sha256 %s…, now %s…): "
                       "confidences may be off; refit with `python training/calibrate.py --write`.",
                       path, fitted_on[:12], shipped[:12])
    return calibration


def reader_sha256(model_dir: Path) -> str | None:
    """reader.onnx's sha256 as recorded in reader.json (verified when the reader loads), or None."""
    try:
        return json.loads((model_dir / "reader.json").read_text(encoding="utf-8"))["sha256"]["reader.onnx"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def calibration_for(config: Config, path: Path = CALIBRATION_PATH) -> Calibration:
    """The shipped calibration with the overrides ``config`` sets (its calibration fields that are not None)."""
    calibration = load_calibration(path)
    overrides = {
        "features": config.calibration_features,
        "weights": config.calibration_weights,
        "bias": config.calibration_bias,
        "abstain_threshold": config.abstain_threshold,
    }
    overrides = {name: value for name, value in overrides.items() if value is not None}
    if "weights" in overrides:  # override weights come with their own spread term, or none
        overrides["spread_weight"], overrides["spread_scale"] = config.calibration_spread or (0.0, 1.0)
    for name in ("features", "weights"):
        if name in overrides:
            overrides[name] = tuple(overrides[name])
    return replace(calibration, **overrides) if overrides else calibration

