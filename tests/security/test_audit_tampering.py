"""Security: someone with write access to the database (but not to the data directory,
where the audit key and the anchor live) edits data or the audit trail behind the
server's back. Every case is detected by ``verify_audit_log`` through a real MCP client
and by the offline ``scs audit verify`` (exit 1), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from shared_context_server.app import App
from shared_context_server.domain.audit import AuditEvent, AuditRecord, system_audit
from shared_context_server.domain.models import Permission
from shared_context_server.services.auth import revoke_token
from shared_context_server.services.memory import purge_expired
from shared_context_server.storage.tables import (
    agent_memory,
    api_keys,
    audit_log,
    messages,
    revoked_tokens,
    sessions,
)
from tests.security.audit_checks import (
    ALICE,
    BOB,
    History,
    chain_of,
    cli_verify,
    detected,
    keyed_with,
    rewrite_from,
    tamper,
    tool_report,
    unkeyed,
    write_history,
)


@pytest.fixture
async def history(backend_app: App) -> History:
    return await write_history(backend_app)


async def test_an_intact_database_verifies(backend_app: App, history: History) -> None:
    report = await tool_report(backend_app)
    assert report["intact"] is True, report["breaks"]
    # keys (bootstrap, worker), worker's identity, the session, three messages, one memory entry
    assert report["rows_checked"] == 8
    code, output = await cli_verify(backend_app.settings)
    assert code == 0, output
    assert "audit trail intact" in output


async def test_edited_message_content_is_detected(backend_app: App, history: History) -> None:
    tamper(
        backend_app,
        sa.update(messages).where(messages.c.id == history.plan).values(content="plan: B only"),
    )
    await detected(
        backend_app,
        reason="differs from its last audit record",
        entity="message",
        entity_id=str(history.plan),
    )


async def test_an_edited_message_sender_is_detected(backend_app: App, history: History) -> None:
    tamper(
        backend_app, sa.update(messages).where(messages.c.id == history.done).values(sender="alice")
    )
    await detected(
        backend_app,
        reason="differs from its last audit record",
        entity="message",
        entity_id=str(history.done),
    )


async def test_an_edited_message_visibility_is_detected(backend_app: App, history: History) -> None:
    tamper(
        backend_app,
        sa.update(messages).where(messages.c.id == history.note).values(visibility="public"),
    )
    await detected(
        backend_app,
        reason="differs from its last audit record",
        entity="message",
        entity_id=str(history.note),
    )


async def test_an_edited_memory_value_is_detected(backend_app: App, history: History) -> None:
    tamper(backend_app, sa.update(agent_memory).values(value="B"))
    await detected(
        backend_app,
        reason="differs from its last audit record",
        entity="memory",
        entity_id=f"alice/{history.session_id}/step",
    )


async def test_widened_key_permissions_are_detected(backend_app: App, history: History) -> None:
    tamper(
        backend_app,
        sa.update(api_keys)
        .where(api_keys.c.name == "worker-key")
        .values(permissions=["admin", "read", "write"]),
    )
    await detected(
        backend_app,
        reason="differs from its last audit record",
        entity="api_key",
        entity_id="worker-key",
    )


async def test_an_edited_session_status_is_detected(backend_app: App, history: History) -> None:
    tamper(backend_app, sa.update(sessions).values(status="archived"))
    await detected(
        backend_app,
        reason="differs from its last audit record",
        entity="session",
        entity_id=history.session_id,
    )


async def test_a_deleted_message_is_detected(backend_app: App, history: History) -> None:
    tamper(backend_app, sa.delete(messages).where(messages.c.id == history.note))
    await detected(backend_app, reason="is missing", entity="message", entity_id=str(history.note))


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
    tamper(backend_app, sa.insert(messages).values(row))
    await detected(
        backend_app,
        reason="has no audit record",
        entity="message",
        entity_id=str(history.done + 1),
    )


# --- the chain itself ---------------------------------------------------------------------


async def _shift_blame(app: App, history: History) -> tuple[list[AuditRecord], int]:
    """Alice's plan, recorded as Bob's; returns the chain and the position of that record."""
    records = await chain_of(app)
    position = next(i for i, r in enumerate(records) if r.entity_id == str(history.plan))
    tamper(
        app,
        sa.update(audit_log).where(audit_log.c.id == records[position].id).values(agent_id="bob"),
    )
    return await chain_of(app), position


async def test_a_middle_record_rehashed_with_the_old_unkeyed_formula_is_detected(
    backend_app: App, history: History
) -> None:
    records, position = await _shift_blame(backend_app, history)
    rewrite_from(backend_app, records, position, unkeyed)
    report = await detected(backend_app, reason="sealed with the old unkeyed hash")
    assert report["first_break"]["record_id"] == records[position].id
    assert report["checked"] == position


async def test_a_middle_record_rehashed_with_a_wrong_key_is_detected(
    backend_app: App, history: History
) -> None:
    records, position = await _shift_blame(backend_app, history)
    rewrite_from(backend_app, records, position, keyed_with(b"guessed-key-" * 4))
    report = await detected(backend_app, reason="its content was changed")
    assert report["first_break"]["record_id"] == records[position].id


async def test_records_deleted_and_the_rest_renumbered_are_detected(
    backend_app: App, history: History
) -> None:
    records = await chain_of(backend_app)
    position = next(i for i, r in enumerate(records) if r.entity_id == str(history.note))
    gone = records[position]
    # the private note, its record and the one after it vanish; later ids close the gap
    tamper(
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
    report = await detected(backend_app, reason="its content was changed")
    assert report["first_break"]["record_id"] == gone.id


async def test_an_emptied_audit_table_is_detected(backend_app: App, history: History) -> None:
    tamper(backend_app, sa.delete(audit_log))
    report = await detected(backend_app, reason="the audit trail is empty although")
    assert report["checked"] == 0


async def test_the_newest_records_deleted_are_detected_against_the_anchor(
    backend_app: App, history: History
) -> None:
    anchored = await backend_app.audit.anchor_head()
    assert anchored is not None
    records = await chain_of(backend_app)
    # Bob's message goes, with its record: the rest is a consistent, shorter history
    tamper(
        backend_app,
        sa.delete(messages).where(messages.c.id == history.done),
        sa.delete(audit_log).where(audit_log.c.id == records[-1].id),
    )
    report = await detected(backend_app, reason="the newest records were deleted")
    assert report["first_break"]["record_id"] == anchored.id
    assert report["anchor"]["id"] == anchored.id
    # Without the anchor nothing would show: that is what the anchor is for.
    anchor_file = backend_app.settings.data_dir / "audit_anchor"
    anchor_file.unlink()
    assert (await tool_report(backend_app))["intact"] is True


async def test_a_rewritten_chain_is_detected_against_the_anchor(
    backend_app: App, history: History
) -> None:
    """Even with the key, a chain rewritten up to the anchored head no longer contains it."""
    await backend_app.audit.anchor_head()
    records, position = await _shift_blame(backend_app, history)
    key = backend_app.store.audit_key
    assert key is not None
    rewrite_from(backend_app, records, position, keyed_with(key))
    report = await detected(backend_app, reason="the chain was rewritten")
    assert report["first_break"]["record_id"] == records[-1].id


async def test_anchoring_keeps_the_old_anchor_when_the_chain_was_cut_and_regrown(
    backend_app: App, history: History, caplog: pytest.LogCaptureFixture
) -> None:
    """Records from the anchored one on deleted (and Bob's message with them), then the
    server writes records under the same ids: the anchor is not moved past the break."""
    app = backend_app
    anchored = await app.audit.anchor_head()
    assert anchored is not None
    tamper(
        app,
        sa.delete(messages).where(messages.c.id == history.done),
        sa.delete(audit_log).where(audit_log.c.id >= anchored.id),
    )
    await app.messages.add(BOB, history.session_id, "B started")
    await app.messages.add(BOB, history.session_id, "B still going")
    head = await app.store.read(lambda tx: tx.audit.head())
    assert head is not None
    assert head[0] > anchored.id
    with caplog.at_level(logging.INFO, logger="shared_context_server.services.audit"):
        assert await app.audit.anchor_head() is None
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            f"audit chain no longer holds anchored record #{anchored.id}: not anchoring "
            "the head; `scs audit verify` reports where it breaks",
        )
    ]
    kept = json.loads((app.settings.data_dir / "audit_anchor").read_text())
    assert (kept["id"], kept["hash"]) == (anchored.id, anchored.hash)
    report = await detected(app, reason="differs from the head anchored at")
    assert report["first_break"]["record_id"] == anchored.id
    assert await app.audit.anchor_head() is None  # still not: verify keeps reporting it
    await detected(app, reason="differs from the head anchored at")


# --- revoked tokens -----------------------------------------------------------------------


async def _is_revoked(app: App, jti: str) -> bool:
    return await app.store.read(lambda tx: tx.identity.is_token_revoked(jti))


async def _revoke(app: App, jti: str, expires_at: datetime, event: AuditEvent) -> None:
    await app.store.write(lambda tx: revoke_token(tx, jti, expires_at, event))


async def _revoked_jti(app: App) -> str:
    records = [r for r in await chain_of(app) if r.entity == "revoked_token"]
    assert records
    assert records[-1].digest is not None
    assert records[-1].entity_id is not None
    return records[-1].entity_id


async def test_an_undone_refresh_revocation_is_detected(backend_app: App, history: History) -> None:
    app = backend_app
    old, _ = app.auth.issue_token(ALICE)
    await app.auth.refresh(old)
    jti = await _revoked_jti(app)
    assert await _is_revoked(app, jti)
    assert (await tool_report(app))["intact"] is True
    tamper(app, sa.delete(revoked_tokens))
    assert not await _is_revoked(app, jti)  # the old token would work again
    await detected(app, reason="is missing", entity="revoked_token", entity_id=jti)


async def test_an_undone_delegation_revocation_is_detected(
    backend_app: App, history: History
) -> None:
    app = backend_app
    delegated = await app.delegation.delegate(
        ALICE, "helper", None, history.session_id, frozenset({Permission.READ}), 600
    )
    await app.delegation.revoke(ALICE, delegated.jti)
    assert await _revoked_jti(app) == delegated.jti
    assert (await tool_report(app))["intact"] is True
    tamper(app, sa.delete(revoked_tokens).where(revoked_tokens.c.jti == delegated.jti))
    await detected(app, reason="is missing", entity="revoked_token", entity_id=delegated.jti)


async def test_a_token_revoked_twice_records_one_digest_and_the_sweep_keeps_the_trail(
    backend_app: App, history: History
) -> None:
    app = backend_app
    now = app.clock.now()
    for _ in range(2):
        await _revoke(app, "jti-twice", now + timedelta(hours=1), system_audit("test.revoked", now))
    twice = [r for r in await chain_of(app) if r.event_type == "test.revoked"]
    assert [(r.entity, r.entity_id) for r in twice] == [
        ("revoked_token", "jti-twice"),
        (None, None),
    ]
    # expired revocations are swept without a record each; the trail stays intact
    expired = system_audit("auth.token_revoked", now, target="jti-expired")
    await _revoke(app, "jti-expired", now - timedelta(seconds=1), expired)
    swept = app.clock.now()
    await app.store.write(lambda tx: purge_expired(tx, swept))
    assert not await _is_revoked(app, "jti-expired")
    assert await _is_revoked(app, "jti-twice")
    report = await tool_report(app)
    assert report["intact"] is True, report["breaks"]
    # an unexpired revocation deleted behind the server's back is still a break
    tamper(app, sa.delete(revoked_tokens))
    await detected(app, reason="is missing", entity="revoked_token", entity_id="jti-twice")
