"""Per-agent quotas (DESIGN.md §3): how much one identity may hold or post.

A write reads what the agent holds inside its transaction and these rules decide; the
posting rate is kept in memory, per server process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared_context_server.errors import LimitExceededError


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per-agent quotas (DESIGN.md §3): what one identity may hold or do; over a quota a
    call is refused with ``LIMIT_EXCEEDED``. Built by app.py from the ``SCS_QUOTA_*``
    settings (config.QuotaSettings)."""

    # Sessions an agent has created that are not archived.
    sessions_per_agent: int = 1_000
    # Unexpired memory entries an agent holds (all scopes), and their JSON bytes.
    memory_keys_per_agent: int = 10_000
    memory_bytes_per_agent: int = 64 * 1024 * 1024
    # Messages one agent may post per minute (per server process).
    messages_per_minute: int = 600


@dataclass(frozen=True, slots=True)
class Quota:
    """At most ``limit`` of what ``name`` counts, for the agent ``agent_id``."""

    name: str
    agent_id: str
    limit: int

    def check(self, current: int, adding: int = 1) -> None:
        """Refuse a change that adds ``adding`` to ``current`` beyond the limit. A change
        that adds nothing (an overwrite, a smaller value) always passes."""
        if adding > 0 and current + adding > self.limit:
            raise LimitExceededError(
                f"{self.agent_id} is at {current} of its quota {self.name} ({self.limit}); "
                "free some up or ask an operator to raise the quota",
                quota=self.name,
                limit=self.limit,
                current=current,
            )


@dataclass(frozen=True, slots=True)
class MemoryUsage:
    """What an agent's unexpired memory holds, and the entry a write replaces (if live)."""

    keys: int
    bytes: int
    replaced_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class MemoryQuota:
    keys: Quota
    bytes: Quota

    def check(self, usage: MemoryUsage, value_bytes: int) -> None:
        """A write of ``value_bytes``: a new key counts against the key quota, and the
        growth of the agent's bytes against the byte quota."""
        new_key = usage.replaced_bytes is None
        self.keys.check(usage.keys, 1 if new_key else 0)
        self.bytes.check(usage.bytes, value_bytes - (usage.replaced_bytes or 0))


@dataclass(frozen=True, slots=True)
class MemoryTotals:
    """An agent's memory entries and their bytes (kept per agent, expired entries the
    sweep has not removed included), or a change to them."""

    keys: int
    bytes: int


@dataclass(frozen=True, slots=True)
class MemoryCharge:
    """One memory write's effect on its agent's totals: ``value_bytes`` written over the
    live entry of ``replaced_bytes`` (None: a new key), after the expired entry of
    ``expired_bytes`` under the same key (None: there was none) was cleared."""

    value_bytes: int
    replaced_bytes: int | None = None
    expired_bytes: int | None = None

    @property
    def new_key(self) -> bool:
        return self.replaced_bytes is None

    @property
    def grown(self) -> int:
        return self.value_bytes - (self.replaced_bytes or 0)

    def change(self) -> MemoryTotals:
        """What to add to the agent's totals."""
        cleared = self.expired_bytes is not None
        return MemoryTotals(
            int(self.new_key) - int(cleared), self.grown - (self.expired_bytes or 0)
        )

    def before(self, after: MemoryTotals) -> MemoryUsage:
        """What the agent held before this write, from its totals after it."""
        return MemoryUsage(
            after.keys - int(self.new_key), after.bytes - self.grown, self.replaced_bytes
        )

    def over(self, held: MemoryTotals) -> MemoryUsage:
        """The usage a write meets when the agent holds ``held`` (counted exactly)."""
        return MemoryUsage(held.keys, held.bytes, self.replaced_bytes)


def released(removed: Iterable[tuple[str, int]]) -> dict[str, MemoryTotals]:
    """The change to each agent's totals of removing entries, given as (agent, bytes)."""
    keys: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for agent_id, value_bytes in removed:
        keys[agent_id] += 1
        size[agent_id] += value_bytes
    return {agent_id: MemoryTotals(-keys[agent_id], -size[agent_id]) for agent_id in keys}


class PostingRate:
    """Messages per minute per agent: a token bucket of ``per_minute`` tokens, refilled
    continuously, so an agent may post a burst of ``per_minute`` and then that many a
    minute. Kept in this process's memory: with several server processes sharing a
    database, each allows an agent its own rate."""

    # Buckets of agents idle long enough to be full again are dropped past this many.
    PRUNE_ABOVE = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._per_second = per_minute / 60.0
        self._buckets: dict[str, tuple[float, datetime]] = {}

    def take(self, agent_id: str, now: datetime) -> None:
        """Spend one token for ``agent_id`` or raise LIMIT_EXCEEDED (with ``retry_after``)."""
        tokens = self._tokens(agent_id, now)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self._per_second if self._per_second > 0 else 60.0
            raise LimitExceededError(
                f"{agent_id} posted {self.per_minute} messages within a minute, its quota "
                f"messages_per_minute; retry in {wait:.1f} s",
                quota="messages_per_minute",
                limit=self.per_minute,
                current=self.per_minute - int(tokens),
                retry_after=round(wait, 3),
            )
        self._buckets[agent_id] = (tokens - 1.0, now)
        if len(self._buckets) > self.PRUNE_ABOVE:
            self._prune(now)

    def give_back(self, agent_id: str, now: datetime) -> None:
        """Return the token of a post that failed."""
        tokens = self._tokens(agent_id, now)
        self._buckets[agent_id] = (min(float(self.per_minute), tokens + 1.0), now)

    def _tokens(self, agent_id: str, now: datetime) -> float:
        found = self._buckets.get(agent_id)
        if found is None:
            return float(self.per_minute)
        tokens, at = found
        elapsed = max(0.0, (now - at).total_seconds())
        return min(float(self.per_minute), tokens + elapsed * self._per_second)

    def _prune(self, now: datetime) -> None:
        full = [a for a in self._buckets if self._tokens(a, now) >= self.per_minute]
        for agent_id in full:
            del self._buckets[agent_id]
