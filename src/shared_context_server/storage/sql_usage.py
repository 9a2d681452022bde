"""Each agent's memory totals (``agent_usage``), kept inside the write transactions that
change its memory, so a quota check reads one row instead of counting entries."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable

import sqlalchemy as sa

from shared_context_server.storage import dialects
from shared_context_server.storage.tables import agent_usage

_u = agent_usage.c
_HELD = sa.select(_u.memory_keys, _u.memory_bytes).where(_u.agent_id == sa.bindparam("agent"))
_HELD_LOCKED = _HELD.with_for_update()


@functools.lru_cache(maxsize=2)
def _charge(dialect: str) -> sa.Executable:
    return dialects.accumulate(dialect, agent_usage, ["agent_id"], ["memory_keys", "memory_bytes"])


def held(conn: sa.Connection, agent_id: str) -> tuple[int, int]:
    """The agent's stored entries and bytes (expired ones not yet purged included). On
    PostgreSQL the row stays locked to the end of the transaction: one agent's memory
    writes take turns, so its quota holds under concurrent writes too."""
    statement = _HELD_LOCKED if conn.dialect.name == "postgresql" else _HELD
    row = conn.execute(statement, {"agent": agent_id}).first()
    return (0, 0) if row is None else (int(row.memory_keys), int(row.memory_bytes))


def charge(conn: sa.Connection, agent_id: str, keys: int, size: int) -> None:
    """Add ``keys`` entries and ``size`` bytes (either may be negative) to the agent's row."""
    if keys or size:
        values = {"agent_id": agent_id, "memory_keys": keys, "memory_bytes": size}
        conn.execute(_charge(conn.dialect.name), values)


def release(conn: sa.Connection, removed: Iterable[tuple[str, int]]) -> None:
    """Take removed entries, as (agent_id, value_bytes), off their agents' totals."""
    keys: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for agent_id, value_bytes in removed:
        keys[agent_id] += 1
        size[agent_id] += value_bytes
    for agent_id in keys:
        charge(conn, agent_id, -keys[agent_id], -size[agent_id])
