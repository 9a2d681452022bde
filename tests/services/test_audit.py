"""The audit service: admin-only log and verification, activity summaries by window, the
audit key and the anchor kept outside the database."""

from __future__ import annotations

import json
import logging
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from shared_context_server.app import App, running_app
from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.audit import AuditRecord
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import (
    InvalidInputError,
    LimitExceededError,
    PermissionDeniedError,
)
from shared_context_server.services.audit import verify_chain
from shared_context_server.storage.audit_files import AuditKeyError
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.tables import audit_log
from tests.conftest import settings_on

hour = timedelta(hours=1)


def key_of(app: App) -> bytes:
    assert app.store.audit_key is not None
    return app.store.audit_key


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
    assert (await verify_chain(app.store, key_of(app), app.clock.now())).intact


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


async def test_the_audit_key_is_kept_in_the_data_directory_for_the_owner_only(
    app: App, empty_settings: Settings, tmp_path: Path
) -> None:
    path = app.settings.data_dir / "audit_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_of(app) == path.read_text().strip().encode()
    assert len(key_of(app)) >= 32
    # Another deployment (its own data dir and database) configured with a key.
    configured = settings_on(empty_settings, tmp_path / "other", audit={"key": "s" * 40})
    async with running_app(configured, background=False) as other:
        assert key_of(other) == b"s" * 40
    assert not (tmp_path / "other" / "audit_key").exists()


async def test_a_short_audit_key_is_refused_at_start_and_nothing_is_left_open(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    engines: list[sa.Engine] = []

    def recorded(*args: Any, **kwargs: Any) -> sa.Engine:
        engines.append(create_engine(*args, **kwargs))
        return engines[-1]

    monkeypatch.setattr("shared_context_server.app.create_engine", recorded)
    short = settings_on(settings, audit={"key": "short"})
    try:
        with pytest.raises(AuditKeyError, match="at least 32"):
            await running_app(short).__aenter__()
        assert [engine.pool.checkedin() for engine in engines] == [0]  # disposed
    finally:
        for engine in engines:  # the leak fails this test only, not a later one
            engine.dispose()


def _anchor_file(app: App) -> dict[str, object]:
    data: dict[str, object] = json.loads((app.settings.data_dir / "audit_anchor").read_text())
    return data


async def test_the_head_is_anchored_outside_the_database_and_never_moves_back(
    fake_clock_app: App, alice: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    app = fake_clock_app
    session = await app.sessions.create(alice, "work")
    with caplog.at_level(logging.INFO, logger="shared_context_server.services.audit"):
        anchored = await app.audit.anchor_head()
    assert anchored is not None
    head = await app.store.read(lambda tx: tx.audit.head())
    assert head == (anchored.id, anchored.hash)
    assert _anchor_file(app) == {
        "id": anchored.id,
        "hash": anchored.hash,
        "at": app.clock.now().isoformat(),
    }
    path = app.settings.data_dir / "audit_anchor"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.getMessage() for r in caplog.records] == [
        f"audit head anchored: #{anchored.id} {anchored.hash}"
    ]
    assert await app.audit.anchor_head() is None  # nothing new

    # another process sharing the database anchored a newer head: ours is older, kept out
    newer = {"id": anchored.id + 10, "hash": "e" * 64, "at": "2026-01-01T00:00:00+00:00"}
    path.write_text(json.dumps(newer))
    await app.messages.add(alice, session.id, "one more")
    assert await app.audit.anchor_head() is None
    assert _anchor_file(app) == newer


async def test_the_maintenance_sweep_anchors_the_head_after_its_own_records(
    fake_clock_app: App, clock: FakeClock, alice: Principal
) -> None:
    app = fake_clock_app
    await app.sessions.create(alice, "idle")
    clock.advance(8 * 24 * 3600)
    report = await app.maintenance.sweep()
    assert len(report.sessions_archived) == 1
    head = await app.store.read(lambda tx: tx.audit.head())
    assert head is not None
    assert (_anchor_file(app)["id"], _anchor_file(app)["hash"]) == head  # archive included


async def test_verification_checks_the_anchor_and_reports_an_unreadable_one(
    app: App, alice: Principal, admin: Principal
) -> None:
    await app.sessions.create(alice, "work")
    anchored = await app.audit.anchor_head()
    report = await app.audit.verify(admin)
    assert report.intact
    assert report.anchor == anchored
    (app.settings.data_dir / "audit_anchor").write_text("not json")
    report = await app.audit.verify(admin)
    assert not report.intact
    assert report.broken is not None
    assert report.broken.reason.startswith("the anchor cannot be read")


async def test_a_verification_that_finds_breaks_records_the_first(
    app: App, alice: Principal, admin: Principal
) -> None:
    session = await app.sessions.create(alice, "work")
    with app.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE sessions SET purpose = 'forged'"))
    report = await app.audit.verify(admin)
    assert (report.break_count, report.rows_checked) == (1, 2)  # the session and the key
    latest = (await app.audit.get_log(admin, limit=1)).records[0]
    assert latest.metadata["entity"] == "session"
    assert latest.metadata["entity_id"] == session.id
    assert latest.metadata["breaks"] == 1


async def test_starting_with_another_audit_key_is_reported_at_once(
    settings: Settings, alice: Principal, caplog: pytest.LogCaptureFixture
) -> None:
    first = settings_on(settings, audit={"key": "a" * 40})
    async with running_app(first, background=False) as app:
        await app.sessions.create(alice, "work")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="shared_context_server.services.audit"):
        async with running_app(first, background=False):
            pass
        assert caplog.records == []
        other = settings_on(settings, audit={"key": "b" * 40})
        async with running_app(other, background=False):
            pass
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "the newest audit record #2 does not verify with the audit key"
    ]
