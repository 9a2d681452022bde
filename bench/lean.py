"""The lean load generator: raw streamable-HTTP JSON-RPC posts, no MCP client library.

The official client costs milliseconds of CPU per call, on the same two cores as the
server. Here a few client processes (multiprocessing), each one asyncio loop with many
keep-alive connections over plain asyncio streams, post ``tools/call`` and parse the JSON
or SSE ``data:`` reply themselves, so the server's own ceiling shows.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from bench.context import HOST, agent_ids
from bench.measure import Samples, measured
from bench.stats import ratio, with_floor
from bench.text import message_text

if TYPE_CHECKING:
    from bench.context import Bench

PROTOCOL_VERSION = "2025-11-25"
RESULT_TIMEOUT_S = 60.0
SETUP_TIMEOUT_S = 120.0


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client: just enough for streamable HTTP posts."""

    def __init__(self, port: int, token: str | None) -> None:
        self.port = port
        self.token = token
        self.session_id: str | None = None
        self._next_id = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    async def post(self, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        assert self._writer is not None
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = [
            "POST /mcp HTTP/1.1",
            f"Host: {HOST}:{self.port}",
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
            f"Content-Length: {len(body)}",
            f"mcp-protocol-version: {PROTOCOL_VERSION}",
        ]
        if self.session_id:
            headers.append(f"mcp-session-id: {self.session_id}")
        if self.token:
            headers.append(f"Authorization: Bearer {self.token}")
        self._writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + body)
        return await self._response()

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        assert self._reader is not None
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return status, headers, await self._chunked()
        length = int(headers.get("content-length", "0"))
        return status, headers, await self._reader.readexactly(length) if length else b""

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0], 16)
            if size == 0:
                await self._reader.readline()  # the blank line after the last chunk
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """A JSON-RPC request; its result, or RuntimeError with the error."""
        self._next_id += 1
        request_id = self._next_id
        status, headers, body = await self.post(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        )
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
        if not self.session_id and "mcp-session-id" in headers:
            self.session_id = headers["mcp-session-id"]
        for message in _messages(headers.get("content-type", ""), body):
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message["result"])
        raise RuntimeError(f"{method}: no response in {body[:200]!r}")

    async def initialize(self) -> None:
        await self.rpc(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "bench-lean", "version": "1"},
            },
        )
        status, _, body = await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status not in (200, 202):
            raise RuntimeError(f"notifications/initialized: HTTP {status} {body[:200]!r}")

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.rpc("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(
                f"{name}: {result.get('structuredContent') or result.get('content')}"
            )
        return result


def _messages(content_type: str, body: bytes) -> list[dict[str, Any]]:
    if content_type.startswith("application/json"):
        parsed = json.loads(body)
        return parsed if isinstance(parsed, list) else [parsed]
    return [
        json.loads(line[5:])
        for line in body.decode().splitlines()
        if line.startswith("data:") and line[5:].strip()
    ]


@dataclass(frozen=True, slots=True)
class Job:
    """One client process's share of a load run."""

    port: int
    tool: str  # "noop" or "add_message"
    tokens: list[str | None]  # one connection per token
    session_id: str | None  # one shared session, or None: a session per connection
    seconds: float
    index: int = 0


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    started: float = 0.0
    ended: float = 0.0


async def _connection(job: Job, slot: int, token: str | None) -> tuple[HttpConnection, str | None]:
    conn = HttpConnection(job.port, token)
    await conn.open()
    await conn.initialize()
    session_id = job.session_id
    if job.tool == "add_message" and session_id is None:
        created = await conn.call_tool(
            "create_session", {"purpose": f"bench: lean {job.index}.{slot}"}
        )
        session_id = created["structuredContent"]["session"]["id"]
    return conn, session_id


async def _drive(job: Job, ready: Any, go: Any) -> Outcome:
    outcome = Outcome()
    setups = [_connection(job, slot, token) for slot, token in enumerate(job.tokens)]
    connections = await asyncio.gather(*setups)

    async def one(conn: HttpConnection, session_id: str | None, i: int) -> None:
        if job.tool == "noop":
            await conn.call_tool("noop", {})
        else:
            text = message_text(job.index * 100_000 + i)
            await conn.call_tool("add_message", {"session_id": session_id, "content": text})

    for slot, (conn, session_id) in enumerate(connections):  # warm up every connection
        await one(conn, session_id, -1 - slot)
    # Every process starts when all are connected and warm.
    ready.put(job.index)
    await asyncio.to_thread(go.wait)
    outcome.started = time.time()
    stop = time.perf_counter() + job.seconds

    async def loop(slot: int, conn: HttpConnection, session_id: str | None) -> None:
        i = slot * 1_000_000
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                await asyncio.wait_for(one(conn, session_id, i), RESULT_TIMEOUT_S)
            except Exception as exc:
                outcome.errors += 1
                outcome.first_error = outcome.first_error or f"{type(exc).__name__}: {exc}"[:300]
                return  # the connection's state is unknown after a failure
            outcome.latencies.append(time.perf_counter() - began)
            i += 1

    await asyncio.gather(*(loop(s, c, sid) for s, (c, sid) in enumerate(connections)))
    outcome.ended = time.time()
    for conn, _ in connections:
        await conn.close()
    return outcome


def _worker(job: Job, ready: Any, go: Any, results: Any) -> None:
    try:
        results.put(asdict(asyncio.run(_drive(job, ready, go))))
    except Exception as exc:
        ready.put(-1)  # do not keep the others waiting
        results.put({"fatal": f"{type(exc).__name__}: {exc}"})


def load(jobs: list[Job]) -> tuple[Samples, float]:
    """Runs each job in its own process; all start together once every one is ready."""
    context = multiprocessing.get_context("spawn")  # no forked event loops or threads
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=_worker, args=(job, ready, go, results), daemon=True) for job in jobs
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=SETUP_TIMEOUT_S)
    go.set()
    outcomes = [results.get(timeout=SETUP_TIMEOUT_S + max(j.seconds for j in jobs)) for _ in jobs]
    for process in processes:
        process.join(timeout=10)
    samples = Samples()
    for outcome in outcomes:
        if "fatal" in outcome:
            samples.failed(outcome["fatal"])
            continue
        samples.latencies.extend(outcome["latencies"])
        samples.errors += outcome["errors"]
        samples.first_error = samples.first_error or outcome["first_error"]
    good = [o for o in outcomes if "fatal" not in o]
    elapsed = max(o["ended"] for o in good) - min(o["started"] for o in good) if good else 0.0
    return samples, elapsed


def jobs(
    port: int,
    tool: str,
    tokens: list[str | None],
    session_id: str | None,
    seconds: float,
    processes: int,
) -> list[Job]:
    """A connection per token, spread over at most ``processes`` client processes."""
    parts = max(1, min(processes, len(tokens)))
    shares = [tokens[i::parts] for i in range(parts)]
    return [Job(port, tool, share, session_id, seconds, i) for i, share in enumerate(shares)]


def load_row(
    name: str,
    op: str,
    layout: str,
    connections: int,
    processes: int,
    samples: Samples,
    elapsed: float,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": name,
        "op": op,
        "server": "floor" if op == "noop" else "ours",
        "layout": layout,
        "connections": connections,
        "processes": processes,
        "calls": len(samples.latencies),
        "seconds": round(elapsed, 2),
        "throughput": round(len(samples.latencies) / elapsed, 1) if elapsed > 0 else 0.0,
    }
    return measured(result, samples)


async def _one_session(bench: Bench) -> str:
    conn = HttpConnection(bench.ours.port, bench.tokens["bench-agent-00"])
    await conn.open()
    await conn.initialize()
    created = await conn.call_tool("create_session", {"purpose": "bench: lean, one session"})
    await conn.close()
    return str(created["structuredContent"]["session"]["id"])


async def run(bench: Bench) -> dict[str, Any]:
    plan = bench.plan
    shared = await _one_session(bench)
    rows = []
    for count in plan.lean_connections:
        processes = 1 if count == 1 else plan.lean_processes
        floor_jobs = jobs(
            bench.floor.port, "noop", [None] * count, None, plan.lean_seconds, processes
        )
        samples, elapsed = load(floor_jobs)
        floor = load_row(
            f"floor: noop, {count} connection{'s' if count > 1 else ''}",
            "noop",
            "floor",
            count,
            processes,
            samples,
            elapsed,
        )
        rows.append(floor)
        tokens: list[str | None] = [bench.tokens[a] for a in agent_ids(count)]
        for session_id, layout in ((shared, "one session"), (None, "separate sessions")):
            ours_jobs = jobs(
                bench.ours.port, "add_message", tokens, session_id, plan.lean_seconds, processes
            )
            samples, elapsed = load(ours_jobs)
            name = f"add_message, {count} connection{'s' if count > 1 else ''}, {layout}"
            ours = with_floor(
                load_row(name, "add_message", layout, count, processes, samples, elapsed), floor
            )
            ours["floor_throughput"] = floor["throughput"]
            ours["throughput_ratio"] = ratio(ours["throughput"], floor["throughput"])
            rows.append(ours)
    return {
        "client": (
            "lean generator: raw JSON-RPC over HTTP/1.1 keep-alive (asyncio streams), "
            "one identity per connection, connections spread over client processes"
        ),
        "transport": "streamable HTTP",
        "seconds_per_run": plan.lean_seconds,
        "rows": rows,
    }
