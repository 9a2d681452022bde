"""Live updates in both protocol eras, fed by the event bus.

2025-11-25: ``resources/subscribe``/``unsubscribe`` per connection; notifications go out on
the connection's own stream. ``list_changed`` reaches every connection that has made an
authenticated request. 2026-07-28: ``subscriptions/listen``, whose response is the stream.
Both authorise when the subscription is made and filter each event through the access
rules for the subscriber, so nobody hears of a message they may not read. Each agent may
hold ``max_subscriptions`` at once (a 2025 subscription or a 2026 listen stream counts one),
and a listen stream may name at most that many URIs.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import (
    SUBSCRIPTION_ID_META_KEY,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    event_to_notification,
)
from mcp_types import (
    INVALID_REQUEST,
    EmptyResult,
    SubscribeRequestParams,
    SubscriptionFilter,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams,
    SubscriptionsListenRequestParams,
    SubscriptionsListenResult,
    UnsubscribeRequestParams,
)

from shared_context_server.domain.access import can_hear
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import DomainError, InvalidInputError, LimitExceededError
from shared_context_server.events.bus import EventBus
from shared_context_server.mcp.errors import rpc_error
from shared_context_server.mcp.identity import IdentityResolver
from shared_context_server.mcp.uris import parse_memory_uri, parse_session_uri, session_uri
from shared_context_server.services.presence import PresenceService
from shared_context_server.services.sessions import SessionService

logger = logging.getLogger(__name__)

MAX_BUFFERED_EVENTS = 1024
UPDATED = "notifications/resources/updated"
LIST_CHANGED = "notifications/resources/list_changed"


@dataclass(eq=False)
class _Connection:
    """A 2025-era connection: who last called on it, and what it watches as whom.

    Several agents may share one connection (sub-agents passing their own ``auth_token``),
    so each subscription keeps the identity that made it and is filtered by that one.
    """

    connection: weakref.ref[Connection]
    principal: Principal
    watching: dict[str, Principal] = field(default_factory=dict)


@dataclass(eq=False)
class _Listen:
    """A 2026-era listen stream."""

    principal: Principal
    uris: frozenset[str]
    list_changed: bool
    send: MemoryObjectSendStream[ServerEvent]


class LiveUpdates:
    def __init__(
        self,
        bus: EventBus,
        identity: IdentityResolver,
        sessions: SessionService,
        presence: PresenceService,
        max_subscriptions: int = 64,
    ) -> None:
        self._identity = identity
        self._sessions = sessions
        self._presence = presence
        self._max = max_subscriptions
        self._connections: dict[int, _Connection] = {}
        self._listens: set[_Listen] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = bus.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()
        for listen in list(self._listens):
            listen.send.close()

    # who is connected -------------------------------------------------------------------

    def remember(self, session: ServerSession, principal: Principal) -> _Connection | None:
        """Note who is on the connection behind ``session`` (a per-request proxy).

        Only connections with a standalone channel (the 2025 era) can be told things
        outside a request; 2026-era clients use ``subscriptions/listen`` instead.
        """
        connection: Connection = session._connection  # the SDK keeps it private
        if not connection.has_standalone_channel:
            return None
        key = id(connection)
        known = self._connections.get(key)
        if known is None or known.connection() is not connection:
            ref = weakref.ref(connection, lambda _: self._connections.pop(key, None))
            known = _Connection(ref, principal)
            self._connections[key] = known
        else:
            known.principal = principal
        return known

    async def _authorise(self, principal: Principal, uri: str) -> None:
        """May ``principal`` watch ``uri``? For ``session://``, readers of that session may.

        Our memory resource changes only by its owner's own calls, so it cannot be watched.
        A URI this server does not serve is accepted, as the protocol expects, and never fires.
        """
        session_id = parse_session_uri(uri)
        if session_id is not None:
            await self._sessions.get(principal, session_id)
            await self._presence.seen(principal, session_id)  # a subscriber is active there
        elif parse_memory_uri(uri) is not None:
            raise InvalidInputError("memory resources cannot be subscribed to", uri=uri)

    def _held_by(self, agent_id: str) -> int:
        """Subscriptions ``agent_id`` and its sub-agents hold now, in both eras."""
        held = sum(1 for listen in self._listens if listen.principal.root_id == agent_id)
        for known in list(self._connections.values()):
            if known.connection() is not None:
                held += sum(1 for w in known.watching.values() if w.root_id == agent_id)
        return held

    def _check_room(self, principal: Principal) -> None:
        if self._held_by(principal.root_id) >= self._max:
            raise LimitExceededError(
                f"{principal.agent_id} holds {self._max} subscriptions, the most one agent "
                "may; unsubscribe or close a listen stream first",
                limit=self._max,
            )

    # 2025-11-25 -------------------------------------------------------------------------

    async def subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams
    ) -> EmptyResult:
        uri = str(params.uri)
        try:
            principal = await self._identity.resolve(None, ctx.request)
            await self._authorise(principal, uri)
            known = self.remember(ctx.session, principal)
            if known is None:
                raise MCPError(INVALID_REQUEST, "this connection cannot receive notifications")
            if uri not in known.watching:
                self._check_room(principal)
        except DomainError as exc:
            raise rpc_error(exc, uri=uri) from exc
        known.watching[uri] = principal
        return EmptyResult()

    async def unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams
    ) -> EmptyResult:
        known = self._connections.get(id(ctx.session._connection))
        if known is not None:
            known.watching.pop(str(params.uri), None)
        return EmptyResult()

    # 2026-07-28 -------------------------------------------------------------------------

    async def listen(
        self, ctx: ServerRequestContext[Any, Any], params: SubscriptionsListenRequestParams
    ) -> SubscriptionsListenResult:
        subscription_id = ctx.request_id
        if subscription_id is None:
            raise MCPError(INVALID_REQUEST, "subscriptions/listen requires a request id")
        wanted = params.notifications
        uris = frozenset(wanted.resource_subscriptions or ())
        try:
            if len(uris) > self._max:
                raise LimitExceededError(
                    f"a listen stream may name at most {self._max} URIs", limit=self._max
                )
            principal = await self._identity.resolve(None, ctx.request)
            for uri in uris:
                await self._authorise(principal, uri)
            self._check_room(principal)
        except DomainError as exc:
            raise rpc_error(exc) from exc
        honored = SubscriptionFilter(
            resources_list_changed=True if wanted.resources_list_changed else None,
            resource_subscriptions=sorted(uris) or None,
        )
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}
        send, receive = anyio.create_memory_object_stream[ServerEvent](MAX_BUFFERED_EVENTS)
        listen = _Listen(principal, uris, bool(wanted.resources_list_changed), send)
        self._listens.add(listen)
        try:
            await ctx.session.send_notification(
                SubscriptionsAcknowledgedNotification(
                    params=SubscriptionsAcknowledgedNotificationParams(
                        notifications=honored, _meta=meta
                    )
                ),
                related_request_id=subscription_id,
            )
            async for server_event in receive:
                await ctx.session.send_notification(
                    event_to_notification(server_event, meta), related_request_id=subscription_id
                )
        finally:
            self._listens.discard(listen)
            send.close()
            receive.close()
        return SubscriptionsListenResult(_meta=meta)

    # fan-out ----------------------------------------------------------------------------

    def _on_event(self, event: ChangeEvent) -> None:
        uri = session_uri(event.session_id)
        list_changed = event.kind is EventKind.SESSION_CREATED
        for known in list(self._connections.values()):
            connection = known.connection()
            if connection is None:
                continue
            watcher = known.watching.get(uri)
            if watcher is not None and can_hear(watcher, event):
                self._spawn(connection.outbound.notify(UPDATED, {"uri": uri}))
            if list_changed and can_hear(known.principal, event):
                self._spawn(connection.outbound.notify(LIST_CHANGED, None))
        for listen in list(self._listens):
            if not can_hear(listen.principal, event):
                continue
            if uri in listen.uris:
                self._deliver(listen, ResourceUpdated(uri=uri))
            if list_changed and listen.list_changed:
                self._deliver(listen, ResourcesListChanged())

    def _deliver(self, listen: _Listen, event: ServerEvent) -> None:
        try:
            listen.send.send_nowait(event)
        except anyio.WouldBlock:
            # A subscriber that stopped reading loses its stream, not the server's memory.
            logger.warning("listen stream backlog full; closing it")
            self._listens.discard(listen)
            listen.send.close()
        except anyio.ClosedResourceError:
            self._listens.discard(listen)

    def _spawn(self, send: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(send)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("notification not delivered: %s", task.exception())
