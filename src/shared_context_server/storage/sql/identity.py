"""The identity repository."""

from __future__ import annotations

from shared_context_server.storage.sql.repository import Repository


class SqlIdentity(Repository):
    __slots__ = ()
