"""Events and runners shared by the funnel's stage tests (acme.com, days after T0)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid5

from schemas.events import EVENT_ADAPTER, Event, Stage, StageChanged, TierChanged
from services.funnel.config import FunnelConfig
from services.funnel.outputs import FUNNEL_NAMESPACE
from services.funnel.processing import apply_event
from services.funnel.scoring import rescore
from services.funnel.state import AccountState

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CONFIG = FunnelConfig()
ICP_FIT: dict[str, Any] = {
    "industry": "Software",
    "country": "US",
    "employees": 500,
    "annual_revenue": 50_000_000,
    "technologies": ["Salesforce"],
    "funding": "Series B",
    "customer_count": 1000,
}


def ev(type_: str, day: float, event_id: str | None = None, **fields: Any) -> Event:
    """An event of ``type_`` for acme.com, ``day`` days after T0."""
    at = T0 + timedelta(days=day)
    data = {
        "type": type_,
        "event_id": event_id or f"{type_}@{day}",
        "occurred_at": at,
        "received_at": at + timedelta(seconds=1),
        "account": "acme.com",
        "source": "test",
        **fields,
    }
    return EVENT_ADAPTER.validate_python(data)


def run(
    events: Sequence[Event], state: AccountState | None = None
) -> tuple[AccountState | None, list[StageChanged | TierChanged]]:
    outputs: list[StageChanged | TierChanged] = []
    for event in events:
        state, produced = apply_event(state, event, CONFIG)
        outputs.extend(produced)
    return state, outputs


def moves(outputs: Sequence[StageChanged | TierChanged]) -> list[tuple[str | None, str]]:
    """(to_stage, rule) of the StageChanged outputs."""
    return [
        (o.to_stage.value if o.to_stage else None, o.rule)
        for o in outputs
        if isinstance(o, StageChanged)
    ]


def expected_change(
    cause: Event, from_stage: Stage | None, to_stage: Stage, rule: str
) -> StageChanged:
    return StageChanged(
        event_id=str(uuid5(FUNNEL_NAMESPACE, f"{cause.event_id}:stage:{to_stage.value}")),
        occurred_at=cause.occurred_at,
        received_at=cause.received_at,
        account="acme.com",
        source="funnel",
        from_stage=from_stage,
        to_stage=to_stage,
        rule=rule,
        config_version="funnel-1",
        cause_event_ids=[cause.event_id],
    )


def run_checking_scores(events: Sequence[Event], config: FunnelConfig = CONFIG) -> AccountState:
    """Apply ``events`` one by one, checking after each that the scores kept up to date
    event by event equal the scores computed afresh; the final state."""
    state: AccountState | None = None
    for event in events:
        state, _ = apply_event(state, event, config)
        assert state is not None
        assert state.scores == rescore(state, config).scores
    assert state is not None
    return state
