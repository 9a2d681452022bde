"""Monitoring (issue 12, part 7) through a real server on both backends: tool calls made
by a real MCP client show in the dashboard's charts and tables and at /metrics, which is
served to loopback only by default, or to an admin's or debugger's bearer token."""

from __future__ import annotations

import re

import httpx2

from shared_context_server.config import Settings
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from tests.conftest import READ_WRITE
from tests.e2e.conftest import http_client
from tests.mcp.conftest import fails, ok
from tests.security.inprocess import bearer, serving
from tests.web.conftest import ALICE, Browser


async def test_tool_calls_show_on_the_monitoring_page(browser: Browser) -> None:
    served = browser.served
    alice, _ = served.app.auth.issue_token(ALICE)
    async with http_client(served.url, headers=bearer(alice)) as agent:
        session = (await ok(agent, "create_session", purpose="monitored"))["session"]["id"]
        for n in range(3):
            await ok(agent, "add_message", session_id=session, content=f"note {n}")
        assert (await fails(agent, "get_session", session_id="nope"))["code"] == "SESSION_NOT_FOUND"
    await browser.sign_in()
    html = await browser.page("/ui/monitor")
    assert html.count('<svg class="chart"') == 4
    assert re.search(
        r'data-tool="add_message"><td><code>add_message</code></td><td class="num">3<', html
    )
    assert re.search(r'<code>SESSION_NOT_FOUND</code></td><td class="num">1<', html)
    assert "peak 3 · now 3" in html  # three messages this minute


async def test_monitoring_needs_admin_or_debug(browser: Browser) -> None:
    app = browser.served.app
    reader, _ = app.auth.issue_token(Principal("carol", "human", READ_WRITE))
    await browser.sign_in(reader)
    assert (await browser.http.get("/ui/monitor")).status_code == 403
    browser.http.cookies.clear()
    debugger, _ = app.auth.issue_token(Principal("dbg", "human", frozenset({Permission.DEBUG})))
    await browser.sign_in(debugger)
    assert (await browser.http.get("/ui/monitor")).status_code == 200


async def test_metrics_are_served_to_loopback_by_default(browser: Browser) -> None:
    response = await browser.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE scs_tool_calls_total counter" in response.text


async def test_metrics_behind_a_token(backend_settings: Settings) -> None:
    settings = backend_settings.model_copy(update={"metrics_access": "token"})
    async with serving(settings) as served, httpx2.AsyncClient(base_url=served.base) as http:
        app = served.app
        assert (await http.get("/metrics")).status_code == 401
        reader, _ = app.auth.issue_token(ALICE)
        assert (await http.get("/metrics", headers=bearer(reader))).status_code == 403
        admin, _ = app.auth.issue_token(Principal("ops", "human", frozenset(Permission)))
        scraped = await http.get("/metrics", headers=bearer(admin))
        assert scraped.status_code == 200
        assert "scs_active_agents" in scraped.text


async def test_metrics_can_be_off(backend_settings: Settings) -> None:
    settings = backend_settings.model_copy(update={"metrics_access": "off"})
    async with serving(settings) as served, httpx2.AsyncClient(base_url=served.base) as http:
        assert (await http.get("/metrics")).status_code == 404
