"""Agent memory's rules: where global memory lives, and optimistic concurrency."""

from __future__ import annotations

from shared_context_server.errors import ConflictError

# The scope of an agent's global memory: "" rather than None, so an entry is always named
# by (agent, scope, key), in storage's unique key and in the audit trail's entity ids.
GLOBAL_SCOPE = ""


def require_version(key: str, current: int, expected: int | None) -> None:
    """A write that expects a version (0: no entry) goes ahead only over that version."""
    if expected is not None and current != expected:
        raise ConflictError(
            f"memory key {key!r} is at version {current}, not {expected}",
            key=key,
            current_version=current,
        )
