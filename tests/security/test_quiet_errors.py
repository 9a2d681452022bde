"""Expected errors are quiet (issue 8, part 6): refused and failed calls through real
clients over HTTP write no traceback at any level, a bad credential never reaches a log,
and an INTERNAL error logs where it happened but not what was stored."""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from shared_context_server.config import Settings
from shared_context_server.domain.principal import Principal
from shared_context_server.storage.sql.messages import SqlMessages
from tests.conftest import READ, READ_WRITE
from tests.e2e.conftest import http_client
from tests.mcp.conftest import fails, ok
from tests.security.inprocess import ACCEPT, Served, bearer, initialize, serving

MODERN = "2026-07-28"
BAD_KEY = "scs_leaked-credential-" + "q" * 24
BAD_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.leaked-signature-zzzz"
SECRET_CONTENT = "the launch code is 0000-secret"


def _token(served: Served, agent_id: str, permissions: Any = READ_WRITE) -> str:
    issued, _ = served.app.auth.issue_token(Principal(agent_id, "claude", permissions))
    return issued


# The test's own clients log what they send at DEBUG; only the server's records count.
CLIENT_LOGGERS = ("mcp.client", "httpx2", "httpcore2")


def _server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]


def _text(record: logging.LogRecord) -> str:
    return f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"


async def _refused_calls(served: Served) -> None:
    alice, bob = bearer(_token(served, "alice")), bearer(_token(served, "bob"))
    reader = bearer(_token(served, "reader", READ))
    assert (await initialize(served)).status_code == 401
    for credential in (BAD_KEY, BAD_JWT):
        assert (await initialize(served, bearer(credential))).status_code == 401
    async with http_client(served.url, mode=MODERN) as anonymous:
        assert (await fails(anonymous, "list_sessions"))["code"] == "AUTH_REQUIRED"
        error = await fails(anonymous, "list_sessions", auth_token=BAD_JWT)
        assert error["code"] == "TOKEN_INVALID"
        error = await fails(anonymous, "authenticate_agent", agent_id="m", api_key=BAD_KEY)
        assert error["code"] == "AUTH_FAILED"
    async with (
        http_client(served.url, headers=alice) as owner,
        http_client(served.url, headers=bob) as other,
        http_client(served.url, headers=reader) as read_only,
    ):
        session_id = (await ok(owner, "create_session", purpose="quiet"))["session"]["id"]
        assert (await fails(other, "get_session", session_id="nope"))["code"] == (
            "SESSION_NOT_FOUND"
        )
        error = await fails(read_only, "add_message", session_id=session_id, content="x")
        assert error["code"] == "PERMISSION_DENIED"
        await ok(
            owner,
            "coordinate_session_work",
            session_id=session_id,
            action="lock",
            lock_type="exclusive",
        )
        error = await fails(other, "add_message", session_id=session_id, content="x")
        assert error["code"] == "SESSION_LOCKED"
        error = await fails(other, "add_message", session_id=session_id, content="x" * 200_000)
        assert error["code"] in ("LIMIT_EXCEEDED", "INVALID_INPUT")
        for _ in range(3):
            await other.call_tool("list_sessions", {})
        assert (await fails(other, "list_sessions"))["code"] == "RATE_LIMITED"
        with pytest.raises(MCPError):
            await owner.read_resource("session://nope")
        with pytest.raises(MCPError):
            await owner.subscribe_resource("session://nope")
        # Session caps, and another identity's session id.
        assert (await initialize(served, alice)).status_code == 429
        async with httpx2.AsyncClient(timeout=10) as http:
            for headers in ({**bob, "mcp-session-id": "not-a-session"}, bob):
                await http.post(
                    served.url,
                    json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
                    headers={**ACCEPT, **headers},
                )


async def test_refused_calls_write_no_traceback_and_no_credential(
    backend_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(
        backend_settings, mcp_sessions_per_agent=1, calls_burst=4, calls_per_second=0.001
    ) as served:
        await _refused_calls(served)
    records = _server_records(caplog)
    assert records, "nothing was captured: the test would prove nothing"
    for record in records:
        assert record.exc_info is None or record.exc_info == (None, None, None), _text(record)
        assert "Traceback" not in _text(record), _text(record)
        for secret in (BAD_KEY, BAD_JWT, "leaked"):
            assert secret not in _text(record), _text(record)


async def test_an_internal_error_logs_where_not_what(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with serving(settings) as served:

        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"failed to store {kwargs.get('content') or args}")

        async def broken(*args: Any, **kwargs: Any) -> Any:
            fail(*args, **kwargs)

        # The insert runs inside the unit of work, on the storage thread.
        monkeypatch.setattr(SqlMessages, "insert", fail)
        caplog.set_level(logging.DEBUG)
        async with http_client(served.url, headers=bearer(_token(served, "alice"))) as client:
            session_id = (await ok(client, "create_session", purpose="p"))["session"]["id"]
            posted = {"session_id": session_id, "content": SECRET_CONTENT}
            assert (await fails(client, "add_message", **posted))["code"] == "INTERNAL"
            monkeypatch.setattr(served.app.messages, "context", broken)
            with pytest.raises(MCPError) as failed:  # a low-level handler, same rule
                await client.read_resource(f"session://{session_id}")
            assert failed.value.error.data["code"] == "INTERNAL"
    logged = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(logged) == 2, [r.getMessage() for r in caplog.records]
    assert "RuntimeError" in logged[0].getMessage()
    assert all(SECRET_CONTENT not in _text(r) for r in _server_records(caplog))
