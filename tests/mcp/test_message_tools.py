from typing import Any

from mcp import Client

from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok


async def _session(client: Client) -> str:
    return str((await ok(client, "create_session", purpose="work"))["session"]["id"])


async def test_add_and_read_messages_with_threads_and_metadata(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        session_id = await _session(client)
        first = (
            await ok(
                client,
                "add_message",
                session_id=session_id,
                content="found the bug in parser.py",
                metadata={"file": "parser.py", "line": 42},
                message_type="finding",
            )
        )["message"]
        assert first["sender"] == "alice"
        assert first["sender_type"] == "claude"
        assert first["visibility"] == "public"
        reply = (
            await ok(
                client,
                "add_message",
                session_id=session_id,
                content="fixed",
                parent_message_id=first["id"],
            )
        )["message"]
        assert reply["parent_message_id"] == first["id"]

        got = await ok(client, "get_message", message_id=first["id"])
        assert got["message"] == first

        page = await ok(client, "get_messages", session_id=session_id)
        assert [m["id"] for m in page["messages"]] == [first["id"], reply["id"]]
        assert page["next_cursor"] == reply["id"]
        assert page["has_more"] is False

        findings = await ok(client, "get_messages", session_id=session_id, message_type="finding")
        assert [m["id"] for m in findings["messages"]] == [first["id"]]


async def test_the_sender_comes_from_the_identity_not_the_arguments(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        session_id = await _session(client)
        result = await client.call_tool(
            "add_message", {"session_id": session_id, "content": "hi", "sender": "mallory"}
        )
        assert result.is_error
        assert result.structured_content is not None
        assert result.structured_content["code"] == "INVALID_INPUT"
        message = (await ok(client, "add_message", session_id=session_id, content="hi"))["message"]
        assert message["sender"] == "alice"


async def test_cursor_pages_resume_exactly_where_the_last_one_ended(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        session_id = await _session(client)
        ids = [
            (await ok(client, "add_message", session_id=session_id, content=f"m{n}"))["message"][
                "id"
            ]
            for n in range(7)
        ]
        seen: list[int] = []
        cursor: Any = None
        while True:
            args: dict[str, Any] = {"session_id": session_id, "limit": 3}
            if cursor is not None:
                args["cursor"] = cursor
            page = await ok(client, "get_messages", **args)
            seen += [m["id"] for m in page["messages"]]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
        assert seen == ids
        late = (await ok(client, "add_message", session_id=session_id, content="late"))["message"]
        page = await ok(client, "get_messages", session_id=session_id, cursor=cursor)
        assert [m["id"] for m in page["messages"]] == [late["id"]]
        offset_page = await ok(client, "get_messages", session_id=session_id, limit=2, offset=5)
        assert [m["id"] for m in offset_page["messages"]] == ids[5:7]


async def test_get_context_returns_the_newest_messages_oldest_first(
    app: App, tokens: dict[str, str], mode: str
) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        session_id = await _session(client)
        for n in range(5):
            await ok(client, "add_message", session_id=session_id, content=f"m{n}")
        await ok(client, "add_private_note", session_id=session_id, content="my note")
        context = await ok(client, "get_context", session_id=session_id, limit=3)
        assert [m["content"] for m in context["messages"]] == ["m3", "m4", "my note"]
        assert context["session"]["id"] == session_id
        public = await ok(
            client, "get_context", session_id=session_id, limit=3, include_private=False
        )
        assert [m["content"] for m in public["messages"]] == ["m2", "m3", "m4"]
        older = await ok(client, "get_context", session_id=session_id, limit=2, offset=3)
        assert [m["content"] for m in older["messages"]] == ["m1", "m2"]


async def test_private_notes_are_private(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = await _session(alice)
        note = (await ok(alice, "add_private_note", session_id=session_id, content="secret"))[
            "message"
        ]
        assert note["visibility"] == "private"
        assert note["message_type"] == "note"
    async with connect_client(app, tokens["bob"]) as bob:
        assert (await fails(bob, "get_message", message_id=note["id"]))["code"] == (
            "MESSAGE_NOT_FOUND"
        )
        assert (await ok(bob, "get_messages", session_id=session_id))["count"] == 0


async def test_message_errors_have_precise_codes_and_write_nothing(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        session_id = await _session(client)
        other = await _session(client)
        foreign = (await ok(client, "add_message", session_id=other, content="elsewhere"))[
            "message"
        ]

        def code(error: dict[str, Any]) -> str:
            return str(error["code"])

        assert code(await fails(client, "add_message", session_id="nope", content="x")) == (
            "SESSION_NOT_FOUND"
        )
        assert code(await fails(client, "add_message", session_id=session_id, content="")) == (
            "INVALID_INPUT"
        )
        assert code(await fails(client, "add_message", session_id=session_id, content="   ")) == (
            "INVALID_INPUT"
        )
        oversize = "x" * 100_001
        assert code(
            await fails(client, "add_message", session_id=session_id, content=oversize)
        ) == ("LIMIT_EXCEEDED")
        assert code(
            await fails(
                client,
                "add_message",
                session_id=session_id,
                content="reply",
                parent_message_id=foreign["id"],
            )
        ) == ("INVALID_PARENT")
        assert code(
            await fails(
                client,
                "add_message",
                session_id=session_id,
                content="reply",
                parent_message_id=999_999,
            )
        ) == ("INVALID_PARENT")
        assert code(
            await fails(
                client, "add_message", session_id=session_id, content="x", visibility="secret"
            )
        ) == ("INVALID_INPUT")
        assert code(
            await fails(
                client,
                "add_message",
                session_id=session_id,
                content="x",
                metadata={"blob": "y" * 70_000},
            )
        ) == ("LIMIT_EXCEEDED")
        assert code(await fails(client, "add_message", session_id=session_id, content=12345)) == (
            "INVALID_INPUT"
        )
        assert code(await fails(client, "get_message", message_id=424242)) == "MESSAGE_NOT_FOUND"
        assert code(await fails(client, "get_messages", session_id=session_id, limit=1001)) == (
            "LIMIT_EXCEEDED"
        )
        assert code(await fails(client, "get_messages", session_id="nope")) == ("SESSION_NOT_FOUND")
        assert (await ok(client, "get_messages", session_id=session_id))["count"] == 0


async def test_admin_only_messages_need_admin_to_post(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        session_id = await _session(alice)
        error = await fails(
            alice, "add_message", session_id=session_id, content="x", visibility="admin_only"
        )
        assert error["code"] == "PERMISSION_DENIED"
    async with connect_client(app, tokens["root"]) as root:
        await ok(root, "add_message", session_id=session_id, content="x", visibility="admin_only")


async def test_an_archived_session_refuses_messages_until_reopened(
    app: App, tokens: dict[str, str]
) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        session_id = await _session(client)
        await ok(client, "update_session", session_id=session_id, status="archived")
        error = await fails(client, "add_message", session_id=session_id, content="late")
        assert error["code"] == "SESSION_CLOSED"
        await ok(client, "update_session", session_id=session_id, status="active")
        await ok(client, "add_message", session_id=session_id, content="back")
