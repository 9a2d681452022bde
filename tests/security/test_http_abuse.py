"""Anonymous and abusive HTTP use is bounded (issue 8, part 5), through real clients over
real loopback sockets, on SQLite and PostgreSQL: nobody opens a 2025 session without an
identity, one identity cannot take every session or subscription, failed authentication
and calls are rate-limited, and a legitimate client of another identity keeps working."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.principal import Principal
from shared_context_server.services.auth_failures import address_key
from tests.conftest import READ_WRITE
from tests.e2e.conftest import http_client
from tests.mcp.conftest import fails, ok
from tests.security.inprocess import (
    ACCEPT,
    ADMIN_KEY,
    Served,
    bearer,
    initialize,
    serving,
)

MODERN = "2026-07-28"


def token(served: Served, agent_id: str) -> str:
    issued, _ = served.app.auth.issue_token(Principal(agent_id, "claude", READ_WRITE))
    return issued


@pytest.fixture
async def served(backend_settings: Settings) -> AsyncIterator[Served]:
    async with serving(backend_settings) as running:
        yield running


# 1. no anonymous 2025 sessions ------------------------------------------------------------


async def test_an_anonymous_2025_initialize_gets_401_and_the_challenge(served: Served) -> None:
    response = await initialize(served)
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{served.base}/.well-known/oauth-protected-resource"' in challenge
    assert "error=" not in challenge  # no credential was sent (RFC 6750 §3.1)
    assert response.json()["code"] == "AUTH_REQUIRED"
    assert "mcp-session-id" not in response.headers
    with pytest.raises(Exception):  # noqa: B017, PT011 - the client cannot even connect
        async with http_client(served.url):
            pass


async def test_an_anonymous_2026_client_can_still_authenticate(served: Served) -> None:
    async with http_client(served.url, mode=MODERN) as client:
        issued = await ok(client, "authenticate_agent", agent_id="newcomer", api_key=ADMIN_KEY)
        assert (await fails(client, "list_sessions"))["code"] == "AUTH_REQUIRED"
    async with http_client(served.url, headers=bearer(issued["token"])) as client:
        await ok(client, "list_sessions")


async def test_a_2025_session_belongs_to_the_identity_that_opened_it(served: Served) -> None:
    opened = await initialize(served, bearer(token(served, "alice")))
    assert opened.status_code == 200
    session_id = opened.headers["mcp-session-id"]
    request = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    async with httpx2.AsyncClient(timeout=30) as http:
        for headers in (bearer(token(served, "bob")), {}):
            taken = await http.post(
                served.url,
                json=request,
                headers={**ACCEPT, **headers, "mcp-session-id": session_id},
            )
            assert taken.status_code == 404, headers
        again = await http.post(
            served.url,
            json=request,
            headers={
                **ACCEPT,
                **bearer(token(served, "alice")),  # a fresh token of the same agent
                "mcp-session-id": session_id,
                "mcp-protocol-version": "2025-11-25",
            },
        )
        assert again.status_code == 200


# 2. caps ------------------------------------------------------------------------------


async def test_one_identity_cannot_open_more_sessions_than_its_cap(
    backend_settings: Settings,
) -> None:
    async with serving(backend_settings, mcp_sessions_per_agent=2) as served:
        alice, bob = bearer(token(served, "alice")), bearer(token(served, "bob"))
        async with http_client(served.url, headers=alice), http_client(served.url, headers=alice):
            refused = await initialize(served, alice)
            assert refused.status_code == 429
            body = refused.json()
            assert body["code"] == "LIMIT_EXCEEDED"
            assert body["details"]["limit"] == 2
            assert body["details"]["retry_after"] >= 1
            assert int(refused.headers["retry-after"]) >= 1
            # Another agent is not affected.
            async with http_client(served.url, headers=bob) as other:
                created = await ok(other, "create_session", purpose="still works")
                assert created["session"]["created_by"] == "bob"
        # Closed sessions (DELETE on exit) make room again.
        async with http_client(served.url, headers=alice) as client:
            await ok(client, "list_sessions")


async def test_sub_agents_open_sessions_out_of_their_delegators_cap(
    backend_settings: Settings,
) -> None:
    async with serving(backend_settings, mcp_sessions_per_agent=2) as served:
        delegator = Principal("orch", "claude", READ_WRITE)
        session = await served.app.sessions.create(delegator, "helpers")
        helpers = [
            (
                await served.app.delegation.delegate(
                    delegator, f"h{i}", None, session.id, READ_WRITE, 60
                )
            ).issued.token
            for i in range(3)
        ]
        async with (
            http_client(served.url, headers=bearer(helpers[0])),
            http_client(served.url, headers=bearer(helpers[1])),
        ):
            # Minting a third sub-agent does not buy a third session.
            refused = await initialize(served, bearer(helpers[2]))
            assert refused.status_code == 429
            assert (await initialize(served, bearer(token(served, "orch")))).status_code == 429


async def test_the_process_wide_session_cap_answers_503_with_retry_after(
    backend_settings: Settings,
) -> None:
    async with serving(backend_settings, mcp_sessions_total=2) as served:
        alice, bob, carol = (bearer(token(served, a)) for a in ("alice", "bob", "carol"))
        async with http_client(served.url, headers=alice), http_client(served.url, headers=bob):
            refused = await initialize(served, carol)
            assert refused.status_code == 503
            assert refused.json()["code"] == "LIMIT_EXCEEDED"
            assert int(refused.headers["retry-after"]) >= 1
            # Stateless 2026 clients need no session and keep working.
            async with http_client(served.url, mode=MODERN, headers=carol) as client:
                await ok(client, "list_sessions")


async def test_an_idle_2025_session_is_closed(backend_settings: Settings) -> None:
    async with serving(backend_settings, mcp_session_idle_seconds=0.3) as served:
        opened = await initialize(served, bearer(token(served, "alice")))
        session_id = opened.headers["mcp-session-id"]
        request = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        headers = {
            **ACCEPT,
            **bearer(token(served, "alice")),
            "mcp-session-id": session_id,
            "mcp-protocol-version": "2025-11-25",
        }
        async with httpx2.AsyncClient(timeout=30) as http:
            assert (await http.post(served.url, json=request, headers=headers)).status_code == 200
            status = 200
            for _ in range(100):  # the SDK's idle timer runs on the real clock
                await _pause(0.1)
                status = (await http.post(served.url, json=request, headers=headers)).status_code
                if status == 404:
                    break
                await _pause(0.4)  # longer than the idle time, without a request in flight
            assert status == 404


async def _pause(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


# 3. rate limits -------------------------------------------------------------------------


class Counted:
    """Counts calls of a store method (did an attempt touch the database?)."""

    def __init__(self, store: Any, name: str) -> None:
        self.calls: list[Any] = []
        inner = getattr(store, name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(args)
            return await inner(*args, **kwargs)

        setattr(store, name, counted)


class Audited:
    """The audit events of ``prefix`` that units of work on a store record, each as
    ``(event,)`` (did an attempt write an audit record?)."""

    def __init__(self, store: Any, prefix: str = "auth.") -> None:
        self.calls: list[tuple[AuditEvent]] = []
        inner = store.write

        async def write(work: Callable[[Any], Any]) -> Any:
            def spied(tx: Any) -> Any:
                record = tx.audited

                def audited(event: AuditEvent) -> None:
                    if event.event_type.startswith(prefix):
                        self.calls.append((event,))
                    record(event)

                tx.audited = audited
                return work(tx)

            return await inner(spied)

        store.write = write


async def test_failed_authentication_is_rate_limited_per_address(
    backend_settings: Settings,
) -> None:
    clock = FakeClock()
    async with serving(backend_settings, clock, auth_failures_per_minute=3) as served:
        store = served.app.store
        lookups, audits = Counted(served.app.auth, "find_api_key"), Audited(store)
        good = token(served, "alice")
        bad_key = "scs_" + "not-a-key-" * 4
        request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {**ACCEPT, "mcp-protocol-version": MODERN}
        async with httpx2.AsyncClient(timeout=30) as http:
            for _ in range(3):
                refused = await http.post(
                    served.url, json=request, headers={**headers, **bearer(bad_key)}
                )
                assert refused.status_code == 401
            assert len(audits.calls) == 3  # each failure within the budget is audited
            assert all(bad_key not in repr(c) for c in audits.calls)
            touched = len(lookups.calls), len(audits.calls)

            for credential in (bad_key, "forged.jwt.token"):
                limited = await http.post(
                    served.url, json=request, headers={**headers, **bearer(credential)}
                )
                assert limited.status_code == 429
                assert limited.json()["code"] == "RATE_LIMITED"
                assert limited.json()["details"]["retry_after"] >= 1
                assert int(limited.headers["retry-after"]) >= 1
            assert (len(lookups.calls), len(audits.calls)) == touched  # no database work

        # A valid token from the same address (every local client shares one) works.
        async with http_client(served.url, headers=bearer(good)) as client:
            await ok(client, "list_sessions")

        async with http_client(served.url, mode=MODERN) as client:
            error = await fails(client, "authenticate_agent", agent_id="mallory", api_key=bad_key)
            assert error["code"] == "RATE_LIMITED"
            assert error["details"]["retry_after"] >= 1
            error = await fails(client, "list_sessions", auth_token=bad_key)
            assert error["code"] == "RATE_LIMITED"
            assert (len(lookups.calls), len(audits.calls)) == touched

            clock.advance(60)  # the bucket refills
            error = await fails(client, "authenticate_agent", agent_id="mallory", api_key=bad_key)
            assert error["code"] == "AUTH_FAILED"


async def test_failed_auth_token_arguments_count_and_are_audited(
    backend_settings: Settings,
) -> None:
    clock = FakeClock()
    async with serving(backend_settings, clock, auth_failures_per_minute=2) as served:
        audits = Audited(served.app.store)
        async with http_client(served.url, mode=MODERN) as client:
            for _ in range(2):
                error = await fails(client, "list_sessions", auth_token="bad.token.here")
                assert error["code"] == "TOKEN_INVALID"
            assert [c[0].event_type for c in audits.calls] == ["auth.failed"] * 2
            assert all(c[0].metadata["via"] == "auth_token" for c in audits.calls)
            assert (await fails(client, "list_sessions", auth_token="bad.token.here"))[
                "code"
            ] == "RATE_LIMITED"
            assert len(audits.calls) == 2
            # Valid tokens are still accepted.
            await ok(client, "list_sessions", auth_token=token(served, "alice"))


async def test_calls_per_identity_are_rate_limited(backend_settings: Settings) -> None:
    clock = FakeClock()
    async with serving(backend_settings, clock, calls_burst=3, calls_per_second=1) as served:
        alice, bob = bearer(token(served, "alice")), bearer(token(served, "bob"))
        async with (
            http_client(served.url, headers=alice) as fast,
            http_client(served.url, mode=MODERN, headers=bob) as other,
        ):
            for _ in range(3):
                await ok(fast, "list_sessions")
            error = await fails(fast, "list_sessions")
            assert error["code"] == "RATE_LIMITED"
            assert 0 < error["details"]["retry_after"] <= 1
            with pytest.raises(MCPError) as limited:  # resources count as calls too
                await fast.list_resources()
            assert limited.value.error.code == -32029
            assert limited.value.error.data["code"] == "RATE_LIMITED"
            await ok(other, "list_sessions")  # bob has his own bucket
            clock.advance(1)
            await ok(fast, "list_sessions")


# 4. listen streams ----------------------------------------------------------------------


async def test_subscriptions_per_identity_are_capped_in_both_eras(
    backend_settings: Settings,
) -> None:
    async with serving(backend_settings, listen_streams_per_agent=2) as served:
        alice, bob = bearer(token(served, "alice")), bearer(token(served, "bob"))
        async with http_client(served.url, headers=alice) as writer:
            ids = [
                (await ok(writer, "create_session", purpose=f"s{i}"))["session"]["id"]
                for i in range(3)
            ]
            uris = [f"session://{i}" for i in ids]
            await writer.subscribe_resource(uris[0])
            await writer.subscribe_resource(uris[0])  # the same one again costs nothing
            async with (
                http_client(served.url, mode=MODERN, headers=alice) as listener,
                listener.listen(resource_subscriptions=[uris[1]]),
            ):
                with pytest.raises(MCPError) as refused:
                    await writer.subscribe_resource(uris[2])
                assert refused.value.error.data["code"] == "LIMIT_EXCEEDED"
                with pytest.raises(MCPError) as refused:
                    async with listener.listen(resource_subscriptions=[uris[2]]):
                        pass
                assert refused.value.error.data["code"] == "LIMIT_EXCEEDED"
                # Another agent subscribes as usual.
                async with http_client(served.url, headers=bob) as other:
                    await ok(other, "list_sessions")
                    await other.subscribe_resource("note://not-served-here")
            # The listen stream ended: room for one more.
            await writer.subscribe_resource(uris[2])


async def test_a_listen_stream_names_a_bounded_number_of_uris(
    backend_settings: Settings,
) -> None:
    uris = [f"session://s{i}" for i in range(3)]
    async with serving(backend_settings, listen_streams_per_agent=2) as served:
        alice = bearer(token(served, "alice"))
        async with http_client(served.url, mode=MODERN, headers=alice) as client:
            with pytest.raises(MCPError) as refused:
                async with client.listen(resource_subscriptions=uris):
                    pass
            assert refused.value.error.data["code"] == "LIMIT_EXCEEDED"


def test_failures_are_counted_per_ipv4_address_or_ipv6_64() -> None:
    assert address_key("127.0.0.1") == address_key("::1") == "loopback"  # all of loopback
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:2") == "2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
