"""The database tables, one schema for every service.

Consumers own what they write (funnel: ``accounts`` and ``account_transitions``; intent:
``intent_series`` and ``surges``); the API only reads them. The consumer bookkeeping
(``consumer_offsets``, ``processed_events``, ``outbox``) is shared by the consumer shell.
Alembic migrations under ``migrations/`` create exactly these.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    UniqueConstraint,
    case,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")
# Written whole and read whole, never searched inside: kept as text (``json``), which
# PostgreSQL stores without building ``jsonb``'s binary form, about twice as fast to
# upsert for the funnel's few-KB states (docs/benchmarks.md).
JsonText = JSON()

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# --- consumer bookkeeping ---------------------------------------------------------------

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("group_id", String(128), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("group_id", String(128), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("processed_at", UtcDateTime, nullable=False),
    Index(None, "processed_at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("group_id", String(128), nullable=False),
    Column("source_topic", String(255), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("topic", String(255), nullable=False),
    Column("key", LargeBinary, nullable=True),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JsonDocument, nullable=False),
    Index(None, "group_id", "source_topic", "source_partition", "id"),
)

# --- funnel state -------------------------------------------------------------------------

accounts = Table(
    "accounts",
    metadata,
    Column("domain", String(253), primary_key=True),
    Column("name", String(256)),
    Column("owner", String(256)),
    Column("is_target", Boolean, nullable=False),
    Column("fit_score", Float, nullable=False),
    Column("stage", String(32)),
    Column("stage_since", UtcDateTime),
    Column("furthest_stage_rank", Integer, nullable=False),
    Column("tier", Integer),
    Column("last_activity_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("state", JsonText, nullable=False),
    # A random token per write: a consumer's cached state is current iff it is unchanged.
    Column("revision", BigInteger, nullable=False, server_default="0"),
    # When time alone next changes the account (a window running out), and the partition
    # of the events topic it lives on: what a ``ClockTicked`` of that partition sweeps.
    Column("due_at", UtcDateTime),
    Column("partition", Integer),
    Index(None, "stage", "domain"),
    Index(None, "tier", "domain"),
    Index(None, "partition", "due_at", "domain"),
)

account_transitions = Table(
    "account_transitions",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("domain", String(253), nullable=False),
    Column("kind", String(16), nullable=False),  # "stage" | "tier"
    Column("from_value", String(32)),
    Column("to_value", String(32)),
    Column("occurred_at", UtcDateTime, nullable=False),
    # The account's n-th transition: orders those of one moment (ids sort at random).
    Column("account_seq", Integer),
    Column("rule", String(128), nullable=False),
    Column("config_version", String(64), nullable=False),
    Column("cause_event_ids", JsonDocument, nullable=False),
    Index(None, "domain", "occurred_at"),
)

account_events = Table(
    "account_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("account", String(253), nullable=False),
    Column("type", String(32), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("payload", JsonDocument, nullable=False),  # the event as received, provenance included
    Index(None, "account", "occurred_at", "event_id"),
    Index(None, "occurred_at"),
)

# --- intent state -------------------------------------------------------------------------

intent_series = Table(
    "intent_series",
    metadata,
    Column("account", String(253), primary_key=True),
    Column("topic", String(256), primary_key=True),
    Column("state", JsonDocument, nullable=False),
)

surges = Table(
    "surges",
    metadata,
    Column("event_id", String(128), primary_key=True),  # the SurgeStarted event
    Column("account", String(253), nullable=False),
    Column("topic", String(256), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("score", Float, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("observed", Float, nullable=False),
    Column("detector_version", String(64), nullable=False),
    Column("trigger_event_ids", JsonDocument, nullable=False),
    # A competitor topic: for a customer, a churn-risk signal.
    Column("competitor", Boolean, nullable=False, server_default=false()),
    Index(None, "account", "topic", "ended_at"),
    Index(None, "started_at"),
)

# When a surge last changed: its end once ended, else its start (the later of the two,
# should a late end ever be stamped before its start). `GET /v1/surges` lists by it, newest
# first: the index (migration 0014) serves that order without sorting every surge.
surge_changed_at = case(
    (surges.c.ended_at > surges.c.started_at, surges.c.ended_at), else_=surges.c.started_at
)
Index("ix_surges_changed_at", surge_changed_at, surges.c.event_id)

# --- change log (the API's change feed, stream and webhooks read it) ----------------------

account_changes = Table(
    "account_changes",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    # PostgreSQL: the writing transaction's id, so readers can serve only rows no
    # in-flight transaction can precede (see services/kit/changes.py). SQLite: null.
    Column("txid", BigInteger),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("account", String(253), nullable=False),
    Column("type", String(32), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Index(None, "txid", "seq"),
)

# --- webhooks (the API's dispatcher fans the change log out to subscribers) --------------

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", String(256), nullable=False),  # space-separated change types
    # The signing secret must be readable to sign each delivery (HMAC), unlike API tokens.
    Column("secret", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("subscription_id", String(32), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_status_code", Integer),
    Column("last_error", String(512)),
    Column("delivered_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("subscription_id", "event_id"),
    Index(None, "status", "next_attempt_at"),
)

webhook_cursor = Table(
    "webhook_cursor",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("txid", BigInteger, nullable=False),
    Column("seq", BigInteger, nullable=False),
)

# --- credentials --------------------------------------------------------------------------

write_keys = Table(
    "write_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),  # sha256 hex of the key
    Column("source", String(256), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    # What ingest keeps of a visitor's IP once the account lookup is done (migration 0008):
    # keep | truncate (IPv4 /24, IPv6 /48) | drop.
    Column("ip_policy", String(16), nullable=False, server_default="truncate"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("scopes", String(256), nullable=False),  # space-separated: read write admin
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

# --- funnel KPI facts (migration 0007) ----------------------------------------------------

# Written by the funnel in the batch's transaction (see services/funnel/facts.py); the API
# aggregates them per period and tier. Tier 0 = no tier; tier and is_target are the
# account's before the event.
ACTIVITY_COUNTERS = (
    "ad_impressions", "ad_clicks", "visits", "high_value_visits", "view_through_visits",
    "view_through_conversions", "chats", "emails", "emails_sent", "meetings", "forms",
    "touches", "engagements", "surges", "web_research_spikes", "competitor_surges",
)  # fmt: skip

activity_daily = Table(
    "activity_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("domain", String(253), primary_key=True),
    Column("tier", Integer, primary_key=True),
    Column("is_target", Boolean, primary_key=True),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in ACTIVITY_COUNTERS),
    Index(None, "domain", "day"),
)

campaign_spend = Table(
    "campaign_spend",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("channel", String(256), nullable=False),
    Column("campaign_id", String(256)),
    Column("domain", String(253)),  # null: spend on no account in particular
    Column("tier", Integer),
    Column("is_target", Boolean, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("amount", Float, nullable=False),
    Index(None, "period_end", "period_start"),
)

nps_answers = Table(
    "nps_answers",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("domain", String(253), nullable=False),
    Column("tier", Integer),
    Column("is_target", Boolean, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("score", Integer, nullable=False),
    Index(None, "occurred_at"),
)

revenue_events = Table(
    "revenue_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("domain", String(253), nullable=False),
    Column("tier", Integer),
    Column("is_target", Boolean, nullable=False),
    Column("kind", String(16), nullable=False),  # new | renewal | expansion | churn
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("amount", Float, nullable=False),
    Column("term_end", Date),
    Index(None, "occurred_at"),
    Index(None, "domain", "occurred_at"),
)


# --- ingest identity (migration 0008) -----------------------------------------------------

company_ip_ranges = Table(
    "company_ip_ranges",
    metadata,
    Column("cidr", String(64), primary_key=True),  # normalized: host bits cleared
    Column("domain", String(253), nullable=False),
    Column("confidence", Float),  # 0..1; null: ingest's default for IP evidence
    Column("label", String(256)),  # where the range came from (file name, provider)
    Column("updated_at", UtcDateTime, nullable=False),
    Index(None, "domain"),
)

# --- visitor stitching (migration 0009) ---------------------------------------------------

# Written by services/stitch. One row per anonymous visitor: the account it belongs to
# once known, and when (event time) it identified as a known contact. An account named by
# a weak rule (IP ranges) leaves ``identified_at`` null: the KPI's denominator of anonymous
# visitors from an account; ``identified_at`` set: the visitor became a known contact.
visitors = Table(
    "visitors",
    metadata,
    Column("anonymous_id", String(256), primary_key=True),
    Column("account", String(253)),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("identified_at", UtcDateTime),
    Column("provenance", String(16)),  # the evidence that named ``account``
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("confidence", Float),  # of the identification; stitched copies carry it
    # The latest identification's account: differs from ``account`` when the visitor later
    # identified as another account (the first identification keeps the attribution).
    Column("last_identified_account", String(253)),
    Index(None, "account"),
)

# Events of not-yet-identified visitors, attributed (and deleted) when the visitor
# identifies; bounded per visitor (the most recent, within a window of event time).
visitor_pending_events = Table(
    "visitor_pending_events",
    metadata,
    Column("anonymous_id", String(256), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("payload", JsonDocument, nullable=False),
)
