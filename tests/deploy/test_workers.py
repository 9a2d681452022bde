"""``scs serve --workers 2``: two processes on one port and one database, on each backend
(issue 11, part 3). Connections are spread over the workers by the kernel; what one
worker commits reaches a listener on the other through the change feed."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import httpx2
from mcp.client.subscriptions import ResourceUpdated

from shared_context_server.config import Settings
from tests import processes
from tests.deploy.conftest import bearer
from tests.e2e.conftest import HttpServer, http_client, start_http_server
from tests.mcp.conftest import ok
from tests.mcp.live import Heard

POSTS = 12  # each over a new connection, so both workers take some
ROUNDS = 8


def workers(server: HttpServer) -> list[int]:
    """The server's worker processes (uvicorn starts them with multiprocessing's spawn)."""
    found = []
    for pid in processes.children(server.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            found.append(pid)
    return found


def wait_for_workers(server: HttpServer, count: int, without: int | None = None) -> list[int]:
    processes.wait_until(
        server.process,
        lambda: len([p for p in workers(server) if p != without]) == count,
        log=server.log,
        what=f"{count} workers",
    )
    return workers(server)


async def test_two_workers_serve_one_port_and_one_database(
    backend_settings: Settings, tmp_path: Path
) -> None:
    env = {}
    if backend_settings.database_url:
        env["SCS_DATABASE_URL"] = backend_settings.database_url
    server = start_http_server(tmp_path / "data", "--workers=2", **env)
    try:
        assert len(wait_for_workers(server, 2)) == 2
        alice, bob = await bearer(server.url, "alice"), await bearer(server.url, "bob")
        async with http_client(server.url, mode="2026-07-28", headers=bob) as listener:
            async with http_client(server.url, mode="2026-07-28", headers=alice) as writer:
                session = await ok(writer, "create_session", purpose="two workers")
            session_id = session["session"]["id"]
            uri = f"session://{session_id}"
            async with listener.listen(resource_subscriptions=[uri]) as subscription:
                # One at a time: a client may fold updates of one URI it has not read yet.
                for n in range(POSTS):
                    async with http_client(server.url, mode="2026-07-28", headers=alice) as w:
                        await ok(w, "add_message", session_id=session_id, content=f"step {n}")
                    with anyio.fail_after(30):
                        assert await subscription.__anext__() == ResourceUpdated(uri=uri)
            page = await ok(listener, "get_messages", session_id=session_id)
        assert [m["content"] for m in page["messages"]] == [f"step {n}" for n in range(POSTS)]

        # A worker that dies is replaced by uvicorn's supervisor; the port keeps answering.
        victim = workers(server)[0]
        os.kill(victim, signal.SIGKILL)
        assert victim not in wait_for_workers(server, 2, without=victim)
        processes.wait_healthy(server.process, server.base + "/health", log=server.log)
    finally:
        processes.reap(server.process)


async def test_2025_sessions_stay_with_the_worker_that_opened_them(
    backend_settings: Settings, tmp_path: Path
) -> None:
    """A session's requests (its POSTs, its GET stream) come over several connections,
    which the kernel hands to either worker; the other worker relays them to the owner."""
    env = {}
    if backend_settings.database_url:
        env["SCS_DATABASE_URL"] = backend_settings.database_url
    server = start_http_server(tmp_path / "data", "--workers=2", **env)
    try:
        pids = {str(pid) for pid in wait_for_workers(server, 2)}
        alice, bob = await bearer(server.url, "alice"), await bearer(server.url, "bob")
        owners: set[str] = set()

        async def note_owner(response: httpx2.Response) -> None:
            if session := response.headers.get("mcp-session-id"):
                owners.add(session.partition(".")[0])

        for round_ in range(ROUNDS):
            heard = Heard()
            async with (
                http_client(server.url, headers=alice, on_response=note_owner) as writer,
                http_client(server.url, headers=bob, message_handler=heard) as subscriber,
            ):
                session_id = (await ok(writer, "create_session", purpose=f"round {round_}"))[
                    "session"
                ]["id"]
                uri = f"session://{session_id}"
                await subscriber.subscribe_resource(uri)
                await ok(writer, "add_message", session_id=session_id, content="news")
                await heard.wait_for(lambda: uri in heard.updated)  # noqa: B023
                page = await ok(subscriber, "get_messages", session_id=session_id)
                assert [m["content"] for m in page["messages"]] == ["news"]
        assert owners  # every session id names the worker holding it
        assert owners <= pids
    finally:
        processes.reap(server.process)


def test_workers_are_for_http_only(tmp_path: Path) -> None:
    result = processes.run(
        [
            sys.executable,
            "-m",
            "shared_context_server",
            "serve",
            "--transport=stdio",
            "--workers=2",
        ],
        env={**os.environ, "SCS_DATA_DIR": str(tmp_path / "data")},
        timeout=60,
    )
    assert result.returncode == 2
    assert "--workers is for --transport=http" in result.stderr
