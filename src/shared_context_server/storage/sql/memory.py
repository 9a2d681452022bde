"""The memory repository."""

from __future__ import annotations

from shared_context_server.storage.sql.repository import Repository


class SqlMemory(Repository):
    __slots__ = ()
