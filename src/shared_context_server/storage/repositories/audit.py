"""The audit trail: a keyed hash chain of records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared_context_server.domain.audit import (
    AgentActivity,
    AuditEvent,
    AuditQuery,
    AuditRecord,
    Row,
)


@dataclass(frozen=True, slots=True)
class AuditedRow:
    """A row of an audited table: the entity kind its records name, its entity id, and
    its columns by name."""

    entity: str
    entity_id: str
    values: Row


class AuditRepository(Protocol):
    def append_all(self, events: Iterable[AuditEvent], *, turn_held: bool = False) -> int:
        """Chain ``events`` onto the trail in order, in batches (read as they come);
        how many were appended. The unit of work appends what it recorded at commit.
        ``turn_held``: the transaction holds the append turn already (it appended to the
        feed), so it is not taken again."""
        ...

    def page(self, query: AuditQuery) -> list[AuditRecord]:
        """Records matching ``query``, newest first."""
        ...

    def after(self, after_id: int, limit: int) -> list[AuditRecord]:
        """At most ``limit`` records in id order, from just after ``after_id``."""
        ...

    def head(self) -> tuple[int, str] | None:
        """The newest record's id and hash (None: the trail is empty)."""
        ...

    def chain(self) -> Iterator[AuditRecord]:
        """The whole chain in id order, read in batches."""
        ...

    def audited_rows(self) -> Iterator[AuditedRow]:
        """Every row of every audited table, read in batches."""
        ...

    def starts_unkeyed(self) -> bool:
        """Whether the first record has the old unkeyed hash (version 1)."""
        ...

    def take_turn(self) -> None:
        """Wait until no other transaction appends to or reseals the chain, and hold the
        turn to commit."""
        ...

    def reseal(self, records: Sequence[AuditRecord]) -> None:
        """Store the chain fields (prev_hash, hash, hash_version) of ``records``."""
        ...

    def activity(
        self, since: datetime, until: datetime | None, agent_id: str | None
    ) -> list[AgentActivity]:
        """Per agent, what the trail holds between ``since`` and ``until`` (inclusive),
        busiest first."""
        ...
