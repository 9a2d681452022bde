"""The audit trail: appended inside the transaction of each change (see SqlBase._write),
read back by filters, in id order for verification, and summarised per agent."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import (
    AgentActivity,
    AuditEvent,
    AuditQuery,
    AuditRecord,
)
from shared_context_server.storage.sql_base import SqlBase, threaded
from shared_context_server.storage.tables import audit_log

SESSION_CREATED = "session.created"


def audit_record_of(row: sa.Row[Any]) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        event_type=row.event_type,
        agent_id=row.agent_id,
        agent_type=row.agent_type,
        session_id=row.session_id,
        target=row.target,
        metadata=row.metadata,
        created_at=row.created_at,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _audit_select(query: AuditQuery) -> sa.Select[Any]:
    col = audit_log.c
    conditions = [
        condition
        for condition in (
            col.session_id == query.session_id if query.session_id is not None else None,
            col.agent_id == query.agent_id if query.agent_id is not None else None,
            col.event_type == query.event_type if query.event_type is not None else None,
            col.created_at >= query.since if query.since is not None else None,
            col.created_at <= query.until if query.until is not None else None,
            col.id < query.before_id if query.before_id is not None else None,
        )
        if condition is not None
    ]
    return sa.select(audit_log).where(*conditions).order_by(col.id.desc()).limit(query.limit)


def _in_window(
    since: datetime, until: datetime | None, agent_id: str | None
) -> list[sa.ColumnElement[bool]]:
    col = audit_log.c
    conditions = [col.created_at >= since]
    if until is not None:
        conditions.append(col.created_at <= until)
    if agent_id is not None:
        conditions.append(col.agent_id == agent_id)
    return conditions


class AuditRows(SqlBase):
    @threaded
    def append_audit(self, event: AuditEvent) -> None:
        """Record an event that changes nothing else (a failed login, an admin read)."""
        with self._write(event):
            pass

    @threaded
    def list_audit(
        self, query: AuditQuery, *, audit: AuditEvent | None = None
    ) -> list[AuditRecord]:
        """Records matching ``query``, newest first. With ``audit``, the read and its own
        record happen in one transaction (the record is not part of the page)."""
        if audit is None:
            with self._read() as conn:
                return [audit_record_of(row) for row in conn.execute(_audit_select(query))]
        with self._write(audit) as conn:
            return [audit_record_of(row) for row in conn.execute(_audit_select(query))]

    @threaded
    def audit_records(self, after_id: int, limit: int) -> list[AuditRecord]:
        """The chain in id order, from just after ``after_id``: for verification."""
        statement = (
            sa.select(audit_log)
            .where(audit_log.c.id > after_id)
            .order_by(audit_log.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [audit_record_of(row) for row in conn.execute(statement)]

    @threaded
    def activity_summary(
        self,
        since: datetime,
        until: datetime | None = None,
        *,
        agent_id: str | None = None,
        audit: AuditEvent | None = None,
    ) -> list[AgentActivity]:
        """Per agent, what the trail holds between ``since`` and ``until`` (inclusive),
        busiest first. With ``audit``, the read is recorded in the same transaction."""
        if audit is None:
            with self._read() as conn:
                return self._summarise(conn, since, until, agent_id)
        with self._write(audit) as conn:
            return self._summarise(conn, since, until, agent_id)

    def _summarise(
        self, conn: sa.Connection, since: datetime, until: datetime | None, agent_id: str | None
    ) -> list[AgentActivity]:
        col = audit_log.c
        where = _in_window(since, until, agent_id)
        created = sa.case((col.event_type == SESSION_CREATED, col.session_id))
        totals = conn.execute(
            sa.select(
                col.agent_id,
                sa.func.count().label("events"),
                sa.func.count(sa.distinct(col.session_id)).label("touched"),
                sa.func.count(sa.distinct(created)).label("created"),
                sa.func.min(col.created_at).label("first"),
                sa.func.max(col.created_at).label("last"),
            )
            .where(*where)
            .group_by(col.agent_id)
        ).all()
        kinds: defaultdict[str, dict[str, int]] = defaultdict(dict)
        types: defaultdict[str, set[str]] = defaultdict(set)
        for row in conn.execute(
            sa.select(col.agent_id, col.agent_type, col.event_type, sa.func.count().label("n"))
            .where(*where)
            .group_by(col.agent_id, col.agent_type, col.event_type)
        ):
            kinds[row.agent_id][row.event_type] = kinds[row.agent_id].get(row.event_type, 0) + row.n
            types[row.agent_id].add(row.agent_type)
        activity = [
            AgentActivity(
                agent_id=row.agent_id,
                agent_types=tuple(sorted(types[row.agent_id])),
                event_count=row.events,
                event_types=dict(sorted(kinds[row.agent_id].items())),
                sessions_touched=row.touched,
                sessions_created=row.created,
                first_activity=row.first,
                last_activity=row.last,
            )
            for row in totals
        ]
        return sorted(activity, key=lambda a: (-a.event_count, a.agent_id))
