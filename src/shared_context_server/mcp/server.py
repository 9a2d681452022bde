"""The MCP server factory: FastMCP for tools; low-level handlers for resources, live updates,
prompts and completion, whose answers depend on who asks."""

from __future__ import annotations

from fastmcp import FastMCP
from mcp.server.lowlevel.server import NotificationOptions
from mcp_types import (
    CompleteRequestParams,
    GetPromptRequestParams,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    RequestParams,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    UnsubscribeRequestParams,
)

from shared_context_server import __version__
from shared_context_server.app import App
from shared_context_server.domain.rate_limit import TokenBuckets
from shared_context_server.mcp.auth_failures import AuthAttempts
from shared_context_server.mcp.callers import RequestCaller
from shared_context_server.mcp.capabilities import discover, drop_logging
from shared_context_server.mcp.completion import Completions
from shared_context_server.mcp.context import NamedSession, ToolContext
from shared_context_server.mcp.errors import ToolErrors, quiet_handler, quiet_refused_arguments
from shared_context_server.mcp.identity import AmbientCredential, IdentityResolver
from shared_context_server.mcp.live import LiveUpdates
from shared_context_server.mcp.measured import Measured
from shared_context_server.mcp.prompts import Prompts
from shared_context_server.mcp.resources import Resources
from shared_context_server.mcp.tools import register_tools
from shared_context_server.services.auth_failures import AuthFailures

INSTRUCTIONS = """\
Shared Context Server: a blackboard shared by a team of agents.
1. {identity}
2. create_session(purpose) or join one by id; add_message to share findings and decisions;
   get_context / get_messages (with cursor) to catch up; search_context to find things.
3. Keep private notes (add_private_note) and your own memory (set_memory, get_memory).
Subscribe to session://{session_id} to hear of new messages.
Prompts (prompts/list) walk through starting a collaboration, handing work to a
sub-agent and resuming a session.
"""
# Step 1 of INSTRUCTIONS, by whether tools take an auth_token (SCS_AUTH_TOKEN_PARAM).
PASS_A_TOKEN = """Get a token: authenticate_agent(agent_id, agent_type, api_key) unless your
   connection already carries one. Pass it as auth_token (or an Authorization: Bearer header)."""
CONNECTION_IDENTITY = "Your connection carries your identity: every call acts as you."


def build_server(app: App, ambient: AmbientCredential | None = None) -> FastMCP:
    abuse = app.settings.abuse
    identity = IdentityResolver(app.auth, ambient)
    live = LiveUpdates(
        app.bus, identity, app.sessions, app.presence, abuse.listen_streams_per_agent
    )
    calls = TokenBuckets(app.clock, abuse.calls_burst, abuse.calls_per_second)
    mcp = FastMCP(
        "shared-context-server",
        version=__version__,
        instructions=INSTRUCTIONS.replace(
            "{identity}", PASS_A_TOKEN if app.settings.auth_token_param else CONNECTION_IDENTITY
        ),
        mask_error_details=True,
    )
    quiet_refused_arguments()
    # Outermost first: every call is measured; failed authentication is counted from the
    # shaped tool result.
    mcp.add_middleware(Measured(app.metrics))
    failures = AuthFailures(app.auth.audit, app.clock, abuse.auth_failures_per_minute)
    mcp.add_middleware(AuthAttempts(failures, app.auth.known_key))
    mcp.add_middleware(ToolErrors())
    mcp.add_middleware(NamedSession())  # the caller is present in the session a call names
    register_tools(mcp, ToolContext(app, identity, live, calls), app.settings.tool_profile)

    caller = RequestCaller(identity, live, calls)
    resources = Resources(caller, app.sessions, app.messages, app.memory, app.presence)

    async def tool_names() -> frozenset[str]:
        return frozenset(tool.name for tool in await mcp.list_tools(run_middleware=False))

    prompts = Prompts(caller, app.messages, app.locks, app.memory, app.presence, tool_names)
    completions = Completions(caller, app.sessions, prompts)
    low = mcp._mcp_server
    # Advertise only the change notifications this server sends: the tool and prompt sets
    # are fixed, so neither list ever changes (capabilities.py does the same for 2026).
    low.notification_options = NotificationOptions(resources_changed=True)
    drop_logging(low)
    handlers = [
        ("resources/list", PaginatedRequestParams, resources.list),
        ("resources/templates/list", PaginatedRequestParams, resources.templates),
        ("resources/read", ReadResourceRequestParams, resources.read),
        ("resources/subscribe", SubscribeRequestParams, live.subscribe),
        ("resources/unsubscribe", UnsubscribeRequestParams, live.unsubscribe),
        ("subscriptions/listen", SubscriptionsListenRequestParams, live.listen),
        ("prompts/list", PaginatedRequestParams, prompts.list),
        ("prompts/get", GetPromptRequestParams, prompts.get),
        ("completion/complete", CompleteRequestParams, completions.complete),
        ("server/discover", RequestParams, discover(low)),
    ]
    for method, params, handler in handlers:
        low.add_request_handler(method, params, quiet_handler(handler))  # type: ignore[arg-type]
    return mcp
