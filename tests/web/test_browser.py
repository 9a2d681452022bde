"""The dashboard in headless Chromium (Playwright) against a real server process
(``scs serve``), on both backends (issue 12's browser tests): sign-in, live arrival of an
MCP agent's post, inert script, private and agent_only messages, a human's reply reaching
an MCP subscriber, and sign-in required everywhere.

Chromium is Debian's (/usr/bin/chromium; ``scripts/test.sh`` installs it): Playwright's own
browser download does not work here. Without it these tests skip, or fail in CI
(SCS_REQUIRE_BROWSER).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests import processes
from tests.e2e.conftest import ADMIN_KEY, HttpServer, free_port, http_client, server_env
from tests.mcp.conftest import ok
from tests.mcp.live import Heard

playwright = pytest.importorskip("playwright.async_api")

# How soon a post must show in an open view (issue 12); the waits themselves are longer,
# so a slow arrival fails with its time rather than a timeout.
LIVE_WITHIN_S = 1.0
WAIT_MS = 30_000


def chromium_path() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if found is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("SCS_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture
async def chromium() -> AsyncIterator[playwright.Browser]:
    async with playwright.async_playwright() as driver:
        launched = await driver.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def token(server: HttpServer, agent_id: str, agent_type: str = "claude") -> dict[str, str]:
    async with http_client(server.url, mode="2026-07-28") as client:
        issued = await ok(
            client,
            "authenticate_agent",
            agent_id=agent_id,
            agent_type=agent_type,
            api_key=ADMIN_KEY,
        )
    return {"Authorization": f"Bearer {issued['token']}"}


async def signed_in_page(
    browser: playwright.Browser, server: HttpServer, path: str, agent_type: str = "human"
) -> playwright.Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(server.base + path)
    assert "/ui/signin" in page.url  # sent to sign in first
    await page.fill("input[name=credential]", ADMIN_KEY)
    await page.fill("input[name=agent_id]", f"dana-{agent_type}")
    await page.fill("input[name=agent_type]", agent_type)
    await page.click("button[type=submit]")
    await page.wait_for_url(server.base + path)
    if path.startswith("/ui/sessions/"):  # its stream is open
        await page.wait_for_selector("body[data-live=on]", timeout=WAIT_MS)
    return page


async def test_an_agents_post_appears_live_and_script_stays_inert(
    chromium: playwright.Browser, http_server: HttpServer
) -> None:
    alice = await token(http_server, "alice")
    async with http_client(http_server.url, headers=alice) as agent:
        session_id = (await ok(agent, "create_session", purpose="browser: live"))["session"]["id"]
        page = await signed_in_page(chromium, http_server, f"/ui/sessions/{session_id}")
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        note = await ok(agent, "add_private_note", session_id=session_id, content="alice only")
        hostile = "<script>window.pwned = 1; alert(1)</script><img src=x onerror=alert(2)> **bold**"
        posted = await ok(agent, "add_message", session_id=session_id, content=hostile)
        sent = time.perf_counter()
        await page.wait_for_selector(f"#m{posted['message']['id']}", timeout=WAIT_MS)
        assert time.perf_counter() - sent <= LIVE_WITHIN_S
        body = page.locator(f"#m{posted['message']['id']} .body")
        assert "<script>window.pwned = 1; alert(1)</script>" in await body.inner_text()
        assert await body.locator("strong").inner_text() == "bold"
        assert await page.evaluate("window.pwned") is None
        assert dialogs == []
        assert await page.locator(f"#m{note['message']['id']}").count() == 0
        assert "alice only" not in await page.content()


async def test_a_humans_reply_reaches_an_mcp_subscriber(
    chromium: playwright.Browser, http_server: HttpServer
) -> None:
    alice = await token(http_server, "alice")
    heard = Heard()
    async with http_client(http_server.url, headers=alice, message_handler=heard) as agent:
        session_id = (await ok(agent, "create_session", purpose="browser: reply"))["session"]["id"]
        asked = await ok(agent, "add_message", session_id=session_id, content="Deploy now?")
        uri = f"session://{session_id}"
        await agent.subscribe_resource(uri)
        page = await signed_in_page(chromium, http_server, f"/ui/sessions/{session_id}")
        await page.fill("textarea[name=content]", "No: wait for the migration.")
        await page.fill("input[name=parent_message_id]", str(asked["message"]["id"]))
        await page.click(".compose button[type=submit]")
        await heard.wait_for(lambda: uri in heard.updated)
        read = await ok(agent, "get_messages", session_id=session_id)
        reply = read["messages"][-1]
        assert (reply["sender"], reply["sender_type"]) == ("dana-human", "human")
        assert reply["parent_message_id"] == asked["message"]["id"]
        threaded = page.locator(f"#m{asked['message']['id']} .replies #m{reply['id']}")
        await threaded.wait_for(timeout=WAIT_MS)


async def test_an_agent_only_post_shows_only_to_a_viewer_of_its_type(
    chromium: playwright.Browser, http_server: HttpServer
) -> None:
    alice = await token(http_server, "alice")
    async with http_client(http_server.url, headers=alice) as agent:
        session_id = (await ok(agent, "create_session", purpose="browser: types"))["session"]["id"]
        path = f"/ui/sessions/{session_id}"
        claude = await signed_in_page(chromium, http_server, path, agent_type="claude")
        human = await signed_in_page(chromium, http_server, path, agent_type="human")
        only = await ok(
            agent,
            "add_message",
            session_id=session_id,
            content="claude only",
            visibility="agent_only",
        )
        marker = await ok(agent, "add_message", session_id=session_id, content="everyone")
        for page in (claude, human):
            await page.wait_for_selector(f"#m{marker['message']['id']}", timeout=WAIT_MS)
        assert await claude.locator(f"#m{only['message']['id']}").count() == 1
        assert await human.locator(f"#m{only['message']['id']}").count() == 0
        await human.reload()
        assert await human.locator(f"#m{only['message']['id']}").count() == 0


async def test_a_signed_out_browser_is_sent_to_sign_in(
    chromium: playwright.Browser, http_server: HttpServer
) -> None:
    page = await (await chromium.new_context()).new_page()
    for path in ("/ui/", "/ui/sessions/anything", "/ui/sessions/anything/events"):
        await page.goto(http_server.base + path)
        assert page.url.startswith(http_server.base + "/ui/signin?next="), path
    signed = await signed_in_page(chromium, http_server, "/ui/")
    await signed.click("header .who button[type=submit]")
    await signed.wait_for_url(http_server.base + "/ui/signin")
    await signed.goto(http_server.base + "/ui/")
    assert "/ui/signin" in signed.url


async def test_a_lock_taken_over_mcp_shows_in_the_panel_live(
    chromium: playwright.Browser, http_server: HttpServer
) -> None:
    alice = await token(http_server, "alice")
    async with http_client(http_server.url, headers=alice) as agent:
        session_id = (await ok(agent, "create_session", purpose="browser: locks"))["session"]["id"]
        page = await signed_in_page(chromium, http_server, f"/ui/sessions/{session_id}")
        await ok(
            agent, "coordinate_session_work", session_id=session_id, action="lock", ttl_seconds=600
        )
        holder = page.locator("#locks .sender", has_text="alice")
        await holder.wait_for(timeout=WAIT_MS)
        countdown = await page.locator("#locks time[data-countdown]").inner_text()
        assert countdown.startswith("in ")
        await page.click("#coordination button.danger")  # the human, an admin, force-unlocks
        await page.locator("#locks .empty").wait_for(timeout=WAIT_MS)
        status = await ok(agent, "coordinate_session_work", session_id=session_id, action="status")
        assert status["locks"] == []


async def test_a_new_user_signs_in_with_the_printed_key(
    chromium: playwright.Browser, tmp_path: Path
) -> None:
    """The README's path: ``scs serve --transport http`` on a fresh data dir prints the
    bootstrap key and the dashboard's address; that key signs the human in."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in server_env(tmp_path / "data").items() if k != "API_KEY"}
    args = [sys.executable, "-m", "shared_context_server", "serve", "--transport=http"]
    server = processes.spawn([*args, f"--port={port}"], env=env, log=log)
    try:
        processes.wait_healthy(server, f"http://127.0.0.1:{port}/health", log=log)
        printed = log.read_text()
        key = re.search(r"bootstrap admin API key \(.*?\): (\S+)", printed)
        dashboard = re.search(r"dashboard at (\S+)", printed)
        assert key is not None, printed
        assert dashboard is not None, printed
        page = await (await chromium.new_context()).new_page()
        await page.goto(dashboard.group(1))
        await page.fill("input[name=credential]", key.group(1))
        await page.click("button[type=submit]")
        await page.wait_for_url(dashboard.group(1))
        assert await page.locator("header .agent").inner_text() == "human"
        assert await page.locator("h1").inner_text() == "Sessions"
    finally:
        processes.reap(server)


async def test_the_sessions_list_counts_live(
    chromium: playwright.Browser, http_server: HttpServer
) -> None:
    alice = await token(http_server, "alice")
    async with http_client(http_server.url, headers=alice) as agent:
        session_id = (await ok(agent, "create_session", purpose="browser: list"))["session"]["id"]
        page = await signed_in_page(chromium, http_server, "/ui/")
        await page.wait_for_selector("body[data-live=on]", timeout=WAIT_MS)
        count = page.locator(f'tr[data-session="{session_id}"] [data-count]')
        assert await count.inner_text() == "0"
        await ok(agent, "add_message", session_id=session_id, content="one")
        await ok(agent, "add_message", session_id=session_id, content="two")
        await page.wait_for_function(
            '([id]) => document.querySelector(`tr[data-session="${id}"] [data-count]`)'
            ".textContent === '2'",
            arg=[session_id],
            timeout=WAIT_MS,
        )
