"""Leaky-bucket arithmetic shared by the limiter backends.

Each bucket keeps how much of its capacity is in use; use drains at `rate` per second (a budget
never drains: rate 0). A reservation of `cost` fits when use + cost <= capacity, and is taken
from every bucket of a request or from none. Keeping use (not what is left) lets an operator
change a capacity and have it apply at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Bucket:
    key: str  # scope + kind, e.g. "key:key_ab12:tpm"
    kind: str  # requests | tokens | budget
    capacity: int
    rate_per_s: float  # drain; 0 for a budget
    cost: int  # what this request takes
    scope: str = ""  # whose limit: "key:ID", "tenant:ID", or either + ":model:NAME"


@dataclass(slots=True)
class BucketState:
    """What a bucket looks like after a reservation: for the x-ratelimit-* headers."""

    bucket: Bucket
    remaining: int
    reset_s: float  # until the bucket is empty again


@dataclass(slots=True)
class Verdict:
    allowed: bool
    states: list[BucketState]  # every bucket when allowed
    blocking: Bucket | None = None  # the first bucket that refused
    retry_after_s: float | None = None  # None: waiting will not help (a spent budget)


def drained(used: float, elapsed_s: float, rate_per_s: float) -> float:
    return max(0.0, used - elapsed_s * rate_per_s) if rate_per_s > 0 else used


def wait_for(used: float, bucket: Bucket) -> float | None:
    """Seconds until cost fits, or None if it never will."""
    if bucket.cost > bucket.capacity or bucket.rate_per_s <= 0:
        return None
    return max(0.0, (used + bucket.cost - bucket.capacity) / bucket.rate_per_s)


def state_after(used_after: float, bucket: Bucket) -> BucketState:
    reset = used_after / bucket.rate_per_s if bucket.rate_per_s > 0 else 0.0
    return BucketState(bucket, max(0, math.floor(bucket.capacity - used_after)), reset)


def per_minute(scope: str, suffix: str, kind: str, per_minute_limit: int, cost: int) -> Bucket:
    return Bucket(f"{scope}:{suffix}", kind, per_minute_limit, per_minute_limit / 60.0, cost, scope)
