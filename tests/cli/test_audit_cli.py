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
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.tables import audit_log, messages
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
    # key, session, 3 messages; and their 5 rows
    assert "intact: 5 records verified, 5 rows match their records; newest #5" in output
    assert run(env, "audit", "verify")[1] == output  # verifying added no record


def test_verify_fails_when_a_record_was_edited(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    _tamper(data_dir, sa.update(audit_log).where(audit_log.c.id == 3).values(agent_id="bob"))
    code, output = run(env, "audit", "verify")
    assert code == 1, output
    assert "BROKEN at record #3: its content was changed" in output
    assert "(2 records verified, 0 rows compared; 1 problem(s))" in output


def test_verify_fails_when_a_record_was_deleted(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    _tamper(data_dir, sa.delete(audit_log).where(audit_log.c.id == 2))
    code, output = run(env, "audit", "verify")
    assert code == 1, output
    assert "BROKEN at record #2: records 2..2 are missing" in output


def test_verify_names_each_edited_row(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    _tamper(data_dir, sa.update(messages).values(content="rewritten"))
    code, output = run(env, "audit", "verify")
    assert code == 1, output
    assert "BROKEN at message 1: differs from its last audit record" in output
    assert "(5 records verified, 5 rows compared; 3 problem(s))" in output
    assert "  also message 3: differs from its last audit record" in output


def test_verify_without_a_database_is_an_error(env: dict[str, str], data_dir: Path) -> None:
    code, output = run(env, "audit", "verify")
    assert code == 2
    assert "no database" in output
    assert not (data_dir / "shared_context.db").exists()


def test_verify_of_a_database_not_yet_upgraded_is_an_error(
    env: dict[str, str], data_dir: Path
) -> None:
    data_dir.mkdir(parents=True)
    engine = create_engine(f"sqlite:///{data_dir / 'shared_context.db'}")
    migrate.upgrade(engine, "0003")
    engine.dispose()
    code, output = run(env, "audit", "verify")
    assert code == 2
    assert "the database is at revision 0003" in output


def test_verify_without_the_audit_key_is_an_error(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    (data_dir / "audit_key").unlink()
    code, output = run(env, "audit", "verify")
    assert code == 2
    assert "no audit key" in output
    assert not (data_dir / "audit_key").exists()  # the offline check creates nothing
    code, output = run({**env, "SCS_AUDIT_KEY": "k" * 40}, "audit", "verify")
    assert code == 1  # another key: not the chain's
    assert "BROKEN at record #1: its content was changed" in output


def test_verify_checks_the_chain_against_an_anchor_file(
    env: dict[str, str], data_dir: Path, tmp_path: Path
) -> None:
    _some_history(data_dir)
    anchor = tmp_path / "elsewhere" / "anchor"
    anchor.parent.mkdir()
    anchor.write_text(json.dumps({"id": 7, "hash": "f" * 64, "at": "2026-01-01T00:00:00+00:00"}))
    code, output = run(env, "audit", "verify", "--anchor", str(anchor))
    assert code == 1, output
    assert "the chain ends at #5 but the head anchored at 2026-01-01" in output
    assert run(env, "audit", "verify")[0] == 0  # the default anchor file: none written yet
    code, output = run(env, "audit", "verify", "--anchor", str(tmp_path / "missing"))
    assert code == 2
    assert "no anchor file" in output


def test_tail_prints_the_newest_records_oldest_first(env: dict[str, str], data_dir: Path) -> None:
    _some_history(data_dir)
    code, output = run(env, "audit", "tail", "--limit", "2")
    assert code == 0, output
    rows = [json.loads(line) for line in output.splitlines()]
    assert [(r["id"], r["event_type"], r["agent_id"]) for r in rows] == [
        (4, "message.added", "alice"),
        (5, "message.added", "alice"),
    ]
    assert (rows[1]["entity"], rows[1]["entity_id"]) == ("message", "3")
    assert len(rows[1]["digest"]) == 64
    assert run(env, "audit", "tail", "--limit", "0")[0] == 2
