"""What every dashboard page shares: templates, the viewer, CSRF, the refusal table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shared_context_server.app import App
from shared_context_server.domain.access import require_may_change_visibility
from shared_context_server.domain.models import Message, Visibility
from shared_context_server.errors import DomainError
from shared_context_server.web.render import Entry, markdown, pretty_json
from shared_context_server.web.signin import PATH, Signins, Viewer

# Pages run only their own script and style, post only to themselves, load in no frame.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# The one table from a refusal's code to the page's HTTP status (400 otherwise).
HTTP_STATUS = {
    "AUTH_REQUIRED": 401,
    "AUTH_FAILED": 401,
    "TOKEN_EXPIRED": 401,
    "TOKEN_REVOKED": 401,
    "TOKEN_INVALID": 401,
    "TOKEN_WRONG_AUDIENCE": 401,
    "TOKEN_UNSUPPORTED_ALGORITHM": 401,
    "PERMISSION_DENIED": 403,
    "IDENTITY_NOT_ALLOWED": 403,
    "SESSION_NOT_FOUND": 404,
    "MESSAGE_NOT_FOUND": 404,
    "NO_LOCK_HELD": 409,
    "SESSION_LOCKED": 409,
    "SESSION_CLOSED": 409,
    "CONFLICT": 409,
    "LIMIT_EXCEEDED": 413,
    "RATE_LIMITED": 429,
    "STORAGE_UNAVAILABLE": 503,
}

Page = Callable[[Request, Viewer], Awaitable[Response]]
Handler = Callable[[Request], Awaitable[Response]]


def http_status(exc: DomainError) -> int:
    return HTTP_STATUS.get(exc.code, 400)


def refusal(exc: Exception, otherwise: str) -> tuple[int, str]:
    """The status and sentence of a refused request: a DomainError's, or ``otherwise`` for
    a value the form or query could not parse."""
    if isinstance(exc, DomainError):
        return http_status(exc), exc.message
    return 400, otherwise


def may(check: Callable[..., None], viewer: Viewer, *args: Any) -> bool:
    """Whether the access rule ``check`` lets the viewer do it (the rule decides; the page
    only asks, to offer a control or not)."""
    try:
        check(viewer.principal, *args)
    except DomainError:
        return False
    return True


def may_change(viewer: Viewer, message: Message) -> bool:
    """Whether the viewer may change this message's visibility (to another than admin_only,
    which needs admin too): its sender, or an admin."""
    return may(require_may_change_visibility, viewer, message, Visibility.PUBLIC)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("shared_context_server.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = markdown
    env.filters["pretty_json"] = pretty_json
    env.filters["iso"] = lambda at: at.isoformat() if isinstance(at, datetime) else ""
    env.filters["utc"] = lambda at: at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""
    env.globals["may_change"] = may_change
    env.globals["all_visibilities"] = list(Visibility)
    env.globals["hit_entry"] = Entry
    return env


# Rendered messages kept for the live streams (oldest dropped first).
FRAGMENTS = 1_024


@dataclass
class Ui:
    app: App
    signins: Signins
    env: Environment
    _fragments: dict[tuple[int, Visibility, bool], str] = field(default_factory=dict)

    @classmethod
    def of(cls, app: App) -> Ui:
        return cls(app, Signins(app.auth), _environment())

    def render(self, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(root=PATH, **context)
        return HTMLResponse(html, code, headers=SECURITY_HEADERS)

    def fragment(self, message: Message, viewer: Viewer) -> str:
        """One message as the timeline shows it to ``viewer``, for the live streams: the
        same for every viewer who may (or may not) change it, so it is rendered once for
        all of them. Its form's CSRF token is left for the page's script to fill in."""
        changeable = may_change(viewer, message)
        key = (message.id, message.visibility, changeable)
        html = self._fragments.get(key)
        if html is None:
            show = self.env.get_template("_message.html").module.show  # type: ignore[attr-defined]
            html = str(show(Entry(message), PATH, viewer, True, ""))
            if len(self._fragments) >= FRAGMENTS:
                self._fragments.pop(next(iter(self._fragments)))
            self._fragments[key] = html
        return html

    def signed_in(self, page: Page) -> Handler:
        """``page`` for a signed-in viewer; anyone else is sent to sign in. A form posted
        without the viewer's CSRF token is refused."""

        async def handler(request: Request) -> Response:
            viewer = await self.signins.viewer(request)
            if viewer is None:
                asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(f"{PATH}/signin?next={quote(asked, safe='')}", 303)
                self.signins.forget(response)
                return response
            if request.method == "POST":
                form = await request.form()
                if not viewer.csrf_ok(form.get("csrf")):
                    return self.render("refused.html", 403, viewer=viewer, reason="csrf")
            # A page is an authenticated call like any other: the human is present.
            await self.app.presence.seen(viewer.principal, request.path_params.get("session_id"))
            return await page(request, viewer)

        return handler
