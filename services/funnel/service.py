"""The funnel consumer: the pure core wrapped by the shared consumer shell."""

from __future__ import annotations

import asyncio
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import topics
from schemas.events import ClockTicked, Event, StageChanged, TierChanged
from services.funnel import repository
from services.funnel.cache import StateCache
from services.funnel.clock import clock_ticker
from services.funnel.config import FunnelConfig, load_funnel_config
from services.funnel.facts import Fact
from services.funnel.gauges import refresh_account_gauges
from services.funnel.processing import apply_events_with_facts
from services.funnel.settings import FunnelSettings
from services.funnel.state import AccountState
from services.funnel.timeline import Timeline
from services.kit import metrics
from services.kit.batches import Ahead
from services.kit.changes import record_changes
from services.kit.consumer import InboundRecord, ShellOptions
from services.kit.logging import configure_logging
from services.kit.offsets import OutboundRecord
from services.kit.publish import event_record
from services.kit.runner import run_consumer_service

CONSUMED = (topics.EVENTS.name, topics.SURGES.name)
COMPUTE_SLICE = 100  # events the pure core takes between two yields (about 10 ms)


class FunnelHandler:
    def __init__(
        self, config: FunnelConfig, cache_size: int = 20_000, timeline_days: float = 30.0
    ) -> None:
        self._config = config
        self._cache = StateCache(cache_size)
        self._timeline = Timeline(timeline_days)

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]:
        return await (await self.prepare(session, records, None)).write(session)

    async def prepare(
        self, session: AsyncSession, records: Sequence[InboundRecord], ahead: Ahead | None
    ) -> FunnelBatch:
        """The pure core's answer to ``records``, from the states the batch ahead (if any)
        is writing for its accounts and from the database for the others."""
        events = [r.event for r in records]
        writing: Mapping[str, AccountState] = {}
        if ahead is not None:
            if isinstance(ahead.batch, FunnelBatch) and not _has_ticks(events):
                writing = ahead.batch.changed
            else:
                # Which accounts a tick sweeps is asked of the database (due_accounts):
                # it must hold the batch ahead's states.
                await ahead.committed()
        domains = {e.account for e in events if e.account}
        domains |= await self._due_for_ticks(session, events, domains)
        states = await repository.load_accounts(session, domains, self._cache, writing)
        changed: dict[str, AccountState] = {}
        outputs: list[StageChanged | TierChanged] = []
        facts: list[Fact] = []
        # In slices, yielding between them: the batch ahead's writes go on meanwhile, each
        # next statement sent as soon as the database answered the last one. The same
        # answer as in one go: each slice starts from the states the previous left.
        for start in range(0, len(events), COMPUTE_SLICE):
            part = events[start : start + COMPUTE_SLICE]
            now = ChainMap(changed, states)
            part_changed, part_outputs, part_facts = apply_events_with_facts(
                now, part, self._config
            )
            changed.update(part_changed)
            outputs += part_outputs
            facts += part_facts
            if ahead is not None:
                await asyncio.sleep(0)
        return FunnelBatch(self, events, changed, outputs, facts)

    async def store(
        self,
        session: AsyncSession,
        events: Sequence[Event],
        changed: Mapping[str, AccountState],
        outputs: Sequence[StageChanged | TierChanged],
        facts: Sequence[Fact],
    ) -> None:
        """Write what the pure core made of ``events``: the changed states, the history,
        the KPI facts, the change feed and the timeline (``abm replay --into`` too)."""
        await repository.save_accounts(session, changed.values(), self._cache, self._config)
        await repository.record_transitions(session, outputs, changed)
        await repository.record_facts(session, facts)
        await record_changes(session, outputs)
        await self._timeline.record(session, events)

    async def prune_timeline(self, session: AsyncSession) -> None:
        await self._timeline.prune(session)

    async def _due_for_ticks(
        self, session: AsyncSession, events: Sequence[Event], loaded: set[str]
    ) -> set[str]:
        """The accounts the batch's ticks may sweep, besides those it loads anyway: for each
        partition, enough of the earliest due for all of its ticks (see ``sweep``)."""
        ticks = [e for e in events if isinstance(e, ClockTicked)]
        due: set[str] = set()
        for partition in {t.partition for t in ticks}:
            mine = [t for t in ticks if t.partition == partition]
            until = max(t.occurred_at for t in mine)
            limit = self._config.max_expiries_per_tick * len(mine)
            due.update(await repository.due_accounts(session, partition, until, limit, loaded))
        return due


@dataclass(frozen=True, slots=True)
class FunnelBatch:
    """A batch's new states, transitions and KPI facts, not yet written."""

    handler: FunnelHandler
    events: Sequence[Event]
    changed: Mapping[str, AccountState]
    outputs: Sequence[StageChanged | TierChanged]
    facts: Sequence[Fact]

    async def write(self, session: AsyncSession) -> list[OutboundRecord]:
        await self.handler.store(session, self.events, self.changed, self.outputs, self.facts)
        _count(self.outputs)
        return [event_record(change, topics.CHANGES) for change in self.outputs]


def _has_ticks(events: Sequence[Event]) -> bool:
    return any(isinstance(e, ClockTicked) for e in events)


def _count(outputs: Sequence[StageChanged | TierChanged]) -> None:
    for change in outputs:
        if isinstance(change, StageChanged):
            metrics.FUNNEL_TRANSITIONS.labels(
                change.from_stage or "none", change.to_stage or "none"
            ).inc()
        else:
            metrics.FUNNEL_TIER_CHANGES.labels(
                str(change.from_tier or "none"), str(change.to_tier or "none")
            ).inc()


def main(settings: FunnelSettings | None = None) -> None:
    settings = settings or FunnelSettings()
    configure_logging(settings.log_level, settings.log_json)
    config = load_funnel_config(settings.funnel_config_file)

    asyncio.run(
        run_consumer_service(
            service="funnel",
            settings=settings,
            group_id=topics.FUNNEL_GROUP,
            topic_names=CONSUMED,
            handler=FunnelHandler(
                config, settings.funnel_state_cache, settings.funnel_timeline_days
            ),
            metrics_host=settings.funnel_metrics_host,
            metrics_port=settings.funnel_metrics_port,
            options=ShellOptions(max_batch=settings.funnel_max_batch),
            sidecars=[
                refresh_account_gauges,
                clock_ticker(
                    settings, settings.funnel_tick_interval_s, settings.funnel_tick_lateness_s
                ),
            ],
        )
    )
