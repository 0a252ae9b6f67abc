"""The events the funnel emits, built deterministically from the event that caused them.

The id of an output is a UUIDv5 of the cause's id, the kind and the destination, so that
replaying the same input gives byte-identical outputs, and consumers de-duplicate the
replays of an output by its id like any other event.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid5

from schemas.envelope import Envelope
from schemas.events import Stage, StageChanged, TierChanged

FUNNEL_NAMESPACE = UUID("5c0f6a0e-3f5d-5d8e-9a8c-2b1e4f6d7a90")
SOURCE = "funnel"


def derived_event_id(cause_id: str, kind: str, to: str) -> str:
    """``uuid5(FUNNEL_NAMESPACE, "<cause id>:<kind>:<to>")`` as a string."""
    return str(uuid5(FUNNEL_NAMESPACE, f"{cause_id}:{kind}:{to}"))


def stage_changed(
    cause: Envelope,
    domain: str,
    change: tuple[Stage | None, Stage | None],
    rule: str,
    config_version: str,
    at: datetime,
) -> StageChanged:
    """The ``StageChanged`` for ``change`` = (from, to), caused by ``cause``, at ``at``
    (the account's clock: the cause's time, or later for a late cause)."""
    from_stage, to_stage = change
    to = to_stage.value if to_stage is not None else "none"
    return StageChanged(
        event_id=derived_event_id(cause.event_id, "stage", to),
        occurred_at=at,
        received_at=cause.received_at,
        account=domain,
        source=SOURCE,
        from_stage=from_stage,
        to_stage=to_stage,
        rule=rule,
        config_version=config_version,
        cause_event_ids=[cause.event_id],
    )


def tier_changed(
    cause: Envelope,
    domain: str,
    change: tuple[int | None, int | None],
    rule: str,
    config_version: str,
    at: datetime,
) -> TierChanged:
    """The ``TierChanged`` for ``change`` = (from, to), caused by ``cause``, at ``at``."""
    from_tier, to_tier = change
    to = str(to_tier) if to_tier is not None else "none"
    return TierChanged(
        event_id=derived_event_id(cause.event_id, "tier", to),
        occurred_at=at,
        received_at=cause.received_at,
        account=domain,
        source=SOURCE,
        from_tier=from_tier,
        to_tier=to_tier,
        rule=rule,
        config_version=config_version,
        cause_event_ids=[cause.event_id],
    )
