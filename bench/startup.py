"""Start-up time to a healthy /health, and resident memory (VmRSS) of the server processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import Samples, row
from bench.servers import Credentials, ServerProcess, start_floor, start_ours
from bench.stats import ratio, with_floor

EXISTING_DB_STARTS = 3


def _starts(first: float | None, more: int, start: Callable[[int], ServerProcess]) -> Samples:
    """Start-up times: the benchmark's own server (if any) and `more` extra starts."""
    samples = Samples()
    if first is not None:
        samples.latencies.append(first)
    for i in range(more):
        try:
            server = start(i)
        except RuntimeError as exc:
            samples.failed(str(exc))
            continue
        samples.latencies.append(server.startup_s)
        server.stop()
    return samples


def startup_section(
    bench_ours: ServerProcess | None,
    bench_floor: ServerProcess | None,
    workdir: Path,
    data_dir: Path | None,
    creds: Credentials,
    starts: int,
    existing_messages: int,
) -> dict[str, Any]:
    """Each server on a fresh data directory (migrations, keys), ours also on the database
    the run filled. Call with the benchmark's servers stopped, so they compete for nothing."""

    def log(name: str, i: int) -> Path:
        return workdir / "logs" / f"startup-{name}-{i}.log"

    floor = row(
        "floor (bare FastMCP)",
        "startup_floor",
        _starts(
            bench_floor.startup_s if bench_floor else None,
            starts,
            lambda i: start_floor(log("floor", i)),
        ),
        server="floor",
    )
    fresh = row(
        "ours, fresh data directory",
        "startup_fresh",
        _starts(
            bench_ours.startup_s if bench_ours else None,
            starts,
            lambda i: start_ours(workdir / f"fresh-{i}", creds, log("fresh", i)),
        ),
        server="ours",
    )
    rows = [with_floor(fresh, floor)]
    if data_dir is not None and starts > 0:
        existing = row(
            f"ours, the run's database ({existing_messages:,}+ messages)",
            "startup_existing",
            _starts(
                None,
                min(starts, EXISTING_DB_STARTS),
                lambda i: start_ours(data_dir, creds, log("existing", i)),
            ),
            server="ours",
        )
        rows.append(with_floor(existing, floor))
    return {
        "what": "process start to the first 200 from GET /health (polled every 5 ms)",
        "floor": floor,
        "rows": rows,
    }


def memory_section(idle: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    rows = []
    for phase, op, values in (
        ("idle (after start and a few calls)", "rss_idle", idle),
        ("after the load", "rss_after_load", after),
    ):
        if "ours" not in values:
            continue
        rows.append(
            {
                "name": f"ours, {phase}",
                "op": op,
                "server": "ours",
                "value_mb": values["ours"],
                "floor_mb": values.get("floor"),
                "ratio": ratio(values["ours"], values.get("floor")),
                "errors": 0,
            }
        )
    return {"what": "VmRSS of the HTTP server process, from /proc/PID/status", "rows": rows}
