"""The benchmark's quick mode runs end to end: every section measured, no errors.

It asserts nothing about speed: the numbers of a smoke run on a busy CI machine mean little.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import processes

REPO = Path(__file__).resolve().parents[2]
SECTIONS = {
    "startup",
    "memory",
    "sequential_http",
    "sequential_stdio",
    "error_cost",
    "concurrency",
    "live",
    "lean",
    "flood",
    "scaleout",
    "dashboard",
    "search_quality",
}


def _numbers(row: dict[str, Any]) -> list[float]:
    keys = ("p50_ms", "p95_ms", "p99_ms", "value_mb", "throughput", "per_second")
    return [row[k] for k in keys if k in row]


@pytest.mark.timeout(300)
def test_the_quick_benchmark_measures_every_section_without_errors(
    tmp_path: Path, postgres_server: str
) -> None:
    # Not under coverage (pytest --cov would trace the bench and every server and client
    # process it starts, half again its time): its servers run the code the e2e tests
    # measure, and bench/ is not measured. Its processes are the bench's children: a
    # timeout stops them too.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    env["SCS_BENCH_POSTGRES_URL"] = postgres_server  # the scale-out rows' server
    command = [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)]
    done = processes.run(command, cwd=REPO, env=env, timeout=290)
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "latest.json").read_text())
    assert set(results["sections"]) == SECTIONS
    for name, section in results["sections"].items():
        assert section["rows"], name
        for row in section["rows"]:
            assert row["errors"] == 0, (name, row)
            numbers = _numbers(row)
            assert numbers, (name, row)
            assert all(isinstance(n, int | float) for n in numbers), (name, row)
    assert all(
        isinstance(s["floor"]["p50_ms"], float)
        for s in (
            results["sections"]["sequential_http"],
            results["sections"]["sequential_stdio"],
        )
    )
    if os.environ.get("SCS_REQUIRE_HAPROXY"):  # CI: the row through HAProxy is measured too
        assert "haproxy" in {r["op"] for r in results["sections"]["scaleout"]["rows"]}
    assert results["targets"]
    assert all(t["value"] is not None for t in results["targets"]), results["targets"]
    assert results["machine"]["python"]
    markdown = (tmp_path / "latest.md").read_text()
    assert markdown.startswith("# Shared Context Server benchmark")
    assert "## Targets" in markdown
