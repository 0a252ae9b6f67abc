"""The intent consumer: the pure detector wrapped by the shared consumer shell."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from schemas import topics
from schemas.events import ClockTicked
from services.intent import repository
from services.intent.config import IntentConfig, load_intent_config
from services.intent.metrics import SourceFreshness
from services.intent.processing import (
    apply_events,
    contributions,
    is_intent_input,
    series_keys,
)
from services.intent.settings import IntentSettings
from services.kit import metrics
from services.kit.changes import record_changes
from services.kit.consumer import InboundRecord, ShellOptions
from services.kit.logging import configure_logging
from services.kit.offsets import OutboundRecord
from services.kit.publish import event_record
from services.kit.runner import run_consumer_service


class IntentHandler:
    def __init__(self, config: IntentConfig) -> None:
        self._config = config
        self._freshness = SourceFreshness()

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]:
        events = [r.event for r in records]
        contributed = contributions(events, self._config)  # once: three uses below
        self._freshness.observe(events, self._config, contributed)
        keys = series_keys(events, self._config, contributed)
        ticked = {e.partition for e in events if isinstance(e, ClockTicked)}
        keys |= await repository.surging_series(session, ticked)
        if not keys:
            return []
        states = await repository.load_series(session, keys)
        changed, outputs = apply_events(states, events, self._config, contributed)
        await repository.save_series(session, changed)
        await repository.record_surges(session, outputs)
        await record_changes(session, outputs)
        known = self._config.known_topics
        for surge in outputs:
            topic = surge.topic if surge.topic in known else "other"
            metrics.INTENT_SURGES.labels(topic, surge.type.removeprefix("surge_")).inc()
        return [event_record(surge, topics.SURGES) for surge in outputs]


def main(settings: IntentSettings | None = None) -> None:
    settings = settings or IntentSettings()
    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(
        run_consumer_service(
            service="intent",
            settings=settings,
            group_id=topics.INTENT_GROUP,
            topic_names=(topics.EVENTS.name,),
            handler=IntentHandler(load_intent_config(settings.intent_config_file)),
            metrics_host=settings.intent_metrics_host,
            metrics_port=settings.intent_metrics_port,
            options=ShellOptions(max_batch=settings.intent_max_batch, relevant=is_intent_input),
        )
    )
