"""The SQL Store: each unit of work is one transaction on a worker thread, so the event
loop never waits on disk or on another process's lock."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import cached_property
from typing import TypeVar

import anyio
import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import Change, ChangeEvent
from shared_context_server.errors import StorageUnavailableError
from shared_context_server.storage.engine import dialect_for
from shared_context_server.storage.sql.audit import SqlAudit
from shared_context_server.storage.sql.counters import SqlCounters
from shared_context_server.storage.sql.dialect import Dialect
from shared_context_server.storage.sql.errors import translate_error
from shared_context_server.storage.sql.feed import SqlFeed
from shared_context_server.storage.sql.idempotency import SqlIdempotency
from shared_context_server.storage.sql.identity import SqlIdentity
from shared_context_server.storage.sql.leases import SqlLeases
from shared_context_server.storage.sql.locks import SqlLocks
from shared_context_server.storage.sql.memory import SqlMemory
from shared_context_server.storage.sql.messages import SqlMessages
from shared_context_server.storage.sql.presence import SqlPresence
from shared_context_server.storage.sql.search import SqlSearch
from shared_context_server.storage.sql.sessions import SqlSessions
from shared_context_server.storage.store import ChangeWatch, WriteOutcome
from shared_context_server.storage.unit_of_work import Committed

logger = logging.getLogger(__name__)

T = TypeVar("T")


class SqlTransaction:
    """One transaction's repositories (made on first use) and what it records."""

    def __init__(self, conn: sa.Connection, store: SqlStore, *, writing: bool) -> None:
        self.conn = conn
        self.dialect = store.dialect
        self._store = store
        self._writing = writing
        self._changes: list[Change] = []
        self._audits: list[AuditEvent] = []

    def changed(self, change: Change) -> None:
        assert self._writing, "a read-only snapshot records no changes"
        self._changes.append(change)

    def audited(self, event: AuditEvent) -> None:
        assert self._writing, "a read-only snapshot records no audit events"
        self._audits.append(event)

    def finish(self) -> list[ChangeEvent]:
        """Write the recorded changes' feed rows, then their audit records, in the append
        turn (held to commit, so their ids are in commit order)."""
        if self._changes:
            self.feed.begin_append()
        events = [self.feed.append(change) for change in self._changes]
        if self._audits:
            self.audit.append_all(self._audits, turn_held=bool(self._changes))
        return events

    @cached_property
    def sessions(self) -> SqlSessions:
        return SqlSessions(self.conn, self.dialect)

    @cached_property
    def messages(self) -> SqlMessages:
        return SqlMessages(self.conn, self.dialect)

    @cached_property
    def search(self) -> SqlSearch:
        return SqlSearch(self.conn, self.dialect)

    @cached_property
    def memory(self) -> SqlMemory:
        return SqlMemory(self.conn, self.dialect)

    @cached_property
    def locks(self) -> SqlLocks:
        return SqlLocks(self.conn, self.dialect)

    @cached_property
    def presence(self) -> SqlPresence:
        return SqlPresence(self.conn, self.dialect)

    @cached_property
    def identity(self) -> SqlIdentity:
        return SqlIdentity(self.conn, self.dialect)

    @cached_property
    def idempotency(self) -> SqlIdempotency:
        return SqlIdempotency(self.conn, self.dialect)

    @cached_property
    def feed(self) -> SqlFeed:
        return SqlFeed(self.conn, self.dialect, self._store.origin)

    @cached_property
    def audit(self) -> SqlAudit:
        return SqlAudit(self.conn, self.dialect, self._store.audit_key)

    @cached_property
    def counters(self) -> SqlCounters:
        return SqlCounters(self.conn, self.dialect)

    @cached_property
    def leases(self) -> SqlLeases:
        return SqlLeases(self.conn, self.dialect)


class SqlStore:
    def __init__(
        self,
        engine: sa.Engine,
        dialect: Dialect | None = None,
        *,
        max_threads: int = 8,
        audit_key: bytes | None = None,
    ) -> None:
        self.engine = engine
        self.dialect = dialect or dialect_for(engine.url)
        # The audit chain's HMAC key (kept apart from the database); without one the
        # store can read but not append audit records.
        self.audit_key = audit_key
        self.origin = uuid.uuid4().hex
        self._limiter = anyio.CapacityLimiter(max_threads)
        # The commit signal (Dialect.commit_signal) as this store's last commit left it.
        self.own_commit_signal: object | None = None
        # The latest write's outcome (see ``write_outcome``).
        self._write_seq = 0
        self._write_failure: str | None = None

    async def close(self) -> None:
        self.engine.dispose()

    async def write(self, work: Callable[[SqlTransaction], T]) -> Committed[T]:
        return await self._run(lambda: self._commit(work))

    async def read(self, work: Callable[[SqlTransaction], T], *, consistent: bool = False) -> T:
        return await self._run(lambda: self._snapshot(work, consistent))

    def _commit(self, work: Callable[[SqlTransaction], T]) -> Committed[T]:
        with self.dialect.write_turn():
            with self.engine.begin() as conn:
                tx = SqlTransaction(conn, self, writing=True)
                value = work(tx)
                events = tx.finish()
            self.own_commit_signal = self.dialect.commit_signal(self.engine)
            self._wrote(None)
        return Committed(value, events)

    def _snapshot(self, work: Callable[[SqlTransaction], T], consistent: bool = False) -> T:
        options = self.dialect.snapshot_options if consistent else self.dialect.read_options
        with self.engine.connect().execution_options(**options) as conn:
            return work(SqlTransaction(conn, self, writing=False))

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        except (sa.exc.DBAPIError, sa.exc.TimeoutError, OverflowError) as exc:
            # Constraint violations, values the database refuses, a full disk, a read-only
            # or unreachable database: clear domain errors, never a raw database one.
            error = translate_error(exc, self.dialect)
            if error is None:
                raise
            if isinstance(error, StorageUnavailableError):
                self._wrote(error.details["reason"])
            raise error from exc

    def _wrote(self, failure: str | None) -> None:
        if failure is not None and self._write_failure is None:
            logger.warning("the database refused a request: %s", failure)
        self._write_seq += 1
        self._write_failure = failure

    def write_outcome(self) -> WriteOutcome:
        """The latest write transaction's outcome in this process."""
        return WriteOutcome(self._write_seq, self._write_failure)

    def watch_changes(self, interval: float) -> AbstractAsyncContextManager[ChangeWatch]:
        return self.dialect.watch_changes(self, interval)
