"""Who is looking: the signed-in identity, kept in a signed cookie.

The cookie holds the token the dashboard acts with and a CSRF token, signed with a key
derived from the token secret (so every process sharing the secret reads it). It is
``HttpOnly``, ``SameSite=Strict``, scoped to ``/ui`` and ``Secure`` over HTTPS. The token is
verified on every request like a bearer token, so its expiry and revocation hold here too.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from shared_context_server.domain.principal import Principal
from shared_context_server.errors import DomainError
from shared_context_server.services.auth import AuthService

COOKIE = "scs_dashboard"
PATH = "/ui"


@dataclass(frozen=True, slots=True)
class Signin:
    token: str
    csrf: str
    # The token was minted at sign-in (from an API key), so sign-out revokes it; a token
    # the human brought is theirs and outlives the dashboard's cookie.
    minted: bool


@dataclass(frozen=True, slots=True)
class Viewer:
    principal: Principal
    signin: Signin

    def csrf_ok(self, sent: object) -> bool:
        return isinstance(sent, str) and hmac.compare_digest(sent, self.signin.csrf)


class Signins:
    def __init__(self, auth: AuthService) -> None:
        self._auth = auth
        self._cookies = URLSafeSerializer(auth.derived_key("dashboard cookie"), salt=COOKIE)

    def start(self, token: str, *, minted: bool) -> Signin:
        return Signin(token, secrets.token_urlsafe(24), minted)

    def keep(self, response: Response, signin: Signin, request: Request) -> None:
        value = self._cookies.dumps([signin.token, signin.csrf, signin.minted])
        response.set_cookie(
            COOKIE,
            value,
            path=PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def forget(response: Response) -> None:
        response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="strict")

    async def viewer(self, request: Request) -> Viewer | None:
        """The signed-in identity, if the cookie is ours and its token still holds."""
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            token, csrf, minted = self._cookies.loads(value)
            principal = await self._auth.verify_token(str(token))
        except (BadSignature, ValueError, TypeError, DomainError):
            return None
        return Viewer(principal, Signin(str(token), str(csrf), bool(minted)))
