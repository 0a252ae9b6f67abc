"""`abm replay`'s input order: a function of the records, not of how fetches interleaved
the partitions of the events and surges topics."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas import topics
from schemas.envelope import Envelope
from schemas.events import (
    InboundEvent,
    PageViewed,
    SurgeEnded,
    SurgeStarted,
    TierChanged,
    encode_event,
)
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.replay import Replay, read_event_file, replay
from services.funnel.replay_order import (
    Record,
    file_records,
    in_replay_order,
    values_in_replay_order,
)
from tests.streams import generate

# ACV is 500 employees x 100: tier 1 needs recent intent (a surge) and engagement.
CONFIG = FunnelConfig(tier1_min_acv=50_000)
_SURGE_IDS = uuid.UUID("6f1d3c52-7d8e-4c55-9a43-2f0d6f1b9e10")

Surge = SurgeStarted | SurgeEnded


def history(accounts: int, seed: int) -> tuple[list[InboundEvent], list[Surge]]:
    """Generated events in the order ingest receives them (by ``received_at``), and the
    surges intent would emit for every second account, in the same order."""
    events = sorted(generate(accounts, events_per_account=12, seed=seed), key=_received)
    return events, sorted(surges_for(events), key=_received)


def surges_for(events: Sequence[InboundEvent]) -> list[Surge]:
    """A surge on "data-platform" for every second account: started by one of its events,
    ended by its third event after that (if any); each carries its cause's times."""
    mine: dict[str, list[InboundEvent]] = {}
    for event in {e.event_id: e for e in events}.values():
        mine.setdefault(event.account or "", []).append(event)
    surges: list[Surge] = []
    for n, (_, own) in enumerate(sorted(mine.items())):
        if n % 2 or len(own) < 3:
            continue
        start = 1 + n % (len(own) - 2)
        surges.append(_surge(SurgeStarted, own[start], 85.0))
        if start + 3 < len(own):
            surges.append(_surge(SurgeEnded, own[start + 3], 20.0))
    return surges


def records_of(events: Iterable[Envelope], topic: topics.Topic) -> list[Record]:
    """``events`` as the broker stores them: keyed by account, offsets per partition."""
    offsets: dict[int, int] = {}
    records = []
    for event in events:
        partition = topics.partition_of(event.account_key, topic.partitions)
        offset = offsets[partition] = offsets.get(partition, -1) + 1
        records.append(Record(topic.name, partition, offset, encode_event(event)))
    return records


def interleaved(records: Sequence[Record], rng: random.Random) -> list[Record]:
    """A random interleaving of the partitions, each partition's records in offset order:
    how a fetch may deliver them."""
    queues: dict[tuple[str, int], list[Record]] = {}
    for record in records:
        queues.setdefault((record.topic, record.partition), []).append(record)
    out: list[Record] = []
    while queues:
        source = rng.choice(sorted(queues))
        take = rng.randrange(1, 20)
        out += queues[source][:take]
        del queues[source][:take]
        if not queues[source]:
            del queues[source]
    return out


def tier_history(result: Replay) -> list[tuple[str | None, int | None, int | None, datetime]]:
    return [
        (o.account, o.from_tier, o.to_tier, o.occurred_at)
        for o in result.outputs
        if isinstance(o, TierChanged)
    ]


def test_two_fetch_interleavings_give_the_same_replay_order() -> None:
    events, surges = history(accounts=60, seed=5)
    on_events, on_surges = records_of(events, topics.EVENTS), records_of(surges, topics.SURGES)
    surges_late = on_events + on_surges  # what the audit saw: surges fetched after events
    surges_early = on_surges + on_events
    shuffled = interleaved(on_events + on_surges, random.Random(3))

    order = list(in_replay_order(surges_late))
    assert list(in_replay_order(surges_early)) == order
    assert list(in_replay_order(shuffled)) == order
    assert list(in_replay_order(reversed(shuffled))) == order  # offsets, not fetch order
    assert len(order) == len(events) + len(surges)

    # The records are in ingest order, so the merge is by time, each surge after its cause.
    decoded = [e for e in order if not isinstance(e, bytes)]
    assert [e.received_at for e in decoded] == sorted(e.received_at for e in decoded)
    position = {e.event_id: n for n, e in enumerate(decoded)}
    for surge in surges:
        assert position[surge.trigger_event_ids[0]] < position[surge.event_id]

    # Replayed in that order: one history, whatever the fetches, and the pure core's.
    first = replay(in_replay_order(surges_late), CONFIG, batch=97, history=True)
    second = replay(in_replay_order(shuffled), CONFIG, history=True)
    assert (first.states, first.outputs) == (second.states, second.outputs)
    unique = list({e.event_id: e for e in decoded}.values())
    assert (first.states, first.outputs) == apply_events({}, unique, CONFIG)
    without = replay(in_replay_order(on_events), CONFIG, history=True)
    assert tier_history(first) != tier_history(without), "the surges decide tiers"

    # The old reading applied records as fetched: two fetches, two tier histories.
    late = replay([r.value for r in surges_late], CONFIG, history=True)
    early = replay([r.value for r in surges_early], CONFIG, history=True)
    assert tier_history(late) != tier_history(early)
    assert tier_history(first) not in (tier_history(late), tier_history(early))


def test_a_partition_keeps_its_offset_order_and_a_refetch_counts_once() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    # One partition whose second record was received before its first (two ingest hosts).
    a = _view("a.com", at + timedelta(minutes=5), "a1")
    b = _view("a.com", at, "a2")
    c = _view("a.com", at + timedelta(minutes=1), "a3")
    other = _view("other.com", at + timedelta(minutes=2), "o1")
    surge = _surge(SurgeStarted, other, 90.0)  # same time as its cause: after it
    records = [
        Record(topics.EVENTS.name, 0, 10, encode_event(a)),
        Record(topics.EVENTS.name, 0, 11, encode_event(b)),
        Record(topics.EVENTS.name, 0, 12, encode_event(c)),
        Record(topics.EVENTS.name, 1, 0, encode_event(other)),
        Record(topics.SURGES.name, 0, 0, encode_event(surge)),
        Record(topics.EVENTS.name, 1, 1, b"{broken"),
    ]
    twice = [*records[3:], *records, records[1]]
    expected = ["o1", surge.event_id, "a1", "a2", "a3"]
    for fetched in (records, twice, records[::-1]):
        order = list(in_replay_order(fetched))
        assert b"{broken" in order and len(order) == 6
        assert [e.event_id for e in order if not isinstance(e, bytes)] == expected


def test_an_exported_file_replays_in_the_topics_order(tmp_path: Path) -> None:
    events, surges = history(accounts=30, seed=11)
    records = records_of(events, topics.EVENTS) + records_of(surges, topics.SURGES)
    topics_order = values_in_replay_order(interleaved(records, random.Random(8)))
    # Exports: each topic dumped in turn (surges first), or the replay order itself.
    per_topic = [r.value for r in records_of(surges, topics.SURGES)]
    per_topic += [r.value for r in records_of(events, topics.EVENTS)]
    for name, lines in (("per-topic", per_topic), ("replay-order", topics_order)):
        file = tmp_path / f"{name}.jsonl"
        file.write_bytes(b"\n".join(lines) + b"\n")
        assert values_in_replay_order(file_records(read_event_file(file))) == topics_order
        located = list(file_records(read_event_file(file)))
        assert sorted((r.topic, r.partition, r.value) for r in located) == sorted(
            (r.topic, r.partition, r.value) for r in records
        )


def _received(event: Envelope) -> datetime:
    return event.received_at


def _surge(kind: type[Surge], cause: Envelope, score: float) -> Surge:
    return kind(
        event_id=str(uuid.uuid5(_SURGE_IDS, f"{cause.event_id}:{kind.__name__}")),
        occurred_at=cause.occurred_at,
        received_at=cause.received_at,
        account=cause.account,
        source="intent",
        topic="data-platform",
        score=score,
        baseline=2.0,
        observed=12.0 if kind is SurgeStarted else 3.0,
        detector_version="test",
        trigger_event_ids=[cause.event_id],
    )


def _view(account: str, at: datetime, event_id: str) -> PageViewed:
    return PageViewed(
        event_id=event_id,
        occurred_at=at,
        received_at=at,
        account=account,
        source="web",
        url="https://vendor.example/pricing",
    )
