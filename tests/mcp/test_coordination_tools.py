"""Presence and session locks through a real MCP client, in both protocol eras."""

from __future__ import annotations

import anyio
import sqlalchemy as sa
from mcp.client.subscriptions import ResourceUpdated

from shared_context_server.app import App
from shared_context_server.clock import FakeClock
from shared_context_server.storage.tables import audit_log
from tests.conftest import ADMIN
from tests.mcp.conftest import connect_client, fails, ok, token_for
from tests.mcp.live import Heard

WORK = "coordinate_session_work"


async def test_the_lock_flow_between_two_agents(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with (
        connect_client(app, tokens["alice"], mode=mode) as alice,
        connect_client(app, tokens["bob"], mode=mode) as bob,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        granted = await ok(
            alice, WORK, session_id=session_id, action="lock", message="refactoring auth"
        )
        lock = granted["lock"]
        assert (lock["holder"], lock["lock_type"], lock["message"]) == (
            "alice",
            "write",
            "refactoring auth",
        )
        assert lock["fencing_token"] >= 1

        refused = await fails(bob, WORK, session_id=session_id, action="lock")
        assert refused["code"] == "SESSION_LOCKED"
        assert refused["details"]["holders"] == ["alice"]
        assert (await fails(bob, WORK, session_id=session_id, action="unlock"))[
            "code"
        ] == "NO_LOCK_HELD"
        status = await ok(bob, WORK, session_id=session_id, action="status")
        assert [held["holder"] for held in status["locks"]] == ["alice"]

        renewed = await ok(alice, WORK, session_id=session_id, action="renew", ttl_seconds=600)
        assert renewed["lock"]["fencing_token"] == lock["fencing_token"]
        assert renewed["lock"]["ttl_seconds"] == 600
        released = await ok(alice, WORK, session_id=session_id, action="unlock")
        assert released["lock"]["holder"] == "alice"

        # Only the session's creator (alice) may make it read-only for everyone else.
        not_bobs = await fails(
            bob, WORK, session_id=session_id, action="lock", lock_type="exclusive"
        )
        assert not_bobs["code"] == "PERMISSION_DENIED"
        alices = await ok(alice, WORK, session_id=session_id, action="lock", lock_type="exclusive")
        assert alices["lock"]["fencing_token"] > lock["fencing_token"]
        locked_out = await fails(bob, "add_message", session_id=session_id, content="hi")
        assert locked_out["code"] == "SESSION_LOCKED"
        note = await ok(alice, WORK, session_id=session_id, action="notify", message="merging now")
        assert note["message"]["message_type"] == "coordination"


async def test_lock_arguments_are_validated_by_the_schema(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        bad_action = await fails(alice, WORK, session_id=session_id, action="steal")
        assert bad_action["code"] == "INVALID_INPUT"
        too_long = await fails(alice, WORK, session_id=session_id, action="lock", ttl_seconds=3601)
        assert too_long["code"] == "LIMIT_EXCEEDED"
        assert (await fails(alice, WORK, session_id="session_nope", action="lock"))[
            "code"
        ] == "SESSION_NOT_FOUND"


async def test_force_unlock_needs_admin_is_audited_and_tells_the_former_holder(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with (
        connect_client(app, tokens["alice"], mode=mode) as alice,
        connect_client(app, tokens["carol"], mode=mode) as carol,
        connect_client(app, tokens["root"], mode=mode) as root,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, WORK, session_id=session_id, action="lock", lock_type="exclusive")
        denied = await fails(carol, WORK, session_id=session_id, action="force_unlock")
        assert denied["code"] == "PERMISSION_DENIED"

        forced = await ok(root, WORK, session_id=session_id, action="force_unlock")
        assert [lock["holder"] for lock in forced["locks"]] == ["alice"]
        assert (await ok(carol, WORK, session_id=session_id, action="status"))["locks"] == []

        page = await ok(alice, "get_messages", session_id=session_id, message_type="coordination")
        [notice] = page["messages"]
        assert (notice["sender"], notice["metadata"]["to"]) == ("root", "alice")
        assert (await fails(alice, WORK, session_id=session_id, action="renew"))[
            "code"
        ] == "NO_LOCK_HELD"
    with app.store.engine.connect() as conn:
        row = conn.execute(
            sa.select(audit_log).where(
                audit_log.c.event_type == "lock.force_released",
                audit_log.c.session_id == session_id,
            )
        ).one()
    assert (row.agent_id, row.target, row.metadata["lock_type"]) == ("root", "alice", "exclusive")


async def test_a_2025_subscriber_hears_of_lock_changes(app: App, tokens: dict[str, str]) -> None:
    heard = Heard()
    async with (
        connect_client(app, tokens["alice"]) as alice,
        connect_client(app, tokens["carol"], message_handler=heard) as carol,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        uri = f"session://{session_id}"
        await carol.subscribe_resource(uri)
        await ok(alice, WORK, session_id=session_id, action="lock")
        await heard.wait_for(lambda: uri in heard.updated)
        count = len(heard.updated)
        await ok(alice, WORK, session_id=session_id, action="unlock")
        await heard.wait_for(lambda: len(heard.updated) > count)


async def test_a_2026_listener_hears_of_lock_changes(app: App, tokens: dict[str, str]) -> None:
    async with (
        connect_client(app, tokens["alice"], mode="2026-07-28") as alice,
        connect_client(app, tokens["carol"], mode="2026-07-28") as carol,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        uri = f"session://{session_id}"
        async with carol.listen(resource_subscriptions=[uri]) as subscription:
            await ok(alice, WORK, session_id=session_id, action="lock", lock_type="read")
            with anyio.fail_after(5):
                assert await subscription.__anext__() == ResourceUpdated(uri=uri)


async def test_an_expired_lock_can_be_taken_over(fake_clock_app: App, clock: FakeClock) -> None:
    app = fake_clock_app
    async with (
        connect_client(app, token_for(app, "alice")) as alice,
        connect_client(app, token_for(app, "bob")) as bob,
    ):
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, WORK, session_id=session_id, action="lock")
        clock.advance(app.settings.lock_heartbeat_seconds - 1)
        await ok(alice, WORK, session_id=session_id, action="renew")
        clock.advance(app.settings.lock_heartbeat_seconds - 1)
        assert (await fails(bob, WORK, session_id=session_id, action="lock"))[
            "code"
        ] == "SESSION_LOCKED"
        clock.advance(1)
        assert (await ok(bob, WORK, session_id=session_id, action="lock"))["lock"][
            "holder"
        ] == "bob"


async def test_presence_is_registered_and_listed_with_permissions_for_admins_and_self(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with (
        connect_client(app, tokens["alice"], mode=mode) as alice,
        connect_client(app, tokens["carol"], mode=mode) as carol,
        connect_client(app, tokens["root"], mode=mode) as root,
    ):
        mine = await ok(alice, "register_agent_presence", status="busy")
        assert mine["agent"]["status"] == "busy"
        assert mine["agent"]["permissions"] == ["read", "write"]
        session_id = (await ok(carol, "create_session", purpose="p"))["session"]["id"]
        await ok(carol, "get_active_agents", session_id=session_id)

        as_carol = await ok(carol, "get_active_agents")
        seen = {agent["agent_id"]: agent for agent in as_carol["agents"]}
        assert seen["alice"]["status"] == "busy"
        assert seen["alice"]["agent_type"] == "claude"
        assert seen["alice"]["permissions"] is None
        assert seen["carol"]["permissions"] == ["read", "write"]
        assert as_carol["window_seconds"] == app.settings.presence_window_seconds

        as_root = await ok(root, "get_active_agents")
        assert {a["agent_id"]: a["permissions"] for a in as_root["agents"]}["alice"] == [
            "read",
            "write",
        ]
        in_session = await ok(root, "get_active_agents", session_id=session_id)
        # Root is now active in the session too: its own call counts.
        assert {a["agent_id"] for a in in_session["agents"]} == {"root", "carol"}
        assert (await fails(alice, "register_agent_presence", status="offline"))[
            "code"
        ] == "INVALID_INPUT"


async def test_an_admin_token_sees_every_agents_permissions(app: App) -> None:
    async with connect_client(app, token_for(app, "ops", "human", ADMIN)) as ops:
        listed = await ok(ops, "get_active_agents")
    assert listed["agents"][0]["permissions"] == ["admin", "read", "write"]
