"""Schema migrations: fresh databases reach head, repeats are harmless, racers both succeed,
and a database migrated to head has the schema storage/tables.py describes."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from shared_context_server.domain.access import IdentityOwner, ReadScope
from shared_context_server.domain.models import KeyBinding, Message
from shared_context_server.storage import migrate
from shared_context_server.storage.engine import create_engine
from shared_context_server.storage.repositories.search import QueryWord, TextSearch
from shared_context_server.storage.sql.store import SqlStore
from shared_context_server.storage.tables import UtcDateTime, messages, metadata, sessions
from tests.storage.factories import make_session, message_row, session_row
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
        assert migrate.current_revision(engine) == _head() == migrate.HEAD
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


async def test_the_search_index_covers_messages_written_before_it_existed(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0002")
        session = make_session()
        with engine.begin() as conn:
            conn.execute(sa.insert(sessions).values(**session_row(session)))
            conn.execute(sa.insert(messages).values(**message_row(session.id, "older kubernetes")))
        migrate.upgrade(engine)
        store = SqlStore(engine)
        scope = ReadScope("alice", "claude", admin=False)
        search = TextSearch(session.id, scope, [QueryWord("kubernetes")])
        found = await store.read(lambda tx: tx.search.matches(search))
        assert [m.content for m in found] == ["older kubernetes"]
    finally:
        engine.dispose()


async def test_keys_and_agents_from_before_0004_are_bound_and_registered(
    empty_database_url: str,
) -> None:
    """Upgrading keeps the admin keys operators, binds every other key to the agent named
    like it, and registers every agent id already known to the operators."""
    engine = create_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0003")
        session = make_session()
        old_keys = sa.table(
            "api_keys",
            *(sa.column(name) for name in ("id", "name", "key_hash", "permissions")),
            sa.column("created_at", UtcDateTime),
        )
        with engine.begin() as conn:
            conn.execute(sa.insert(sessions).values(**session_row(session)))
            conn.execute(sa.insert(messages).values(**message_row(session.id, "hello")))
            for name in ("bootstrap-admin", "env-admin-1234abcd", "ci-bot"):
                conn.execute(
                    sa.insert(old_keys).values(
                        id=name[:16],
                        name=name,
                        key_hash=name,
                        permissions=sa.literal(["read"], sa.JSON),
                        created_at=session.created_at,
                    )
                )
        migrate.upgrade(engine)
        store = SqlStore(engine)
        listed = await store.read(lambda tx: tx.identity.list_api_keys())
        keys = {key.name: key.binding for key in listed}
        assert keys["bootstrap-admin"].any_agent
        assert keys["env-admin-1234abcd"].any_agent
        assert keys["ci-bot"] == KeyBinding("ci-bot", agent_types=frozenset({"generic"}))
        for agent_id in (session.created_by, "alice"):
            owner = await store.read(lambda tx, a=agent_id: tx.identity.owner(a))
            assert owner == IdentityOwner(None)
        assert await store.read(lambda tx: tx.identity.owner("ci-bot")) == IdentityOwner("ci-bot")
        assert await store.read(lambda tx: tx.identity.owner("nobody")) is None
    finally:
        engine.dispose()


# What the migrations create by raw SQL for text search, which storage/tables.py does not
# describe (the search repository reaches them through the dialect modules). The test
# checks each entry exists on its backend, so the list cannot go stale.
SEARCH_OBJECTS = {
    # 0003: the FTS5 table over messages, its shadow tables, and its fts5vocab table.
    "sqlite": {
        ("table", "messages_fts"),
        ("table", "messages_fts_config"),
        ("table", "messages_fts_data"),
        ("table", "messages_fts_docsize"),
        ("table", "messages_fts_idx"),
        ("table", "messages_terms"),
    },
    # 0003: GIN expression indexes on the messages' tsvector (stemmed and plain).
    "postgresql": {("index", "ix_messages_text"), ("index", "ix_messages_text_plain")},
}


def test_a_database_migrated_to_head_matches_the_tables_module(database_url: str) -> None:
    """Alembic's autogenerate comparison of the migrated schema with storage/tables.py's
    metadata finds nothing to change: tables, columns, types, nullability, server
    defaults, indexes, unique and foreign keys agree (the text-search objects aside)."""
    engine = create_engine(database_url)
    backend = engine.dialect.name
    search_objects = SEARCH_OBJECTS[backend]
    ignored: set[tuple[str, str]] = set()

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        if reflected and compare_to is None and (kind, name) in search_objects:
            ignored.add((kind, str(name)))
            return False
        return True

    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    "include_object": include,
                },
            )
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    listed = "\n".join(f"  {difference}" for difference in differences)
    assert not differences, f"the migrations and storage/tables.py differ on {backend}:\n{listed}"
    assert ignored == search_objects, "SEARCH_OBJECTS names what the migrations no longer make"


def test_the_messages_table_lists_its_columns_in_the_message_fields_order() -> None:
    # storage/sql/rows.message_of unpacks a row of select(messages) by position.
    assert [column.name for column in messages.columns] == [
        field.name for field in dataclasses.fields(Message)
    ]
