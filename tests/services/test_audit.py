"""The audit service: admin-only log and verification, activity summaries by window."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.domain.audit import AuditRecord
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    LimitExceededError,
    PermissionDeniedError,
)
from shared_context_server.services.audit import verify_chain
from shared_context_server.storage.tables import audit_log

hour = timedelta(hours=1)


async def everything(app: App, admin: Principal) -> list[AuditRecord]:
    return list(reversed((await app.audit.get_log(admin, limit=1_000)).records))


async def test_each_change_is_recorded_with_who_what_and_where(
    app: App, alice: Principal, admin: Principal
) -> None:
    session = await app.sessions.create(alice, "work")
    message = await app.messages.add(alice, session.id, "hello")
    await app.memory.set(alice, "k", 1, session_id=session.id)
    page = await app.audit.get_log(admin, session_id=session.id)
    assert [(r.event_type, r.agent_id, r.agent_type) for r in page.records] == [
        ("memory.set", "alice", "claude"),
        ("message.added", "alice", "claude"),
        ("session.created", "alice", "claude"),
    ]
    assert page.records[1].target == str(message.id)
    assert page.has_more is False
    assert page.next_before_id is None


async def test_the_log_and_its_verification_need_admin(
    app: App, alice: Principal, reader: Principal
) -> None:
    for principal in (alice, reader):
        with pytest.raises(PermissionDeniedError):
            await app.audit.get_log(principal)
        with pytest.raises(PermissionDeniedError):
            await app.audit.verify(principal)


async def test_reading_the_log_is_itself_audited(
    app: App, alice: Principal, admin: Principal
) -> None:
    session = await app.sessions.create(alice, "work")
    await app.audit.get_log(admin, session_id=session.id, event_type="session.created", limit=5)
    latest = (await app.audit.get_log(admin, limit=1)).records[0]
    assert (latest.event_type, latest.agent_id) == ("audit.read", "root")
    assert latest.metadata == {
        "filters": {"session_id": session.id, "event_type": "session.created"},
        "limit": 5,
    }


async def test_the_log_pages_backwards_and_checks_its_limits(
    app: App, alice: Principal, admin: Principal
) -> None:
    session = await app.sessions.create(alice, "work")
    for i in range(5):
        await app.messages.add(alice, session.id, f"m{i}")
    first = await app.audit.get_log(admin, event_type="message.added", limit=3)
    assert first.has_more
    assert first.next_before_id == first.records[-1].id
    second = await app.audit.get_log(
        admin, event_type="message.added", limit=3, before_id=first.next_before_id
    )
    assert (len(second.records), second.has_more) == (2, False)
    ids = [r.id for r in first.records + second.records]
    assert ids == sorted(ids, reverse=True)
    with pytest.raises(LimitExceededError):
        await app.audit.get_log(admin, limit=1_001)
    with pytest.raises(InvalidInputError):
        await app.audit.get_log(admin, since=app.clock.now(), until=app.clock.now() - hour)
    with pytest.raises(InvalidInputError):
        await app.audit.get_log(admin, since=datetime(2026, 1, 1))  # no time zone


async def test_an_intact_chain_verifies_and_the_check_is_audited(
    app: App, alice: Principal, admin: Principal
) -> None:
    session = await app.sessions.create(alice, "work")
    await app.messages.add(alice, session.id, "hello")
    report = await app.audit.verify(admin)
    assert report.intact
    assert report.broken is None
    before = await everything(app, admin)
    assert report.checked == before[-2].id  # every record up to the verification itself
    assert report.last_id == before[-2].id
    assert before[-1].event_type == "audit.verified"
    assert before[-1].metadata["intact"] is True
    assert (await verify_chain(app.store, batch=2)).intact


async def test_verification_reports_the_first_edited_record(
    app: App, alice: Principal, admin: Principal
) -> None:
    session = await app.sessions.create(alice, "work")
    for i in range(4):
        await app.messages.add(alice, session.id, f"m{i}")
    target = (await app.audit.get_log(admin, event_type="message.added", limit=4)).records[2]
    with app.store.engine.begin() as conn:
        conn.execute(
            sa.update(audit_log)
            .where(audit_log.c.id == target.id)
            .values(metadata={"forged": True})
        )
    report = await app.audit.verify(admin)
    assert not report.intact
    assert report.broken is not None
    assert report.broken.record_id == target.id
    assert report.checked == target.id - 1
    latest = (await app.audit.get_log(admin, limit=1)).records[0]
    assert latest.event_type == "audit.verified"
    assert latest.metadata["broken_at"] == target.id


async def test_summaries_count_per_agent_within_the_window(
    fake_clock_app: App, clock: FakeClock, alice: Principal, bob: Principal, admin: Principal
) -> None:
    app = fake_clock_app
    old = await app.sessions.create(alice, "long ago")
    clock.advance(2 * 3600)
    session = await app.sessions.create(alice, "work")
    clock.advance(60)
    await app.messages.add(alice, session.id, "one")
    await app.messages.add(alice, old.id, "two")
    clock.advance(60)
    await app.messages.add(bob, session.id, "three")

    hour = await app.audit.activity_summary(admin, "1h")
    by_agent = {a.agent_id: a for a in hour.agents}
    assert set(by_agent) == {"alice", "bob"}
    alice_hour = by_agent["alice"]
    assert alice_hour.event_count == 3
    assert alice_hour.event_types == {"message.added": 2, "session.created": 1}
    assert (alice_hour.sessions_touched, alice_hour.sessions_created) == (2, 1)
    assert alice_hour.first_activity == session.created_at
    assert (alice_hour.last_activity - alice_hour.first_activity).total_seconds() == 60
    assert (hour.until - hour.since).total_seconds() == 3600
    assert by_agent["bob"].event_types == {"message.added": 1}

    day = {a.agent_id: a for a in (await app.audit.activity_summary(admin, "24h")).agents}
    assert (day["alice"].event_count, day["alice"].sessions_created) == (4, 2)

    clock.advance(31 * 24 * 3600)
    assert (await app.audit.activity_summary(admin, "30d")).agents == []
    (only,) = (await app.audit.activity_summary(admin, "30d")).agents
    assert (only.agent_id, only.event_types) == ("root", {"audit.summary_read": 1})


async def test_a_non_admin_sees_only_their_own_summary(
    app: App, alice: Principal, bob: Principal, reader: Principal
) -> None:
    session = await app.sessions.create(alice, "work")
    await app.messages.add(bob, session.id, "hi")
    mine = await app.audit.activity_summary(alice, "24h")
    assert [a.agent_id for a in mine.agents] == ["alice"]
    assert [a.agent_id for a in (await app.audit.activity_summary(alice, "24h", "alice")).agents]
    with pytest.raises(PermissionDeniedError):
        await app.audit.activity_summary(alice, "24h", "bob")
    assert (await app.audit.activity_summary(reader, "7d")).agents == []
    with pytest.raises(InvalidInputError):
        await app.audit.activity_summary(alice, "2h")


async def test_an_admin_summary_is_audited_and_a_self_summary_is_not(
    app: App, alice: Principal, admin: Principal
) -> None:
    await app.sessions.create(alice, "work")
    await app.audit.activity_summary(alice, "24h")
    summary = await app.audit.activity_summary(admin, "7d", "alice")
    assert [a.agent_id for a in summary.agents] == ["alice"]
    events = [r.event_type for r in await everything(app, admin)]
    assert events.count("audit.summary_read") == 1
