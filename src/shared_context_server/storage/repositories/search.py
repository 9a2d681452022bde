"""The search repository."""

from __future__ import annotations

from typing import Protocol


class SearchRepository(Protocol):
    pass
