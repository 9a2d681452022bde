"""Service-level helpers: a bus recorder."""

from __future__ import annotations

import pytest

from shared_context_server.app import App
from shared_context_server.domain.events import ChangeEvent


@pytest.fixture
def heard(app: App) -> list[ChangeEvent]:
    """Every event published on the app's bus from now on."""
    events: list[ChangeEvent] = []
    app.bus.subscribe(events.append)
    return events
