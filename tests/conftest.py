"""Shared fixtures: a real app on a fresh SQLite file per test, principals, a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared_context_server.app import App, running_app
from shared_context_server.clock import FakeClock
from shared_context_server.config import Settings
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal

READ = frozenset({Permission.READ})
READ_WRITE = frozenset({Permission.READ, Permission.WRITE})
ADMIN = frozenset({Permission.READ, Permission.WRITE, Permission.ADMIN})


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "jwt_secret_key": "test-secret-" + "x" * 40,
        "feed_poll_seconds": 0.02,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    async with running_app(settings, background=False) as built:
        yield built


@pytest.fixture
async def fake_clock_app(settings: Settings, clock: FakeClock) -> AsyncIterator[App]:
    async with running_app(settings, clock, background=False) as built:
        yield built


@pytest.fixture
def alice() -> Principal:
    return Principal("alice", "claude", READ_WRITE)


@pytest.fixture
def bob() -> Principal:
    return Principal("bob", "claude", READ_WRITE)


@pytest.fixture
def carol() -> Principal:
    return Principal("carol", "gemini", READ_WRITE)


@pytest.fixture
def admin() -> Principal:
    return Principal("root", "gemini", ADMIN)


@pytest.fixture
def reader() -> Principal:
    return Principal("reader", "claude", READ)
