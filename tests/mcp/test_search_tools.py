from datetime import UTC, datetime, timedelta

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok


async def test_search_context_finds_fuzzy_matches_best_first(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        session_id = (await ok(client, "create_session", purpose="s"))["session"]["id"]
        await ok(client, "add_message", session_id=session_id, content="database migration failed")
        await ok(client, "add_message", session_id=session_id, content="lunch menu for friday")
        await ok(
            client,
            "add_message",
            session_id=session_id,
            content="see ticket",
            metadata={"component": "authentication service"},
        )
        hits = await ok(client, "search_context", session_id=session_id, query="databse migraton")
        assert hits["count"] >= 1
        assert hits["hits"][0]["message"]["content"] == "database migration failed"
        scores = [h["score"] for h in hits["hits"]]
        assert scores == sorted(scores, reverse=True)
        assert len({h["message"]["id"] for h in hits["hits"]}) == len(hits["hits"])

        by_metadata = await ok(
            client, "search_context", session_id=session_id, query="authentication service"
        )
        assert "see ticket" in [h["message"]["content"] for h in by_metadata["hits"]]
        without = await ok(
            client,
            "search_context",
            session_id=session_id,
            query="authentication service",
            search_metadata=False,
            fuzzy_threshold=80,
        )
        assert "see ticket" not in [h["message"]["content"] for h in without["hits"]]


async def test_search_by_sender_and_by_timerange(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="s"))["session"]["id"]
        await ok(alice, "add_message", session_id=session_id, content="from alice")
    async with connect_client(app, tokens["bob"]) as bob:
        await ok(bob, "add_message", session_id=session_id, content="from bob")
        by_bob = await ok(bob, "search_by_sender", session_id=session_id, sender="bob")
        assert [m["content"] for m in by_bob["messages"]] == ["from bob"]

        now = datetime.now(UTC)
        window = await ok(
            bob,
            "search_by_timerange",
            session_id=session_id,
            start_time=(now - timedelta(minutes=5)).isoformat(),
            end_time=(now + timedelta(minutes=5)).isoformat(),
        )
        assert window["count"] == 2
        empty = await ok(
            bob,
            "search_by_timerange",
            session_id=session_id,
            start_time=(now + timedelta(hours=1)).isoformat(),
        )
        assert empty["count"] == 0
        error = await fails(
            bob,
            "search_by_timerange",
            session_id=session_id,
            start_time=(now + timedelta(hours=1)).isoformat(),
            end_time=now.isoformat(),
        )
        assert error["code"] == "INVALID_INPUT"
        naive = await fails(
            bob, "search_by_timerange", session_id=session_id, start_time="2026-01-01T00:00:00"
        )
        assert naive["code"] == "INVALID_INPUT"


async def test_search_rejects_bad_input(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        session_id = (await ok(client, "create_session", purpose="s"))["session"]["id"]
        assert (await fails(client, "search_context", session_id=session_id, query=""))[
            "code"
        ] == "INVALID_INPUT"
        assert (await fails(client, "search_context", session_id=session_id, query="q", limit=201))[
            "code"
        ] == "LIMIT_EXCEEDED"
        assert (
            await fails(
                client, "search_context", session_id=session_id, query="q", fuzzy_threshold=101
            )
        )["code"] == "LIMIT_EXCEEDED"
        assert (await fails(client, "search_context", session_id="nope", query="q"))["code"] == (
            "SESSION_NOT_FOUND"
        )
