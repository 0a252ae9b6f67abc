"""Running one step of a loop so that a stop request is never held up by it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

_T = TypeVar("_T")


async def unless_stopped(
    work: Coroutine[Any, Any, _T], stop: asyncio.Event, grace_s: float
) -> _T | None:
    """``work``'s result, or None when ``stop`` was set and ``work`` did not finish within
    ``grace_s`` after it: then it is cancelled. Some awaits wait on the broker for as long
    as it is gone (aiokafka's ``seek_to_beginning`` retries its offset request forever), and
    a stop must not wait for them. The consumers lose nothing by the cancellation: an
    uncommitted transaction rolls back, and unrelayed outbox rows stay queued."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace_s)
    finally:
        stopped.cancel()
        if not task.done():  # past its grace, or we are being cancelled ourselves
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)  # bounded: never trust it to stop
    if task.cancelled() or not task.done():
        log.warning("stopping: gave up on a step still waiting after %.0f s", grace_s)
        return None
    return task.result()


async def finish_within(task: asyncio.Task[Any], grace_s: float, what: str) -> None:
    """On the way out: ``task`` gets ``grace_s`` to finish, then is cancelled (and waited
    for at most a second more); an error it ended with is logged, not raised."""
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("%s failed while stopping: %r", what, task.exception())


async def wait_any(events: Iterable[asyncio.Event], timeout_s: float) -> bool:
    """Until one of ``events`` is set (e.g. a stop, or news to act on), at most
    ``timeout_s``: a loop's sleep that a stop or a wake-up cuts short. Whether one is set."""
    watched = list(events)
    waits = [asyncio.ensure_future(event.wait()) for event in watched]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return any(event.is_set() for event in watched)
