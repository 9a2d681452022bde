"""What the audit trail keeps outside the database: its HMAC key and its anchor.

The key is a file in the data directory (owner-only, created on first start) unless the
operator sets one; someone who can edit the database but not read the data directory
cannot rehash a chain they changed. The anchor file holds the newest head the server saw
(``{"id", "hash", "at"}``): deleting the newest records, or rewriting the chain, leaves a
database whose chain no longer contains it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from shared_context_server.config import Settings
from shared_context_server.domain.audit_verify import Anchor
from shared_context_server.storage.secret_files import read_or_create

MIN_KEY_CHARS = 32


class AuditKeyError(Exception):
    """No usable audit key: none configured and no key file, or one too short."""


def audit_key(configured: str | None, path: Path, *, create: bool) -> bytes:
    """The configured key, else the one in the file ``path`` (created if ``create``)."""
    if configured is not None:
        if len(configured) < MIN_KEY_CHARS:
            raise AuditKeyError(f"SCS_AUDIT_KEY must be at least {MIN_KEY_CHARS} characters")
        return configured.encode()
    if create:
        value, _ = read_or_create(path)
        return value.encode()
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        raise AuditKeyError(f"no audit key: set SCS_AUDIT_KEY or provide {path}") from None
    if not value:
        raise AuditKeyError(f"{path} is empty")
    return value.encode()


class AnchorUnreadableError(ValueError):
    """The anchor file exists but does not hold an anchor."""


class AnchorFile:
    """The anchor in one file: read, and advanced atomically, never backwards (processes
    sharing a database and a data directory take turns through a lock file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> Anchor | None:
        """The anchored head; None if nothing was anchored yet."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            return Anchor(int(data["id"]), str(data["hash"]), datetime.fromisoformat(data["at"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorUnreadableError(f"{self.path} does not hold an audit anchor") from exc

    def advance(self, anchor: Anchor) -> bool:
        """Write ``anchor`` if it is newer than the anchored head; whether it was."""
        with self._turn():
            try:
                current = self.read()
            except AnchorUnreadableError:
                current = None  # a torn or foreign file: the new head replaces it
            if current is not None and current.id >= anchor.id:
                return False
            body = json.dumps({"id": anchor.id, "hash": anchor.hash, "at": anchor.at.isoformat()})
            temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(body + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
            finally:
                temporary.unlink(missing_ok=True)
            return True

    @contextlib.contextmanager
    def _turn(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def audit_key_for(settings: Settings, *, create: bool = True) -> bytes:
    """The audit key of these settings: ``SCS_AUDIT_KEY``, else ``<data_dir>/audit_key``."""
    configured = settings.audit.key
    secret = None if configured is None else configured.get_secret_value()
    return audit_key(secret, settings.data_dir / "audit_key", create=create)


def anchor_path_for(settings: Settings) -> Path:
    """``SCS_AUDIT_ANCHOR_PATH``, else ``<data_dir>/audit_anchor``."""
    return settings.audit.anchor_path or settings.data_dir / "audit_anchor"
