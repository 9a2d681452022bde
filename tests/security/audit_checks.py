"""What the audit tampering tests share: a small history written through the services,
SQL run behind the server's back, both checks (``verify_audit_log`` through a real MCP
client, ``scs audit verify`` in-process), and an attacker's ways of rehashing the chain."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import sqlalchemy as sa
from typer.testing import CliRunner

from shared_context_server.app import App
from shared_context_server.cli.main import cli
from shared_context_server.config import Settings
from shared_context_server.domain.audit import GENESIS_HASH, AuditRecord
from shared_context_server.domain.models import KeyBinding, Permission, Visibility
from shared_context_server.domain.principal import Principal
from shared_context_server.storage.tables import audit_log
from tests.conftest import ADMIN, READ_WRITE
from tests.mcp.conftest import connect_client, ok, token_for

ALICE = Principal("alice", "claude", READ_WRITE)
BOB = Principal("bob", "claude", READ_WRITE)


@dataclass(frozen=True)
class History:
    session_id: str
    plan: int  # alice's public message
    note: int  # alice's private note
    done: int  # bob's message, the newest


async def write_history(app: App) -> History:
    await app.auth.create_api_key(
        "worker-key",
        frozenset({Permission.READ}),
        KeyBinding(agent_id="worker", agent_types=frozenset({"claude"})),
    )
    session = await app.sessions.create(ALICE, "the plan")
    plan = await app.messages.add(ALICE, session.id, "plan: A then B")
    note = await app.messages.add(ALICE, session.id, "A is risky", visibility=Visibility.PRIVATE)
    await app.memory.set(ALICE, "step", "A", session_id=session.id)
    done = await app.messages.add(BOB, session.id, "B done")
    return History(session.id, plan.id, note.id, done.id)


def tamper(app: App, *statements: sa.Executable) -> None:
    with app.store.engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


async def tool_report(app: App) -> dict[str, Any]:
    async with connect_client(app, token_for(app, "root", "gemini", ADMIN)) as root:
        return await ok(root, "verify_audit_log")


def cli_env(settings: Settings) -> dict[str, str]:
    assert settings.jwt_secret_key is not None
    env = {
        "SCS_DATA_DIR": str(settings.data_dir),
        "JWT_SECRET_KEY": settings.jwt_secret_key.get_secret_value(),
    }
    if settings.database_url:
        env["SCS_DATABASE_URL"] = settings.database_url
    return env


async def cli_verify(settings: Settings, *args: str) -> tuple[int, str]:
    """``scs audit verify`` in a worker thread (it runs its own event loop)."""

    def invoke() -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["audit", "verify", *args], env=cli_env(settings))
        return result.exit_code, result.stdout + result.stderr

    return await anyio.to_thread.run_sync(invoke)


async def detected(
    app: App, *, reason: str, entity: str | None = None, entity_id: str | None = None
) -> dict[str, Any]:
    """Both checks report the trail broken, naming ``reason`` (and the row) first. The
    offline check goes first: the tool's own ``audit.verified`` record changes the chain."""
    code, output = await cli_verify(app.settings)
    assert code == 1, output
    assert "audit trail BROKEN at " in output
    assert reason in output.splitlines()[0], output
    report = await tool_report(app)
    assert report["intact"] is False, report
    first = report["first_break"]
    assert reason in first["reason"], first
    if entity is not None:
        assert (first["entity"], first["entity_id"]) == (entity, entity_id), first
    assert report["breaks"][0] == first
    return report


async def chain_of(app: App) -> list[AuditRecord]:
    return await app.store.read(lambda tx: tx.audit.after(0, 10_000))


Hasher = Callable[[int, AuditRecord, str], tuple[str, int]]


def unkeyed(record_id: int, record: AuditRecord, prev_hash: str) -> tuple[str, int]:
    """The hash before the chain was keyed, as it was computed then: anyone can redo it."""
    body = json.dumps(
        [
            record_id,
            record.event_type,
            record.agent_id,
            record.agent_type,
            record.session_id,
            record.target,
            record.metadata,
            record.created_at.isoformat(),
            prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest(), 1


def keyed_with(key: bytes) -> Hasher:
    """The keyed formula, with a key of the attacker's choosing."""

    def rehash(record_id: int, record: AuditRecord, prev_hash: str) -> tuple[str, int]:
        body = json.dumps(
            [
                2,
                record_id,
                record.event_type,
                record.agent_id,
                record.agent_type,
                record.session_id,
                record.target,
                record.metadata,
                record.created_at.isoformat(),
                record.entity,
                record.entity_id,
                record.digest,
                prev_hash,
            ],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=str,
        )
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest(), 2

    return rehash


def rewrite_from(app: App, records: list[AuditRecord], start: int, rehash: Hasher) -> None:
    """Rehash and relink every record from position ``start`` on, as an attacker would."""
    prev = records[start - 1].hash if start else GENESIS_HASH
    statements = []
    for record in records[start:]:
        digest, version = rehash(record.id, record, prev)
        statements.append(
            sa.update(audit_log)
            .where(audit_log.c.id == record.id)
            .values(prev_hash=prev, hash=digest, hash_version=version)
        )
        prev = digest
    tamper(app, *statements)
