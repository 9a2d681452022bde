"""The unit of work services run their use cases in: one transaction, its repositories,
and the changes it records for the feed and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.events import Change, ChangeEvent
from shared_context_server.storage.repositories.audit import AuditRepository
from shared_context_server.storage.repositories.counters import CounterRepository
from shared_context_server.storage.repositories.feed import FeedRepository
from shared_context_server.storage.repositories.idempotency import IdempotencyRepository
from shared_context_server.storage.repositories.identity import IdentityRepository
from shared_context_server.storage.repositories.leases import LeaseRepository
from shared_context_server.storage.repositories.locks import LockRepository
from shared_context_server.storage.repositories.memory import MemoryRepository
from shared_context_server.storage.repositories.messages import MessageRepository
from shared_context_server.storage.repositories.presence import PresenceRepository
from shared_context_server.storage.repositories.search import SearchRepository
from shared_context_server.storage.repositories.sessions import SessionRepository

T = TypeVar("T")


class Snapshot(Protocol):
    """The repositories, over one transaction."""

    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def messages(self) -> MessageRepository: ...
    @property
    def search(self) -> SearchRepository: ...
    @property
    def memory(self) -> MemoryRepository: ...
    @property
    def locks(self) -> LockRepository: ...
    @property
    def presence(self) -> PresenceRepository: ...
    @property
    def identity(self) -> IdentityRepository: ...
    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def feed(self) -> FeedRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def counters(self) -> CounterRepository: ...
    @property
    def leases(self) -> LeaseRepository: ...


class Transaction(Snapshot, Protocol):
    """A write transaction: what it records is written at commit, in order."""

    def changed(self, change: Change) -> None:
        """Append ``change`` to the change feed at commit."""
        ...

    def audited(self, event: AuditEvent) -> None:
        """Append ``event`` to the audit trail at commit."""
        ...


@dataclass(frozen=True, slots=True)
class Committed(Generic[T]):
    """What a committed unit of work returned, and the events of its changes."""

    value: T
    events: list[ChangeEvent] = field(default_factory=list)
