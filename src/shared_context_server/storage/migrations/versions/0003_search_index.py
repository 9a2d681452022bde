"""A full-text index of messages for search: SQLite FTS5 kept by triggers, PostgreSQL GIN.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# External-content FTS5: the index holds no copy of the text; triggers keep it in step
# with every insert, delete and update of a message, whichever process writes.
SQLITE_UP = [
    """CREATE VIRTUAL TABLE messages_fts USING fts5(
        sender, content, metadata,
        content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    )""",
    # Every indexed word, for typo-tolerant expansion of query words.
    "CREATE VIRTUAL TABLE messages_terms USING fts5vocab(messages_fts, 'row')",
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, sender, content, metadata)
        VALUES (new.id, new.sender, new.content, new.metadata);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, sender, content, metadata)
        VALUES ('delete', old.id, old.sender, old.content, old.metadata);
    END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF sender, content, metadata
    ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, sender, content, metadata)
        VALUES ('delete', old.id, old.sender, old.content, old.metadata);
        INSERT INTO messages_fts(rowid, sender, content, metadata)
        VALUES (new.id, new.sender, new.content, new.metadata);
    END""",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "DROP TABLE IF EXISTS messages_terms",
    "DROP TABLE IF EXISTS messages_fts",
]
# The expressions must match the full-text statements of storage/sql/postgres.py exactly.
POSTGRES_UP = [
    """CREATE INDEX ix_messages_text ON messages USING gin (
        to_tsvector('simple', sender || ' ' || content || ' ' || metadata::text)
    )""",
    """CREATE INDEX ix_messages_text_plain ON messages USING gin (
        to_tsvector('simple', sender || ' ' || content)
    )""",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_messages_text_plain",
    "DROP INDEX IF EXISTS ix_messages_text",
]


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_UP if sqlite else POSTGRES_UP:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRES_DOWN:
        op.execute(statement)
