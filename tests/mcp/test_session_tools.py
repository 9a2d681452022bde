from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok


async def test_create_get_list_and_update_a_session(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        created = await ok(client, "create_session", purpose="fix the build", metadata={"pr": 7})
        session = created["session"]
        assert session["created_by"] == "alice"
        assert session["status"] == "active"
        assert session["metadata"] == {"pr": 7}

        got = await ok(client, "get_session", session_id=session["id"])
        assert got["session"] == session

        listed = await ok(client, "list_sessions")
        assert [s["id"] for s in listed["sessions"]] == [session["id"]]

        updated = await ok(
            client, "update_session", session_id=session["id"], status="completed", purpose="done"
        )
        assert updated["session"]["status"] == "completed"
        assert updated["session"]["purpose"] == "done"

        completed = await ok(client, "list_sessions", status="completed")
        assert completed["count"] == 1
        assert (await ok(client, "list_sessions", status="active"))["count"] == 0


async def test_list_sessions_pages_and_filters_to_my_own(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        for n in range(3):
            await ok(alice, "create_session", purpose=f"alice {n}")
    async with connect_client(app, tokens["bob"]) as bob:
        await ok(bob, "create_session", purpose="bob's")
        page = await ok(bob, "list_sessions", limit=2)
        assert page["count"] == 2
        assert page["has_more"] is True
        rest = await ok(bob, "list_sessions", limit=2, offset=2)
        assert rest["count"] == 2
        assert rest["has_more"] is False
        mine = await ok(bob, "list_sessions", mine=True)
        assert [s["purpose"] for s in mine["sessions"]] == ["bob's"]


async def test_only_the_creator_or_an_admin_may_update_a_session(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
    async with connect_client(app, tokens["bob"]) as bob:
        error = await fails(bob, "update_session", session_id=session_id, status="archived")
        assert error["code"] == "PERMISSION_DENIED"
    async with connect_client(app, tokens["root"]) as root:
        await ok(root, "update_session", session_id=session_id, status="archived")


async def test_session_errors_have_precise_codes(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        assert (await fails(client, "get_session", session_id="nope"))["code"] == (
            "SESSION_NOT_FOUND"
        )
        assert (await fails(client, "create_session", purpose=""))["code"] == "INVALID_INPUT"
        assert (await fails(client, "create_session", purpose="x" * 1_001))["code"] == (
            "LIMIT_EXCEEDED"
        )
        assert (await fails(client, "create_session", purpose="p", metadata=[1]))["code"] == (
            "INVALID_INPUT"
        )
        deep: dict[str, object] = {}
        node = deep
        for _ in range(20):
            node["x"] = {}
            node = node["x"]  # type: ignore[assignment]
        assert (await fails(client, "create_session", purpose="p", metadata=deep))["code"] == (
            "LIMIT_EXCEEDED"
        )
        session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
        assert (await fails(client, "update_session", session_id=session_id))["code"] == (
            "INVALID_INPUT"
        )
        assert (await fails(client, "update_session", session_id=session_id, status="gone"))[
            "code"
        ] == "INVALID_INPUT"


async def test_a_reader_cannot_create_sessions(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["reader"]) as client:
        error = await fails(client, "create_session", purpose="p")
    assert error["code"] == "PERMISSION_DENIED"
    assert error["details"]["required"] == "write"
