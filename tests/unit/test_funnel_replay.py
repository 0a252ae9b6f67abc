"""`abm replay`'s core: the same answer as the pure core, and a back-test of a change."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from schemas.events import encode_event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.replay import compare, read_event_file, replay, summary
from tests.streams import generate


def test_replay_dedups_skips_garbage_and_matches_the_pure_core(tmp_path: Path) -> None:
    events = generate(accounts=80, events_per_account=10, seed=9)
    file = tmp_path / "events.jsonl"
    file.write_bytes(b"\n".join([*(encode_event(e) for e in events), b"{broken"]) + b"\n")
    result = replay(read_event_file(file), FunnelConfig(), batch=37)
    unique = list({e.event_id: e for e in events}.values())
    expected, changes = apply_events({}, unique, FunnelConfig())
    assert result.states == expected and result.transitions == len(changes)
    assert (result.applied, result.duplicates, result.undecodable) == (
        len(unique),
        len(events) - len(unique),
        1,
    )
    assert summary(result)["accounts"] == len(expected)


def test_a_stricter_threshold_is_back_tested_against_live() -> None:
    # Let fit decide targeting (the generator sets explicit targets), then raise the bar.
    by_fit = [
        e.model_copy(update={"target": None}) if e.type == "account_upserted" else e
        for e in generate(accounts=60, events_per_account=8, seed=2)
    ]
    events = [encode_event(e) for e in by_fit]
    live_run = replay(events, FunnelConfig())
    live = {d: (s.stage.value if s.stage else None, s.tier) for d, s in live_run.states.items()}
    assert compare(live_run.states, live).stage_changes == {}
    in_funnel = sum(1 for s in live_run.states.values() if s.stage)
    assert in_funnel > 30, "the default threshold lets these accounts in"
    strict = replay(events, FunnelConfig(fit_threshold=100))  # their fit is 75: none qualifies
    diff = compare(strict.states, live)
    kept = [s.stage for s in strict.states.values() if s.stage]
    assert all(stage in ("won", "retention", "expansion") for stage in kept), "customers stay"
    assert sum(diff.stage_changes.values()) + len(kept) == in_funnel
    assert all(after is None for _, after in diff.stage_changes)


def test_the_summary_shows_the_replayed_funnel_of_target_accounts() -> None:
    """Hand-computed: a.com engaged, b.com with a 50,000 opportunity, c.com won and then
    renewed, d.com a target that did nothing, e.com not a target (visits, an opportunity):
    e.com counts nowhere."""
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)

    def event(n: int, kind: str, account: str, **fields: object) -> bytes:
        document = {
            "type": kind,
            "event_id": f"e{n}",
            "occurred_at": at.isoformat(),
            "received_at": at.isoformat(),
            "account": account,
            "source": "t",
            **fields,
        }
        return json.dumps(document).encode()  # fmt: skip

    firmographics = {"industry": "software", "country": "US", "employees": 500}
    events = [
        event(1, "account_upserted", "a.com", target=True, **firmographics),
        event(2, "page_viewed", "a.com", url="https://vendor.example/blog"),
        event(3, "account_upserted", "b.com", target=True, **firmographics),
        event(4, "opportunity_created", "b.com", opportunity_id="o-b", amount=50_000),
        event(5, "account_upserted", "c.com", target=True, **firmographics),
        event(6, "opportunity_created", "c.com", opportunity_id="o-c", amount=10_000),
        event(7, "opportunity_won", "c.com", opportunity_id="o-c", amount=10_000),
        event(8, "subscription_renewed", "c.com", amount=12_000),
        event(9, "account_upserted", "d.com", target=True, **firmographics),
        event(10, "account_upserted", "e.com", target=False, **firmographics),
        event(11, "page_viewed", "e.com", url="https://vendor.example/pricing"),
        event(12, "opportunity_created", "e.com", opportunity_id="o-e", amount=99_000),
    ]
    funnel = summary(replay(events, FunnelConfig()))["funnel"]
    assert isinstance(funnel, dict)
    assert funnel["targets"] == 4
    assert funnel["engaged_or_beyond_share"] == 0.75  # a, b and c of the four
    assert funnel["pipeline"] == 50_000  # c's deal closed; e is no target
    # Reached: target 4; engaged 3 (a; b and c went further); opportunity 2; won 1 (c);
    # retention 1; expansion 0.
    assert funnel["conversions"] == {
        "target->engaged": 0.75,
        "engaged->opportunity": 2 / 3,
        "opportunity->won": 0.5,
        "won->retention": 1.0,
        "retention->expansion": 0.0,
    }
    assert sum(funnel["targets_per_tier"].values()) == 4
