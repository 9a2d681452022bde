"""Results remembered under idempotency keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from shared_context_server.domain.idempotency import WINDOW, Remembered
from shared_context_server.storage.sql.repository import Repository
from shared_context_server.storage.tables import idempotency_keys

_k = idempotency_keys.c
_FIND = sa.select(_k.result).where(
    _k.agent_id == sa.bindparam("agent_id"),
    _k.operation == sa.bindparam("operation"),
    _k.key == sa.bindparam("key"),
    _k.expires_at > sa.bindparam("now"),
)
_FORGET = sa.delete(idempotency_keys).where(
    _k.agent_id == sa.bindparam("agent_id"),
    _k.operation == sa.bindparam("operation"),
    _k.key == sa.bindparam("key"),
)
_INSERT = sa.insert(idempotency_keys)
_DELETE_EXPIRED = sa.delete(idempotency_keys).where(_k.expires_at <= sa.bindparam("now"))


class SqlIdempotency(Repository):
    __slots__ = ()

    def find(self, agent_id: str, operation: str, key: str, now: datetime) -> Remembered | None:
        params = {"agent_id": agent_id, "operation": operation, "key": key, "now": now}
        row = self.conn.execute(_FIND, params).first()
        if row is None:
            return None
        return Remembered(row.result["request"], row.result["result"])

    def remember(
        self, agent_id: str, operation: str, key: str, remembered: Remembered, now: datetime
    ) -> None:
        where = {"agent_id": agent_id, "operation": operation, "key": key}
        self.conn.execute(_FORGET, where)  # an expired earlier use
        self.conn.execute(
            _INSERT,
            {
                **where,
                "result": {"request": remembered.fingerprint, "result": remembered.result},
                "created_at": now,
                "expires_at": now + WINDOW,
            },
        )

    def delete_expired(self, now: datetime) -> None:
        self.conn.execute(_DELETE_EXPIRED, {"now": now})
