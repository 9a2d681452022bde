"""The audit trail."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import (
    GENESIS_HASH,
    HASH_VERSION,
    LEGACY_HASH_VERSION,
    AgentActivity,
    AuditEvent,
    AuditQuery,
    AuditRecord,
    memory_entity_id,
    record_hash,
)
from shared_context_server.storage.repositories.audit import AuditedRow
from shared_context_server.storage.sql.dialect import APPEND_LOCK_ID, Dialect
from shared_context_server.storage.sql.repository import Repository
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
# Records, and rows of an audited table, read (or written) per statement: messages may be
# long.
BATCH = 1_000
ROW_BATCH = 500

_LAST = sa.select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
_INSERT = sa.insert(audit_log)
_AFTER = (
    sa.select(audit_log)
    .where(audit_log.c.id > sa.bindparam("after"))
    .order_by(audit_log.c.id)
    .limit(sa.bindparam("limit"))
)
_FIRST_VERSION = sa.select(audit_log.c.hash_version).order_by(audit_log.c.id).limit(1)
_RESEAL = (
    sa.update(audit_log)
    .where(audit_log.c.id == sa.bindparam("b_id"))
    .values(
        prev_hash=sa.bindparam("b_prev"),
        hash=sa.bindparam("b_hash"),
        hash_version=sa.bindparam("b_version"),
    )
)


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


def _page(query: AuditQuery) -> sa.Select[Any]:
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


class SqlAudit(Repository):
    __slots__ = ("key",)

    def __init__(self, conn: sa.Connection, dialect: Dialect, key: bytes | None) -> None:
        super().__init__(conn, dialect)
        # The chain's HMAC key (kept apart from the database); without one the store can
        # read but not append audit records.
        self.key = key

    def append_all(self, events: Iterable[AuditEvent], *, turn_held: bool = False) -> int:
        """Appends take turns, so each record links to the one before it."""
        if not turn_held:
            self.take_turn()
        last = self.conn.execute(_LAST).first()
        prev_hash = last.hash if last else GENESIS_HASH
        first_id = record_id = last.id if last else 0
        batch: list[dict[str, Any]] = []
        for event in events:
            record_id += 1
            values = self.sealed(record_id, event, prev_hash)
            prev_hash = values["hash"]
            batch.append(values)
            if len(batch) == BATCH:
                self.conn.execute(_INSERT, batch)
                batch = []
        if batch:
            self.conn.execute(_INSERT, batch)
        return record_id - first_id

    def sealed(self, record_id: int, event: AuditEvent, prev_hash: str) -> dict[str, Any]:
        """The audit_log row of ``event`` as record ``record_id``, sealed with the key."""
        if self.key is None:
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
            "hash": record_hash(self.key, record_id, event, prev_hash),
        }

    def page(self, query: AuditQuery) -> list[AuditRecord]:
        return [audit_record_of(row) for row in self.conn.execute(_page(query))]

    def after(self, after_id: int, limit: int) -> list[AuditRecord]:
        rows = self.conn.execute(_AFTER, {"after": after_id, "limit": limit})
        return [audit_record_of(row) for row in rows]

    def head(self) -> tuple[int, str] | None:
        row = self.conn.execute(_LAST).first()
        return None if row is None else (int(row.id), str(row.hash))

    def chain(self) -> Iterator[AuditRecord]:
        after = 0
        while records := self.after(after, BATCH):
            yield from records
            after = records[-1].id

    def audited_rows(self) -> Iterator[AuditedRow]:
        for audited in AUDITED:
            for row in self._rows(audited):
                yield AuditedRow(audited.entity, audited.entity_id(row), row._mapping)

    def _rows(self, audited: _Audited) -> Iterator[sa.Row[Any]]:
        """Every row of an audited table, in batches, in order of its unique column."""
        order = audited.table.c[audited.order]
        first = sa.select(audited.table).order_by(order).limit(ROW_BATCH)
        after = first.where(order > sa.bindparam("after"))
        rows = self.conn.execute(first).all()
        while rows:
            yield from rows
            if len(rows) < ROW_BATCH:
                return
            rows = self.conn.execute(after, {"after": getattr(rows[-1], audited.order)}).all()

    def starts_unkeyed(self) -> bool:
        return bool(self.conn.execute(_FIRST_VERSION).scalar() == LEGACY_HASH_VERSION)

    def take_turn(self) -> None:
        self.dialect.take_turn(self.conn, APPEND_LOCK_ID)

    def reseal(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        self.conn.execute(
            _RESEAL,
            [
                {
                    "b_id": r.id,
                    "b_prev": r.prev_hash,
                    "b_hash": r.hash,
                    "b_version": r.hash_version,
                }
                for r in records
            ],
        )

    def activity(
        self, since: datetime, until: datetime | None, agent_id: str | None
    ) -> list[AgentActivity]:
        col = audit_log.c
        where = _in_window(since, until, agent_id)
        created = sa.case((col.event_type == SESSION_CREATED, col.session_id))
        totals = self.conn.execute(
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
        for row in self.conn.execute(
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
