"""The stitch consumer: the pure core (processing.py) wrapped by the shared consumer shell.

It consumes ``abm.events.v1`` as group ``abm-stitch``, keeps one ``visitors`` row per
anonymous visitor and the pending events of those not identified yet, and publishes the
attributed copies back onto ``abm.events.v1``, keyed by account, through the shell's
outbox: funnel and intent then process them like any event.

Why no pending event is ever left behind nor attributed twice
-------------------------------------------------------------
A visitor's anonymous visit V is keyed ``anon:<visitor>`` and its identification I is
keyed by the account, so they are usually on different partitions and may be processed
at the same moment by two group members, M1 (V) and M2 (I). Every batch transaction
starts (``repository.lock_visitors``) with ``INSERT ... ON CONFLICT DO UPDATE ...
RETURNING`` on the rows of its visitors: PostgreSQL gives the row (for a new visitor, the
primary-key slot) to one transaction and makes the other wait until that one commits or
rolls back. Under READ COMMITTED (PostgreSQL's default, which the engine keeps) the waiter
then updates and RETURNs the newest committed row, and each of its later statements, such
as the read of the pending events, sees everything the first transaction committed.

- M1 first: V is stored as pending and committed. M2 then finds the visitor unidentified,
  reads V among its pending events, queues V's copy and deletes V.
- M2 first: the row is committed identified. M1 then finds it identified and queues V's
  copy directly; V is never stored.

There is no third case: M2 cannot read the pending events before M1's insert while M1
reads an unidentified row after M2's commit, as each reads only while holding the lock
the other writes under. A pending event is deleted in the same transaction that queues
its copy in the outbox (with the consumed offsets), so a crash or an offset conflict
rolls both back. A redelivered input is dropped by the shell (applied event ids); a copy
relayed twice by the outbox has the same derived id, dropped by funnel and intent.

Rows are locked in ``anonymous_id`` order, so two members with overlapping visitors
cannot deadlock over them, and pending rows are only touched under their visitor's lock.
(One deadlock remains possible: the same event id published on two partitions, claimed
by the shell in both batches, with their visitor locks taken in the other order.
PostgreSQL then aborts one transaction; that member restarts from its stored offsets.) SQLite
allows one writer at a time: the whole transaction is serialised anyway.

Metrics are counted when the batch is applied: a batch rolled back and retried counts
twice (rare: an offset conflict or a database error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import topics
from services.kit import metrics
from services.kit.consumer import InboundRecord, ShellOptions
from services.kit.logging import configure_logging
from services.kit.offsets import OutboundRecord
from services.kit.publish import event_record
from services.kit.runner import run_consumer_service
from services.stitch import repository
from services.stitch.processing import (
    StitchLimits,
    VisitorOutcome,
    apply_visitor,
    concerns_a_visitor,
    visitor_events,
)
from services.stitch.settings import StitchSettings


class StitchHandler:
    """Lock the batch's visitors, run the pure core per visitor, store, return the copies."""

    def __init__(self, limits: StitchLimits | None = None) -> None:
        self._limits = limits or StitchLimits()
        metrics.start_stitch_series()

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]:
        grouped = visitor_events(r.event for r in records)
        if not grouped:
            return []
        first_seen = {v: min(e.occurred_at for e in events) for v, events in grouped.items()}
        states = await repository.lock_visitors(session, first_seen)  # first: see docstring
        pending = await repository.load_pending(session, list(grouped))
        outcomes = {
            visitor: apply_visitor(states.get(visitor), pending.get(visitor, ()), events,
                                   self._limits)
            for visitor, events in grouped.items()
        }  # fmt: skip
        await repository.save_visitors(session, [o.state for o in outcomes.values()])
        await repository.replace_pending(
            session, pending, {visitor: o.pending for visitor, o in outcomes.items()}
        )
        _count(outcomes.values())
        return [event_record(copy) for o in outcomes.values() for copy in o.copies]


def _count(outcomes: Iterable[VisitorOutcome]) -> None:
    for outcome in outcomes:
        if outcome.newly_identified:
            metrics.STITCH_VISITORS_IDENTIFIED.inc()
        metrics.STITCH_EVENTS_ATTRIBUTED.labels("pending").inc(outcome.attributed_from_pending)
        metrics.STITCH_EVENTS_ATTRIBUTED.labels("direct").inc(outcome.attributed_directly)
        metrics.STITCH_PENDING_EVENTS.labels("stored").inc(outcome.stored_pending)
        metrics.STITCH_PENDING_EVENTS.labels("pruned").inc(outcome.pruned_pending)


def main(settings: StitchSettings | None = None) -> None:
    settings = settings or StitchSettings()
    configure_logging(settings.log_level, settings.log_json)
    limits = StitchLimits(
        max_pending=settings.stitch_max_pending,
        pending_window=timedelta(days=settings.stitch_pending_days),
    )
    asyncio.run(
        run_consumer_service(
            service="stitch",
            settings=settings,
            group_id=topics.STITCH_GROUP,
            topic_names=(topics.EVENTS.name,),
            handler=StitchHandler(limits),
            metrics_host=settings.stitch_metrics_host,
            metrics_port=settings.stitch_metrics_port,
            options=ShellOptions(max_batch=settings.stitch_max_batch, relevant=concerns_a_visitor),
        )
    )
