"""Why a message was rejected (the field and the reason, as the response and DLQ say), and
why a whole request was refused (``Problem``, answered by ``problem_response``)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic_core import PydanticSerializationError, to_json


class RejectedMessage(Exception):
    """One message cannot become an event; the batch goes on without it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def reject_oversized(message: object, limit_bytes: int, field: str) -> None:
    """Raises ``RejectedMessage`` when ``message`` encodes (compact UTF-8 JSON) to more than
    ``limit_bytes``, or nests deeper than any encoder downstream takes (pydantic-core stops
    at about 250 levels, json at 1,000). pydantic-core's encoder: json.dumps was a tenth
    of ingest's CPU."""
    try:
        size = len(to_json(message, fallback=str))
    except PydanticSerializationError:
        raise RejectedMessage(field, "nested too deeply") from None
    if size > limit_bytes:
        raise RejectedMessage(field, f"larger than {limit_bytes // 1024} KB")


# Retry-After of a 503: the broker or the database failed the request, not its sender.
RETRY_AFTER_S = "5"


class Problem(Exception):
    def __init__(self, status: int, field: str, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status, self.field, self.reason, self.headers = status, field, reason, headers or {}


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        {
            "success": False,
            "status": problem.status,
            "field": problem.field,
            "reason": problem.reason,
        },
        status_code=problem.status,
        headers=problem.headers,
    )
