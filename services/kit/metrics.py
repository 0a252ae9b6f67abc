"""Prometheus metrics shared by the services: ``abm_<service>_<noun>_<unit|total>``.

Label sets are bounded: event types, outcomes, groups, topics, partitions, route templates,
status codes, stages, tiers and reason *classes* only, never account domains, free text
or user input.

Multi-process: when ``PROMETHEUS_MULTIPROC_DIR`` is set before the first import (several
workers behind one port), values live in files there and ``/metrics`` aggregates them
(see ``services.kit.health``); gauges say how to combine the workers' values.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge, Histogram, Info
from prometheus_client.metrics import MetricWrapperBase

_Metric = TypeVar("_Metric", bound=MetricWrapperBase)
_CHILDREN: dict[tuple[Any, tuple[str, ...]], Any] = {}


def labelled(metric: _Metric, *values: str) -> _Metric:
    """``metric.labels(*values)``, remembered: prometheus-client validates the values and
    takes a lock on every lookup, about a microsecond, paid several times per pixel hit
    and per request. The label sets are bounded (see above), so is the memory. Not for a
    series ever removed (``remove``, ``clear``): the child kept would no longer be exported."""
    key = (metric, values)
    child = _CHILDREN.get(key)
    if child is None:
        child = _CHILDREN[key] = metric.labels(*values)
    return child


BUILD_INFO = Info("abm_build", "Build information of the running abm-stream.")
BUILD_INFO_KEYS = ("version", "service")

INGEST_EVENTS = Counter(
    "abm_ingest_events_total",
    "Events received by ingest, by type and outcome (accepted, rejected, duplicate, ignored, "
    "unauthenticated, key_lookup_failed).",
    ["type", "outcome"],
)
INGEST_REQUEST_SECONDS = Histogram(
    "abm_ingest_request_seconds",
    "Ingest request latency, including waiting for the broker's acknowledgement.",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_BROKER_ERRORS = Counter(
    "abm_ingest_broker_errors_total",
    "Requests answered 503 because the broker did not acknowledge in time.",
)
INGEST_PRODUCED = Counter(
    "abm_ingest_produced_total",
    "Records the broker acknowledged, per topic (events and dead letters).",
    ["topic"],
)
INGEST_DEAD_LETTERED = Counter(
    "abm_ingest_dead_lettered_total",
    "Messages ingest rejected to the dead-letter topic, by reason class.",
    ["reason"],
)
INGEST_NEWEST_EVENT = Gauge(
    "abm_ingest_newest_event_timestamp_seconds",
    "Event time (occurred_at) of the newest accepted event, per event type: how fresh "
    "each kind of signal is.",
    ["type"],
    multiprocess_mode="livemax",
)

CONSUMER_EVENTS = Counter(
    "abm_consumer_events_total",
    "Records handled by a consumer, by outcome (applied, duplicate, dead_lettered, "
    "passed_over: of no interest to this consumer).",
    ["group", "outcome"],
)
CONSUMER_CONSUMED = Counter(
    "abm_consumer_consumed_total",
    "Records read from the broker and processed, per topic.",
    ["group", "topic"],
)
CONSUMER_DEAD_LETTERED = Counter(
    "abm_consumer_dead_lettered_total",
    "Records sent to the dead-letter topic, by reason class (undecodable, unknown_type, "
    "invalid_field).",
    ["group", "reason"],
)
CONSUMER_LAG = Gauge(
    "abm_consumer_lag_messages",
    "High-water mark minus the next offset to process, per partition.",
    ["group", "topic", "partition"],
    multiprocess_mode="livemax",
)
CONSUMER_LAG_SECONDS = Gauge(
    "abm_consumer_lag_seconds",
    "Wall clock minus the broker timestamp of the last processed record, per partition, "
    "while records are waiting; 0 when caught up.",
    ["group", "topic", "partition"],
    multiprocess_mode="livemax",
)
CONSUMER_TRANSACTION_SECONDS = Histogram(
    "abm_consumer_transaction_seconds",
    "Time of the batch's database transaction (state, offsets, applied ids, outbox).",
    ["group"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_OFFSETS_COMMITTED = Counter(
    "abm_consumer_offsets_committed_total",
    "Partition offsets advanced in the database (one per partition per batch).",
    ["group"],
)
CONSUMER_RETRIABLE_ERRORS = Counter(
    "abm_consumer_retriable_errors_total",
    "Backed-off errors by kind (broker, database): the dependency was away.",
    ["group", "kind"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "abm_consumer_batch_seconds",
    "Time to process one micro-batch, from decode to database commit.",
    ["group"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_BATCH_SIZE = Histogram(
    "abm_consumer_batch_size",
    "Records per micro-batch.",
    ["group"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
CONSUMER_CONFLICTS = Counter(
    "abm_consumer_offset_conflicts_total",
    "Batches rolled back because another member advanced the stored offsets.",
    ["group"],
)
CONSUMER_REBALANCES = Counter(
    "abm_consumer_rebalances_total", "Partition assignments received.", ["group"]
)
CONSUMER_LOG_RESETS = Counter(
    "abm_consumer_log_resets_total",
    "Partitions whose log ended before the stored offset (recreated, or its broker lost "
    "data) and were read again from their start.",
    ["group"],
)
OUTBOX_PUBLISHED = Counter(
    "abm_consumer_outbox_published_total", "Outbox records published.", ["group", "topic"]
)

FUNNEL_TRANSITIONS = Counter(
    "abm_funnel_stage_transitions_total",
    'Stage transitions by from/to stage ("none" outside the funnel).',
    ["from_stage", "to_stage"],
)
FUNNEL_TIER_CHANGES = Counter(
    "abm_funnel_tier_changes_total", "Tier changes by from/to tier.", ["from_tier", "to_tier"]
)
FUNNEL_ACCOUNTS = Gauge(
    "abm_funnel_accounts",
    'Accounts per stage and tier ("none" when unset), refreshed periodically.',
    ["stage", "tier"],
    multiprocess_mode="livemax",
)
INTENT_SURGES = Counter(
    "abm_intent_surges_total", "Surge transitions per topic.", ["topic", "transition"]
)

API_REQUEST_SECONDS = Histogram(
    "abm_api_request_seconds",
    "API request latency by route template.",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
API_STREAMS_OPEN = Gauge(
    "abm_api_streams_open",
    "Server-Sent Event streams (GET /v1/stream) open now.",
    multiprocess_mode="livesum",
)
API_CHANGE_LOG_READS = Counter(
    "abm_api_change_log_reads_total",
    'Reads of the change log for the streams: by the shared change tail ("tail"), or by a '
    'stream behind what the tail holds or while the tail cannot read ("stream").',
    ["reader"],
)

INGEST_ACCOUNT_RESOLUTIONS = Counter(
    "abm_ingest_account_resolutions_total",
    "Accepted events by the evidence that named their account (group_id, email_domain, "
    'visitor, ip_range; "none" when no account was found).',
    ["provenance"],
)


def start_consumer_series(group: str, topic_names: Sequence[str], reasons: Sequence[str]) -> None:
    """Create a consumer's bounded series at 0, so that ``rate``/``increase`` and the alerts
    see them before the first occurrence."""
    for outcome in ("applied", "duplicate", "dead_lettered", "passed_over"):
        CONSUMER_EVENTS.labels(group, outcome)
    for reason in reasons:
        CONSUMER_DEAD_LETTERED.labels(group, reason)
    for kind in ("broker", "database", "other"):
        CONSUMER_RETRIABLE_ERRORS.labels(group, kind)
    for topic in topic_names:
        CONSUMER_CONSUMED.labels(group, topic)
    for counter in (
        CONSUMER_CONFLICTS,
        CONSUMER_REBALANCES,
        CONSUMER_OFFSETS_COMMITTED,
        CONSUMER_LOG_RESETS,
    ):
        counter.labels(group)


def start_ingest_series(topic_names: Sequence[str], reasons: Sequence[str]) -> None:
    for topic in topic_names:
        INGEST_PRODUCED.labels(topic)
    for reason in reasons:
        INGEST_DEAD_LETTERED.labels(reason)


def publish_build_info(service: str) -> None:
    try:
        package_version = version("abm-stream")
    except PackageNotFoundError:
        package_version = "unknown"
    BUILD_INFO.info(dict(zip(BUILD_INFO_KEYS, (package_version, service), strict=True)))


# --- visitor stitching (services/stitch) --------------------------------------------------

STITCH_VISITORS_IDENTIFIED = Counter(
    "abm_stitch_visitors_identified_total",
    "Anonymous visitors identified for the first time (their earlier events attributed).",
)
STITCH_EVENTS_ATTRIBUTED = Counter(
    "abm_stitch_events_attributed_total",
    'Stitched copies published, by kind: "pending" (held until the visitor identified) or '
    '"direct" (the visitor had already identified).',
    ["kind"],
)
STITCH_PENDING_EVENTS = Counter(
    "abm_stitch_pending_events_total",
    'Anonymous events of unidentified visitors, by outcome: "stored" (held for a later '
    'identification) or "pruned" (dropped by the per-visitor bound: never attributed).',
    ["outcome"],
)


def start_stitch_series() -> None:
    """The stitch consumer's series at 0, so that rates exist before the first event."""
    STITCH_VISITORS_IDENTIFIED.inc(0)
    for kind in ("pending", "direct"):
        STITCH_EVENTS_ATTRIBUTED.labels(kind)
    for outcome in ("stored", "pruned"):
        STITCH_PENDING_EVENTS.labels(outcome)


INGEST_BOT_EVENTS = Counter(
    "abm_ingest_bot_events_total",
    "Accepted events tagged as bot traffic (kept, ignored by scoring), per ingest route.",
    ["route"],
)
