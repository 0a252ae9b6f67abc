"""Segment tracking-spec messages, built as plain JSON-ready dicts.

Pure: every builder takes the moment and the actor explicitly. A message is first a
``Draft`` (moment + body); ``stamp`` orders one actor's drafts and gives each its
``timestamp`` and a ``messageId`` drawn from the seeded random source, so runs repeat.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Message = dict[str, Any]
"""One Segment message, ready for ``json.dumps``."""

LIBRARY = {"name": "abm-simulate", "version": "1"}


@dataclass(frozen=True, slots=True)
class Who:
    """The actor of a call and what the sender knows about them at that moment."""

    anonymous_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    """``context.groupId``: the account's domain, when the sender knows the account."""
    ip: str | None = None
    user_agent: str | None = None

    def __post_init__(self) -> None:
        if self.anonymous_id is None and self.user_id is None:
            raise ValueError("a Segment call needs an anonymousId or a userId")


@dataclass(frozen=True, slots=True)
class Draft:
    at: datetime
    body: Message


def group_call(at: datetime, who: Who, group_id: str, traits: Mapping[str, Any]) -> Draft:
    body = _base("group", who)
    body["groupId"] = group_id
    body["traits"] = dict(traits)
    return Draft(at, body)


def identify_call(at: datetime, who: Who, traits: Mapping[str, Any]) -> Draft:
    body = _base("identify", who)
    body["traits"] = dict(traits)
    return Draft(at, body)


def page_call(at: datetime, who: Who, *, url: str, path: str, title: str, referrer: str) -> Draft:
    body = _base("page", who)
    body["name"] = title
    body["properties"] = {"url": url, "path": path, "referrer": referrer, "title": title}
    return Draft(at, body)


def track_call(at: datetime, who: Who, event: str, properties: Mapping[str, Any]) -> Draft:
    body = _base("track", who)
    body["event"] = event
    body["properties"] = dict(properties)
    return Draft(at, body)


class DraftLog:
    """Collects one actor's drafts; what would happen after ``until`` has not happened yet."""

    def __init__(self, *, until: datetime) -> None:
        self.until = until
        self.drafts: list[Draft] = []

    def add(self, draft: Draft) -> None:
        if draft.at <= self.until:
            self.drafts.append(draft)


def stamp(drafts: Iterable[Draft], rng: random.Random) -> tuple[Message, ...]:
    """Order drafts by time (stable: ties keep their order) and finish them as messages."""
    messages = []
    for draft in sorted(drafts, key=lambda d: d.at):
        message = {"messageId": message_id(rng), "timestamp": iso(draft.at)}
        message.update(draft.body)
        messages.append(message)
    return tuple(messages)


def message_id(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds: equal formats, so strings also sort by time."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def timestamp_of(message: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(message["timestamp"]))


def _base(kind: str, who: Who) -> Message:
    body: Message = {"type": kind}
    if who.anonymous_id is not None:
        body["anonymousId"] = who.anonymous_id
    if who.user_id is not None:
        body["userId"] = who.user_id
    context: dict[str, Any] = {"library": dict(LIBRARY)}
    if who.group_id is not None:
        context["groupId"] = who.group_id
    if who.ip is not None:
        context["ip"] = who.ip
    if who.user_agent is not None:
        context["userAgent"] = who.user_agent
    body["context"] = context
    return body
