"""bench/results/latest.json and latest.md: targets first, then a table per section."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import dashboard, error_cost, flood, search_quality

TIMES = "\u00d7"  # the multiplication sign
NONE = "-"
NOTES = Path(__file__).resolve().parent / "notes.md"
Column = tuple[str, Callable[[dict[str, Any]], str]]


def write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "latest.json", out / "latest.md"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return NONE
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _x(value: Any) -> str:
    return NONE if value is None else f"{value:.2f}{TIMES}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[met]


def _table(rows: list[dict[str, Any]], columns: list[Column]) -> str:
    lines = [
        "| " + " | ".join(title for title, _ in columns) + " |",
        "| " + " | ".join("---" for _ in columns) + " |",
    ]
    lines += ["| " + " | ".join(cell(r) for _, cell in columns) + " |" for r in rows]
    return "\n".join(lines)


def _target_cell(verdicts: list[dict[str, Any]], section: str) -> Callable[[dict[str, Any]], str]:
    by_row: dict[str, list[dict[str, Any]]] = {}
    for v in verdicts:
        if v["section"] == section and v["measurement"]:
            by_row.setdefault(v["measurement"], []).append(v)

    def cell(row: dict[str, Any]) -> str:
        return "; ".join(f"{v['limit']}: {_met(v['met'])}" for v in by_row.get(row["name"], []))

    return cell


def _latency_columns(prefix: list[Column], with_ratio: bool = True) -> list[Column]:
    columns = [
        *prefix,
        ("n", lambda r: _num(r.get("n"))),
        ("p50 ms", lambda r: _num(r.get("p50_ms"))),
        ("p95 ms", lambda r: _num(r.get("p95_ms"))),
        ("p99 ms", lambda r: _num(r.get("p99_ms"))),
    ]
    if with_ratio:
        columns += [
            (f"p50 {TIMES}floor", lambda r: _x(r.get("ratio_p50"))),
            (f"p95 {TIMES}floor", lambda r: _x(r.get("ratio_p95"))),
            (f"p99 {TIMES}floor", lambda r: _x(r.get("ratio_p99"))),
        ]
    return columns


def _errors(r: dict[str, Any]) -> str:
    return _num(r.get("errors", 0)) + (f" ({r['first_error']})" if r.get("first_error") else "")


def _targets_table(results: dict[str, Any]) -> str:
    rows = results["targets"]
    return _table(
        rows,
        [
            ("target", lambda v: v["target"]),
            ("measurement", lambda v: v["measurement"] or NONE),
            ("value", lambda v: NONE if v["value"] is None else f"{_num(v['value'])} {v['unit']}"),
            ("limit", lambda v: v["limit"]),
            ("result", lambda v: _met(v["met"])),
        ],
    )


def _machine(results: dict[str, Any]) -> str:
    m = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    dirty = {True: " (working tree had uncommitted changes)", False: " (clean)", None: ""}
    return "\n".join(
        [
            f"- date: {m['date']}",
            f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gb']} GB; load average "
            f"before the run {', '.join(str(x) for x in m.get('load_average', []))}",
            f"- OS: {m['os']}",
            f"- Python {m['python']}; {packages}",
            f"- git commit: {m['git_commit']}{dirty[m['git_dirty']]}",
            f"- run: {'quick (smoke) mode' if results['quick'] else 'full'}, "
            f"{results['duration_s']} s; command: `{results['command']}`",
        ]
    )


def _sequential(section: dict[str, Any], verdicts: list[dict[str, Any]], key: str) -> str:
    floor = section["floor"]
    intro = (
        f"{section['client']}; transport: {section['transport']}. Floor: `noop` on the bare "
        "FastMCP server, one call just before each of ours (pooled over the section: "
        f"p50 {_num(floor.get('p50_ms'))} ms, p95 {_num(floor.get('p95_ms'))} ms, "
        f"p99 {_num(floor.get('p99_ms'))} ms, n {_num(floor.get('n'))}). "
        "Each row's ratios are to the same percentile of its own paired floor calls."
    )
    columns = _latency_columns(
        [
            ("measurement", lambda r: r["name"]),
            ("floor p50 ms", lambda r: _num((r.get("floor") or {}).get("p50_ms"))),
        ]
    )
    columns += [("errors", _errors), ("target", _target_cell(verdicts, key))]
    return intro + "\n\n" + _table(section["rows"], columns)


def _load_table(section: dict[str, Any], verdicts: list[dict[str, Any]], key: str) -> str:
    count = "connections" if key == "lean" else "agents"
    columns: list[Column] = [
        (count, lambda r: _num(r.get(count))),
        ("measurement", lambda r: r["name"]),
        ("calls", lambda r: _num(r.get("calls"))),
        ("calls/s", lambda r: _num(r.get("throughput"), 1)),
        (f"calls/s {TIMES}floor", lambda r: _x(r.get("throughput_ratio"))),
        ("p50 ms", lambda r: _num(r.get("p50_ms"))),
        ("p95 ms", lambda r: _num(r.get("p95_ms"))),
        ("p99 ms", lambda r: _num(r.get("p99_ms"))),
        (f"p50 {TIMES}floor", lambda r: _x(r.get("ratio_p50"))),
        (f"p95 {TIMES}floor", lambda r: _x(r.get("ratio_p95"))),
        ("errors", _errors),
    ]
    if key == "lean":
        columns.insert(1, ("processes", lambda r: _num(r.get("processes"))))
    else:
        columns.append(("target", _target_cell(verdicts, key)))
    intro = f"{section['client']}; {section['transport']}; {section['seconds_per_run']} s per run."
    return intro + "\n\n" + _table(section["rows"], columns)


def _live(section: dict[str, Any], verdicts: list[dict[str, Any]]) -> str:
    columns = _latency_columns([("delivery", lambda r: r["name"])], with_ratio=False)
    columns += [
        ("min ms", lambda r: _num(r.get("min_ms"))),
        ("errors", _errors),
        ("target", _target_cell(verdicts, "live")),
    ]
    intro = (
        f"{section['client']}; {section['transport']}. From the writer's `add_message` "
        "returning to the subscriber's client delivering the notification (or the waiting "
        "`wait_for_updates` returning); samples one at a time. A negative value means the "
        "notification arrived before the writer had its response; values are not clamped."
    )
    return intro + "\n\n" + _table(section["rows"], columns)


def _scaleout(section: dict[str, Any], verdicts: list[dict[str, Any]]) -> str:
    target: Column = ("target", _target_cell(verdicts, "scaleout"))
    rows = section["rows"]
    load: list[Column] = [
        ("measurement", lambda r: r["name"]),
        ("calls", lambda r: _num(r.get("calls"))),
        ("calls/s", lambda r: _num(r.get("throughput"), 1)),
        ("floor calls/s", lambda r: _num(r.get("floor_throughput"), 1)),
        (f"calls/s {TIMES}floor", lambda r: _x(r.get("throughput_ratio"))),
        ("p50 ms", lambda r: _num(r.get("p50_ms"))),
        ("p95 ms", lambda r: _num(r.get("p95_ms"))),
        ("errors", _errors),
        target,
    ]
    notified = _latency_columns([("notification", lambda r: r["name"])], with_ratio=False)
    notified += [("max ms", lambda r: _num(r.get("max_ms"))), ("errors", _errors), target]
    idle: list[Column] = [
        ("idle", lambda r: r["name"]),
        ("seconds", lambda r: _num(r.get("seconds"), 1)),
        ("transactions", lambda r: _num(r.get("transactions"))),
        ("per second", lambda r: _num(r.get("per_second"))),
        target,
    ]
    parts = [
        f"{section['client']}; {section['transport']}; {section['seconds_per_run']} s per "
        "load run. Each load row's floor (`noop` on the single-process floor, same generator, "
        "same connections) ran just before it. The first row is the floor itself in two "
        "worker processes: what a second process gives a server that does nothing, on these "
        "cores, which the generator shares.",
        _table([r for r in rows if "throughput" in r], load),
    ]
    for columns, chosen in (
        (notified, [r for r in rows if r["op"].startswith("notify_")]),
        (idle, [r for r in rows if r["op"] == "idle_postgres"]),
    ):
        if chosen:
            parts.append(_table(chosen, columns))
    parts += [f"Not measured: {note}." for note in section.get("notes", [])]
    return "\n\n".join(parts)


def _startup(section: dict[str, Any], verdicts: list[dict[str, Any]]) -> str:
    floor = section["floor"]
    columns = _latency_columns([("server", lambda r: r["name"])])
    columns += [
        ("max ms", lambda r: _num(r.get("max_ms"))),
        ("errors", _errors),
        ("target", _target_cell(verdicts, "startup")),
    ]
    intro = (
        f"{section['what']}. Floor: p50 {_num(floor.get('p50_ms'))} ms, max "
        f"{_num(floor.get('max_ms'))} ms (n {_num(floor.get('n'))})."
    )
    return intro + "\n\n" + _table(section["rows"], columns)


def _memory(section: dict[str, Any], verdicts: list[dict[str, Any]]) -> str:
    columns: list[Column] = [
        ("server, when", lambda r: r["name"]),
        ("VmRSS MB", lambda r: _num(r.get("value_mb"), 1)),
        ("floor MB", lambda r: _num(r.get("floor_mb"), 1)),
        (f"{TIMES}floor", lambda r: _x(r.get("ratio"))),
        ("target", _target_cell(verdicts, "memory")),
    ]
    return f"{section['what']}.\n\n{_table(section['rows'], columns)}"


def markdown(results: dict[str, Any]) -> str:
    sections = results["sections"]
    verdicts = results["targets"]
    met = sum(1 for v in verdicts if v["met"])
    parts = [
        "# Shared Context Server benchmark",
        f"{met} of {len(verdicts)} target checks met. Official client = the `mcp` Python SDK "
        "(what agents use); lean = the raw JSON-RPC load generator (no client library). "
        f"Ratios ({TIMES}floor) compare with the bare FastMCP server measured in the same "
        "run with the same client. Targets are defined in `bench/targets.py`.",
        "## Targets",
        _targets_table(results),
        "## Machine",
        _machine(results),
    ]
    titled: list[tuple[str, str, Callable[[], str]]] = [
        ("startup", "Start-up", lambda: _startup(sections["startup"], verdicts)),
        ("memory", "Memory", lambda: _memory(sections["memory"], verdicts)),
        (
            "sequential_http",
            "Sequential latency, streamable HTTP (official client)",
            lambda: _sequential(sections["sequential_http"], verdicts, "sequential_http"),
        ),
        (
            "sequential_stdio",
            "Sequential latency, stdio (official client)",
            lambda: _sequential(sections["sequential_stdio"], verdicts, "sequential_stdio"),
        ),
        (
            "concurrency",
            "Concurrent agents (official client)",
            lambda: _load_table(sections["concurrency"], verdicts, "concurrency"),
        ),
        (
            "error_cost",
            "Cost of an error call against a success (official client)",
            lambda: error_cost.markdown(
                sections["error_cost"], _target_cell(verdicts, "error_cost")
            ),
        ),
        ("live", "Live updates (official client)", lambda: _live(sections["live"], verdicts)),
        (
            "lean",
            "Server ceiling (lean generator, not the official client)",
            lambda: _load_table(sections["lean"], verdicts, "lean"),
        ),
        (
            "flood",
            "A legitimate client during an abusive flood (official client)",
            lambda: flood.markdown(sections["flood"], _num, _x),
        ),
        (
            "scaleout",
            "Scale-out: several processes on one database (lean generator)",
            lambda: _scaleout(sections["scaleout"], verdicts),
        ),
        (
            "dashboard",
            "Dashboard streams against MCP calls (official client)",
            lambda: dashboard.markdown(sections["dashboard"], _target_cell(verdicts, "dashboard")),
        ),
        (
            "search_quality",
            "Search quality: recall@3 of typo queries and latency (official client)",
            lambda: search_quality.markdown(
                sections["search_quality"], _target_cell(verdicts, "search_quality")
            ),
        ),
    ]
    for key, title, render in titled:
        if key in sections:
            parts += [f"## {title}", render()]
    if NOTES.exists():
        parts += ["## Notes and profiles", NOTES.read_text().strip()]
    return "\n\n".join(parts) + "\n"
