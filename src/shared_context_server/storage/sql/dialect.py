"""What every SQL backend offers the repositories; ``sqlite`` and ``postgres`` fill it in.

Shared modules never branch on a dialect name: they ask the dialect the store was given.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shared_context_server.storage.repositories.search import QueryWord
from shared_context_server.storage.store import ChangeWatch
from shared_context_server.storage.tables import counters

if TYPE_CHECKING:
    from shared_context_server.storage.sql.store import SqlStore

# Any constants will do; every server process sharing the database uses the same ones.
MIGRATION_LOCK_ID = 0x5C5_0001
# Held from a transaction's first change-feed or audit append to its commit: feed ids and
# audit record ids are then allocated in commit order, so a reader that resumes after an
# id never finds a smaller one committed later.
APPEND_LOCK_ID = 0x5C5_0002


def turn_id(*key: str) -> int:
    """A lock id for ``take_turn`` naming one thing (``"open sessions", agent_id``): a
    stable signed 64-bit hash, the same in every process."""
    digest = hashlib.blake2b("\x00".join(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Dialect(ABC):
    name: str
    # Execution options for a read-only transaction.
    read_options: Mapping[str, Any] = {}
    # Execution options for a read-only transaction whose statements all see one snapshot.
    snapshot_options: Mapping[str, Any] = {}

    @abstractmethod
    def create_engine(self, url: sa.URL, *, busy_timeout_ms: int) -> sa.Engine: ...

    @abstractmethod
    def insert(self, table: sa.Table) -> Any:
        """The backend's INSERT, which has ON CONFLICT."""

    @abstractmethod
    def take_turn(self, conn: sa.Connection, lock_id: int) -> None:
        """Inside the open transaction: wait until no other transaction holds ``lock_id``."""

    @abstractmethod
    def for_update(self, statement: sa.Select[Any]) -> sa.Select[Any]:
        """``statement`` locking the rows it reads until commit."""

    @abstractmethod
    def write_turn(self) -> AbstractContextManager[Any]:
        """Held around each of this process's write transactions."""

    @abstractmethod
    def begin_append(self, conn: sa.Connection, origin: str) -> None:
        """Take the append turn (``APPEND_LOCK_ID``) and tell other processes, once this
        transaction commits, that ``origin`` changed the feed."""

    @abstractmethod
    def commit_signal(self, engine: sa.Engine) -> object | None:
        """A value that changes whenever any process commits, cheap to ask; None when
        the backend has none."""

    @abstractmethod
    def watch_changes(
        self, store: SqlStore, interval: float
    ) -> AbstractAsyncContextManager[ChangeWatch]:
        """The backend's signs that other processes committed (``Store.watch_changes``)."""

    @abstractmethod
    def unavailable_reason(self, orig: BaseException) -> str | None:
        """Why the database cannot serve, from the driver's error; None if it can."""

    # --- the full-text index of messages (migration 0003) -------------------------------

    @abstractmethod
    def text_match(self, statement: sa.Select[Any], include_metadata: bool) -> sa.Select[Any]:
        """``statement`` (of messages rows) narrowed to the messages whose indexed text
        (sender, content and, if ``include_metadata``, metadata) matches the bound
        parameter ``query``, newest first."""

    @abstractmethod
    def text_query(self, words: Sequence[QueryWord], every: bool, include_metadata: bool) -> str:
        """The ``query`` of ``text_match``: every (or any) of ``words``, each found as the
        prefix of an indexed word or as one of its spellings whole."""

    @abstractmethod
    def indexed_terms(
        self, conn: sa.Connection, session_id: str, prefixes: Sequence[str], limit: int
    ) -> list[str]:
        """Indexed words that start with each of ``prefixes``, the first ``limit`` of each
        alphabetically (at least the session's own words; maybe other sessions' too)."""

    # --- statements built on ``insert`` ---------------------------------------------------

    def insert_ignoring_conflict(
        self, table: sa.Table, values: dict[str, Any] | None, keys: Sequence[str]
    ) -> Any:
        """INSERT … ON CONFLICT DO NOTHING RETURNING the primary key: a row back means
        inserted. (The driver's rowcount is not usable: PostgreSQL reports -1 for it.)
        Without values the statement is reusable: the row comes at execute()."""
        statement = self._insert(table, values).on_conflict_do_nothing(index_elements=list(keys))
        return statement.returning(*table.primary_key.columns)

    def upsert(
        self,
        table: sa.Table,
        values: dict[str, Any] | None,
        keys: Sequence[str],
        update: Sequence[str],
        computed: Mapping[str, Any] | None = None,
    ) -> Any:
        """INSERT, or on a key conflict UPDATE the ``update`` columns from the new values
        and the ``computed`` ones from expressions (such as ``version + 1``)."""
        statement = self._insert(table, values)
        assignments = {name: statement.excluded[name] for name in update}
        assignments.update(computed or {})
        return statement.on_conflict_do_update(index_elements=list(keys), set_=assignments)

    def accumulate(self, table: sa.Table, keys: Sequence[str], totals: Sequence[str]) -> Any:
        """INSERT a row of totals, or on a key conflict add the new values to the stored
        ones, RETURNING the totals after: one atomic statement that leaves the row locked;
        rows given at execute()."""
        statement = self.insert(table)
        added = {name: table.c[name] + statement.excluded[name] for name in totals}
        upsert = statement.on_conflict_do_update(index_elements=list(keys), set_=added)
        return upsert.returning(*(table.c[name] for name in totals))

    def next_counter(self, conn: sa.Connection, name: str) -> int:
        """Bump the named counter inside the open transaction and return its new value;
        the row stays locked until commit, so values are handed out in commit order."""
        bump = (
            self.insert(counters)
            .values(name=name, value=1)
            .on_conflict_do_update(index_elements=["name"], set_={"value": counters.c.value + 1})
            .returning(counters.c.value)
        )
        return int(conn.execute(bump).scalar_one())

    def _insert(self, table: sa.Table, values: dict[str, Any] | None) -> Any:
        statement = self.insert(table)
        return statement if values is None else statement.values(values)


def quoted(word: str, quote: str) -> str:
    """``word`` as a quoted string of a full-text query, ``quote`` doubled inside it."""
    return quote + word.replace(quote, quote * 2) + quote
