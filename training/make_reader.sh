#!/usr/bin/env bash
# Reproduce the shipped reader end to end (about 60-75 minutes on 2 CPU cores, most of it training):
# train -> export int8 ONNX into qa/models/reader -> SQuAD dev EM/F1 with the gold paragraph -> the
# F1-against-training-questions curve from the intermediate checkpoints -> int8 vs fp32 check.
# Usage: training/make_reader.sh [extra train_reader.py flags, e.g. --init qa/models/reader/reader.safetensors --offset 22000]
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
RUN=training/runs/reader
python training/train_reader.py --questions 22000 --lr 1.5e-4 --out "$RUN" "$@"
training/report_reader.sh "$RUN"
