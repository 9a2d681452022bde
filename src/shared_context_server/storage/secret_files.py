"""Secrets kept in the data directory, readable by the owner only."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

# What owner-only takes away: every permission of the group and of others.
GROUP_AND_OTHERS = 0o077


def restrict(path: Path) -> bool:
    """Take the group's and others' permissions away from a file or directory the current
    user owns (0644 becomes 0600, 0755 becomes 0700; the owner's own bits stay).
    Directories shared by design (sticky, such as /tmp) and paths of other owners are left
    alone. True if changed."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    current = stat.S_IMODE(info.st_mode)
    if current & GROUP_AND_OTHERS == 0 or info.st_uid != os.getuid() or current & stat.S_ISVTX:
        return False
    os.chmod(path, current & ~GROUP_AND_OTHERS)
    logger.info("tightened %s from %o to %o", path, current, current & ~GROUP_AND_OTHERS)
    return True


def restrict_data_dir(data_dir: Path) -> None:
    """An existing data directory becomes owner-only (0700), as do the files in it
    (database, secrets, anchors: 0600). A fresh one is created that way."""
    restrict(data_dir)
    if data_dir.is_dir():
        for child in data_dir.iterdir():
            if child.is_file() and not child.is_symlink():
                restrict(child)


def read_or_create(path: Path, make: str | None = None) -> tuple[str, bool]:
    """The secret in ``path``, creating it (mode 0600) if absent. Returns (secret, created).

    The secret is written to a private temporary file and then hard-linked into place, which
    fails if ``path`` exists: processes starting together agree on one secret, and none ever
    reads a file that is still being written.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        value = make or secrets.token_urlsafe(48)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(value + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
                return value, True
        finally:
            temporary.unlink(missing_ok=True)
    restrict(path)
    value = path.read_text().strip()
    if not value:
        raise RuntimeError(f"{path} is empty; delete it to have a new secret generated")
    return value, False
