"""The MCP server factory: FastMCP for tools, low-level handlers for resources and live updates."""

from __future__ import annotations

from fastmcp import FastMCP
from mcp.server.lowlevel.server import NotificationOptions
from mcp_types import (
    PaginatedRequestParams,
    ReadResourceRequestParams,
    SubscribeRequestParams,
    SubscriptionsListenRequestParams,
    UnsubscribeRequestParams,
)

from shared_context_server import __version__
from shared_context_server.app import App
from shared_context_server.mcp.context import ToolContext
from shared_context_server.mcp.errors import ToolErrors
from shared_context_server.mcp.identity import AmbientCredential, IdentityResolver
from shared_context_server.mcp.live import LiveUpdates
from shared_context_server.mcp.resources import Resources
from shared_context_server.mcp.tools import register_tools

INSTRUCTIONS = """\
Shared Context Server: a blackboard shared by a team of agents.
1. Get a token: authenticate_agent(agent_id, agent_type, api_key) unless your connection
   already carries one. Pass it as auth_token (or an Authorization: Bearer header).
2. create_session(purpose) or join one by id; add_message to share findings and decisions;
   get_context / get_messages (with cursor) to catch up; search_context to find things.
3. Keep private notes (add_private_note) and your own memory (set_memory, get_memory).
Subscribe to session://{session_id} to hear of new messages.
"""


def build_server(app: App, ambient: AmbientCredential | None = None) -> FastMCP:
    identity = IdentityResolver(app.auth, ambient)
    live = LiveUpdates(app.bus, identity, app.sessions)
    mcp = FastMCP(
        "shared-context-server",
        version=__version__,
        instructions=INSTRUCTIONS,
        mask_error_details=True,
    )
    mcp.add_middleware(ToolErrors())
    register_tools(mcp, ToolContext(app, identity, live), app.settings.tool_profile)

    resources = Resources(identity, live, app.sessions, app.messages, app.memory)
    low = mcp._mcp_server
    # Advertise only the change notifications this server sends: the tool set is fixed
    # and there are no prompts, so neither list ever changes.
    low.notification_options = NotificationOptions(resources_changed=True)
    low.add_request_handler("resources/list", PaginatedRequestParams, resources.list)
    low.add_request_handler("resources/templates/list", PaginatedRequestParams, resources.templates)
    low.add_request_handler("resources/read", ReadResourceRequestParams, resources.read)
    low.add_request_handler("resources/subscribe", SubscribeRequestParams, live.subscribe)
    low.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, live.unsubscribe)
    low.add_request_handler("subscriptions/listen", SubscriptionsListenRequestParams, live.listen)
    return mcp
