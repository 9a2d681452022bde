"""Legacy table groups' shared helpers, on the unit-of-work store (being retired)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import Change, ChangeEvent, EventKind
from shared_context_server.domain.idempotency import Remembered, fingerprint, replay
from shared_context_server.domain.locks import require_not_locked_out
from shared_context_server.domain.models import Message
from shared_context_server.storage.sql.audit import SqlAudit
from shared_context_server.storage.sql.feed import (
    LATEST_FEED_ID as LATEST_FEED_ID,
)
from shared_context_server.storage.sql.feed import (
    SqlFeed,
)
from shared_context_server.storage.sql.idempotency import SqlIdempotency
from shared_context_server.storage.sql.locks import SqlLocks
from shared_context_server.storage.sql.rows import (
    api_key_of as api_key_of,
)
from shared_context_server.storage.sql.rows import (
    feed_event_of as feed_event_of,
)
from shared_context_server.storage.sql.rows import (
    memory_of as memory_of,
)
from shared_context_server.storage.sql.rows import (
    message_of as message_of,
)
from shared_context_server.storage.sql.rows import (
    reader_params as reader_params,
)
from shared_context_server.storage.sql.rows import (
    session_of as session_of,
)
from shared_context_server.storage.sql.rows import (
    visible_to as visible_to,
)
from shared_context_server.storage.sql.sessions import SESSION_BY_ID as SESSION_BY_ID
from shared_context_server.storage.sql.store import SqlStore

T = TypeVar("T")
P = ParamSpec("P")
S = TypeVar("S", bound="SqlBase")


def threaded(
    method: Callable[Concatenate[S, P], T],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Run a blocking store method (one transaction) on a worker thread."""

    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(functools.partial(method, self, *args, **kwargs))

    return run


class SqlBase(SqlStore):
    """Helpers of the table groups not yet moved to repositories."""

    @contextmanager
    def _write(self, audit: AuditEvent | None = None) -> Iterator[sa.Connection]:
        """A write transaction; ``audit`` is appended to the audit trail inside it."""
        with self.dialect.write_turn():
            with self.engine.begin() as conn:
                yield conn
                if audit is not None:
                    self._append_audit(conn, audit)
            self._after_own_commit = self.dialect.commit_signal(self.engine)
            self._wrote(None)

    def _require_unlocked(
        self, conn: sa.Connection, session_id: str, writer: str, now: datetime
    ) -> None:
        holder = SqlLocks(conn, self.dialect).exclusive_holder(session_id, writer, now)
        require_not_locked_out(holder, session_id)

    def _replay(
        self,
        conn: sa.Connection,
        agent_id: str,
        operation: str,
        key: str | None,
        request: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any] | None:
        if key is None:
            return None
        found = SqlIdempotency(conn, self.dialect).find(agent_id, operation, key, now)
        return replay(found, request, key)

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
        remembered = Remembered(fingerprint(request), result)
        SqlIdempotency(conn, self.dialect).remember(agent_id, operation, key, remembered, now)

    def _append_audit(self, conn: sa.Connection, event: AuditEvent) -> None:
        SqlAudit(conn, self.dialect, self.audit_key).append(event)

    def _read(self) -> Any:
        return self.engine.connect().execution_options(**self.dialect.read_options)

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
        if message is not None:
            change = Change.of_message(kind, message, now, payload)
            change = Change(
                kind,
                session_id,
                agent_id,
                now,
                change.message_id,
                change.sender_type,
                change.visibility,
                payload,
            )
        else:
            change = Change(kind, session_id, agent_id, now, payload=payload)
        return SqlFeed(conn, self.dialect, self.origin).append(change)
