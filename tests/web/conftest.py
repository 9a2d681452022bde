"""A browser's view of the dashboard, without a browser: an HTTP client that keeps cookies,
against our server in the test's process (``tests/security/inprocess.py``)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest

from shared_context_server.config import Settings
from shared_context_server.domain.principal import Permission, Principal
from tests.conftest import READ_WRITE
from tests.e2e.conftest import http_server  # noqa: F401 (a server process, for test_browser)
from tests.security.inprocess import ADMIN_KEY, Served, serving

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ALICE = Principal("alice", "claude", READ_WRITE)
BOB = Principal("bob", "claude", READ_WRITE)
GEMINI = Principal("gem", "gemini", READ_WRITE)
ADMIN = Principal("ops", "claude", frozenset(Permission))


@dataclass
class Browser:
    http: httpx2.AsyncClient
    served: Served

    async def sign_in(
        self,
        credential: str = ADMIN_KEY,
        agent_id: str = "human",
        agent_type: str = "human",
        next_path: str = "/ui/",
    ) -> httpx2.Response:
        form = {
            "credential": credential,
            "agent_id": agent_id,
            "agent_type": agent_type,
            "next": next_path,
        }
        return await self.http.post("/ui/signin", data=form)

    async def page(self, path: str) -> str:
        response = await self.http.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.text

    async def csrf(self, path: str = "/ui/") -> str:
        found = CSRF.search(await self.page(path))
        assert found is not None
        return found.group(1)

    async def post(self, path: str, form: dict[str, str]) -> httpx2.Response:
        return await self.http.post(path, data={"csrf": await self.csrf(), **form})


@pytest.fixture
async def served(backend_settings: Settings) -> AsyncIterator[Served]:
    async with serving(backend_settings) as running:
        yield running


@pytest.fixture
async def browser(served: Served) -> AsyncIterator[Browser]:
    async with httpx2.AsyncClient(base_url=served.base, timeout=30) as http:
        yield Browser(http, served)
