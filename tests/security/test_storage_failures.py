"""Security: a full disk, a read-only or an unreachable database give STORAGE_UNAVAILABLE
(never INTERNAL), ``/health`` reports the database as not writable, and the INTERNAL path
never logs message content. On SQLite and PostgreSQL, through a real MCP client and the
store."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.models import NewMessage, Session, SessionStatus
from shared_context_server.errors import StorageUnavailableError
from shared_context_server.mcp.http import build_http_app
from shared_context_server.mcp.server import build_server
from shared_context_server.services.health import probe_write
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.sql.dialect import Dialect
from shared_context_server.storage.sql.errors import translate_error
from shared_context_server.storage.sql.messages import SqlMessages
from shared_context_server.storage.sql.postgres import PostgresDialect
from shared_context_server.storage.sql.sqlite import SqliteDialect
from shared_context_server.storage.sql.store import SqlStore
from tests.conftest import sqlite_only
from tests.mcp.conftest import connect_client, fails, ok, token_for
from tests.storage.factories import create_session, get_session

Hook = Callable[[Any], None]


def _read_only(engine: sa.Engine) -> Hook:
    """New connections refuse writes, as a read-only database does."""
    if engine.dialect.name == "sqlite":
        return lambda dbapi: dbapi.execute("PRAGMA query_only=ON")

    def postgres(dbapi: Any) -> None:
        with dbapi.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = on")
        dbapi.commit()

    return postgres


def _disk_full(dbapi: Any) -> None:
    """SQLite: the database may not grow by one page, as on a full disk."""
    pages = dbapi.execute("PRAGMA page_count").fetchone()[0]
    dbapi.execute(f"PRAGMA max_page_count={pages}")


@asynccontextmanager
async def failing(engine: sa.Engine, hook: Hook) -> AsyncIterator[None]:
    """Every connection opened inside the block gets ``hook``; the pool starts afresh on
    the way in and out."""

    def on_connect(dbapi: Any, _record: Any) -> None:
        hook(dbapi)

    event.listen(engine, "connect", on_connect)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "connect", on_connect)
        engine.dispose()


@asynccontextmanager
async def http(app: App) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=build_http_app(app, build_server(app)))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
async def clocked_app(backend_settings: Any, clock: FakeClock) -> AsyncIterator[App]:
    from shared_context_server.app import running_app

    async with running_app(backend_settings, clock, background=False) as built:
        yield built


async def test_a_read_only_database_gives_storage_unavailable_and_health_says_so(
    clocked_app: App, clock: FakeClock
) -> None:
    app = clocked_app
    async with connect_client(app, token_for(app, "alice")) as alice, http(app) as web:
        sid = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, "add_message", session_id=sid, content="before")
        healthy = await web.get("/health")
        assert healthy.status_code == 200
        assert healthy.json()["database"] == "writable"
        async with failing(app.store.engine, _read_only(app.store.engine)):
            error = await fails(alice, "add_message", session_id=sid, content="during")
            assert error["code"] == "STORAGE_UNAVAILABLE"
            assert error["details"] == {"reason": "read_only"}
            for tool, args in [
                ("create_session", {"purpose": "p"}),
                ("set_memory", {"key": "k", "value": 1}),
            ]:
                assert (await fails(alice, tool, **args))["code"] == "STORAGE_UNAVAILABLE"
            # Reads still work.
            page = await ok(alice, "get_messages", session_id=sid)
            assert [m["content"] for m in page["messages"]] == ["before"]
            degraded = await web.get("/health")
            assert degraded.status_code == 503
            assert degraded.json()["status"] == "degraded"
            assert degraded.json()["database"] == "not writable"
            assert degraded.json()["reason"] == "read_only"
            # With no write since, the next check within the probe interval costs nothing...
            clock.advance(1)
            assert (await web.get("/health")).status_code == 503
            # ... and after it a probe finds the database still read-only.
            clock.advance(2)
            assert (await web.get("/health")).json()["reason"] == "read_only"
        clock.advance(2)
        assert (await web.get("/health")).status_code == 200  # the probe wrote again
        await ok(alice, "add_message", session_id=sid, content="after")


async def test_health_probes_a_database_that_went_read_only_while_idle(
    clocked_app: App, clock: FakeClock
) -> None:
    app = clocked_app
    async with http(app) as web:
        assert (await web.get("/health")).status_code == 200
        async with failing(app.store.engine, _read_only(app.store.engine)):
            assert (await web.get("/health")).status_code == 200  # cached: no probe yet
            clock.advance(2)
            degraded = await web.get("/health")
            assert degraded.status_code == 503
            assert degraded.json()["reason"] == "read_only"


@sqlite_only("the page limit that fakes a full disk is a SQLite pragma")
async def test_a_full_disk_gives_storage_unavailable_and_health_says_so(
    clocked_app: App, clock: FakeClock
) -> None:
    app = clocked_app
    async with connect_client(app, token_for(app, "alice")) as alice, http(app) as web:
        sid = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        async with failing(app.store.engine, _disk_full):
            error = await fails(alice, "add_message", session_id=sid, content="x" * 50_000)
            assert error["code"] == "STORAGE_UNAVAILABLE"
            assert error["details"] == {"reason": "disk_full"}
            degraded = await web.get("/health")
            assert degraded.status_code == 503
            assert degraded.json()["reason"] == "disk_full"
        await ok(alice, "add_message", session_id=sid, content="x" * 50_000)
        assert (await web.get("/health")).status_code == 200


def _session(n: int = 1) -> Session:
    now = FakeClock().now()
    return Session(f"session_{n}", "p", "alice", SessionStatus.ACTIVE, {}, now, now, now)


async def test_the_store_refuses_writes_to_a_read_only_database_clearly(
    backend_app: App,
) -> None:
    store = backend_app.store
    await create_session(store, _session(1))
    async with failing(store.engine, _read_only(store.engine)):
        with pytest.raises(StorageUnavailableError) as refused:
            await create_session(store, _session(2))
        assert refused.value.details == {"reason": "read_only"}
        assert store.write_outcome().failure == "read_only"
        with pytest.raises(StorageUnavailableError):
            await probe_write(store)
        assert await get_session(store, "session_1") is not None
    await probe_write(store)
    assert store.write_outcome().failure is None


async def test_an_unreachable_postgresql_gives_storage_unavailable() -> None:
    store = SqlStore(create_engine("postgresql://postgres@127.0.0.1:1/nowhere"))
    try:
        with pytest.raises(StorageUnavailableError) as refused:
            await get_session(store, "session_1")
        assert refused.value.details == {"reason": "unreachable"}
    finally:
        await store.close()


def _wrapped(orig: BaseException) -> sa.exc.DBAPIError:
    return sa.exc.OperationalError("INSERT ...", {"content": "secret"}, orig)


def _sqlite_error(name: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(name.lower())
    error.sqlite_errorname = name  # type: ignore[attr-defined]
    return error


_SQLITE = SqliteDialect()
_POSTGRES = PostgresDialect()


@pytest.mark.parametrize(
    ("orig", "dialect", "reason"),
    [
        (psycopg.errors.DiskFull(), _POSTGRES, "disk_full"),
        (psycopg.errors.ReadOnlySqlTransaction(), _POSTGRES, "read_only"),
        (psycopg.errors.AdminShutdown(), _POSTGRES, "unreachable"),
        (psycopg.errors.CannotConnectNow(), _POSTGRES, "unreachable"),
        (psycopg.errors.TooManyConnections(), _POSTGRES, "busy"),
        (psycopg.OperationalError("connection refused"), _POSTGRES, "unreachable"),
        (_sqlite_error("SQLITE_FULL"), _SQLITE, "disk_full"),
        (_sqlite_error("SQLITE_READONLY"), _SQLITE, "read_only"),
        (_sqlite_error("SQLITE_READONLY_DBMOVED"), _SQLITE, "read_only"),
        (_sqlite_error("SQLITE_CANTOPEN"), _SQLITE, "unreachable"),
        (_sqlite_error("SQLITE_IOERR_WRITE"), _SQLITE, "io_error"),
        (_sqlite_error("SQLITE_BUSY"), _SQLITE, "busy"),
    ],
)
def test_database_errors_are_classified_by_code_not_by_text(
    orig: BaseException, dialect: Dialect, reason: str
) -> None:
    error = translate_error(_wrapped(orig), dialect)
    assert isinstance(error, StorageUnavailableError)
    assert error.details == {"reason": reason}
    assert "secret" not in error.message


def test_other_database_errors_are_left_for_the_internal_path() -> None:
    assert translate_error(_wrapped(_sqlite_error("SQLITE_ERROR")), _SQLITE) is None
    assert translate_error(_wrapped(psycopg.errors.UndefinedColumn()), _POSTGRES) is None


async def test_an_internal_error_never_logs_message_content(
    backend_app: App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = backend_app
    secret = "TOP-SECRET-CONTENT-4711"

    def broken_insert(self: SqlMessages, new: NewMessage, now: Any) -> Any:
        self.conn.execute(
            sa.text("SELECT no_such_column FROM messages WHERE content = :c"),
            {"c": new.content},
        )

    async with connect_client(app, token_for(app, "alice")) as alice:
        sid = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        monkeypatch.setattr(SqlMessages, "insert", broken_insert)
        with caplog.at_level(logging.DEBUG):
            error = await fails(alice, "add_message", session_id=sid, content=secret)
    assert error["code"] == "INTERNAL"
    assert secret not in str(error)
    assert any(r.levelno >= logging.ERROR for r in caplog.records), "the fault is logged"
    logged = "\n".join(
        record.getMessage()
        + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
    )
    assert secret not in logged
