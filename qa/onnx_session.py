"""How qa opens ONNX Runtime sessions (the reader and the ONNX encoders): one place for their settings.

Exact int8 arithmetic on every x86 host. The reader (and the optional int8 encoder) are dynamically quantized
(u8 activations x s8 weights). On x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) ONNX Runtime's default
u8s8 kernel adds products in saturating 16-bit lanes, so the same model gives other logits there than on a VNNI
host: measured 2026-12-02, the shipped reader answered 12 of the 18 answerable seeds dev questions on an AVX2
EPYC and 11 on an AVX-512-VNNI Xeon (confidences ~0.03 apart). ``session.x64quantprecision`` makes such hosts
use the exact u8u8 kernel (slower there; no effect on VNNI hosts), so answers, confidences and the fitted
calibration mean the same on every machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

EXACT_INT8 = ("session.x64quantprecision", "1")  # onnxruntime_session_options_config_keys.h


def cpu_session(path: Path, threads: int | None = None, spin: bool | None = None) -> Any:
    """A CPU session for ``path``. ``threads``: intra-op threads (inter-op 1), default ONNX Runtime's.
    ``spin``: may idle worker threads spin (default ONNX Runtime's, which spins); spinning steals time slices
    from work on the other core (bench/results/ask_threads.md)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if spin is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry(*EXACT_INT8)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
