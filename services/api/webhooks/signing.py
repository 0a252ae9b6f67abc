"""Webhook signatures and the retry schedule (pure).

A receiver checks ``ABM-Signature: v1=<hex>`` where hex = HMAC-SHA256(secret,
"<ABM-Timestamp>.<raw body>"), and rejects stale timestamps to stop replays.
"""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def verify(secret: str, timestamp: int, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def retry_delay_s(attempts: int, base_s: float, max_s: float) -> float:
    """Exponential back-off after the ``attempts``-th failure: base, 2 base, 4 base, ..."""
    return min(max_s, base_s * 2.0 ** max(0, attempts - 1))
