"""Shared fixtures: a real app on a fresh database of each backend per test, principals, a
fake clock.

Every test that takes ``settings`` (or ``app``, ``data_dir`` in tests/e2e, ...) runs twice:
``[sqlite]`` on a new file in its data dir, ``[postgres]`` on an empty, migrated schema.
Migrating a PostgreSQL schema per test would cost a tenth of a second each, so one schema is
migrated per run and emptied (rows deleted, sequences restarted) before each test: what the
app finds is what a fresh, migrated database holds. A test of what a start does to a
database it did not migrate takes ``empty_settings``. ``sqlite_only`` and
``postgres_only`` narrow a test to one backend, with the reason in code.
"""

from __future__ import annotations

import graphlib
import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared_context_server.app import App, running_app
from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
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


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of the test's databases (module-scoped, for servers shared by a module)."""
    return str(request.param)


def sqlite_only(reason: str) -> pytest.MarkDecorator:
    """Runs a test on SQLite alone; ``reason``: why it cannot run on PostgreSQL."""
    assert reason.strip(), "say why the test is SQLite-only"
    return pytest.mark.parametrize("backend", [BACKENDS[0]], scope="module")


def postgres_only(reason: str) -> pytest.MarkDecorator:
    """Runs a test on PostgreSQL alone; ``reason``: why it cannot run on SQLite."""
    assert reason.strip(), "say why the test is PostgreSQL-only"
    return pytest.mark.parametrize("backend", [BACKENDS[1]], scope="module")


@dataclass
class ReusedSchema:
    """One PostgreSQL schema migrated once per run and emptied before each test."""

    server: str
    schema: str = ""
    url: str = ""
    _reset: str = field(default="", repr=False)
    _tables: int = 0

    def build(self) -> None:
        import psycopg

        if self.schema:
            _drop_schema(self.server, self.schema)
        self.schema, self.url = _create_schema(self.server)
        engine = create_engine(self.url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        with psycopg.connect(self.url, autocommit=True) as conn:
            tables = [
                str(row[0])
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s"
                    " AND tablename <> 'alembic_version'",
                    (self.schema,),
                )
            ]
            # Children before parents: each table waits for the tables referencing it.
            order = graphlib.TopologicalSorter({name: set[str]() for name in tables})
            for child, parent in conn.execute(
                "SELECT c.relname, p.relname FROM pg_constraint k"
                " JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid"
                " WHERE k.contype = 'f' AND k.connamespace = %s::regnamespace",
                (self.schema,),
            ):
                if child != parent:
                    order.add(str(parent), str(child))
            sequences = [
                str(row[0])
                for row in conn.execute(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = %s", (self.schema,)
                )
            ]
        # DELETE, not TRUNCATE: on tables this small it is ten times faster.
        self._reset = "".join(
            [f'DELETE FROM "{self.schema}"."{name}";' for name in order.static_order()]
            + [f'ALTER SEQUENCE "{self.schema}"."{name}" RESTART;' for name in sequences]
        )
        self._tables = len(tables) + 1

    def emptied(self) -> str:
        """The URL, its schema as a fresh migrated one is; rebuilt if a test changed it."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            version, tables = conn.execute(
                "SELECT (SELECT string_agg(version_num, ',') FROM alembic_version),"
                " (SELECT count(*) FROM pg_tables WHERE schemaname = %s)",
                (self.schema,),
            ).fetchone() or (None, 0)
            if version == migrate.HEAD and tables == self._tables:
                conn.execute("SET lock_timeout = '30s'")  # a connection left behind: fail
                with conn.transaction():
                    conn.execute(self._reset)  # type: ignore[arg-type]
                return self.url
        self.build()
        return self.url


@pytest.fixture(scope="session")
def reused_postgres(postgres_server: str) -> Iterator[ReusedSchema]:
    reused = ReusedSchema(postgres_server)
    reused.build()
    yield reused
    _drop_schema(postgres_server, reused.schema)


@pytest.fixture
def backend_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The test's database on its backend: None for SQLite (a new file in the data dir),
    else an empty, migrated PostgreSQL schema for this test alone."""
    if backend == "sqlite":
        return None
    reused: ReusedSchema = request.getfixturevalue("reused_postgres")
    return reused.emptied()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "jwt_secret_key": "test-secret-" + "x" * 40,
        "feed_poll_seconds": 0.02,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def settings_on(settings: Settings, data_dir: Path | None = None, **overrides: object) -> Settings:
    """Settings built afresh (from the environment as it is now, with ``overrides``) on the
    database of ``settings`` and its data dir, or ``data_dir``."""
    return make_settings(
        data_dir or settings.data_dir, database_url=settings.database_url, **overrides
    )


@pytest.fixture
def settings(tmp_path: Path, backend_url: str | None) -> Settings:
    """Settings on the test's database of each backend (see ``backend_url``)."""
    if backend_url is None:
        return make_settings(tmp_path / "data")
    return make_settings(tmp_path / "data", database_url=backend_url)


@pytest.fixture
def empty_settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    """Settings on a database of each backend that has no schema at all (no migrations)."""
    if backend == "sqlite":
        return make_settings(tmp_path / "data")
    url: str = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path / "data", database_url=url)


def dump_rows(engine: sa.Engine) -> str:
    """Every row of every table as text, on either backend: what reading the database finds."""
    with engine.connect() as conn:
        tables = sa.MetaData()
        tables.reflect(conn)
        return "\n".join(
            repr(tuple(row))
            for table in tables.sorted_tables
            for row in conn.execute(table.select())
        )


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


@pytest.fixture
def backend_settings(settings: Settings) -> Settings:
    """``settings`` by the name some suites use: on both backends."""
    return settings


@pytest.fixture
def backend_app(app: App) -> App:
    """``app`` by the name some suites use: on both backends."""
    return app
