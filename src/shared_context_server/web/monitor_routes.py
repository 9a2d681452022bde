"""Monitoring: the last hour's messages, active agents, tool calls, errors by code and
latency per tool, for admins and debuggers (the same numbers as ``/metrics``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared_context_server.errors import DomainError
from shared_context_server.web.charts import bars
from shared_context_server.web.signin import Viewer
from shared_context_server.web.ui import Ui, refusal


def routes(ui: Ui) -> list[Route]:
    app = ui.app

    async def monitor(_: Request, viewer: Viewer) -> Response:
        try:
            numbers = app.metrics.monitor(viewer.principal)
        except DomainError as exc:
            code, reason = refusal(exc, "")
            return ui.render("refused.html", code, viewer=viewer, reason=reason)
        charts = [
            bars(numbers.messages, "Messages per minute"),
            bars(numbers.active_agents, "Active agents per minute"),
            bars(numbers.calls, "Tool calls per minute (this process)"),
            bars(numbers.errors, "Failed tool calls per minute (this process)"),
        ]
        return ui.render("monitor.html", viewer=viewer, numbers=numbers, charts=charts)

    return [Route("/monitor", ui.signed_in(monitor), methods=["GET"])]
