"""Schema migrations: fresh databases reach head, repeats are harmless, racers both succeed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory

from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.tables import metadata
from tests.storage.processes import run_together


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def test_upgrading_a_fresh_database_reaches_head_with_every_table(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == _head()
        tables = set(sa.inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables
    finally:
        engine.dispose()


def test_upgrading_twice_changes_nothing(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO revoked_tokens (jti, expires_at) VALUES ('j', :t)"),
                {"t": "2030-01-01 00:00:00"},
            )
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == _head()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT jti FROM revoked_tokens")).scalars().all() == ["j"]
    finally:
        engine.dispose()


UPGRADER = """
import sys
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine

engine = create_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrate.upgrade(engine)
print(migrate.current_revision(engine), flush=True)
"""


def test_two_processes_upgrading_one_fresh_database_both_succeed(empty_database_url: str) -> None:
    outputs = run_together(UPGRADER, [[empty_database_url], [empty_database_url]])
    assert [out.strip() for out in outputs] == [_head(), _head()]
