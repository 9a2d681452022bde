"""The performance targets (DESIGN.md §7, issue 4): the one place they are defined.

Ratios are to the floor measured in the same run with the same client, over streamable HTTP.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Compare = Literal["<=", "<", ">="]
# Which rows of the section a target applies to.
Scope = Literal["every", "largest_size", "most_agents"]

X_FLOOR = "\u00d7 floor"  # the multiplication sign

_COMPARE: dict[Compare, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    section: str
    op: str
    metric: str  # a key of the measured row
    compare: Compare
    limit: float
    unit: str
    scope: Scope = "every"


TARGETS: tuple[Target, ...] = (
    Target("add_message p50", "sequential_http", "add_message", "ratio_p50", "<=", 1.3, X_FLOOR),
    Target(
        "get_messages (50) p50",
        "sequential_http",
        "get_messages",
        "ratio_p50",
        "<=",
        1.5,
        X_FLOOR,
    ),
    Target(
        "throughput, concurrent writers",
        "concurrency",
        "add_message",
        "throughput_ratio",
        ">=",
        0.7,
        X_FLOOR,
        "most_agents",
    ),
    Target("notification p95, 2025-11-25", "live", "notify_2025", "p95_ms", "<=", 10, "ms"),
    Target("notification p95, 2026-07-28", "live", "notify_2026", "p95_ms", "<=", 10, "ms"),
    Target("wait_for_updates p95", "live", "wait_for_updates", "p95_ms", "<=", 10, "ms"),
    # DESIGN.md §7: a subscriber on another server process sharing the database.
    Target("notification p95, across processes", "live", "notify_cross", "p95_ms", "<=", 50, "ms"),
    Target(
        "search_context p95",
        "sequential_http",
        "search_context",
        "p95_ms",
        "<=",
        100,
        "ms",
        "largest_size",
    ),
    Target(
        "start-up to healthy /health (p50)", "startup", "startup_fresh", "p50_ms", "<", 1500, "ms"
    ),
    Target("idle memory (VmRSS)", "memory", "rss_idle", "value_mb", "<", 80, "MB"),
    # Issue 9: every labelled typo query finds its message in the top 3, at every size.
    Target("search recall@3", "search_quality", "search_quality", "recall_at_3", ">=", 1.0, ""),
    Target(
        "search_context p95, typo queries",
        "search_quality",
        "search_quality",
        "p95_ms",
        "<=",
        100,
        "ms",
        "largest_size",
    ),
    # Issue 11: several processes on one database.
    Target(
        "throughput, 50 writers, 2 workers",
        "scaleout",
        "workers_2",
        "throughput_ratio",
        ">=",
        1.3,
        X_FLOOR,
    ),
    *(
        Target(
            f"notification p95 across processes on PostgreSQL, {era}",
            "scaleout",
            f"notify_postgres_{era[:4]}",
            "p95_ms",
            "<=",
            50,
            "ms",
        )
        for era in ("2025-11-25", "2026-07-28")
    ),
    Target("idle server on PostgreSQL", "scaleout", "idle_postgres", "per_second", "<", 1, "tx/s"),
    # Issue 12: a hundred dashboard streams on the session cost MCP calls at most 10%.
    *(
        Target(
            f"add_message p50 with 100 dashboard streams open on {where}",
            "dashboard",
            op,
            "ratio_p50",
            "<=",
            1.1,
            "\u00d7 quiet",
        )
        for op, where in (
            ("add_message_streams", "its session"),
            ("add_message_streams_elsewhere", "another session"),
        )
    ),
    # Issue 8: an expected error (a refused call) costs no more than a success.
    *(
        Target(f"refused {op} p50", "error_cost", op, "ratio_p50", "<=", 1.0, "\u00d7 success")
        for op in ("get_session", "get_messages", "add_message", "update_session", "list_sessions")
    ),
)


def _rows_in_scope(target: Target, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [r for r in rows if r.get("op") == target.op and r.get("server", "ours") == "ours"]
    if target.scope == "largest_size" and rows:
        largest = max(r.get("size", 0) for r in rows)
        rows = [r for r in rows if r.get("size", 0) == largest]
    if target.scope == "most_agents" and rows:
        most = max(r.get("agents", 0) for r in rows)
        rows = [r for r in rows if r.get("agents", 0) == most]
    return rows


def evaluate(sections: dict[str, Any]) -> list[dict[str, Any]]:
    """One verdict per target and matching row; a missing measurement is "not measured"."""
    verdicts: list[dict[str, Any]] = []
    for target in TARGETS:
        rows = _rows_in_scope(target, sections.get(target.section, {}).get("rows", []))
        if not rows:
            verdicts.append(_verdict(target, None, None))
        for row in rows:
            verdicts.append(_verdict(target, row, row.get(target.metric)))
    return verdicts


def _verdict(target: Target, row: dict[str, Any] | None, value: Any) -> dict[str, Any]:
    measured = isinstance(value, int | float) and not math.isnan(value)
    met = measured and _COMPARE[target.compare](float(value), target.limit)
    if measured and row is not None and row.get("errors"):
        met = False  # a fast run with errors does not count
    return {
        "target": target.label,
        "measurement": row["name"] if row else None,
        "section": target.section,
        "metric": target.metric,
        "limit": f"{target.compare} {target.limit:g} {target.unit}",
        "value": value if measured else None,
        "unit": target.unit,
        "met": bool(met) if measured else None,
    }
