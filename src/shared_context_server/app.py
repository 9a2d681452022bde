"""Composition root: settings → clock, store, bus, services; background work.

Nothing runs at import time; adapters receive a built ``App``.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import anyio
import sqlalchemy as sa

from shared_context_server.clock import Clock, SystemClock
from shared_context_server.config import Settings
from shared_context_server.domain.limits import Limits
from shared_context_server.domain.models import KeyBinding
from shared_context_server.domain.quotas import Quotas
from shared_context_server.errors import ConflictError
from shared_context_server.events.bus import InProcessBus
from shared_context_server.events.feed_relay import FeedRelay
from shared_context_server.services.audit import AuditService
from shared_context_server.services.auth import (
    ALL_PERMISSIONS,
    API_KEY_PREFIX,
    AuthService,
    TokenSettings,
    hash_api_key,
)
from shared_context_server.services.delegation import DelegationService
from shared_context_server.services.health import HealthService
from shared_context_server.services.live_feed import LiveFeed
from shared_context_server.services.locks import LockService, LockSettings
from shared_context_server.services.maintenance import MaintenanceService
from shared_context_server.services.memory import MemoryService
from shared_context_server.services.messages import MessageService
from shared_context_server.services.metrics import Metrics
from shared_context_server.services.presence import PresenceService
from shared_context_server.services.search import SearchService
from shared_context_server.services.sessions import SessionService
from shared_context_server.services.updates import UpdateService
from shared_context_server.storage import migrate
from shared_context_server.storage.audit_files import (
    AnchorFile,
    AuditKeyError,
    anchor_path_for,
    audit_key_for,
)
from shared_context_server.storage.engine import (
    create_engine,
    dialect_for,
    restrict_database_files,
)
from shared_context_server.storage.secret_files import read_or_create, restrict_data_dir
from shared_context_server.storage.sql.dialect import Dialect
from shared_context_server.storage.sql.store import SqlStore

logger = logging.getLogger(__name__)

BOOTSTRAP_KEY_NAME = "bootstrap-admin"
ENV_KEY_NAME = "env-admin"
# The bootstrap and API_KEY admin keys are operator keys: they may mint any agent.
OPERATOR_BINDING = KeyBinding(agent_types=None, any_agent=True)


@dataclass
class App:
    settings: Settings
    clock: Clock
    store: SqlStore
    bus: InProcessBus
    auth: AuthService
    sessions: SessionService
    messages: MessageService
    search: SearchService
    memory: MemoryService
    audit: AuditService
    maintenance: MaintenanceService
    relay: FeedRelay
    presence: PresenceService
    locks: LockService
    updates: UpdateService
    delegation: DelegationService
    health: HealthService
    metrics: Metrics
    live_feed: LiveFeed

    async def run_background(self) -> None:
        """Cross-process relay and maintenance sweeps, until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.relay.run)
            tg.start_soon(self.maintenance.run, self.settings.sweep_interval_seconds)
            tg.start_soon(self.audit.keep_anchored, self.settings.audit.anchor_seconds)


def _jwt_secret(settings: Settings) -> str:
    if settings.jwt_secret_key is not None:
        return settings.jwt_secret_key.get_secret_value()
    secret, _ = read_or_create(settings.data_dir / "jwt_secret")
    return secret


async def _register_env_key(app: App, plain: str) -> None:
    """API_KEY becomes an admin key; a changed API_KEY replaces (revokes) the previous one."""
    digest = hash_api_key(plain)
    if await app.auth.find_api_key(plain) is not None:
        return
    for old in await app.auth.list_api_keys():
        if old.name.startswith(ENV_KEY_NAME) and old.revoked_at is None:
            await app.delegation.revoke_api_key(old.name)
    await app.auth.create_api_key(
        f"{ENV_KEY_NAME}-{digest[:8]}", ALL_PERMISSIONS, OPERATOR_BINDING, key=plain
    )


async def _bootstrap_admin_key(app: App) -> None:
    """Make sure an admin can get in: API_KEY from the environment, or a generated key."""
    settings = app.settings
    try:
        if settings.api_key is not None:
            await _register_env_key(app, settings.api_key.get_secret_value())
            return
        if await app.auth.list_api_keys():
            return
        plain, created = read_or_create(
            settings.data_dir / "bootstrap_api_key", make=API_KEY_PREFIX + secrets.token_urlsafe(32)
        )
        await app.auth.create_api_key(
            BOOTSTRAP_KEY_NAME, ALL_PERMISSIONS, OPERATOR_BINDING, key=plain
        )
    except ConflictError:
        return  # another process sharing the database got there first
    if created:
        # stderr: on stdio, stdout belongs to the protocol.
        print(
            f"shared-context-server: bootstrap admin API key (shown once, also kept in "
            f"{settings.data_dir / 'bootstrap_api_key'}): {plain}",
            file=sys.stderr,
        )


async def open_app(settings: Settings, clock: Clock | None = None) -> App:
    clock = clock or SystemClock()
    restrict_data_dir(settings.data_dir)  # owner-only, also when it existed before
    # The backend is chosen here, once: its dialect module serves the engine and the store.
    dialect = dialect_for(settings.resolved_database_url)
    engine = create_engine(
        settings.resolved_database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        dialect=dialect,
    )
    try:
        return await _assemble(settings, clock, engine, dialect)
    except BaseException:
        engine.dispose()  # a start that fails leaves no connection open
        raise


async def _assemble(settings: Settings, clock: Clock, engine: sa.Engine, dialect: Dialect) -> App:
    """The app over ``engine``: migrated, wired, its trail opened and its admin key made."""
    await anyio.to_thread.run_sync(migrate.upgrade, engine)
    restrict_database_files(engine)
    audit_key = audit_key_for(settings)
    store = SqlStore(engine, dialect, audit_key=audit_key)
    bus = InProcessBus()
    limits = Limits(**settings.limits.model_dump())
    quotas = Quotas(**settings.quotas.model_dump())
    tokens = TokenSettings(
        secret=_jwt_secret(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=settings.token_ttl_seconds,
    )
    sessions = SessionService(store, bus, clock, limits, quotas)
    auth = AuthService(store, clock, tokens)
    messages = MessageService(store, bus, clock, limits, quotas)
    locks = LockService(
        store,
        bus,
        clock,
        LockSettings(
            ttl_seconds=settings.lock_ttl_seconds,
            heartbeat_seconds=settings.lock_heartbeat_seconds,
            max_ttl_seconds=settings.lock_max_ttl_seconds,
        ),
        sessions,
        messages,
    )
    audit = AuditService(
        store, clock, limits, key=audit_key, anchors=AnchorFile(anchor_path_for(settings))
    )
    app = App(
        settings=settings,
        clock=clock,
        store=store,
        bus=bus,
        auth=auth,
        sessions=sessions,
        messages=messages,
        search=SearchService(store, limits),
        memory=MemoryService(store, clock, limits, quotas),
        audit=audit,
        maintenance=MaintenanceService(
            store,
            bus,
            clock,
            archive_after_seconds=settings.archive_after_seconds,
            anchor=audit.anchor_head,
        ),
        relay=FeedRelay(store, bus, interval=settings.feed_poll_seconds),
        presence=PresenceService(
            store,
            bus,
            clock,
            sessions,
            window_seconds=settings.presence_window_seconds,
            refresh_seconds=settings.presence_refresh_seconds,
        ),
        locks=locks,
        updates=UpdateService(
            store, bus, clock, sessions, max_wait_seconds=settings.wait_max_seconds
        ),
        delegation=DelegationService(
            store,
            clock,
            auth,
            sessions,
            locks,
            max_ttl_seconds=settings.token_ttl_seconds,
            max_live=settings.abuse.delegations_per_agent,
        ),
        health=HealthService(store, clock),
        metrics=Metrics(clock),
        live_feed=LiveFeed(store, bus),
    )
    bus.subscribe(auth.hear)  # credentials other processes revoke
    bus.subscribe(app.metrics.hear)
    await audit.open_trail()
    await _bootstrap_admin_key(app)
    await app.relay.start_position()
    return app


# The store the composition root builds, as adapters name it (they import no storage).
OfflineStore: TypeAlias = SqlStore


class OfflineError(Exception):
    """What keeps a command from reading the database without a server, as one line."""


def open_offline_store(settings: Settings) -> OfflineStore:
    """The configured database, for reading without a server (``scs audit``): neither
    created nor migrated. OfflineError if it is missing or not at the head revision; a
    database that cannot be read raises SQLAlchemy's error."""
    url = settings.resolved_database_url
    parsed = sa.make_url(url)
    database = parsed.database
    on_disk = parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:")
    if on_disk and not Path(str(database)).exists():
        raise OfflineError(f"no database at {database}")
    dialect = dialect_for(url)
    engine = create_engine(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms, dialect=dialect)
    try:
        revision = migrate.current_revision(engine)
    except sa.exc.SQLAlchemyError:
        engine.dispose()
        raise
    if revision != migrate.HEAD:
        engine.dispose()
        raise OfflineError(
            f"the database is at revision {revision or 'none'}, not {migrate.HEAD}: "
            "start the server once, or run `scs db upgrade`"
        )
    return SqlStore(engine, dialect)


def offline_audit_key(settings: Settings) -> bytes:
    """The audit key of these settings, never created (OfflineError if there is none)."""
    try:
        return audit_key_for(settings, create=False)
    except AuditKeyError as exc:
        raise OfflineError(str(exc)) from exc


def anchor_file(settings: Settings, path: Path | None = None) -> AnchorFile:
    """The anchor file ``path``, else the configured one."""
    return AnchorFile(path or anchor_path_for(settings))


@asynccontextmanager
async def running_app(
    settings: Settings, clock: Clock | None = None, *, background: bool = True
) -> AsyncIterator[App]:
    app = await open_app(settings, clock)
    try:
        if not background:
            yield app
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(app.run_background)
            yield app
            tg.cancel_scope.cancel()
    finally:
        await app.store.close()
