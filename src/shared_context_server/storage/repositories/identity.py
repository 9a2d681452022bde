"""The identity repository."""

from __future__ import annotations

from typing import Protocol


class IdentityRepository(Protocol):
    pass
