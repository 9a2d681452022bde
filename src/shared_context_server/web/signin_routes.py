"""Sign-in and sign-out. An API key acts as the agent and type the form names (default
``human``), with every permission the key holds; a token acts as its own agent. Failed
sign-ins count against the address's failure budget, shared with bearer credentials."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from shared_context_server.domain.models import Permission
from shared_context_server.errors import DomainError
from shared_context_server.services.auth_failures import (
    FAILED_AUTH_CODES,
    AuthFailures,
    address_key,
    claimed,
    is_jwt,
)
from shared_context_server.web.signin import PATH, Viewer
from shared_context_server.web.ui import Ui, http_status

HUMAN = "human"


def local(next_path: object) -> str:
    """Where to go after sign-in: a dashboard path, never another site."""
    if isinstance(next_path, str) and next_path.startswith(PATH + "/") and "//" not in next_path:
        return next_path
    return PATH + "/"


def routes(ui: Ui, failures: AuthFailures) -> list[Route]:
    auth = ui.app.auth

    async def form(request: Request) -> Response:
        return ui.render("signin.html", next=local(request.query_params.get("next")))

    async def signin(request: Request) -> Response:
        sent = await request.form()
        credential = str(sent.get("credential") or "").strip()
        agent_id = str(sent.get("agent_id") or "").strip() or HUMAN
        agent_type = str(sent.get("agent_type") or "").strip() or HUMAN
        target = local(sent.get("next"))

        def again(code: int, error: str) -> HTMLResponse:
            return ui.render(
                "signin.html",
                code,
                next=target,
                error=error,
                agent_id=agent_id,
                agent_type=agent_type,
            )

        if not credential:
            return again(400, "Enter an API key or a token.")
        address = address_key(request.client.host) if request.client else None
        token = is_jwt(credential)
        # A key lookup spends its failure up front, as a bearer key does (gate.py).
        reserved = not token and not auth.known_key(credential)
        if reserved and failures.reserve(address):
            return again(429, "Too many failed sign-ins from this address; try again shortly.")
        counted = False
        try:
            if token:
                await auth.verify_token(credential)
                started = ui.signins.start(credential, minted=False)
            else:
                issued = await auth.authenticate(
                    agent_id, agent_type, credential, frozenset(Permission)
                )
                started = ui.signins.start(issued.token, minted=True)
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
        ui.signins.keep(response, started, request)
        return response

    async def signout(_: Request, viewer: Viewer) -> Response:
        if viewer.signin.minted:
            await auth.revoke(viewer.signin.token)
        response = RedirectResponse(f"{PATH}/signin", 303)
        ui.signins.forget(response)
        return response

    return [
        Route("/signin", form, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", ui.signed_in(signout), methods=["POST"]),
    ]
