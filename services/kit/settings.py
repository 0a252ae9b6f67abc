"""Settings shared by every service; each service extends ``CommonSettings`` with its own.

Built in ``main()`` and passed down: nothing here is read at import time.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/abm.db"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ABM_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated."
    )
    kafka_enable_idempotence: bool = Field(
        default=False,
        description="Idempotent producer; true on real Kafka (the embedded Tansu lacks it).",
    )
    kafka_client_id: str = "abm-stream"
    kafka_request_timeout_ms: int = Field(default=10_000, ge=1_000)
    kafka_session_timeout_ms: int = Field(
        default=10_000, ge=1_000, description="How long a silent consumer keeps its partitions."
    )
    kafka_heartbeat_interval_ms: int = Field(default=3_000, ge=100)
    kafka_fetch_max_wait_ms: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="How long a consumer's fetch waits at the broker when there is nothing to "
        "read. Kafka answers as soon as a record arrives; the embedded Tansu answers only "
        "when this runs out, so on it every hop from a topic to a consumer takes up to this "
        "long (500, Kafka's default, put 120 ms on the median hop).",
    )
    consumer_dedup_retention_hours: float = Field(
        default=48.0,
        gt=0,
        description="How long applied event ids are remembered to drop duplicates; size "
        "processed_events as rate x this (10,000 events/s x 48 h = 1.7 billion rows).",
    )
    database_url: str = DEFAULT_SQLITE_URL
    database_pool_size: int = Field(default=10, ge=1)
    log_level: str = "INFO"
    log_json: bool = False
    dev_mode: bool = Field(
        default=False, description="Set by `abm up`: seeds the development credentials."
    )
    dev_write_key: SecretStr = SecretStr("dev-write-key")
    dev_api_token: SecretStr = SecretStr("dev-api-token")
