"""The in-process limiter: exact for one API process (several processes need the Redis one)."""

from __future__ import annotations

import threading
import time

from tokenmill.admission.buckets import Bucket, Verdict, drained, state_after, wait_for


class MemoryLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, tuple[float, float]] = {}  # key -> (use, when, monotonic s)

    def _current(self, bucket: Bucket, now: float) -> float:
        used, when = self._used.get(bucket.key, (0.0, now))
        return drained(used, now - when, bucket.rate_per_s)

    async def reserve(self, buckets: list[Bucket]) -> Verdict:
        with self._lock:
            now = time.monotonic()
            current = [self._current(b, now) for b in buckets]
            for bucket, used in zip(buckets, current):
                if used + bucket.cost > bucket.capacity:
                    return Verdict(False, [], bucket, wait_for(used, bucket))
            states = []
            for bucket, used in zip(buckets, current):
                self._used[bucket.key] = (used + bucket.cost, now)
                states.append(state_after(used + bucket.cost, bucket))
            return Verdict(True, states)

    async def refund(self, buckets: list[Bucket], amounts: list[int]) -> None:
        """Give back what a request reserved but did not use."""
        with self._lock:
            now = time.monotonic()
            for bucket, amount in zip(buckets, amounts):
                if amount > 0:
                    self._used[bucket.key] = (max(0.0, self._current(bucket, now) - amount), now)

    async def seed(self, key: str, used: int) -> None:
        """Start a never-draining bucket (a budget) at what the ledger says was already spent."""
        with self._lock:
            self._used.setdefault(key, (float(used), time.monotonic()))

    async def close(self) -> None:
        pass
