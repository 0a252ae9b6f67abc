"""Post Segment batches to the ingest's ``/v1/batch``, as a tracking library would.

The write key goes in HTTP Basic auth (``base64(write_key + ":")``). A 200 means the
broker took every message. 429/502/503/504 and connection failures are retried a bounded
number of times, waiting as long as ``Retry-After`` asks (capped), else backing off
exponentially; any other answer is a bug and raises with the response body.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import httpx

from services.simulate.errors import IngestRejected, IngestUnavailable
from services.simulate.segment import Message, iso

MAX_BATCH_MESSAGES = 100
MAX_BATCH_BYTES = 400_000
MAX_MESSAGE_BYTES = 32_000  # Segment's limit for one message
_ENVELOPE_BYTES = 128  # {"batch":[...],"sentAt":"<iso>"} around the messages
RETRIABLE_STATUSES = frozenset({429, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]


def encode(value: object) -> bytes:
    """The exact bytes sent: compact JSON, so sizes measured here are sizes on the wire."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def batches(
    messages: Iterable[Message],
    *,
    max_messages: int = MAX_BATCH_MESSAGES,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[Message]]:
    """Consecutive runs of ``messages``, order kept, each small enough for one request."""
    batch: list[Message] = []
    size = _ENVELOPE_BYTES
    for message in messages:
        length = len(encode(message)) + 1  # and a comma
        if length > MAX_MESSAGE_BYTES:
            raise ValueError(f"message {message.get('messageId')} is {length} bytes, too large")
        if batch and (len(batch) >= max_messages or size + length > max_bytes):
            yield batch
            batch, size = [], _ENVELOPE_BYTES
        batch.append(message)
        size += length
    if batch:
        yield batch


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8
    backoff_s: float = 0.5
    """First wait when the answer names none; doubles with each attempt."""
    max_wait_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("at least one attempt")

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        wanted = self.backoff_s * 2 ** (attempt - 1) if retry_after is None else retry_after
        return min(wanted, self.max_wait_s)


@dataclass(slots=True)
class SendStats:
    batches: int = 0
    messages: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    retry_after: float | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SegmentClient:
    """``async with SegmentClient(ingest_url=..., write_key=...) as c: await c.send(batch)``.

    ``transport``, ``sleep`` and ``clock`` are the seams tests swap.
    """

    def __init__(
        self,
        *,
        ingest_url: str,
        write_key: str,
        retry: RetryPolicy = RetryPolicy(),
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = _utcnow,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=ingest_url,
            auth=httpx.BasicAuth(write_key, ""),
            timeout=timeout_s,
            transport=transport,
            headers={"Content-Type": "application/json", "User-Agent": "abm-simulate/1"},
        )
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self.stats = SendStats()

    async def __aenter__(self) -> SegmentClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, batch: Sequence[Message]) -> None:
        """Post one batch until it is accepted; raise ``IngestError`` otherwise."""
        for attempt in range(1, self._retry.attempts + 1):
            failure = await self._attempt(batch)
            if failure is None:
                self.stats.batches += 1
                self.stats.messages += len(batch)
                return
            if attempt == self._retry.attempts:
                raise IngestUnavailable(attempt, failure.reason)
            self.stats.retries += 1
            await self._sleep(self._retry.wait(attempt, failure.retry_after))

    async def _attempt(self, batch: Sequence[Message]) -> _Failure | None:
        """One post: None when accepted, else why it failed in a way worth retrying."""
        body = encode({"batch": list(batch), "sentAt": iso(self._clock())})
        try:
            response = await self._http.post("/v1/batch", content=body)
        except httpx.TransportError as exc:
            return _Failure(f"{type(exc).__name__}: {exc}")
        if response.is_success:
            return None
        if response.status_code not in RETRIABLE_STATUSES:
            raise IngestRejected(response.status_code, response.text)
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        return _Failure(f"HTTP {response.status_code}: {response.text[:200]}", retry_after)
