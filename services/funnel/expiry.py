"""Time passing with no event: the windows that expire by themselves (pure).

Two rules depend on time alone: an engaged account lapses back to target once its last
engagement is older than ``engagement_window_days``, and a tier can drop once the recent
engagement, surge or high-value visit behind it is older than ``recent_window_days``.

``due_at`` says when the next of these expiries falls, as a function of the state alone;
``processing`` applies every expiry due before an event (the lazy path) and on a
``ClockTicked`` (the sweep path), each at its own due time and under an id derived from
the account and that time. Both paths therefore produce the same ``StageChanged`` /
``TierChanged`` events, so a replay gives the same history whichever path ran, and an
account lapses on time even when it never sends another event.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID, uuid5

from schemas.envelope import Envelope
from schemas.events import Stage
from services.funnel.config import FunnelConfig
from services.funnel.state import AccountState

EXPIRY_SOURCE = "funnel-clock"
EXPIRY_NAMESPACE = UUID("8d2f0c5e-51b7-5e0a-b3c4-7a9e1f20d6b3")  # fixed forever
# ``within`` counts a moment exactly ``days`` old as still inside the window.
_JUST_AFTER = timedelta(microseconds=1)


def due_at(state: AccountState, config: FunnelConfig) -> datetime | None:
    """The first moment after ``state.clock`` at which time alone may change the account's
    stage or tier, or None when no window is running."""
    candidates = []
    if state.stage is Stage.ENGAGED and state.last_engaged_at is not None:
        candidates.append(_end(state.last_engaged_at, config.engagement_window_days))
    if state.is_target:
        recent = [state.last_engaged_at, state.last_high_value_visit_at]
        if not state.surge_topics:  # an active surge is recent intent until it ends
            recent.append(state.last_surge_at)
        candidates += [_end(m, config.recent_window_days) for m in recent if m is not None]
    upcoming = [moment for moment in candidates if moment > state.clock]
    return min(upcoming, default=None)


def expiry_cause(domain: str, due: datetime) -> Envelope:
    """What the outputs of an expiry name as their cause: the account's clock reaching
    ``due``. Its id depends on nothing else, so the lazy and the sweep path agree."""
    return Envelope(
        event_id=f"expiry-{uuid5(EXPIRY_NAMESPACE, f'{domain}|{due.isoformat()}')}",
        occurred_at=due,
        received_at=due,
        account=domain,
        source=EXPIRY_SOURCE,
    )


def _end(moment: datetime, days: int) -> datetime:
    return moment + timedelta(days=days) + _JUST_AFTER
