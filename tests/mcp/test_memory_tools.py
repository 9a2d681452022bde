from shared_context_server.app import App
from tests.mcp.conftest import connect_client, fails, ok


async def test_set_get_list_and_delete_memory(app: App, tokens: dict[str, str], mode: str) -> None:
    async with connect_client(app, tokens["alice"], mode=mode) as client:
        session_id = (await ok(client, "create_session", purpose="s"))["session"]["id"]
        value = {"steps": [1, 2, 3], "done": False, "note": None}
        entry = (await ok(client, "set_memory", key="plan", value=value, metadata={"v": 1}))[
            "entry"
        ]
        assert entry["value"] == value
        assert entry["session_id"] is None
        await ok(client, "set_memory", key="plan", value="session plan", session_id=session_id)
        await ok(client, "set_memory", key="task.1", value=1)
        await ok(client, "set_memory", key="task.2", value=[2])
        await ok(client, "set_memory", key="other", value=3.5)

        assert (await ok(client, "get_memory", key="plan"))["entry"]["value"] == value
        scoped = await ok(client, "get_memory", key="plan", session_id=session_id)
        assert scoped["entry"]["value"] == "session plan"

        prefix = await ok(client, "list_memory", pattern="task.")
        assert [e["key"] for e in prefix["entries"]] == ["task.1", "task.2"]
        glob = await ok(client, "list_memory", pattern="*a*")
        assert [e["key"] for e in glob["entries"]] == ["plan", "task.1", "task.2"]
        everything = await ok(client, "list_memory", all_scopes=True)
        assert everything["count"] == 5
        in_session = await ok(client, "list_memory", session_id=session_id)
        assert [e["key"] for e in in_session["entries"]] == ["plan"]

        await ok(client, "delete_memory", key="plan")
        assert (await fails(client, "get_memory", key="plan"))["code"] == "MEMORY_NOT_FOUND"
        assert (await fails(client, "delete_memory", key="plan"))["code"] == "MEMORY_NOT_FOUND"


async def test_overwrite_false_refuses_an_existing_key(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        await ok(client, "set_memory", key="k", value=1)
        error = await fails(client, "set_memory", key="k", value=2, overwrite=False)
        assert error["code"] == "KEY_EXISTS"
        assert (await ok(client, "get_memory", key="k"))["entry"]["value"] == 1


async def test_memory_belongs_to_its_owner_only(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as alice:
        await ok(alice, "set_memory", key="secret", value="alice's")
    async with connect_client(app, tokens["root"]) as root:
        assert (await fails(root, "get_memory", key="secret"))["code"] == "MEMORY_NOT_FOUND"
        assert (await ok(root, "list_memory", all_scopes=True))["count"] == 0
        result = await root.call_tool("get_memory", {"key": "secret", "agent_id": "alice"})
        assert result.is_error


async def test_memory_input_errors(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["alice"]) as client:
        assert (await fails(client, "set_memory", key="has space", value=1))["code"] == (
            "INVALID_INPUT"
        )
        assert (await fails(client, "set_memory", key="k" * 256, value=1))["code"] == (
            "LIMIT_EXCEEDED"
        )
        big = "x" * (1024 * 1024 + 1)
        assert (await fails(client, "set_memory", key="big", value=big))["code"] == (
            "LIMIT_EXCEEDED"
        )
        assert (await fails(client, "set_memory", key="k", value=1, expires_in=0))["code"] == (
            "INVALID_INPUT"
        )
        assert (await fails(client, "set_memory", key="k", value=1, expires_in=400 * 24 * 3600))[
            "code"
        ] == "LIMIT_EXCEEDED"
        assert (await fails(client, "set_memory", key="k", value=1, session_id="nope"))[
            "code"
        ] == "SESSION_NOT_FOUND"
        assert (await ok(client, "list_memory", all_scopes=True))["count"] == 0


async def test_a_reader_may_read_but_not_write_memory(app: App, tokens: dict[str, str]) -> None:
    async with connect_client(app, tokens["reader"]) as client:
        assert (await fails(client, "set_memory", key="k", value=1))["code"] == (
            "PERMISSION_DENIED"
        )
        assert (await ok(client, "list_memory"))["count"] == 0
