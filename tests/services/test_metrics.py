"""The server's numbers (services/metrics.py) on a fake clock: calls by tool and code with
their latency percentiles, messages and active agents from the feed, by minute for the
last hour; who may read them; the Prometheus exposition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared_context_server.clock import FakeClock
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.models import Permission
from shared_context_server.domain.principal import Principal
from shared_context_server.errors import PermissionDeniedError
from shared_context_server.services.metrics import Metrics, percentile
from tests.conftest import READ_WRITE

ADMIN = Principal("ops", "human", frozenset({Permission.READ, Permission.ADMIN}))
DEBUG = Principal("dbg", "human", frozenset({Permission.DEBUG}))


def event(kind: EventKind, agent_id: str, n: int = 1) -> ChangeEvent:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return ChangeEvent(n, kind, "s1", agent_id, at)


def test_calls_are_counted_by_minute_and_tool_with_percentiles() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    metrics = Metrics(clock)
    for ms in range(1, 101):  # 1..100 ms
        metrics.record_call("add_message", ms / 1000)
    metrics.record_call("add_message", 0.2, "SESSION_NOT_FOUND")
    clock.advance(60)
    metrics.record_call("get_messages", 0.004)
    seen = metrics.monitor(ADMIN)
    assert len(seen.minutes) == 60
    assert seen.calls[-2:] == [101, 1]
    assert seen.errors[-2:] == [1, 0]
    assert seen.errors_by_code == {"SESSION_NOT_FOUND": 1}
    tools = {t.tool: t for t in seen.tools}
    assert (tools["add_message"].calls, tools["add_message"].errors) == (101, 1)
    assert tools["add_message"].p50_ms == 51.0
    assert tools["add_message"].p95_ms == 96.0
    assert tools["get_messages"].p95_ms == 4.0


def test_an_hour_later_the_window_has_moved_on() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    metrics = Metrics(clock)
    metrics.record_call("add_message", 0.01, "INTERNAL")
    metrics.hear(event(EventKind.MESSAGE_ADDED, "alice"))
    clock.advance(3600)
    seen = metrics.monitor(ADMIN)
    assert sum(seen.calls) == sum(seen.messages) == 0
    assert seen.errors_by_code == {}
    assert seen.tools == []


def test_messages_and_active_agents_come_from_the_feed() -> None:
    clock = FakeClock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    metrics = Metrics(clock)
    metrics.hear(event(EventKind.MESSAGE_ADDED, "alice"))
    metrics.hear(event(EventKind.MESSAGE_ADDED, "alice"))
    metrics.hear(event(EventKind.LOCK_CHANGED, "bob"))
    metrics.hear(event(EventKind.CREDENTIAL_REVOKED, "mallory"))  # nobody's activity
    seen = metrics.monitor(DEBUG)
    assert seen.messages[-1] == 2
    assert seen.active_agents[-1] == 2


def test_only_admins_and_debuggers_may_read_the_numbers() -> None:
    metrics = Metrics(FakeClock())
    with pytest.raises(PermissionDeniedError):
        metrics.monitor(Principal("alice", "claude", READ_WRITE))


def test_the_exposition_is_prometheus_text() -> None:
    metrics = Metrics(FakeClock())
    metrics.record_call("add_message", 0.003)
    metrics.record_call("add_message", 0.003, "INVALID_INPUT")
    metrics.hear(event(EventKind.MESSAGE_ADDED, "alice"))
    text = metrics.exposition().decode()
    assert 'scs_tool_calls_total{code="OK",tool="add_message"} 1.0' in text
    assert 'scs_tool_calls_total{code="INVALID_INPUT",tool="add_message"} 1.0' in text
    assert 'scs_tool_call_seconds_bucket{le="0.005",tool="add_message"} 2.0' in text
    assert "scs_messages_total 1.0" in text
    assert "scs_active_agents 1.0" in text


def test_percentile_is_nearest_rank() -> None:
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
