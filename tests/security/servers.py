"""A real server process per backend, with keys made by an operator on the same database.

The attacks of issue 8 are tried through real MCP clients over streamable HTTP against
``scs serve`` on SQLite and on PostgreSQL; the keys each test needs are created up front
the way an operator would (the service ``scs keys create`` calls), on the same database.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest

from shared_context_server.app import running_app
from shared_context_server.domain.models import KeyBinding, Permission
from tests.conftest import BACKENDS, _create_schema, _drop_schema, make_settings
from tests.e2e.conftest import SECRET, free_port, server_env

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
        return subprocess.run(
            [sys.executable, "-m", "shared_context_server", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _start(data_dir: Path, database_url: str | None) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    extra = {"SCS_DATABASE_URL": database_url} if database_url else {}
    command = ["-m", "shared_context_server", "serve", "--transport=http", f"--port={port}"]
    # The log goes to a file: a pipe nobody reads would stall the server once full.
    log = data_dir.parent / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, *command],
            env=server_env(data_dir, **extra),
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            if httpx2.get(base + "/health", timeout=0.5).status_code == 200:
                return base, process
        except httpx2.TransportError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("server did not become healthy")


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

    @pytest.fixture(scope="module", params=BACKENDS)
    def deployment(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Deployment]:
        data_dir = tmp_path_factory.mktemp("deployment") / "data"
        server, schema, url = "", "", None
        if request.param == "postgres":
            server = request.getfixturevalue("postgres_server")
            schema, url = _create_schema(server)
        base, process = _start(data_dir, url)
        try:
            keys = _create_keys(data_dir, url, spec)
            yield Deployment(base, data_dir, url, keys, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if schema:
                _drop_schema(server, schema)

    return deployment
