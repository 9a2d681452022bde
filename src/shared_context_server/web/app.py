"""The dashboard's routes, a Starlette app mounted at ``/ui``.

Each page resolves the viewer from its cookie (``signin.py``) and calls the services as
that principal, so it shows exactly what the identity may see. Forms carry the cookie's
CSRF token and are refused without it; the pages allow no script or style but their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from shared_context_server.app import App
from shared_context_server.domain.access import require_can_post
from shared_context_server.domain.limits import check_int
from shared_context_server.domain.models import Message, Permission, SessionStatus, Visibility
from shared_context_server.errors import DomainError, InvalidInputError
from shared_context_server.services.auth_failures import (
    FAILED_AUTH_CODES,
    AuthFailures,
    address_key,
    claimed,
    is_jwt,
)
from shared_context_server.web.render import Entry, markdown, pretty_json, threads
from shared_context_server.web.signin import PATH, Signins, Viewer
from shared_context_server.web.stream import StreamSlots, session_events

PAGE_SIZE = 50
TIMELINE = 200
HUMAN = "human"
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

Page = Callable[[Request, Viewer], Awaitable[Response]]

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
    "SESSION_LOCKED": 409,
    "SESSION_CLOSED": 409,
    "CONFLICT": 409,
    "LIMIT_EXCEEDED": 413,
    "RATE_LIMITED": 429,
    "STORAGE_UNAVAILABLE": 503,
}


def http_status(exc: DomainError) -> int:
    return HTTP_STATUS.get(exc.code, 400)


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
    return env


def _local(next_path: object) -> str:
    """Where to go after sign-in: a dashboard path, never another site."""
    if isinstance(next_path, str) and next_path.startswith(PATH + "/") and "//" not in next_path:
        return next_path
    return PATH + "/"


def build_dashboard(app: App, failures: AuthFailures) -> Starlette:
    env = _environment()
    signins = Signins(app.auth)
    slots = StreamSlots(app.settings.abuse.listen_streams_per_agent)
    message_macro = env.get_template("_message.html").module.show  # type: ignore[attr-defined]

    def fragment(message: Message) -> str:
        return str(message_macro(Entry(message), PATH))

    def render(template: str, code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(root=PATH, **context)
        return HTMLResponse(html, code, headers=SECURITY_HEADERS)

    def signed_in(page: Page) -> Callable[[Request], Awaitable[Response]]:
        """``page`` for a signed-in viewer; anyone else is sent to sign in. A form posted
        without the viewer's CSRF token is refused."""

        async def handler(request: Request) -> Response:
            viewer = await signins.viewer(request)
            if viewer is None:
                asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                target = quote(asked, safe="")
                response = RedirectResponse(f"{PATH}/signin?next={target}", 303)
                signins.forget(response)
                return response
            if request.method == "POST":
                form = await request.form()
                if not viewer.csrf_ok(form.get("csrf")):
                    return render("refused.html", 403, viewer=viewer, reason="csrf")
            return await page(request, viewer)

        return handler

    # sign-in ----------------------------------------------------------------------------

    async def signin_form(request: Request) -> Response:
        return render("signin.html", next=_local(request.query_params.get("next")))

    async def signin(request: Request) -> Response:
        form = await request.form()
        credential = str(form.get("credential") or "").strip()
        agent_id = str(form.get("agent_id") or "").strip() or HUMAN
        agent_type = str(form.get("agent_type") or "").strip() or HUMAN
        target = _local(form.get("next"))

        def again(status: int, error: str) -> HTMLResponse:
            return render(
                "signin.html",
                status,
                next=target,
                error=error,
                agent_id=agent_id,
                agent_type=agent_type,
            )

        if not credential:
            return again(400, "Enter an API key or a token.")
        address = address_key(request.client.host) if request.client else None
        token = is_jwt(credential)
        reserved = not token and not app.auth.known_key(credential)
        if reserved and failures.reserve(address):
            return again(429, "Too many failed sign-ins from this address; try again shortly.")
        counted = False
        try:
            if token:
                await app.auth.verify_token(credential)
                started = signins.start(credential, minted=False)
            else:
                issued = await app.auth.authenticate(
                    agent_id, agent_type, credential, frozenset(Permission)
                )
                started = signins.start(issued.token, minted=True)
        except DomainError as exc:
            if exc.code in FAILED_AUTH_CODES:
                counted = True
                # authenticate audits a failed key itself.
                await failures.failed(
                    address,
                    exc.code,
                    "dashboard",
                    claimed(agent_id),
                    audit=token,
                    reserved=reserved,
                )
            return again(http_status(exc), exc.message)
        finally:
            if reserved and not counted:
                failures.refund(address)
        response = RedirectResponse(target, 303)
        signins.keep(response, started, request)
        return response

    async def signout(request: Request, viewer: Viewer) -> Response:
        if viewer.signin.minted:
            await app.auth.revoke(viewer.signin.token)
        response = RedirectResponse(f"{PATH}/signin", 303)
        signins.forget(response)
        return response

    # sessions ---------------------------------------------------------------------------

    async def sessions_page(request: Request, viewer: Viewer) -> Response:
        query = request.query_params
        status_name = query.get("status") or None
        text = (query.get("q") or "").strip() or None
        try:
            page = max(0, int(query.get("page") or 0))
            status = SessionStatus(status_name) if status_name else None
            found = await app.sessions.overview(
                viewer.principal,
                status=status,
                text=text,
                limit=PAGE_SIZE + 1,
                offset=page * PAGE_SIZE,
            )
        except (ValueError, DomainError) as exc:
            code, message = _refusal(exc, "Not a valid filter.")
            return render(
                "sessions.html",
                code,
                viewer=viewer,
                error=message,
                rows=[],
                page=0,
                status=status_name,
                q=text,
                more=False,
                statuses=list(SessionStatus),
            )
        return render(
            "sessions.html",
            viewer=viewer,
            rows=found[:PAGE_SIZE],
            page=page,
            more=len(found) > PAGE_SIZE,
            status=status_name,
            q=text,
            statuses=list(SessionStatus),
        )

    async def session_page(request: Request, viewer: Viewer, **extra: Any) -> Response:
        session_id = request.path_params["session_id"]
        code = int(extra.pop("code", 200))
        try:
            read = await app.messages.context(viewer.principal, session_id, limit=TIMELINE)
        except DomainError as exc:
            return render("refused.html", http_status(exc), viewer=viewer, reason=exc.message)
        await app.presence.seen(viewer.principal, session_id)
        visibilities = [v for v in Visibility if _may(require_can_post, viewer, v)]
        return render(
            "session.html",
            code,
            viewer=viewer,
            session=read.session,
            entries=threads(read.messages),
            feed_cursor=read.feed_cursor,
            shown=len(read.messages),
            limit=TIMELINE,
            visibilities=visibilities,
            statuses=list(SessionStatus),
            **extra,
        )

    async def post_message(request: Request, viewer: Viewer) -> Response:
        session_id = request.path_params["session_id"]
        form = await request.form()
        content = str(form.get("content") or "")
        try:
            parent = str(form.get("parent_message_id") or "").strip()
            message = await app.messages.add(
                viewer.principal,
                session_id,
                content,
                visibility=_visibility(form.get("visibility")),
                parent_message_id=int(parent) if parent else None,
            )
        except (ValueError, DomainError) as exc:
            code, error = _refusal(exc, "Not a valid message.")
            draft = {"content": content, "parent": form.get("parent_message_id") or ""}
            return await session_page(request, viewer, code=code, error=error, draft=draft)
        return RedirectResponse(f"{PATH}/sessions/{quote(session_id)}#m{message.id}", 303)

    async def set_status(request: Request, viewer: Viewer) -> Response:
        session_id = request.path_params["session_id"]
        form = await request.form()
        try:
            status = SessionStatus(str(form.get("status") or ""))
            await app.sessions.update(viewer.principal, session_id, status=status)
        except (ValueError, DomainError) as exc:
            code, error = _refusal(exc, "Not a session status.")
            return await session_page(request, viewer, code=code, error=error)
        return RedirectResponse(f"{PATH}/sessions/{quote(session_id)}", 303)

    async def session_stream(request: Request, viewer: Viewer) -> Response:
        session_id = request.path_params["session_id"]
        try:
            cursor = _stream_cursor(request)
            await app.sessions.get(viewer.principal, session_id)
        except (ValueError, DomainError) as exc:
            code, error = _refusal(exc, "Not a stream position.")
            return PlainTextResponse(error, code)
        key = viewer.principal.root_id
        if slots.full(key):
            return PlainTextResponse("Too many open streams for this identity.", 429)

        async def still_signed_in() -> bool:
            return await signins.viewer(request) is not None

        async def body() -> AsyncIterator[bytes]:
            with slots.held(key):
                events = session_events(app, viewer, session_id, cursor, fragment, still_signed_in)
                async for chunk in events:
                    yield chunk

        headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    static = Path(__file__).parent / "static"
    routes = [
        Route("/", signed_in(sessions_page), methods=["GET"]),
        Route("/signin", signin_form, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signed_in(signout), methods=["POST"]),
        Route("/sessions/{session_id}", signed_in(session_page), methods=["GET"]),
        Route("/sessions/{session_id}/events", signed_in(session_stream), methods=["GET"]),
        Route("/sessions/{session_id}/messages", signed_in(post_message), methods=["POST"]),
        Route("/sessions/{session_id}/status", signed_in(set_status), methods=["POST"]),
        Mount("/static", StaticFiles(directory=static), name="static"),
    ]
    return Starlette(routes=routes)


def _refusal(exc: Exception, otherwise: str) -> tuple[int, str]:
    """The status and sentence of a refused form (a DomainError, or a value the form could
    not parse)."""
    if isinstance(exc, DomainError):
        return http_status(exc), exc.message
    return 400, otherwise


def _stream_cursor(request: Request) -> int:
    """Where a stream starts: after the last event the browser got (``Last-Event-ID``, on a
    reconnect), else after the position the page was read at."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    cursor = int(raw)
    if cursor < 0:
        raise InvalidInputError("a stream position is not negative", field="after")
    return check_int(cursor, "after")


def _visibility(value: object) -> Visibility:
    try:
        return Visibility(str(value or Visibility.PUBLIC.value))
    except ValueError:
        raise InvalidInputError("not a visibility", field="visibility") from None


def _may(check: Callable[..., None], viewer: Viewer, *args: Any) -> bool:
    """Whether the access rule ``check`` lets the viewer do it (the rule decides, here
    only asked)."""
    try:
        check(viewer.principal, *args)
    except DomainError:
        return False
    return True
