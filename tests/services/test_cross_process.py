"""Two servers on one database behave as one system: a change made through one reaches the
other's bus and its waiters (issue 11, part 2); on PostgreSQL an idle server reads nothing,
since other processes' commits are announced by NOTIFY instead of found by polling. What
each process keeps for itself stays right across them (part 3): cached credential checks,
the maintenance sweep, the presence write throttle."""

from __future__ import annotations

import time
from unittest import mock

import anyio
import pytest
import sqlalchemy as sa

from shared_context_server.app import running_app
from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.access import can_hear
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import KeyBinding
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import TokenRevokedError
from shared_context_server.services.maintenance import LEASE_INTERVALS
from tests.conftest import READ_WRITE, postgres_only

ALICE = Principal("alice", "claude", READ_WRITE)
BOB = Principal("bob", "gemini", READ_WRITE)
IDLE_WINDOW_S = 3.0


async def test_a_post_through_one_server_reaches_the_others_bus_and_waiters(
    backend_settings: Settings,
) -> None:
    async with running_app(backend_settings) as here, running_app(backend_settings) as there:
        session = await there.sessions.create(ALICE, "two servers")
        heard: list[ChangeEvent] = []
        arrived = anyio.Event()

        def listener(event: ChangeEvent) -> None:
            if event.kind is EventKind.MESSAGE_ADDED:
                heard.append(event)
                arrived.set()

        here.bus.subscribe(listener)
        cursor = await here.updates.cursor()
        posted = await there.messages.add(BOB, session.id, "the schema change is merged")
        with anyio.fail_after(30):
            await arrived.wait()
            batch = await here.updates.wait(
                ALICE, session_id=session.id, cursor=cursor, timeout_seconds=20
            )
    assert [e.message_id for e in heard] == [posted.id]
    assert [u.message.id for u in batch.updates if u.message] == [posted.id]


@postgres_only("NOTIFY announces other processes' commits on PostgreSQL alone; SQLite polls")
async def test_an_idle_server_on_postgres_makes_no_transactions(
    backend_settings: Settings,
) -> None:
    async with running_app(backend_settings) as app:
        began: list[float] = []
        sa.event.listen(app.store.engine, "begin", lambda _: began.append(time.monotonic()))
        # The start-up sweep and anchoring run first; then the server is idle.
        quiet_since = time.monotonic()
        with anyio.fail_after(30):
            while time.monotonic() - max([quiet_since, *began]) < 0.5:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        settled = len(began)
        await anyio.sleep(IDLE_WINDOW_S)  # the measurement itself: real idle time
        idle = len(began) - settled
    assert idle / IDLE_WINDOW_S < 1, f"{idle} transactions in {IDLE_WINDOW_S} s idle"


async def test_a_credential_revoked_through_one_server_fails_at_once_on_the_other(
    backend_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each server caches verifications; the revocation's feed event clears the other's
    cache (the periodic recheck is put out of reach, so only the event can do it)."""
    monkeypatch.setattr("shared_context_server.services.auth.REVOCATION_RECHECK_SECONDS", 3600)
    async with running_app(backend_settings) as here, running_app(backend_settings) as there:
        token, _ = here.auth.issue_token(ALICE)
        record, key = await there.auth.create_api_key("ci", READ_WRITE, KeyBinding("bob"))
        key_token = await here.auth.authenticate("bob", "generic", key)
        assert await here.auth.verify_token(token) == ALICE  # cached from now on
        await here.auth.verify_token(key_token.token)
        heard = anyio.Event()
        revoked: list[ChangeEvent] = []

        def listener(event: ChangeEvent) -> None:
            if event.kind is EventKind.CREDENTIAL_REVOKED:
                revoked.append(event)
                if len(revoked) == 2:
                    heard.set()

        here.bus.subscribe(listener)
        await there.auth.revoke(token)
        await there.delegation.revoke_api_key(record.name)
        with anyio.fail_after(30):
            await heard.wait()
        for gone in (token, key_token.token):
            with pytest.raises(TokenRevokedError):
                await here.auth.verify_token(gone)
    # The event names the credential, and no reader hears of it.
    assert [dict(e.payload) for e in revoked] == [{"jti": mock.ANY}, {"key": "ci"}]
    assert not any(can_hear(ALICE, e) for e in revoked)


async def test_the_maintenance_sweep_runs_in_one_process_of_the_database(
    backend_settings: Settings, clock: FakeClock
) -> None:
    """The lease: the first process to claim it sweeps and renews it; the other does not
    sweep until the lease lapses, then takes it over."""
    interval = 60.0
    async with (
        running_app(backend_settings, clock, background=False) as one,
        running_app(backend_settings, clock, background=False) as two,
    ):
        assert await one.maintenance.lead(interval)
        assert not await two.maintenance.lead(interval)
        clock.advance(interval)
        assert await one.maintenance.lead(interval)  # renewed
        assert not await two.maintenance.lead(interval)
        clock.advance(LEASE_INTERVALS * interval)  # ``one`` stopped renewing
        assert await two.maintenance.lead(interval)
        assert not await one.maintenance.lead(interval)


async def test_a_sighting_another_server_recorded_lately_is_not_written_again(
    backend_settings: Settings, clock: FakeClock
) -> None:
    """Each server throttles presence writes; across servers the stored last-seen does:
    an agent whose calls alternate between two servers is written once per refresh."""
    async with (
        running_app(backend_settings, clock, background=False) as here,
        running_app(backend_settings, clock, background=False) as there,
    ):
        session = await here.sessions.create(ALICE, "presence across servers")
        events: list[ChangeEvent] = []
        there.bus.subscribe(events.append)
        await here.presence.seen(ALICE, session.id)
        first = await there.store.read(lambda tx: tx.presence.get("alice"))
        clock.advance(1)
        await there.presence.seen(ALICE, session.id)  # within the refresh: nothing written
        after = await there.store.read(lambda tx: tx.presence.get("alice"))
        clock.advance(there.settings.presence_refresh_seconds)
        await there.presence.seen(ALICE, session.id)  # due: written
        later = await there.store.read(lambda tx: tx.presence.get("alice"))
    assert first is not None
    assert after is not None
    assert later is not None
    assert after.last_seen == first.last_seen
    assert later.last_seen > first.last_seen
    assert not [e for e in events if e.kind is EventKind.PRESENCE_CHANGED]
