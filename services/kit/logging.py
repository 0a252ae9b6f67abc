"""Logging set-up: plain text for people, JSON lines for log pipelines.

Personal data stays out of the logs: ``RedactingFilter`` masks email addresses and IPv4 /
IPv6 addresses in every message and ``extra=`` value (strings, also inside lists and
dicts) before any handler formats it; both formatters mask exception tracebacks too.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``extra=`` fields are kept as top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        document.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            document["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(document, default=str)


EMAIL_MASK = "<email>"
IP_MASK = "<ip>"
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
# Candidates only (hex groups with colons); ``ipaddress`` decides, so times like 12:30:45
# are left alone.
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4})"
    r"(?:%\w+)?(?![\w:])"
)


def redact(text: str) -> str:
    """``text`` with email, IPv4 and IPv6 addresses masked."""
    text = _EMAIL.sub(EMAIL_MASK, text)
    text = _IPV6.sub(_mask_if_ip, text)  # first: an IPv6 address may end in an IPv4 one
    return _IPV4.sub(_mask_if_ip, text)


def _mask_if_ip(match: re.Match[str]) -> str:
    return IP_MASK if _is_ip(match.group(0)) else match.group(0)


def _is_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate.split("%", maxsplit=1)[0])
    except ValueError:
        return False
    return True


def _redact_value(value: Any) -> Any:
    """Strings masked, also inside dicts, lists and tuples; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


class RedactingFilter(logging.Filter):
    """Renders the message once, masked; masks ``extra=`` fields too."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                setattr(record, key, _redact_value(value))
        return True


class RedactingFormatter(logging.Formatter):
    """Plain text whose exception tracebacks are masked like messages are."""

    def formatException(self, ei: Any) -> str:
        return redact(super().formatException(ei))


def configure_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every reconnect attempt at ERROR; one line per state change is enough.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
    # httpx logs every request at INFO: a poller (``abm up``'s funnel view) would fill the
    # log with them. Webhook deliveries have their own log, in the database.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
