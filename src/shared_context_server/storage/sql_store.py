"""The Store on SQLAlchemy Core: SQLite (embedded default) and PostgreSQL.

Each public method is one transaction, run on a worker thread so the event loop never
waits on disk or on another process's lock.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
import sqlalchemy as sa

from shared_context_server.domain.access import ReadScope
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import (
    ApiKey,
    MemoryEntry,
    Message,
    NewMessage,
    Permission,
    Session,
    SessionStatus,
    Visibility,
)
from shared_context_server.errors import (
    ConflictError,
    InvalidParentError,
    KeyExistsError,
    SessionNotFoundError,
)
from shared_context_server.storage import dialects
from shared_context_server.storage.engine import read_options
from shared_context_server.storage.store import (
    MemoryWrite,
    MessageQuery,
    SessionChanges,
    SessionQuery,
)
from shared_context_server.storage.tables import (
    agent_memory,
    api_keys,
    change_feed,
    messages,
    revoked_tokens,
    sessions,
)

T = TypeVar("T")
P = ParamSpec("P")


def visible_to(scope: ReadScope) -> sa.ColumnElement[bool]:
    """``ReadScope`` compiled to SQL; must agree with ``ReadScope.allows`` (tested)."""
    col = messages.c
    clauses: list[sa.ColumnElement[bool]] = [
        col.visibility == Visibility.PUBLIC.value,
        sa.and_(col.visibility == Visibility.AGENT_ONLY.value, col.sender_type == scope.agent_type),
    ]
    if scope.include_private:
        clauses.append(
            sa.and_(col.visibility == Visibility.PRIVATE.value, col.sender == scope.agent_id)
        )
    if scope.admin:
        clauses.append(col.visibility == Visibility.ADMIN_ONLY.value)
    return sa.or_(*clauses)


def _session(row: sa.Row[Any]) -> Session:
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


def _message(row: sa.Row[Any]) -> Message:
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


def _memory(row: sa.Row[Any]) -> MemoryEntry:
    return MemoryEntry(
        agent_id=row.agent_id,
        session_id=row.scope or None,
        key=row.key,
        value=row.value,
        metadata=row.metadata,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
    )


def _api_key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        permissions=frozenset(Permission(p) for p in row.permissions),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _feed_event(row: sa.Row[Any]) -> ChangeEvent:
    return ChangeEvent(
        id=row.id,
        kind=EventKind(row.kind),
        session_id=row.session_id,
        agent_id=row.agent_id,
        message_id=row.message_id,
        sender_type=row.sender_type,
        visibility=Visibility(row.visibility) if row.visibility else None,
        origin=row.origin,
    )


def _glob_to_like(glob: str) -> str:
    """``*`` and ``?`` as SQL LIKE wildcards; LIKE's own wildcards match literally."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _not_expired(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(agent_memory.c.expires_at.is_(None), agent_memory.c.expires_at > now)


def threaded(
    method: Callable[Concatenate[SqlStore, P], T],
) -> Callable[Concatenate[SqlStore, P], Coroutine[Any, Any, T]]:
    """Run a blocking store method (one transaction) on a worker thread."""

    async def run(self: SqlStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(functools.partial(method, self, *args, **kwargs))

    return run


class SqlStore:
    def __init__(self, engine: sa.Engine, *, max_threads: int = 8) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.origin = uuid.uuid4().hex
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._read_options = read_options(engine)

    async def close(self) -> None:
        self.engine.dispose()

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        except sa.exc.IntegrityError as exc:
            # A constraint the specific checks did not foresee (a duplicate id, say):
            # a clear domain error, never a raw database one.
            raise ConflictError("the change conflicts with data already stored") from exc

    def _write(self) -> Any:
        return self.engine.begin()

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
    ) -> ChangeEvent:
        values = {
            "kind": kind.value,
            "session_id": session_id,
            "agent_id": agent_id,
            "message_id": message.id if message else None,
            "sender_type": message.sender_type if message else None,
            "visibility": message.visibility.value if message else None,
            "origin": self.origin,
            "created_at": now,
        }
        key = conn.execute(sa.insert(change_feed).values(values)).inserted_primary_key
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
        )

    # sessions ---------------------------------------------------------------------------

    @threaded
    def create_session(self, session: Session) -> tuple[Session, ChangeEvent]:
        with self._write() as conn:
            conn.execute(
                sa.insert(sessions).values(
                    id=session.id,
                    purpose=session.purpose,
                    created_by=session.created_by,
                    status=session.status.value,
                    metadata=session.metadata,
                    created_at=session.created_at,
                    updated_at=session.updated_at,
                    last_activity_at=session.last_activity_at,
                )
            )
            event = self._feed(
                conn, EventKind.SESSION_CREATED, session.id, session.created_by, session.created_at
            )
        return session, event

    @threaded
    def get_session(self, session_id: str) -> Session | None:
        with self._read() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).first()
        return _session(row) if row else None

    @threaded
    def list_sessions(self, query: SessionQuery) -> list[Session]:
        statement = sa.select(sessions)
        if query.status:
            statement = statement.where(sessions.c.status == query.status.value)
        if query.created_by:
            statement = statement.where(sessions.c.created_by == query.created_by)
        if query.involving:
            posted = sa.select(messages.c.session_id).where(messages.c.sender == query.involving)
            statement = statement.where(
                sa.or_(sessions.c.created_by == query.involving, sessions.c.id.in_(posted))
            )
        statement = (
            statement.order_by(sessions.c.last_activity_at.desc(), sessions.c.id)
            .limit(query.limit)
            .offset(query.offset)
        )
        with self._read() as conn:
            return [_session(row) for row in conn.execute(statement)]

    @threaded
    def update_session(
        self, session_id: str, changes: SessionChanges, agent_id: str, now: datetime
    ) -> tuple[Session, ChangeEvent]:
        values: dict[str, Any] = {"updated_at": now, "last_activity_at": now}
        if changes.status is not None:
            values["status"] = changes.status.value
        if changes.purpose is not None:
            values["purpose"] = changes.purpose
        if changes.metadata is not None:
            values["metadata"] = changes.metadata
        with self._write() as conn:
            result = conn.execute(
                sa.update(sessions).where(sessions.c.id == session_id).values(values)
            )
            if result.rowcount == 0:
                raise SessionNotFoundError(f"no session {session_id!r}", session_id=session_id)
            event = self._feed(conn, EventKind.SESSION_UPDATED, session_id, agent_id, now)
            row = conn.execute(sa.select(sessions).where(sessions.c.id == session_id)).one()
        return _session(row), event

    @threaded
    def archive_inactive_sessions(self, before: datetime, now: datetime) -> list[ChangeEvent]:
        with self._write() as conn:
            stale = [
                row.id
                for row in conn.execute(
                    sa.select(sessions.c.id).where(
                        sessions.c.status != SessionStatus.ARCHIVED.value,
                        sessions.c.last_activity_at < before,
                    )
                )
            ]
            if stale:
                conn.execute(
                    sa.update(sessions)
                    .where(sessions.c.id.in_(stale))
                    .values(status=SessionStatus.ARCHIVED.value, updated_at=now)
                )
            return [
                self._feed(conn, EventKind.SESSION_UPDATED, session_id, "system", now)
                for session_id in stale
            ]

    # messages ---------------------------------------------------------------------------

    @threaded
    def add_message(self, new: NewMessage, now: datetime) -> tuple[Message, ChangeEvent]:
        with self._write() as conn:
            touched = conn.execute(
                sa.update(sessions)
                .where(sessions.c.id == new.session_id)
                .values(last_activity_at=now)
            )
            if touched.rowcount == 0:
                raise SessionNotFoundError(
                    f"no session {new.session_id!r}", session_id=new.session_id
                )
            if new.parent_message_id is not None:
                parent_session = conn.execute(
                    sa.select(messages.c.session_id).where(messages.c.id == new.parent_message_id)
                ).scalar()
                if parent_session != new.session_id:
                    raise InvalidParentError(
                        f"message {new.parent_message_id} is not in session {new.session_id!r}",
                        parent_message_id=new.parent_message_id,
                    )
            values = {
                "session_id": new.session_id,
                "sender": new.sender,
                "sender_type": new.sender_type,
                "content": new.content,
                "metadata": new.metadata,
                "message_type": new.message_type,
                "visibility": new.visibility.value,
                "parent_message_id": new.parent_message_id,
                "created_at": now,
            }
            key = conn.execute(sa.insert(messages).values(values)).inserted_primary_key
            assert key is not None
            message = Message(
                id=key[0],
                session_id=new.session_id,
                sender=new.sender,
                sender_type=new.sender_type,
                content=new.content,
                metadata=new.metadata,
                message_type=new.message_type,
                visibility=new.visibility,
                parent_message_id=new.parent_message_id,
                created_at=now,
            )
            event = self._feed(
                conn, EventKind.MESSAGE_ADDED, new.session_id, new.sender, now, message
            )
        return message, event

    @threaded
    def get_message(self, message_id: int) -> Message | None:
        with self._read() as conn:
            row = conn.execute(sa.select(messages).where(messages.c.id == message_id)).first()
        return _message(row) if row else None

    @threaded
    def list_messages(self, q: MessageQuery) -> list[Message]:
        col = messages.c
        statement = sa.select(messages).where(col.session_id == q.session_id, visible_to(q.scope))
        if q.after_id is not None:
            statement = statement.where(col.id > q.after_id)
        if q.senders:
            statement = statement.where(col.sender.in_(list(q.senders)))
        if q.message_type:
            statement = statement.where(col.message_type == q.message_type)
        if q.visibilities:
            statement = statement.where(col.visibility.in_([v.value for v in q.visibilities]))
        if q.since:
            statement = statement.where(col.created_at >= q.since)
        if q.until:
            statement = statement.where(col.created_at <= q.until)
        order = col.id.desc() if q.newest_first else col.id
        statement = statement.order_by(order).limit(q.limit).offset(q.offset)
        with self._read() as conn:
            return [_message(row) for row in conn.execute(statement)]

    # memory -----------------------------------------------------------------------------

    @threaded
    def set_memory(self, w: MemoryWrite, now: datetime) -> MemoryEntry:
        col = agent_memory.c
        where = (col.agent_id == w.agent_id, col.scope == w.scope, col.key == w.key)
        values = {
            "agent_id": w.agent_id,
            "scope": w.scope,
            "key": w.key,
            "value": w.value,
            "metadata": w.metadata,
            "created_at": now,
            "updated_at": now,
            "expires_at": w.expires_at,
        }
        keys = ("agent_id", "scope", "key")
        with self._write() as conn:
            if (
                w.scope
                and not conn.execute(
                    sa.select(sessions.c.id).where(sessions.c.id == w.scope)
                ).first()
            ):
                raise SessionNotFoundError(f"no session {w.scope!r}", session_id=w.scope)
            # An expired entry is gone already, whatever the sweep has not yet removed.
            conn.execute(
                sa.delete(agent_memory).where(
                    *where, col.expires_at.is_not(None), col.expires_at <= now
                )
            )
            if w.overwrite:
                update = ("value", "metadata", "updated_at", "expires_at")
                conn.execute(dialects.upsert(self.dialect, agent_memory, values, keys, update))
            else:
                inserted = conn.execute(
                    dialects.insert_ignoring_conflict(self.dialect, agent_memory, values, keys)
                )
                if inserted.first() is None:
                    raise KeyExistsError(f"memory key {w.key!r} exists", key=w.key)
            row = conn.execute(sa.select(agent_memory).where(*where)).one()
        return _memory(row)

    @threaded
    def get_memory(self, agent_id: str, scope: str, key: str, now: datetime) -> MemoryEntry | None:
        col = agent_memory.c
        statement = sa.select(agent_memory).where(
            col.agent_id == agent_id, col.scope == scope, col.key == key, _not_expired(now)
        )
        with self._read() as conn:
            row = conn.execute(statement).first()
        return _memory(row) if row else None

    @threaded
    def list_memory(
        self,
        agent_id: str,
        scope: str | None,
        prefix: str,
        now: datetime,
        limit: int,
        *,
        glob: str | None = None,
    ) -> list[MemoryEntry]:
        col = agent_memory.c
        statement = sa.select(agent_memory).where(col.agent_id == agent_id, _not_expired(now))
        if scope is not None:
            statement = statement.where(col.scope == scope)
        if prefix:
            statement = statement.where(col.key.startswith(prefix, autoescape=True))
        if glob is not None:
            statement = statement.where(col.key.like(_glob_to_like(glob), escape="\\"))
        statement = statement.order_by(col.scope, col.key).limit(limit)
        with self._read() as conn:
            return [_memory(row) for row in conn.execute(statement)]

    @threaded
    def delete_memory(self, agent_id: str, scope: str, key: str, now: datetime) -> bool:
        col = agent_memory.c
        with self._write() as conn:
            result = conn.execute(
                sa.delete(agent_memory).where(
                    col.agent_id == agent_id, col.scope == scope, col.key == key
                )
            )
        return bool(result.rowcount)

    @threaded
    def purge_expired_memory(self, now: datetime) -> int:
        col = agent_memory.c
        with self._write() as conn:
            result = conn.execute(
                sa.delete(agent_memory).where(col.expires_at.is_not(None), col.expires_at <= now)
            )
            conn.execute(sa.delete(revoked_tokens).where(revoked_tokens.c.expires_at <= now))
        return int(result.rowcount)

    # identity ---------------------------------------------------------------------------

    @threaded
    def create_api_key(
        self,
        key_id: str,
        name: str,
        key_hash: str,
        permissions: frozenset[Permission],
        now: datetime,
    ) -> ApiKey:
        values = {
            "id": key_id,
            "name": name,
            "key_hash": key_hash,
            "permissions": sorted(p.value for p in permissions),
            "created_at": now,
        }
        with self._write() as conn:
            inserted = conn.execute(
                dialects.insert_ignoring_conflict(self.dialect, api_keys, values, ("name",))
            )
            if inserted.first() is None:
                raise ConflictError(f"an API key named {name!r} exists", name=name)
        return ApiKey(id=key_id, name=name, permissions=permissions, created_at=now)

    @threaded
    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()
        return _api_key(row) if row else None

    @threaded
    def list_api_keys(self) -> list[ApiKey]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.name)
            )
            return [_api_key(row) for row in rows]

    @threaded
    def revoke_api_key(self, name: str, now: datetime) -> bool:
        with self._write() as conn:
            result = conn.execute(
                sa.update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    @threaded
    def revoke_token(self, jti: str, expires_at: datetime) -> None:
        values = {"jti": jti, "expires_at": expires_at}
        with self._write() as conn:
            conn.execute(
                dialects.insert_ignoring_conflict(self.dialect, revoked_tokens, values, ("jti",))
            )

    @threaded
    def is_token_revoked(self, jti: str) -> bool:
        statement = sa.select(revoked_tokens.c.jti).where(revoked_tokens.c.jti == jti)
        with self._read() as conn:
            return conn.execute(statement).first() is not None

    # change feed ------------------------------------------------------------------------

    @threaded
    def read_feed(self, after_id: int, limit: int) -> list[ChangeEvent]:
        statement = (
            sa.select(change_feed)
            .where(change_feed.c.id > after_id)
            .order_by(change_feed.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [_feed_event(row) for row in conn.execute(statement)]

    @threaded
    def latest_feed_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(change_feed.c.id))).scalar() or 0)
