"""``scs audit verify`` and ``scs audit tail``: the audit trail, offline.

Both read the configured database directly (no server, no migrations, no writes), so they
also work on a copy of the database or while the server is down. Verifying needs the audit
key (``SCS_AUDIT_KEY`` or the data directory's ``audit_key``) and checks the chain against
the anchor file when there is one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import anyio
import sqlalchemy as sa
import typer

from shared_context_server.app import (
    OfflineError,
    OfflineStore,
    anchor_file,
    offline_audit_key,
    open_offline_store,
)
from shared_context_server.clock import SystemClock
from shared_context_server.config import Settings
from shared_context_server.domain.audit_verify import ChainBreak, ChainReport
from shared_context_server.services.audit import (
    latest_records,
    read_anchor,
    verify_chain,
    with_break,
)

audit_cli = typer.Typer(help="The audit trail: verify its hash chain, show the latest records.")


def _open_store(settings: Settings) -> OfflineStore:
    try:
        return open_offline_store(settings)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(exc) from exc
    except OfflineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _where(problem: ChainBreak) -> str:
    where = [f"record #{problem.record_id}"] if problem.record_id is not None else []
    if problem.entity is not None:
        where.append(f"{problem.entity} {problem.entity_id}")
    return " ".join(where) or "the trail"


def _describe(report: ChainReport) -> list[str]:
    first = report.broken
    if first is None:
        if report.last_id is None:
            return ["audit trail is empty and so is the database: nothing to verify"]
        anchor = report.anchor
        against = f"; the anchored head #{anchor.id} is in it" if anchor else ""
        return [
            f"audit trail intact: {report.checked} records verified, "
            f"{report.rows_checked} rows match their records{against}; "
            f"newest #{report.last_id} {report.last_hash}"
        ]
    lines = [
        f"audit trail BROKEN at {_where(first)}: {first.reason} "
        f"({report.checked} records verified, {report.rows_checked} rows compared; "
        f"{report.break_count} problem(s))"
    ]
    lines += [f"  also {_where(b)}: {b.reason}" for b in report.breaks[1:]]
    if report.break_count > len(report.breaks):
        lines.append(f"  ... and {report.break_count - len(report.breaks)} more")
    return lines


def _unreadable(exc: sa.exc.SQLAlchemyError) -> typer.Exit:
    cause = getattr(exc, "orig", None) or exc
    typer.echo(f"error: cannot read the audit trail: {cause}", err=True)
    return typer.Exit(2)


@audit_cli.command("verify")
def audit_verify(
    anchor: Annotated[
        Path | None,
        typer.Option(
            help="The anchor file to check the chain against "
            "(default: SCS_AUDIT_ANCHOR_PATH or the data directory's audit_anchor)"
        ),
    ] = None,
) -> None:
    """Verify the keyed hash chain, the anchor and every audited row: exit 0 if intact,
    1 if a record or a row was edited, inserted or deleted."""
    settings = Settings()
    if anchor is not None and not anchor.exists():
        typer.echo(f"error: no anchor file at {anchor}", err=True)
        raise typer.Exit(2)
    store = _open_store(settings)
    try:
        key = offline_audit_key(settings)
    except OfflineError as exc:
        store.engine.dispose()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    anchored, problem = read_anchor(anchor_file(settings, anchor))

    async def main() -> ChainReport:
        try:
            return await verify_chain(store, key, SystemClock().now(), anchored)
        finally:
            await store.close()

    try:
        report = anyio.run(main)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(exc) from exc
    if problem is not None:
        report = with_break(report, problem)
    for line in _describe(report):
        typer.echo(line)
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
            records = await latest_records(store, limit)
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
                "entity": record.entity,
                "entity_id": record.entity_id,
                "digest": record.digest,
            }
            typer.echo(json.dumps(row, ensure_ascii=False))

    try:
        anyio.run(main)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(exc) from exc
