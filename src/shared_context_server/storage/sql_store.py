"""The Store on SQLAlchemy Core: SQLite (embedded default) and PostgreSQL.

Each public method is one transaction, run on a worker thread so the event loop never
waits on disk or on another process's lock. One class per table group, combined here.
"""

from __future__ import annotations

from shared_context_server.storage.sql_base import SqlBase, visible_to


class SqlStore(SqlBase):
    pass


__all__ = ["SqlStore", "visible_to"]
