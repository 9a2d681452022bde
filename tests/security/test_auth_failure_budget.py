"""The failed-authentication budget holds against the ways round it a review found, through
a real server on real loopback sockets, on SQLite and PostgreSQL: rotating loopback source
addresses, concurrent bad keys racing the lookup, and a flood locking out an agent that
uses its raw API key as a bearer."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest

from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.models import KeyBinding
from shared_context_server.services.auth_failures import LOOPBACK, address_key
from tests.conftest import READ_WRITE
from tests.e2e.conftest import http_client
from tests.mcp.conftest import ok
from tests.security.inprocess import ACCEPT, Served, bearer, serving
from tests.security.test_http_abuse import MODERN, Audited, Counted, token

META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
REQUEST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
HEADERS = {**ACCEPT, "mcp-protocol-version": MODERN, "mcp-method": "tools/list"}


def bad_key(i: int = 0) -> str:
    return f"scs_not-a-key-{i:04d}-" + "x" * 32


async def new_key(served: Served, agent_id: str) -> str:
    _, key = await served.app.auth.create_api_key(
        f"{agent_id}-key", READ_WRITE, KeyBinding(agent_id=agent_id)
    )
    return key


def from_address(host: str = "127.0.0.1", **kwargs: Any) -> httpx2.AsyncClient:
    transport = httpx2.AsyncHTTPTransport(local_address=host, **kwargs)
    return httpx2.AsyncClient(transport=transport, timeout=30)


async def call(http: httpx2.AsyncClient, served: Served, credential: str) -> int:
    response = await http.post(served.url, json=REQUEST, headers={**HEADERS, **bearer(credential)})
    return response.status_code


def test_every_loopback_address_is_one_key() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.9"):
        assert address_key(host) == LOOPBACK, host
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("10.0.0.1") == "10.0.0.1"
    assert address_key("2001:db8::1") == "2001:db8::/64"


async def test_rotating_loopback_source_addresses_share_one_budget(
    backend_settings: Settings,
) -> None:
    async with serving(backend_settings, FakeClock(), auth_failures_per_minute=3) as served:
        audits = Audited(served.app.store)
        statuses = []
        for i in range(2, 8):  # 127.0.0.2 ... 127.0.0.7, each from its own socket
            async with from_address(f"127.0.0.{i}") as http:
                statuses.append(await call(http, served, bad_key(i)))
        assert statuses == [401] * 3 + [429] * 3
        assert [c[0].metadata["address"] for c in audits.calls] == [LOOPBACK] * 3


async def test_concurrent_bad_keys_get_no_more_lookups_than_the_budget(
    backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts, budget = 200, 30
    async with serving(backend_settings, FakeClock(), auth_failures_per_minute=budget) as served:
        auth = served.app.auth
        inner = auth.find_api_key
        lookups: list[str] = []
        answered: list[int] = []
        release = anyio.Event()

        def settled() -> None:  # every attempt is in a lookup or answered: let lookups go
            if len(lookups) + len(answered) >= attempts:
                release.set()

        async def held(key: str) -> Any:
            lookups.append(key)
            settled()
            await release.wait()
            return await inner(key)

        monkeypatch.setattr(auth, "find_api_key", held)
        limits = httpx2.Limits(max_connections=attempts)
        async with from_address(limits=limits) as http:

            async def attempt(i: int) -> None:
                answered.append(await call(http, served, bad_key(i)))
                settled()

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tasks:
                    for i in range(attempts):
                        tasks.start_soon(attempt, i)
        assert len(lookups) == budget
        assert sorted(answered) == [401] * budget + [429] * (attempts - budget)


async def test_valid_keys_give_back_what_they_reserved(backend_settings: Settings) -> None:
    async with serving(backend_settings, FakeClock(), auth_failures_per_minute=3) as served:
        keys = [await new_key(served, f"worker-{i}") for i in range(5)]
        async with from_address() as http:
            for key in keys:  # each fresh key is looked up, so reserves, and is good
                assert await call(http, served, key) == 200
            statuses = [await call(http, served, bad_key(i)) for i in range(4)]
        assert statuses == [401, 401, 401, 429]  # the whole budget was left


async def test_a_flood_does_not_lock_out_a_known_raw_key_bearer(
    backend_settings: Settings,
) -> None:
    async with serving(backend_settings, FakeClock(), auth_failures_per_minute=3) as served:
        worker = await new_key(served, "worker")
        unseen = await new_key(served, "newcomer")
        async with from_address() as agent:
            assert await call(agent, served, worker) == 200  # verified once: known
            async with from_address("127.0.0.2") as mallory:
                flood = [await call(mallory, served, bad_key(i)) for i in range(31)]
            assert flood == [401] * 3 + [429] * 28
            lookups = Counted(served.app.auth, "find_api_key")
            for _ in range(3):
                assert await call(agent, served, worker) == 200
            # A valid key this process has not seen lately is refused during the flood...
            assert await call(agent, served, unseen) == 429
            # The newcomer was refused before any lookup; the known key needs none but a
            # revocation recheck (every REVOCATION_RECHECK_SECONDS of real time: a slow
            # machine's flood may outlast it), and that one the flood does not refuse.
            assert {args[0] for args in lookups.calls} <= {worker}
            # ...while the token path is unaffected.
            assert await call(agent, served, token(served, "alice")) == 200
        async with http_client(served.url, mode=MODERN) as client:
            issued = await ok(client, "authenticate_agent", agent_id="worker", api_key=worker)
            assert issued["token"]
