"""Secrets kept in the data directory, readable by the owner only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create(path: Path, make: str | None = None) -> tuple[str, bool]:
    """The secret in ``path``, creating it (mode 0600) if absent. Returns (secret, created).

    Creation is exclusive, so processes starting together agree on one secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = make or secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value, True
