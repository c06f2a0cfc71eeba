#!/usr/bin/env bash
# Reader v3, trained in segments that each fit one 3-hour session (see training/train_reader.py).
# Usage: training/segments.sh N   runs segment N; rerun the same command after a kill to resume it.
# Each segment warm-starts from the previous segment's fp16 weights committed in training/segments/, and
# its own final weights are copied there to be committed. Questions are positions of the seeded permutation of
# the 78,161 exact-offset SQuAD train questions; the last 2,000 (76,161..78,160) are held out for design choices.
#   1: 38,000..57,999 (epoch 1 continues the shipped reader, which saw 0..37,999)
#   2: 58,000..76,160 (completes epoch 1)
#   3: 0..38,079, 4: 38,080..76,160 (epoch 2, other windows: --epoch-seed 1)
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
common=(--lr 8e-5 --max-len 256 --neg-fraction 0.5 --hard-negative-fraction 0.6)
case "${1:?segment number}" in
  1) init=qa/models/reader/reader.safetensors; range=(--offset 38000 --questions 20000) ;;
  2) init=training/segments/v3-seg1.safetensors; range=(--offset 58000 --questions 18161) ;;
  3) init=training/segments/v3-seg2.safetensors; range=(--offset 0 --questions 38080 --epoch-seed 1) ;;
  4) init=training/segments/v3-seg3.safetensors; range=(--offset 38080 --questions 38081 --epoch-seed 1) ;;
  *) echo "unknown segment $1" >&2; exit 2 ;;
esac
out=training/runs/v3-seg$1
python training/train_reader.py --init "$init" "${range[@]}" "${common[@]}" --out "$out"
last=$(ls "$out"/step-*.safetensors | sort | tail -1)
cp "$last" "training/segments/v3-seg$1.safetensors"
cp "$out/train_log.json" "training/results/train_log_v3_seg$1.json"
echo "segment $1 done: training/segments/v3-seg$1.safetensors"
