"""Prometheus metrics shared by the services: ``abm_<service>_<noun>_<unit|total>``.

Label sets are bounded: event types, outcomes, groups, topics and partitions only, never
account domains or user input.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram, Info

BUILD_INFO = Info("abm_build", "Build information of the running abm-stream.")

INGEST_EVENTS = Counter(
    "abm_ingest_events_total",
    "Events received by ingest, by type and outcome (accepted, rejected, duplicate).",
    ["type", "outcome"],
)
INGEST_REQUEST_SECONDS = Histogram(
    "abm_ingest_request_seconds",
    "Ingest request latency, including waiting for the broker's acknowledgement.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_BROKER_ERRORS = Counter(
    "abm_ingest_broker_errors_total",
    "Requests answered 503 because the broker did not acknowledge in time.",
)

CONSUMER_EVENTS = Counter(
    "abm_consumer_events_total",
    "Records handled by a consumer, by outcome (applied, duplicate, dead_lettered).",
    ["group", "outcome"],
)
CONSUMER_LAG = Gauge(
    "abm_consumer_lag_messages",
    "High-water mark minus the next offset to process, per partition.",
    ["group", "topic", "partition"],
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
INTENT_SURGES = Counter(
    "abm_intent_surges_total", "Surge transitions per topic.", ["topic", "transition"]
)

API_REQUEST_SECONDS = Histogram(
    "abm_api_request_seconds",
    "API request latency by route template.",
    ["route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def publish_build_info(service: str) -> None:
    try:
        package_version = version("abm-stream")
    except PackageNotFoundError:
        package_version = "unknown"
    BUILD_INFO.info({"version": package_version, "service": service})
