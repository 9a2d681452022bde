"""``scs audit verify`` and ``scs audit tail``: the audit trail, offline.

Both read the configured database directly (no server, no migrations, no writes), so they
also work on a copy of the database or while the server is down.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import anyio
import sqlalchemy as sa
import typer

from shared_context_server.config import Settings
from shared_context_server.domain.audit import AuditQuery, ChainReport
from shared_context_server.services.audit import verify_chain
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.sql_store import SqlStore

audit_cli = typer.Typer(help="The audit trail: verify its hash chain, show the latest records.")


def _open_store(settings: Settings) -> SqlStore:
    url = settings.resolved_database_url
    parsed = sa.make_url(url)
    database = parsed.database
    on_disk = parsed.get_backend_name() == "sqlite" and database not in (None, "", ":memory:")
    if on_disk and not Path(str(database)).exists():
        typer.echo(f"error: no database at {database}", err=True)
        raise typer.Exit(2)
    return SqlStore(create_engine(url, busy_timeout_ms=settings.sqlite_busy_timeout_ms))


def _describe(report: ChainReport) -> str:
    if report.broken is not None:
        return (
            f"audit trail BROKEN at record #{report.broken.record_id}: {report.broken.reason} "
            f"({report.checked} records verified before it)"
        )
    if report.last_id is None:
        return "audit trail is empty: nothing to verify"
    return (
        f"audit trail intact: {report.checked} records verified; "
        f"newest #{report.last_id} {report.last_hash}"
    )


def _unreadable(exc: sa.exc.SQLAlchemyError) -> typer.Exit:
    cause = getattr(exc, "orig", None) or exc
    typer.echo(f"error: cannot read the audit trail: {cause}", err=True)
    return typer.Exit(2)


@audit_cli.command("verify")
def audit_verify() -> None:
    """Verify the hash chain: exit 0 if intact, 1 if a record was edited or deleted."""

    async def main() -> ChainReport:
        store = _open_store(Settings())
        try:
            return await verify_chain(store)
        finally:
            await store.close()

    try:
        report = anyio.run(main)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(exc) from exc
    typer.echo(_describe(report))
    if not report.intact:
        raise typer.Exit(1)


@audit_cli.command("tail")
def audit_tail(
    limit: Annotated[int, typer.Option(min=1, max=1_000, help="How many records")] = 20,
) -> None:
    """Print the newest records, oldest of them first, one JSON object per line."""

    async def main() -> None:
        store = _open_store(Settings())
        try:
            records = await store.list_audit(AuditQuery(limit=limit))
        finally:
            await store.close()
        for record in reversed(records):
            row = {
                "id": record.id,
                "created_at": record.created_at.isoformat(),
                "event_type": record.event_type,
                "agent_id": record.agent_id,
                "agent_type": record.agent_type,
                "session_id": record.session_id,
                "target": record.target,
                "metadata": record.metadata,
            }
            typer.echo(json.dumps(row, ensure_ascii=False))

    try:
        anyio.run(main)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(exc) from exc
