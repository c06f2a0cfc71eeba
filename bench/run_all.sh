#!/usr/bin/env bash
# One benchmark run, every committed result: retrieval (qa vs BM25, dense, Haystack), answers (hybrid + reader
# and ablations), then bench/RESULTS.md. Run on an otherwise idle machine: latencies are part of the results.
# About 20-25 minutes on 2 cores once bench/.cache holds the SQuAD and SciFact indexes (first run: +10 min).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python bench/retrieval.py --squad-limit 1000 --haystack-reuse-vectors squad,scifact "$@"
python bench/answers.py --squad-limit 300
python bench/index_footprint.py
python bench/ask_threads.py
python bench/report.py
