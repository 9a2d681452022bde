"""Security: upgrading a database whose audit chain predates the key. An intact old chain
is resealed under the key (its rows baselined) and verifies; one that does not verify, or
one rewritten the old way after a keyed head was anchored, is never resealed. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from shared_context_server.app import App, running_app
from shared_context_server.config import Settings
from shared_context_server.domain.audit import GENESIS_HASH, AuditRecord
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.tables import (
    agent_memory,
    audit_log,
    messages,
    sessions,
)
from tests.security.audit_checks import (
    chain_of,
    cli_verify,
    detected,
    rewrite_from,
    tamper,
    tool_report,
    unkeyed,
    write_history,
)

LEGACY_TIME = datetime(2025, 6, 1, 12, 0, 0, 654321, tzinfo=UTC)


async def _legacy_database(settings: Settings) -> list[int]:
    """A database at revision 0003 with data and its audit records hashed the old way."""
    engine = create_engine(settings.resolved_database_url)
    try:
        migrate.upgrade(engine, "0003")
        now = LEGACY_TIME
        session = {
            "id": "session_legacy",
            "purpose": "old work",
            "created_by": "alice",
            "status": "active",
            "metadata": {},
            "created_at": now,
            "updated_at": now,
            "last_activity_at": now,
        }
        events: list[dict[str, Any]] = [
            {"event_type": "session.created", "target": "session_legacy"},
            {"event_type": "message.added", "target": "1"},
            {"event_type": "message.added", "target": "2"},
            {"event_type": "memory.set", "target": "step"},
        ]
        with engine.begin() as conn:
            conn.execute(sa.insert(sessions).values(session))
            ids: list[int] = []
            for content in ("old plan", "old result"):
                row = {
                    "session_id": "session_legacy",
                    "sender": "alice",
                    "sender_type": "claude",
                    "content": content,
                    "metadata": {"v": 1},
                    "message_type": "message",
                    "visibility": "public",
                    "created_at": now,
                }
                inserted = conn.execute(sa.insert(messages).values(row)).inserted_primary_key
                assert inserted is not None
                ids.append(int(inserted[0]))
            memory = {
                "agent_id": "alice",
                "scope": "",
                "key": "step",
                "value": {"n": 1},
                "metadata": {},
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            conn.execute(sa.insert(agent_memory).values(memory))
            prev = GENESIS_HASH
            for record_id, values in enumerate(events, start=1):
                record = AuditRecord(
                    id=record_id,
                    event_type=values["event_type"],
                    agent_id="alice",
                    agent_type="claude",
                    session_id="session_legacy",
                    target=values["target"],
                    metadata={},
                    created_at=now,
                    prev_hash=prev,
                    hash="",
                )
                digest, _ = unkeyed(record_id, record, prev)
                old_columns = {
                    "id": record_id,
                    "event_type": record.event_type,
                    "agent_id": record.agent_id,
                    "agent_type": record.agent_type,
                    "session_id": record.session_id,
                    "target": record.target,
                    "metadata": record.metadata,
                    "created_at": now,
                    "prev_hash": prev,
                    "hash": digest,
                }
                conn.execute(sa.insert(audit_log).values(old_columns))
                prev = digest
        return ids
    finally:
        engine.dispose()


@pytest.fixture
async def upgraded(empty_settings: Settings) -> AsyncIterator[tuple[App, list[int]]]:
    ids = await _legacy_database(empty_settings)
    async with running_app(empty_settings, background=False) as app:
        yield app, ids


async def test_an_old_unkeyed_chain_is_resealed_on_upgrade_and_verifies(
    upgraded: tuple[App, list[int]],
) -> None:
    app, ids = upgraded
    records = await chain_of(app)
    assert [r.hash_version for r in records] == [2] * len(records)
    assert [r.event_type for r in records[:4]] == [
        "session.created",
        "message.added",
        "message.added",
        "memory.set",
    ]
    baselined = {r.entity for r in records if r.event_type == "audit.baselined"}
    assert {"session", "message", "memory", "identity"} <= baselined
    report = await tool_report(app)
    assert report["intact"] is True, report["breaks"]
    code, output = await cli_verify(app.settings)
    assert code == 0, output
    # the old rows are covered from now on
    tamper(app, sa.update(messages).where(messages.c.id == ids[0]).values(content="rewritten"))
    await detected(
        app, reason="differs from its last audit record", entity="message", entity_id=str(ids[0])
    )


async def test_an_old_chain_that_does_not_verify_is_not_resealed(
    empty_settings: Settings,
) -> None:
    await _legacy_database(empty_settings)
    engine = create_engine(empty_settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.id == 2).values(agent_id="mallory"))
    engine.dispose()
    async with running_app(empty_settings, background=False) as app:
        records = await chain_of(app)
        assert [r.hash_version for r in records[:4]] == [1, 1, 1, 1]
        report = await detected(app, reason="its content was changed")
        assert report["first_break"]["record_id"] == 2


async def test_a_chain_rewritten_unkeyed_is_not_resealed_once_a_head_was_anchored(
    backend_settings: Settings,
) -> None:
    """Rewriting the whole chain the old way, to have the next start reseal it, fails
    when the server anchored a keyed head before."""
    async with running_app(backend_settings, background=False) as app:
        await write_history(app)
        await app.audit.anchor_head()
        records = await chain_of(app)
        tamper(app, sa.update(messages).values(content="all rewritten"))
        rewrite_from(app, records, 0, unkeyed)
    async with running_app(backend_settings, background=False) as app:
        assert {r.hash_version for r in await chain_of(app)} == {1}  # nothing resealed
        report = await detected(app, reason="sealed with the old unkeyed hash")
        assert report["first_break"]["record_id"] == 1
