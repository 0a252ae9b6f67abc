"""Per-token rate limits: a token bucket per API token (pure; the clock is passed in).

Each replica limits on its own; with N replicas behind a balancer the effective limit is
up to N times the setting, which is the usual trade for not sharing state per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    """Seconds until the bucket is full again."""
    retry_after_s: int
    """Seconds until one request is allowed (0 when allowed)."""

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, max_keys: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def check(self, key: str, now: float) -> Decision:
        tokens, at = self._buckets.get(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - at) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()  # bounded memory; a reset only ever lets requests through
        self._buckets[key] = (tokens, now)
        return Decision(
            allowed=allowed,
            limit=self._burst,
            remaining=int(tokens),
            reset_s=math.ceil((self._burst - tokens) / self._rate),
            retry_after_s=0 if allowed else math.ceil((1.0 - tokens) / self._rate),
        )
