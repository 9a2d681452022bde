"""Validation of inputs against the configured limits (DESIGN.md §6).

``Limits`` is a plain value: the composition root (app.py) builds it from the
``SCS_LIMIT_*`` settings (config.LimitSettings); the domain never reads settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared_context_server.errors import InvalidInputError, LimitExceededError

AGENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:@-]{1,100}$")
KEY_PATTERN = re.compile(r"^\S+$")
MESSAGE_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Integers are stored as 64-bit signed numbers (SQLite INTEGER, PostgreSQL BIGINT); JSON
# numbers beyond them lose precision in most readers.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
NUL = "\x00"


@dataclass(frozen=True, slots=True)
class Limits:
    """Input limits (DESIGN.md §6). A value over a limit is refused, never truncated."""

    content_chars: int = 100_000
    metadata_bytes: int = 64 * 1024
    metadata_depth: int = 16
    memory_value_bytes: int = 1024 * 1024
    key_chars: int = 255
    purpose_chars: int = 1_000
    page_size: int = 1_000
    search_hits: int = 200
    ttl_seconds: int = 365 * 24 * 3600
    memory_list: int = 1_000


def check_agent_id(value: str, field: str = "agent_id") -> str:
    if not AGENT_ID_PATTERN.fullmatch(value):
        raise InvalidInputError(
            f"{field} must be 1-100 characters of letters, digits and . _ : @ -", field=field
        )
    return value


def check_text(value: str, field: str) -> str:
    """Refuse the NUL character: PostgreSQL cannot store it in text or JSON, so no backend
    accepts it."""
    if NUL in value:
        raise InvalidInputError(f"{field} must not contain NUL characters (\\x00)", field=field)
    return value


def check_int(value: int, field: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidInputError(
            f"{field} must be a 64-bit integer (between -2^63 and 2^63-1)", field=field
        )
    return value


def check_timestamp(value: datetime, field: str) -> datetime:
    """A timestamp with a time zone, as UTC. One that leaves the years 1-9999 once
    converted (``9999-12-31T23:59:59-14:00``) is refused, as is one without a zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{field} needs a time zone (e.g. Z or +02:00)", field=field)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(
            f"{field} is outside the years 1-9999 once converted to UTC", field=field
        ) from None


def check_content(limits: Limits, content: str) -> str:
    check_text(content, "content")
    if not content.strip():
        raise InvalidInputError("content must not be empty", field="content")
    if len(content) > limits.content_chars:
        raise LimitExceededError(
            f"content is {len(content)} characters; the limit is {limits.content_chars}",
            field="content",
            limit=limits.content_chars,
        )
    return content


def _depth(value: Any, field: str) -> int:
    """How deeply ``value`` nests; refuses NUL characters and integers beyond 64 bits on
    the way (one walk for every check)."""
    if isinstance(value, dict):
        for key in value:
            if isinstance(key, str) and NUL in key:
                check_text(key, field)
        return 1 + max((_depth(v, field) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, field) for v in value), default=0)
    if isinstance(value, str):
        if NUL in value:
            check_text(value, field)
    elif isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        check_int(value, field)
    return 0


def _encoded_size(value: Any, field: str) -> int:
    try:
        return len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{field} must be JSON-serialisable: {exc}", field=field) from exc
    except RecursionError:
        raise LimitExceededError(f"{field} nests too deeply", field=field) from None


def check_json(value: Any, *, field: str, max_bytes: int, max_depth: int) -> Any:
    json_bytes(value, field=field, max_bytes=max_bytes, max_depth=max_depth)
    return value


def json_bytes(value: Any, *, field: str, max_bytes: int, max_depth: int) -> int:
    """Checks ``value`` as ``check_json`` does and returns its size in bytes of JSON."""
    size = _encoded_size(value, field)
    if size > max_bytes:
        raise LimitExceededError(
            f"{field} is {size} bytes of JSON; the limit is {max_bytes}",
            field=field,
            limit=max_bytes,
        )
    if _depth(value, field) > max_depth:
        raise LimitExceededError(
            f"{field} nests deeper than {max_depth} levels", field=field, limit=max_depth
        )
    return size


def check_metadata(limits: Limits, metadata: Any, field: str = "metadata") -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"{field} must be a JSON object", field=field)
    checked: dict[str, Any] = check_json(
        metadata, field=field, max_bytes=limits.metadata_bytes, max_depth=limits.metadata_depth
    )
    return checked


def check_key(limits: Limits, key: str, field: str = "key") -> str:
    check_text(key, field)
    if not key or not KEY_PATTERN.fullmatch(key):
        raise InvalidInputError(f"{field} must be non-empty and contain no whitespace", field=field)
    if len(key) > limits.key_chars:
        raise LimitExceededError(
            f"{field} is {len(key)} characters; the limit is {limits.key_chars}",
            field=field,
            limit=limits.key_chars,
        )
    return key


def check_page(limits: Limits, limit: int, offset: int = 0, *, cap: int | None = None) -> None:
    top = cap or limits.page_size
    if limit < 1 or limit > top:
        raise LimitExceededError(f"limit must be between 1 and {top}", field="limit", limit=top)
    if offset < 0:
        raise InvalidInputError("offset must not be negative", field="offset")
    check_int(offset, "offset")


def check_message_type(value: str) -> str:
    if not MESSAGE_TYPE_PATTERN.fullmatch(value):
        raise InvalidInputError(
            "message_type must be 1-64 characters of letters, digits and . _ : -",
            field="message_type",
        )
    return value
