#!/usr/bin/env bash
# Reproduce the shipped reader end to end (about 105 minutes on 2 CPU cores, most of it training), in the two
# stages it was made in (two sessions):
#   1. 22,000 questions from MiniLM, lr 1.5e-4, a random same-article no-answer window for 33% of them (56 min);
#   2. warm start on the next 16,000 questions of the same permutation, lr 1e-4, a no-answer window for 50%,
#      60% of them the answer-free paragraph sharing most words with the question (hard negatives; 48 min).
# Then: export int8 ONNX into qa/models/reader -> SQuAD dev EM/F1 with the gold paragraph -> the curve over the
# stage-2 checkpoints -> int8 vs fp32 check. Refit the confidence model afterwards (training/calibrate.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
python training/train_reader.py --questions 22000 --lr 1.5e-4 --out training/runs/reader
python training/train_reader.py --init training/runs/reader/step-00915.safetensors --offset 22000 \
  --questions 16000 --lr 1e-4 --neg-fraction 0.5 --hard-negative-fraction 0.6 --out training/runs/reader2
training/report_reader.sh training/runs/reader2
