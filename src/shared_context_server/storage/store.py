"""The Store protocol: services run each use case as one unit of work (``write``) or one
snapshot (``read``) over the repositories of ``unit_of_work``.

Services see storage only through these protocols; the contract suite in
``tests/storage`` runs against every implementation.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from shared_context_server.storage.unit_of_work import Committed, Snapshot, Transaction


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """The latest write transaction's outcome in this process: ``seq`` grows with every
    write; ``failure`` is None after a commit, else why the database refused (disk_full,
    read_only, unreachable, busy, io_error)."""

    seq: int = 0
    failure: str | None = None


T = TypeVar("T")


class ChangeWatch(Protocol):
    async def wait(self) -> None:
        """Return once another process may have committed since the last return, and at
        the latest after the watch's safety interval (the caller reads the feed then)."""
        ...


class Store(Protocol):
    origin: str

    async def write(self, work: Callable[[Transaction], T]) -> Committed[T]:
        """Run ``work`` in one write transaction on a worker thread. Its changes' feed rows
        and audit records are written at commit; their events come back to publish after
        it (nothing is published for a change that rolled back)."""
        ...

    async def read(self, work: Callable[[Snapshot], T], *, consistent: bool = False) -> T:
        """Run ``work`` in one read-only transaction on a worker thread; ``consistent``:
        every statement of it sees the same snapshot (on every backend)."""
        ...

    async def close(self) -> None: ...

    def write_outcome(self) -> WriteOutcome: ...

    def watch_changes(self, interval: float) -> AbstractAsyncContextManager[ChangeWatch]:
        """Signs that other processes committed, for the feed relay; ``interval``: how
        often to look where the backend has to look (SQLite: the file's stat)."""
        ...
