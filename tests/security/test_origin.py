"""The Origin check compares scheme, host and port exactly (issue 8, part 8)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from shared_context_server.config import Settings
from shared_context_server.mcp.origin import normalize
from tests.security.inprocess import Served, serving

LISTED = "https://app.example.com"


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    async with serving(settings.model_copy(update={"allowed_origins": [LISTED]})) as running:
        yield running


async def _status(served: Served, origin: str) -> int:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(served.base + "/health", headers={"Origin": origin})
    return response.status_code


async def test_foreign_lookalike_and_other_port_origins_are_refused(served: Served) -> None:
    port = served.port
    for origin in [
        "http://127.0.0.1.evil.com",
        f"http://127.0.0.1.evil.com:{port}",
        "http://127.0.0.1:1",  # another program on this machine
        f"http://localhost:{port + 1}",
        f"https://127.0.0.1:{port}",  # another scheme
        "http://127.0.0.1",  # port 80
        "null",
        f"http://user@127.0.0.1:{port}",
        "https://app.example.com:8443",
        "http://app.example.com",
        "https://evil.app.example.com",
    ]:
        assert await _status(served, origin) == 403, origin


async def test_the_servers_own_origins_and_listed_ones_pass(served: Served) -> None:
    port = served.port
    for origin in [
        f"http://127.0.0.1:{port}",
        f"http://localhost:{port}",
        f"http://LOCALHOST:{port}/",
        f"http://[::1]:{port}",
        LISTED,
        "https://app.example.com:443",
    ]:
        assert await _status(served, origin) == 200, origin


async def test_no_origin_header_is_not_a_browser_and_passes(served: Served) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        assert (await http.get(served.base + "/health")).status_code == 200


def test_origins_are_normalised_with_their_port_spelled_out() -> None:
    assert normalize("HTTP://LocalHost") == "http://localhost:80"
    assert normalize("https://[::1]") == "https://[::1]:443"
    assert normalize("http://a.example:8080/") == "http://a.example:8080"
    assert normalize("http://a.example/path") is None
    assert normalize("file:///etc/passwd") is None
    assert normalize("null") is None
