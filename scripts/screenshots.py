"""The dashboard's screenshots in docs/images/: two agents at work in a session, the
sessions list and the monitoring page, in light and dark, by headless Chromium.

    .venv/bin/python scripts/screenshots.py        # needs /usr/bin/chromium (apt)

A fresh server on a temporary data dir; the agents are real MCP clients.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.clients import MODERN, call, http_client, issue_tokens  # noqa: E402
from bench.servers import Credentials, start_ours  # noqa: E402

OUT = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"

PLAN = """Plan for the migration:

1. dump the **SQLite** schema and port it to PostgreSQL
2. port the `invoices` queries (`NUMERIC`, not `REAL`)
3. run the suite on both backends"""
REPORT = (
    "Two failures in `test_invoice_totals`: totals differ in the last cent because SQLite "
    "stores amounts as `REAL`. " * 12
)


async def seed(url: str, admin_key: str) -> str:
    tokens = await issue_tokens(url, admin_key, ["planner"])
    tokens |= await issue_tokens(url, admin_key, ["tester"], agent_type="gemini")
    async with (
        http_client(url, tokens["planner"]) as planner,
        http_client(url, tokens["tester"]) as tester,
    ):
        created = await call(
            planner, "create_session", {"purpose": "Migrate billing to PostgreSQL"}
        )
        session = created["session"]["id"]
        plan = await call(
            planner,
            "add_message",
            {"session_id": session, "content": PLAN, "metadata": {"files": ["billing/db.py"]}},
        )
        await call(
            tester,
            "add_message",
            {
                "session_id": session,
                "content": "On it: running the suite against PostgreSQL 15.",
                "parent_message_id": plan["message"]["id"],
            },
        )
        await call(tester, "add_message", {"session_id": session, "content": REPORT})
        await call(
            planner,
            "add_message",
            {
                "session_id": session,
                "content": "Decision: `Decimal` end to end.",
                "message_type": "decision",
            },
        )
        await call(
            planner,
            "coordinate_session_work",
            {"session_id": session, "action": "lock", "ttl_seconds": 900, "message": "rounding"},
        )
        for n in range(3):
            await call(planner, "create_session", {"purpose": f"Follow-up {n + 1}: invoices API"})
        return str(session)


async def signed_in(page: Page, base: str, path: str, key: str) -> None:
    await page.goto(base + path)
    await page.fill("input[name=credential]", key)
    await page.fill("input[name=agent_id]", "maria")
    await page.click("button[type=submit]")
    await page.wait_for_url(base + path)


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="scs-shots-"))
    creds = Credentials()
    server = start_ours(data, creds, data / "server.log")
    base = f"http://127.0.0.1:{server.port}"
    try:
        session = await seed(server.url, creds.admin_key)
        tokens = await issue_tokens(server.url, creds.admin_key, ["tester"], agent_type="gemini")
        async with async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for scheme in ("light", "dark"):
                context = await browser.new_context(
                    viewport={"width": 1280, "height": 860}, color_scheme=scheme
                )
                page = await context.new_page()
                await signed_in(page, base, f"/ui/sessions/{session}", creds.admin_key)
                await page.wait_for_selector("body[data-live=on]")
                async with http_client(server.url, tokens["tester"], mode=MODERN) as tester:
                    posted = await call(
                        tester,
                        "add_message",
                        {
                            "session_id": session,
                            "content": "Fixed: all 412 tests pass on both backends.",
                        },
                    )
                await page.wait_for_selector(f"#m{posted['message']['id']}")
                await page.screenshot(path=OUT / f"dashboard-session-{scheme}.png", full_page=True)
                await page.goto(base + "/ui/")
                await page.screenshot(path=OUT / f"dashboard-sessions-{scheme}.png")
                await page.goto(base + "/ui/monitor")
                await page.screenshot(path=OUT / f"dashboard-monitor-{scheme}.png", full_page=True)
                await context.close()
            await browser.close()
    finally:
        server.stop()
    print(f"wrote {len(list(OUT.glob('dashboard-*.png')))} screenshots to {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
