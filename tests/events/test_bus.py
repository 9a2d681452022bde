"""The in-process bus: fan-out to listeners, failing listeners skipped, idempotent unsubscribe."""

from __future__ import annotations

import logging

import pytest

from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.events.bus import InProcessBus

EVENT = ChangeEvent(id=1, kind=EventKind.SESSION_CREATED, session_id="s", agent_id="alice")


def test_every_listener_hears_a_published_event() -> None:
    bus = InProcessBus()
    first: list[ChangeEvent] = []
    second: list[ChangeEvent] = []
    bus.subscribe(first.append)
    bus.subscribe(second.append)
    bus.publish(EVENT)
    assert first == second == [EVENT]


def test_a_failing_listener_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = InProcessBus()
    heard: list[ChangeEvent] = []

    def broken(_: ChangeEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(heard.append)
    with caplog.at_level(logging.ERROR):
        bus.publish(EVENT)
    assert heard == [EVENT]
    assert "listener failed" in caplog.text


def test_an_unsubscribed_listener_hears_nothing_and_unsubscribing_twice_is_harmless() -> None:
    bus = InProcessBus()
    heard: list[ChangeEvent] = []
    unsubscribe = bus.subscribe(heard.append)
    unsubscribe()
    unsubscribe()
    bus.publish(EVENT)
    assert heard == []


def test_a_listener_may_unsubscribe_while_an_event_is_delivered() -> None:
    bus = InProcessBus()
    heard: list[ChangeEvent] = []
    unsubscribers = []

    def once(event: ChangeEvent) -> None:
        heard.append(event)
        unsubscribers[0]()

    unsubscribers.append(bus.subscribe(once))
    bus.publish(EVENT)
    bus.publish(EVENT)
    assert heard == [EVENT]
