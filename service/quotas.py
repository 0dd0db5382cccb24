"""Per-tenant quotas: token buckets refilled at the plan's rate (pure arithmetic, injectable clock).

A bucket holds at most `capacity` tokens (the burst: one second of the rate by default) and
refills at `rate` tokens per second. Reads take one token of the tenant's `gql_qps` bucket;
writes take one token per event of its `ingest_eps` bucket. A request that cannot be paid for
takes nothing and learns how long until it could be: `Retry-After`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float  # burst size
    tokens: float = field(default=-1.0)
    stamp: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.capacity <= 0:
            raise ValueError(f"rate and capacity must be > 0 (got {self.rate}, {self.capacity})")
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)

    def take(self, n: float, now: float) -> float:
        """Take `n` tokens at time `now`: 0.0 if granted, else the seconds to wait (nothing taken).

        A request larger than the capacity can never be granted: `math.inf`.
        """
        if n > self.capacity:
            return math.inf
        self._refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate


def retry_after_header(wait_s: float) -> str:
    """`Retry-After` is whole seconds: round up, at least 1."""
    return str(max(1, math.ceil(wait_s)))


@dataclass(frozen=True)
class TenantQuota:
    gql_qps: int
    ingest_eps: int
    storage_gb: int


KIND_LIMIT = {"read": "gql_qps", "write": "ingest_eps"}


class QuotaBook:
    """The buckets of every tenant, one per kind (read, write), created on first use."""

    def __init__(self, quotas: dict[str, TenantQuota], clock: Callable[[], float] = time.monotonic, burst_s: float = 1.0):
        self._quotas = quotas
        self._clock = clock
        self._burst_s = burst_s
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def set_quotas(self, quotas: dict[str, TenantQuota]) -> None:
        """The served tenants changed (service.tenants): a tenant whose quota changed starts a fresh
        bucket at its new rate. Quotas of tenants no longer served stay, so a request already past
        its key check when they went finishes under them."""
        changed = {t for t, q in quotas.items() if self._quotas.get(t, q) != q}
        self._quotas = {**self._quotas, **quotas}
        self._buckets = {k: b for k, b in self._buckets.items() if k[0] not in changed}

    def limit_of(self, tenant: str, kind: str) -> int:
        return getattr(self._quotas[tenant], KIND_LIMIT[kind])

    def take(self, tenant: str, kind: str, n: int = 1) -> float:
        bucket = self._buckets.get((tenant, kind))
        if bucket is None:
            rate = float(self.limit_of(tenant, kind))
            bucket = self._buckets[(tenant, kind)] = TokenBucket(rate, rate * self._burst_s, stamp=self._clock())
        return bucket.take(n, self._clock())
