"""Security: someone with write access to the database (but not to the data directory,
where the audit key and the anchor live) edits data or the audit trail behind the
server's back. Every case is detected by ``verify_audit_log`` through a real MCP client
and by the offline ``scs audit verify`` (exit 1), on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from shared_context_server.app import App, running_app
from shared_context_server.cli.main import cli
from shared_context_server.config import Settings
from shared_context_server.domain.audit import GENESIS_HASH, AuditRecord
from shared_context_server.domain.models import KeyBinding, Permission, Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.tables import (
    agent_memory,
    api_keys,
    audit_log,
    messages,
    sessions,
)
from tests.conftest import ADMIN, READ_WRITE
from tests.mcp.conftest import connect_client, ok, token_for

ALICE = Principal("alice", "claude", READ_WRITE)
LEGACY_TIME = datetime(2025, 6, 1, 12, 0, 0, 654321, tzinfo=UTC)
BOB = Principal("bob", "claude", READ_WRITE)


@dataclass(frozen=True)
class History:
    session_id: str
    plan: int  # alice's public message
    note: int  # alice's private note
    done: int  # bob's message, the newest


async def _history(app: App) -> History:
    await app.auth.create_api_key(
        "worker-key",
        frozenset({Permission.READ}),
        KeyBinding(agent_id="worker", agent_types=frozenset({"claude"})),
    )
    session = await app.sessions.create(ALICE, "the plan")
    plan = await app.messages.add(ALICE, session.id, "plan: A then B")
    note = await app.messages.add(ALICE, session.id, "A is risky", visibility=Visibility.PRIVATE)
    await app.memory.set(ALICE, "step", "A", session_id=session.id)
    done = await app.messages.add(BOB, session.id, "B done")
    return History(session.id, plan.id, note.id, done.id)


@pytest.fixture
async def history(backend_app: App) -> History:
    return await _history(backend_app)


def _tamper(app: App, *statements: sa.Executable) -> None:
    with app.store.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


async def _tool_report(app: App) -> dict[str, Any]:
    async with connect_client(app, token_for(app, "root", "gemini", ADMIN)) as root:
        return await ok(root, "verify_audit_log")


def _cli_env(settings: Settings) -> dict[str, str]:
    assert settings.jwt_secret_key is not None
    env = {
        "SCS_DATA_DIR": str(settings.data_dir),
        "JWT_SECRET_KEY": settings.jwt_secret_key.get_secret_value(),
    }
    if settings.database_url:
        env["SCS_DATABASE_URL"] = settings.database_url
    return env


async def _cli(settings: Settings, *args: str) -> tuple[int, str]:
    """``scs audit verify`` in a worker thread (it runs its own event loop)."""

    def invoke() -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["audit", "verify", *args], env=_cli_env(settings))
        return result.exit_code, result.stdout + result.stderr

    return await anyio.to_thread.run_sync(invoke)


async def _detected(
    app: App, *, reason: str, entity: str | None = None, entity_id: str | None = None
) -> dict[str, Any]:
    """Both checks report the trail broken, naming ``reason`` (and the row) first. The
    offline check goes first: the tool's own ``audit.verified`` record changes the chain."""
    code, output = await _cli(app.settings)
    assert code == 1, output
    assert "audit trail BROKEN at " in output
    assert reason in output.splitlines()[0], output
    report = await _tool_report(app)
    assert report["intact"] is False, report
    first = report["first_break"]
    assert reason in first["reason"], first
    if entity is not None:
        assert (first["entity"], first["entity_id"]) == (entity, entity_id), first
    assert report["breaks"][0] == first
    return report


async def test_an_intact_database_verifies(backend_app: App, history: History) -> None:
    report = await _tool_report(backend_app)
    assert report["intact"] is True, report["breaks"]
    # keys (bootstrap, worker), the session, three messages, one memory entry
    assert report["rows_checked"] == 7
    code, output = await _cli(backend_app.settings)
    assert code == 0, output
    assert "audit trail intact" in output


async def test_edited_message_content_is_detected(backend_app: App, history: History) -> None:
    _tamper(
        backend_app,
        sa.update(messages).where(messages.c.id == history.plan).values(content="plan: B only"),
    )
    await _detected(
        backend_app,
        reason="differs from its last audit record",
        entity="message",
        entity_id=str(history.plan),
    )


async def test_an_edited_message_sender_is_detected(backend_app: App, history: History) -> None:
    _tamper(
        backend_app, sa.update(messages).where(messages.c.id == history.done).values(sender="alice")
    )
    await _detected(
        backend_app,
        reason="differs from its last audit record",
        entity="message",
        entity_id=str(history.done),
    )


async def test_an_edited_message_visibility_is_detected(backend_app: App, history: History) -> None:
    _tamper(
        backend_app,
        sa.update(messages).where(messages.c.id == history.note).values(visibility="public"),
    )
    await _detected(
        backend_app,
        reason="differs from its last audit record",
        entity="message",
        entity_id=str(history.note),
    )


async def test_an_edited_memory_value_is_detected(backend_app: App, history: History) -> None:
    _tamper(backend_app, sa.update(agent_memory).values(value="B"))
    await _detected(
        backend_app,
        reason="differs from its last audit record",
        entity="memory",
        entity_id=f"alice/{history.session_id}/step",
    )


async def test_widened_key_permissions_are_detected(backend_app: App, history: History) -> None:
    _tamper(
        backend_app,
        sa.update(api_keys)
        .where(api_keys.c.name == "worker-key")
        .values(permissions=["admin", "read", "write"]),
    )
    await _detected(
        backend_app,
        reason="differs from its last audit record",
        entity="api_key",
        entity_id="worker-key",
    )


async def test_an_edited_session_status_is_detected(backend_app: App, history: History) -> None:
    _tamper(backend_app, sa.update(sessions).values(status="archived"))
    await _detected(
        backend_app,
        reason="differs from its last audit record",
        entity="session",
        entity_id=history.session_id,
    )


async def test_a_deleted_message_is_detected(backend_app: App, history: History) -> None:
    _tamper(backend_app, sa.delete(messages).where(messages.c.id == history.note))
    await _detected(backend_app, reason="is missing", entity="message", entity_id=str(history.note))


async def test_a_row_inserted_without_a_record_is_detected(
    backend_app: App, history: History
) -> None:
    row = {
        "session_id": history.session_id,
        "sender": "bob",
        "sender_type": "claude",
        "content": "alice said we skip the tests",
        "metadata": {},
        "message_type": "message",
        "visibility": "public",
        "created_at": backend_app.clock.now(),
    }
    _tamper(backend_app, sa.insert(messages).values(row))
    await _detected(
        backend_app,
        reason="has no audit record",
        entity="message",
        entity_id=str(history.done + 1),
    )


# --- the chain itself ---------------------------------------------------------------------


async def _records(app: App) -> list[AuditRecord]:
    return await app.store.audit_records(0, 10_000)


Hasher = Callable[[int, AuditRecord, str], tuple[str, int]]


def _unkeyed(record_id: int, record: AuditRecord, prev_hash: str) -> tuple[str, int]:
    """The hash before the chain was keyed, as it was computed then: anyone can redo it."""
    body = json.dumps(
        [
            record_id,
            record.event_type,
            record.agent_id,
            record.agent_type,
            record.session_id,
            record.target,
            record.metadata,
            record.created_at.isoformat(),
            prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest(), 1


def _keyed_with(key: bytes) -> Hasher:
    """The keyed formula, with a key of the attacker's choosing."""

    def rehash(record_id: int, record: AuditRecord, prev_hash: str) -> tuple[str, int]:
        body = json.dumps(
            [
                2,
                record_id,
                record.event_type,
                record.agent_id,
                record.agent_type,
                record.session_id,
                record.target,
                record.metadata,
                record.created_at.isoformat(),
                record.entity,
                record.entity_id,
                record.digest,
                prev_hash,
            ],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest(), 2

    return rehash


def _rewrite_from(app: App, records: list[AuditRecord], start: int, rehash: Hasher) -> None:
    """Rehash and relink every record from position ``start`` on, as an attacker would."""
    prev = records[start - 1].hash if start else GENESIS_HASH
    statements = []
    for record in records[start:]:
        digest, version = rehash(record.id, record, prev)
        statements.append(
            sa.update(audit_log)
            .where(audit_log.c.id == record.id)
            .values(prev_hash=prev, hash=digest, hash_version=version)
        )
        prev = digest
    _tamper(app, *statements)


async def _shift_blame(app: App, history: History) -> tuple[list[AuditRecord], int]:
    """Alice's plan, recorded as Bob's; returns the chain and the position of that record."""
    records = await _records(app)
    position = next(i for i, r in enumerate(records) if r.entity_id == str(history.plan))
    _tamper(
        app,
        sa.update(audit_log).where(audit_log.c.id == records[position].id).values(agent_id="bob"),
    )
    return await _records(app), position


async def test_a_middle_record_rehashed_with_the_old_unkeyed_formula_is_detected(
    backend_app: App, history: History
) -> None:
    records, position = await _shift_blame(backend_app, history)
    _rewrite_from(backend_app, records, position, _unkeyed)
    report = await _detected(backend_app, reason="sealed with the old unkeyed hash")
    assert report["first_break"]["record_id"] == records[position].id
    assert report["checked"] == position


async def test_a_middle_record_rehashed_with_a_wrong_key_is_detected(
    backend_app: App, history: History
) -> None:
    records, position = await _shift_blame(backend_app, history)
    _rewrite_from(backend_app, records, position, _keyed_with(b"guessed-key-" * 4))
    report = await _detected(backend_app, reason="its content was changed")
    assert report["first_break"]["record_id"] == records[position].id


async def test_records_deleted_and_the_rest_renumbered_are_detected(
    backend_app: App, history: History
) -> None:
    records = await _records(backend_app)
    position = next(i for i, r in enumerate(records) if r.entity_id == str(history.note))
    gone = records[position]
    # the private note, its record and the one after it vanish; later ids close the gap
    _tamper(
        backend_app,
        sa.delete(messages).where(messages.c.id == history.note),
        sa.delete(audit_log).where(audit_log.c.id.in_([gone.id, gone.id + 1])),
        # in two steps, so no row meets another's id on the way
        sa.update(audit_log).where(audit_log.c.id > gone.id).values(id=-audit_log.c.id),
        sa.update(audit_log).where(audit_log.c.id < 0).values(id=-audit_log.c.id - 2),
        sa.update(audit_log)
        .where(audit_log.c.id == gone.id)
        .values(prev_hash=records[position - 1].hash),
    )
    report = await _detected(backend_app, reason="its content was changed")
    assert report["first_break"]["record_id"] == gone.id


async def test_an_emptied_audit_table_is_detected(backend_app: App, history: History) -> None:
    _tamper(backend_app, sa.delete(audit_log))
    report = await _detected(backend_app, reason="the audit trail is empty although")
    assert report["checked"] == 0


async def test_the_newest_records_deleted_are_detected_against_the_anchor(
    backend_app: App, history: History
) -> None:
    anchored = await backend_app.audit.anchor_head()
    assert anchored is not None
    records = await _records(backend_app)
    # Bob's message goes, with its record: the rest is a consistent, shorter history
    _tamper(
        backend_app,
        sa.delete(messages).where(messages.c.id == history.done),
        sa.delete(audit_log).where(audit_log.c.id == records[-1].id),
    )
    report = await _detected(backend_app, reason="the newest records were deleted")
    assert report["first_break"]["record_id"] == anchored.id
    assert report["anchor"]["id"] == anchored.id
    # Without the anchor nothing would show: that is what the anchor is for.
    anchor_file = backend_app.settings.data_dir / "audit_anchor"
    anchor_file.unlink()
    assert (await _tool_report(backend_app))["intact"] is True


async def test_a_rewritten_chain_is_detected_against_the_anchor(
    backend_app: App, history: History
) -> None:
    """Even with the key, a chain rewritten up to the anchored head no longer contains it."""
    await backend_app.audit.anchor_head()
    records, position = await _shift_blame(backend_app, history)
    key = backend_app.store.audit_key
    assert key is not None
    _rewrite_from(backend_app, records, position, _keyed_with(key))
    report = await _detected(backend_app, reason="the chain was rewritten")
    assert report["first_break"]["record_id"] == records[-1].id


# --- upgrading a database whose chain predates the key -----------------------------------


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
                digest, _ = _unkeyed(record_id, record, prev)
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
async def upgraded(backend_settings: Settings) -> AsyncIterator[tuple[App, list[int]]]:
    ids = await _legacy_database(backend_settings)
    async with running_app(backend_settings, background=False) as app:
        yield app, ids


async def test_an_old_unkeyed_chain_is_resealed_on_upgrade_and_verifies(
    upgraded: tuple[App, list[int]],
) -> None:
    app, ids = upgraded
    records = await _records(app)
    assert [r.hash_version for r in records] == [2] * len(records)
    assert [r.event_type for r in records[:4]] == [
        "session.created",
        "message.added",
        "message.added",
        "memory.set",
    ]
    baselined = {r.entity for r in records if r.event_type == "audit.baselined"}
    assert {"session", "message", "memory", "identity"} <= baselined
    report = await _tool_report(app)
    assert report["intact"] is True, report["breaks"]
    code, output = await _cli(app.settings)
    assert code == 0, output
    # the old rows are covered from now on
    _tamper(app, sa.update(messages).where(messages.c.id == ids[0]).values(content="rewritten"))
    await _detected(
        app, reason="differs from its last audit record", entity="message", entity_id=str(ids[0])
    )


async def test_an_old_chain_that_does_not_verify_is_not_resealed(
    backend_settings: Settings,
) -> None:
    await _legacy_database(backend_settings)
    engine = create_engine(backend_settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.id == 2).values(agent_id="mallory"))
    engine.dispose()
    async with running_app(backend_settings, background=False) as app:
        records = await _records(app)
        assert [r.hash_version for r in records[:4]] == [1, 1, 1, 1]
        report = await _detected(app, reason="its content was changed")
        assert report["first_break"]["record_id"] == 2


async def test_a_chain_rewritten_unkeyed_is_not_resealed_once_a_head_was_anchored(
    backend_settings: Settings,
) -> None:
    """Rewriting the whole chain the old way, to have the next start reseal it, fails
    when the server anchored a keyed head before."""
    async with running_app(backend_settings, background=False) as app:
        await _history(app)
        await app.audit.anchor_head()
        records = await _records(app)
        _tamper(app, sa.update(messages).values(content="all rewritten"))
        _rewrite_from(app, records, 0, _unkeyed)
    async with running_app(backend_settings, background=False) as app:
        assert {r.hash_version for r in await _records(app)} == {1}  # nothing resealed
        report = await _detected(app, reason="sealed with the old unkeyed hash")
        assert report["first_break"]["record_id"] == 1
