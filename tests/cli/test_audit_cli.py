"""``scs audit verify`` and ``scs audit tail`` against a real data directory, offline."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from shared_context_server.app import running_app
from shared_context_server.cli.main import cli
from shared_context_server.domain.principal import Principal
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.tables import audit_log
from tests.conftest import READ_WRITE, make_settings

SECRET = "cli-secret-" + "c" * 40


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    return {"SCS_DATA_DIR": str(data_dir), "JWT_SECRET_KEY": SECRET}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout + result.stderr


def _some_history(data_dir: Path) -> None:
    async def main() -> None:
        async with running_app(make_settings(data_dir), background=False) as app:
            alice = Principal("alice", "claude", READ_WRITE)
            session = await app.sessions.create(alice, "work")
            for i in range(3):
                await app.messages.add(alice, session.id, f"m{i}")

    anyio.run(main)


def _tamper(data_dir: Path, statement: sa.Executable) -> None:
    engine = create_engine(f"sqlite:///{data_dir / 'shared_context.db'}")
    with engine.begin() as conn:
        conn.execute(statement)
    engine.dispose()


def test_verify_passes_on_an_intact_trail_and_writes_nothing(
    env: dict[str, str], data_dir: Path
) -> None:
    _some_history(data_dir)
    code, output = run(env, "audit", "verify")
    assert code == 0, output
    assert "intact: 5 records verified; newest #5" in output  # key, session, 3 messages
    assert run(env, "audit", "verify")[1] == output  # verifying added no record


def test_verify_fails_when_a_record_was_edited(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    _tamper(data_dir, sa.update(audit_log).where(audit_log.c.id == 3).values(agent_id="bob"))
    code, output = run(env, "audit", "verify")
    assert code == 1, output
    assert "BROKEN at record #3: its content was changed (2 records verified" in output


def test_verify_fails_when_a_record_was_deleted(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    _tamper(data_dir, sa.delete(audit_log).where(audit_log.c.id == 2))
    code, output = run(env, "audit", "verify")
    assert code == 1, output
    assert "BROKEN at record #2: records 2..2 are missing" in output


def test_verify_without_a_database_is_an_error(env: dict[str, str], data_dir: Path) -> None:
    code, output = run(env, "audit", "verify")
    assert code == 2
    assert "no database" in output
    assert not (data_dir / "shared_context.db").exists()


def test_tail_prints_the_newest_records_oldest_first(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    code, output = run(env, "audit", "tail", "--limit", "2")
    assert code == 0, output
    rows = [json.loads(line) for line in output.splitlines()]
    assert [(r["id"], r["event_type"], r["agent_id"]) for r in rows] == [
        (4, "message.added", "alice"),
        (5, "message.added", "alice"),
    ]
    assert run(env, "audit", "tail", "--limit", "0")[0] == 2
