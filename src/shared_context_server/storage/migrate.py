"""Apply Alembic migrations programmatically (on start and by ``scs db upgrade``).

A database already at ``HEAD`` is recognised with one query and Alembic is never imported:
it would add a tenth of a second and about 10 MB to every start.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from shared_context_server.storage.engine import dialect_for
from shared_context_server.storage.sql.dialect import MIGRATION_LOCK_ID

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (a test keeps the two in step).
HEAD = "0006"


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    if revision == "head" and current_revision(engine) == HEAD:
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        # Concurrent upgrades of one database take turns: a second process waits, then
        # finds the schema at head and does nothing.
        dialect_for(engine.url).take_turn(connection, MIGRATION_LOCK_ID)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        version = sa.table("alembic_version", sa.column("version_num"))
        return connection.execute(sa.select(version.c.version_num)).scalar()
