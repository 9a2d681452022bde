"""Token buckets: how many attempts a key (a client address, an agent) may make, and how
long to wait when it may not. Pure arithmetic on a Clock, so tests move time by hand."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from shared_context_server.clock import Clock

# Keys remembered at most; full buckets are forgotten first (they hold no information).
MAX_KEYS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One bucket per key: ``capacity`` tokens, refilled at ``per_second``.

    A capacity or rate of 0 (or less) turns the limit off: every take succeeds.
    """

    def __init__(
        self, clock: Clock, capacity: float, per_second: float, max_keys: int = MAX_KEYS
    ) -> None:
        self._clock = clock
        self.capacity = float(capacity)
        self.per_second = float(per_second)
        self.enabled = capacity > 0 and per_second > 0
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: 0.0 if they were there (and are now
        taken), else the seconds until they will be (nothing is taken)."""
        if not self.enabled:
            return 0.0
        bucket = self._refilled(key)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.per_second

    def give(self, key: str, cost: float = 1.0) -> None:
        """Return ``cost`` tokens taken from ``key`` (a reservation not used); a bucket
        that is full again is forgotten, as if it had never been touched."""
        if not self.enabled or key not in self._buckets:
            return
        bucket = self._refilled(key)
        bucket.tokens = min(self.capacity, bucket.tokens + cost)
        if bucket.tokens >= self.capacity:
            del self._buckets[key]

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``key`` could take ``cost`` tokens (0.0: now); takes nothing."""
        if not self.enabled or key not in self._buckets:
            return 0.0
        bucket = self._refilled(key)
        return max(0.0, (cost - bucket.tokens) / self.per_second)

    def __len__(self) -> int:
        return len(self._buckets)

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock.now().timestamp()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room()
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.per_second)
            bucket.updated = now
        return bucket

    def _make_room(self) -> None:
        if len(self._buckets) < self._max_keys:
            return
        now = self._clock.now().timestamp()
        full = [
            key
            for key, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.per_second >= self.capacity
        ]
        for key in full:
            del self._buckets[key]
        while len(self._buckets) >= self._max_keys:
            self._buckets.popitem(last=False)  # the least recently used
