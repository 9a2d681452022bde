"""Each agent's memory totals (``agent_usage``), kept inside the write transactions that
change its memory, so a quota check reads one row instead of counting entries."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable

import sqlalchemy as sa

from shared_context_server.storage import dialects
from shared_context_server.storage.tables import agent_usage


@functools.lru_cache(maxsize=2)
def _charge(dialect: str) -> sa.Executable:
    return dialects.accumulate(dialect, agent_usage, ["agent_id"], ["memory_keys", "memory_bytes"])


def charge(conn: sa.Connection, agent_id: str, keys: int, size: int) -> tuple[int, int]:
    """Add ``keys`` entries and ``size`` bytes (either may be negative) to the agent's
    totals; returns them after the change (expired entries not yet purged included). The
    row stays locked to the end of the transaction, so one agent's memory writes take turns
    and its quotas hold under concurrent writes on PostgreSQL too."""
    values = {"agent_id": agent_id, "memory_keys": keys, "memory_bytes": size}
    row = conn.execute(_charge(conn.dialect.name), values).one()
    return int(row.memory_keys), int(row.memory_bytes)


def release(conn: sa.Connection, removed: Iterable[tuple[str, int]]) -> None:
    """Take removed entries, as (agent_id, value_bytes), off their agents' totals."""
    keys: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for agent_id, value_bytes in removed:
        keys[agent_id] += 1
        size[agent_id] += value_bytes
    for agent_id in keys:
        charge(conn, agent_id, -keys[agent_id], -size[agent_id])
