"""Shared fixtures: a real app on a fresh SQLite file per test, principals, a fake clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared_context_server.app import App, running_app
from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from tests import processes

READ = frozenset({Permission.READ})
READ_WRITE = frozenset({Permission.READ, Permission.WRITE})
ADMIN = frozenset({Permission.READ, Permission.WRITE, Permission.ADMIN})


# --- no child process outlives its test, nor the session ---------------------------------

_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Children started during a test (not by a wider fixture) are gone when it ends.

    Survivors are stopped either way; the test fails for them unless it failed already
    (a failed start often leaves its sibling servers behind).
    """
    before = set(processes.children())
    yield
    leaked = processes.reap_survivors(before)
    if leaked and not request.node.stash.get(_FAILED, False):
        pytest.fail("processes outlived the test (now stopped):\n" + "\n".join(leaked))


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_session() -> Iterator[None]:
    yield
    leaked = processes.reap_survivors()
    if leaked:
        pytest.fail("processes outlived the session (now stopped):\n" + "\n".join(leaked))


POSTGRES_URL = os.environ.get("SCS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_server() -> str:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = f"PostgreSQL at {POSTGRES_URL} is unreachable: {exc}".strip()
        if os.environ.get("SCS_REQUIRE_POSTGRES"):
            pytest.fail(reason)  # CI: a missing backend is a failure, not a skip
        pytest.skip(reason)
    return POSTGRES_URL


def _create_schema(server: str) -> tuple[str, str]:
    """A fresh schema and a URL whose connections use it."""
    import psycopg

    schema = "scs_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = sa.make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def _drop_schema(server: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL on a fresh, empty schema, dropped after the test."""
    schema, url = _create_schema(postgres_server)
    try:
        yield url
    finally:
        _drop_schema(postgres_server, schema)


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "jwt_secret_key": "test-secret-" + "x" * 40,
        "feed_poll_seconds": 0.02,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    async with running_app(settings, background=False) as built:
        yield built


@pytest.fixture
async def fake_clock_app(settings: Settings, clock: FakeClock) -> AsyncIterator[App]:
    async with running_app(settings, clock, background=False) as built:
        yield built


@pytest.fixture
def alice() -> Principal:
    return Principal("alice", "claude", READ_WRITE)


@pytest.fixture
def bob() -> Principal:
    return Principal("bob", "claude", READ_WRITE)


@pytest.fixture
def carol() -> Principal:
    return Principal("carol", "gemini", READ_WRITE)


@pytest.fixture
def admin() -> Principal:
    return Principal("root", "gemini", ADMIN)


@pytest.fixture
def reader() -> Principal:
    return Principal("reader", "claude", READ)


@pytest.fixture(params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on a fresh database of each backend (SQLite file, PostgreSQL schema)."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "data")
    url: str = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path / "data", database_url=url)


@pytest.fixture
async def backend_app(backend_settings: Settings) -> AsyncIterator[App]:
    """A real app on each backend (the security suite runs on both)."""
    async with running_app(backend_settings, background=False) as built:
        yield built
