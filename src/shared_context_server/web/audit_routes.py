"""Agents and the audit trail: who is around, what the trail records (filterable, for
admins), whether its chain verifies, and what each agent did in a window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared_context_server.errors import DomainError, InvalidInputError
from shared_context_server.services.audit import WINDOWS
from shared_context_server.web.signin import Viewer
from shared_context_server.web.ui import Ui, refusal

LOG_PAGE = 100
FILTERS = ("agent", "session", "event", "since", "until")


def routes(ui: Ui) -> list[Route]:
    app = ui.app

    async def agents(_: Request, viewer: Viewer) -> Response:
        seen = await app.presence.active_agents(viewer.principal, include_offline=True)
        return ui.render("agents.html", viewer=viewer, agents=seen)

    async def audit(request: Request, viewer: Viewer, **extra: Any) -> Response:
        query = request.query_params
        filters = {name: (query.get(name) or "").strip() for name in FILTERS}
        window = query.get("window") or "24h"
        principal = viewer.principal
        shown: dict[str, Any] = {"filters": filters, "window": window, "windows": list(WINDOWS)}
        try:
            summary = await app.audit.activity_summary(principal, window)
            log = None
            if principal.is_admin:
                before = query.get("before")
                log = await app.audit.get_log(
                    principal,
                    agent_id=filters["agent"] or None,
                    session_id=filters["session"] or None,
                    event_type=filters["event"] or None,
                    since=moment(filters["since"], "since"),
                    until=moment(filters["until"], "until"),
                    before_id=int(before) if before else None,
                    limit=LOG_PAGE,
                )
        except (ValueError, DomainError) as exc:
            code, error = refusal(exc, "Not a valid filter.")
            return ui.render("audit.html", code, viewer=viewer, error=error, **shown)
        return ui.render("audit.html", viewer=viewer, summary=summary, log=log, **shown, **extra)

    async def verify(request: Request, viewer: Viewer) -> Response:
        try:
            report = await app.audit.verify(viewer.principal)
        except DomainError as exc:
            code, error = refusal(exc, "")
            return ui.render("audit.html", code, viewer=viewer, error=error, filters={})
        return await audit(request, viewer, report=report)

    return [
        Route("/agents", ui.signed_in(agents), methods=["GET"]),
        Route("/audit", ui.signed_in(audit), methods=["GET"]),
        Route("/audit/verify", ui.signed_in(verify), methods=["POST"]),
    ]


def moment(value: str, field: str) -> datetime | None:
    """An ISO 8601 time from a filter; one without a zone is UTC."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{field}: use ISO 8601, e.g. 2026-12-01T09:00Z", field=field
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
