"""Resource URIs: ``session://{session_id}`` and ``agent://{agent_id}/memory``."""

from __future__ import annotations

import re

SESSION_TEMPLATE = "session://{session_id}"
MEMORY_TEMPLATE = "agent://{agent_id}/memory"
_SESSION = re.compile(r"^session://([A-Za-z0-9_-]{1,64})$")
_MEMORY = re.compile(r"^agent://([A-Za-z0-9._:@-]{1,100})/memory$")


def session_uri(session_id: str) -> str:
    return f"session://{session_id}"


def memory_uri(agent_id: str) -> str:
    return f"agent://{agent_id}/memory"


def parse_session_uri(uri: str) -> str | None:
    match = _SESSION.fullmatch(uri)
    return match.group(1) if match else None


def parse_memory_uri(uri: str) -> str | None:
    match = _MEMORY.fullmatch(uri)
    return match.group(1) if match else None
