"""The audit tools through a real client: a multi-agent flow is recorded step by step, and
verify_audit_log finds an edited or a deleted record."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared_context_server.app import App
from shared_context_server.domain.models import KeyBinding, Permission
from shared_context_server.storage.tables import audit_log
from tests.mcp.conftest import connect_client, fails, ok


async def _multi_agent_flow(app: App, tokens: dict[str, str], mode: str) -> str:
    """Alice authenticates with a key, opens a session and writes; Bob joins; a stranger
    fails to authenticate. Returns the session id."""
    binding = KeyBinding(agent_id="alice", agent_types=frozenset({"claude"}))
    _, key = await app.auth.create_api_key("team-key", frozenset(Permission), binding)
    async with connect_client(app, mode=mode) as anonymous:
        issued = await ok(
            anonymous,
            "authenticate_agent",
            agent_id="alice",
            agent_type="claude",
            api_key=key,
            requested_permissions=["read", "write"],
        )
        await fails(anonymous, "authenticate_agent", agent_id="mallory", api_key="scs_wrong")
    async with connect_client(app, issued["token"], mode=mode) as alice:
        session_id = (await ok(alice, "create_session", purpose="ship it"))["session"]["id"]
        await ok(alice, "add_message", session_id=session_id, content="plan: A then B")
        await ok(alice, "set_memory", key="step", value="A", session_id=session_id)
    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        await ok(bob, "add_message", session_id=session_id, content="B done")
    return str(session_id)


def _steps(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["event_type"], r["agent_id"]) for r in reversed(records)]


async def test_the_audit_log_records_each_step_of_a_multi_agent_flow(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    session_id = await _multi_agent_flow(app, tokens, mode)
    async with connect_client(app, tokens["root"], mode=mode) as root:
        everything = await ok(root, "get_audit_log", limit=1_000)
        in_session = await ok(root, "get_audit_log", session_id=session_id)
        bobs = await ok(root, "get_audit_log", agent_id="bob")
        auth = await ok(root, "get_audit_log", event_type="auth.failed")
        latest = await ok(root, "get_audit_log", limit=1)

    assert _steps(everything["records"])[-8:] == [
        ("api_key.created", "system"),
        ("identity.registered", "system"),
        ("auth.token_issued", "alice"),
        ("auth.failed", "mallory"),
        ("session.created", "alice"),
        ("message.added", "alice"),
        ("memory.set", "alice"),
        ("message.added", "bob"),
    ]
    assert _steps(in_session["records"]) == [
        ("session.created", "alice"),
        ("message.added", "alice"),
        ("memory.set", "alice"),
        ("message.added", "bob"),
    ]
    assert _steps(bobs["records"]) == [("message.added", "bob")]
    assert bobs["records"][0]["session_id"] == session_id
    assert _steps(auth["records"]) == [("auth.failed", "mallory")]
    # each earlier read was audited; the page itself never contains its own record
    assert _steps(latest["records"]) == [("audit.read", "root")]
    assert latest["has_more"] is True
    assert latest["next_before_id"] == latest["records"][0]["id"]
    record = in_session["records"][0]
    assert record["prev_hash"] != record["hash"]
    assert len(record["hash"]) == 64
    assert (record["entity"], record["hash_version"]) == ("message", 2)
    assert record["entity_id"] == record["target"]
    assert len(record["digest"]) == 64


async def test_the_log_can_be_narrowed_by_time_and_paged(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    session_id = await _multi_agent_flow(app, tokens, mode)
    async with connect_client(app, tokens["root"], mode=mode) as root:
        first = await ok(root, "get_audit_log", session_id=session_id, limit=3)
        rest = await ok(
            root,
            "get_audit_log",
            session_id=session_id,
            limit=3,
            before_id=first["next_before_id"],
        )
        created_at = first["records"][-1]["created_at"]
        since = await ok(root, "get_audit_log", session_id=session_id, start_time=created_at)
        until = await ok(root, "get_audit_log", session_id=session_id, end_time=created_at)
        assert (await fails(root, "get_audit_log", limit=1_001))["code"] == "LIMIT_EXCEEDED"
        naive = await fails(root, "get_audit_log", start_time="2026-01-01T00:00:00")
        assert naive["code"] == "INVALID_INPUT"
    assert (first["count"], first["has_more"], rest["count"], rest["has_more"]) == (
        3,
        True,
        1,
        False,
    )
    assert since["count"] + until["count"] == 5  # the boundary record is in both
    assert since["records"][-1]["created_at"] == until["records"][0]["created_at"]


async def test_non_admins_may_not_read_or_verify_the_log(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    for agent in ("alice", "carol", "reader"):
        async with connect_client(app, tokens[agent], mode=mode) as client:
            assert (await fails(client, "get_audit_log"))["code"] == "PERMISSION_DENIED"
            assert (await fails(client, "verify_audit_log"))["code"] == "PERMISSION_DENIED"
    async with connect_client(app, mode=mode) as nobody:
        assert (await fails(nobody, "get_audit_log"))["code"] == "AUTH_REQUIRED"


async def test_verify_audit_log_catches_an_edited_record(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    session_id = await _multi_agent_flow(app, tokens, mode)
    async with connect_client(app, tokens["root"], mode=mode) as root:
        intact = await ok(root, "verify_audit_log")
        assert intact["intact"] is True
        assert (intact["first_break"], intact["breaks"], intact["break_count"]) == (None, [], 0)
        assert intact["checked"] == intact["last_id"] > 5
        # the bootstrap and team keys, alice's identity, the session, 2 messages, 1 memory
        assert intact["rows_checked"] == 7
        assert intact["anchor"] is None
        records = (await ok(root, "get_audit_log", session_id=session_id))["records"]
        alice_wrote = next(
            r for r in records if (r["event_type"], r["agent_id"]) == ("message.added", "alice")
        )
        with app.store.engine.begin() as conn:  # someone shifts the blame in the database
            conn.execute(
                sa.update(audit_log)
                .where(audit_log.c.id == alice_wrote["id"])
                .values(agent_id="bob")
            )
        report = await ok(root, "verify_audit_log")
        assert report["intact"] is False
        assert report["first_break"] == {
            "record_id": alice_wrote["id"],
            "reason": "its content was changed (its hash does not verify with the audit key)",
            "entity": None,
            "entity_id": None,
        }
        assert report["breaks"] == [report["first_break"]]
        assert report["checked"] == alice_wrote["id"] - 1


async def test_verify_audit_log_catches_a_deleted_record(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    session_id = await _multi_agent_flow(app, tokens, mode)
    async with connect_client(app, tokens["root"], mode=mode) as root:
        records = (await ok(root, "get_audit_log", session_id=session_id))["records"]
        middle = records[2]["id"]  # alice's message, between the session and her memory
        with app.store.engine.begin() as conn:
            conn.execute(sa.delete(audit_log).where(audit_log.c.id == middle))
        report = await ok(root, "verify_audit_log")
        assert report["intact"] is False
        assert report["first_break"]["record_id"] == middle
        assert "missing" in report["first_break"]["reason"]


async def test_the_activity_summary_shows_what_each_agent_did(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    await _multi_agent_flow(app, tokens, mode)
    async with connect_client(app, tokens["root"], mode=mode) as root:
        summary = await ok(root, "get_agent_activity_summary", time_window="1h")
        only_bob = await ok(root, "get_agent_activity_summary", agent_id="bob")
    by_agent = {a["agent_id"]: a for a in summary["agents"]}
    assert summary["time_window"] == "1h"
    assert {"alice", "bob", "mallory", "system"} <= set(by_agent)
    alice = by_agent["alice"]
    assert alice["event_types"] == {
        "auth.token_issued": 1,
        "memory.set": 1,
        "message.added": 1,
        "session.created": 1,
    }
    assert (alice["event_count"], alice["sessions_touched"], alice["sessions_created"]) == (
        4,
        1,
        1,
    )
    assert alice["agent_types"] == ["claude"]
    assert alice["first_activity"] <= alice["last_activity"]
    assert [a["agent_id"] for a in only_bob["agents"]] == ["bob"]
    assert only_bob["time_window"] == "24h"

    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        own = await ok(bob, "get_agent_activity_summary", time_window="7d")
        assert [(a["agent_id"], a["event_count"]) for a in own["agents"]] == [("bob", 1)]
        invalid = await fails(bob, "get_agent_activity_summary", time_window="2h")
        assert invalid["code"] == "INVALID_INPUT"
