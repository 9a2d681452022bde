"""Store fixtures: every contract test runs on SQLite and on PostgreSQL, each test isolated.

Migrating a database takes a while, so each backend is migrated once per run: SQLite tests
get a copy of a migrated template file; PostgreSQL tests share one migrated schema (created
for this run, dropped afterwards) that is emptied before each test. Tests of migrations
themselves use ``empty_database_url``: a fresh file or a fresh schema.

PostgreSQL is taken from ``SCS_TEST_POSTGRES_URL`` (default: the local server); if it is
unreachable only the postgres parameters are skipped.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.tables import metadata
from tests.conftest import BACKENDS, _create_schema, _drop_schema

# The audit key of the stores opened here (an app's comes from its settings).
TEST_AUDIT_KEY = b"storage-tests-audit-key-" + b"k" * 16


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: str) -> Iterator[tuple[str, sa.Engine]]:
    schema, url = _create_schema(postgres_server)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        yield url, engine
    finally:
        engine.dispose()
        _drop_schema(postgres_server, schema)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each backend, for this test alone."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("migrated_sqlite")
        path = tmp_path / "store.db"
        shutil.copyfile(template, path)
        return f"sqlite:///{path}"
    url, engine = request.getfixturevalue("migrated_postgres")
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return str(url)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of each backend with no schema at all."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def open_store(database_url: str) -> AsyncIterator[Callable[[], SqlStore]]:
    """Opens stores (each with its own engine and origin) on the test's database."""
    opened: list[SqlStore] = []

    def open_one() -> SqlStore:
        store = SqlStore(
            create_engine(database_url, busy_timeout_ms=10_000), audit_key=TEST_AUDIT_KEY
        )
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture
def store(open_store: Callable[[], SqlStore]) -> SqlStore:
    return open_store()
