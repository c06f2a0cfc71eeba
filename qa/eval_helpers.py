"""Small helpers of qa.evaluate, free of any benchmark: JSON-lines records, evenly spread subsets, means and
percentiles that skip undefined values, latency summaries and plain text tables (also valid markdown).

bench/ scripts use them too (through qa.evaluate, which re-exports them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qa.types import Hit


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file (blank lines skipped)."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def spread(items: Sequence[Any], limit: int) -> list[Any]:
    """``limit`` items evenly spaced over ``items`` (all when limit <= 0), so a subset covers every article."""
    if limit <= 0 or limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation, as numpy), or None for no values."""
    return float(np.percentile(values, q)) if len(values) else None


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the defined values, or None when there are none."""
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def dedupe_docs(hits: Sequence[Hit]) -> list[str]:
    """Document ids in rank order, each kept at its best (first) passage."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(hit.passage.doc_id, None)
    return list(seen)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and its wall-clock milliseconds."""
    t0 = time.perf_counter()
    out = fn()
    return out, 1000 * (time.perf_counter() - t0)


def latency(ms: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 of per-question milliseconds, rounded to 0.1 ms (None without questions)."""
    p50, p95 = percentile(ms, 50), percentile(ms, 95)
    return {
        "latency_ms_p50": None if p50 is None else round(p50, 1),
        "latency_ms_p95": None if p95 is None else round(p95, 1),
    }


def round_or_none(value: float | None, digits: int = 4) -> float | None:
    """A metric rounded for the JSON results; None (undefined) stays None."""
    return None if value is None else round(value, digits)


def _cell(value: Any) -> str:
    """Fractions with 3 decimals; strings (pre-formatted cells) as they are; None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def ms(value: float | None) -> str:
    """A latency cell: milliseconds with one decimal."""
    return "-" if value is None else f"{value:.1f}"


def render_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain, aligned text table (also valid GitHub markdown)."""
    cells = [list(header)] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
