"""The audit trail against a real server process over HTTP, and the offline CLI check on
the same database after someone edits it behind the server's back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.tables import audit_log
from tests.e2e.conftest import (
    ADMIN_KEY,
    database_url_of,
    http_client,
    server_env,
    start_http_server,
    stop,
)
from tests.mcp.conftest import fails, ok


def _cli_verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared_context_server", "audit", "verify"],
        env=server_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_audit_trail_over_http_and_the_offline_check(data_dir: Path) -> None:
    server = start_http_server(data_dir)
    try:
        # No identity yet: a 2026 request needs none (a 2025 session does).
        async with http_client(server.url, mode="2026-07-28") as client:

            async def token(agent_id: str, permissions: list[str]) -> str:
                issued = await ok(
                    client,
                    "authenticate_agent",
                    agent_id=agent_id,
                    agent_type="claude",
                    api_key=ADMIN_KEY,
                    requested_permissions=permissions,
                )
                return str(issued["token"])

            worker = await token("worker", ["read", "write"])
            auditor = await token("auditor", ["read", "admin"])
            session_id = (await ok(client, "create_session", purpose="e2e", auth_token=worker))[
                "session"
            ]["id"]
            await ok(client, "add_message", session_id=session_id, content="x", auth_token=worker)
            denied = await fails(client, "get_audit_log", auth_token=worker)
            assert denied["code"] == "PERMISSION_DENIED"
            log = await ok(client, "get_audit_log", session_id=session_id, auth_token=auditor)
            assert [r["event_type"] for r in log["records"]] == [
                "message.added",
                "session.created",
            ]
            assert (await ok(client, "verify_audit_log", auth_token=auditor))["intact"] is True

            engine = create_engine(database_url_of(data_dir))
            with engine.begin() as conn:
                edited = log["records"][1]["id"]
                conn.execute(
                    sa.update(audit_log)
                    .where(audit_log.c.id == edited)
                    .values(agent_id="someone-else")
                )
            engine.dispose()
            report = await ok(client, "verify_audit_log", auth_token=auditor)
            assert report["intact"] is False
            assert report["first_break"]["record_id"] == edited
    finally:
        stop(server)
    result = _cli_verify(data_dir)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"BROKEN at record #{edited}" in result.stdout
