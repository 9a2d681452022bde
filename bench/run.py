"""One benchmark run: start both servers, seed, measure each section, stop, report."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import (
    concurrency,
    dashboard,
    error_cost,
    flood,
    lean,
    live,
    scaleout,
    search_quality,
    sequential,
)
from bench.clients import call, http_client, issue_tokens
from bench.context import ADMIN, READER, Bench, agent_ids
from bench.measure import say
from bench.plan import SECTIONS, Plan
from bench.seed import seed_sessions
from bench.servers import Credentials, start_floor, start_ours
from bench.startup import memory_section, startup_section
from bench.targets import evaluate

IDLE_CALLS = 5


async def _idle_calls(bench: Bench) -> None:
    """A few calls, so 'idle' memory is that of a server that has served something."""
    async with http_client(bench.ours.url, bench.tokens[READER]) as client:
        created = await call(client, "create_session", {"purpose": "bench: idle"})
        session_id = created["session"]["id"]
        for i in range(IDLE_CALLS):
            await call(client, "add_message", {"session_id": session_id, "content": f"hello {i}"})
            await call(client, "get_messages", {"session_id": session_id})
    async with http_client(bench.floor.url) as client:
        for _ in range(IDLE_CALLS):
            await call(client, "noop")


async def _timed(name: str, step: Callable[[], Awaitable[Any]]) -> Any:
    say(f"{name}...")
    started = time.perf_counter()
    result = await step()
    say(f"{name} done in {time.perf_counter() - started:.1f} s")
    return result


async def _measure(bench: Bench, only: tuple[str, ...], sections: dict[str, Any]) -> None:
    """Every section that needs the running servers, in order; memory last of all."""
    plan, ours, floor = bench.plan, bench.ours, bench.floor
    url, key = ours.url, bench.creds.admin_key
    bench.tokens = await issue_tokens(url, key, [READER])
    bench.tokens |= await issue_tokens(url, key, [ADMIN], permissions=["read", "write", "admin"])
    await _idle_calls(bench)
    idle = {"ours": ours.rss_mb(), "floor": floor.rss_mb()}
    most = max((*plan.agents, *plan.lean_connections))
    bench.tokens |= await issue_tokens(url, key, [live.WRITER, live.SUBSCRIBER, *agent_ids(most)])
    if "sequential" in only:
        sizes = list(plan.sizes)
        bench.seeded = await _timed(
            "seeding", lambda: seed_sessions(bench.data_dir, bench.creds, sizes)
        )
        sections["sequential_http"] = await _timed(
            "sequential, HTTP", lambda: sequential.run_http(bench)
        )
        sections["sequential_stdio"] = await _timed(
            "sequential, stdio", lambda: sequential.run_stdio(bench)
        )
    if "errors" in only:
        sections["error_cost"] = await _timed("error cost", lambda: error_cost.run(bench))
    if "concurrency" in only:
        sections["concurrency"] = await _timed("concurrency", lambda: concurrency.run(bench))
    if "live" in only:
        sections["live"] = await _timed("live updates", lambda: live.run(bench))
    if "lean" in only:
        sections["lean"] = await _timed("lean generator", lambda: lean.run(bench))
    if "flood" in only:
        sections["flood"] = await _timed("flood", lambda: flood.run(bench))
    if "scaleout" in only:
        sections["scaleout"] = await _timed("scale-out", lambda: scaleout.run(bench))
    if "dashboard" in only:
        sections["dashboard"] = await _timed("dashboard streams", lambda: dashboard.run(bench))
    if "search" in only:
        sections["search_quality"] = await _timed(
            "search quality", lambda: search_quality.run(bench)
        )
    if "memory" in only:
        sections["memory"] = memory_section(idle, {"ours": ours.rss_mb(), "floor": floor.rss_mb()})


async def run(plan: Plan, only: tuple[str, ...] = SECTIONS, keep: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="scs-bench-"))
    creds = Credentials()
    data_dir = workdir / "data"
    sections: dict[str, Any] = {}
    floor = start_floor(workdir / "logs" / "floor.log")
    try:
        ours = start_ours(data_dir, creds, workdir / "logs" / "ours.log")
    except BaseException:
        floor.stop()
        raise
    say(f"servers up: ours {ours.url} ({ours.startup_s:.2f} s), floor {floor.url}")
    bench = Bench(plan, creds, workdir, data_dir, ours, floor)
    try:
        await _measure(bench, only, sections)
    except BaseException:
        say(f"failed; server logs are in {workdir / 'logs'}")
        keep = True
        raise
    finally:
        ours.stop()
        floor.stop()
    if "startup" in only:
        # With the benchmark's servers stopped: the extra starts compete with nothing.
        say("start-up...")
        seeded = sum(s.size for s in bench.seeded)
        sections["startup"] = startup_section(
            ours, floor, workdir, data_dir if seeded else None, creds, plan.startups, seeded
        )
    if keep:
        say(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "quick": plan.quick,
        "duration_s": round(time.perf_counter() - started, 1),
        "sections": sections,
        "targets": evaluate(sections),
    }
