"""Sessions: the list, one session's live view, and what a human does there (post,
reply, change the status, change a message's visibility, force-unlock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from shared_context_server.domain.access import require_can_post
from shared_context_server.domain.limits import check_int
from shared_context_server.domain.models import Message, Permission, SessionStatus, Visibility
from shared_context_server.errors import DomainError, InvalidInputError
from shared_context_server.web.render import threads
from shared_context_server.web.signin import PATH, Viewer
from shared_context_server.web.stream import StreamSlots, session_events
from shared_context_server.web.ui import SECURITY_HEADERS, Ui, may, refusal

PAGE_SIZE = 50
TIMELINE = 200


def routes(ui: Ui) -> list[Route]:
    app = ui.app
    slots = StreamSlots(app.settings.abuse.listen_streams_per_agent)

    def view_of(session_id: str) -> str:
        return f"{PATH}/sessions/{quote(session_id, safe='')}"

    async def sessions(request: Request, viewer: Viewer) -> Response:
        query = request.query_params
        status = query.get("status") or None
        text = (query.get("q") or "").strip() or None
        shown: dict[str, Any] = {"status": status, "q": text, "statuses": list(SessionStatus)}
        try:
            page = max(0, int(query.get("page") or 0))
            found = await app.sessions.overview(
                viewer.principal,
                status=SessionStatus(status) if status else None,
                text=text,
                limit=PAGE_SIZE + 1,
                offset=page * PAGE_SIZE,
            )
        except (ValueError, DomainError) as exc:
            code, error = refusal(exc, "Not a valid filter.")
            return ui.render(
                "sessions.html",
                code,
                viewer=viewer,
                error=error,
                rows=[],
                page=0,
                more=False,
                **shown,
            )
        return ui.render(
            "sessions.html",
            viewer=viewer,
            rows=found.rows[:PAGE_SIZE],
            page=page,
            more=len(found.rows) > PAGE_SIZE,
            feed_cursor=found.feed_cursor,
            **shown,
        )

    async def session(request: Request, viewer: Viewer, code: int = 200, **extra: Any) -> Response:
        session_id = request.path_params["session_id"]
        principal = viewer.principal
        try:
            read = await app.messages.context(principal, session_id, limit=TIMELINE)
            panel = await coordination_of(viewer, session_id)
        except DomainError as exc:
            status, reason = refusal(exc, "")
            return ui.render("refused.html", status, viewer=viewer, reason=reason)
        query = (request.query_params.get("q") or "").strip()
        if query and "hits" not in extra:
            try:
                extra["hits"] = await app.search.fuzzy(principal, session_id, query, limit=20)
            except DomainError as exc:
                code, extra["error"] = refusal(exc, "")
        return ui.render(
            "session.html",
            code,
            viewer=viewer,
            session=read.session,
            entries=threads(read.messages),
            shown=len(read.messages),
            limit=TIMELINE,
            feed_cursor=read.feed_cursor,
            **panel,
            visibilities=[v for v in Visibility if may(require_can_post, viewer, v)],
            statuses=list(SessionStatus),
            q=query,
            **extra,
        )

    async def coordination_of(viewer: Viewer, session_id: str) -> dict[str, Any]:
        """Who is present in the session and the locks held there, as the viewer may see."""
        principal = viewer.principal
        return {
            "present": await app.presence.active_agents(principal, session_id),
            "locks": await app.locks.status(principal, session_id),
            "may_unlock": principal.has(Permission.ADMIN),
        }

    async def coordination(request: Request, viewer: Viewer) -> Response:
        """The session view's coordination panel alone: the page refreshes it when the
        stream tells of a lock or presence change."""
        session_id = request.path_params["session_id"]
        try:
            found = await app.sessions.get(viewer.principal, session_id)
            panel = await coordination_of(viewer, session_id)
        except DomainError as exc:
            code, error = refusal(exc, "")
            return PlainTextResponse(error, code)
        return ui.render("_coordination.html", viewer=viewer, session=found, **panel)

    async def post(request: Request, viewer: Viewer) -> Response:
        session_id = request.path_params["session_id"]
        form = await request.form()
        content = str(form.get("content") or "")
        parent = str(form.get("parent_message_id") or "").strip()
        try:
            message = await app.messages.add(
                viewer.principal,
                session_id,
                content,
                visibility=visibility_of(form.get("visibility")),
                parent_message_id=int(parent) if parent else None,
            )
        except (ValueError, DomainError) as exc:
            code, error = refusal(exc, "Not a valid message.")
            draft = {"content": content, "parent": parent}
            return await session(request, viewer, code, error=error, draft=draft)
        return RedirectResponse(f"{view_of(session_id)}#m{message.id}", 303)

    async def set_status(request: Request, viewer: Viewer) -> Response:
        session_id = request.path_params["session_id"]
        form = await request.form()
        try:
            status = SessionStatus(str(form.get("status") or ""))
            await app.sessions.update(viewer.principal, session_id, status=status)
        except (ValueError, DomainError) as exc:
            code, error = refusal(exc, "Not a session status.")
            return await session(request, viewer, code, error=error)
        return RedirectResponse(view_of(session_id), 303)

    async def set_visibility(request: Request, viewer: Viewer) -> Response:
        session_id = request.path_params["session_id"]
        form = await request.form()
        try:
            message_id = int(str(form.get("message_id") or ""))
            visibility = visibility_of(form.get("visibility"))
            reason = str(form.get("reason") or "")
            await app.messages.set_visibility(viewer.principal, message_id, visibility, reason)
        except (ValueError, DomainError) as exc:
            code, error = refusal(exc, "Not a message.")
            return await session(request, viewer, code, error=error)
        return RedirectResponse(f"{view_of(session_id)}#m{message_id}", 303)

    async def unlock(request: Request, viewer: Viewer) -> Response:
        session_id = request.path_params["session_id"]
        try:
            await app.locks.force_unlock(viewer.principal, session_id)
        except DomainError as exc:
            code, error = refusal(exc, "")
            return await session(request, viewer, code, error=error)
        return RedirectResponse(view_of(session_id), 303)

    async def stream(request: Request, viewer: Viewer) -> Response:
        """One session's events, or (without a session: the sessions list's) those of
        every session the viewer may read."""
        session_id = request.path_params.get("session_id")
        try:
            cursor = stream_cursor(request)
            if session_id is not None:
                await app.sessions.get(viewer.principal, session_id)
        except (ValueError, DomainError) as exc:
            code, error = refusal(exc, "Not a stream position.")
            return PlainTextResponse(error, code)
        key = viewer.principal.root_id
        if slots.full(key):
            return PlainTextResponse("Too many open streams for this identity.", 429)

        async def still_signed_in() -> bool:
            return await ui.signins.viewer(request) is not None

        def fragment(message: Message) -> str:
            return ui.fragment(message, viewer)

        async def body() -> AsyncIterator[bytes]:
            with slots.held(key):
                events = session_events(app, viewer, session_id, cursor, fragment, still_signed_in)
                async for chunk in events:
                    yield chunk

        headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    one = "/sessions/{session_id}"
    return [
        Route("/", ui.signed_in(sessions), methods=["GET"]),
        Route("/events", ui.signed_in(stream), methods=["GET"]),
        Route(one, ui.signed_in(session), methods=["GET"]),
        Route(one + "/events", ui.signed_in(stream), methods=["GET"]),
        Route(one + "/coordination", ui.signed_in(coordination), methods=["GET"]),
        Route(one + "/messages", ui.signed_in(post), methods=["POST"]),
        Route(one + "/status", ui.signed_in(set_status), methods=["POST"]),
        Route(one + "/visibility", ui.signed_in(set_visibility), methods=["POST"]),
        Route(one + "/unlock", ui.signed_in(unlock), methods=["POST"]),
    ]


def stream_cursor(request: Request) -> int:
    """Where a stream starts: after the last event the browser got (``Last-Event-ID``, on a
    reconnect), else after the position the page was read at."""
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    cursor = int(raw)
    if cursor < 0:
        raise InvalidInputError("a stream position is not negative", field="after")
    return check_int(cursor, "after")


def visibility_of(value: object) -> Visibility:
    try:
        return Visibility(str(value or Visibility.PUBLIC.value))
    except ValueError:
        raise InvalidInputError("not a visibility", field="visibility") from None
