from shared_context_server.app import App
from shared_context_server.domain.models import KeyBinding, Permission
from tests.mcp.conftest import connect_client, fails, ok


async def test_authenticate_then_use_the_token_as_auth_token(app: App, mode: str) -> None:
    _, key = await app.auth.create_api_key(
        "worker-key",
        frozenset(Permission),
        KeyBinding("planner", agent_types=frozenset({"claude"})),
    )
    async with connect_client(app, mode=mode) as client:
        issued = await ok(
            client,
            "authenticate_agent",
            agent_id="planner",
            agent_type="claude",
            api_key=key,
            requested_permissions=["read", "write"],
        )
        assert issued["agent_id"] == "planner"
        assert issued["permissions"] == ["read", "write"]
        assert issued["denied_permissions"] == []
        token = issued["token"]
        session = await ok(client, "create_session", purpose="p", auth_token=token)
        assert session["session"]["created_by"] == "planner"


async def test_permissions_are_trimmed_to_the_keys_maximum(app: App) -> None:
    _, key = await app.auth.create_api_key(
        "read-key", frozenset({Permission.READ}), KeyBinding("a")
    )
    async with connect_client(app) as client:
        issued = await ok(
            client,
            "authenticate_agent",
            agent_id="a",
            api_key=key,
            requested_permissions=["read", "write", "admin"],
        )
        assert issued["permissions"] == ["read"]
        assert issued["denied_permissions"] == ["admin", "write"]
        error = await fails(client, "create_session", purpose="p", auth_token=issued["token"])
        assert error["code"] == "PERMISSION_DENIED"
        only_write = await fails(
            client, "authenticate_agent", agent_id="a", api_key=key, requested_permissions=["write"]
        )
        assert only_write["code"] == "PERMISSION_DENIED"


async def test_bad_keys_and_agent_ids_are_refused(app: App) -> None:
    _, key = await app.auth.create_api_key("k", frozenset({Permission.READ}), KeyBinding("a"))
    async with connect_client(app) as client:
        assert (await fails(client, "authenticate_agent", agent_id="a", api_key="scs_wrong"))[
            "code"
        ] == "AUTH_FAILED"
        assert (await fails(client, "authenticate_agent", agent_id="bad id!", api_key=key))[
            "code"
        ] == "INVALID_INPUT"
        assert (
            await fails(
                client,
                "authenticate_agent",
                agent_id="a",
                api_key=key,
                requested_permissions=["root"],
            )
        )["code"] == "INVALID_INPUT"
    await app.auth.revoke_api_key("k")
    async with connect_client(app) as client:
        assert (await fails(client, "authenticate_agent", agent_id="a", api_key=key))[
            "code"
        ] == "AUTH_FAILED"


async def test_refresh_gives_a_new_token_and_retires_the_old(app: App, mode: str) -> None:
    _, key = await app.auth.create_api_key(
        "k", frozenset({Permission.READ, Permission.WRITE}), KeyBinding("a")
    )
    async with connect_client(app, mode=mode) as client:
        old = (await ok(client, "authenticate_agent", agent_id="a", api_key=key))["token"]
        new = await ok(client, "refresh_token", auth_token=old)
        assert new["token"] != old
        assert new["agent_id"] == "a"
        await ok(client, "list_sessions", auth_token=new["token"])
        assert (await fails(client, "list_sessions", auth_token=old))["code"] == "TOKEN_REVOKED"
        assert (await fails(client, "refresh_token", auth_token=old))["code"] == "TOKEN_REVOKED"


async def test_an_api_key_can_stand_in_for_a_token(app: App) -> None:
    _, key = await app.auth.create_api_key("ci-bot", frozenset({Permission.READ, Permission.WRITE}))
    async with connect_client(app) as client:
        created = await ok(client, "create_session", purpose="p", auth_token=key)
        assert created["session"]["created_by"] == "ci-bot"
