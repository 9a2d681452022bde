"""Every call naming a session makes its caller active there (docs/tools.md, Presence):
any tool with a ``session_id``, a read of ``session://{id}``, a subscription to it; never in
a session the caller may not read. Through real clients, on both backends."""

from __future__ import annotations

from datetime import timedelta

from shared_context_server.app import App
from tests.conftest import ADMIN
from tests.mcp.conftest import connect_client, fails, ok, token_for


async def _active_in(app: App, session_id: str) -> set[str]:
    """Who is active in the session, as an admin observer sees it (leaving the observer out:
    its own call counts too)."""
    async with connect_client(app, token_for(app, "observer", "human", ADMIN)) as observer:
        listed = await ok(observer, "get_active_agents", session_id=session_id)
    return {agent["agent_id"] for agent in listed["agents"]} - {"observer"}


async def test_every_tool_naming_a_session_records_its_caller_there(backend_app: App) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice")) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
    # Creating names no session: the creator is not yet active in it.
    assert await _active_in(app, session_id) == set()
    calls: dict[str, tuple[str, dict[str, object]]] = {
        "poster": ("add_message", {"content": "hello"}),
        "reader": ("get_messages", {}),
        "searcher": ("search_context", {"query": "hello"}),
        "rememberer": ("set_memory", {"key": "k", "value": 1}),
        "looker": ("get_session", {}),
        "waiter": ("wait_for_updates", {"timeout_s": 0}),
        "locker": ("coordinate_session_work", {"action": "status"}),
    }
    for agent_id, (tool, arguments) in calls.items():
        async with connect_client(app, token_for(app, agent_id)) as client:
            await ok(client, tool, session_id=session_id, **arguments)
    assert await _active_in(app, session_id) == set(calls)


async def test_reading_or_subscribing_to_a_session_resource_records_the_caller(
    backend_app: App,
) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice")) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
    uri = f"session://{session_id}"
    async with connect_client(app, token_for(app, "reader")) as reader:
        await reader.read_resource(uri)
    async with connect_client(app, token_for(app, "subscriber")) as subscriber:
        await subscriber.subscribe_resource(uri)
    async with (
        connect_client(app, token_for(app, "listener"), mode="2026-07-28") as listener,
        listener.listen(resource_subscriptions=[uri]),
    ):
        pass  # the stream is acknowledged once authorised
    assert await _active_in(app, session_id) == {"reader", "subscriber", "listener"}


async def test_a_session_the_caller_may_not_read_or_that_is_not_there_records_nothing(
    backend_app: App,
) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice")) as alice:
        own = (await ok(alice, "create_session", purpose="own"))["session"]["id"]
        other = (await ok(alice, "create_session", purpose="other"))["session"]["id"]
        delegated = await ok(alice, "delegate_token", agent_id="sub", session_id=own)
    async with connect_client(app, delegated["token"]) as sub:
        refused = await fails(sub, "get_messages", session_id=other)
        assert refused["code"] == "PERMISSION_DENIED"
        with_memory = await fails(sub, "set_memory", key="k", value=1, session_id=other)
        assert with_memory["code"] == "PERMISSION_DENIED"
        await ok(sub, "get_messages", session_id=own)
    assert await _active_in(app, other) == set()
    assert await _active_in(app, own) == {"alice:sub", "alice"}

    async with connect_client(app, token_for(app, "bob")) as bob:
        missing = await fails(bob, "get_messages", session_id="no-such-session")
        assert missing["code"] == "SESSION_NOT_FOUND"
        await ok(bob, "list_memory", session_id="no-such-session")  # scoped memory: no check
    window_start = app.clock.now() - timedelta(seconds=app.settings.presence_window_seconds)
    in_missing = await app.store.read(
        lambda tx: tx.presence.list(window_start, session_id="no-such-session")
    )
    assert in_missing == []
    # The agent itself was seen all the same.
    seen = await app.store.read(lambda tx: tx.presence.list(window_start))
    assert "bob" in {presence.agent_id for presence in seen}
