"""Average the weights of several reader segments (checkpoint averaging), for training/export_reader.py.

Consecutive segments of one fine-tuning run sit in one basin of the loss; their mean often reads a little better
than any one of them for no training cost. Whether it does here is measured like every design choice, on the
held-out training questions (training/eval_reader.py --holdout 2000) and the seeds dev set.

    python training/average_segments.py training/segments/v3-seg3.safetensors training/segments/v3-seg4.safetensors \
        training/segments/v3-seg5.safetensors --out /tmp/v3-avg345.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file


def average(paths: list[Path]) -> dict[str, np.ndarray]:
    """The element-wise mean of the tensors, in float32, stored back in each tensor's own dtype (fp16)."""
    states = [load_file(str(p)) for p in paths]
    names = set(states[0])
    for path, state in zip(paths[1:], states[1:], strict=True):
        if set(state) != names:
            raise SystemExit(f"{path} holds other tensors than {paths[0]}: average segments of one model only.")
    return {name: np.mean([s[name].astype(np.float32) for s in states], axis=0).astype(states[0][name].dtype)
            for name in sorted(names)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("segments", nargs="+", type=Path, help="fp16 safetensors of training/segments.sh")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if len(args.segments) < 2:
        p.error("give two segments or more")
    save_file(average(args.segments), str(args.out))
    print(f"Wrote the mean of {len(args.segments)} segments to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
