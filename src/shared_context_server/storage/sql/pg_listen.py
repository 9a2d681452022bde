"""PostgreSQL LISTEN/NOTIFY: one listener connection per process wakes the feed relay when
another process commits a change (the notification names only the committing store; the
relay then reads the feed, where the access rules apply).

While the listener is connected nothing is polled but a safety read every
``SAFETY_READ_SECONDS``; while it is not (the database restarted, the connection dropped),
the relay reads the feed every ``interval`` and the listener reconnects with backoff.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import sqlalchemy as sa
from anyio.abc import TaskStatus

logger = logging.getLogger(__name__)

CHANNEL = "scs_changes"
# A notification's payload: the committing store's origin and its schema (its search_path's
# first). Deployments sharing a database in different schemas share the channel; each wakes
# for its own schema only. A payload without a schema (an older process) wakes everyone.
PAYLOAD = "CAST(:origin AS text) || ' ' || coalesce(current_schema(), '')"
SAFETY_READ_SECONDS = 30.0
RECONNECT_MIN_SECONDS = 0.05
RECONNECT_MAX_SECONDS = 5.0


class NotifyWatch:
    def __init__(self, url: sa.URL, origin: str, interval: float) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._origin = origin
        self._interval = interval
        self._wake = anyio.Event()
        self.listening = False
        self._reported = False  # the current outage is logged

    async def wait(self) -> None:
        with anyio.move_on_after(SAFETY_READ_SECONDS if self.listening else self._interval):
            await self._wake.wait()
        # A notification from now on sets the new event; one that set the old event after
        # it woke us is for a commit the caller's read, which follows, already sees.
        self._wake = anyio.Event()

    async def listen(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled, reconnecting; ``task_status`` is told after the first
        attempt, whether it connected or not."""
        import psycopg

        backoff, started = RECONNECT_MIN_SECONDS, False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, application_name="scs-listener"
                )
                async with conn:
                    found = await (await conn.execute("SELECT current_schema()")).fetchone()
                    schema = (found[0] if found else None) or ""
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._connected()
                    if not started:
                        task_status.started()
                        started = True
                    backoff = RECONNECT_MIN_SECONDS
                    async for note in conn.notifies():
                        origin, tagged, where = note.payload.partition(" ")
                        if origin != self._origin and (not tagged or where == schema):
                            self._wake.set()
            except psycopg.Error as exc:
                self._lost(type(exc).__name__)
            else:
                self._lost("closed")
            if not started:
                task_status.started()
                started = True
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)

    def _connected(self) -> None:
        if self._reported:
            logger.info("change notifications are back")
        self.listening, self._reported = True, False
        self._wake.set()  # what committed while nobody listened is read now

    def _lost(self, reason: str) -> None:
        if not self._reported:  # once per outage, without a traceback
            logger.warning(
                "no change notifications (%s); reading the feed every %.2f s until they are back",
                reason,
                self._interval,
            )
        self.listening, self._reported = False, True
        self._wake.set()  # the relay stops waiting for a notification that may not come


@asynccontextmanager
async def listening(url: sa.URL, origin: str, interval: float) -> AsyncIterator[NotifyWatch]:
    watch = NotifyWatch(url, origin, interval)
    async with anyio.create_task_group() as tg:
        await tg.start(watch.listen)
        try:
            yield watch
        finally:
            tg.cancel_scope.cancel()
