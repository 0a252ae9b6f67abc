"""Which errors mean a dependency is away (back off and retry), and which one."""

from __future__ import annotations

from aiokafka.errors import KafkaError
from sqlalchemy.exc import InterfaceError, OperationalError

# The broker or the database being away: back off and retry the same work.
RETRIABLE = (OperationalError, InterfaceError, KafkaError, OSError, TimeoutError)


def error_kind(error: BaseException) -> str:
    """A bounded label: which dependency was away."""
    if isinstance(error, KafkaError):
        return "broker"
    if isinstance(error, OperationalError | InterfaceError):
        return "database"
    return "other"
