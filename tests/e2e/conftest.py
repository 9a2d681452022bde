"""Real server processes: streamable HTTP on a free loopback port, and stdio.

Servers run on each backend: a data dir made by these fixtures (``data_dir``, the module's
``http_server``) is tied to the test's database, and ``server_env`` gives every process
started on that data dir (server, CLI) the same database: a SQLite file in the data dir,
or a PostgreSQL schema (SCS_DATABASE_URL).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests import processes
from tests.conftest import _create_schema, _drop_schema

ADMIN_KEY = "scs_e2e-admin-key-" + "k" * 24
SECRET = "e2e-secret-" + "s" * 40
_PORT_TAKEN = "address already in use"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The PostgreSQL database of each data dir on that backend (while its test or module runs).
_DATABASES: dict[Path, str] = {}


@contextmanager
def on_database(data_dir: Path, url: str | None) -> Iterator[Path]:
    """Ties ``data_dir`` to the database ``url`` (None: the SQLite file in it) for a while."""
    if url is not None:
        _DATABASES[data_dir] = url
    try:
        yield data_dir
    finally:
        _DATABASES.pop(data_dir, None)
    sqlite_file = data_dir / "shared_context.db"
    assert url is None or not sqlite_file.exists(), "a process here opened SQLite, not PostgreSQL"


@contextmanager
def own_database(data_dir: Path, backend: str, request: pytest.FixtureRequest) -> Iterator[Path]:
    """``data_dir`` on a new database of ``backend`` of its own, for a wider fixture."""
    if backend == "sqlite":
        yield data_dir
        return
    server: str = request.getfixturevalue("postgres_server")
    schema, url = _create_schema(server)
    try:
        with on_database(data_dir, url):
            yield data_dir
    finally:
        _drop_schema(server, schema)


def database_url_of(data_dir: Path) -> str:
    """The database the servers on ``data_dir`` use."""
    return _DATABASES.get(data_dir) or f"sqlite:///{data_dir / 'shared_context.db'}"


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a process on ``data_dir`` (and its database); ``extra``: more."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCS_")}
    env.update(
        SCS_DATA_DIR=str(data_dir),
        JWT_SECRET_KEY=SECRET,
        API_KEY=ADMIN_KEY,
        SCS_FEED_POLL_SECONDS="0.02",
    )
    if data_dir in _DATABASES:
        env["SCS_DATABASE_URL"] = _DATABASES[data_dir]
    env.update(extra)
    return env


@dataclass
class HttpServer:
    url: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path | None = None


def start_http_server(data_dir: Path, *options: str, **env: str) -> HttpServer:
    """``scs serve --transport=http`` on a free port; ``options``: more of its command line,
    ``env``: more settings (SCS_...).

    Ready once /health answers, within SCS_TEST_START_TIMEOUT; an early exit fails at once
    with the server's log. Its output goes to a log file beside ``data_dir``. A port taken
    by another process between choosing and binding it is chosen again.
    """
    for attempt in range(3):
        port = free_port()
        log = data_dir.parent / f"server-{port}.log"
        process = processes.spawn(
            [
                sys.executable,
                "-m",
                "shared_context_server",
                "serve",
                "--transport=http",
                f"--port={port}",
                *options,
            ],
            env=server_env(data_dir, **env),
            log=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            processes.wait_healthy(process, base + "/health", log=log, what=f"scs serve on {port}")
        except processes.ProcessFailed:
            if attempt < 2 and _PORT_TAKEN in processes.log_tail(log).lower():
                continue
            raise
        return HttpServer(base + "/mcp", base, process, log)
    raise AssertionError("unreachable")


def stop(server: HttpServer) -> None:
    """Terminate, wait, kill if it must, wait; pipes closed. Safe to call twice."""
    processes.reap(server.process)


@pytest.fixture
def data_dir(tmp_path: Path, backend_url: str | None) -> Iterator[Path]:
    """A data dir on the test's database of each backend (see ``server_env``)."""
    with on_database(tmp_path / "data", backend_url) as path:
        yield path


@pytest.fixture
def http_servers() -> Iterator[Callable[..., HttpServer]]:
    """``start_http_server`` for one test: every server it started is stopped after it."""
    started: list[HttpServer] = []

    def start(data_dir: Path, **env: str) -> HttpServer:
        started.append(start_http_server(data_dir, **env))
        return started[-1]

    yield start
    for server in started:
        stop(server)


@pytest.fixture(scope="module")
def http_server(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[HttpServer]:
    """One server per module and backend: each test makes its own sessions, so they do not
    interfere."""
    with own_database(tmp_path_factory.mktemp("server") / "data", backend, request) as data_dir:
        server = start_http_server(data_dir)
        yield server
        stop(server)


@asynccontextmanager
async def http_client(
    url: str,
    *,
    mode: str = "legacy",
    headers: dict[str, str] | None = None,
    on_response: Callable[[httpx2.Response], Awaitable[None]] | None = None,
    **kwargs: object,
) -> AsyncIterator[Client]:
    """A real client over streamable HTTP; ``on_response``: sees every HTTP response."""
    hooks = {"response": [on_response]} if on_response else {}
    async with httpx2.AsyncClient(headers=headers or {}, timeout=30, event_hooks=hooks) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, cache=None, **kwargs) as client:  # type: ignore[arg-type]
            yield client
