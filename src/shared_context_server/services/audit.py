"""The audit trail's readers: the log (admin), verification (admin) and per-agent
activity summaries (an admin for anyone, everyone else for themselves); and its upkeep:
resealing an old unkeyed chain on start, anchoring the newest head outside the database.

Reading the log, verifying it and an admin's summary are themselves audited.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

import anyio

from shared_context_server.clock import Clock
from shared_context_server.domain.access import activity_scope, require
from shared_context_server.domain.audit import (
    AgentActivity,
    AuditEvent,
    AuditQuery,
    AuditRecord,
    LegacyResealer,
    Reseal,
    audit,
    seals,
    system_audit,
)
from shared_context_server.domain.audit_verify import (
    Anchor,
    ChainBreak,
    ChainReport,
    TrailVerifier,
)
from shared_context_server.domain.limits import Limits, check_page
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import InvalidInputError
from shared_context_server.storage.store import Store
from shared_context_server.storage.unit_of_work import Snapshot, Transaction

logger = logging.getLogger(__name__)

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


class AnchorStore(Protocol):
    """Where the newest head is kept outside the database (``storage.audit_files``)."""

    def read(self) -> Anchor | None:
        """The anchored head (None: none yet); ValueError if it cannot be read."""
        ...

    def advance(self, anchor: Anchor) -> bool:
        """Keep ``anchor`` if it is newer than the anchored head; whether it was."""
        ...


# Records resealed per statement.
RESEAL_BATCH = 1_000


def walk_audit_trail(tx: Snapshot, verifier: TrailVerifier) -> None:
    """Feed ``verifier`` the whole chain in id order and, unless the chain is broken,
    every audited row. Run on one consistent snapshot, concurrent writes are either
    wholly in (row and record) or wholly out."""
    for record in tx.audit.chain():
        if not verifier.record(record):
            return
    for row in tx.audit.audited_rows():
        verifier.row(row.entity, row.entity_id, row.values)


async def verify_chain(
    store: Store, key: bytes, now: datetime, anchor: Anchor | None = None
) -> ChainReport:
    """Verify the chain with ``key``, against ``anchor`` if given, and every audited row
    against its latest record, from one snapshot; no permission check (the service checks;
    the offline CLI runs with the operator's database access)."""
    verifier = TrailVerifier(key, now, anchor)
    await store.read(lambda tx: walk_audit_trail(tx, verifier), consistent=True)
    return verifier.report()


async def latest_records(store: Store, limit: int) -> list[AuditRecord]:
    """The newest ``limit`` records, newest first (no permission check: for the CLI)."""
    return await store.read(lambda tx: tx.audit.page(AuditQuery(limit=limit)))


async def has_legacy_audit(store: Store) -> bool:
    """Whether the chain starts with records of the old unkeyed hash (version 1)."""
    return await store.read(lambda tx: tx.audit.starts_unkeyed())


class _LeaveAlone(Exception):
    """The old chain does not verify: roll the reseal back."""


def _reseal(tx: Transaction, key: bytes, now: datetime) -> Reseal:
    """Reseal the unkeyed chain under ``key``, then baseline every audited row (raises
    _LeaveAlone if the chain does not verify from its first record to its last, or a keyed
    record follows the unkeyed ones)."""
    tx.audit.take_turn()
    if not tx.audit.starts_unkeyed():
        return Reseal(0, 0)  # another process resealed it first
    resealer = LegacyResealer(key)
    last: AuditRecord | None = None
    batch: list[AuditRecord] = []
    for record in tx.audit.chain():
        sealed = resealer.reseal(record)
        if sealed is None:
            raise _LeaveAlone
        last = sealed
        batch.append(sealed)
        if len(batch) == RESEAL_BATCH:
            tx.audit.reseal(batch)
            batch = []
    if last is None:
        raise _LeaveAlone
    tx.audit.reseal(batch)
    return Reseal(last.id, tx.audit.append_all(_baselines(tx, now)))


def _baselines(tx: Transaction, now: datetime) -> Iterator[AuditEvent]:
    """One ``audit.baselined`` event per audited row (no old record names one)."""
    for row in tx.audit.audited_rows():
        expires = row.values.get("expires_at")
        extra = {} if expires is None else {"expires_at": expires.isoformat()}
        event = system_audit("audit.baselined", now, target=row.entity_id, **extra)
        yield event.of_row(row.entity, row.entity_id, row.values)


async def reseal_legacy_audit(store: Store, key: bytes, now: datetime) -> Reseal | None:
    """Reseal an unkeyed (version 1) chain under ``key``, in one transaction, if it
    verifies from its first record to its last and nothing keyed follows it; then record
    a digest of every audited row (``audit.baselined``). None: the chain does not verify
    (it is left for verify to report); nothing resealed: another process did it first."""
    try:
        return (await store.write(lambda tx: _reseal(tx, key, now))).value
    except _LeaveAlone:
        return None


def with_break(report: ChainReport, problem: ChainBreak) -> ChainReport:
    """``report`` with ``problem`` listed first."""
    return dataclasses.replace(
        report, breaks=(problem, *report.breaks), break_count=report.break_count + 1
    )


def read_anchor(anchors: AnchorStore | None) -> tuple[Anchor | None, ChainBreak | None]:
    """The anchored head, or the problem of an anchor file that cannot be read."""
    if anchors is None:
        return None, None
    try:
        return anchors.read(), None
    except ValueError as exc:
        return None, ChainBreak(None, f"the anchor cannot be read: {exc}")


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInputError(f"{field} needs a time zone (ISO 8601, e.g. ...Z)", field=field)
    return value.astimezone(UTC)


class AuditService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        limits: Limits,
        *,
        key: bytes,
        anchors: AnchorStore | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._limits = limits
        self._key = key
        self._anchors = anchors

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

        def read(tx: Transaction) -> list[AuditRecord]:
            tx.audited(event)  # written at commit: not part of the page
            return tx.audit.page(query)

        found = (await self._store.write(read)).value
        return AuditPage(found[:limit], has_more=len(found) > limit)

    async def verify(self, principal: Principal) -> ChainReport:
        """Verify the chain, the anchor and the audited rows (admin only); the check
        itself is then audited."""
        require(principal, Permission.ADMIN)
        anchor, problem = read_anchor(self._anchors)
        report = await verify_chain(self._store, self._key, self._clock.now(), anchor)
        if problem is not None:
            report = with_break(report, problem)
        broken = report.broken
        verified = audit(
            principal,
            "audit.verified",
            self._clock.now(),
            intact=report.intact,
            checked=report.checked,
            rows_checked=report.rows_checked,
            breaks=report.break_count,
            broken_at=broken.record_id if broken else None,
            entity=broken.entity if broken else None,
            entity_id=broken.entity_id if broken else None,
            reason=broken.reason if broken else None,
        )
        await self._store.write(lambda tx: tx.audited(verified))
        return report

    async def open_trail(self) -> None:
        """On start: reseal an old unkeyed chain under the key if it verifies (and no
        anchor says this database was keyed before), else leave it for verify to report;
        and say so at once if the newest record is not sealed with this key."""
        legacy, newest = await self._store.read(
            lambda tx: (tx.audit.starts_unkeyed(), tx.audit.page(AuditQuery(limit=1)))
        )
        if legacy:
            await self._reseal_legacy()
            return
        if newest and not seals(self._key, newest[0]):
            logger.error(
                "the newest audit record #%d does not verify with the audit key: a wrong "
                "SCS_AUDIT_KEY or audit_key file, or the record was changed; "
                "`scs audit verify` reports more",
                newest[0].id,
            )

    async def _reseal_legacy(self) -> None:
        anchor, problem = read_anchor(self._anchors)
        if anchor is not None or problem is not None:
            logger.error(
                "the audit trail starts with unkeyed records although a keyed head was "
                "anchored: not resealed; `scs audit verify` reports them"
            )
            return
        done = await reseal_legacy_audit(self._store, self._key, self._clock.now())
        if done is None:
            logger.warning(
                "the unkeyed audit records do not verify: left as they are; "
                "`scs audit verify` reports where the chain breaks"
            )
            return
        if done.resealed == 0:
            return  # another process sharing the database resealed it first
        logger.info(
            "audit trail resealed under the audit key: %d records, %d rows baselined",
            done.resealed,
            done.baselined,
        )

    async def anchor_head(self) -> Anchor | None:
        """Write the newest head outside the database if it is newer than the anchored
        one (one INFO line with its id and hash); the head written, if any. A chain that
        no longer holds the anchored record with its hash (cut and regrown, rewritten) is
        not anchored over: the old anchor stays, for verify to keep reporting the break,
        and one ERROR line says so."""
        if self._anchors is None:
            return None
        current, _ = read_anchor(self._anchors)  # unreadable: the new head replaces it

        def read(tx: Snapshot) -> tuple[tuple[int, str] | None, bool]:
            return tx.audit.head(), current is None or _holds(tx, current)

        head, holds = await self._store.read(read)
        if head is None:
            return None
        if not holds:
            assert current is not None
            logger.error(
                "audit chain no longer holds anchored record #%d: not anchoring the head; "
                "`scs audit verify` reports where it breaks",
                current.id,
            )
            return None
        anchor = Anchor(head[0], head[1], self._clock.now())
        if not await anyio.to_thread.run_sync(self._anchors.advance, anchor):
            return None
        logger.info("audit head anchored: #%d %s", anchor.id, anchor.hash)
        return anchor

    async def keep_anchored(self, interval: float) -> None:
        """Anchor the head every ``interval`` seconds, until cancelled."""
        while True:
            try:
                await self.anchor_head()
            except Exception:
                logger.exception("anchoring the audit head failed; retrying next interval")
            await anyio.sleep(interval)

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

        def summarise(tx: Snapshot) -> list[AgentActivity]:
            return tx.audit.activity(since, until, subject)

        if not principal.is_admin:
            return ActivitySummary(window, since, until, await self._store.read(summarise))
        event = audit(principal, "audit.summary_read", until, window=window, agent_filter=subject)

        def audited(tx: Transaction) -> list[AgentActivity]:
            tx.audited(event)  # in the same transaction as the read
            return summarise(tx)

        agents = (await self._store.write(audited)).value
        return ActivitySummary(window, since, until, agents)


def _holds(tx: Snapshot, anchor: Anchor) -> bool:
    """Whether the chain holds the anchored record, with the anchored hash."""
    found = tx.audit.after(anchor.id - 1, 1)
    return bool(found) and found[0].id == anchor.id and found[0].hash == anchor.hash
