"""Idempotent writes: a retry with the same key replays the first result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared_context_server.errors import ConflictError

# How long a key is remembered.
WINDOW = timedelta(hours=24)


def fingerprint(request: dict[str, Any]) -> str:
    body = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Remembered:
    """What an earlier call with a key recorded: its request's fingerprint and result."""

    fingerprint: str
    result: dict[str, Any]


def replay(
    remembered: Remembered | None, request: dict[str, Any], key: str
) -> dict[str, Any] | None:
    """The first call's result if this is its retry; None if the key is new. The same key
    with different arguments is a client bug: CONFLICT, not a replay."""
    if remembered is None:
        return None
    if remembered.fingerprint != fingerprint(request):
        raise ConflictError(
            "this idempotency key was used for a different request", idempotency_key=key
        )
    return remembered.result
