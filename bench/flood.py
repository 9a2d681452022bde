"""A legitimate client's latency before and during an abusive flood (issue 8).

One agent (the official client, its own token as bearer) calls ``get_session`` one call at
a time, first with the server otherwise idle, then while flooding client processes
(multiprocessing, raw HTTP/1.1 keep-alive connections like the lean generator's) hammer
the server from the same loopback address: 2025-11-25 ``initialize`` without credentials
(answered 401 before any session exists), or requests with a bad API key as bearer
(401 and an audit record until the address's failure budget is spent, then 429 without
a lookup). Each flood row's ratios are to the idle row measured just before it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bench.context import HOST
from bench.lean import HttpConnection
from bench.measure import Samples, measured, tool
from bench.stats import with_floor

if TYPE_CHECKING:
    from bench.context import Bench

SETUP_TIMEOUT_S = 60.0
TIMES = "\u00d7"  # the multiplication sign
BAD_KEY = "scs_bench-flood-not-a-key-0123456789abcdef"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "bench-flood", "version": "1"},
    },
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
# kind -> (what the report calls it, bearer credential, request body)
KINDS: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "anonymous": ("anonymous 2025 initialize", None, INITIALIZE),
    "bad_bearer": ("bad API key as bearer", BAD_KEY, TOOLS_LIST),
}


@dataclass(frozen=True, slots=True)
class FloodJob:
    port: int
    kind: str
    connections: int
    seconds: float  # at most; the benchmark stops the flood when its measurement is done


@dataclass
class FloodOutcome:
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    elapsed: float = 0.0


async def _flood(job: FloodJob, ready: Any, stop: Any) -> FloodOutcome:
    _, credential, body = KINDS[job.kind]
    outcome = FloodOutcome()
    connections = [HttpConnection(job.port, credential) for _ in range(job.connections)]
    for conn in connections:
        await conn.open()
    stopped = asyncio.get_running_loop().run_in_executor(None, stop.wait, job.seconds)
    ready.put(job.kind)
    started = time.perf_counter()

    async def hammer(conn: HttpConnection) -> None:
        while not stopped.done():
            try:
                status, _, _ = await conn.post(body)
            except (OSError, asyncio.IncompleteReadError):
                outcome.failures += 1
                await conn.close()
                await conn.open()  # the server may close a connection it refused
                continue
            outcome.requests += 1
            outcome.statuses[str(status)] = outcome.statuses.get(str(status), 0) + 1

    await asyncio.gather(*(hammer(c) for c in connections))
    outcome.elapsed = time.perf_counter() - started
    for conn in connections:
        await conn.close()
    return outcome


def _worker(job: FloodJob, ready: Any, stop: Any, results: Any) -> None:
    try:
        results.put(asdict(asyncio.run(_flood(job, ready, stop))))
    except Exception as exc:
        ready.put("failed")
        results.put({"fatal": f"{type(exc).__name__}: {exc}"})


class Flood:
    """Flooding client processes, running until their time is up."""

    def __init__(self, jobs: list[FloodJob]) -> None:
        context = multiprocessing.get_context("spawn")
        self._ready, self._results, self._stop = context.Queue(), context.Queue(), context.Event()
        self._seconds = max(job.seconds for job in jobs)
        self._processes = [
            context.Process(
                target=_worker, args=(job, self._ready, self._stop, self._results), daemon=True
            )
            for job in jobs
        ]

    async def start(self) -> None:
        for process in self._processes:
            process.start()
        for _ in self._processes:
            await asyncio.to_thread(self._ready.get, timeout=SETUP_TIMEOUT_S)

    async def finish(self) -> dict[str, Any]:
        self._stop.set()
        outcomes = [
            await asyncio.to_thread(self._results.get, timeout=SETUP_TIMEOUT_S + self._seconds)
            for _ in self._processes
        ]
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        fatal = [o["fatal"] for o in outcomes if "fatal" in o]
        good = [o for o in outcomes if "fatal" not in o]
        statuses: dict[str, int] = {}
        for o in good:
            for status, count in o["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        requests = sum(o["requests"] for o in good)
        elapsed = max((o["elapsed"] for o in good), default=0.0)
        return {
            "flood_requests": requests,
            "flood_rate": round(requests / elapsed, 1) if elapsed else 0.0,
            "flood_statuses": statuses,
            "flood_failures": sum(o["failures"] for o in good),
            "flood_fatal": fatal,
        }


async def _legit(bench: Bench, client: Any, session_id: str) -> Samples:
    plan = bench.plan
    call = tool(client, "get_session", lambda i: {"session_id": session_id})
    samples = Samples()
    deadline = time.perf_counter() + plan.budget_s
    for i in range(plan.iterations):
        await samples.take(call, i)
        if time.perf_counter() > deadline and len(samples.latencies) >= plan.min_samples:
            break
    return samples


async def run(bench: Bench) -> dict[str, Any]:
    from bench.clients import call, http_client
    from bench.context import READER

    plan, port = bench.plan, bench.ours.port
    parts = max(1, min(plan.lean_processes, plan.flood_connections))
    rows = []
    async with http_client(bench.ours.url, bench.tokens[READER]) as client:
        created = await call(client, "create_session", {"purpose": "bench: flood"})
        session_id = created["session"]["id"]
        for _ in range(plan.warmup):
            await call(client, "get_session", {"session_id": session_id})
        for kind, (label, _, _) in KINDS.items():
            idle = measured(
                {"name": f"get_session, idle (before: {label})", "op": "get_session"},
                await _legit(bench, client, session_id),
            )
            per = plan.flood_connections // parts
            seconds = plan.budget_s * 4  # a bound only: stopped when the measurement ends
            flood = Flood([FloodJob(port, kind, per, seconds) for _ in range(parts)])
            await flood.start()
            try:
                began = time.perf_counter()
                during = await _legit(bench, client, session_id)
                measured_s = time.perf_counter() - began
            finally:
                stats = await flood.finish()
            row = with_floor(
                measured(
                    {
                        "name": f"get_session, during a flood: {label}",
                        "op": "get_session",
                        "flood": kind,
                        "flood_connections": per * parts,
                        "flood_processes": parts,
                        "measured_s": round(measured_s, 2),
                        **stats,
                    },
                    during,
                ),
                idle,
            )
            if stats["flood_fatal"]:
                row["errors"] += len(stats["flood_fatal"])
                row.setdefault("first_error", stats["flood_fatal"][0])
            rows += [idle, row]
    return {
        "client": (
            "official client (one agent, bearer token) against flooding client processes "
            f"on the same address ({HOST}): raw HTTP/1.1 keep-alive connections"
        ),
        "transport": "streamable HTTP",
        "rows": rows,
    }


def markdown(section: dict[str, Any], number: Any, times: Any) -> str:
    """The section's table; ``number`` and ``times`` format cells as the report does."""
    lines = [
        f"{section['client']}; {section['transport']}. Each flood row's ratios are to the "
        "idle row just above it (same client, same session, measured just before).",
        "",
        f"| measurement | n | p50 ms | p95 ms | p50 {TIMES}idle | p95 {TIMES}idle | "
        "flood conns | flood req/s | flood answers | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in section["rows"]:
        answers = ", ".join(f"{k}: {v:,}" for k, v in sorted(r.get("flood_statuses", {}).items()))
        lines.append(
            f"| {r['name']} | {number(r.get('n'))} | {number(r.get('p50_ms'))} | "
            f"{number(r.get('p95_ms'))} | {times(r.get('ratio_p50'))} | "
            f"{times(r.get('ratio_p95'))} | {number(r.get('flood_connections'))} | "
            f"{number(r.get('flood_rate'), 1)} | {answers or '-'} | {number(r.get('errors'))} |"
        )
    return "\n".join(lines)
