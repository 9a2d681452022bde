"""Latency summaries: nearest-rank percentiles in milliseconds, two decimals."""

from __future__ import annotations

import math
from typing import Any


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def summarize(samples: list[float], errors: int = 0) -> dict[str, Any]:
    """p50/p95/p99/mean/min/max of latencies given in seconds, reported in ms."""
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0, "errors": errors}
    return {
        "n": len(ordered),
        "errors": errors,
        "p50_ms": ms(percentile(ordered, 50)),
        "p95_ms": ms(percentile(ordered, 95)),
        "p99_ms": ms(percentile(ordered, 99)),
        "mean_ms": ms(sum(ordered) / len(ordered)),
        "min_ms": ms(ordered[0]),
        "max_ms": ms(ordered[-1]),
    }


def ratio(value: float | None, floor: float | None) -> float | None:
    """value / floor rounded to two decimals; None when either is missing or floor is 0."""
    if value is None or floor is None or floor <= 0 or math.isnan(value) or math.isnan(floor):
        return None
    return round(value / floor, 2)


def with_floor(row: dict[str, Any], floor: dict[str, Any] | None) -> dict[str, Any]:
    """Adds the floor's percentiles and this row's ratios to them (same run, same client)."""
    if floor is None:
        return row
    row["floor"] = {k: floor.get(k) for k in ("name", "p50_ms", "p95_ms", "p99_ms")}
    for q in ("p50", "p95", "p99"):
        row[f"ratio_{q}"] = ratio(row.get(f"{q}_ms"), floor.get(f"{q}_ms"))
    return row
