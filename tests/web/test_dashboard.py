"""The dashboard through HTTP as a browser uses it (issue 12, parts 1-4), on both backends:
sign-in and sign-out, who sees what, CSRF, posting and changing a session as a human."""

from __future__ import annotations

import re

import pytest

from shared_context_server.config import Settings
from shared_context_server.domain.models import Permission, SessionStatus, Visibility
from shared_context_server.domain.principal import Principal
from tests.security.inprocess import ADMIN_KEY, serving
from tests.web.conftest import ADMIN, ALICE, BOB, GEMINI, Browser

SIGNED_OUT_PAGES = ["/ui/", "/ui/sessions/any", "/ui/?status=active&q=x"]
SIGNED_OUT_FORMS = ["/ui/signout", "/ui/sessions/any/messages", "/ui/sessions/any/status"]


def message_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<article class="message[^"]*" id="m(\d+)"', html)]


async def test_a_signed_out_browser_is_sent_to_sign_in_from_every_page(browser: Browser) -> None:
    for path in SIGNED_OUT_PAGES:
        response = await browser.http.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/signin?next=%2Fui%2F"), path
    for path in SIGNED_OUT_FORMS:
        response = await browser.http.post(path, data={"csrf": "x", "content": "hi"})
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/signin"), path
    assert (await browser.http.get("/ui")).status_code in (307, 308)


async def test_sign_in_with_the_key_sets_a_strict_http_only_cookie(browser: Browser) -> None:
    signin = await browser.http.get("/ui/signin")
    assert signin.status_code == 200
    assert "script-src 'self'" in signin.headers["content-security-policy"]
    response = await browser.sign_in(next_path="/ui/?status=active")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/?status=active"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/ui" in cookie
    assert ADMIN_KEY.lower() not in cookie
    home = await browser.page("/ui/")
    assert 'class="agent">human<' in home
    assert '"badge perm">admin<' in home  # the key's permissions


async def test_sign_in_never_redirects_off_the_dashboard(browser: Browser) -> None:
    for target in ("https://evil.example/", "//evil.example/ui/", "/mcp", "/ui//evil"):
        response = await browser.sign_in(next_path=target)
        assert response.headers["location"] == "/ui/", target


async def test_a_bad_credential_is_refused_and_counted(backend_settings: Settings) -> None:
    import httpx2

    async with (
        serving(backend_settings, auth_failures_per_minute=2) as served,
        httpx2.AsyncClient(base_url=served.base, timeout=30) as http,
    ):
        browser = Browser(http, served)
        codes = [(await browser.sign_in("scs_not-a-key-" + "x" * 30)).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        assert "set-cookie" not in (await browser.sign_in("a.b.c")).headers
        assert (await browser.http.get("/ui/")).status_code == 303


async def test_a_tampered_cookie_is_signed_out(browser: Browser) -> None:
    await browser.sign_in()
    value = browser.http.cookies["scs_dashboard"]
    browser.http.cookies.clear()
    browser.http.cookies.set("scs_dashboard", value[:-2] + "xx", path="/ui")
    assert (await browser.http.get("/ui/")).status_code == 303


async def test_sign_out_revokes_the_token_sign_in_minted(browser: Browser) -> None:
    await browser.sign_in()
    cookie = browser.http.cookies["scs_dashboard"]
    response = await browser.post("/ui/signout", {})
    assert response.status_code == 303
    assert "scs_dashboard" not in browser.http.cookies
    browser.http.cookies.set("scs_dashboard", cookie, path="/ui")  # a copy kept by a thief
    assert (await browser.http.get("/ui/")).status_code == 303


async def test_a_token_signs_in_as_its_agent_and_outlives_sign_out(browser: Browser) -> None:
    token, _ = browser.served.app.auth.issue_token(ALICE)
    response = await browser.sign_in(token, agent_id="ignored")
    assert response.status_code == 303
    assert 'class="agent">alice<' in await browser.page("/ui/")
    await browser.post("/ui/signout", {})
    assert await browser.served.app.auth.verify_token(token) == ALICE  # still the holder's


async def test_the_sessions_list_counts_only_what_the_viewer_may_see(browser: Browser) -> None:
    app = browser.served.app
    mine = await app.sessions.create(ALICE, "Refactor the parser")
    other = await app.sessions.create(BOB, "Release notes")
    await app.messages.add(ALICE, mine.id, "public finding")
    await app.messages.add(ALICE, mine.id, "alice's own note", visibility=Visibility.PRIVATE)
    await app.messages.add(BOB, mine.id, "bob agrees")
    await app.sessions.update(
        BOB,
        other.id,
        status=SessionStatus.COMPLETED,
    )
    await browser.sign_in()
    html = await browser.page("/ui/")
    row = re.search(rf'data-session="{mine.id}">(.*?)</tr>', html, re.S)
    assert row is not None
    assert '<td class="num" data-count>2</td>' in row.group(
        1
    )  # alice's private note is not counted
    assert "bob, alice" in row.group(1)  # most recent poster first
    filtered = await browser.page("/ui/?status=completed")
    assert other.id in filtered
    assert mine.id not in filtered
    found = await browser.page("/ui/?q=PARSER")
    assert mine.id in found
    assert other.id not in found
    assert (await browser.http.get("/ui/?status=bogus")).status_code == 400


async def test_the_sessions_list_pages_past_fifty(browser: Browser) -> None:
    for n in range(53):
        await browser.served.app.sessions.create(ALICE, f"task {n:02d}")
    await browser.sign_in()
    first = await browser.page("/ui/")
    assert first.count("data-session=") == 50
    assert 'rel="next" href="?page=1"' in first
    second = await browser.page("/ui/?page=1")
    assert second.count("data-session=") == 3
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second
    assert "task 00" in second  # oldest activity last


async def test_the_session_view_shows_what_the_viewer_may_read(
    served_session: tuple[Browser, str, dict[str, int]],
) -> None:
    browser, session_id, ids = served_session
    await browser.sign_in()  # human, an admin: sees admin_only, not others' private notes
    html = await browser.page(f"/ui/sessions/{session_id}")
    shown = message_ids(html)
    assert ids["public"] in shown
    assert ids["admin_only"] in shown
    assert ids["private"] not in shown
    assert "alice's secret" not in html
    assert ids["agent_only"] not in shown
    assert "claude only" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "<strong>bold</strong>" in html  # Markdown, rendered
    reply = re.search(
        rf'id="m{ids["public"]}".*?<div class="replies">.*?id="m{ids["reply"]}"', html, re.S
    )
    assert reply is not None  # the reply sits under its parent
    assert '<details class="meta"><summary>metadata</summary><pre>{\n  &#34;files&#34;' in html
    assert '<details class="fold">' in html  # the long message is folded


async def test_an_agent_only_message_shows_to_a_viewer_of_its_type(
    served_session: tuple[Browser, str, dict[str, int]],
) -> None:
    browser, session_id, ids = served_session
    await browser.sign_in(agent_id="reviewer", agent_type="claude")
    shown = message_ids(await browser.page(f"/ui/sessions/{session_id}"))
    assert ids["agent_only"] in shown
    assert ids["admin_only"] in shown  # still the admin key's permissions
    browser.http.cookies.clear()
    token, _ = browser.served.app.auth.issue_token(GEMINI)
    await browser.sign_in(token)
    shown = message_ids(await browser.page(f"/ui/sessions/{session_id}"))
    assert ids["agent_only"] not in shown
    assert ids["admin_only"] not in shown
    assert ids["public"] in shown


async def test_a_human_posts_and_replies_as_themself(
    served_session: tuple[Browser, str, dict[str, int]],
) -> None:
    browser, session_id, ids = served_session
    app = browser.served.app
    await browser.sign_in(agent_id="dana")
    path = f"/ui/sessions/{session_id}"
    form = {
        "content": "Looks **good**",
        "visibility": "public",
        "parent_message_id": str(ids["public"]),
    }
    response = await browser.http.post(
        path + "/messages", data={"csrf": await browser.csrf(path), **form}
    )
    assert response.status_code == 303
    posted_id = int(response.headers["location"].rsplit("#m", 1)[1])
    posted = await app.messages.get(ALICE, posted_id)
    assert (posted.sender, posted.sender_type, posted.parent_message_id) == (
        "dana",
        "human",
        ids["public"],
    )
    assert "admin_only" in await browser.page(path)  # an admin may post admin_only


async def test_a_form_without_the_csrf_token_is_refused_and_writes_nothing(
    served_session: tuple[Browser, str, dict[str, int]],
) -> None:
    browser, session_id, _ids = served_session
    await browser.sign_in()
    path = f"/ui/sessions/{session_id}"
    before = message_ids(await browser.page(path))
    for form in ({}, {"csrf": "forged"}):
        for action, fields in (
            ("/messages", {"content": "forged post"}),
            ("/status", {"status": "archived"}),
        ):
            response = await browser.http.post(path + action, data={**form, **fields})
            assert response.status_code == 403
    html = await browser.page(path)
    assert message_ids(html) == before
    assert "forged post" not in html
    assert 'class="badge status-active"' in html
    assert (await browser.http.post("/ui/signout", data={})).status_code == 403


async def test_a_refused_post_keeps_the_draft(
    served_session: tuple[Browser, str, dict[str, int]],
) -> None:
    browser, session_id, _ids = served_session
    token, _ = browser.served.app.auth.issue_token(
        Principal("reader", "human", frozenset({Permission.READ}))
    )
    await browser.sign_in(token)
    path = f"/ui/sessions/{session_id}"
    assert "<h2>Post</h2>" not in await browser.page(path)  # no form for a read-only viewer
    response = await browser.http.post(
        path + "/messages", data={"csrf": await browser.csrf(path), "content": "my long draft"}
    )
    assert response.status_code == 403
    assert "write" in response.text  # the permission it lacks, said
    browser.http.cookies.clear()
    await browser.sign_in()
    bad_parent = {"content": "kept text", "parent_message_id": "999999"}
    response = await browser.http.post(
        path + "/messages", data={"csrf": await browser.csrf(path), **bad_parent}
    )
    assert response.status_code == 400
    assert "kept text" in response.text
    assert "999999" in response.text


async def test_a_human_changes_a_session_status_audited(
    served_session: tuple[Browser, str, dict[str, int]],
) -> None:
    browser, session_id, _ = served_session
    await browser.sign_in(agent_id="dana")
    path = f"/ui/sessions/{session_id}"
    response = await browser.http.post(
        path + "/status", data={"csrf": await browser.csrf(path), "status": "completed"}
    )
    assert response.status_code == 303
    assert 'class="badge status-completed"' in await browser.page(path)
    log = await browser.served.app.audit.get_log(ADMIN, session_id=session_id)
    assert any(r.event_type == "session.updated" and r.agent_id == "dana" for r in log.records)


@pytest.fixture
async def served_session(browser: Browser) -> tuple[Browser, str, dict[str, int]]:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "Ship the parser")
    ids = {}
    ids["public"] = (
        await app.messages.add(
            ALICE,
            session.id,
            "Found it: **bold** claim <script>alert(1)</script>",
            metadata={"files": ["a.py"]},
        )
    ).id
    ids["reply"] = (
        await app.messages.add(BOB, session.id, "Confirmed", parent_message_id=ids["public"])
    ).id
    ids["private"] = (
        await app.messages.add(ALICE, session.id, "alice's secret", visibility=Visibility.PRIVATE)
    ).id
    ids["agent_only"] = (
        await app.messages.add(ALICE, session.id, "claude only", visibility=Visibility.AGENT_ONLY)
    ).id
    ids["admin_only"] = (
        await app.messages.add(ADMIN, session.id, "ops note", visibility=Visibility.ADMIN_ONLY)
    ).id
    ids["long"] = (await app.messages.add(BOB, session.id, "A long report. " * 200)).id
    return browser, session.id, ids


async def test_search_within_the_session_finds_typos_the_viewer_may_see(
    served_session: tuple[Browser, str, dict[str, int]],
) -> None:
    browser, session_id, _ = served_session
    app = browser.served.app
    found = await app.messages.add(
        BOB,
        session_id,
        "The flaky integration test was a race in the connection pool: two workers "
        "returned the same connection before the transaction committed.",
    )
    await app.messages.add(
        ALICE, session_id, "connection pool notes, mine only", visibility=Visibility.PRIVATE
    )
    await browser.sign_in()
    html = await browser.page(f"/ui/sessions/{session_id}?q=conection+pol+racce")
    hits = re.search(r'<section class="card hits" id="hits">(.*?)</section>', html, re.S)
    assert hits is not None
    assert f'id="hit{found.id}"' in hits.group(1)
    assert "mine only" not in hits.group(1)
    assert f'id="m{found.id}"' in html  # the timeline keeps its own anchor
    assert "<script>alert" not in html
