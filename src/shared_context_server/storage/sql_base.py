"""What every part of the SQL store shares: connections, worker threads, row mapping,
the visibility rule in SQL, and change-feed rows."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.audit import (
    GENESIS_HASH,
    HASH_VERSION,
    AuditEvent,
    record_hash,
)
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import (
    ApiKey,
    KeyBinding,
    MemoryEntry,
    Message,
    Permission,
    Session,
    SessionStatus,
    Visibility,
)
from shared_context_server.errors import (
    ConflictError,
    SessionLockedError,
    StorageUnavailableError,
)
from shared_context_server.storage import dialects
from shared_context_server.storage.engine import read_options
from shared_context_server.storage.tables import (
    audit_log,
    change_feed,
    idempotency_keys,
    messages,
    session_locks,
    sessions,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="SqlBase")


def visible_to(scope: ReadScope) -> sa.ColumnElement[bool]:
    """``ReadScope`` compiled to SQL; must agree with ``ReadScope.allows`` (tested).

    The reader's id and type are named parameters, so a statement built once for a scope's
    shape serves every reader of that shape (see ``reader_params``).
    """
    col = messages.c
    clauses: list[sa.ColumnElement[bool]] = [
        col.visibility == Visibility.PUBLIC.value,
        sa.and_(
            col.visibility == Visibility.AGENT_ONLY.value,
            col.sender_type == sa.bindparam("reader_type", scope.agent_type),
        ),
    ]
    if scope.include_private:
        clauses.append(
            sa.and_(
                col.visibility == Visibility.PRIVATE.value,
                col.sender == sa.bindparam("reader_id", scope.agent_id),
            )
        )
    if scope.admin:
        clauses.append(col.visibility == Visibility.ADMIN_ONLY.value)
    return sa.or_(*clauses)


def reader_params(scope: ReadScope) -> dict[str, str]:
    return {"reader_id": scope.agent_id, "reader_type": scope.agent_type}


def session_of(row: sa.Row[Any]) -> Session:
    return Session(
        id=row.id,
        purpose=row.purpose,
        created_by=row.created_by,
        status=SessionStatus(row.status),
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_activity_at=row.last_activity_at,
    )


def message_of(row: sa.Row[Any]) -> Message:
    return Message(
        id=row.id,
        session_id=row.session_id,
        sender=row.sender,
        sender_type=row.sender_type,
        content=row.content,
        metadata=row.metadata,
        message_type=row.message_type,
        visibility=Visibility(row.visibility),
        parent_message_id=row.parent_message_id,
        created_at=row.created_at,
    )


def memory_of(row: sa.Row[Any]) -> MemoryEntry:
    return MemoryEntry(
        agent_id=row.agent_id,
        session_id=row.scope or None,
        key=row.key,
        value=row.value,
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        version=row.version,
    )


def api_key_of(row: sa.Row[Any]) -> ApiKey:
    types = row.agent_types
    return ApiKey(
        id=row.id,
        name=row.name,
        permissions=frozenset(Permission(p) for p in row.permissions),
        created_at=row.created_at,
        binding=KeyBinding(
            agent_id=row.agent_id,
            agent_pattern=row.agent_pattern,
            agent_types=None if types is None else frozenset(types),
            any_agent=bool(row.any_agent),
        ),
        revoked_at=row.revoked_at,
    )


def feed_event_of(row: sa.Row[Any]) -> ChangeEvent:
    return ChangeEvent(
        id=row.id,
        kind=EventKind(row.kind),
        session_id=row.session_id,
        agent_id=row.agent_id,
        message_id=row.message_id,
        sender_type=row.sender_type,
        visibility=Visibility(row.visibility) if row.visibility else None,
        origin=row.origin,
        payload=row.payload or {},
    )


IDEMPOTENCY_WINDOW = timedelta(hours=24)

# Statements on every write path and the common reads, built once: SQLAlchemy then skips
# rebuilding and re-keying them per call and goes straight to its compiled-statement cache.
_lk = session_locks.c
_EXCLUSIVE_HOLDER = (
    sa.select(_lk.holder)
    .where(
        _lk.session_id == sa.bindparam("session_id"),
        _lk.lock_type == "exclusive",
        _lk.holder != sa.bindparam("writer"),
        _lk.expires_at > sa.bindparam("now"),
        _lk.heartbeat_deadline > sa.bindparam("now"),
    )
    .limit(1)
)
_LAST_AUDIT = sa.select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
SESSION_BY_ID = sa.select(sessions).where(sessions.c.id == sa.bindparam("session_id"))
LATEST_FEED_ID = sa.select(sa.func.max(change_feed.c.id))
_INSERT_AUDIT = sa.insert(audit_log)
_INSERT_FEED = sa.insert(change_feed)


def _fingerprint(request: dict[str, Any]) -> str:
    body = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def threaded(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Run a blocking store method (one transaction) on a worker thread."""

    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(functools.partial(method, self, *args, **kwargs))

    return run


class SqlBase:
    """Connections, threads and the change feed shared by every table group."""

    def __init__(
        self, engine: sa.Engine, *, max_threads: int = 8, audit_key: bytes | None = None
    ) -> None:
        self.engine = engine
        # The audit chain's HMAC key (kept apart from the database); without one the
        # store can read but not append audit records.
        self.audit_key = audit_key
        self.dialect = engine.dialect.name
        self.origin = uuid.uuid4().hex
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._read_options = read_options(engine)
        # SQLite admits one writer at a time and makes the others sleep in its busy handler
        # (1 ms, 2 ms, 5 ms ... up to 100 ms). This process's writers take turns here instead,
        # so they never sleep against each other; other processes still meet the busy timeout.
        self._write_turn = threading.Lock() if self.dialect == "sqlite" else None
        self._after_own_commit: object | None = None
        # The latest write's outcome (see ``write_outcome``): a sequence number and why it
        # failed, if the database refused it.
        self._write_seq = 0
        self._write_failure: str | None = None

    async def close(self) -> None:
        self.engine.dispose()

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        except (sa.exc.DBAPIError, sa.exc.TimeoutError, OverflowError) as exc:
            # Constraint violations, values the database refuses, a full disk, a read-only
            # or unreachable database: clear domain errors, never a raw database one.
            error = dialects.translate_error(exc)
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

    @contextmanager
    def _write(self, audit: AuditEvent | None = None) -> Iterator[sa.Connection]:
        """A write transaction; ``audit`` is appended to the audit trail inside it."""
        with self._write_turn or nullcontext():
            with self.engine.begin() as conn:
                yield conn
                if audit is not None:
                    self._append_audit(conn, audit)
            self._after_own_commit = self._file_signal()
            self._wrote(None)

    def change_signal(self) -> tuple[object, bool] | None:
        """A value that changes whenever any process commits, and whether it is still the
        value our own last commit left; None where there is no cheap sign (PostgreSQL).

        For a SQLite file: the size and modification time of the database and its WAL, two
        stat calls, cheap enough to ask every few milliseconds. (A foreign commit that
        lands between one of ours and its stat counts as ours: readers of the feed catch
        up on their periodic full read.)
        """
        signal = self._file_signal()
        return None if signal is None else (signal, signal == self._after_own_commit)

    def _file_signal(self) -> object | None:
        path = self.engine.url.database
        if self.dialect != "sqlite" or not path or path == ":memory:":
            return None
        signal: list[tuple[int, int] | None] = []
        for name in (path, path + "-wal"):
            try:
                stat = os.stat(name)
            except FileNotFoundError:
                signal.append(None)
            else:
                signal.append((stat.st_mtime_ns, stat.st_size))
        return tuple(signal)

    def _require_unlocked(
        self, conn: sa.Connection, session_id: str, writer: str, now: datetime
    ) -> None:
        """Inside a write transaction: refuse if another agent holds a live exclusive lock."""
        holder = conn.execute(
            _EXCLUSIVE_HOLDER, {"session_id": session_id, "writer": writer, "now": now}
        ).scalar()
        if holder is not None:
            raise SessionLockedError(
                f"{holder} holds an exclusive lock on this session", session_id=session_id
            )

    def _replay(
        self,
        conn: sa.Connection,
        agent_id: str,
        operation: str,
        key: str | None,
        request: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any] | None:
        """The result recorded for an earlier call with this idempotency key, if any.

        The same key with different arguments is a client bug: CONFLICT, not a replay.
        """
        if key is None:
            return None
        col = idempotency_keys.c
        row = conn.execute(
            sa.select(col.result).where(
                col.agent_id == agent_id,
                col.operation == operation,
                col.key == key,
                col.expires_at > now,
            )
        ).first()
        if row is None:
            return None
        if row.result["request"] != _fingerprint(request):
            raise ConflictError(
                "this idempotency key was used for a different request", idempotency_key=key
            )
        result: dict[str, Any] = row.result["result"]
        return result

    def _remember(
        self,
        conn: sa.Connection,
        agent_id: str,
        operation: str,
        key: str | None,
        request: dict[str, Any],
        result: dict[str, Any],
        now: datetime,
    ) -> None:
        if key is None:
            return
        col = idempotency_keys.c
        where = (col.agent_id == agent_id, col.operation == operation, col.key == key)
        conn.execute(sa.delete(idempotency_keys).where(*where))  # an expired earlier use
        conn.execute(
            sa.insert(idempotency_keys).values(
                agent_id=agent_id,
                operation=operation,
                key=key,
                result={"request": _fingerprint(request), "result": result},
                created_at=now,
                expires_at=now + IDEMPOTENCY_WINDOW,
            )
        )

    def _append_audit(self, conn: sa.Connection, event: AuditEvent) -> None:
        """Chain ``event`` onto the audit trail. Appends take turns (SQLite's write lock,
        PostgreSQL's advisory lock), so each record links to the one before it."""
        dialects.serialise_audit(conn)
        last = conn.execute(_LAST_AUDIT).first()
        prev_hash = last.hash if last else GENESIS_HASH
        record_id = last.id + 1 if last else 1
        conn.execute(_INSERT_AUDIT, self._sealed_audit(record_id, event, prev_hash))

    def _sealed_audit(self, record_id: int, event: AuditEvent, prev_hash: str) -> dict[str, Any]:
        """The audit_log row of ``event`` as record ``record_id``, sealed with the key."""
        if self.audit_key is None:
            raise RuntimeError("this store has no audit key: it cannot append audit records")
        return {
            "id": record_id,
            "event_type": event.event_type,
            "agent_id": event.agent_id,
            "agent_type": event.agent_type,
            "session_id": event.session_id,
            "target": event.target,
            "metadata": event.metadata,
            "created_at": event.at,
            "entity": event.entity,
            "entity_id": event.entity_id,
            "digest": event.digest,
            "hash_version": HASH_VERSION,
            "prev_hash": prev_hash,
            "hash": record_hash(self.audit_key, record_id, event, prev_hash),
        }

    def _read(self) -> Any:
        return self.engine.connect().execution_options(**self._read_options)

    def _feed(
        self,
        conn: sa.Connection,
        kind: EventKind,
        session_id: str,
        agent_id: str,
        now: datetime,
        message: Message | None = None,
        payload: dict[str, Any] | None = None,
    ) -> ChangeEvent:
        """Write one change-feed row. For message events the row carries what the access
        rule needs (sender, type, visibility) so readers can be filtered without a join."""
        values = {
            "kind": kind.value,
            "session_id": session_id,
            "agent_id": agent_id,
            "message_id": message.id if message else None,
            "sender_type": message.sender_type if message else None,
            "visibility": message.visibility.value if message else None,
            "origin": self.origin,
            "created_at": now,
            "payload": payload,
        }
        key = conn.execute(_INSERT_FEED, values).inserted_primary_key
        assert key is not None
        return ChangeEvent(
            id=key[0],
            kind=kind,
            session_id=session_id,
            agent_id=agent_id,
            message_id=message.id if message else None,
            sender_type=message.sender_type if message else None,
            visibility=message.visibility if message else None,
            origin=self.origin,
            payload=payload or {},
        )
