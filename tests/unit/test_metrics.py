"""Metrics computed in the services: lag in messages and seconds, bounded reason classes,
account gauges, and the multi-process exposition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from schemas import topics
from schemas.events import PageViewed
from services.funnel.gauges import export_counts
from services.ingest import observe
from services.ingest.collect import Collected
from services.kit import inbound, metrics
from services.kit.lag import PartitionLag

GROUP = "test-lag"


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_lag_in_messages_and_seconds_behind_the_last_processed_record() -> None:
    lag = PartitionLag(GROUP, clock=lambda: 1_000.0)
    lag.processed(("t", 0), timestamp_ms=990_000)  # processed a record from 10 s ago
    lag.export({("t", 0): 40, ("t", 1): 7}, highwater={("t", 0): 45, ("t", 1): 7}.get)
    labels = {"group": GROUP, "topic": "t"}
    assert sample("abm_consumer_lag_messages", **labels, partition="0") == 5
    assert sample("abm_consumer_lag_seconds", **labels, partition="0") == 10.0
    assert sample("abm_consumer_lag_messages", **labels, partition="1") == 0
    assert sample("abm_consumer_lag_seconds", **labels, partition="1") == 0.0  # caught up

    lag.forget(("t", 0))
    assert sample("abm_consumer_lag_messages", **labels, partition="0") is None
    assert sample("abm_consumer_lag_seconds", **labels, partition="0") is None


def test_no_seconds_until_a_record_was_processed_and_none_without_a_highwater() -> None:
    lag = PartitionLag(GROUP + "-2", clock=lambda: 0.0)
    lag.export({("t", 0): 0, ("t", 1): 3}, highwater={("t", 0): 9}.get)
    labels = {"group": GROUP + "-2", "topic": "t"}
    assert sample("abm_consumer_lag_messages", **labels, partition="0") == 9
    assert sample("abm_consumer_lag_seconds", **labels, partition="0") is None
    assert sample("abm_consumer_lag_messages", **labels, partition="1") is None


class _Message:
    def __init__(self, value: bytes) -> None:
        self.value, self.key, self.offset, self.timestamp = value, b"k", 3, 1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", inbound.UNDECODABLE),
        (b'{"type": "no_such_event"}', inbound.UNKNOWN_TYPE),
        (b'{"type": "page_viewed", "event_id": "e1"}', inbound.INVALID_FIELD),
    ],
)
def test_consumer_dead_letters_carry_a_bounded_reason_class(raw: bytes, expected: str) -> None:
    records, dead = inbound.decode_records([_Message(raw)], ("abm.events.v1", 0))
    assert records == []
    assert [letter.reason_class for letter in dead] == [expected]
    headers = dict(dead[0].record.headers)
    assert headers["abm-dlq-offset"] == b"3"  # the full reason stays in the headers


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("message: larger than 32 KB", observe.TOO_LARGE),
        ("type: unsupported message type 'x'", observe.UNSUPPORTED_TYPE),
        ("timestamp: not ISO 8601: 'yesterday'", observe.INVALID_FIELD),
    ],
)
def test_ingest_rejections_have_a_bounded_reason_class(reason: str, expected: str) -> None:
    assert observe.reason_class(reason) == expected


def test_a_published_request_counts_its_events_dead_letters_and_newest_time() -> None:
    def page(event_id: str, at: datetime) -> PageViewed:
        return PageViewed(event_id=event_id, occurred_at=at, received_at=at, account="a.io",
                          source="s", url="https://v.io/")  # fmt: skip

    def counted() -> tuple[float, float, float, float]:
        return (
            sample("abm_ingest_events_total", type="page_viewed", outcome="accepted") or 0.0,
            sample("abm_ingest_produced_total", topic=topics.EVENTS.name) or 0.0,
            sample("abm_ingest_produced_total", topic=topics.DEAD_LETTER.name) or 0.0,
            sample("abm_ingest_dead_lettered_total", reason=observe.TOO_LARGE) or 0.0,
        )

    later = datetime(2031, 1, 2, tzinfo=UTC)  # newer than any event another test counted
    before = counted()
    events = [page("e1", later), page("e2", later - timedelta(hours=1))]
    dead = [(b"{}", "message: larger than 32 KB", "s")]
    observe.observe_published(Collected(events=events, dead=dead), "req", "/v1/batch")
    after = counted()
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2, 1, 1]
    newest = sample("abm_ingest_newest_event_timestamp_seconds", type="page_viewed")
    assert newest == later.timestamp()


def test_a_remembered_child_is_the_exported_one() -> None:
    child = metrics.labelled(metrics.INGEST_EVENTS, "test_type", "accepted")
    assert child is metrics.labelled(metrics.INGEST_EVENTS, "test_type", "accepted")
    child.inc(3)
    assert sample("abm_ingest_events_total", type="test_type", outcome="accepted") == 3


def test_account_gauges_replace_their_series() -> None:
    export_counts([("engaged", 1, 3), (None, None, 2)])
    assert sample("abm_funnel_accounts", stage="engaged", tier="1") == 3
    assert sample("abm_funnel_accounts", stage="none", tier="none") == 2
    export_counts([("won", 2, 1)])
    assert sample("abm_funnel_accounts", stage="engaged", tier="1") is None
    assert sample("abm_funnel_accounts", stage="won", tier="2") == 1


WORKER = textwrap.dedent(
    """
    import sys
    from services.kit import metrics
    metrics.INGEST_PRODUCED.labels("abm.events.v1").inc(int(sys.argv[1]))
    metrics.INGEST_NEWEST_EVENT.labels("page_viewed").set(float(sys.argv[1]))
    if sys.argv[1] == "0":
        from services.kit.health import exposition
        metrics.publish_build_info("ingest")
        sys.stdout.write(exposition().decode())
    """
)


def test_multiprocess_mode_aggregates_every_worker(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))

    def worker(count: int) -> str:
        command = [sys.executable, "-c", WORKER, str(count)]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout

    worker(3)
    worker(4)
    page = worker(0)
    lines = {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in page.splitlines()}
    assert float(lines['abm_ingest_produced_total{topic="abm.events.v1"}']) == 7
    assert 'abm_build_info{service="ingest"' in page
    assert json.dumps("page_viewed") in page  # the gauge is there, combined over workers
