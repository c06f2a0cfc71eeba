#!/usr/bin/env bash
# Export the last checkpoint of a training run as the shipped reader and measure it and its checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
RUN=${1:-training/runs/reader}
OUT=training/results
mkdir -p "$OUT"
last=$(ls "$RUN"/step-*.safetensors | sort | tail -1)
(cd training && python export_reader.py "../$last" --out ../qa/models/reader --max-len 176)
python training/eval_reader.py --model qa/models/reader --json "$OUT/reader_dev_full.json"
# Curve on the first 1,000 dev questions (same questions for every checkpoint).
for ck in "$RUN"/step-*.safetensors; do
  name=$(basename "$ck" .safetensors)
  (cd training && python export_reader.py "../$ck" --out "/tmp/reader-$name" --max-len 176 > /dev/null)
  python training/eval_reader.py --model "/tmp/reader-$name" --limit 1000 --json "$OUT/curve-$name.json"
done
(cd training && python export_reader.py "../$last" --out /tmp/reader-fp32 --max-len 176 --no-quantize > /dev/null)
python training/eval_reader.py --model /tmp/reader-fp32 --limit 1000 --json "$OUT/reader_fp32_1000.json"
