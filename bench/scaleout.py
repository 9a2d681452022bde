"""Scale-out (issue 11): several server processes on one database.

``add_message`` throughput of many lean connections (each its own agent and its own
session) against our server with 1 and 2 workers (``serve --workers N``) on SQLite and on
PostgreSQL, and against two single-process servers on PostgreSQL behind HAProxy
(``deploy/haproxy.cfg`` as shipped, less its third server line). Each row's ratio is to the
floor's ``noop`` driven by the same generator just before it: on two cores the machine's
load drifts between runs. A first row runs the floor itself in two workers: what a second
process gives, on these cores, a server that does nothing. On PostgreSQL also: a
notification whose writer is on the other server process (NOTIFY), in both eras, and the
transactions per second of idle servers.

PostgreSQL rows run on a database of their own, created for the run and dropped after it
(``SCS_BENCH_POSTGRES_URL`` names the server; default the local one), so that its
``pg_stat_database`` counters count our servers alone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from bench import lean, live
from bench.clients import http_client, issue_tokens
from bench.context import HOST, agent_ids
from bench.measure import Samples, row, say
from bench.servers import (
    HEALTH_TIMEOUT_S,
    ServerProcess,
    free_port,
    repo_root,
    start_floor,
    start_ours,
    stop_process,
    wait_for_floor_workers,
    wait_for_workers,
)
from bench.stats import ratio, with_floor

if TYPE_CHECKING:
    from mcp import Client

    from bench.context import Bench

POSTGRES_URL = os.environ.get("SCS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
HAPROXY_CFG = repo_root() / "deploy" / "haproxy.cfg"
BACKENDS = 2  # behind HAProxy: as many processes as the two-worker rows have
# Servers on one database share the audit chain's key (docs/deployment.md).
AUDIT_KEY = "bench-audit-key-" + secrets.token_urlsafe(32)
SETTLE_TIMEOUT_S = 90.0


@dataclass(frozen=True, slots=True)
class Served:
    """Where the load goes: a port, and the server processes behind it."""

    port: int
    url: str  # an MCP URL of one of the servers, to issue tokens on
    label: str


async def run(bench: Bench) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [_floor_with_workers(bench, 2)]
    notes: list[str] = []
    for workers in (1, 2):
        with _ours(bench, f"sqlite-{workers}", workers) as served:
            rows.append(await _throughput(bench, served, f"workers_{workers}", "sqlite", workers))
    unreachable = _unreachable(POSTGRES_URL)
    if unreachable:
        notes.append(f"the PostgreSQL rows: {unreachable}")
    else:
        with _database(POSTGRES_URL) as (database, url):
            rows += await _postgres(bench, database, url, notes)
    return {
        "client": (
            f"lean generator ({bench.plan.scaleout_connections} connections over "
            f"{bench.plan.lean_processes} client processes, each its own agent and session); "
            "official mcp client for the notifications"
        ),
        "transport": "streamable HTTP (the load: 2025-11-25 sessions)",
        "seconds_per_run": bench.plan.scaleout_seconds,
        "rows": rows,
        "notes": notes,
    }


async def _postgres(
    bench: Bench, database: str, url: str, notes: list[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with _backends(bench, url) as servers:
        rows.append(await _idle(bench, database, len(servers)))
        rows += await _across(bench, servers[0], servers[1])
        binary = _haproxy_binary()
        if binary:
            with _haproxy(bench, binary, servers) as served:
                rows.append(await _throughput(bench, served, "haproxy", "postgres", len(servers)))
        else:
            notes.append("the HAProxy row: haproxy is not installed")
    for workers in (1, 2):
        with _ours(bench, f"postgres-{workers}", workers, SCS_DATABASE_URL=url) as served:
            op = f"workers_{workers}"
            rows.append(await _throughput(bench, served, op, "postgres", workers))
    return rows


def _floor_with_workers(bench: Bench, workers: int) -> dict[str, Any]:
    """The floor itself in ``workers`` processes: what more processes can give on this
    machine to a server that does nothing, with the generator on the same cores."""
    floor = start_floor(bench.log_path(f"floor-{workers}-workers"), workers)
    try:
        wait_for_floor_workers(floor, workers)
        served = Served(floor.port, floor.url, f"the floor itself, {workers} workers")
        count = bench.plan.scaleout_connections
        op = f"floor_workers_{workers}"
        return _load_against_floor(bench, served, "noop", op, [None] * count)
    finally:
        floor.stop()


async def _throughput(
    bench: Bench, served: Served, op: str, backend: str, server_processes: int
) -> dict[str, Any]:
    """Our add_message, each connection its own agent and session."""
    count = bench.plan.scaleout_connections
    tokens = await issue_tokens(served.url, bench.creds.admin_key, agent_ids(count))
    result = _load_against_floor(bench, served, "add_message", op, list(tokens.values()))
    result |= {"backend": backend, "server_processes": server_processes}
    return result


def _load_against_floor(
    bench: Bench, served: Served, tool: str, op: str, tokens: list[str | None]
) -> dict[str, Any]:
    """The single-process floor's noop, then ``tool`` against ``served`` (a connection per
    token), by the same generator, one right after the other."""
    plan = bench.plan
    seconds, processes = plan.scaleout_seconds, plan.lean_processes
    count = len(tokens)

    def load(port: int, tool: str, tokens: list[str | None]) -> tuple[Samples, float]:
        return lean.load(lean.jobs(port, tool, tokens, None, seconds, processes))

    floor = lean.load_row(
        "floor: noop",
        "noop",
        "floor",
        count,
        processes,
        *load(bench.floor.port, "noop", [None] * count),
    )
    name = f"{tool}, {served.label}"
    layout = "floor" if tool == "noop" else "separate sessions"
    result = lean.load_row(name, op, layout, count, processes, *load(served.port, tool, tokens))
    with_floor(result, floor)
    result["floor_throughput"] = floor["throughput"]
    result["throughput_ratio"] = ratio(result["throughput"], floor["throughput"])
    return result


async def _idle(bench: Bench, database: str, servers: int) -> dict[str, Any]:
    """Transactions the database counts while the servers sit idle: once the counter has
    held still for the plan's settle time (PostgreSQL 15 adds an idle connection's counts up
    to 10 s late), its growth over the idle window."""
    seconds, settle = bench.plan.idle_seconds, bench.plan.idle_settle_seconds
    counted = _transactions(POSTGRES_URL, database)
    still_since = deadline = time.monotonic()
    deadline += SETTLE_TIMEOUT_S
    while time.monotonic() - still_since < settle and time.monotonic() < deadline:
        await anyio.sleep(0.25)
        now = _transactions(POSTGRES_URL, database)
        if now != counted:
            counted, still_since = now, time.monotonic()
    began = _transactions(POSTGRES_URL, database)
    await anyio.sleep(seconds)
    transactions = _transactions(POSTGRES_URL, database) - began
    result = {
        "name": f"idle: {servers} server processes on one database",
        "op": "idle_postgres",
        "backend": "postgres",
        "processes": servers,
        "seconds": seconds,
        "transactions": transactions,
        "per_second": round(transactions / seconds, 2),
        "errors": 0,
    }
    say(f"  {result['name']}: {transactions} transactions in {seconds} s")
    return result


async def _across(bench: Bench, here: ServerProcess, there: ServerProcess) -> list[dict[str, Any]]:
    """Notifications whose writer is on the other process, as in the live section."""
    tokens = await issue_tokens(here.url, bench.creds.admin_key, [live.WRITER, live.SUBSCRIBER])
    writer, subscriber = tokens[live.WRITER], tokens[live.SUBSCRIBER]

    def writer_there() -> AbstractAsyncContextManager[Client]:
        return http_client(there.url, writer)

    legacy = await live.notify_2025(
        bench, writer_there, "postgres, across processes", (here.url, subscriber)
    )
    modern = await live.notify_2026(bench, (there.url, writer), (here.url, subscriber))
    return [
        _notification("2025-11-25, resources/subscribe", "notify_postgres_2025", legacy),
        _notification("2026-07-28, subscriptions/listen", "notify_postgres_2026", modern),
    ]


def _notification(era: str, op: str, samples: Samples) -> dict[str, Any]:
    name = f"notification, writer on the other process ({era})"
    return row(name, op, samples, backend="postgres", processes=2)


@contextmanager
def _ours(bench: Bench, name: str, workers: int, **env: str) -> Iterator[Served]:
    data_dir = bench.workdir / "scaleout" / name
    options = [f"--workers={workers}"] if workers > 1 else []
    server = start_ours(data_dir, bench.creds, bench.log_path(f"scaleout-{name}"), *options, **env)
    try:
        if workers > 1:
            wait_for_workers(server, workers)
        backend = "PostgreSQL" if "SCS_DATABASE_URL" in env else "SQLite"
        label = f"{backend}, {workers} worker{'s' * (workers > 1)}"
        yield Served(server.port, server.url, label)
    finally:
        server.stop()


@contextmanager
def _backends(bench: Bench, url: str) -> Iterator[list[ServerProcess]]:
    """Single-process servers on one database, each with a data directory of its own, as
    on hosts of their own."""
    servers: list[ServerProcess] = []
    try:
        for n in range(1, BACKENDS + 1):
            data_dir = bench.workdir / "scaleout" / f"host{n}"
            log = bench.log_path(f"scaleout-host{n}")
            servers.append(
                start_ours(
                    data_dir, bench.creds, log, SCS_DATABASE_URL=url, SCS_AUDIT_KEY=AUDIT_KEY
                )
            )
        yield servers
    finally:
        for server in servers:
            server.stop()


@contextmanager
def _haproxy(bench: Bench, binary: str, servers: list[ServerProcess]) -> Iterator[Served]:
    """deploy/haproxy.cfg with a server line per backend we have."""
    kept = [
        line
        for line in HAPROXY_CFG.read_text().splitlines()
        if not line.strip().startswith("server scs")
        or int(line.split()[1].removeprefix("scs")) <= len(servers)
    ]
    config = bench.workdir / "haproxy.cfg"
    config.write_text("\n".join(kept) + "\n")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "SCS_LB_BIND": f"{HOST}:{port}", "SCS_LB_HOST": HOST}
    env |= {f"SCS_BACKEND_{n}": f"{HOST}:{s.port}" for n, s in enumerate(servers, 1)}
    log = bench.log_path("haproxy")
    with log.open("wb") as err:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_all_up(process, port, len(servers), log)
        label = f"PostgreSQL, HAProxy in front of {len(servers)} single-process servers"
        yield Served(port, servers[0].url, label)
    finally:
        stop_process(process)


def _wait_all_up(process: subprocess.Popen[bytes], port: int, backends: int, log: Path) -> None:
    """Until HAProxy's health checks have every backend up: /health through it answers from
    each in turn (round robin), named by the header the config sets."""
    import httpx2

    deadline = time.perf_counter() + HEALTH_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited: {log.read_text()[-2000:]}")
        answered = set()
        try:
            for _ in range(2 * backends):
                response = httpx2.get(f"http://{HOST}:{port}/health", timeout=2)
                if response.status_code == 200:
                    answered.add(response.headers.get("x-scs-backend"))
        except httpx2.HTTPError:
            pass
        if len(answered) == backends:
            return
        time.sleep(0.2)
    raise RuntimeError(f"haproxy: {backends} backends not up in {HEALTH_TIMEOUT_S} s")


def _haproxy_binary() -> str | None:
    """Debian's haproxy, wherever it is on this machine (/usr/sbin may not be on PATH)."""
    candidates = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
    return shutil.which("haproxy") or next((c for c in candidates if Path(c).exists()), None)


def _unreachable(server: str) -> str | None:
    import psycopg

    try:
        psycopg.connect(server, connect_timeout=3).close()
    except psycopg.Error as exc:
        return f"PostgreSQL at {server} is unreachable ({str(exc).strip()})"
    return None


@contextmanager
def _database(server: str) -> Iterator[tuple[str, str]]:
    """A fresh database on the server, dropped after: its name and URL."""
    import psycopg
    import sqlalchemy as sa
    from psycopg import sql

    name = "scs_bench_" + secrets.token_hex(6)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name, sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _transactions(server: str, database: str) -> int:
    """Commits and rollbacks the server has counted in ``database`` (read from another
    database: the reading does not count)."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        found = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (database,),
        ).fetchone()
    return int(found[0]) if found else 0
