"""The audit trail: appended inside the transaction of each change (see SqlBase._write),
read back by filters, in id order for verification (with every audited row, in one
snapshot), resealed under the key when an old unkeyed chain is found, and summarised per
agent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import (
    LEGACY_HASH_VERSION,
    AgentActivity,
    AuditEvent,
    AuditQuery,
    AuditRecord,
    LegacyResealer,
    Reseal,
    memory_entity_id,
    system_audit,
)
from shared_context_server.domain.audit_verify import TrailVerifier
from shared_context_server.storage import dialects
from shared_context_server.storage.sql.audit import SqlAudit
from shared_context_server.storage.sql_base import SqlBase, threaded
from shared_context_server.storage.tables import (
    agent_identities,
    agent_memory,
    api_keys,
    audit_log,
    delegations,
    messages,
    revoked_tokens,
    sessions,
)

SESSION_CREATED = "session.created"
# Records, and rows of an audited table, read per statement (messages may be long).
BATCH = 1_000
ROW_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Audited:
    """An audited table: the entity kind its records name, the column it is read in order
    of (unique), and the entity id of a row."""

    entity: str
    table: sa.Table
    order: str
    entity_id: Callable[[Any], str]


AUDITED = (
    _Audited("session", sessions, "id", lambda row: str(row.id)),
    _Audited("message", messages, "id", lambda row: str(row.id)),
    _Audited(
        "memory", agent_memory, "id", lambda row: memory_entity_id(row.agent_id, row.scope, row.key)
    ),
    _Audited("api_key", api_keys, "name", lambda row: str(row.name)),
    _Audited("identity", agent_identities, "agent_id", lambda row: str(row.agent_id)),
    _Audited("delegation", delegations, "jti", lambda row: str(row.jti)),
    _Audited("revoked_token", revoked_tokens, "jti", lambda row: str(row.jti)),
)


def _rows(conn: sa.Connection, audited: _Audited) -> Iterator[sa.Row[Any]]:
    """Every row of an audited table, in batches, in order of its unique column."""
    order = audited.table.c[audited.order]
    first = sa.select(audited.table).order_by(order).limit(ROW_BATCH)
    after = first.where(order > sa.bindparam("after"))
    rows = conn.execute(first).all()
    while rows:
        yield from rows
        if len(rows) < ROW_BATCH:
            return
        rows = conn.execute(after, {"after": getattr(rows[-1], audited.order)}).all()


def _chain(
    conn: sa.Connection, where: sa.ColumnElement[bool] | None = None
) -> Iterator[AuditRecord]:
    """The chain in id order, in batches."""
    col = audit_log.c
    statement = sa.select(audit_log).where(col.id > sa.bindparam("after"))
    if where is not None:
        statement = statement.where(where)
    statement = statement.order_by(col.id).limit(BATCH)
    after = 0
    while rows := conn.execute(statement, {"after": after}).all():
        yield from (audit_record_of(row) for row in rows)
        after = rows[-1].id


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
        entity=row.entity,
        entity_id=row.entity_id,
        digest=row.digest,
        hash_version=row.hash_version,
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


def _starts_unkeyed(conn: sa.Connection) -> bool:
    first = sa.select(audit_log.c.hash_version).order_by(audit_log.c.id).limit(1)
    return bool(conn.execute(first).scalar() == LEGACY_HASH_VERSION)


class _LeaveAlone(Exception):
    """The old chain does not verify: roll the reseal back."""


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
    def audit_head(self) -> tuple[int, str] | None:
        """The newest record's id and hash (None: the trail is empty)."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
            ).first()
        return None if row is None else (int(row.id), str(row.hash))

    @threaded
    def walk_audit_trail(self, verifier: TrailVerifier) -> None:
        """Feed ``verifier`` the whole chain in id order and, unless the chain is broken,
        every audited row, all from one snapshot: concurrent writes are either wholly in
        (row and record) or wholly out."""
        options: dict[str, Any] = dict(self.dialect.read_options)
        if self.dialect.name == "postgresql":
            options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with self.engine.connect().execution_options(**options) as conn:
            for record in _chain(conn):
                if not verifier.record(record):
                    return
            for audited in AUDITED:
                for row in _rows(conn, audited):
                    verifier.row(audited.entity, audited.entity_id(row), row._mapping)

    @threaded
    def has_legacy_audit(self) -> bool:
        """Whether the chain starts with records of the old unkeyed hash (version 1)."""
        with self._read() as conn:
            return _starts_unkeyed(conn)

    @threaded
    def reseal_legacy_audit(self, now: datetime) -> Reseal | None:
        """Reseal an unkeyed (version 1) chain under the key, in one transaction, if it
        verifies from its first record to its last and nothing keyed follows it; then
        record a digest of every audited row (``audit.baselined``), since no old record
        names one. None: the chain does not verify (it is left for verify to report);
        nothing resealed: another process did it first."""
        assert self.audit_key is not None, "resealing needs the audit key"
        resealer = LegacyResealer(self.audit_key)
        update = (
            sa.update(audit_log)
            .where(audit_log.c.id == sa.bindparam("b_id"))
            .values(
                prev_hash=sa.bindparam("b_prev"),
                hash=sa.bindparam("b_hash"),
                hash_version=sa.bindparam("b_version"),
            )
        )
        try:
            with self._write() as conn:
                dialects.serialise_audit(conn)
                if not _starts_unkeyed(conn):
                    return Reseal(0, 0)  # another process resealed it first
                last: AuditRecord | None = None
                batch: list[dict[str, Any]] = []
                for record in _chain(conn):
                    sealed = resealer.reseal(record)
                    if sealed is None:
                        raise _LeaveAlone
                    last = sealed
                    batch.append(
                        {
                            "b_id": sealed.id,
                            "b_prev": sealed.prev_hash,
                            "b_hash": sealed.hash,
                            "b_version": sealed.hash_version,
                        }
                    )
                    if len(batch) == BATCH:
                        conn.execute(update, batch)
                        batch = []
                if last is None:
                    raise _LeaveAlone
                if batch:
                    conn.execute(update, batch)
                baselined = self._baseline(conn, last, now)
        except _LeaveAlone:
            return None
        return Reseal(last.id, baselined)

    def _baseline(self, conn: sa.Connection, head: AuditRecord, now: datetime) -> int:
        """One ``audit.baselined`` record per audited row, chained after ``head``."""
        record_id, prev_hash = head.id, head.hash
        batch: list[dict[str, Any]] = []
        insert = sa.insert(audit_log)
        for audited in AUDITED:
            for row in _rows(conn, audited):
                entity_id = audited.entity_id(row)
                expires = row._mapping.get("expires_at")
                extra = {} if expires is None else {"expires_at": expires.isoformat()}
                event = system_audit("audit.baselined", now, target=entity_id, **extra)
                record_id += 1
                values = SqlAudit(conn, self.dialect, self.audit_key).sealed(
                    record_id, event.of_row(audited.entity, entity_id, row._mapping), prev_hash
                )
                prev_hash = values["hash"]
                batch.append(values)
                if len(batch) == BATCH:
                    conn.execute(insert, batch)
                    batch = []
        if batch:
            conn.execute(insert, batch)
        return record_id - head.id

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
