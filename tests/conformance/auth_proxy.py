"""Header-injecting reverse proxy for the MCP conformance suite.

The suite cannot send an ``Authorization`` header, and the server requires an identity for
everything but ``authenticate_agent`` (DESIGN.md §3). This proxy listens on loopback and
forwards every request to the server unchanged (method, path, query, body, and the client's
own ``Host`` and ``Origin``, so DNS-rebinding probes reach the server as sent), adding
``Authorization: Bearer <token>``. Responses, SSE streams included, are streamed back as they
arrive; when the client goes away the upstream request is closed too.

Usage::

    SCS_CONFORMANCE_TOKEN=... python tests/conformance/auth_proxy.py \\
        --upstream http://127.0.0.1:8000 --port-file /tmp/proxy.port

It binds ``127.0.0.1`` on a free port (or ``--port``) and writes that port to ``--port-file``
once it is listening.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import uvicorn

# Connection-level headers are never forwarded (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

Scope = dict[str, Any]
Message = dict[str, Any]


class AuthProxy:
    def __init__(self, upstream: str, token: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._authorization = f"Bearer {token}".encode()
        # No timeouts: SSE streams stay open as long as the client wants them.
        self._client = httpx2.AsyncClient(
            timeout=httpx2.Timeout(None),
            limits=httpx2.Limits(max_connections=None, max_keepalive_connections=20),
        )

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = [
            (name, value)
            for name, value in scope["headers"]
            if name.lower() not in HOP_BY_HOP and name.lower() != b"authorization"
        ]
        headers.append((b"authorization", self._authorization))
        body = await _read_body(receive)
        url = self._upstream + scope["raw_path"].decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        request = self._client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            await _plain(send, 502, f"upstream unreachable: {exc}".encode())
            return
        try:
            async with anyio.create_task_group() as tg:

                async def watch_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                tg.start_soon(watch_disconnect)
                await send(
                    {
                        "type": "http.response.start",
                        "status": response.status_code,
                        "headers": [
                            (name.lower(), value)
                            for name, value in response.headers.raw
                            if name.lower() not in HOP_BY_HOP
                        ],
                    }
                )
                async for chunk in _chunks(response):
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        except* (OSError, httpx2.HTTPError):
            pass  # either side went away mid-response
        finally:
            await response.aclose()

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _read_body(receive: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _chunks(response: httpx2.Response) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_raw():
        if chunk:
            yield chunk


async def _plain(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--upstream", required=True, help="server base URL, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free one)")
    parser.add_argument("--port-file", type=Path, help="write the bound port here when ready")
    args = parser.parse_args(argv)
    token = os.environ.get("SCS_CONFORMANCE_TOKEN", "")
    if not token:
        sys.exit("auth_proxy: set SCS_CONFORMANCE_TOKEN")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    if args.port_file is not None:
        # Already listening: a client that connects now waits in the backlog until served.
        args.port_file.write_text(f"{port}\n")

    config = uvicorn.Config(
        AuthProxy(args.upstream, token),
        log_level="warning",
        lifespan="on",
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
