"""Why a message was rejected: the field and the reason, as the response and DLQ say."""

from __future__ import annotations


class RejectedMessage(Exception):
    """One message cannot become an event; the batch goes on without it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
