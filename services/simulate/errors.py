"""Errors of the simulator's ingest client.

IngestError                 the ingest did not take a batch
├── IngestRejected          a 4xx or unexpected answer: a bug or a bad write key; not retried
└── IngestUnavailable       still busy or unreachable after the bounded retries
"""

from __future__ import annotations


class IngestError(Exception):
    """Base of the errors the simulator raises when the ingest does not take a batch."""


class IngestRejected(IngestError):
    def __init__(self, status: int, body: str) -> None:
        hint = " (check the write key)" if status == 401 else ""
        super().__init__(f"ingest rejected the batch with HTTP {status}{hint}: {body[:2000]}")
        self.status = status
        self.body = body


class IngestUnavailable(IngestError):
    def __init__(self, attempts: int, last: str) -> None:
        super().__init__(f"ingest still unavailable after {attempts} attempts: {last}")
        self.attempts = attempts
