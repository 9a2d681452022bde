"""First start: a bootstrap admin key and a JWT secret, kept owner-only in the data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shared_context_server.app import BOOTSTRAP_KEY_NAME, ENV_KEY_NAME, running_app
from shared_context_server.config import Settings
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import AuthFailedError
from tests.conftest import settings_on


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_first_start_creates_an_owner_only_admin_key_and_jwt_secret(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("API_KEY", "SCS_API_KEY", "JWT_SECRET_KEY", "SCS_JWT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = settings_on(settings, jwt_secret_key=None)
    alice = Principal("alice", "claude", frozenset({Permission.READ}))

    async with running_app(settings, background=False) as app:
        key_file = settings.data_dir / "bootstrap_api_key"
        secret_file = settings.data_dir / "jwt_secret"
        assert _mode(key_file) == 0o600
        assert _mode(secret_file) == 0o600
        plain = key_file.read_text().strip()
        record = await app.auth.verify_api_key(plain)
        assert (record.name, record.permissions) == (BOOTSTRAP_KEY_NAME, frozenset(Permission))
        assert plain in capsys.readouterr().err
        token, _ = app.auth.issue_token(alice)

    async with running_app(settings, background=False) as again:
        assert plain not in capsys.readouterr().err  # shown once
        assert [k.name for k in await again.auth.list_api_keys()] == [BOOTSTRAP_KEY_NAME]
        # The secret persisted: a token from the first run is still good.
        assert await again.auth.verify_token(token) == alice


async def test_an_api_key_from_the_environment_becomes_an_admin_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_KEY", "env-provided-key-" + "k" * 30)
    settings = settings_on(settings)

    for _ in range(2):  # restarting with the same key is fine
        async with running_app(settings, background=False) as app:
            record = await app.auth.verify_api_key("env-provided-key-" + "k" * 30)
            assert record.name.startswith(ENV_KEY_NAME)
            assert record.permissions == frozenset(Permission)
            assert [k.name for k in await app.auth.list_api_keys()] == [record.name]
    assert not (settings.data_dir / "bootstrap_api_key").exists()
    assert "env-provided-key" not in capsys.readouterr().err


async def test_a_changed_api_key_replaces_the_previous_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", "first-key-" + "a" * 30)
    async with running_app(settings_on(settings), background=False):
        pass
    monkeypatch.setenv("API_KEY", "second-key-" + "b" * 30)
    async with running_app(settings_on(settings), background=False) as app:
        await app.auth.verify_api_key("second-key-" + "b" * 30)
        with pytest.raises(AuthFailedError):
            await app.auth.verify_api_key("first-key-" + "a" * 30)


async def test_an_explicit_jwt_secret_leaves_no_secret_file(settings: Settings) -> None:
    async with running_app(settings, background=False):
        pass
    assert not (settings.data_dir / "jwt_secret").exists()
