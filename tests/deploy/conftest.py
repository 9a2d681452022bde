"""The deployments of docs/deployment.md, for real: server processes on one PostgreSQL
database, and HAProxy (deploy/haproxy.cfg as shipped) in front of three of them."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from mcp import Client

from tests import processes
from tests.e2e.conftest import ADMIN_KEY, HttpServer, free_port, http_client, start_http_server
from tests.mcp.conftest import ok

HAPROXY_CFG = Path(__file__).parents[2] / "deploy" / "haproxy.cfg"
# Several hosts on one database share the JWT secret and API key (server_env) and this.
AUDIT_KEY = "deploy-audit-key-" + "a" * 40
BACKEND_HEADER = "x-scs-backend"


def haproxy_binary() -> str:
    """Debian's haproxy (scripts/test.sh installs it); CI fails without it."""
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).exists()), None
    )
    if found is None:
        reason = "haproxy is not installed (apt-get install haproxy)"
        if os.environ.get("SCS_REQUIRE_HAPROXY"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@dataclass
class Deployment:
    """HAProxy at ``url`` in front of ``servers`` (by HAProxy's server name)."""

    url: str
    base: str
    servers: dict[str, HttpServer]
    database_url: str


@dataclass
class Served:
    """The backends that answered a client's requests, in order (HAProxy's header)."""

    backends: list[str] = field(default_factory=list)

    async def __call__(self, response: httpx2.Response) -> None:
        self.backends.append(response.headers.get(BACKEND_HEADER, "?"))

    @property
    def last(self) -> str:
        return self.backends[-1]


@asynccontextmanager
async def lb_client(
    url: str, mode: str, headers: dict[str, str], **kwargs: object
) -> AsyncIterator[tuple[Client, Served]]:
    served = Served()
    async with http_client(url, mode=mode, headers=headers, on_response=served, **kwargs) as c:
        yield c, served


async def bearer(url: str, agent_id: str, agent_type: str = "claude") -> dict[str, str]:
    async with http_client(url, mode="2026-07-28") as client:
        result = await ok(
            client,
            "authenticate_agent",
            agent_id=agent_id,
            agent_type=agent_type,
            api_key=ADMIN_KEY,
        )
    return {"Authorization": f"Bearer {result['token']}"}


def start_servers(tmp_path: Path, database_url: str, count: int) -> list[HttpServer]:
    """``count`` servers on one database, each with its own data directory, as on hosts of
    their own."""
    return [
        start_http_server(
            tmp_path / f"host{n}" / "data", SCS_DATABASE_URL=database_url, SCS_AUDIT_KEY=AUDIT_KEY
        )
        for n in range(1, count + 1)
    ]


@pytest.fixture
def deployment(tmp_path: Path, postgres_url: str) -> Iterator[Deployment]:
    binary = haproxy_binary()
    servers: list[HttpServer] = []
    balancer = None
    try:
        servers = start_servers(tmp_path, postgres_url, 3)
        port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "SCS_LB_BIND": f"127.0.0.1:{port}",
            "SCS_LB_HOST": "127.0.0.1",  # which the servers, bound to it, allow
        }
        for n, server in enumerate(servers, 1):
            env[f"SCS_BACKEND_{n}"] = server.base.removeprefix("http://")
        log = tmp_path / "haproxy.log"
        balancer = processes.spawn([binary, "-db", "-f", str(HAPROXY_CFG)], env=env, log=log)
        base = f"http://127.0.0.1:{port}"
        processes.wait_healthy(balancer, base + "/health", log=log, what="haproxy")
        yield Deployment(
            base + "/mcp",
            base,
            {f"scs{n}": s for n, s in enumerate(servers, 1)},
            postgres_url,
        )
    finally:
        if balancer is not None:
            processes.reap(balancer)
        for server in servers:
            processes.reap(server.process)
