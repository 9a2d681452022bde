"""How much to measure: the full run, and the quick run for CI smoke tests."""

from __future__ import annotations

from dataclasses import dataclass, replace

SECTIONS = (
    "startup",
    "sequential",
    "errors",
    "concurrency",
    "live",
    "lean",
    "flood",
    "scaleout",
    "dashboard",
    "search",
    "memory",
)


@dataclass(frozen=True, slots=True)
class Plan:
    quick: bool = False
    # Sequential: timed calls per measurement, after warm-up calls; a slow measurement
    # stops at its time budget once it has min_samples.
    iterations: int = 200
    warmup: int = 20
    budget_s: float = 15.0
    min_samples: int = 20
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    # Concurrency with the official client: agents per run, seconds per run.
    agents: tuple[int, ...] = (1, 10, 50)
    load_seconds: float = 6.0
    # Live updates: sequential samples per delivery path.
    live_samples: int = 100
    # Lean generator: client processes and concurrent connections in all, seconds per run.
    lean_processes: int = 2
    lean_connections: tuple[int, ...] = (1, 50)
    lean_seconds: float = 6.0
    # Flood: connections (spread over lean_processes) hammering the server while one
    # agent's calls are timed (iterations of them, as in the sequential rows).
    flood_connections: int = 100
    # Scale-out: lean connections (spread over lean_processes) and seconds per load run;
    # on PostgreSQL, seconds the transaction counter must hold still (it lags by up to
    # 10 s), then seconds of the idle window.
    scaleout_connections: int = 50
    scaleout_seconds: float = 8.0
    idle_settle_seconds: float = 11.0
    idle_seconds: float = 10.0
    # Dashboard: Server-Sent Event streams open on the session an agent posts to.
    dashboard_streams: int = 100
    # Start-up: extra starts of each server on a fresh data directory (and, up to 3, of
    # ours on the database the run filled), besides the benchmark's own start.
    startups: int = 5
    # Search quality: session sizes, and every n-th labelled query at each size.
    search_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    search_query_step: int = 1


# The smoke test's run (tests/bench/test_smoke.py): every section and path once, with as
# few samples as still make each row (its numbers mean nothing on a busy machine anyway).
QUICK = Plan(
    quick=True,
    iterations=3,
    warmup=1,
    budget_s=2.0,
    min_samples=2,
    sizes=(100,),
    agents=(1, 3),
    load_seconds=0.3,
    live_samples=3,
    lean_processes=2,
    lean_connections=(1, 4),
    lean_seconds=0.3,
    flood_connections=4,
    scaleout_connections=4,
    scaleout_seconds=0.3,
    idle_settle_seconds=1.0,
    idle_seconds=1.0,
    dashboard_streams=3,
    startups=0,
    search_sizes=(1_000,),
    search_query_step=3,
)


def make_plan(
    quick: bool, iterations: int | None = None, sizes: tuple[int, ...] | None = None
) -> Plan:
    plan = QUICK if quick else Plan()
    if iterations is not None:
        plan = replace(plan, iterations=iterations, min_samples=min(plan.min_samples, iterations))
    if sizes is not None:
        plan = replace(plan, sizes=sizes)
    return plan
