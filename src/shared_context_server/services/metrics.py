"""What the server is doing, in numbers: tool calls (by tool and outcome code, with their
latency) as the MCP adapter records them, and messages and active agents as the change
feed tells of them (every process's, through the relay). Kept for the last hour by
minute for the dashboard's charts, and as Prometheus metrics for ``/metrics``.

Tool calls are this process's own: with several workers or hosts each has its own counts.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

from shared_context_server.clock import Clock
from shared_context_server.domain.access import require_may_monitor
from shared_context_server.domain.events import ChangeEvent, EventKind
from shared_context_server.domain.principal import Principal

OK = "OK"
OTHER_TOOL = "other"
HOUR_MINUTES = 60
# Latency samples kept per tool for the hour's percentiles (oldest dropped first).
SAMPLES_PER_TOOL = 5_000
# Agents counted per minute at most: a flood of new ids cannot grow memory without bound.
AGENTS_PER_MINUTE = 10_000
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class _Minute:
    calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    messages: int = 0
    agents: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ToolStats:
    tool: str
    calls: int
    errors: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class Monitor:
    """The last hour, minute by minute (oldest first), and per tool."""

    minutes: list[datetime]
    messages: list[int]
    active_agents: list[int]
    calls: list[int]
    errors: list[int]
    errors_by_code: dict[str, int]
    tools: list[ToolStats]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``sorted_values`` (not empty)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


class Metrics:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._minutes: dict[datetime, _Minute] = {}
        # Per tool: when, how long and whether it failed, for the hour's figures.
        self._latency: dict[str, deque[tuple[datetime, float, bool]]] = {}
        self.registry = CollectorRegistry()
        self._calls = PromCounter(
            "scs_tool_calls",
            "Tool calls, by tool and outcome code",
            ["tool", "code"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "scs_tool_call_seconds",
            "Tool call latency",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._messages = PromCounter(
            "scs_messages",
            "Messages posted (every process's, as the feed tells)",
            registry=self.registry,
        )
        self._agents = Gauge(
            "scs_active_agents",
            "Agents that changed something in the last 5 minutes",
            registry=self.registry,
        )

    def _minute(self, at: datetime) -> _Minute:
        key = at.replace(second=0, microsecond=0)
        minute = self._minutes.get(key)
        if minute is None:
            minute = self._minutes[key] = _Minute()
            horizon = key - timedelta(minutes=HOUR_MINUTES)
            for old in [m for m in self._minutes if m <= horizon]:
                del self._minutes[old]
        return minute

    def record_call(self, tool: str, seconds: float, code: str = OK) -> None:
        """One call of ``tool`` (a tool the server has, or ``OTHER_TOOL``: callers cannot
        mint label values) that took ``seconds`` and ended with ``code``."""
        now = self._clock.now()
        minute = self._minute(now)
        minute.calls += 1
        if code != OK:
            minute.errors[code] += 1
        samples = self._latency.setdefault(tool, deque(maxlen=SAMPLES_PER_TOOL))
        samples.append((now, seconds, code != OK))
        self._calls.labels(tool, code).inc()
        self._seconds.labels(tool).observe(seconds)

    def hear(self, event: ChangeEvent) -> None:
        """A bus listener: messages posted and the agents behind changes."""
        if event.kind is EventKind.CREDENTIAL_REVOKED:
            return
        minute = self._minute(self._clock.now())
        if event.kind is EventKind.MESSAGE_ADDED:
            minute.messages += 1
            self._messages.inc()
        if len(minute.agents) < AGENTS_PER_MINUTE:
            minute.agents.add(event.agent_id)

    def monitor(self, principal: Principal) -> Monitor:
        require_may_monitor(principal)
        now = self._clock.now().replace(second=0, microsecond=0)
        keys = [now - timedelta(minutes=n) for n in range(HOUR_MINUTES - 1, -1, -1)]
        minutes = [self._minutes.get(k, _Minute()) for k in keys]
        errors: Counter[str] = Counter()
        for minute in minutes:
            errors.update(minute.errors)
        return Monitor(
            minutes=keys,
            messages=[m.messages for m in minutes],
            active_agents=[len(m.agents) for m in minutes],
            calls=[m.calls for m in minutes],
            errors=[sum(m.errors.values()) for m in minutes],
            errors_by_code=dict(errors.most_common()),
            tools=self._tool_stats(keys[0]),
        )

    def _tool_stats(self, since: datetime) -> list[ToolStats]:
        stats = []
        for tool, samples in sorted(self._latency.items()):
            while samples and samples[0][0] < since:
                samples.popleft()
            if not samples:
                continue
            ordered = sorted(seconds for _, seconds, _ in samples)
            failed = sum(1 for *_, failure in samples if failure)
            p50, p95 = percentile(ordered, 0.5), percentile(ordered, 0.95)
            stats.append(
                ToolStats(tool, len(ordered), failed, round(p50 * 1000, 2), round(p95 * 1000, 2))
            )
        return stats

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric, the gauges brought up to date."""
        now = self._clock.now().replace(second=0, microsecond=0)
        recent: set[str] = set()
        for n in range(5):
            recent |= self._minutes.get(now - timedelta(minutes=n), _Minute()).agents
        self._agents.set(len(recent))
        return generate_latest(self.registry)
