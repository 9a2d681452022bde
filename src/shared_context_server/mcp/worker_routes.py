"""Each 2025-11-25 MCP session stays with the worker that opened it, on one shared port.

The kernel hands a connection to any worker of ``scs serve --workers N``, but a session
(``Mcp-Session-Id``) lives in the process that opened it. So a session id leaves a worker
as ``<pid>.<id>``; a request carrying another worker's id is relayed, streamed both ways,
to that worker over its unix socket (in a directory only this user can enter). The worker
that owns the session strips the tag and serves the request as if it had come to it
directly: the same gate, identity and access rules. A request for a worker that is gone
is answered by this one: 404, unknown session, and the client opens a new one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx2

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION = b"mcp-session-id"
# The client's address, from the worker that relayed the request (believed on the socket).
RELAYED_FOR = b"x-scs-relayed-for"
# Headers of one hop, not of the request or the response.
HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade"}


def socket_path(directory: Path, pid: int | str) -> Path:
    return directory / f"{pid}.sock"


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


class WorkerRoutes:
    """The ASGI app of one worker, in front of its MCP HTTP app ``app``."""

    def __init__(self, app: App, directory: Path) -> None:
        self._app = app
        self._directory = directory
        self._me = str(os.getpid())
        self._clients: dict[str, httpx2.AsyncClient] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        tagged = _header(scope, SESSION)
        owner, _, session = (tagged or b"").decode("latin-1").partition(".")
        if session and owner != self._me and socket_path(self._directory, owner).exists():
            await self._relay(owner, scope, receive, send)
            return
        if session and owner == self._me:
            scope["headers"] = [
                (key, session.encode("latin-1") if key == SESSION else value)
                for key, value in scope["headers"]
            ]
        await self._app(scope, receive, self._tagging(send))

    def relayed(self) -> App:
        """The app on this worker's socket: requests other workers relay, with the
        client's address they were sent from."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and (address := _header(scope, RELAYED_FOR)):
                scope["client"] = (address.decode("latin-1"), 0)
            await self(scope, receive, send)

        return app

    def _tagging(self, send: Send) -> Send:
        prefix = self._me.encode() + b"."

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (key, prefix + value if key.lower() == SESSION else value)
                    for key, value in message.get("headers", [])
                ]
            await send(message)

        return tagged

    def _client(self, owner: str) -> httpx2.AsyncClient:
        client = self._clients.get(owner)
        if client is None:
            uds = str(socket_path(self._directory, owner))
            # As many connections as streams: the owner's connection limit bounds them.
            limits = httpx2.Limits(max_connections=None, max_keepalive_connections=32)
            transport = httpx2.AsyncHTTPTransport(uds=uds, limits=limits)
            # No read deadline: a session's GET stream and a long wait are quiet for long.
            timeout = httpx2.Timeout(None, connect=5.0)
            client = httpx2.AsyncClient(transport=transport, timeout=timeout)
            self._clients[owner] = client
        return client

    async def _relay(self, owner: str, scope: Scope, receive: Receive, send: Send) -> None:
        body_read = anyio.Event()

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    break
            body_read.set()

        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP | {RELAYED_FOR}]
        if client := scope.get("client"):
            headers.append((RELAYED_FOR, str(client[0]).encode("latin-1")))
        query = scope.get("query_string", b"")
        path = scope.get("raw_path") or scope["path"].encode()
        url = "http://worker" + (path + (b"?" + query if query else b"")).decode("latin-1")
        client = self._client(owner)
        request = client.build_request(scope["method"], url, headers=headers, content=body())
        try:
            response = await client.send(request, stream=True)
        except httpx2.TransportError:
            # The owner is gone (the body is unread: connecting came first): 404 here.
            await self._clients.pop(owner).aclose()
            await self._app(scope, receive, send)
            return
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on_disconnect, body_read, receive, tg.cancel_scope)
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [
                            (k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP
                        ],
                    }
                )
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        except httpx2.TransportError:
            pass  # the owner went away mid-response: the client sees the stream end
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


async def _cancel_on_disconnect(
    body_read: anyio.Event, receive: Receive, scope: anyio.CancelScope
) -> None:
    """Stop relaying a response (an SSE stream, say) once its client has left."""
    await body_read.wait()
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
