"""Real server processes: streamable HTTP on a free loopback port, and stdio."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ADMIN_KEY = "scs_e2e-admin-key-" + "k" * 24
SECRET = "e2e-secret-" + "s" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCS_")}
    env.update(
        SCS_DATA_DIR=str(data_dir),
        JWT_SECRET_KEY=SECRET,
        API_KEY=ADMIN_KEY,
        SCS_FEED_POLL_SECONDS="0.02",
        **extra,
    )
    return env


@dataclass
class HttpServer:
    url: str
    base: str
    process: subprocess.Popen[bytes]


def start_http_server(data_dir: Path, **env: str) -> HttpServer:
    """``scs serve --transport=http`` on a free port; ``env``: more settings (SCS_...)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shared_context_server",
            "serve",
            "--transport=http",
            f"--port={port}",
        ],
        env=server_env(data_dir, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode() if process.stderr else "exited")
        try:
            if httpx2.get(base + "/health", timeout=0.5).status_code == 200:
                return HttpServer(base + "/mcp", base, process)
        except httpx2.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("server did not become healthy")


def stop(server: HttpServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    if server.process.stderr:
        server.process.stderr.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """One server per module: each test makes its own sessions, so they do not interfere."""
    server = start_http_server(tmp_path_factory.mktemp("server") / "data")
    yield server
    stop(server)


@asynccontextmanager
async def http_client(
    url: str, *, mode: str = "legacy", headers: dict[str, str] | None = None, **kwargs: object
) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers=headers or {}, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode, cache=None, **kwargs) as client:  # type: ignore[arg-type]
            yield client
