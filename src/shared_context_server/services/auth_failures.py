"""Failed authentication per client address: a token bucket, and an audit record for each
failure the bucket lets through (so a flood writes a bounded number of them).

An attempt that would look an API key up spends its token *before* the lookup and gets
it back if the key turns out to be good, so concurrent bad keys cannot outrun the budget
and valid callers never spend it. Once an address's bucket is empty, its further API keys
are answered ``RATE_LIMITED`` without a lookup, except a key this process verified lately
(``AuthService.known_key``), which is verified as usual: a local flood cannot lock out an
agent that uses its key as a bearer. A JWT's signature is still checked, which costs no
database read for a forged one, so an agent holding a valid token keeps working while
another client at its address (every loopback client shares one) floods the server.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Awaitable, Callable
from typing import Any

from shared_context_server.clock import Clock
from shared_context_server.domain.audit import AuditEvent
from shared_context_server.domain.limits import check_agent_id
from shared_context_server.domain.rate_limit import TokenBuckets
from shared_context_server.errors import InvalidInputError, RateLimitedError
from shared_context_server.services.auth import API_KEY_PREFIX

# What a forged or guessed credential gets: a key that is no key, a token that is not one
# of ours. A revoked or expired token, or a real key naming an agent outside its binding,
# was issued by this server: it fails for its holder, who is known, and does not count.
FAILED_AUTH_CODES = frozenset(
    {"AUTH_FAILED", "TOKEN_INVALID", "TOKEN_WRONG_AUDIENCE", "TOKEN_UNSUPPORTED_ALGORITHM"}
)
ANONYMOUS = "anonymous"
LOOPBACK = "loopback"


def is_jwt(credential: str) -> bool:
    """Shaped like a JWT, as ``AuthService.resolve`` tells tokens from API keys."""
    return not credential.startswith(API_KEY_PREFIX) and credential.count(".") == 2


def retry_after(seconds: float) -> float:
    """Whole seconds, at least one: what ``Retry-After`` can say."""
    return float(max(1, math.ceil(seconds)))


def rate_limited(wait: float) -> RateLimitedError:
    seconds = retry_after(wait)
    return RateLimitedError(
        f"too many failed authentications from this address; retry in {seconds:.0f} s",
        retry_after=seconds,
    )


def claimed(agent_id: Any) -> str:
    """The agent id a failed caller named, if it is a well-formed one (it is not proven)."""
    if isinstance(agent_id, str):
        try:
            return check_agent_id(agent_id)
        except InvalidInputError:
            pass
    return ANONYMOUS


class AuthFailures:
    def __init__(
        self, audit: Callable[[AuditEvent], Awaitable[None]], clock: Clock, per_minute: int
    ) -> None:
        self._audit = audit
        self._clock = clock
        self._buckets = TokenBuckets(clock, per_minute, per_minute / 60)

    def reserve(self, address: str | None) -> float:
        """Spend one failure up front, before a lookup: 0.0 if the bucket had it (``refund``
        it unless the credential fails), else the seconds until it will. Without an address
        (stdio, in memory: one local client) nothing is counted."""
        return 0.0 if address is None else self._buckets.take(address)

    def refund(self, address: str | None) -> None:
        """Give back a reserved failure: the credential was good, or failed uncounted."""
        if address is not None:
            self._buckets.give(address)

    async def failed(
        self,
        address: str | None,
        code: str,
        via: str,
        agent_id: str = ANONYMOUS,
        *,
        audit: bool = True,
        reserved: bool = False,
    ) -> float:
        """Count a failure (``reserved``: already counted) and audit it, never with the
        credential. 0.0 if it was counted; else the bucket was empty, nothing is audited,
        and the seconds until it refills are returned (answer ``RATE_LIMITED``)."""
        if address is None:
            return 0.0
        if not reserved:
            wait = self._buckets.take(address)
            if wait:
                return wait
        if audit:
            metadata = {"via": via, "code": code, "address": address}
            event = AuditEvent(
                "auth.failed", agent_id, "unknown", self._clock.now(), metadata=metadata
            )
            await self._audit(event)
        return 0.0


def address_key(host: str | None) -> str | None:
    """Whose failures these are: the client's IPv4 address, or its IPv6 /64 (one host
    commonly holds a whole /64, and would otherwise pose as endless addresses). Every
    loopback address (127/8, ``::1``, IPv4-mapped) is one key, ``loopback``: a local
    client may bind any address in 127/8 and would otherwise get a budget for each."""
    if host is None:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return LOOPBACK
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
