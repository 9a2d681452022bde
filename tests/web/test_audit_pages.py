"""Agents and the audit trail in the dashboard (issue 12, parts 5 and 6), through HTTP on
both backends: presence of every agent, the log filtered by agent, session, event type and
time (admins only), the chain verified on demand, activity per agent."""

from __future__ import annotations

import re

import sqlalchemy as sa

from shared_context_server.domain.principal import Principal
from shared_context_server.storage.tables import messages
from tests.conftest import READ_WRITE
from tests.web.conftest import ALICE, BOB, Browser


async def test_the_agents_page_lists_who_is_around(browser: Browser) -> None:
    app = browser.served.app
    await app.presence.seen(ALICE)
    await app.presence.seen(BOB)
    await browser.sign_in()
    html = await browser.page("/ui/agents")
    for agent in ("alice", "bob", "human"):
        assert f'data-agent="{agent}"' in html


async def test_an_admin_filters_the_log(browser: Browser) -> None:
    app = browser.served.app
    first = await app.sessions.create(ALICE, "one")
    second = await app.sessions.create(BOB, "two")
    await app.messages.add(ALICE, first.id, "a")
    await app.messages.add(BOB, second.id, "b")
    await browser.sign_in()
    html = await browser.page("/ui/audit?agent=alice&event=message.added")
    rows = re.findall(r'<tr data-record="\d+">(.*?)</tr>', html, re.S)
    assert len(rows) == 1
    assert first.id in rows[0]
    by_session = await browser.page(f"/ui/audit?session={second.id}")
    assert second.id in by_session
    assert first.id not in by_session
    future = await browser.page("/ui/audit?since=2999-01-01T00:00")
    assert "No records match." in future
    assert (await browser.http.get("/ui/audit?since=yesterday")).status_code == 400


async def test_the_log_pages_with_before(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "busy")
    for n in range(105):
        await app.messages.add(ALICE, session.id, f"m{n}")
    await browser.sign_in()
    first = await browser.page("/ui/audit?event=message.added")
    ids = [int(i) for i in re.findall(r'data-record="(\d+)"', first)]
    assert len(ids) == 100
    older = re.search(r'rel="next" href="\?([^"]+)"', first)
    assert older is not None
    second = await browser.page("/ui/audit?" + older.group(1).replace("&amp;", "&"))
    rest = [int(i) for i in re.findall(r'data-record="(\d+)"', second)]
    assert len(rest) == 5
    assert max(rest) < min(ids)


async def test_verify_reports_an_intact_chain_and_then_a_tampered_one(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "trail")
    message = await app.messages.add(ALICE, session.id, "the record")
    await browser.sign_in()
    response = await browser.http.post(
        "/ui/audit/verify", data={"csrf": await browser.csrf("/ui/audit")}
    )
    assert response.status_code == 200
    chain = re.search(r'<p id="chain" class="ok">(.*?)</p>', response.text, re.S)
    assert chain is not None
    assert "Intact" in chain.group(1)
    assert "Last verified record #" in chain.group(1)
    with app.store.engine.begin() as conn:  # someone edits the message behind the server's back
        conn.execute(
            sa.update(messages).where(messages.c.id == message.id).values(content="edited")
        )
    response = await browser.http.post(
        "/ui/audit/verify", data={"csrf": await browser.csrf("/ui/audit")}
    )
    assert '<p id="chain" class="error">' in response.text


async def test_a_non_admin_sees_only_their_own_activity(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "mine")
    await app.messages.add(ALICE, session.id, "a")
    await app.messages.add(BOB, session.id, "b")
    token, _ = app.auth.issue_token(Principal("alice", "claude", READ_WRITE))
    await browser.sign_in(token)
    html = await browser.page("/ui/audit")
    summary = re.search(r'id="activity-summary">(.*?)</table>', html, re.S)
    assert summary is not None
    assert "alice" in summary.group(1)
    assert "bob" not in summary.group(1)
    assert 'id="audit-log"' not in html
    assert "Verify now" not in html
    response = await browser.http.post(
        "/ui/audit/verify", data={"csrf": await browser.csrf("/ui/audit")}
    )
    assert response.status_code == 403
