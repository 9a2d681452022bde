"""Verifying the audit trail: the keyed chain, the anchor kept outside the database, and
the audited rows against the digests their latest records hold.

``TrailVerifier`` is fed the chain in id order and then every audited row (storage reads
both in one snapshot); it keeps one digest per audited row, the latest its records name.
A row is reported when it differs from that digest, when no record names it (written
behind the server's back, or the trail was emptied or truncated), when its last record
deleted it but it is there, and when it is missing although its last record left it in
place (a memory entry, delegation or revoked token whose recorded ``expires_at`` has
passed excepted: the expiry sweep removes such rows without a record each).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared_context_server.domain.audit import (
    DIGEST_FIELDS,
    GENESIS_HASH,
    LEGACY_HASH_VERSION,
    AuditRecord,
    Row,
    legacy_record_hash,
    row_digest,
    seals,
)

# At most this many breaks are listed in a report (all are counted).
MAX_BREAKS = 50
# Rows whose absence is accepted once the expiry their last record holds (``expires_at``
# in its metadata) has passed: expired memory, delegations and revoked tokens may be swept
# without records.
EXPIRING_ENTITIES = frozenset({"memory", "delegation", "revoked_token"})

CHANGED = "its content was changed (its hash does not verify with the audit key)"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """What is wrong and where: a record of the chain (``record_id``), a data row
    (``entity``, ``entity_id``), or both."""

    record_id: int | None
    reason: str
    entity: str | None = None
    entity_id: str | None = None


@dataclass(frozen=True, slots=True)
class Anchor:
    """The newest head of the chain as written outside the database at ``at``."""

    id: int
    hash: str
    at: datetime


class ChainVerifier:
    """Checks records one at a time, in id order, so a long chain can be read in batches.

    Records of the old unkeyed hash (version 1: an old chain that was not resealed, or
    records downgraded to be rehashed without the key) are never trusted: a run of them is
    followed to its end so the report names either where it breaks or its first record.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.checked = 0
        self.last: AuditRecord | None = None
        # Within a run of version-1 records: its first record, and the last one so far.
        self._unkeyed: AuditRecord | None = None
        self._unkeyed_last: AuditRecord | None = None

    def check(self, record: AuditRecord) -> ChainBreak | None:
        """The break ``record`` reveals, if any; a verified record is counted and kept."""
        before = self._unkeyed_last or self.last
        expected = before.id + 1 if before else 1
        if record.id != expected:
            return ChainBreak(expected, f"records {expected}..{record.id - 1} are missing")
        prev_hash = before.hash if before else GENESIS_HASH
        if record.prev_hash != prev_hash:
            return ChainBreak(record.id, "does not link to the record before it")
        event = record.event()
        if record.hash_version == LEGACY_HASH_VERSION:
            if legacy_record_hash(record.id, event, prev_hash) != record.hash:
                return ChainBreak(record.id, CHANGED)
            self._unkeyed = self._unkeyed or record
            self._unkeyed_last = record
            return None
        if (unkeyed := self.finish()) is not None:
            return unkeyed
        if not seals(self._key, record):  # its prev_hash is the one checked above
            return ChainBreak(record.id, CHANGED)
        self.checked += 1
        self.last = record
        return None

    def finish(self) -> ChainBreak | None:
        """At the end of the chain: the break a run of unkeyed records is, if any."""
        if self._unkeyed is None:
            return None
        return ChainBreak(
            self._unkeyed.id,
            "is sealed with the old unkeyed hash (version 1), not the audit key",
        )


def first_break(records: Iterable[AuditRecord], key: bytes) -> ChainBreak | None:
    """The first record (in id order) whose link or content does not verify, if any."""
    verifier = ChainVerifier(key)
    for record in records:
        if (broken := verifier.check(record)) is not None:
            return broken
    return verifier.finish()


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of verifying the trail. ``checked`` counts the records that verified
    (all of them when the chain is intact), ``rows_checked`` the audited rows compared
    with their records; ``breaks`` lists what is wrong (at most ``MAX_BREAKS``, of
    ``break_count``); ``anchor`` is the head the chain was checked against, if any."""

    checked: int
    last_id: int | None
    last_hash: str | None
    breaks: tuple[ChainBreak, ...] = ()
    break_count: int = 0
    rows_checked: int = 0
    anchor: Anchor | None = None

    @property
    def broken(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None

    @property
    def intact(self) -> bool:
        return not self.breaks


class TrailVerifier:
    """The chain, then the audited rows, then ``report()``. ``now`` decides which memory
    entries have expired; ``anchor`` is the head written outside the database."""

    def __init__(self, key: bytes, now: datetime, anchor: Anchor | None = None) -> None:
        self._chain = ChainVerifier(key)
        self._now = now
        self._anchor = anchor
        # Per entity kind: entity id -> the digest its latest record holds (None: deleted).
        self._latest: dict[str, dict[str, bytes | None]] = {name: {} for name in DIGEST_FIELDS}
        # Per (entity kind, entity id) of an expiring entity: the expiry its latest record
        # holds (a delegation and its revocation share a jti).
        self._expires: dict[tuple[str, str], datetime] = {}
        self._chain_break: ChainBreak | None = None
        self._anchor_break: ChainBreak | None = None
        self._row_breaks: list[ChainBreak] = []
        self._row_break_count = 0
        self._rows = 0

    @property
    def chain_broken(self) -> bool:
        return self._chain_break is not None

    def record(self, record: AuditRecord) -> bool:
        """Check the next record of the chain; False once the chain is broken (the rows
        are then not compared: the records after the break cannot be trusted)."""
        if self._chain_break is not None:
            return False
        if (broken := self._chain.check(record)) is not None:
            self._chain_break = broken
            return False
        anchor = self._anchor
        if anchor is not None and record.id == anchor.id and record.hash != anchor.hash:
            self._anchor_break = ChainBreak(
                record.id,
                f"differs from the head anchored at {anchor.at.isoformat()}: "
                "the chain was rewritten, or records were deleted and others took their ids",
            )
        entity, entity_id = record.entity, record.entity_id
        if entity in self._latest and entity_id is not None:
            assert entity is not None
            digest = record.digest
            self._latest[entity][entity_id] = None if digest is None else bytes.fromhex(digest)
            if entity in EXPIRING_ENTITIES:
                self._remember_expiry((entity, entity_id), record.metadata, digest is None)
        return True

    def _remember_expiry(
        self, name: tuple[str, str], metadata: Mapping[str, Any], gone: bool
    ) -> None:
        expires = metadata.get("expires_at")
        if gone or not isinstance(expires, str):
            self._expires.pop(name, None)
            return
        try:
            self._expires[name] = datetime.fromisoformat(expires)
        except ValueError:
            self._expires.pop(name, None)

    def row(self, entity: str, entity_id: str, row: Row) -> None:
        """Compare one stored row with the latest record that names it."""
        self._rows += 1
        latest = self._latest[entity]
        if entity_id not in latest:
            if self._chain.checked == 0:
                if self._row_break_count == 0:
                    self._row_break(
                        entity,
                        entity_id,
                        "the audit trail is empty although the database holds data: "
                        "it was emptied or truncated",
                    )
                return
            self._row_break(
                entity,
                entity_id,
                "has no audit record: written behind the server's back, "
                "or its records were removed",
            )
            return
        recorded = latest.pop(entity_id)
        if recorded is None:
            self._row_break(entity, entity_id, "exists although its last audit record deleted it")
        elif recorded != bytes.fromhex(row_digest(entity, row)):
            self._row_break(
                entity,
                entity_id,
                "differs from its last audit record: changed behind the server's back",
            )

    def _row_break(self, entity: str, entity_id: str, reason: str) -> None:
        self._row_break_count += 1
        if len(self._row_breaks) < MAX_BREAKS:
            self._row_breaks.append(ChainBreak(None, reason, entity, entity_id))

    def _missing_rows(self) -> None:
        """Rows the records left in place that the scan did not find."""
        for entity, left in self._latest.items():
            for entity_id, digest in left.items():
                if digest is None:
                    continue  # deleted, as recorded
                expires = self._expires.get((entity, entity_id))
                if expires is not None and expires <= self._now:
                    continue  # expired: the sweep may remove it without a record
                self._row_break(entity, entity_id, "is missing: deleted behind the server's back")
            left.clear()

    def _end_of_chain(self) -> ChainBreak | None:
        anchor, last = self._anchor, self._chain.last
        if anchor is None:
            return None
        if self._anchor_break is not None:
            return self._anchor_break
        last_id = last.id if last else 0
        if last_id < anchor.id:
            return ChainBreak(
                last_id + 1,
                f"the chain ends at #{last_id} but the head anchored at "
                f"{anchor.at.isoformat()} is #{anchor.id}: the newest records were deleted",
            )
        return None

    def report(self) -> ChainReport:
        """The outcome, once the chain and every row have been fed."""
        last = self._chain.last
        breaks: list[ChainBreak] = []
        count = 0
        if self._chain_break is None:
            self._chain_break = self._chain.finish()
        if self._chain_break is not None:
            breaks, count = [self._chain_break], 1
        else:
            if (end := self._end_of_chain()) is not None:
                breaks, count = [end], 1
            self._missing_rows()
            breaks += self._row_breaks[: MAX_BREAKS - len(breaks)]
            count += self._row_break_count
        return ChainReport(
            checked=self._chain.checked,
            last_id=last.id if last else None,
            last_hash=last.hash if last else None,
            breaks=tuple(breaks),
            break_count=count,
            rows_checked=self._rows,
            anchor=self._anchor,
        )
