"""Ingest settings (``ABM_`` prefix)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from pydantic import Field, field_validator

from schemas.envelope import normalize_domain
from services.kit.settings import CommonSettings


class IngestSettings(CommonSettings):
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8001, ge=1, le=65535)
    ingest_ack_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest wait for the broker before answering 503."
    )
    ingest_max_batch_bytes: int = Field(default=500 * 1024, ge=1024)
    ingest_max_event_bytes: int = Field(default=32 * 1024, ge=256)
    ingest_max_batch_events: int = Field(default=2500, ge=1)
    ingest_max_in_flight: int = Field(
        default=256,
        ge=1,
        description="Requests waiting for the broker at once; beyond that, 503 (bounded memory).",
    )
    ingest_write_key_cache_s: float = Field(
        default=30.0, ge=0, description="How long a write-key lookup is cached (revocation lag)."
    )
    ingest_write_key_timeout_s: float = Field(
        default=2.0,
        gt=0,
        description="Longest wait for a write-key lookup; beyond it (or when the database "
        "fails) 503, and pixels answer their GIF with the hit counted.",
    )
    ingest_trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="Proxies (CIDRs, a JSON list) whose X-Forwarded-For names the client of "
        "the pixel, tag and Snowplow routes; empty: the TCP peer is the client.",
    )
    ingest_own_domains: frozenset[str] = Field(
        default_factory=frozenset,
        description="Our company's email domains (a JSON list): our people in a meeting's "
        "attendees never name the account it was with.",
    )
    ingest_ip_ranges_refresh_s: float = Field(
        default=60.0, gt=0, description="How often the company IP ranges are checked for changes."
    )

    @field_validator("ingest_own_domains")
    @classmethod
    def _normalized_domains(cls, domains: frozenset[str]) -> frozenset[str]:
        return frozenset(normalize_domain(domain) for domain in domains)
