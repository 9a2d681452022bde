"""What a human does beyond posting (issue 12, parts 4 and 5), through HTTP on both
backends: change a message's visibility (audited), see who is present and which locks are
held, force-unlock as an admin; the panel refreshes from its own route, and the stream
tells of lock changes."""

from __future__ import annotations

import re

from shared_context_server.domain.locks import LockType
from shared_context_server.domain.models import Permission, Visibility
from shared_context_server.domain.principal import Principal
from tests.conftest import READ_WRITE
from tests.web.conftest import ADMIN, ALICE, BOB, Browser
from tests.web.test_stream import stream


async def test_a_sender_hides_their_message_with_a_reason_audited(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "visibility")
    mine = await app.messages.add(ALICE, session.id, "posted too early")
    theirs = await app.messages.add(BOB, session.id, "bob's")
    token, _ = app.auth.issue_token(ALICE)
    await browser.sign_in(token)
    path = f"/ui/sessions/{session.id}"
    page = await browser.page(path)
    forms = re.findall(r'name="message_id" value="(\d+)"', page)
    assert forms == [str(mine.id)]  # only her own message offers the change
    form = {"message_id": str(mine.id), "visibility": "private", "reason": "not final"}
    response = await browser.http.post(
        path + "/visibility", data={"csrf": await browser.csrf(path), **form}
    )
    assert response.status_code == 303
    assert (await app.messages.get(ALICE, mine.id)).visibility is Visibility.PRIVATE
    refused = {"message_id": str(theirs.id), "visibility": "private", "reason": "mine now"}
    response = await browser.http.post(
        path + "/visibility", data={"csrf": await browser.csrf(path), **refused}
    )
    assert response.status_code == 403
    assert (await app.messages.get(BOB, theirs.id)).visibility is Visibility.PUBLIC
    log = await app.audit.get_log(
        ADMIN, session_id=session.id, event_type="message.visibility_changed"
    )
    assert [(r.agent_id, r.metadata["reason"]) for r in log.records] == [("alice", "not final")]


async def test_a_change_without_a_reason_is_refused(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "visibility")
    message = await app.messages.add(ALICE, session.id, "text")
    await browser.sign_in()
    path = f"/ui/sessions/{session.id}"
    form = {"message_id": str(message.id), "visibility": "private", "reason": " "}
    response = await browser.http.post(
        path + "/visibility", data={"csrf": await browser.csrf(path), **form}
    )
    assert response.status_code == 400
    assert "reason" in response.text


async def test_the_panel_shows_presence_and_locks_and_an_admin_force_unlocks(
    browser: Browser,
) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "locks")
    await app.presence.seen(BOB, session.id)
    lock = await app.locks.lock(BOB, session.id, LockType.WRITE, ttl_seconds=600)
    await browser.sign_in()
    path = f"/ui/sessions/{session.id}"
    panel = await browser.page(path + "/coordination")
    assert re.search(r'id="present">.*?class="sender">bob<', panel, re.S)
    assert re.search(
        r'id="locks">.*?class="sender">bob<.*?fencing token ' + str(lock.fencing_token), panel, re.S
    )
    assert "Force-unlock" in panel
    response = await browser.http.post(path + "/unlock", data={"csrf": await browser.csrf(path)})
    assert response.status_code == 303
    assert await app.locks.status(ALICE, session.id) == []
    assert "No locks held." in await browser.page(path)
    log = await app.audit.get_log(ADMIN, session_id=session.id, event_type="lock.force_released")
    assert [r.agent_id for r in log.records] == ["human"]


async def test_only_an_admin_may_force_unlock(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "locks")
    await app.locks.lock(BOB, session.id, LockType.WRITE)
    token, _ = app.auth.issue_token(Principal("carol", "human", READ_WRITE))
    await browser.sign_in(token)
    path = f"/ui/sessions/{session.id}"
    assert "Force-unlock" not in await browser.page(path)
    response = await browser.http.post(path + "/unlock", data={"csrf": await browser.csrf(path)})
    assert response.status_code == 403
    assert len(await app.locks.status(ALICE, session.id)) == 1


async def test_the_stream_tells_of_a_lock_change(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "locks")
    await browser.sign_in()
    async with stream(browser, session.id) as events:
        await app.locks.lock(BOB, session.id, LockType.WRITE)
        activity = await events.next("activity")
        while activity.data["kind"] == "presence_changed":  # the viewer's own, for one
            activity = await events.next("activity")
        assert activity.data["kind"] == "lock_changed"
        assert activity.data["agent_id"] == "bob"


async def test_a_reader_of_another_session_gets_no_panel(browser: Browser) -> None:
    app = browser.served.app
    session = await app.sessions.create(ALICE, "locks")
    token, _ = app.auth.issue_token(Principal("dave", "human", frozenset({Permission.WRITE})))
    await browser.sign_in(token)
    response = await browser.http.get(f"/ui/sessions/{session.id}/coordination")
    assert response.status_code == 403
    assert (await browser.http.get("/ui/sessions/missing/coordination")).status_code == 403
