"""Security: per-agent quotas hold, and hostile values (huge integers, NUL characters,
extreme timestamps, short secrets) are refused clearly, on SQLite and PostgreSQL, through
a real MCP client. Files of the data directory are owner-only."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared_context_server.app import App, running_app
from shared_context_server.clock import FakeClock
from shared_context_server.config import QuotaSettings, Settings, settings_problem
from shared_context_server.domain.principal import Principal
from shared_context_server.storage.repositories.memory import MemoryQuery
from tests.conftest import ADMIN, READ_WRITE, make_settings, settings_on
from tests.mcp.conftest import connect_client, fails, ok, token_for

QUOTAS = QuotaSettings(
    sessions_per_agent=2,
    memory_keys_per_agent=3,
    memory_bytes_per_agent=100,
    messages_per_minute=3,
)
BIG = 2**63  # one beyond the largest 64-bit integer


@pytest.fixture
async def quota_app(backend_settings: Settings, clock: FakeClock) -> AsyncIterator[App]:
    settings = backend_settings.model_copy(update={"quotas": QUOTAS})
    async with running_app(settings, clock, background=False) as built:
        yield built


def _over(error: dict[str, Any], quota: str, limit: int, current: int) -> None:
    assert error["code"] == "LIMIT_EXCEEDED", error
    details = error["details"]
    assert (details["quota"], details["limit"], details["current"]) == (quota, limit, current)


# --- quotas ----------------------------------------------------------------------------


async def test_an_agent_holds_at_most_its_quota_of_sessions_not_archived(quota_app: App) -> None:
    async with connect_client(quota_app, token_for(quota_app, "alice")) as alice:
        first = (await ok(alice, "create_session", purpose="one"))["session"]["id"]
        await ok(alice, "create_session", purpose="two")
        _over(await fails(alice, "create_session", purpose="three"), "sessions_per_agent", 2, 2)
        await ok(alice, "update_session", session_id=first, status="archived")
        await ok(alice, "create_session", purpose="three")
    async with connect_client(quota_app, token_for(quota_app, "bob")) as bob:
        await ok(bob, "create_session", purpose="another agent's own quota")


async def test_an_agent_holds_at_most_its_quota_of_unexpired_memory_keys(
    quota_app: App, clock: FakeClock
) -> None:
    async with connect_client(quota_app, token_for(quota_app, "alice")) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, "set_memory", key="a", value=1)
        await ok(alice, "set_memory", key="b", value=2, session_id=session_id)  # all scopes
        await ok(alice, "set_memory", key="brief", value=3, expires_in=60)
        _over(await fails(alice, "set_memory", key="d", value=4), "memory_keys_per_agent", 3, 3)
        await ok(alice, "set_memory", key="a", value=10)  # an overwrite adds no key
        await ok(alice, "delete_memory", key="a")
        await ok(alice, "set_memory", key="d", value=4)
        clock.advance(61)  # an expired entry no longer counts
        await ok(alice, "set_memory", key="e", value=5)
        _over(await fails(alice, "set_memory", key="f", value=6), "memory_keys_per_agent", 3, 3)


async def test_an_agent_holds_at_most_its_quota_of_memory_bytes(quota_app: App) -> None:
    async with connect_client(quota_app, token_for(quota_app, "alice")) as alice:
        await ok(alice, "set_memory", key="big", value="x" * 58)  # 60 bytes of JSON
        error = await fails(alice, "set_memory", key="more", value="y" * 48)
        _over(error, "memory_bytes_per_agent", 100, 60)
        await ok(alice, "set_memory", key="big", value="x" * 8)  # shrinking always passes
        await ok(alice, "set_memory", key="more", value="y" * 48)
        await ok(alice, "set_memory", key="more", value="y" * 78)  # grows to 10 + 80 bytes
        _over(
            await fails(alice, "set_memory", key="big", value="x" * 28),
            "memory_bytes_per_agent",
            100,
            90,
        )
    query, now = MemoryQuery("alice", limit=10), quota_app.clock.now()
    entries = await quota_app.store.read(lambda tx: tx.memory.list(query, now))
    assert sorted(e.key for e in entries) == ["big", "more"]


async def test_an_agent_posts_at_most_its_quota_of_messages_per_minute(
    quota_app: App, clock: FakeClock
) -> None:
    async with connect_client(quota_app, token_for(quota_app, "alice")) as alice:
        session_id = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        for n in range(3):
            await ok(alice, "add_message", session_id=session_id, content=f"post {n}")
        error = await fails(alice, "add_message", session_id=session_id, content="one too many")
        _over(error, "messages_per_minute", 3, 3)
        assert 19 < error["details"]["retry_after"] <= 20  # 3 a minute: one every 20 s
        _over(
            await fails(alice, "add_private_note", session_id=session_id, content="n"),
            "messages_per_minute",
            3,
            3,
        )
        async with connect_client(quota_app, token_for(quota_app, "bob")) as bob:
            await ok(bob, "add_message", session_id=session_id, content="bob has his own")
        clock.advance(20)
        await ok(alice, "add_message", session_id=session_id, content="one more after 20 s")
        await fails(alice, "add_message", session_id=session_id, content="not two")
        # A refused post costs no token: a post to a missing session does not count.
        clock.advance(20)
        assert (await fails(alice, "add_message", session_id="nope", content="x"))["code"] == (
            "SESSION_NOT_FOUND"
        )
        await ok(alice, "add_message", session_id=session_id, content="the token is still here")


# --- integers beyond 64 bits -------------------------------------------------------------


async def test_integers_beyond_64_bits_are_invalid_input_everywhere(backend_app: App) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice")) as alice:
        sid = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        calls: list[tuple[str, dict[str, Any]]] = [
            ("get_message", {"message_id": BIG}),
            ("get_messages", {"session_id": sid, "offset": BIG}),
            ("get_messages", {"session_id": sid, "cursor": 2**70}),
            ("get_context", {"session_id": sid, "offset": BIG}),
            ("get_messages_advanced", {"session_id": sid, "cursor": BIG}),
            ("search_by_sender", {"session_id": sid, "sender": "alice", "offset": BIG}),
            ("list_sessions", {"offset": BIG}),
            ("wait_for_updates", {"cursor": BIG, "timeout_s": 0}),
            ("add_message", {"session_id": sid, "content": "x", "parent_message_id": BIG}),
            ("add_message", {"session_id": sid, "content": "x", "metadata": {"n": BIG}}),
            ("add_message", {"session_id": sid, "content": "x", "metadata": {"n": [-BIG - 1]}}),
            ("create_session", {"purpose": "p", "metadata": {"deep": {"n": 10**30}}}),
            ("update_session", {"session_id": sid, "metadata": {"n": BIG}}),
            ("set_memory", {"key": "k", "value": BIG}),
            ("set_memory", {"key": "k", "value": {"a": [1, BIG]}}),
            ("set_memory", {"key": "k", "value": 1, "expected_version": BIG}),
        ]
        for tool, arguments in calls:
            assert (await fails(alice, tool, **arguments))["code"] == "INVALID_INPUT", tool
        # The largest 64-bit integers themselves are fine.
        edge = {"max": BIG - 1, "min": -BIG}
        message = await ok(alice, "add_message", session_id=sid, content="x", metadata=edge)
        assert message["message"]["metadata"] == edge
        assert (await ok(alice, "set_memory", key="k", value=edge))["entry"]["value"] == edge
        # An id that fits 64 bits is looked up (PostgreSQL's id columns hold 32: refused).
        code = (await fails(alice, "get_message", message_id=BIG - 1))["code"]
        assert code in {"MESSAGE_NOT_FOUND", "INVALID_INPUT"}


# --- NUL characters ------------------------------------------------------------------


async def test_nul_characters_are_invalid_input_on_every_backend(backend_app: App) -> None:
    app = backend_app
    admin = token_for(app, "root", "gemini", ADMIN)
    async with connect_client(app, token_for(app, "alice")) as alice:
        sid = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        mid = (await ok(alice, "add_message", session_id=sid, content="x"))["message"]["id"]
        calls: list[tuple[str, dict[str, Any]]] = [
            ("add_message", {"session_id": sid, "content": "a\x00b"}),
            ("add_message", {"session_id": sid, "content": "x", "metadata": {"k": "a\x00"}}),
            ("add_message", {"session_id": sid, "content": "x", "metadata": {"k\x00": 1}}),
            ("add_private_note", {"session_id": sid, "content": "\x00"}),
            ("create_session", {"purpose": "p\x00"}),
            ("create_session", {"purpose": "p", "metadata": {"l": ["\x00"]}}),
            ("update_session", {"session_id": sid, "purpose": "\x00"}),
            ("get_session", {"session_id": "session\x00"}),
            ("get_messages", {"session_id": sid + "\x00"}),
            ("set_memory", {"key": "k\x00", "value": 1}),
            ("set_memory", {"key": "k", "value": "v\x00"}),
            ("set_memory", {"key": "k", "value": {"v\x00": 1}}),
            ("set_memory", {"key": "k", "value": 1, "metadata": {"m": "\x00"}}),
            ("set_memory", {"key": "k", "value": 1, "idempotency_key": "i\x00"}),
            ("get_memory", {"key": "k\x00"}),
            ("list_memory", {"pattern": "a\x00*"}),
            ("search_context", {"session_id": sid, "query": "find \x00 me"}),
            (
                "set_message_visibility",
                {"message_id": mid, "new_visibility": "private", "reason": "\x00"},
            ),
        ]
        for tool, arguments in calls:
            assert (await fails(alice, tool, **arguments))["code"] == "INVALID_INPUT", tool
        error = await fails(alice, "get_audit_log", event_type="a\x00", auth_token=admin)
        assert error["code"] == "INVALID_INPUT"
        # Nothing was stored on the way.
        assert (await ok(alice, "get_messages", session_id=sid))["count"] == 1


# --- timestamps ------------------------------------------------------------------------

EXTREME_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2026-01-01T00:00:00"]


@pytest.mark.parametrize("when", EXTREME_TIMES)
async def test_extreme_or_naive_timestamps_are_invalid_input(backend_app: App, when: str) -> None:
    app = backend_app
    admin = token_for(app, "root", "gemini", ADMIN)
    async with connect_client(app, token_for(app, "alice")) as alice:
        sid = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        for name in ("start_time", "end_time"):
            error = await fails(alice, "search_by_timerange", session_id=sid, **{name: when})
            assert error["code"] == "INVALID_INPUT", (name, error)
            error = await fails(alice, "get_audit_log", auth_token=admin, **{name: when})
            assert error["code"] == "INVALID_INPUT", (name, error)


async def test_the_widest_timestamps_that_fit_are_accepted(backend_app: App) -> None:
    app = backend_app
    async with connect_client(app, token_for(app, "alice")) as alice:
        sid = (await ok(alice, "create_session", purpose="p"))["session"]["id"]
        await ok(alice, "add_message", session_id=sid, content="now")
        found = await ok(
            alice,
            "search_by_timerange",
            session_id=sid,
            start_time="0001-01-01T00:00:00Z",
            end_time="9999-12-31T23:59:59+00:00",
        )
        assert found["count"] == 1


# --- secrets and files -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["jwt_secret_key", "api_key"])
def test_a_secret_shorter_than_32_characters_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(tmp_path, **{name: "s" * 31})
    problem = settings_problem(refused.value)
    assert "at least 32" in problem
    assert "s" * 31 not in problem
    make_settings(tmp_path, **{name: "s" * 32})


def test_the_cli_refuses_a_short_secret_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "SCS_DATA_DIR": str(tmp_path / "data"), "JWT_SECRET_KEY": "short-one"}
    env.pop("SCS_JWT_SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "shared_context_server", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "JWT_SECRET_KEY" in done.stderr
    assert "at least 32" in done.stderr
    assert "short-one" not in done.stderr
    assert not (tmp_path / "data").exists()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_an_existing_data_directory_and_its_files_become_owner_only(
    settings: Settings, backend: str
) -> None:
    data = settings.data_dir
    settings = settings_on(settings, jwt_secret_key=None)
    async with running_app(settings, background=False) as app:
        sid = (await app.sessions.create(_writer(), "p")).id
        assert sid
    # On PostgreSQL the database is the server's; the data dir holds the secrets alone.
    database = ["shared_context.db"] if backend == "sqlite" else []
    names = [*database, "jwt_secret", "bootstrap_api_key"]
    data.chmod(0o755)
    for name in names:
        (data / name).chmod(0o644)
    async with running_app(settings, background=False) as app:
        await app.messages.add(_writer(), sid, "the WAL and shared-memory files exist now")
        assert _mode(data) == 0o700
        journal = ["shared_context.db-wal", "shared_context.db-shm"] if database else []
        for name in [*names, *journal]:
            assert _mode(data / name) == 0o600, name
    if not database:
        assert not (data / "shared_context.db").exists()


def _writer() -> Principal:
    return Principal("alice", "claude", READ_WRITE)
