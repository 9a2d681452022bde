"""Resealing an audit chain written before it was keyed: an intact one is resealed under
the key with a baseline of every row; a broken one, or unkeyed records after keyed ones,
are left for verification to report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import sqlalchemy as sa

from shared_context_server.domain.audit import (
    GENESIS_HASH,
    HASH_VERSION,
    LEGACY_HASH_VERSION,
    AuditRecord,
    Reseal,
    legacy_record_hash,
    system_audit,
)
from shared_context_server.services.audit import has_legacy_audit, reseal_legacy_audit
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.tables import audit_log, messages, sessions
from tests.storage.conftest import TEST_AUDIT_KEY as KEY
from tests.storage.factories import at, make_session, message_row, session_row
from tests.storage.test_audit_store import append, event, verify, whole_chain


async def _write_legacy_chain(store: SqlStore, count: int) -> None:
    """Records hashed the way they were before migration 0004, with rows they changed."""
    session = make_session()
    with store.engine.begin() as conn:
        conn.execute(sa.insert(sessions).values(**session_row(session)))
        prev = GENESIS_HASH
        for i in range(1, count + 1):
            legacy = system_audit("message.added", at(i), session_id=session.id, n=i)
            digest = legacy_record_hash(i, legacy, prev)
            conn.execute(
                sa.insert(audit_log).values(
                    id=i,
                    event_type=legacy.event_type,
                    agent_id=legacy.agent_id,
                    agent_type=legacy.agent_type,
                    session_id=legacy.session_id,
                    target=None,
                    metadata=legacy.metadata,
                    created_at=legacy.at,
                    prev_hash=prev,
                    hash=digest,
                    hash_version=LEGACY_HASH_VERSION,
                )
            )
            conn.execute(sa.insert(messages).values(**message_row(session.id, f"old {i}")))
            prev = digest


async def test_an_intact_unkeyed_chain_is_resealed_and_its_rows_baselined(
    store: SqlStore,
) -> None:
    await _write_legacy_chain(store, 5)
    assert await has_legacy_audit(store)
    assert not (await verify(store)).intact  # unkeyed: not trusted as it is
    done = await reseal_legacy_audit(store, KEY, at(10))
    assert done is not None
    assert (done.resealed, done.baselined) == (5, 6)  # one session and five messages
    assert not await has_legacy_audit(store)
    records = await whole_chain(store)
    assert {r.hash_version for r in records} == {HASH_VERSION}
    assert [r.metadata.get("n") for r in records[:5]] == [1, 2, 3, 4, 5]  # content kept
    assert {r.event_type for r in records[5:]} == {"audit.baselined"}
    report = await verify(store)
    assert report.intact, report.breaks
    assert (report.checked, report.rows_checked) == (11, 6)
    assert await reseal_legacy_audit(store, KEY, at(11)) == Reseal(0, 0)  # nothing unkeyed is left


async def test_an_unkeyed_chain_that_does_not_verify_is_left_alone(store: SqlStore) -> None:
    await _write_legacy_chain(store, 4)
    with store.engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.id == 3).values(agent_id="mallory"))
    before = await whole_chain(store)
    assert await reseal_legacy_audit(store, KEY, at(10)) is None
    assert await whole_chain(store) == before
    broken = (await verify(store)).broken
    assert broken is not None
    assert broken.record_id == 3  # where the unkeyed chain breaks
    assert broken.reason.startswith("its content was changed")


async def test_unkeyed_records_after_keyed_ones_are_never_resealed(store: SqlStore) -> None:
    await _write_legacy_chain(store, 2)
    assert await reseal_legacy_audit(store, KEY, at(3)) is not None
    await append(store, event(seconds=4))
    with store.engine.begin() as conn:  # a keyed record downgraded and rehashed unkeyed
        last = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc())).first()
        assert last is not None
        forged = AuditRecord(**{**_record_fields(last), "hash_version": 1})
        conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.id == last.id)
            .values(
                hash_version=1,
                hash=legacy_record_hash(last.id, forged.event(), last.prev_hash),
            )
        )
    assert not await has_legacy_audit(store)
    assert await reseal_legacy_audit(store, KEY, at(5)) == Reseal(0, 0)  # it starts keyed
    broken = (await verify(store)).broken
    assert broken is not None
    assert broken.record_id == last.id
    assert "unkeyed" in broken.reason


def _record_fields(row: Any) -> dict[str, Any]:
    names = [
        "id",
        "event_type",
        "agent_id",
        "agent_type",
        "session_id",
        "target",
        "metadata",
        "created_at",
        "prev_hash",
        "hash",
        "entity",
        "entity_id",
        "digest",
        "hash_version",
    ]
    return {name: getattr(row, name) for name in names}


async def test_processes_starting_together_reseal_the_chain_once(
    open_store: Callable[[], SqlStore],
) -> None:
    stores = [open_store() for _ in range(3)]
    await _write_legacy_chain(stores[0], 4)
    outcomes: list[Reseal | None] = []

    async def reseal(store: SqlStore) -> None:
        outcomes.append(await reseal_legacy_audit(store, KEY, at(10)))

    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(reseal, store)
    assert sorted(o.resealed for o in outcomes if o is not None) == [0, 0, 4]
    report = await verify(stores[1])
    assert report.intact, report.breaks
    assert report.checked == 4 + 5  # the old records and one baseline per row
