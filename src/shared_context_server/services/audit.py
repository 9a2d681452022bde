"""The audit trail's readers: the log (admin), chain verification (admin) and per-agent
activity summaries (an admin for anyone, everyone else for themselves).

Reading the log, verifying it and an admin's summary are themselves audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from shared_context_server.clock import Clock
from shared_context_server.config import Limits
from shared_context_server.domain.access import activity_scope, require
from shared_context_server.domain.audit import (
    AgentActivity,
    AuditQuery,
    AuditRecord,
    ChainBreak,
    ChainReport,
    ChainVerifier,
    audit,
)
from shared_context_server.domain.limits import check_page
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError
from shared_context_server.storage.store import Store

VERIFY_BATCH = 1_000

Window = Literal["1h", "24h", "7d", "30d"]
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    has_more: bool

    @property
    def next_before_id(self) -> int | None:
        """Where the next (older) page starts, if there is one."""
        return self.records[-1].id if self.records and self.has_more else None


@dataclass(frozen=True, slots=True)
class ActivitySummary:
    window: str
    since: datetime
    until: datetime
    agents: list[AgentActivity]


async def verify_chain(store: Store, batch: int = VERIFY_BATCH) -> ChainReport:
    """Walk the whole chain in id order, ``batch`` records per read; no permission check
    (the service checks; the offline CLI runs with the operator's database access)."""
    verifier = ChainVerifier()
    after = 0
    while records := await store.audit_records(after, batch):
        for record in records:
            if (broken := verifier.check(record)) is not None:
                return _report(verifier, broken)
        after = records[-1].id
    return _report(verifier, None)


def _report(verifier: ChainVerifier, broken: ChainBreak | None) -> ChainReport:
    last = verifier.last
    return ChainReport(
        checked=verifier.checked,
        broken=broken,
        last_id=last.id if last else None,
        last_hash=last.hash if last else None,
    )


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInputError(f"{field} needs a time zone (ISO 8601, e.g. ...Z)", field=field)
    return value.astimezone(UTC)


class AuditService:
    def __init__(self, store: Store, clock: Clock, limits: Limits) -> None:
        self._store = store
        self._clock = clock
        self._limits = limits

    async def get_log(
        self,
        principal: Principal,
        *,
        session_id: str | None = None,
        agent_id: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> AuditPage:
        """Records matching every given filter, newest first (admin only; audited)."""
        require(principal, Permission.ADMIN)
        check_page(self._limits, limit)
        since, until = _utc(since, "start_time"), _utc(until, "end_time")
        if since is not None and until is not None and since > until:
            raise InvalidInputError("start_time is after end_time", field="start_time")
        if before_id is not None and before_id < 1:
            raise InvalidInputError("before_id must be positive", field="before_id")
        query = AuditQuery(session_id, agent_id, event_type, since, until, before_id, limit + 1)
        filters = {
            "session_id": session_id,
            "agent_id": agent_id,
            "event_type": event_type,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "before_id": before_id,
        }
        event = audit(
            principal,
            "audit.read",
            self._clock.now(),
            filters={k: v for k, v in filters.items() if v is not None},
            limit=limit,
        )
        found = await self._store.list_audit(query, audit=event)
        return AuditPage(found[:limit], has_more=len(found) > limit)

    async def verify(self, principal: Principal) -> ChainReport:
        """Check every link of the chain (admin only); the check itself is then audited."""
        require(principal, Permission.ADMIN)
        report = await verify_chain(self._store)
        broken = report.broken
        await self._store.append_audit(
            audit(
                principal,
                "audit.verified",
                self._clock.now(),
                intact=report.intact,
                checked=report.checked,
                broken_at=broken.record_id if broken else None,
                reason=broken.reason if broken else None,
            )
        )
        return report

    async def activity_summary(
        self, principal: Principal, window: str = "24h", agent_id: str | None = None
    ) -> ActivitySummary:
        """Per agent, what it did in the last ``window``. Admins may ask about anyone (or
        everyone) and are audited; other agents see only their own activity."""
        if window not in WINDOWS:
            raise InvalidInputError(
                f"time_window must be one of {', '.join(WINDOWS)}", field="time_window"
            )
        subject = activity_scope(principal, agent_id)
        until = self._clock.now()
        since = until - WINDOWS[window]
        event = None
        if principal.is_admin:
            event = audit(
                principal, "audit.summary_read", until, window=window, agent_filter=subject
            )
        agents = await self._store.activity_summary(since, until, agent_id=subject, audit=event)
        return ActivitySummary(window, since, until, agents)
