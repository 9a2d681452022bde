"""Origin: scheme, host and port compared exactly.

FastMCP's guard lets any loopback origin reach a loopback server, whatever its scheme or
port, so a page served by another local program (``http://127.0.0.1:1``) could drive
this one. Here an ``Origin`` must be this server's own origin (the scheme of the request
and the port it arrived on, under one of the allowed host names), the request's own
``Host``, or one listed in ``allowed_origins``, each compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import ip_address
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize(origin: str) -> str | None:
    """``scheme://host:port`` in lower case with the port spelled out; None if ``origin``
    is not an origin at all (``null``, a path, no host)."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username is not None:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port if port is not None else DEFAULT_PORTS[scheme]}"


def _literal(host: str) -> bool:
    """A host name or address, not a pattern (``*.example.com``) or the any-address."""
    if any(c in host for c in "*?[]") or not host:
        return False
    try:
        return not ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return True


class ExactOrigin:
    def __init__(self, app: ASGIApp, hosts: Iterable[str], allowed_origins: Iterable[str]) -> None:
        self.app = app
        self._hosts = tuple(dict.fromkeys(h.lower() for h in (*LOCAL_HOSTS, *hosts) if _literal(h)))
        self._allowed = frozenset(o for o in map(normalize, allowed_origins) if o is not None)

    def allows(self, origin: str, scope: Scope) -> bool:
        wanted = normalize(origin)
        if wanted is None:
            return False
        if wanted in self._allowed:
            return True
        scheme = str(scope.get("scheme", "http"))
        server = scope.get("server")
        if server and server[1] is not None:
            own = {normalize(f"{scheme}://{_bracketed(h)}:{server[1]}") for h in self._hosts}
            if wanted in own:
                return True
        host = Headers(scope=scope).get("host")
        return host is not None and wanted == normalize(f"{scheme}://{host}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self.allows(origin, scope):
                await Response("Forbidden Origin", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
