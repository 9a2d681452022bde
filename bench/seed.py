"""Seed large sessions straight into the database: 100,000 add_message calls would take
longer than the whole benchmark.

The session is created by the session service (so it is a real, audited session); the
messages are bulk-inserted through ``storage.tables.messages`` in one transaction, so any
trigger or index on that table is maintained as on a normal write.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

from bench.servers import Credentials
from bench.text import WORDS, sentence
from shared_context_server.app import open_app
from shared_context_server.config import Settings
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.storage.tables import messages

SENDERS = (
    ("planner", "claude"),
    ("coder", "claude"),
    ("reviewer", "gemini"),
    ("tester", "codex"),
    ("researcher", "gemini"),
    ("ops", "codex"),
)
VISIBILITIES = (("public", 85), ("private", 7), ("agent_only", 5), ("admin_only", 3))
TYPES = (("message", 70), ("finding", 12), ("decision", 8), ("test_result", 7), ("note", 3))
SEEDER = Principal("bench-seeder", "claude", frozenset({Permission.READ, Permission.WRITE}))
BATCH = 5_000
PUBLIC_IDS = 500


@dataclass(frozen=True, slots=True)
class SeededSession:
    session_id: str
    size: int
    # Ids of public messages (anyone with read sees them), for get_message.
    public_ids: tuple[int, ...]


def settings_for(data_dir: Path, creds: Credentials) -> Settings:
    return Settings(
        data_dir=data_dir,
        jwt_secret_key=SecretStr(creds.jwt_secret),
        api_key=SecretStr(creds.admin_key),
    )


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w for w, _ in weighted], [n for _, n in weighted])[0]


def _metadata(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.5:
        return {}
    if roll < 0.8:
        return {
            "file": f"src/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py",
            "line": rng.randint(1, 900),
        }
    return {"tags": rng.sample(WORDS, 3), "priority": rng.choice(["low", "normal", "high"])}


def _rows(session_id: str, size: int, rng: random.Random) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(seconds=size)
    rows = []
    for i in range(size):
        sender, sender_type = rng.choice(SENDERS)
        rows.append(
            {
                "session_id": session_id,
                "sender": sender,
                "sender_type": sender_type,
                "content": sentence(rng),
                "metadata": _metadata(rng),
                "message_type": _pick(rng, TYPES),
                "visibility": _pick(rng, VISIBILITIES),
                "parent_message_id": None,
                "created_at": start + timedelta(seconds=i, microseconds=rng.randint(0, 999_999)),
            }
        )
    return rows


async def seed_sessions(
    data_dir: Path, creds: Credentials, sizes: list[int]
) -> list[SeededSession]:
    """One session per size, each filled in a single transaction."""
    app = await open_app(settings_for(data_dir, creds))
    rng = random.Random(4)  # the same text every run
    seeded = []
    try:
        for size in sizes:
            session = await app.sessions.create(
                SEEDER, f"bench: {size} messages", {"bench": True, "size": size}
            )
            rows = _rows(session.id, size, rng)
            with app.store.engine.begin() as conn:
                for at in range(0, len(rows), BATCH):
                    conn.execute(sa.insert(messages), rows[at : at + BATCH])
                public = conn.execute(
                    sa.select(messages.c.id)
                    .where(messages.c.session_id == session.id, messages.c.visibility == "public")
                    .order_by(sa.func.random())
                    .limit(PUBLIC_IDS)
                ).scalars()
                public_ids = tuple(int(i) for i in public)
            seeded.append(SeededSession(session.id, size, public_ids))
    finally:
        await app.store.close()
    return seeded
