"""The presence repository: the agent registry and who was last seen in which session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.models import Permission
from shared_context_server.domain.presence import AgentPresence, PresenceStatus
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.tables import agents, session_presence

_a = agents.c
_sp = session_presence.c

# Built once: SQLAlchemy then skips rebuilding and re-keying them per call.
_AGENT = sa.select(agents).where(_a.agent_id == sa.bindparam("agent_id"))
_RECENT = (
    sa.select(_sp.session_id)
    .where(_sp.agent_id == sa.bindparam("agent_id"), _sp.last_seen > sa.bindparam("after"))
    .order_by(_sp.last_seen.desc())
    .limit(sa.bindparam("limit"))
)
_SEEN_IN_SESSION = sa.select(_sp.last_seen).where(
    _sp.session_id == sa.bindparam("session_id"), _sp.agent_id == sa.bindparam("agent_id")
)


def _presence_of(row: sa.Row[Any], in_session: bool = False) -> AgentPresence:
    return AgentPresence(
        agent_id=row.agent_id,
        agent_type=row.agent_type,
        status=PresenceStatus(row.status),
        last_seen=row.last_seen,
        first_seen=row.first_seen,
        permissions=frozenset(Permission(p) for p in row.permissions),
        last_seen_in_session=row.session_last_seen if in_session else None,
    )


class SqlPresence(Repository):
    __slots__ = ()

    def get(self, agent_id: str) -> AgentPresence | None:
        row = self.conn.execute(_AGENT, {"agent_id": agent_id}).first()
        return None if row is None else _presence_of(row)

    def claim(self, agent_id: str) -> AgentPresence | None:
        self.take_turn_on("presence", agent_id)
        return self.get(agent_id)

    def last_seen_in(self, session_id: str, agent_id: str) -> datetime | None:
        where = {"session_id": session_id, "agent_id": agent_id}
        last: datetime | None = self.conn.execute(_SEEN_IN_SESSION, where).scalar()
        return last

    def save(
        self,
        agent_id: str,
        agent_type: str,
        status: PresenceStatus,
        permissions: frozenset[Permission],
        now: datetime,
    ) -> AgentPresence:
        values = {
            "agent_id": agent_id,
            "agent_type": agent_type,
            "status": status.value,
            "last_seen": now,
            "first_seen": now,
            "permissions": sorted(p.value for p in permissions),
        }
        upsert = self.dialect.upsert(
            agents, values, ["agent_id"], ["agent_type", "status", "last_seen", "permissions"]
        )
        return _presence_of(self.conn.execute(upsert.returning(*agents.c)).one())

    def recent_sessions(self, agent_id: str, after: datetime, limit: int) -> list[str]:
        rows = self.conn.execute(_RECENT, {"agent_id": agent_id, "after": after, "limit": limit})
        return [str(session_id) for session_id in rows.scalars()]

    def seen_in_session(
        self, session_id: str, agent_id: str, agent_type: str, now: datetime
    ) -> datetime | None:
        last = self.last_seen_in(session_id, agent_id)
        where = {"session_id": session_id, "agent_id": agent_id}
        upsert = self.dialect.upsert(
            session_presence,
            {**where, "agent_type": agent_type, "last_seen": now},
            ["session_id", "agent_id"],
            ["agent_type", "last_seen"],
        )
        self.conn.execute(upsert)
        return last

    def list(
        self,
        window_start: datetime,
        *,
        session_id: str | None = None,
        include_offline: bool = False,
        limit: int = 500,
    ) -> list[AgentPresence]:
        if session_id is None:
            statement = sa.select(agents)
            if not include_offline:
                statement = statement.where(_a.last_seen > window_start)
            statement = statement.order_by(_a.last_seen.desc(), _a.agent_id).limit(limit)
            return [_presence_of(row) for row in self.conn.execute(statement)]
        in_session = (
            sa.select(agents, _sp.last_seen.label("session_last_seen"))
            .join(session_presence, _sp.agent_id == _a.agent_id)
            .where(_sp.session_id == session_id)
        )
        if not include_offline:
            in_session = in_session.where(_sp.last_seen > window_start)
        in_session = in_session.order_by(_sp.last_seen.desc(), _a.agent_id).limit(limit)
        return [_presence_of(row, in_session=True) for row in self.conn.execute(in_session)]
