"""A real server process per backend, with keys made by an operator on the same database.

The attacks of issue 8 are tried through real MCP clients over streamable HTTP against
``scs serve`` on SQLite and on PostgreSQL; the keys each test needs are created up front
the way an operator would (the service ``scs keys create`` calls), on the same database.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from shared_context_server.app import running_app
from shared_context_server.domain.models import KeyBinding, Permission
from tests import processes
from tests.conftest import _create_schema, _drop_schema, make_settings
from tests.e2e.conftest import SECRET, HttpServer, server_env, start_http_server, stop

READ = frozenset({Permission.READ})
READ_WRITE = frozenset({Permission.READ, Permission.WRITE})
# name -> (permissions, binding)
KeySpec = dict[str, tuple[frozenset[Permission], KeyBinding]]


@dataclass
class Deployment:
    """A running server and what an operator made on its database."""

    base: str
    data_dir: Path
    database_url: str | None
    keys: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return self.base + "/mcp"

    def env(self) -> dict[str, str]:
        extra = {"SCS_DATABASE_URL": self.database_url} if self.database_url else {}
        return server_env(self.data_dir, **extra)

    def scs(self, *args: str) -> subprocess.CompletedProcess[str]:
        """An operator command on this deployment's database."""
        return processes.run(
            [sys.executable, "-m", "shared_context_server", *args], env=self.env(), timeout=60
        )


def _create_keys(data_dir: Path, database_url: str | None, spec: KeySpec) -> dict[str, str]:
    overrides: dict[str, object] = {"jwt_secret_key": SECRET}
    if database_url:
        overrides["database_url"] = database_url

    async def create() -> dict[str, str]:
        async with running_app(make_settings(data_dir, **overrides), background=False) as app:
            made = {}
            for name, (permissions, binding) in spec.items():
                _, made[name] = await app.auth.create_api_key(name, permissions, binding)
            return made

    return anyio.run(create)


def deployment_fixture(spec: KeySpec) -> Callable[..., Iterator[Deployment]]:
    """A module-scoped fixture: one server per backend, with the keys of ``spec``."""

    @pytest.fixture(scope="module")
    def deployment(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str
    ) -> Iterator[Deployment]:
        data_dir = tmp_path_factory.mktemp("deployment") / "data"
        server, schema, url = "", "", None
        if backend == "postgres":
            server = request.getfixturevalue("postgres_server")
            schema, url = _create_schema(server)
        running: HttpServer | None = None
        try:
            running = start_http_server(data_dir, **({"SCS_DATABASE_URL": url} if url else {}))
            keys = _create_keys(data_dir, url, spec)
            yield Deployment(running.base, data_dir, url, keys, running.process)
        finally:
            if running is not None:
                stop(running)
            if schema:
                _drop_schema(server, schema)

    return deployment
