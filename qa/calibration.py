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

The file also holds the on-topic rule (``on_topic_min_dense``): whether the retrieved passages are about the
question at all, a threshold on ``topic_score`` fitted on SQuAD dev questions searched with and without their
article (training/calibrate.py --on-topic-only). It decides how an abstention is shown (the best candidate as
a labelled low-confidence answer, or "Nothing in the articles is about this"), never whether qa abstains. The
field is optional: a file without it (written before the rule existed) loads, and means "no rule": any
retrieval with a hit counts as on topic.
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
from qa.types import Hit

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
CALIBRATION_PATH = READER_DIR / CALIBRATION_FILE
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Calibration:
    """Confidence = sigmoid(bias + sum of weight * feature), features matched by name in ``features`` order."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    abstain_threshold: float  # chosen by training/calibrate.py on held-out questions (see its MAX_ANSWERED)
    reader_sha256: str | None = None  # the reader.onnx the fit was made with
    fitted: Mapping[str, Any] = field(default_factory=dict, compare=False)  # provenance: script, date, data
    # The on-topic rule: passages are about the question when topic_score(hits) reaches this (None = no rule).
    on_topic_min_dense: float | None = None

    def __post_init__(self) -> None:
        if len(self.features) != len(self.weights):
            raise ValueError(f"{len(self.weights)} calibration weights for {len(self.features)} features "
                             f"{self.features}: give one weight per feature.")

    def weights_by_name(self) -> dict[str, float]:
        return dict(zip(self.features, self.weights, strict=True))

    def confidence(self, features: Mapping[str, float]) -> float:
        """The calibrated probability that a candidate with these features is right."""
        z = self.bias + sum(w * features[name] for name, w in zip(self.features, self.weights, strict=True))
        return sigmoid(z)

    def on_topic(self, hits: Sequence[Hit]) -> bool:
        """Are the retrieved passages about the question? False without hits; True when there is no rule
        (``on_topic_min_dense`` None) or no dense score to apply it to (a mode without dense retrieval)."""
        if not hits:
            return False
        score = topic_score(hits)
        return self.on_topic_min_dense is None or score is None or score >= self.on_topic_min_dense

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "features": list(self.features), "weights": list(self.weights),
                "bias": self.bias, "abstain_threshold": self.abstain_threshold,
                "reader_sha256": self.reader_sha256, "on_topic_min_dense": self.on_topic_min_dense,
                "fitted": dict(self.fitted)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        """Parse a calibration.json record; ModelLoadError saying what to do when it is not one."""
        try:
            if data.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {data.get('format_version')!r}, expected {FORMAT_VERSION}")
            return cls(features=tuple(str(n) for n in data["features"]),
                       weights=tuple(float(w) for w in data["weights"]), bias=float(data["bias"]),
                       abstain_threshold=float(data["abstain_threshold"]), reader_sha256=data.get("reader_sha256"),
                       fitted=dict(data.get("fitted") or {}), on_topic_min_dense=_optional_float(
                           data.get("on_topic_min_dense")))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(
                f"{source} is not a valid calibration ({exc}). Restore it with `git checkout -- {source}` or "
                "refit it with `python training/calibrate.py --write`."
            ) from None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def topic_score(hits: Sequence[Hit]) -> float | None:
    """What the on-topic rule thresholds: the dense cosine of the best hit, -1 (the cosine's floor) when the
    dense run did not retrieve it (found by BM25 alone); None when no hit has a dense score (no hits, or a mode
    without dense retrieval). Chosen among the scores training/calibrate.py compares, by AUC."""
    if not any("dense" in h.scores for h in hits):
        return None
    return hits[0].scores.get("dense", -1.0)


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
    for name in ("features", "weights"):
        if name in overrides:
            overrides[name] = tuple(overrides[name])
    return replace(calibration, **overrides) if overrides else calibration

