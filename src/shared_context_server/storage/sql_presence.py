"""Presence: the agent registry and who has been active in which session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Permission
from shared_context_server.domain.presence import (
    NO_SESSION,
    AgentPresence,
    PresenceStatus,
    PresenceTouch,
)
from shared_context_server.storage import dialects
from shared_context_server.storage.sql_base import SqlBase, threaded
from shared_context_server.storage.tables import agents, session_presence, sessions

# A status change is told to at most this many of the agent's recent sessions.
MAX_SESSIONS_TOLD = 20


def presence_of(row: sa.Row[Any], in_session: bool = False) -> AgentPresence:
    return AgentPresence(
        agent_id=row.agent_id,
        agent_type=row.agent_type,
        status=PresenceStatus(row.status),
        last_seen=row.last_seen,
        first_seen=row.first_seen,
        permissions=frozenset(Permission(p) for p in row.permissions),
        last_seen_in_session=row.session_last_seen if in_session else None,
    )


class PresenceRows(SqlBase):
    @threaded
    def touch_presence(
        self, touch: PresenceTouch, *, audit: AuditEvent | None = None
    ) -> tuple[AgentPresence, list[ChangeEvent]]:
        """Record that the agent was seen (in a session, if given) and, if given, its status.

        Returns its presence and the PRESENCE_CHANGED events written: one agent-level event
        (session id "") and one per recently active session when its visible status changed
        (offline agents coming back count), and one for a session it newly became active in.
        """
        with self._write(audit) as conn:
            row = conn.execute(sa.select(agents).where(agents.c.agent_id == touch.agent_id)).first()
            previous = (
                PresenceStatus.OFFLINE
                if row is None or row.last_seen <= touch.window_start
                else PresenceStatus(row.status)
            )
            if touch.status is not None:
                status = touch.status
            else:
                status = (
                    PresenceStatus.ACTIVE
                    if row is None or previous is PresenceStatus.OFFLINE
                    else previous
                )
            values = {
                "agent_id": touch.agent_id,
                "agent_type": touch.agent_type,
                "status": status.value,
                "last_seen": touch.now,
                "first_seen": touch.now,
                "permissions": sorted(p.value for p in touch.permissions),
            }
            conn.execute(
                dialects.upsert(
                    self.dialect.name,
                    agents,
                    values,
                    ["agent_id"],
                    ["agent_type", "status", "last_seen", "permissions"],
                )
            )
            told: set[str] = set()
            changed = status is not previous
            if changed:
                told.update(self._recent_sessions(conn, touch))
            joined = touch.session_id is not None and self._touch_session(conn, touch)
            if joined and touch.session_id is not None:
                told.add(touch.session_id)
            payload = {
                "status": status.value,
                "previous": previous.value,
                "agent_type": touch.agent_type,
            }
            events = []
            for session_id in ([NO_SESSION] if changed else []) + sorted(told):
                events.append(
                    self._feed(
                        conn,
                        EventKind.PRESENCE_CHANGED,
                        session_id,
                        touch.agent_id,
                        touch.now,
                        payload={**payload, "joined": joined and session_id == touch.session_id},
                    )
                )
            stored = conn.execute(
                sa.select(agents).where(agents.c.agent_id == touch.agent_id)
            ).one()
        return presence_of(stored), events

    def _recent_sessions(self, conn: sa.Connection, touch: PresenceTouch) -> list[str]:
        col = session_presence.c
        rows = conn.execute(
            sa.select(col.session_id)
            .where(col.agent_id == touch.agent_id, col.last_seen > touch.window_start)
            .order_by(col.last_seen.desc())
            .limit(MAX_SESSIONS_TOLD)
        )
        return [str(session_id) for session_id in rows.scalars()]

    def _touch_session(self, conn: sa.Connection, touch: PresenceTouch) -> bool:
        """Mark the agent active in the session (if it exists); True if it newly is."""
        exists = conn.execute(
            sa.select(sessions.c.id).where(sessions.c.id == touch.session_id)
        ).first()
        if exists is None:
            return False
        col = session_presence.c
        last = conn.execute(
            sa.select(col.last_seen).where(
                col.session_id == touch.session_id, col.agent_id == touch.agent_id
            )
        ).scalar()
        values = {
            "session_id": touch.session_id,
            "agent_id": touch.agent_id,
            "agent_type": touch.agent_type,
            "last_seen": touch.now,
        }
        conn.execute(
            dialects.upsert(
                self.dialect.name,
                session_presence,
                values,
                ["session_id", "agent_id"],
                ["agent_type", "last_seen"],
            )
        )
        return last is None or last <= touch.window_start

    @threaded
    def list_presence(
        self,
        window_start: datetime,
        *,
        session_id: str | None = None,
        include_offline: bool = False,
        limit: int = 500,
    ) -> list[AgentPresence]:
        """Agents seen after ``window_start`` (all known ones with ``include_offline``),
        most recently seen first; for a session, those active in it, by their last activity
        there."""
        if session_id is None:
            statement = sa.select(agents)
            if not include_offline:
                statement = statement.where(agents.c.last_seen > window_start)
            statement = statement.order_by(agents.c.last_seen.desc(), agents.c.agent_id)
            with self._read() as conn:
                return [presence_of(row) for row in conn.execute(statement.limit(limit))]
        sp = session_presence.c
        statement = (
            sa.select(agents, sp.last_seen.label("session_last_seen"))
            .join(session_presence, sp.agent_id == agents.c.agent_id)
            .where(sp.session_id == session_id)
        )
        if not include_offline:
            statement = statement.where(sp.last_seen > window_start)
        statement = statement.order_by(sp.last_seen.desc(), agents.c.agent_id).limit(limit)
        with self._read() as conn:
            return [presence_of(row, in_session=True) for row in conn.execute(statement)]
