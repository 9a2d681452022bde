"""wait_for_updates: a bounded long-poll on the change feed, through a real client."""

from __future__ import annotations

from typing import Any

import anyio

from shared_context_server.app import App, running_app
from shared_context_server.config import Settings
from tests.mcp.conftest import connect_client, fails, ok, token_for


async def test_news_after_the_cursor_comes_back_at_once(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        cursor = (await ok(alice, "get_messages", session_id=session_id))["feed_cursor"]
        await ok(alice, "add_message", session_id=session_id, content="first")
        await ok(
            alice, "add_message", session_id=session_id, content="hidden", visibility="private"
        )
        await ok(alice, "add_message", session_id=session_id, content="second")
    async with connect_client(app, tokens["bob"], mode=mode) as bob:
        with anyio.fail_after(5):
            news = await ok(bob, "wait_for_updates", session_id=session_id, cursor=cursor)
        assert news["timed_out"] is False
        # Bob's call made him active in the session: that presence change is news too.
        kinds = [u["kind"] for u in news["updates"]]
        assert kinds == ["message_added", "message_added", "presence_changed"]
        assert [u["message"]["content"] for u in news["updates"][:2]] == ["first", "second"]
        assert news["updates"][2]["agent_id"] == "bob"
        # Nothing more after the returned cursor: the private note was skipped over.
        quiet = await ok(
            bob,
            "wait_for_updates",
            session_id=session_id,
            cursor=news["next_cursor"],
            timeout_s=0,
        )
        assert quiet["timed_out"] is True
        assert quiet["count"] == 0
        assert quiet["next_cursor"] == news["next_cursor"]


async def test_a_waiting_agent_wakes_when_another_posts(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        posted: list[str] = []
        ready = anyio.Event()

        async def wait() -> None:
            # Any visible change wakes a waiter (presence too); wait on until the post.
            async with connect_client(app, tokens["bob"], mode=mode) as bob:
                cursor = (await ok(bob, "get_messages", session_id=session_id))["feed_cursor"]
                ready.set()
                while not posted:
                    news = await ok(
                        bob, "wait_for_updates", session_id=session_id, cursor=cursor, timeout_s=20
                    )
                    assert news["timed_out"] is False
                    cursor = news["next_cursor"]
                    posted.extend(
                        u["message"]["content"]
                        for u in news["updates"]
                        if u["kind"] == "message_added"
                    )

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await ready.wait()
                await anyio.sleep(0.2)  # most likely blocked by now; the cursor covers it if not
                await ok(alice, "add_message", session_id=session_id, content="wake up")
        assert posted == ["wake up"]


async def test_a_wait_times_out_with_progress_and_nothing_else(
    app: App, tokens: dict[str, str]
) -> None:
    progress: list[float] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(done)

    async with connect_client(app, tokens["bob"]) as bob:
        result = await bob.call_tool(
            "wait_for_updates", {"timeout_s": 1.5}, progress_callback=on_progress
        )
    assert result.structured_content is not None
    assert result.structured_content["timed_out"] is True
    assert progress


async def test_waits_see_only_what_the_caller_may_see(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        cursor = (await ok(alice, "get_context", session_id=session_id))["feed_cursor"]
        await ok(alice, "add_message", session_id=session_id, content="x", visibility="private")
        await ok(alice, "add_message", session_id=session_id, content="y", visibility="agent_only")

    def posted(news: dict[str, Any]) -> list[str]:
        return [u["message"]["content"] for u in news["updates"] if u["kind"] == "message_added"]

    async with connect_client(app, tokens["carol"]) as carol:
        assert posted(await ok(carol, "wait_for_updates", cursor=cursor, timeout_s=0)) == []
    async with connect_client(app, tokens["bob"]) as bob:
        assert posted(await ok(bob, "wait_for_updates", cursor=cursor, timeout_s=0)) == ["y"]


async def test_wait_input_errors(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["bob"]) as bob:
        assert (await fails(bob, "wait_for_updates", timeout_s=26))["code"] == "LIMIT_EXCEEDED"
        assert (await fails(bob, "wait_for_updates", session_id="nope", timeout_s=0))[
            "code"
        ] == "SESSION_NOT_FOUND"
    async with connect_client(app) as anonymous:
        assert (await fails(anonymous, "wait_for_updates", timeout_s=0))["code"] == (
            "AUTH_REQUIRED"
        )


async def test_the_timeout_bound_follows_scs_wait_max_seconds(backend_settings: Settings) -> None:
    settings = backend_settings.model_copy(update={"wait_max_seconds": 40.0})
    async with (
        running_app(settings, background=False) as app,
        connect_client(app, token_for(app, "alice")) as alice,
    ):
        schema = {t.name: t for t in (await alice.list_tools()).tools}["wait_for_updates"]
        timeout = schema.input_schema["properties"]["timeout_s"]
        assert (timeout["maximum"], timeout["default"]) == (40.0, 20.0)
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        cursor = (await ok(alice, "get_messages", session_id=session_id))["feed_cursor"]
        await ok(alice, "add_message", session_id=session_id, content="news")
        # News after the cursor: a 30 s timeout is accepted and returns at once.
        with anyio.fail_after(10):
            news = await ok(
                alice, "wait_for_updates", session_id=session_id, cursor=cursor, timeout_s=30
            )
        assert news["timed_out"] is False
        over = await fails(alice, "wait_for_updates", timeout_s=40.5)
        assert over["code"] == "LIMIT_EXCEEDED"


async def test_the_default_bound_refuses_a_timeout_over_25_s(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        schema = {t.name: t for t in (await alice.list_tools()).tools}["wait_for_updates"]
        assert schema.input_schema["properties"]["timeout_s"]["maximum"] == 25.0
        assert (await fails(alice, "wait_for_updates", timeout_s=30))["code"] == "LIMIT_EXCEEDED"


async def test_a_bound_below_the_usual_timeout_is_also_the_default(
    backend_settings: Settings,
) -> None:
    settings = backend_settings.model_copy(update={"wait_max_seconds": 0.2})
    async with (
        running_app(settings, background=False) as app,
        connect_client(app, token_for(app, "alice")) as alice,
    ):
        schema = {t.name: t for t in (await alice.list_tools()).tools}["wait_for_updates"]
        assert schema.input_schema["properties"]["timeout_s"]["default"] == 0.2
        with anyio.fail_after(10):
            assert (await ok(alice, "wait_for_updates"))["timed_out"] is True
