"""Settings: the only module that reads the environment.

Every setting is ``SCS_``-prefixed; ``DATABASE_URL``, ``JWT_SECRET_KEY`` and ``API_KEY``
are accepted unprefixed as well, as deployment tools commonly set them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A shorter JWT secret or API key can be guessed offline from one token; refused at start.
MIN_SECRET_CHARS = 32
_SECRET_NAMES = {"jwt_secret_key": "JWT_SECRET_KEY", "api_key": "API_KEY"}


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "shared-context-server"


class LimitSettings(BaseSettings):
    """Input limits (DESIGN.md §6), read from ``SCS_LIMIT_*``: the fields of
    domain.limits.Limits, which app.py builds from them. A value over a limit is refused,
    never truncated."""

    model_config = SettingsConfigDict(env_prefix="SCS_LIMIT_", extra="ignore")

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


class QuotaSettings(BaseSettings):
    """Per-agent quotas (DESIGN.md §3), read from ``SCS_QUOTA_*``: the fields of
    domain.quotas.Quotas, which app.py builds from them. Over a quota a call is refused
    with ``LIMIT_EXCEEDED``."""

    model_config = SettingsConfigDict(env_prefix="SCS_QUOTA_", extra="ignore")

    # Sessions an agent has created that are not archived.
    sessions_per_agent: int = 1_000
    # Unexpired memory entries an agent holds (all scopes), and their JSON bytes.
    memory_keys_per_agent: int = 10_000
    memory_bytes_per_agent: int = 64 * 1024 * 1024
    # Messages one agent may post per minute (per server process).
    messages_per_minute: int = 600


class Abuse(BaseSettings):
    """Bounds that keep anonymous and abusive callers from exhausting what others need."""

    model_config = SettingsConfigDict(env_prefix="SCS_ABUSE_", extra="ignore")

    # Unexpired delegated tokens one agent may have minted (sub-agents share their
    # delegator's caps, quotas and rates, so this bounds what delegation multiplies).
    delegations_per_agent: int = 100
    # Open 2025-11-25 MCP sessions per identity; more get HTTP 429.
    mcp_sessions_per_agent: int = 32
    # Live subscriptions per identity: each 2025 resources/subscribe and each 2026
    # subscriptions/listen stream counts one; a listen stream names at most this many URIs.
    listen_streams_per_agent: int = 64
    # All open 2025-11-25 MCP sessions of the process; more get HTTP 503.
    mcp_sessions_total: int = 2_000
    # A 2025-11-25 MCP session with no request in flight for this long is closed.
    mcp_session_idle_seconds: float = 300.0
    # Failed authentications per client address: a bucket of this size, refilled per
    # minute; 0 turns the limit off.
    auth_failures_per_minute: int = 30
    # Calls per identity: a bucket of ``calls_burst`` refilled at ``calls_per_second``;
    # 0 turns the limit off.
    calls_per_second: float = 100.0
    calls_burst: int = 200
    # HTTP: a client must send its request head within header_timeout_seconds (of
    # connecting, or of the first byte of a later request), and its body within
    # body_timeout_seconds of the head; otherwise the connection is closed.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # Concurrent HTTP connections the process keeps; requests beyond get 503.
    max_connections: int = 500
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (client address
    # for the failure limit, scheme for the Origin check); none by default, so a
    # local client cannot pose as many addresses.
    trusted_proxies: list[str] = Field(default_factory=list)


class AuditSettings(BaseSettings):
    """The audit chain's key and its anchor outside the database."""

    model_config = SettingsConfigDict(env_prefix="SCS_AUDIT_", extra="ignore")

    # HMAC key of the chain; default: the file audit_key in the data directory (created
    # on first start). Several hosts on one database must share it.
    key: SecretStr | None = None
    # Where the newest head (id, hash) is written; default: audit_anchor in the data dir.
    anchor_path: Path | None = None
    # How often the head is anchored (the maintenance sweep also does it).
    anchor_seconds: float = 60.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SCS_DATABASE_URL", "DATABASE_URL")
    )
    jwt_secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SCS_JWT_SECRET_KEY", "JWT_SECRET_KEY")
    )
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SCS_API_KEY", "API_KEY")
    )
    # Identity for a stdio server: a JWT or an API key put in the client's launch config.
    auth_token: SecretStr | None = None
    # With an API key: the agent it acts as (default: the one the key is bound to).
    agent_id: str | None = None
    agent_type: str | None = None

    host: str = "127.0.0.1"
    port: int = 23456
    transport: Literal["stdio", "http"] = "stdio"
    # HTTP server processes on the one port (uvicorn's workers), sharing the database.
    workers: int = Field(default=1, ge=1, le=64)
    # Set by ``scs serve --workers`` for its workers: the directory of their unix sockets.
    worker_sockets: Path | None = None
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)

    jwt_issuer: str = "shared-context-server"
    jwt_audience: str = "shared-context-server"
    token_ttl_seconds: int = 24 * 3600

    archive_after_seconds: int = 7 * 24 * 3600
    sweep_interval_seconds: float = 60.0
    feed_poll_seconds: float = 0.01
    # Which tools are exposed: all, core (an agent's everyday set), readonly.
    tool_profile: Literal["all", "core", "readonly"] = "all"
    # False: no tool lists (or takes) the optional auth_token argument, for deployments
    # where every connection carries its identity (HTTP Authorization header, stdio
    # SCS_AUTH_TOKEN); a quarter of the tools/list a model reads is that argument.
    auth_token_param: bool = True
    # Who may read /metrics (Prometheus text): loopback clients only; a bearer credential
    # with the admin or debug permission; or nobody.
    metrics_access: Literal["loopback", "token", "off"] = "loopback"
    # wait_for_updates blocks at most this long: below common client tool timeouts.
    wait_max_seconds: float = 25.0
    sqlite_busy_timeout_ms: int = 10_000
    log_level: str = "WARNING"

    # Presence: agents not seen for this long show as offline; a call refreshes last-seen
    # at most once per presence_refresh_seconds (per agent, and per agent and session).
    presence_window_seconds: int = 300
    presence_refresh_seconds: float = 15.0
    # Session locks: default TTL, the heartbeat deadline (from grant or renew), the largest TTL.
    lock_ttl_seconds: int = 300
    lock_heartbeat_seconds: int = 60
    lock_max_ttl_seconds: int = 3600

    limits: LimitSettings = Field(default_factory=LimitSettings)
    quotas: QuotaSettings = Field(default_factory=QuotaSettings)
    abuse: Abuse = Field(default_factory=Abuse)
    audit: AuditSettings = Field(default_factory=AuditSettings)

    @field_validator("jwt_secret_key", "api_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: Any) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARS:
            name = _SECRET_NAMES[info.field_name]
            raise ValueError(
                f"{name} (or SCS_{name}) is {len(value.get_secret_value())} characters; it "
                f"must be at least {MIN_SECRET_CHARS}. Generate one with: python -c "
                "'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'shared_context.db'}"


def settings_problem(error: ValidationError) -> str:
    """A settings validation error as one line, without the values (they may be secrets)."""
    problems = []
    for e in error.errors(include_url=False, include_input=False):
        message = str(e["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in e["loc"])
        named = where.upper().removeprefix("SCS_") in _SECRET_NAMES.values()
        problems.append(message if named else f"{where}: {message}")
    return "invalid configuration: " + "; ".join(problems)
