"""The search repository."""

from __future__ import annotations

from shared_context_server.storage.sql.repository import Repository


class SqlSearch(Repository):
    __slots__ = ()
